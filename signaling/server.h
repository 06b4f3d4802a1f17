/* The HTTPS shell of p2ptun-signal: routes the requests of signaling/API.md
 * to the mailbox store, the rate limiters and the long-polls. */
#pragma once

#include <gio/gio.h>

#include "accept.h"
#include "access.h"

typedef struct
{
  guint max_peers;         /* mailboxes held at most */
  guint rate;              /* requests per second per client */
  guint burst;             /* requests at once per client */
  const char *const *stun; /* "host:port" entries, NULL-terminated; may be NULL */
  const char *const *turn; /* "turn:host:port[?transport=udp]" URIs, NULL-terminated;
                            * may be NULL */
  const char *turn_secret; /* the TURN REST shared secret; required with @turn */
  guint turn_ttl;          /* seconds the handed-out TURN credentials are valid */
  const char *turn_pin;    /* NULL, or the key pin handed out with turns: relays */
  SignalAcceptLimits connections; /* caps and deadlines of connections */
  AccessStore *access;     /* who may use the server; the server takes it over */
  const char *state_dir;   /* where the access state is saved; NULL: not saved */
  gboolean open;           /* admit every peer-id that is not revoked */
  GTlsCertificate *client_ca; /* NULL, or a CA whose certificates admit agents */
} SignalServerConfig;

typedef struct _SignalServer SignalServer;

/* Serves on @ctx with @cert (which must hold its private key); the server
 * keeps its own references. */
SignalServer *signal_server_new (GMainContext *ctx, const SignalServerConfig *config,
                                 GTlsCertificate *cert);
void signal_server_free (SignalServer *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SignalServer, signal_server_free)

/* Listens on @address (port 0: a free port). Returns the bound port in
 * @bound_port; a SIGNAL_ACCEPT_ERROR on failure. */
gboolean signal_server_listen (SignalServer *self, GSocketAddress *address,
                               guint16 *bound_port, GError **error);

/* Runs an operator's request (admin.h) on the server's access state; for
 * the admin socket. Returns the reply's text. */
char *signal_server_admin (const char *request, gsize len, gsize *reply_len, gpointer self);

/* The Prometheus metrics text (metrics.h), a new GString; a
 * PromhttpRenderFunc for --metrics. */
GString *signal_server_metrics_text (gpointer self);

/* Saves the access state now if anything in it changed (last-seen times are
 * otherwise saved once a minute). */
void signal_server_flush (SignalServer *self);
