/* Local port forwards; see forward.h. */
#include "forward.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge.h"
#include "ctlmsg.h"
#include "node.h"

/* Connections through one forward at once: bounded by the transport too. */
#define FORWARD_MAX_CONNECTIONS TRANSPORT_MAX_STREAMS
#define FORWARD_LISTEN_BACKLOG 256

typedef struct
{
  Forwards *owner;
  GSocket *socket;
  GSource *source;
  char *service;
  char *display; /* "127.0.0.1:8000" */
} Listener;

struct _Forwards
{
  GMainContext *context;
  GPtrArray *listeners; /* Listener* */
  GPtrArray *bridges;   /* Bridge* */
  Transport *transport;
  ForwardsFatalFunc fatal;
  gpointer user_data;
  GSource *fatal_idle;
  GError *fatal_error;
};

static gboolean
parse_port (const char *s, guint16 *port)
{
  guint64 v;

  if (!g_ascii_string_to_unsigned (s, 10, 1, 65535, &v, NULL))
    return FALSE;
  *port = (guint16) v;
  return TRUE;
}

gboolean
forward_spec_parse (const char *spec, char **bind, guint16 *port, char **service,
                    GError **error)
{
  const char *last = strrchr (spec, ':');
  g_autofree char *head = NULL;
  const char *colon;

  if (last == NULL || !ctlmsg_name_is_valid (last + 1))
    goto bad;
  head = g_strndup (spec, (gsize) (last - spec));
  colon = strrchr (head, ':');
  if (colon == NULL)
    {
      if (!parse_port (head, port))
        goto bad;
      *bind = g_strdup ("127.0.0.1");
    }
  else
    {
      g_autofree char *addr = g_strndup (head, (gsize) (colon - head));
      g_autoptr (GInetAddress) inet = NULL;
      gsize n = strlen (addr);

      if (!parse_port (colon + 1, port))
        goto bad;
      if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']')
        {
          addr[n - 1] = '\0';
          memmove (addr, addr + 1, n - 1);
        }
      inet = g_inet_address_new_from_string (addr);
      if (inet == NULL)
        goto bad;
      *bind = g_steal_pointer (&addr);
    }
  *service = g_strdup (last + 1);
  return TRUE;

bad:
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
               "-L %s: expected [BIND:]PORT:SERVICE, for example 8000:music or "
               "127.0.0.1:8000:music", spec);
  return FALSE;
}

static void
listener_free (Listener *l)
{
  if (l->source)
    {
      g_source_destroy (l->source);
      g_source_unref (l->source);
    }
  g_clear_object (&l->socket);
  g_free (l->service);
  g_free (l->display);
  g_free (l);
}

static gboolean
fatal_dispatch (gpointer data)
{
  Forwards *self = data;

  g_clear_pointer (&self->fatal_idle, g_source_unref);
  self->fatal (self->fatal_error, self->user_data);
  return G_SOURCE_REMOVE;
}

static void
on_bridge_done (Bridge *bridge, const GError *error, gpointer data)
{
  Forwards *self = data;

  if (g_error_matches (error, BRIDGE_ERROR, BRIDGE_ERROR_NOT_EXPOSED) && !self->fatal_error)
    {
      /* A forward to a service the peer does not have can never work. */
      self->fatal_error = g_error_copy (error);
      self->fatal_idle = g_idle_source_new ();
  g_source_set_priority (self->fatal_idle, G_PRIORITY_DEFAULT);
      g_source_set_callback (self->fatal_idle, fatal_dispatch, self, NULL);
      g_source_attach (self->fatal_idle, self->context);
    }
  else if (error)
    node_say ("forwarded connection failed: %s", error->message);
  g_ptr_array_remove_fast (self->bridges, bridge);
}

