/* A Unix socket for one request line and one reply. See linesock.h. */
#include "linesock.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

/* Connections at once: more are closed at once. */
#define LINE_SOCKET_CONNECTIONS_MAX 16

struct _LineSocket
{
  GMainContext *ctx;
  GSocketService *service;
  char *path;
  gsize request_max;
  LineSocketFunc run;
  gpointer data;
  GList *conns; /* LineConn*, owned */
};

typedef struct
{
  LineSocket *owner;
  GSocketConnection *conn;
  GByteArray *request;
  guint8 chunk[4096];
  GSource *deadline;
  char *reply;
  gsize reply_len;
  GCancellable *cancel;
} LineConn;

/* Exactly one read or write is pending while a connection lives; its
 * callback frees the connection, also when it was cancelled. */
static void
conn_free (LineConn *c)
{
  if (c->owner != NULL)
    c->owner->conns = g_list_remove (c->owner->conns, c);
  g_object_unref (c->cancel);
  if (c->deadline != NULL)
    {
      g_source_destroy (c->deadline);
      g_source_unref (c->deadline);
    }
  (void) g_io_stream_close (G_IO_STREAM (c->conn), NULL, NULL);
  g_object_unref (c->conn);
  g_byte_array_unref (c->request);
  g_free (c->reply);
  g_free (c);
}

static void
conn_on_written (GObject *stream, GAsyncResult *res, gpointer data)
{
  LineConn *c = data;

  (void) g_output_stream_write_all_finish (G_OUTPUT_STREAM (stream), res, NULL, NULL);
  conn_free (c);
}

static void conn_read (LineConn *c);

static void
conn_on_read (GObject *stream, GAsyncResult *res, gpointer data)
{
  LineConn *c = data;
  g_autoptr (GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (stream), res, &error);
  guint8 *nl;

  if (n <= 0 || c->owner == NULL)
    {
      conn_free (c);
      return;
    }
  g_byte_array_append (c->request, c->chunk, (guint) n);
  nl = memchr (c->request->data, '\n', c->request->len);
  if (nl == NULL)
    {
      if (c->request->len > c->owner->request_max)
        conn_free (c);
      else
        conn_read (c);
      return;
    }
  c->reply
      = c->owner->run ((const char *) c->request->data, (gsize) (nl - c->request->data),
                       &c->reply_len, c->owner->data);
  c->reply = g_realloc (c->reply, c->reply_len + 1);
  c->reply[c->reply_len++] = '\n';
  g_output_stream_write_all_async (g_io_stream_get_output_stream (G_IO_STREAM (c->conn)),
                                   c->reply, c->reply_len, G_PRIORITY_DEFAULT, c->cancel,
                                   conn_on_written, c);
}

static void
conn_read (LineConn *c)
{
  g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (c->conn)),
                             c->chunk, sizeof c->chunk, G_PRIORITY_DEFAULT, c->cancel,
                             conn_on_read, c);
}

static gboolean
conn_on_deadline (gpointer data)
{
  LineConn *c = data;

  g_clear_pointer (&c->deadline, g_source_unref);
  g_cancellable_cancel (c->cancel); /* the pending callback frees it */
  return G_SOURCE_REMOVE;
}

/* Only the process's own user, or root, may talk to it (SO_PEERCRED). */
static gboolean
caller_allowed (GSocketConnection *conn)
{
  g_autoptr (GCredentials) creds
      = g_socket_get_credentials (g_socket_connection_get_socket (conn), NULL);
  uid_t uid;

  if (creds == NULL)
    return FALSE;
  uid = g_credentials_get_unix_user (creds, NULL);
  return uid == 0 || uid == geteuid ();
}

