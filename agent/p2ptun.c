/* libp2ptun's public face: P2ptunNode and P2ptunFlow over the node (node.c).
 * Events from the node are queued here and dispatched from the context, so
 * that no callback runs inside a p2ptun_*() call. */
#include "p2ptun-private.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "node.h"

struct _P2ptunNode
{
  GObject parent;
  GMainContext *context;
  P2ptunIdentity *identity;
  Node *node;
  GQueue events;         /* P2ptunEvent* waiting for dispatch */
  GSource *dispatch;
  P2ptunEventFunc func;
  gpointer func_data;
  GDestroyNotify func_destroy;
  GPtrArray *services;   /* Service*: in-process services */
};

G_DEFINE_FINAL_TYPE (P2ptunNode, p2ptun_node, G_TYPE_OBJECT)

typedef struct
{
  P2ptunNode *node; /* not a reference: services die with the node */
  P2ptunAcceptFunc func;
  gpointer user_data;
  GDestroyNotify destroy;
} Service;

static void
service_free (Service *s)
{
  if (s->destroy)
    s->destroy (s->user_data);
  g_free (s);
}

static gboolean
on_dispatch (gpointer data)
{
  P2ptunNode *self = g_object_ref (data);

  /* Events that a callback causes wait for the next round; the callback may
   * drop the app's reference: ours keeps the node until the round ends. */
  for (guint n = self->events.length; n > 0 && self->func; n--)
    {
      P2ptunEvent *event = g_queue_pop_head (&self->events);

      self->func (self, event, self->func_data);
      p2ptun_event_free (event);
    }
  if (self->events.length == 0 || self->func == NULL)
    {
      /* Finalizing destroys a dispatch source that is still set. */
      g_clear_pointer (&self->dispatch, g_source_unref);
      g_object_unref (self);
      return G_SOURCE_REMOVE;
    }
  g_object_unref (self);
  return G_SOURCE_CONTINUE;
}

static void
p2ptun_node_schedule (P2ptunNode *self)
{
  if (self->dispatch || self->func == NULL || self->events.length == 0)
    return;
  self->dispatch = g_idle_source_new ();
  g_source_set_priority (self->dispatch, G_PRIORITY_DEFAULT);
  g_source_set_callback (self->dispatch, on_dispatch, self, NULL);
  g_source_attach (self->dispatch, self->context);
}

static void
on_node_event (P2ptunEvent *event, gpointer data)
{
  P2ptunNode *self = data;

  g_debug ("event %d: %s", event->kind, event->message);
  g_queue_push_tail (&self->events, event);
  p2ptun_node_schedule (self);
}

static void
p2ptun_node_finalize (GObject *object)
{
  P2ptunNode *self = P2PTUN_NODE (object);

  if (self->dispatch)
    {
      g_source_destroy (self->dispatch);
      g_source_unref (self->dispatch);
    }
  node_free (self->node);
  g_queue_clear_full (&self->events, (GDestroyNotify) p2ptun_event_free);
  g_ptr_array_unref (self->services);
  if (self->func_destroy)
    self->func_destroy (self->func_data);
  p2ptun_identity_unref (self->identity);
  g_main_context_unref (self->context);
  G_OBJECT_CLASS (p2ptun_node_parent_class)->finalize (object);
}

static void
p2ptun_node_class_init (P2ptunNodeClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = p2ptun_node_finalize;
}

static void
p2ptun_node_init (P2ptunNode *self)
{
  g_queue_init (&self->events);
  self->services = g_ptr_array_new_with_free_func ((GDestroyNotify) service_free);
}

P2ptunNode *
p2ptun_node_new (GMainContext *context, P2ptunIdentity *identity, P2ptunConfig *config,
                 GError **error)
{
  g_autoptr (P2ptunNode) self = NULL;

  g_return_val_if_fail (identity != NULL && config != NULL, NULL);
  self = g_object_new (P2PTUN_TYPE_NODE, NULL);
  self->context = context ? g_main_context_ref (context) : g_main_context_ref_thread_default ();
  self->identity = p2ptun_identity_ref (identity);
  self->node = node_new (self->context, identity->identity, config, on_node_event, self, error);
  if (self->node == NULL)
    return NULL;
  return g_steal_pointer (&self);
}