static gboolean
on_accept (GSocket *socket, GIOCondition cond, gpointer data)
{
  Listener *l = data;
  Forwards *self = l->owner;

  for (int i = 0; i < 16; i++)
    {
      g_autoptr (GError) error = NULL;
      Bridge *bridge;
      int fd = accept4 (g_socket_get_fd (socket), NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

      if (fd < 0)
        {
          if (errno != EAGAIN && errno != EINTR)
            node_say ("accept on %s failed: %s", l->display, g_strerror (errno));
          break;
        }
      if (self->bridges->len >= FORWARD_MAX_CONNECTIONS)
        {
          node_say ("too many connections through the tunnel (%u); closing a new one on %s",
                    self->bridges->len, l->display);
          close (fd);
          continue;
        }
      bridge = bridge_open (self->context, self->transport, l->service, fd, fd, on_bridge_done,
                            self, &error);
      if (bridge == NULL)
        {
          node_say ("cannot forward a connection on %s: %s", l->display, error->message);
          continue; /* bridge_open closed fd */
        }
      g_ptr_array_add (self->bridges, bridge);
    }
  return G_SOURCE_CONTINUE;
}

Forwards *
forwards_new (GMainContext *context, const char *const *specs, ForwardsFatalFunc fatal,
              gpointer user_data, GError **error)
{
  g_autoptr (Forwards) self = g_new0 (Forwards, 1);

  self->context = g_main_context_ref (context);
  self->fatal = fatal;
  self->user_data = user_data;
  self->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) listener_free);
  self->bridges = g_ptr_array_new_with_free_func ((GDestroyNotify) bridge_free);
  for (guint i = 0; specs[i]; i++)
    {
      g_autofree char *bind = NULL;
      g_autofree char *service = NULL;
      g_autoptr (GInetAddress) inet = NULL;
      g_autoptr (GSocketAddress) addr = NULL;
      g_autoptr (GError) local_error = NULL;
      guint16 port;
      Listener *l;

      if (!forward_spec_parse (specs[i], &bind, &port, &service, error))
        return NULL;
      inet = g_inet_address_new_from_string (bind);
      addr = g_inet_socket_address_new (inet, port);
      l = g_new0 (Listener, 1);
      l->owner = self;
      l->service = g_steal_pointer (&service);
      l->display = g_strdup_printf (strchr (bind, ':') ? "[%s]:%u" : "%s:%u", bind, port);
      g_ptr_array_add (self->listeners, l);
      l->socket = g_socket_new (g_inet_address_get_family (inet), G_SOCKET_TYPE_STREAM,
                                G_SOCKET_PROTOCOL_TCP, &local_error);
      /* GLib's default backlog (10) overflows when an application opens
       * many connections at once, and the kernel then drops or resets them. */
      if (l->socket != NULL)
        g_socket_set_listen_backlog (l->socket, FORWARD_LISTEN_BACKLOG);
      if (l->socket == NULL || !g_socket_bind (l->socket, addr, TRUE, &local_error)
          || !g_socket_listen (l->socket, &local_error))
        {
          g_set_error (error, G_IO_ERROR, local_error->code, "cannot listen on %s: %s",
                       l->display, local_error->message);
          return NULL;
        }
      g_socket_set_blocking (l->socket, FALSE);
    }
  return g_steal_pointer (&self);
}

void
forwards_start (Forwards *self, Transport *transport)
{
  self->transport = transport;
  for (guint i = 0; i < self->listeners->len; i++)
    {
      Listener *l = self->listeners->pdata[i];

      if (l->source)
        continue;
      l->source = g_socket_create_source (l->socket, G_IO_IN, NULL);
      g_source_set_callback (l->source, (GSourceFunc) (void (*) (void)) on_accept, l, NULL);
      g_source_attach (l->source, self->context);
      node_say ("forwarding %s -> %s", l->display, l->service);
    }
}

void
forwards_free (Forwards *self)
{
  if (self == NULL)
    return;
  if (self->fatal_idle)
    {
      g_source_destroy (self->fatal_idle);
      g_source_unref (self->fatal_idle);
    }
  g_clear_error (&self->fatal_error);
  g_ptr_array_unref (self->bridges);
  g_ptr_array_unref (self->listeners);
  g_main_context_unref (self->context);
  g_free (self);
}