static gboolean
on_incoming (GSocketService *service, GSocketConnection *conn, GObject *source,
             gpointer data)
{
  LineSocket *self = data;
  LineConn *c;

  if (!caller_allowed (conn))
    {
      g_message ("%s: a caller of another user was turned away", self->path);
      return TRUE;
    }
  if (g_list_length (self->conns) >= LINE_SOCKET_CONNECTIONS_MAX)
    return TRUE;
  c = g_new0 (LineConn, 1);
  c->owner = self;
  c->conn = g_object_ref (conn);
  c->request = g_byte_array_new ();
  c->cancel = g_cancellable_new ();
  c->deadline = g_timeout_source_new_seconds (LINE_SOCKET_TIMEOUT_S);
  g_source_set_callback (c->deadline, conn_on_deadline, c, NULL);
  g_source_attach (c->deadline, self->ctx);
  self->conns = g_list_prepend (self->conns, c);
  conn_read (c);
  return TRUE;
}

LineSocket *
line_socket_new (GMainContext *ctx, const char *path, gsize request_max,
                 LineSocketFunc run, gpointer data, GError **error)
{
  LineSocket *self = g_new0 (LineSocket, 1);
  g_autoptr (GSocketAddress) address = NULL;
  mode_t old_umask;
  gboolean ok;

  self->ctx = g_main_context_ref (ctx);
  self->path = g_strdup (path);
  self->request_max = request_max;
  self->run = run;
  self->data = data;
  (void) g_unlink (self->path);
  address = g_unix_socket_address_new (self->path);
  g_main_context_push_thread_default (ctx);
  self->service = g_socket_service_new ();
  /* The socket is made 0600 from the start, not chmod-ed after bind. */
  old_umask = umask (0177);
  ok = g_socket_listener_add_address (G_SOCKET_LISTENER (self->service), address,
                                      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                                      NULL, NULL, error);
  umask (old_umask);
  g_signal_connect (self->service, "incoming", G_CALLBACK (on_incoming), self);
  g_main_context_pop_thread_default (ctx);
  if (!ok)
    {
      g_prefix_error (error, "%s: ", self->path);
      line_socket_free (self);
      return NULL;
    }
  g_socket_service_start (self->service);
  return self;
}

void
line_socket_free (LineSocket *self)
{
  if (self == NULL)
    return;
  for (GList *l = self->conns; l != NULL; l = l->next)
    {
      LineConn *c = l->data;

      c->owner = NULL;
      g_cancellable_cancel (c->cancel);
    }
  g_list_free (self->conns);
  if (self->service != NULL)
    {
      g_socket_service_stop (self->service);
      g_socket_listener_close (G_SOCKET_LISTENER (self->service));
      g_object_unref (self->service);
      (void) g_unlink (self->path);
    }
  g_free (self->path);
  g_main_context_unref (self->ctx);
  g_free (self);
}

char *
line_socket_call (const char *path, const char *request, gsize reply_max, GError **error)
{
  g_autoptr (GSocketAddress) address = g_unix_socket_address_new (path);
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GByteArray) reply = g_byte_array_new ();
  g_autofree char *line = g_strconcat (request, "\n", NULL);
  gsize sent = 0, len = strlen (line);

  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_DEFAULT, error);
  if (socket == NULL)
    return NULL;
  g_socket_set_timeout (socket, LINE_SOCKET_TIMEOUT_S);
  if (!g_socket_connect (socket, address, NULL, error))
    return NULL;
  while (sent < len)
    {
      gssize n = g_socket_send (socket, line + sent, len - sent, NULL, error);

      if (n < 0)
        return NULL;
      sent += (gsize) n;
    }
  for (;;)
    {
      guint8 buf[4096];
      gssize n = g_socket_receive (socket, (char *) buf, sizeof buf, NULL, error);

      if (n < 0)
        return NULL;
      if (n == 0)
        break;
      g_byte_array_append (reply, buf, (guint) n);
      if (reply->len > reply_max)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                       "%s: the reply is too large", path);
          return NULL;
        }
    }
  g_byte_array_append (reply, (const guint8 *)"", 1);
  return (char *) g_byte_array_free (g_steal_pointer (&reply), FALSE);
}
