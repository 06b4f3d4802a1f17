/* The plain-HTTP metrics endpoint; see promhttp.h. */
#include "promhttp.h"

#include <string.h>

#include <libsoup/soup.h>

/* How often connections past their time are closed and closed ones
 * forgotten. */
#define PROMHTTP_TICK_MS 250

typedef struct
{
  GSocketConnection *conn; /* owned reference; libsoup holds its own */
  gint64 accepted;         /* monotonic microseconds */
} PromhttpConn;

struct _Promhttp
{
  GMainContext *ctx;
  GSocket *listener;
  GSource *listen_source;
  GSource *tick;
  SoupServer *soup;
  GPtrArray *conns; /* PromhttpConn* (owned) */
  PromhttpRenderFunc render;
  gpointer data;
};

GInetSocketAddress *
promhttp_parse_address (const char *option, const char *text, GError **error)
{
  g_autofree char *host = NULL;
  const char *colon = strrchr (text, ':');
  g_autoptr (GInetAddress) ip = NULL;
  guint64 port = 0;

  if (colon != NULL && text[0] == '[' && colon > text && colon[-1] == ']')
    host = g_strndup (text + 1, (gsize)(colon - text - 2));
  else if (colon != NULL && strchr (text, ':') == colon)
    host = g_strndup (text, (gsize)(colon - text));
  if (host != NULL)
    ip = g_inet_address_new_from_string (host);
  if (ip == NULL || !g_ascii_isdigit (colon[1])
      || !g_ascii_string_to_unsigned (colon + 1, 10, 0, 65535, &port, NULL))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--%s: %s is not ADDR:PORT (numeric, [ADDR]:PORT for IPv6)", option,
                   text);
      return NULL;
    }
  return G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (ip, (guint16)port));
}

static void
promhttp_conn_free (gpointer p)
{
  PromhttpConn *c = p;

  g_object_unref (c->conn);
  g_free (c);
}

static void
on_request (SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
            gpointer data)
{
  Promhttp *self = data;
  const char *method = soup_server_message_get_method (msg);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  GString *text;

  soup_message_headers_replace (headers, "Connection", "close");
  soup_message_headers_replace (headers, "Cache-Control", "no-store");
  if (strcmp (path, "/metrics") != 0)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
                                        "not found\n", strlen ("not found\n"));
      return;
    }
  if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD)
    {
      soup_message_headers_replace (headers, "Allow", "GET, HEAD");
      soup_server_message_set_status (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
      return;
    }
  text = self->render (self->data);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "text/plain; version=0.0.4; charset=utf-8",
                                    SOUP_MEMORY_TAKE, text->str, text->len);
  g_string_free (text, FALSE);
}

/* Hands one accepted socket to libsoup, or closes it when too many are held. */
static void
promhttp_accept (Promhttp *self, GSocket *socket)
{
  g_autoptr (GSocketAddress) local = g_socket_get_local_address (socket, NULL);
  g_autoptr (GSocketAddress) remote = g_socket_get_remote_address (socket, NULL);
  g_autoptr (GError) error = NULL;
  PromhttpConn *c;

  if (self->conns->len >= PROMHTTP_MAX_CONNECTIONS || local == NULL || remote == NULL)
    {
      g_debug ("metrics: connection closed at accept (%u held)", self->conns->len);
      g_socket_close (socket, NULL);
      return;
    }
  c = g_new0 (PromhttpConn, 1);
  c->conn = g_socket_connection_factory_create_connection (socket);
  c->accepted = g_get_monotonic_time ();
  /* libsoup attaches the connection's sources to the thread-default context. */
  g_main_context_push_thread_default (self->ctx);
  if (!soup_server_accept_iostream (self->soup, G_IO_STREAM (c->conn), local, remote,
                                    &error))
    {
      g_debug ("metrics: %s", error->message);
      g_socket_close (socket, NULL);
    }
  g_main_context_pop_thread_default (self->ctx);
  g_ptr_array_add (self->conns, c);
}

