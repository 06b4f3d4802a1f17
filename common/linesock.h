/* A Unix socket that takes one request line per connection and answers one
 * reply line: the admin socket of p2ptun-signal and the control socket of
 * p2ptun-agent. The socket is made mode 0600; only the process's own user
 * or root may talk to it (SO_PEERCRED). A connection that has not sent its
 * whole request, or taken its whole reply, within LINE_SOCKET_TIMEOUT_S is
 * dropped, and a request longer than the server's limit too: a caller that
 * stalls costs a connection slot for that long, never the main loop. */
#pragma once

#include <gio/gio.h>

#define LINE_SOCKET_TIMEOUT_S 10

/* Runs a request (@len bytes, without its newline); returns the reply's
 * text, without a newline (owned by the caller). */
typedef char *(*LineSocketFunc) (const char *request, gsize len, gsize *reply_len,
                                 gpointer data);

typedef struct _LineSocket LineSocket;

/* Listens on @path (a file there is replaced: the caller makes sure that no
 * other server uses it), in @ctx; requests longer than @request_max bytes
 * are dropped. */
LineSocket *line_socket_new (GMainContext *ctx, const char *path, gsize request_max,
                             LineSocketFunc run, gpointer data, GError **error);
/* Stops listening, drops the connections and removes the socket file. */
void line_socket_free (LineSocket *self);

/* The client: sends @request to the server on @path and waits (at most
 * LINE_SOCKET_TIMEOUT_S for each read or write) for its reply, of at most
 * @reply_max bytes. G_IO_ERROR_NOT_FOUND or G_IO_ERROR_CONNECTION_REFUSED:
 * no server runs there. */
char *line_socket_call (const char *path, const char *request, gsize reply_max,
                        GError **error);
