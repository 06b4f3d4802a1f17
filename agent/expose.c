/* The services a peer's tunnel opens; see expose.h. */
#include "expose.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge.h"
#include "ctlmsg.h"
#include "media.h"
#include "udpservice.h"

struct _Expose
{
  GMainContext *context;
  char peer[PEERID_SIZE];
  const P2ptunConfig *config;
  GHashTable *locals;
  ExposeEmitFunc emit;
  gpointer user_data;
  GPtrArray *bridges;      /* Bridge* */
  GPtrArray *connects;     /* ServiceConnect* in flight */
  GPtrArray *udp_services; /* UdpService*: the peer's UDP flows */
  GPtrArray *media_services; /* MediaService*: the peer's media leg (one at most) */
};

typedef enum
{
  KIND_TCP,
  KIND_UDP,
  KIND_RTP,
} ServiceKind;

static const struct
{
  const char *name, *option, *what;
} kinds[] = {
  [KIND_TCP] = { "TCP", "-L", "stream" },
  [KIND_UDP] = { "UDP", "-U", "udp flow" },
  [KIND_RTP] = { "RTP", "-M", "media leg" },
};

typedef struct
{
  Expose *expose;
  TransportStream *stream;
  GCancellable *cancellable;
  char *service;
} ServiceConnect;

static void
service_connect_free (ServiceConnect *c)
{
  g_cancellable_cancel (c->cancellable);
  g_object_unref (c->cancellable);
  transport_stream_free (c->stream);
  g_free (c->service);
  g_free (c);
}

Expose *
expose_new (GMainContext *context, const char *peer_id, const P2ptunConfig *config,
            GHashTable *locals, ExposeEmitFunc emit, gpointer user_data)
{
  Expose *self = g_new0 (Expose, 1);

  self->context = context;
  g_strlcpy (self->peer, peer_id, sizeof self->peer);
  self->config = config;
  self->locals = locals;
  self->emit = emit;
  self->user_data = user_data;
  self->bridges = g_ptr_array_new_with_free_func ((GDestroyNotify) bridge_free);
  self->connects = g_ptr_array_new_with_free_func ((GDestroyNotify) service_connect_free);
  self->udp_services = g_ptr_array_new_with_free_func ((GDestroyNotify) udp_service_free);
  self->media_services = g_ptr_array_new_with_free_func ((GDestroyNotify) media_service_free);
  return self;
}

void
expose_free (Expose *self)
{
  if (self == NULL)
    return;
  g_ptr_array_unref (self->connects);
  g_ptr_array_unref (self->bridges);
  g_ptr_array_unref (self->udp_services);
  g_ptr_array_unref (self->media_services);
  g_free (self);
}

static void
expose_refuse (Expose *self, TransportStream *stream, guint8 code, const char *what,
               const char *text)
{
  self->emit (event_new (P2PTUN_EVENT_REFUSED, self->peer, "refused a %s from %s: %s",
                                what, self->peer, text),
              self->user_data);
  transport_stream_refuse (stream, code, text);
}

static void
bridge_done (Bridge *bridge, const GError *error, gpointer data)
{
  Expose *self = data;

  if (error)
    g_debug ("stream with %s ended: %s", self->peer, error->message);
  g_ptr_array_remove_fast (self->bridges, bridge);
}

static void
expose_bridge (Expose *self, TransportStream *stream, int fd)
{
  g_ptr_array_add (self->bridges,
                   bridge_accept (self->context, stream, fd, fd, bridge_done, self));
}

static void
on_service_connected (GObject *source, GAsyncResult *result, gpointer data)
{
  ServiceConnect *c = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketConnection) conn = NULL;
  Expose *self;
  guint index;
  int fd;

  conn = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (source), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return; /* the tunnel is gone, and so is c */
  self = c->expose;
  /* Ours from here on: take it out without freeing it. */
  if (g_ptr_array_find (self->connects, c, &index))
    g_ptr_array_steal_index_fast (self->connects, index);
  if (conn == NULL)
    {
      g_autofree char *text = g_strdup_printf ("service %s is not reachable: %s", c->service,
                                               error->message);

      expose_refuse (self, g_steal_pointer (&c->stream), CTLMSG_REFUSE_CONNECT_FAILED,
                     "stream", text);
      service_connect_free (c);
      return;
    }
  fd = dup (g_socket_get_fd (g_socket_connection_get_socket (conn)));
  if (fd < 0)
    transport_stream_refuse (g_steal_pointer (&c->stream), CTLMSG_REFUSE_CONNECT_FAILED,
                             "out of file descriptors");
  else
    expose_bridge (self, g_steal_pointer (&c->stream), fd);
  service_connect_free (c);
}