void
p2ptun_node_set_event_func (P2ptunNode *self, P2ptunEventFunc func, gpointer user_data,
                            GDestroyNotify destroy)
{
  g_return_if_fail (P2PTUN_IS_NODE (self));
  if (self->func_destroy)
    self->func_destroy (self->func_data);
  self->func = func;
  self->func_data = user_data;
  self->func_destroy = destroy;
  p2ptun_node_schedule (self);
}

void
p2ptun_node_start (P2ptunNode *self)
{
  g_return_if_fail (P2PTUN_IS_NODE (self));
  node_start (self->node);
}

gboolean
p2ptun_node_pair (P2ptunNode *self, const char *peer_id, GError **error)
{
  g_return_val_if_fail (P2PTUN_IS_NODE (self), FALSE);
  return node_pair (self->node, peer_id, error);
}

gboolean
p2ptun_node_forward (P2ptunNode *self, const char *peer_id, P2ptunServiceKind kind,
                     const char *spec, GError **error)
{
  g_return_val_if_fail (P2PTUN_IS_NODE (self), FALSE);
  return node_forward (self->node, peer_id, kind, spec, error);
}

guint
p2ptun_node_connect_fds (P2ptunNode *self, const char *peer_id, const char *service, int in_fd,
                         int out_fd, GError **error)
{
  g_return_val_if_fail (P2PTUN_IS_NODE (self), 0);
  return node_connect_fds (self->node, peer_id, service, in_fd, out_fd, error);
}

int
p2ptun_node_open_fd (P2ptunNode *self, const char *peer_id, const char *service, guint *stream,
                     GError **error)
{
  int fds[2];
  guint id;

  g_return_val_if_fail (P2PTUN_IS_NODE (self), -1);
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "socketpair: %s",
                   g_strerror (saved));
      return -1;
    }
  id = p2ptun_node_connect_fds (self, peer_id, service, fds[0], fds[0], error);
  if (id == 0)
    {
      close (fds[1]);
      return -1;
    }
  if (stream)
    *stream = id;
  return fds[1];
}

static void
on_service_accept (const char *peer_id, int fd, gpointer data)
{
  Service *s = data;

  s->func (s->node, peer_id, fd, s->user_data);
}

gboolean
p2ptun_node_expose (P2ptunNode *self, const char *name, P2ptunAcceptFunc func,
                    gpointer user_data, GDestroyNotify destroy, GError **error)
{
  Service *s;

  g_return_val_if_fail (P2PTUN_IS_NODE (self) && func != NULL, FALSE);
  s = g_new0 (Service, 1);
  s->node = self;
  s->func = func;
  s->user_data = user_data;
  s->destroy = destroy;
  if (!node_expose (self->node, name, on_service_accept, s, error))
    {
      s->destroy = NULL; /* not ours on failure */
      service_free (s);
      return FALSE;
    }
  g_ptr_array_add (self->services, s);
  return TRUE;
}

const char *
p2ptun_node_get_peer_id (P2ptunNode *self)
{
  g_return_val_if_fail (P2PTUN_IS_NODE (self), NULL);
  return node_peer_id (self->node);
}

GPtrArray *
p2ptun_node_get_statuses (P2ptunNode *self)
{
  g_return_val_if_fail (P2PTUN_IS_NODE (self), NULL);
  return node_statuses (self->node);
}

P2ptunStatus *
p2ptun_node_get_status (P2ptunNode *self, const char *peer_id)
{
  g_autoptr (GPtrArray) all = NULL;
  P2ptunStatus *found = NULL;

  g_return_val_if_fail (P2PTUN_IS_NODE (self), NULL);
  all = node_statuses (self->node);
  /* An up tunnel before one still on its way. */
  for (guint i = 0; i < all->len; i++)
    {
      P2ptunStatus *s = all->pdata[i];

      if (g_strcmp0 (s->peer_id, peer_id) == 0 && (found == NULL || (s->up && !found->up)))
        found = s;
    }
  return found ? p2ptun_status_copy (found) : NULL;
}

