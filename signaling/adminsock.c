/* The admin socket of a running p2ptun-signal. See adminsock.h. */
#include "adminsock.h"

#include "admin.h"

/* The largest reply taken: a listing of every enrolled peer. */
#define ADMIN_REPLY_MAX (64 * 1024 * 1024)

AdminSocket *
admin_socket_new (GMainContext *ctx, const char *dir, LineSocketFunc run, gpointer data,
                  GError **error)
{
  g_autofree char *path = g_build_filename (dir, ADMIN_SOCKET_NAME, NULL);

  return line_socket_new (ctx, path, ADMIN_REQUEST_MAX, run, data, error);
}

void
admin_socket_free (AdminSocket *self)
{
  line_socket_free (self);
}

char *
admin_socket_call (const char *dir, const char *request, GError **error)
{
  g_autofree char *path = g_build_filename (dir, ADMIN_SOCKET_NAME, NULL);

  return line_socket_call (path, request, ADMIN_REPLY_MAX, error);
}
