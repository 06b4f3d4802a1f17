/* Accepting the connections of p2ptun-signal, before HTTP sees them.
 *
 * The server owns its listening socket. Each accepted connection must send a
 * whole TLS ClientHello and finish its TLS handshake within handshake_ms, and
 * must have its first request read within request_ms of being accepted; a
 * client address holds at most max_per_address connections (of which at most
 * handshakes_per_address in a TLS handshake at once), and the server at most
 * max_total. A connection that breaks a limit is closed without an answer: it
 * has no TLS session yet, or has not been read.
 *
 * Why: GIO runs each TLS handshake as a blocking call on a worker thread of a
 * small pool; a connection that never sends its ClientHello would hold one of
 * them. So the handshake starts only once the ClientHello is in the socket's
 * buffer, and a deadline cancels it. And libsoup 3.2 never closes a kept-alive
 * connection that the client closed (fixed in libsoup 3.3.0): a connection
 * handed on here serves one request, and its count is released when it is
 * closed. */
#pragma once

#include <gio/gio.h>

#define SIGNAL_ACCEPT_ERROR (signal_accept_error_quark ())
GQuark signal_accept_error_quark (void);
typedef enum
{
  SIGNAL_ACCEPT_ERROR_LISTEN, /* the address cannot be bound */
} SignalAcceptError;

/* Defaults, chosen in README.md's security section. */
#define SIGNAL_ACCEPT_DEFAULT_MAX_TOTAL 1000
#define SIGNAL_ACCEPT_DEFAULT_MAX_PER_ADDRESS 100
#define SIGNAL_ACCEPT_DEFAULT_HANDSHAKES_PER_ADDRESS 8
#define SIGNAL_ACCEPT_DEFAULT_HANDSHAKE_MS 5000
#define SIGNAL_ACCEPT_DEFAULT_REQUEST_MS 10000

typedef struct
{
  guint max_total;              /* connections held at most */
  guint max_per_address;        /* connections held at most per client address */
  guint handshakes_per_address; /* TLS handshakes running at once per address */
  guint handshake_ms;           /* from accept to a finished TLS handshake */
  guint request_ms;             /* from accept to the first request, read */
} SignalAcceptLimits;

/* A connection whose TLS handshake is done: @stream is the GTlsServerConnection
 * (with the client's certificate, if any, as its peer certificate), and
 * @remote the address object that must be given to HTTP along with it, so
 * that signal_accept_*_of() find the connection again. */
typedef void (*SignalAcceptFunc) (GIOStream *stream, GSocketAddress *local,
                                  GSocketAddress *remote, gpointer data);

typedef struct _SignalAccept SignalAccept;

/* Accepts on @ctx with @cert (which must hold its private key); every client
 * certificate is asked for and accepted (clients are self-signed: who they
 * are is their public key). @limits NULL means the defaults. */
SignalAccept *signal_accept_new (GMainContext *ctx, GTlsCertificate *cert,
                                 const SignalAcceptLimits *limits, SignalAcceptFunc func,
                                 gpointer data);
/* Closes every connection still held here and the listening socket. */
void signal_accept_free (SignalAccept *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SignalAccept, signal_accept_free)

/* Listens on @address (port 0: a free port); the bound port in @bound_port. */
gboolean signal_accept_listen (SignalAccept *self, GSocketAddress *address,
                               guint16 *bound_port, GError **error);

/* The first request of the connection of @remote was read: its request
 * deadline no longer holds. */
void signal_accept_request_read (SignalAccept *self, GSocketAddress *remote);

/* HTTP has closed the connection of @remote: it no longer counts. (Without
 * this call, the closed connection is noticed within a quarter second.) */
void signal_accept_closed (SignalAccept *self, GSocketAddress *remote);

/* The TCP socket of the connection of @remote (to watch or close), or NULL. */
GSocket *signal_accept_socket_of (SignalAccept *self, GSocketAddress *remote);