void
p2ptun_node_network_changed (P2ptunNode *self)
{
  g_return_if_fail (P2PTUN_IS_NODE (self));
  node_ping (self->node);
}

void
p2ptun_node_close (P2ptunNode *self)
{
  g_return_if_fail (P2PTUN_IS_NODE (self));
  node_close (self->node);
}

/* ---- media legs ---- */

struct _P2ptunMedia
{
  GObject parent;
  NodeMedia *media; /* NULL once the leg ended */
  P2ptunPacketFunc func;
  gpointer user_data;
  GDestroyNotify destroy;
};

G_DEFINE_FINAL_TYPE (P2ptunMedia, p2ptun_media, G_TYPE_OBJECT)

static void
p2ptun_media_finalize (GObject *object)
{
  P2ptunMedia *self = P2PTUN_MEDIA (object);

  if (self->media)
    node_media_close (self->media);
  if (self->destroy)
    self->destroy (self->user_data);
  G_OBJECT_CLASS (p2ptun_media_parent_class)->finalize (object);
}

static void
p2ptun_media_class_init (P2ptunMediaClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = p2ptun_media_finalize;
}

static void
p2ptun_media_init (P2ptunMedia *self)
{
}

static void
media_on_packet (const guint8 *buf, gsize len, gpointer data)
{
  P2ptunMedia *self = g_object_ref (data);
  g_autoptr (GBytes) packet = g_bytes_new (buf, len);

  self->func (self, packet, self->user_data);
  g_object_unref (self);
}

static void
media_on_ended (const GError *error, gpointer data)
{
  P2ptunMedia *self = data;

  g_debug ("media leg ended: %s", error->message);
  g_clear_pointer (&self->media, node_media_close);
}

static void
media_on_lost (gpointer data)
{
  P2ptunMedia *self = data;

  self->media = NULL; /* the node frees it */
}

P2ptunMedia *
p2ptun_node_open_media (P2ptunNode *node, const char *peer_id, const char *service,
                        P2ptunPacketFunc func, gpointer user_data, GDestroyNotify destroy,
                        GError **error)
{
  P2ptunMedia *self;

  g_return_val_if_fail (P2PTUN_IS_NODE (node) && func != NULL, NULL);
  self = g_object_new (P2PTUN_TYPE_MEDIA, NULL);
  self->media = node_open_media (node->node, peer_id, service, media_on_packet, media_on_ended,
                                 media_on_lost, self, error);
  if (self->media == NULL)
    {
      g_object_unref (self);
      return NULL;
    }
  self->func = func;
  self->user_data = user_data;
  self->destroy = destroy;
  return self;
}

P2ptunSendResult
p2ptun_media_send (P2ptunMedia *self, const guint8 *packet, gsize len)
{
  g_return_val_if_fail (P2PTUN_IS_MEDIA (self), P2PTUN_SEND_CLOSED);
  if (self->media == NULL)
    return P2PTUN_SEND_CLOSED;
  switch (media_app_send (node_media_app (self->media), packet, len))
    {
    case MEDIA_SEND_OK:
      return P2PTUN_SEND_OK;
    case MEDIA_SEND_TOO_BIG:
      return P2PTUN_SEND_TOO_BIG;
    case MEDIA_SEND_OVER_RATE:
      return P2PTUN_SEND_QUEUE_FULL;
    case MEDIA_SEND_INVALID:
      return P2PTUN_SEND_INVALID;
    case MEDIA_SEND_CLOSED:
    default:
      return P2PTUN_SEND_CLOSED;
    }
}

/* ---- flows ---- */

struct _P2ptunFlow
{
  GObject parent;
  NodeFlow *flow; /* NULL once the flow ended */
  P2ptunDatagramFunc func;
  gpointer user_data;
  GDestroyNotify destroy;
};

