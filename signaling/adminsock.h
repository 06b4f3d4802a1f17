/* The admin socket of a running p2ptun-signal: admin.sock in its state
 * directory, a line socket (linesock.h) for admin.h's requests. */
#pragma once

#include "linesock.h"

#define ADMIN_SOCKET_NAME "admin.sock"

typedef LineSocket AdminSocket;

/* Listens on @dir's admin.sock (a stale one is replaced: the caller holds
 * the directory's lock). */
AdminSocket *admin_socket_new (GMainContext *ctx, const char *dir, LineSocketFunc run,
                               gpointer data, GError **error);
void admin_socket_free (AdminSocket *self);

/* The client: sends @request to the server on @dir and waits for its reply.
 * G_IO_ERROR_NOT_FOUND or G_IO_ERROR_CONNECTION_REFUSED: no server runs
 * there. */
char *admin_socket_call (const char *dir, const char *request, GError **error);
