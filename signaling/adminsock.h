/* The admin socket of a running p2ptun-signal: admin.sock in its state
 * directory, mode 0600, taking one request line per connection from the
 * server's own user or root only (SO_PEERCRED), answering one line. */
#pragma once

#include <gio/gio.h>

#define ADMIN_SOCKET_NAME "admin.sock"

/* Runs a request; returns the reply's text (owned by the caller). */
typedef char *(*AdminSocketFunc) (const char *request, gsize len, gsize *reply_len,
                                  gpointer data);

typedef struct _AdminSocket AdminSocket;

/* Listens on @dir's admin.sock (a stale one is replaced: the caller holds
 * the directory's lock). */
AdminSocket *admin_socket_new (GMainContext *ctx, const char *dir, AdminSocketFunc run,
                               gpointer data, GError **error);
void admin_socket_free (AdminSocket *self);

/* The client: sends @request to the server on @dir and waits (at most 10 s)
 * for its reply. G_IO_ERROR_NOT_FOUND or G_IO_ERROR_CONNECTION_REFUSED: no
 * server runs there. */
char *admin_socket_call (const char *dir, const char *request, GError **error);
