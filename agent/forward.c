/* Local port forwards; see forward.h. */
#include "forward.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge.h"
#include "ctlmsg.h"

/* Connections through one forward at once, bridged or waiting for a
 * tunnel: bounded by the transport too. */
#define FORWARD_MAX_CONNECTIONS TRANSPORT_MAX_STREAMS
#define FORWARD_LISTEN_BACKLOG 256

typedef struct
{
  Forwards *owner;
  GSocket *socket;
  GSource *source;
  char *service;
  char *display;      /* "127.0.0.1:8000" */
  GPtrArray *bridges; /* Bridge*, over the current transport */
  gboolean announced; /* "forwarding ..." told */
} Listener;

/* A connection accepted while there is no tunnel. */
typedef struct
{
  Listener *l;
  int fd;
  gint64 deadline; /* monotonic time it is reset at */
  char *from;      /* the client, "127.0.0.1:54321" */
} Waiter;

struct _Forwards
{
  GMainContext *context;
  GPtrArray *listeners; /* Listener* */
  Transport *transport; /* the current tunnel's, or NULL */
  guint wait_s;
  GQueue waiting;      /* Waiter*, in the order they came: so their deadlines too */
  GSource *wait_timer; /* the first waiter's deadline; only while one waits */
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

/* Closes an accepted connection with a reset (SO_LINGER 0 sends RST): one
 * the tunnel cannot carry must not look to its client like a service that
 * answered nothing and closed in order (bridge_free does the same). */
static void
forward_reset_fd (int fd)
{
  struct linger reset = { .l_onoff = 1, .l_linger = 0 };

  (void) setsockopt (fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  close (fd);
}

/* "127.0.0.1:54321" or "[::1]:54321", for the user. */
static char *
forward_peer_to_string (const struct sockaddr_storage *addr, socklen_t len)
{
  g_autoptr (GSocketAddress) sa = g_socket_address_new_from_native ((gpointer) addr, len);
  g_autofree char *ip = NULL;
  GInetSocketAddress *isa;
  GInetAddress *inet;
  gboolean v6;

  if (sa == NULL || !G_IS_INET_SOCKET_ADDRESS (sa))
    return g_strdup ("an unknown address");
  isa = G_INET_SOCKET_ADDRESS (sa);
  inet = g_inet_socket_address_get_address (isa);
  ip = g_inet_address_to_string (inet);
  v6 = g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6;
  return g_strdup_printf (v6 ? "[%s]:%u" : "%s:%u", ip, g_inet_socket_address_get_port (isa));
}

static void
waiter_free (Waiter *w)
{
  if (w->fd >= 0)
    forward_reset_fd (w->fd);
  g_free (w->from);
  g_free (w);
}

static void
listener_free (Listener *l)
{
  if (l->source)
    {
      g_source_destroy (l->source);
      g_source_unref (l->source);
    }
  g_ptr_array_unref (l->bridges);
  g_clear_object (&l->socket);
  g_free (l->service);
  g_free (l->display);
  g_free (l);
}

static void
on_bridge_done (Bridge *bridge, const GError *error, gpointer data)
{
  Listener *l = data;
  Forwards *self = l->owner;

  /* A forward to a service the peer does not have can never work. */
  if (g_error_matches (error, BRIDGE_ERROR, BRIDGE_ERROR_NOT_EXPOSED))
    forward_report_fatal (&self->report, g_error_copy (error));
  else if (error)
    forward_report_say (&self->report, "forwarded connection failed: %s", error->message);
  g_ptr_array_remove_fast (l->bridges, bridge);
}

/* Bridged and waiting: what FORWARD_MAX_CONNECTIONS bounds. */
static guint
forwards_n_connections (Forwards *self)
{
  guint n = self->waiting.length;

  for (guint i = 0; i < self->listeners->len; i++)
    n += ((Listener *) self->listeners->pdata[i])->bridges->len;
  return n;
}

/* Opens a stream on the current transport for an accepted connection. */
static void
forwards_bridge (Forwards *self, Listener *l, int fd)
{
  g_autoptr (GError) error = NULL;
  Bridge *bridge = bridge_open (self->context, self->transport, l->service, fd, fd,
                                on_bridge_done, l, &error);

  if (bridge == NULL)
    {
      forward_report_say (&self->report, "cannot forward a connection on %s: %s",
                          l->display, error->message);
      return; /* bridge_open closed fd */
    }
  g_ptr_array_add (l->bridges, bridge);
}

static gboolean on_wait_timer (gpointer data);

/* Arms the timer for the first waiter's deadline, or drops it when none
 * waits. The waiters came in order and all wait as long: the first one's
 * deadline is the earliest. */
static void
forwards_arm_wait_timer (Forwards *self)
{
  Waiter *w = g_queue_peek_head (&self->waiting);
  gint64 now, ms;

  if (self->wait_timer)
    {
      g_source_destroy (self->wait_timer);
      g_clear_pointer (&self->wait_timer, g_source_unref);
    }
  if (w == NULL)
    return;
  now = g_get_monotonic_time ();
  ms = w->deadline > now ? (w->deadline - now + 999) / 1000 : 0;
  self->wait_timer = g_timeout_source_new ((guint) MIN (ms, (gint64) G_MAXUINT));
  g_source_set_callback (self->wait_timer, on_wait_timer, self, NULL);
  g_source_attach (self->wait_timer, self->context);
}

static gboolean
on_wait_timer (gpointer data)
{
  Forwards *self = data;
  gint64 now = g_get_monotonic_time ();
  Waiter *w;

  g_clear_pointer (&self->wait_timer, g_source_unref); /* removed on return */
  while ((w = g_queue_peek_head (&self->waiting)) != NULL && w->deadline <= now)
    {
      g_queue_pop_head (&self->waiting);
      forward_report_say (&self->report,
                          "%s -> %s: connection from %s refused: "
                          "no tunnel to the peer for %u s",
                          w->l->display, w->l->service, w->from, self->wait_s);
      waiter_free (w);
    }
  forwards_arm_wait_timer (self);
  return G_SOURCE_REMOVE;
}

static void
forwards_wait (Forwards *self, Listener *l, int fd, const struct sockaddr_storage *addr,
               socklen_t addr_len)
{
  Waiter *w = g_new0 (Waiter, 1);

  w->l = l;
  w->fd = fd;
  w->deadline = g_get_monotonic_time () + (gint64) self->wait_s * G_USEC_PER_SEC;
  w->from = forward_peer_to_string (addr, addr_len);
  g_queue_push_tail (&self->waiting, w);
  if (self->wait_timer == NULL)
    forwards_arm_wait_timer (self);
}

static gboolean
on_accept (GSocket *socket, GIOCondition cond, gpointer data)
{
  Listener *l = data;
  Forwards *self = l->owner;

  for (int i = 0; i < 16; i++)
    {
      struct sockaddr_storage addr;
      socklen_t addr_len = sizeof addr;
      int fd = accept4 (g_socket_get_fd (socket), (struct sockaddr *) &addr, &addr_len,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
      guint n;

      if (fd < 0)
        {
          if (errno != EAGAIN && errno != EINTR)
            forward_report_say (&self->report, "accept on %s failed: %s", l->display,
                                g_strerror (errno));
          break;
        }
      n = forwards_n_connections (self);
      if (n >= FORWARD_MAX_CONNECTIONS)
        {
          if (self->transport)
            forward_report_say (&self->report,
                                "too many connections through the tunnel (%u); "
                                "closing a new one on %s", n, l->display);
          else
            {
              g_autofree char *from = forward_peer_to_string (&addr, addr_len);

              forward_report_say (&self->report,
                                  "%s -> %s: connection from %s refused: "
                                  "%u connections wait for a tunnel to the peer already",
                                  l->display, l->service, from, n);
            }
          forward_reset_fd (fd);
          continue;
        }
      if (self->transport)
        forwards_bridge (self, l, fd);
      else
        forwards_wait (self, l, fd, &addr, addr_len);
    }
  return G_SOURCE_CONTINUE;
}

Forwards *
forwards_new (GMainContext *context, const char *const *specs, guint wait_s,
              ForwardsFatalFunc fatal, ForwardsSayFunc say, gpointer user_data,
              GError **error)
{
  g_autoptr (Forwards) self = g_new0 (Forwards, 1);

  self->context = g_main_context_ref (context);
  self->wait_s = wait_s > 0 ? wait_s : FORWARD_WAIT_S;
  g_queue_init (&self->waiting);
  forward_report_init (&self->report, self->context, fatal, say, user_data);
  self->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) listener_free);
  for (guint i = 0; specs[i]; i++)
    {
      g_autoptr (GError) local_error = NULL;
      Listener *l = g_new0 (Listener, 1);

      l->owner = self;
      l->bridges = g_ptr_array_new_with_free_func ((GDestroyNotify) bridge_free);
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
  /* Accepting before the first tunnel: a connection made at once waits
   * here, bounded, rather than in the kernel's backlog for ever. */
  for (guint i = 0; i < self->listeners->len; i++)
    {
      Listener *l = self->listeners->pdata[i];

      l->source = g_socket_create_source (l->socket, G_IO_IN, NULL);
      g_source_set_callback (l->source, (GSourceFunc) (void (*) (void)) on_accept, l, NULL);
      g_source_attach (l->source, self->context);
    }
  return g_steal_pointer (&self);
}

void
forwards_start (Forwards *self, Transport *transport)
{
  Waiter *w;

  g_return_if_fail (transport != NULL);
  g_return_if_fail (self->transport == NULL || self->transport == transport);
  self->transport = transport;
  for (guint i = 0; i < self->listeners->len; i++)
    {
      Listener *l = self->listeners->pdata[i];

      if (l->announced)
        continue;
      l->announced = TRUE;
      forward_report_say (&self->report, "forwarding %s -> %s", l->display, l->service);
    }
  while ((w = g_queue_pop_head (&self->waiting)) != NULL)
    {
      forwards_bridge (self, w->l, w->fd);
      w->fd = -1;
      waiter_free (w);
    }
  forwards_arm_wait_timer (self); /* none waits: drops it */
}

void
forwards_stop (Forwards *self, const char *why)
{
  if (self->transport == NULL)
    return;
  for (guint i = 0; i < self->listeners->len; i++)
    {
      Listener *l = self->listeners->pdata[i];
      guint n = l->bridges->len;

      /* bridge_free resets what did not end in order, and frees the stream
       * while the transport is still there. */
      g_ptr_array_set_size (l->bridges, 0);
      if (n > 0)
        forward_report_say (&self->report, "%s -> %s: %u connection%s reset (%s)",
                            l->display, l->service, n, n == 1 ? "" : "s", why);
    }
  self->transport = NULL;
}

void
forwards_free (Forwards *self)
{
  if (self == NULL)
    return;
  forward_report_clear (&self->report);
  if (self->wait_timer)
    {
      g_source_destroy (self->wait_timer);
      g_source_unref (self->wait_timer);
    }
  g_queue_clear_full (&self->waiting, (GDestroyNotify) waiter_free);
  if (self->listeners)
    g_ptr_array_unref (self->listeners);
  g_main_context_unref (self->context);
  g_free (self);
}
