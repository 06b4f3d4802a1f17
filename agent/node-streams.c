/* What an app opens through a node's tunnels: streams carried to file
 * descriptors, UDP flows, and the tunnels' numbers; see node.h. */
#include "node-private.h"

#include <unistd.h>


void
link_end_streams (Link *link)
{
  GError *ended;

  ended = g_error_new_literal (P2PTUN_ERROR, P2PTUN_ERROR_CLOSED, "the tunnel ended");
  while (link->fd_streams->len > 0)
    {
      FdStream *s = g_ptr_array_steal_index (link->fd_streams, link->fd_streams->len - 1);
      P2ptunEvent *event = event_new (P2PTUN_EVENT_STREAM_ENDED, link->peer, "%s",
                                             ended->message);

      event->stream = s->id;
      event->error = g_error_copy (ended);
      if (!link->node->closing)
        link_emit (link, event);
      else
        p2ptun_event_free (event);
      fd_stream_free (s);
    }
  g_error_free (ended);
  while (link->flows->len > 0)
    {
      NodeFlow *flow = g_ptr_array_steal_index (link->flows, link->flows->len - 1);

      flow->lost (flow->user_data);
      transport_stream_free (flow->stream);
      g_free (flow);
    }
  while (link->medias->len > 0)
    {
      NodeMedia *media = g_ptr_array_steal_index (link->medias, link->medias->len - 1);

      media->lost (media->user_data);
      media_app_free (media->app);
      g_free (media);
    }
}

/* The newest tunnel up to @peer_id. */
static Link *
node_up_link (Node *node, const char *peer_id, GError **error)
{
  Peer *peer = g_hash_table_lookup (node->peers, peer_id ? peer_id : "");
  GHashTableIter it;
  gpointer value;

  if (peer && peer->link && tunnel_is_up (peer->link->tunnel))
    return peer->link;
  g_hash_table_iter_init (&it, node->links);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (peerid_equal (((Link *) value)->peer, peer_id) && tunnel_is_up (((Link *) value)->tunnel))
      return value;
  g_set_error (error, P2PTUN_ERROR, P2PTUN_ERROR_NO_TUNNEL, "no tunnel up to peer %s",
               peer_id);
  return NULL;
}

void
fd_stream_free (FdStream *s)
{
  bridge_free (s->bridge);
  g_free (s);
}

static void
fd_stream_done (Bridge *bridge, const GError *error, gpointer data)
{
  FdStream *s = data;
  Link *link = s->link;
  P2ptunEvent *event;

  if (error)
    {
      P2ptunError code = g_error_matches (error, BRIDGE_ERROR, BRIDGE_ERROR_REFUSED)
                                 || g_error_matches (error, BRIDGE_ERROR,
                                                     BRIDGE_ERROR_NOT_EXPOSED)
                             ? P2PTUN_ERROR_REFUSED
                             : P2PTUN_ERROR_CLOSED;

      event = event_new (P2PTUN_EVENT_STREAM_ENDED, link->peer, "%s", error->message);
      event->error = g_error_new_literal (P2PTUN_ERROR, code, error->message);
    }
  else
    event = event_new (P2PTUN_EVENT_STREAM_ENDED, link->peer, "stream %u ended", s->id);
  event->stream = s->id;
  g_ptr_array_remove_fast (link->fd_streams, s);
  fd_stream_free (s);
  link_emit (link, event);
}

guint
node_connect_fds (Node *node, const char *peer_id, const char *service, int in_fd, int out_fd,
                  GError **error)
{
  Link *link = node_up_link (node, peer_id, error);
  FdStream *s;

  if (link == NULL)
    {
      /* The descriptors are ours in every case (a failed bridge closes them). */
      if (out_fd != in_fd)
        close (out_fd);
      close (in_fd);
      return 0;
    }
  s = g_new0 (FdStream, 1);
  s->link = link;
  s->id = ++node->next_stream;
  s->bridge = bridge_open (node->context, tunnel_transport (link->tunnel), service, in_fd,
                           out_fd, fd_stream_done, s, error);
  if (s->bridge == NULL)
    {
      g_free (s);
      return 0;
    }
  g_ptr_array_add (link->fd_streams, s);
  return s->id;
}