static void
udp_service_done (UdpService *service, const GError *error, gpointer data)
{
  Expose *self = data;

  if (error)
    g_debug ("udp flow with %s ended: %s", self->peer, error->message);
  g_ptr_array_remove_fast (self->udp_services, service);
}

static void
media_service_done (MediaService *service, const GError *error, gpointer data)
{
  Expose *self = data;

  if (error)
    g_debug ("media leg with %s ended: %s", self->peer, error->message);
  g_ptr_array_remove_fast (self->media_services, service);
}

static void
udp_service_say (const char *line, gpointer data)
{
  Expose *self = data;

  self->emit (event_new (P2PTUN_EVENT_NOTICE, self->peer, "%s", line), self->user_data);
}

static void
expose_local (Expose *self, TransportStream *stream, const char *service,
              const ExposeLocal *local)
{
  int fds[2];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
    {
      g_autofree char *text = g_strdup_printf ("service %s: %s", service, g_strerror (errno));

      expose_refuse (self, stream, CTLMSG_REFUSE_CONNECT_FAILED, "stream", text);
      return;
    }
  expose_bridge (self, stream, fds[0]);
  local->accept (self->peer, fds[1], local->user_data);
}

void
expose_open_request (Expose *self, Tunnel *tunnel, TransportStream *stream, const char *service)
{
  const char *target = g_hash_table_lookup (self->config->exposed, service);
  const ExposeLocal *local = g_hash_table_lookup (self->locals, service);
  ServiceKind kind = g_hash_table_contains (self->config->exposed_udp, service)   ? KIND_UDP
                     : g_hash_table_contains (self->config->exposed_rtp, service) ? KIND_RTP
                                                                                   : KIND_TCP;
  ServiceKind wants = transport_stream_is_media (stream)      ? KIND_RTP
                      : transport_stream_is_datagram (stream) ? KIND_UDP
                                                              : KIND_TCP;
  const char *what = kinds[wants].what;
  g_autoptr (GSocketClient) client = NULL;
  ServiceConnect *c;

  if (target == NULL && local == NULL)
    {
      g_autofree char *text = g_strdup_printf ("service '%s' is not exposed by this agent",
                                               service);

      self->emit (event_new (P2PTUN_EVENT_REFUSED, self->peer,
                                    "refused a stream from %s: service '%s' is not exposed",
                                    self->peer, service),
                  self->user_data);
      transport_stream_refuse (stream, CTLMSG_REFUSE_NOT_EXPOSED, text);
      return;
    }
  if (kind != wants)
    {
      g_autofree char *text = g_strdup_printf ("service '%s' is a%s %s service (forward it with %s)",
                                               service, kind == KIND_RTP ? "n" : "",
                                               kinds[kind].name, kinds[kind].option);

      expose_refuse (self, stream, CTLMSG_REFUSE_WRONG_KIND, what, text);
      return;
    }
  if (local)
    {
      expose_local (self, stream, service, local);
      return;
    }
  if (kind == KIND_RTP)
    {
      g_ptr_array_add (self->media_services,
                       media_service_open (self->context, tunnel, stream, service, target,
                                           media_service_done, udp_service_say, self));
      return;
    }
  if (kind == KIND_UDP)
    {
      g_ptr_array_add (self->udp_services,
                       udp_service_open (self->context, stream, service, target,
                                         udp_service_done, udp_service_say, self));
      return;
    }
  c = g_new0 (ServiceConnect, 1);
  c->expose = self;
  c->stream = stream;
  c->service = g_strdup (service);
  c->cancellable = g_cancellable_new ();
  g_ptr_array_add (self->connects, c);
  client = g_socket_client_new ();
  g_socket_client_set_timeout (client, 10);
  /* The exposed service is reached as given, never through a proxy that
   * the desktop's or environment's settings name. */
  g_socket_client_set_enable_proxy (client, FALSE);
  g_socket_client_connect_to_host_async (client, target, 0, c->cancellable,
                                         on_service_connected, c);
}
