/* What keeps a node's tunnels going when the peer or the network goes
 * away: reconnecting to paired peers, silent sessions that a peer's new one
 * replaces, and network changes that restart ICE. See node-private.h. */
#include "node-private.h"

#include <string.h>

/* Reconnecting to a paired peer whose tunnel ended: the first attempt
 * after 1 s, each next one after twice as long, up to 30 s, each +-25 %
 * so that the agents of many users do not come back in step; back to 1 s
 * once a tunnel is up. (Shown by --help.) */
#define NODE_RECONNECT_FIRST_MS 1000
#define NODE_RECONNECT_MAX_MS 30000

/* ---- paired peers ---- */

static void
peer_stop_forwards (Peer *peer, const char *why)
{
  for (guint i = 0; i < peer->forwards->len; i++)
    forwards_stop (peer->forwards->pdata[i], why);
  for (guint i = 0; i < peer->udp_forwards->len; i++)
    udp_forwards_stop (peer->udp_forwards->pdata[i], why);
  if (peer->media)
    media_forward_stop (peer->media, why);
}

static gboolean
on_reconnect (gpointer data)
{
  Peer *peer = data;

  g_clear_pointer (&peer->reconnect, g_source_unref);
  if (peer->link == NULL && !peer->node->closing)
    peer_start (peer);
  return G_SOURCE_REMOVE;
}

/* Whether a tunnel that ended with @error is worth another: not when the
 * peer refused us or is not who the peer-id says. */
static gboolean
tunnel_error_is_final (const GError *error)
{
  return g_error_matches (error, TUNNEL_ERROR, TUNNEL_ERROR_PEER_MISMATCH)
         || (g_error_matches (error, TUNNEL_ERROR, TUNNEL_ERROR_REFUSED)
             && strstr (error->message, "does not trust") != NULL);
}

/* --give-up-after ran out with no tunnel: the end, as for a tunnel that
 * never came up. */
static gboolean
on_give_up (gpointer data)
{
  Peer *peer = data;
  Node *node = peer->node;
  guint seconds = node->config->give_up_after_s;
  P2ptunEvent *event;

  g_clear_pointer (&peer->give_up, g_source_unref);
  if (peer->lost_at == 0 || node->closing)
    return G_SOURCE_REMOVE;
  event = event_new (P2PTUN_EVENT_PEER_GONE, peer->peer,
                     "no tunnel to peer %s for %u s (--give-up-after): giving up", peer->peer,
                     seconds);
  event->outgoing = TRUE;
  event->error = g_error_new (P2PTUN_ERROR, P2PTUN_ERROR_TIMEOUT,
                              "no tunnel to the peer for %u s", seconds);
  node_emit (node, event);
  /* The attempt under way goes with the peer and its forwards. */
  if (peer->link)
    g_hash_table_remove (node->links, tunnel_session (peer->link->tunnel));
  g_hash_table_remove (node->peers, peer->peer);
  return G_SOURCE_REMOVE;
}

/* The tunnel of a paired peer ended: its streams are reset, its forwards
 * stay, and a new tunnel is tried after the backoff; FALSE when the node
 * gives up instead (never up, a final error, or --give-up-after). */
gboolean
peer_schedule_reconnect (Peer *peer, const GError *error)
{
  Node *node = peer->node;
  gint64 now = g_get_monotonic_time ();
  double jitter = g_random_double_range (0.75, 1.25);
  guint delay_ms;
  P2ptunEvent *event;

  if (!peer->was_up || tunnel_error_is_final (error))
    return FALSE;
  if (peer->lost_at == 0)
    {
      peer->lost_at = now;
      if (node->config->give_up_after_s && peer->give_up == NULL)
        {
          peer->give_up = g_timeout_source_new_seconds (node->config->give_up_after_s);
          g_source_set_callback (peer->give_up, on_give_up, peer, NULL);
          g_source_attach (peer->give_up, node->context);
        }
    }
  if (node->config->give_up_after_s
      && now - peer->lost_at >= (gint64) node->config->give_up_after_s * G_USEC_PER_SEC)
    return FALSE;
  peer->backoff_ms = CLAMP (peer->backoff_ms * 2, NODE_RECONNECT_FIRST_MS,
                            NODE_RECONNECT_MAX_MS);
  delay_ms = (guint) (peer->backoff_ms * jitter);
  peer_stop_forwards (peer, error->message);
  peer->link = NULL;
  event = event_new (P2PTUN_EVENT_PEER_LOST, peer->peer,
                     "peer %s went away: %s; reconnecting in %.1f s", peer->peer,
                     error->message, delay_ms / 1000.0);
  event->outgoing = TRUE;
  event->seconds = delay_ms / 1000.0;
  event->error = g_error_new_literal (P2PTUN_ERROR, error_from_tunnel (error), error->message);
  node_emit (node, event);
  peer->reconnect = g_timeout_source_new (delay_ms);
  g_source_set_callback (peer->reconnect, on_reconnect, peer, NULL);
  g_source_attach (peer->reconnect, node->context);
  return TRUE;
}

/* ---- peers that restarted ---- */

/* A new session from @peer means that the peer process restarted (or
 * reconnected after --hold): its tunnels that stopped answering are the
 * old process's, and go (their streams are reset). Live ones stay: the
 * same identity may run twice. */
void
node_evict_silent (Node *node, const char *peer)
{
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, node->links);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      Link *link = value;

      if (link->outgoing || !peerid_equal (link->peer, peer) || !tunnel_is_up (link->tunnel)
          || !tunnel_is_stalled (link->tunnel))
        continue;
      link_emit (link, event_new (P2PTUN_EVENT_NOTICE, link->peer,
                                  "peer %s: a new session replaces its silent one", peer));
      tunnel_close (link->tunnel, "replaced", "a new session of this peer replaces it");
      g_hash_table_iter_remove (&it);
    }
}

/* ---- the network under us ---- */

/* Addresses or default routes changed: a tunnel whose path lost its local
 * address, or all of them when the default route moved (another uplink:
 * the server-reflexive and relayed candidates are stale), restart ICE at
 * once. Other changes (a docker bridge, a VPN's routes) leave them be. */
void
node_network_changed (gpointer data)
{
  Node *node = data;
  g_autofree char *route = netwatch_default_route ();
  gboolean moved = g_strcmp0 (route, node->default_route) != 0;
  GHashTableIter it;
  gpointer value;

  g_debug ("network changed; default route %s%s", route, moved ? " (moved)" : "");
  g_free (node->default_route);
  node->default_route = g_steal_pointer (&route);
  /* Our long-poll's connection may have died with the old address or
   * route: answers to the restarts below must not wait for TCP to notice. */
  sigclient_repoll (node->sig);
  g_hash_table_iter_init (&it, node->links);
  while (g_hash_table_iter_next (&it, NULL, &value))
    tunnel_network_changed (((Link *) value)->tunnel, netwatch_has_address, moved);
}
