/* The HTTPS shell of p2ptun-signal: routes the requests of signaling/API.md
 * to the mailbox store, the rate limiters and the long-polls. */
#pragma once

#include <gio/gio.h>

#include "accept.h"

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