G_DEFINE_FINAL_TYPE (P2ptunFlow, p2ptun_flow, G_TYPE_OBJECT)

static void
p2ptun_flow_finalize (GObject *object)
{
  P2ptunFlow *self = P2PTUN_FLOW (object);

  if (self->flow)
    node_flow_close (self->flow);
  if (self->destroy)
    self->destroy (self->user_data);
  G_OBJECT_CLASS (p2ptun_flow_parent_class)->finalize (object);
}

static void
p2ptun_flow_class_init (P2ptunFlowClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = p2ptun_flow_finalize;
}

static void
p2ptun_flow_init (P2ptunFlow *self)
{
}

static void
flow_on_datagram (TransportStream *stream, const guint8 *buf, gsize len, gpointer data)
{
  P2ptunFlow *self = g_object_ref (data);
  g_autoptr (GBytes) datagram = g_bytes_new (buf, len);

  self->func (self, datagram, self->user_data);
  g_object_unref (self);
}

static void
flow_on_readable (TransportStream *stream, gpointer data)
{
  P2ptunFlow *self = data;

  /* A flow carries no bytes; its stream's end is the flow's. */
  if (self->flow && transport_stream_drain (stream))
    g_clear_pointer (&self->flow, node_flow_close);
}

static void
flow_on_closed (TransportStream *stream, const GError *error, gpointer data)
{
  P2ptunFlow *self = data;

  g_clear_pointer (&self->flow, node_flow_close);
}

static void
flow_on_refused (TransportStream *stream, guint8 code, const char *text, gpointer data)
{
  P2ptunFlow *self = data;

  g_debug ("flow refused: %s", text);
  g_clear_pointer (&self->flow, node_flow_close);
}

static void
flow_on_lost (gpointer data)
{
  P2ptunFlow *self = data;

  self->flow = NULL; /* the node frees it */
}

static const TransportStreamCallbacks flow_callbacks = {
  .refused = flow_on_refused,
  .readable = flow_on_readable,
  .closed = flow_on_closed,
  .datagram = flow_on_datagram,
};

P2ptunFlow *
p2ptun_node_open_flow (P2ptunNode *node, const char *peer_id, const char *service,
                       P2ptunDatagramFunc func, gpointer user_data, GDestroyNotify destroy,
                       GError **error)
{
  P2ptunFlow *self;

  g_return_val_if_fail (P2PTUN_IS_NODE (node) && func != NULL, NULL);
  self = g_object_new (P2PTUN_TYPE_FLOW, NULL);
  self->flow = node_open_flow (node->node, peer_id, service, &flow_callbacks, self,
                               flow_on_lost, error);
  if (self->flow == NULL)
    {
      g_object_unref (self);
      return NULL;
    }
  self->func = func;
  self->user_data = user_data;
  self->destroy = destroy;
  return self;
}

P2ptunSendResult
p2ptun_flow_send (P2ptunFlow *self, const guint8 *data, gsize len)
{
  g_return_val_if_fail (P2PTUN_IS_FLOW (self), P2PTUN_SEND_CLOSED);
  if (self->flow == NULL)
    return P2PTUN_SEND_CLOSED;
  switch (transport_stream_send_datagram (node_flow_stream (self->flow), data, len))
    {
    case TRANSPORT_DATAGRAM_OK:
      return P2PTUN_SEND_OK;
    case TRANSPORT_DATAGRAM_TOO_BIG:
      return P2PTUN_SEND_TOO_BIG;
    case TRANSPORT_DATAGRAM_QUEUE_FULL:
      return P2PTUN_SEND_QUEUE_FULL;
    case TRANSPORT_DATAGRAM_CLOSED:
    default:
      return P2PTUN_SEND_CLOSED;
    }
}

gsize
p2ptun_flow_get_max_datagram (P2ptunFlow *self)
{
  g_return_val_if_fail (P2PTUN_IS_FLOW (self), 0);
  return self->flow ? transport_stream_datagram_max (node_flow_stream (self->flow)) : 0;
}