static gboolean
on_listener (GSocket *listener, GIOCondition cond, gpointer data)
{
  Promhttp *self = data;

  for (;;)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GSocket) socket = g_socket_accept (listener, NULL, &error);

      if (socket == NULL)
        {
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            g_debug ("metrics: accept: %s", error->message);
          return G_SOURCE_CONTINUE;
        }
      promhttp_accept (self, socket);
    }
}

/* Closes connections past their time; forgets closed ones. */
static gboolean
on_tick (gpointer data)
{
  Promhttp *self = data;
  gint64 now = g_get_monotonic_time ();

  for (guint i = self->conns->len; i > 0; i--)
    {
      PromhttpConn *c = self->conns->pdata[i - 1];
      GSocket *socket = g_socket_connection_get_socket (c->conn);

      if (!g_socket_is_closed (socket)
          && now - c->accepted > (gint64)PROMHTTP_CONNECTION_MS * 1000)
        g_socket_close (socket, NULL);
      if (g_socket_is_closed (socket))
        g_ptr_array_remove_index_fast (self->conns, i - 1);
    }
  return G_SOURCE_CONTINUE;
}

static GSource *
promhttp_attach (Promhttp *self, GSource *source, GSourceFunc func)
{
  g_source_set_callback (source, func, self, NULL);
  g_source_attach (source, self->ctx);
  return source;
}

Promhttp *
promhttp_new (GMainContext *ctx, GInetSocketAddress *address, PromhttpRenderFunc render,
              gpointer data, GError **error)
{
  g_autoptr (Promhttp) self = g_new0 (Promhttp, 1);
  GInetAddress *ip = g_inet_socket_address_get_address (address);

  self->ctx = g_main_context_ref (ctx);
  self->render = render;
  self->data = data;
  self->conns = g_ptr_array_new_with_free_func (promhttp_conn_free);
  self->listener = g_socket_new (g_inet_address_get_family (ip), G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, error);
  if (self->listener == NULL)
    return NULL;
  g_socket_set_blocking (self->listener, FALSE);
  if (!g_socket_bind (self->listener, G_SOCKET_ADDRESS (address), TRUE, error)
      || !g_socket_listen (self->listener, error))
    return NULL;
  self->soup = soup_server_new (NULL, NULL);
  soup_server_add_handler (self->soup, NULL, on_request, self, NULL);
  self->listen_source = promhttp_attach (
      self, g_socket_create_source (self->listener, G_IO_IN, NULL), G_SOURCE_FUNC (on_listener));
  self->tick = promhttp_attach (self, g_timeout_source_new (PROMHTTP_TICK_MS), on_tick);
  if (!g_inet_address_get_is_loopback (ip))
    {
      g_autofree char *where = promhttp_address (self);
      g_warning ("metrics served on %s, not loopback: plain HTTP without authentication, "
                 "readable by whoever can reach it",
                 where);
    }
  return g_steal_pointer (&self);
}

char *
promhttp_address (Promhttp *self)
{
  g_autoptr (GSocketAddress) local = g_socket_get_local_address (self->listener, NULL);
  g_autofree char *ip = NULL;
  guint16 port;

  if (local == NULL)
    return g_strdup ("?");
  ip = g_inet_address_to_string (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (local)));
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  return strchr (ip, ':') != NULL ? g_strdup_printf ("[%s]:%u", ip, port)
                                  : g_strdup_printf ("%s:%u", ip, port);
}

static void
promhttp_source_clear (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

void
promhttp_free (Promhttp *self)
{
  if (self == NULL)
    return;
  promhttp_source_clear (&self->listen_source);
  promhttp_source_clear (&self->tick);
  if (self->soup != NULL)
    {
      soup_server_disconnect (self->soup);
      g_object_unref (self->soup);
    }
  g_clear_pointer (&self->conns, g_ptr_array_unref);
  if (self->listener != NULL)
    {
      g_socket_close (self->listener, NULL);
      g_object_unref (self->listener);
    }
  if (self->ctx != NULL)
    g_main_context_unref (self->ctx);
  g_free (self);
}
