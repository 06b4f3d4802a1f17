/* Local port forwards; see forward.h. */
#include "forward.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge.h"
#include "ctlmsg.h"

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
  ForwardReport report;
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
forward_spec_parse (const char *option, const char *spec, char **bind, guint16 *port,
                    char **service, GError **error)
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
               "%s %s: expected [BIND:]PORT:SERVICE, for example 8000:music or "
               "127.0.0.1:8000:music", option, spec);
  return FALSE;
}

GSocket *
forward_bind (const char *option, const char *spec, GSocketType type, char **service,
              char **display, GError **error)
{
  g_autofree char *bind = NULL;
  g_autoptr (GInetAddress) inet = NULL;
  g_autoptr (GSocketAddress) addr = NULL;
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GError) local_error = NULL;
  guint16 port;

  if (!forward_spec_parse (option, spec, &bind, &port, service, error))
    return NULL;
  *display = g_strdup_printf (strchr (bind, ':') ? "[%s]:%u" : "%s:%u", bind, port);
  inet = g_inet_address_new_from_string (bind);
  addr = g_inet_socket_address_new (inet, port);
  socket = g_socket_new (g_inet_address_get_family (inet), type,
                         type == G_SOCKET_TYPE_STREAM ? G_SOCKET_PROTOCOL_TCP
                                                      : G_SOCKET_PROTOCOL_UDP,
                         &local_error);
  /* TCP listeners reuse the address (a restart finds it in TIME_WAIT). */
  if (socket == NULL || !g_socket_bind (socket, addr, type == G_SOCKET_TYPE_STREAM, &local_error))
    {
      g_set_error (error, G_IO_ERROR, local_error->code, "cannot listen on %s%s: %s",
                   type == G_SOCKET_TYPE_STREAM ? "" : "udp ", *display, local_error->message);
      return NULL;
    }
  g_socket_set_blocking (socket, FALSE);
  return g_steal_pointer (&socket);
}

static gboolean
fatal_dispatch (gpointer data)
{
  ForwardReport *r = data;

  g_clear_pointer (&r->idle, g_source_unref);
  r->fatal (r->error, r->user_data);
  return G_SOURCE_REMOVE;
}

void
forward_report_init (ForwardReport *r, GMainContext *context, ForwardsFatalFunc fatal,
                     ForwardsSayFunc say, gpointer user_data)
{
  r->context = context;
  r->fatal = fatal;
  r->say = say;
  r->user_data = user_data;
}

void
forward_report_fatal (ForwardReport *r, GError *error)
{
  if (r->error != NULL)
    {
      g_error_free (error);
      return;
    }
  r->error = error;
  r->idle = g_idle_source_new ();
  g_source_set_callback (r->idle, fatal_dispatch, r, NULL);
  g_source_attach (r->idle, r->context);
}

void
forward_report_say (ForwardReport *r, const char *format, ...)
{
  g_autofree char *line = NULL;
  va_list ap;

  va_start (ap, format);
  line = g_strdup_vprintf (format, ap);
  va_end (ap);
  r->say (line, r->user_data);
}

void
forward_report_clear (ForwardReport *r)
{
  if (r->idle)
    {
      g_source_destroy (r->idle);
      g_clear_pointer (&r->idle, g_source_unref);
    }
  g_clear_error (&r->error);
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

static void
on_bridge_done (Bridge *bridge, const GError *error, gpointer data)
{
  Forwards *self = data;

  /* A forward to a service the peer does not have can never work. */
  if (g_error_matches (error, BRIDGE_ERROR, BRIDGE_ERROR_NOT_EXPOSED))
    forward_report_fatal (&self->report, g_error_copy (error));
  else if (error)
    forward_report_say (&self->report, "forwarded connection failed: %s", error->message);
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
            forward_report_say (&self->report, "accept on %s failed: %s", l->display,
                                g_strerror (errno));
          break;
        }
      if (self->bridges->len >= FORWARD_MAX_CONNECTIONS)
        {
          forward_report_say (&self->report,
                              "too many connections through the tunnel (%u); closing a new "
                              "one on %s", self->bridges->len, l->display);
          close (fd);
          continue;
        }
      bridge = bridge_open (self->context, self->transport, l->service, fd, fd, on_bridge_done,
                            self, &error);
      if (bridge == NULL)
        {
          forward_report_say (&self->report, "cannot forward a connection on %s: %s",
                              l->display, error->message);
          continue; /* bridge_open closed fd */
        }
      g_ptr_array_add (self->bridges, bridge);
    }
  return G_SOURCE_CONTINUE;
}

Forwards *
forwards_new (GMainContext *context, const char *const *specs, ForwardsFatalFunc fatal,
              ForwardsSayFunc say,
              gpointer user_data, GError **error)
{
  g_autoptr (Forwards) self = g_new0 (Forwards, 1);

  self->context = g_main_context_ref (context);
  forward_report_init (&self->report, self->context, fatal, say, user_data);
  self->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) listener_free);
  self->bridges = g_ptr_array_new_with_free_func ((GDestroyNotify) bridge_free);
  for (guint i = 0; specs[i]; i++)
    {
      g_autoptr (GError) local_error = NULL;
      Listener *l = g_new0 (Listener, 1);

      l->owner = self;
      g_ptr_array_add (self->listeners, l);
      l->socket = forward_bind ("-L", specs[i], G_SOCKET_TYPE_STREAM, &l->service, &l->display,
                                error);
      if (l->socket == NULL)
        return NULL;
      /* GLib's default backlog (10) overflows when an application opens
       * many connections at once, and the kernel then drops or resets them. */
      g_socket_set_listen_backlog (l->socket, FORWARD_LISTEN_BACKLOG);
      if (!g_socket_listen (l->socket, &local_error))
        {
          g_set_error (error, G_IO_ERROR, local_error->code, "cannot listen on %s: %s",
                       l->display, local_error->message);
          return NULL;
        }
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
      forward_report_say (&self->report, "forwarding %s -> %s", l->display, l->service);
    }
}

void
forwards_free (Forwards *self)
{
  if (self == NULL)
    return;
  forward_report_clear (&self->report);
  g_ptr_array_unref (self->bridges);
  g_ptr_array_unref (self->listeners);
  g_main_context_unref (self->context);
  g_free (self);
}