gboolean
node_expose (Node *node, const char *name, NodeAcceptFunc func, gpointer user_data,
             GError **error)
{
  ExposeLocal *local;

  if (!ctlmsg_name_is_valid (name))
    {
      g_set_error (error, P2PTUN_ERROR, P2PTUN_ERROR_INVALID,
                   "'%s' is not a service name: letters, digits, '.', '_' or '-' (at most %d)",
                   name, CTLMSG_NAME_MAX);
      return FALSE;
    }
  if (g_hash_table_contains (node->locals, name)
      || g_hash_table_contains (node->config->exposed, name))
    {
      g_set_error (error, P2PTUN_ERROR, P2PTUN_ERROR_INVALID, "service '%s' is exposed twice",
                   name);
      return FALSE;
    }
  local = g_new0 (ExposeLocal, 1);
  local->accept = func;
  local->user_data = user_data;
  g_hash_table_insert (node->locals, g_strdup (name), local);
  return TRUE;
}

NodeFlow *
node_open_flow (Node *node, const char *peer_id, const char *service,
                const TransportStreamCallbacks *callbacks, gpointer user_data,
                NodeFlowLostFunc lost, GError **error)
{
  Link *link = node_up_link (node, peer_id, error);
  NodeFlow *flow;

  if (link == NULL)
    return NULL;
  flow = g_new0 (NodeFlow, 1);
  flow->link = link;
  flow->lost = lost;
  flow->user_data = user_data;
  flow->stream = transport_open_datagram (tunnel_transport (link->tunnel), service, callbacks,
                                          user_data, error);
  if (flow->stream == NULL)
    {
      g_free (flow);
      return NULL;
    }
  g_ptr_array_add (link->flows, flow);
  return flow;
}

TransportStream *
node_flow_stream (NodeFlow *flow)
{
  return flow->stream;
}

void
node_flow_close (NodeFlow *flow)
{
  g_ptr_array_remove_fast (flow->link->flows, flow);
  transport_stream_free (flow->stream);
  g_free (flow);
}

static void
node_media_packet (const guint8 *packet, gsize len, gpointer data)
{
  NodeMedia *media = data;

  media->packet (packet, len, media->user_data);
}

static void
node_media_ended (const GError *error, gpointer data)
{
  NodeMedia *media = data;

  media->ended (error, media->user_data);
}

static void
node_media_say (const char *line, gpointer data)
{
  NodeMedia *media = data;

  link_emit (media->link, event_new (P2PTUN_EVENT_NOTICE, media->link->peer, "%s", line));
}

NodeMedia *
node_open_media (Node *node, const char *peer_id, const char *service,
                 MediaAppPacketFunc packet, MediaAppEndedFunc ended, NodeFlowLostFunc lost,
                 gpointer user_data, GError **error)
{
  Link *link = node_up_link (node, peer_id, error);
  NodeMedia *media;

  if (link == NULL)
    return NULL;
  media = g_new0 (NodeMedia, 1);
  media->link = link;
  media->packet = packet;
  media->ended = ended;
  media->lost = lost;
  media->user_data = user_data;
  media->app = media_app_open (node->context, link->tunnel, service, node_media_packet,
                               node_media_ended, node_media_say, media, error);
  if (media->app == NULL)
    {
      g_free (media);
      return NULL;
    }
  g_ptr_array_add (link->medias, media);
  return media;
}

MediaApp *
node_media_app (NodeMedia *media)
{
  return media->app;
}

void
node_media_close (NodeMedia *media)
{
  g_ptr_array_remove_fast (media->link->medias, media);
  media_app_free (media->app);
  g_free (media);
}

GPtrArray *
node_statuses (Node *node)
{
  GPtrArray *all = g_ptr_array_new_with_free_func ((GDestroyNotify) p2ptun_status_free);
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, node->links);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      Link *link = value;
      P2ptunStatus *status = g_new0 (P2ptunStatus, 1);
      Transport *transport = tunnel_transport (link->tunnel);

      g_strlcpy (status->peer_id, link->peer, sizeof status->peer_id);
      status->up = tunnel_is_up (link->tunnel);
      status->has_path = status->up;
      if (status->up)
        status->path.path = *tunnel_path (link->tunnel);
      status->rtt_us = link->rtt_us;
      transport_get_bytes (transport, &status->bytes_sent, &status->bytes_received);
      status->streams = transport_n_streams (transport);
      status->generation = tunnel_generation (link->tunnel);
      status->restarts = tunnel_restarts (link->tunnel);
      status->outages = tunnel_stalls (link->tunnel);
      status->reconnects = link->reconnects;
      transport_get_packets (transport, &status->packets_sent, &status->packets_received,
                             &status->packets_lost);
      status->udp_flows = transport_n_flows (transport);
      if (status->up && link->up_at != 0)
        status->uptime_us = g_get_monotonic_time () - link->up_at;
      status->path_changes = link->path_changes;
      g_ptr_array_add (all, status);
    }
  return all;
}

void
node_ping (Node *node)
{
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, node->links);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (tunnel_is_up (((Link *) value)->tunnel))
      transport_ping (tunnel_transport (((Link *) value)->tunnel));
}

