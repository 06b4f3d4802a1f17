/* A node; see node.h. */
#include "node-private.h"

#include <string.h>

#include <gio/gio.h>

#include "peerid.h"
#include "relays.h"

/* Remote parties can grow these. */
#define NODE_MAX_TUNNELS 64
#define NODE_MAX_TUNNELS_PER_PEER 4
#define NODE_MAX_ORPHANS 64
#define NODE_ORPHAN_AGE_US (30 * G_USEC_PER_SEC)
/* While the peer is not connected to the signaling server, offer again so
 * that it finds a whole offer in its mailbox (which keeps messages 60 s). */
#define NODE_REOFFER_S 10
/* Closing: the byes' time to reach the signaling server, then the relays'
 * to hear that their allocations are given back (one round trip each). */
#define NODE_BYE_GRACE_MS 1000
#define NODE_RELEASE_WAIT_MS 1000
#define NODE_RELEASE_POLL_MS 20
/* Relay credentials last the signaling server's --turn-ttl: renewed when half
 * of that is gone, so that the tunnels of a node that runs for days get
 * working relays; a failed renewal is retried this often. */
#define NODE_ICE_REFRESH_MIN_S 60
#define NODE_ICE_REFRESH_RETRY_S 60

void
node_emit (Node *node, P2ptunEvent *event)
{
  node->emit (event, node->emit_data);
}

static void
node_emit_error (Node *node, P2ptunEventKind kind, const char *peer, const GError *error)
{
  P2ptunEvent *event = event_new (kind, peer, "%s", error->message);

  event->error = g_error_copy (error);
  node_emit (node, event);
}

void
node_warn (Node *node, const char *format, ...)
{
  g_autofree char *text = NULL;
  va_list ap;

  va_start (ap, format);
  text = g_strdup_vprintf (format, ap);
  va_end (ap);
  node_emit (node, event_new (P2PTUN_EVENT_WARNING, NULL, "%s", text));
}

void
node_fatal (Node *node, GError *error)
{
  if (!node->closing)
    node_emit_error (node, P2PTUN_EVENT_FATAL, NULL, error);
  g_error_free (error);
}

static gboolean
node_trusts (Node *node, const char *peer)
{
  if (g_hash_table_contains (node->peers, peer))
    return TRUE;
  for (guint i = 0; i < node->config->trust->len; i++)
    if (peerid_equal (node->config->trust->pdata[i], peer))
      return TRUE;
  return FALSE;
}

static void
orphan_free (gpointer data)
{
  Orphan *o = data;

  sigmsg_free (o->msg);
  g_free (o);
}

/* ---- signaling ---- */

static void node_closed_sends (Node *node);
static void tunnel_on_down (const GError *error, gpointer data);

static void
on_send_done (Sigclient *client, gboolean online, const GError *error, gpointer data)
{
  Node *node = data;

  node->pending_sends--;
  /* A peer the server has not enrolled is reported once, by its offer. */
  if (error && !node->closing
      && !g_error_matches (error, SIGCLIENT_ERROR, SIGCLIENT_ERROR_UNKNOWN_PEER))
    node_warn (node, "cannot send to the peer through the signaling server: %s",
               error->message);
  if (node->closing && node->pending_sends == 0)
    node_closed_sends (node);
}

typedef struct
{
  Node *node;
  char peer[PEERID_SIZE];
} OfferSent;

static void
on_offer_sent (Sigclient *client, gboolean online, const GError *error, gpointer data)
{
  OfferSent *sent = data;
  Node *node = sent->node;
  Peer *peer = g_hash_table_lookup (node->peers, sent->peer);

  g_ptr_array_remove_fast (node->offers_sent, sent); /* frees it */
  if (g_error_matches (error, SIGCLIENT_ERROR, SIGCLIENT_ERROR_UNKNOWN_PEER) && peer != NULL
      && peer->link != NULL && !node->closing)
    {
      /* No offer can ever reach it there: the tunnel ends, with the reason. */
      g_autoptr (GError) gone = g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_UNKNOWN_PEER,
                                             "peer %s: %s", peer->peer, error->message);

      node->pending_sends--;
      tunnel_on_down (gone, peer->link);
      return;
    }
  on_send_done (client, online, error, node);
  if (error || peer == NULL || online || peer->told_offline || node->closing)
    return;
  peer->told_offline = TRUE;
  {
    P2ptunEvent *event = event_new (
        P2PTUN_EVENT_PEER_OFFLINE, peer->peer,
        "peer %s is not connected to the signaling server; waiting for it", peer->peer);

    event->outgoing = TRUE;
    node_emit (node, event);
  }
}

static void
tunnel_on_signal (const Sigmsg *msg, gpointer data)
{
  Link *link = data;
  Node *node = link->node;

  node->pending_sends++;
  if (msg->type == SIGMSG_OFFER)
    {
      OfferSent *sent = g_new0 (OfferSent, 1);

      sent->node = node;
      g_strlcpy (sent->peer, link->peer, sizeof sent->peer);
      g_ptr_array_add (node->offers_sent, sent);
      sigclient_send (node->sig, link->peer, msg, on_offer_sent, sent);
    }
  else
    sigclient_send (node->sig, link->peer, msg, on_send_done, node);
}

static gboolean
on_reoffer (gpointer data)
{
  Link *link = data;

  if (tunnel_has_answer (link->tunnel))
    {
      g_clear_pointer (&link->reoffer, g_source_unref);
      return G_SOURCE_REMOVE;
    }
  tunnel_resend_signals (link->tunnel);
  return G_SOURCE_CONTINUE;
}

/* ---- tunnel life ---- */

void
link_emit (Link *link, P2ptunEvent *event)
{
  node_emit (link->node, event);
}

static void
link_expose_emit (P2ptunEvent *event, gpointer data)
{
  link_emit (data, event);
}

static void
tunnel_on_open_request (TransportStream *stream, const char *service, gpointer data)
{
  Link *link = data;

  expose_open_request (link->expose, link->tunnel, stream, service);
}

static void
peer_forwards_start (Peer *peer, Tunnel *tunnel)
{
  Transport *transport = tunnel_transport (tunnel);

  for (guint i = 0; i < peer->forwards->len; i++)
    forwards_start (peer->forwards->pdata[i], transport);
  for (guint i = 0; i < peer->udp_forwards->len; i++)
    udp_forwards_start (peer->udp_forwards->pdata[i], transport);
  if (peer->media)
    media_forward_start (peer->media, tunnel);
}

static void
tunnel_on_rtt (gint64 rtt_us, gpointer data)
{
  Link *link = data;
  g_autofree char *path = NULL;
  P2ptunEvent *event;

  link->rtt_us = rtt_us;
  if (link->announced)
    return;
  /* The first round trip completes the picture: announce now. */
  link->announced = TRUE;
  path = tunnel_path_to_string (tunnel_path (link->tunnel));
  if (link->outgoing && link->reconnecting_since)
    event = event_new (P2PTUN_EVENT_PEER_UP, link->peer,
                       "tunnel up: peer %s, path %s, rtt %.1f ms (reconnected after %.1f s)",
                       link->peer, path, rtt_us / 1000.0,
                       (g_get_monotonic_time () - link->reconnecting_since)
                           / (double) G_USEC_PER_SEC);
  else if (link->outgoing)
    event = event_new (P2PTUN_EVENT_PEER_UP, link->peer,
                              "tunnel up: peer %s, path %s, rtt %.1f ms", link->peer, path,
                              rtt_us / 1000.0);
  else
    event = event_new (P2PTUN_EVENT_PEER_UP, link->peer,
                              "peer %s connected: path %s, rtt %.1f ms", link->peer, path,
                              rtt_us / 1000.0);
  event->path = path_info_new (tunnel_path (link->tunnel));
  event->rtt_us = rtt_us;
  event->outgoing = link->outgoing;
  link_emit (link, event);
}

static void
tunnel_on_up (const TunnelPath *path, gpointer data)
{
  Link *link = data;
  Peer *peer = g_hash_table_lookup (link->node->peers, link->peer);

  if (link->up_at == 0)
    link->up_at = g_get_monotonic_time ();
  if (link->reoffer)
    {
      g_source_destroy (link->reoffer);
      g_clear_pointer (&link->reoffer, g_source_unref);
    }
  /* Streams open at once; PEER_UP comes with the first round trip. */
  if (link->outgoing && peer && peer->link == link)
    {
      peer->was_up = TRUE;
      peer->lost_at = 0;
      peer->backoff_ms = 0;
      if (peer->give_up)
        {
          g_source_destroy (peer->give_up);
          g_clear_pointer (&peer->give_up, g_source_unref);
        }
      peer_forwards_start (peer, link->tunnel);
    }
}

static void
tunnel_on_path_changed (const TunnelPath *path, gpointer data)
{
  Link *link = data;
  g_autofree char *p = tunnel_path_to_string (path);
  P2ptunEvent *event = event_new (P2PTUN_EVENT_PATH_CHANGED, link->peer,
                                         "path changed: peer %s, path %s", link->peer, p);

  link->path_changes++;
  event->path = path_info_new (path);
  event->outgoing = link->outgoing;
  link_emit (link, event);
}

static void
tunnel_on_silence (gint64 gap_us, gboolean over, gpointer data)
{
  Link *link = data;
  double seconds = gap_us / (double) G_USEC_PER_SEC;
  P2ptunEvent *event;

  if (over)
    event = event_new (P2PTUN_EVENT_PEER_ANSWERING, link->peer,
                              "peer %s: answering again after %.1f s of silence", link->peer,
                              seconds);
  else
    event = event_new (P2PTUN_EVENT_PEER_SILENT, link->peer,
                       "peer %s: no answer for %.1f s; streams wait (up to %u s, --hold)",
                       link->peer, seconds, link->node->config->hold_s);
  event->seconds = seconds;
  event->outgoing = link->outgoing;
  link_emit (link, event);
}

static void peer_free (Peer *peer);

static const char *const restart_reasons[] = {
  [TUNNEL_RESTART_SILENCE] = "path lost",
  [TUNNEL_RESTART_LOST] = "path lost",
  [TUNNEL_RESTART_NETWORK] = "network changed",
  [TUNNEL_RESTART_PEER] = "the peer asks",
  [TUNNEL_RESTART_RETRY] = "still no path",
  [TUNNEL_RESTART_CREDENTIALS] = "relay credentials expire soon",
};

static void
tunnel_on_restarting (guint32 generation, TunnelRestartReason reason, gpointer data)
{
  Link *link = data;
  P2ptunEvent *event;

  if (reason == TUNNEL_RESTART_CREDENTIALS)
    {
      /* Nothing is lost: the path works until the next one is up. */
      event = event_new (P2PTUN_EVENT_NOTICE, link->peer,
                         "peer %s: %s, moving to ICE generation %u", link->peer,
                         restart_reasons[reason], generation);
      event->outgoing = link->outgoing;
      link_emit (link, event);
      return;
    }
  event = event_new (P2PTUN_EVENT_PATH_LOST, link->peer,
                     "peer %s: %s, restarting ICE (generation %u)", link->peer,
                     restart_reasons[reason], generation);
  event->outgoing = link->outgoing;
  link_emit (link, event);
  /* The restart's answer comes through the long-poll, whose connection may
   * have died with the path (a NAT that forgot its mappings). */
  sigclient_repoll (link->node->sig);
}

static const SigmsgIceServers *
tunnel_on_ice_servers (gpointer data)
{
  Link *link = data;

  return link->node->ice_servers;
}

static void
tunnel_on_down (const GError *error, gpointer data)
{
  Link *link = data;
  Node *node = link->node;
  P2ptunEvent *event;

  if (node->closing)
    return;
  if (link->outgoing)
    {
      Peer *peer = g_hash_table_lookup (node->peers, link->peer);

      if (peer && peer->link == link && peer_schedule_reconnect (peer, error))
        {
          g_hash_table_remove (node->links, tunnel_session (link->tunnel));
          return;
        }
    }
  if (link->outgoing)
    event = event_new (P2PTUN_EVENT_PEER_GONE, link->peer, "%s", error->message);
  else
    event = event_new (P2PTUN_EVENT_PEER_GONE, link->peer, "peer %s: %s", link->peer,
                              error->message);
  event->outgoing = link->outgoing;
  event->error = g_error_new_literal (P2PTUN_ERROR, error_from_tunnel (error),
                                      error->message);
  link_emit (link, event);
  /* The forwards of an outgoing tunnel end with it (they hold its transport). */
  if (link->outgoing)
    g_hash_table_remove (node->peers, link->peer);
  g_hash_table_remove (node->links, tunnel_session (link->tunnel));
}

static const TunnelCallbacks link_callbacks = {
  .signal = tunnel_on_signal,
  .up = tunnel_on_up,
  .path_changed = tunnel_on_path_changed,
  .open_request = tunnel_on_open_request,
  .rtt = tunnel_on_rtt,
  .silence = tunnel_on_silence,
  .restarting = tunnel_on_restarting,
  .ice_servers = tunnel_on_ice_servers,
  .down = tunnel_on_down,
};

static void link_free (Link *link);

static void
link_on_warning (const char *text, gpointer data)
{
  Link *link = data;

  link_emit (link, event_new (P2PTUN_EVENT_WARNING, link->peer, "%s", text));
}

static Link *
link_new (Node *node, const char *peer, const char *session, gboolean outgoing, GError **error)
{
  Link *link = g_new0 (Link, 1);
  TunnelConfig config = {
    .identity = node->identity,
    .peer_id = peer,
    .session = session,
    .controlling = outgoing,
    .local_addresses = (const char *const *) node->config->local_addresses,
    .relay_only = node->config->relay_only,
    .releases = node->releases,
    .warn = { link_on_warning, link },
    .hold_s = node->config->hold_s,
  };

  link->node = node;
  link->outgoing = outgoing;
  g_strlcpy (link->peer, peer, sizeof link->peer);
  link->expose = expose_new (node->context, peer, node->config, node->locals, link_expose_emit,
                             link);
  link->fd_streams = g_ptr_array_new ();
  link->flows = g_ptr_array_new ();
  link->medias = g_ptr_array_new ();
  link->tunnel = tunnel_new (node->context, &config, &link_callbacks, link, error);
  if (link->tunnel == NULL)
    {
      link_free (link);
      return NULL;
    }
  g_hash_table_insert (node->links, g_strdup (session), link);
  return link;
}

static void
link_free (Link *link)
{
  if (link == NULL)
    return;
  if (link->reoffer)
    {
      g_source_destroy (link->reoffer);
      g_source_unref (link->reoffer);
    }
  {
    Peer *peer = g_hash_table_lookup (link->node->peers, link->peer);

    if (peer && peer->link == link)
      peer->link = NULL;
  }
  /* Streams before the transport that carries them. */
  link_end_streams (link);
  g_ptr_array_unref (link->fd_streams);
  g_ptr_array_unref (link->flows);
  g_ptr_array_unref (link->medias);
  expose_free (link->expose);
  tunnel_free (link->tunnel);
  g_free (link);
}

static char *
new_session_id (void)
{
  guint8 raw[SIGMSG_SESSION_LEN / 2];
  GString *s = g_string_sized_new (SIGMSG_SESSION_LEN);

  for (gsize i = 0; i < sizeof raw; i++)
    raw[i] = (guint8) g_random_int_range (0, 256);
  for (gsize i = 0; i < sizeof raw; i++)
    g_string_append_printf (s, "%02x", raw[i]);
  return g_string_free (s, FALSE);
}

void
peer_start (Peer *peer)
{
  Node *node = peer->node;
  g_autoptr (GError) error = NULL;
  g_autofree char *session = new_session_id ();
  Link *link;

  link = link_new (node, peer->peer, session, TRUE, &error);
  if (link == NULL)
    {
      P2ptunEvent *event = event_new (P2PTUN_EVENT_PEER_GONE, peer->peer, "%s",
                                             error->message);

      event->outgoing = TRUE;
      event->error = g_error_new_literal (P2PTUN_ERROR, P2PTUN_ERROR_FAILED, error->message);
      node_emit (node, event);
      g_hash_table_remove (node->peers, peer->peer);
      return;
    }
  peer->link = link;
  if (peer->was_up)
    peer->reconnects++;
  link->reconnects = peer->reconnects;
  link->reconnecting_since = peer->lost_at;
  link->reoffer = g_timeout_source_new_seconds (NODE_REOFFER_S);
  g_source_set_callback (link->reoffer, on_reoffer, link, NULL);
  g_source_attach (link->reoffer, node->context);
  tunnel_start (link->tunnel);
}

static void
peer_free (Peer *peer)
{
  if (peer->reconnect)
    {
      g_source_destroy (peer->reconnect);
      g_source_unref (peer->reconnect);
    }
  if (peer->give_up)
    {
      g_source_destroy (peer->give_up);
      g_source_unref (peer->give_up);
    }
  /* Forwards first: their streams ride the link's transport. */
  g_ptr_array_unref (peer->forwards);
  g_ptr_array_unref (peer->udp_forwards);
  media_forward_free (peer->media);
  if (peer->link)
    peer->link->outgoing = FALSE;
  g_free (peer);
}

static guint
node_count_links (Node *node, const char *peer)
{
  GHashTableIter it;
  gpointer value;
  guint n = 0;

  g_hash_table_iter_init (&it, node->links);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (peerid_equal (((Link *) value)->peer, peer))
      n++;
  return n;
}

static void
node_refuse (Node *node, const Sigmsg *offer, const char *reason, const char *text)
{
  g_autoptr (Sigmsg) bye = sigmsg_new (SIGMSG_BYE, offer->session);

  bye->generation = offer->generation;
  bye->reason = g_strdup (reason);
  bye->text = g_strdup (text);
  node->pending_sends++;
  sigclient_send (node->sig, offer->from, bye, on_send_done, node);
}

static void node_replay_orphans (Node *node, Link *link);

static void
node_handle_offer (Node *node, const Sigmsg *msg)
{
  g_autoptr (GError) error = NULL;
  Peer *peer = g_hash_table_lookup (node->peers, msg->from);
  Link *link;

  if (!node_trusts (node, msg->from))
    {
      g_autofree char *text = g_strdup_printf ("this agent does not trust peer-id %s",
                                               msg->from);
      P2ptunEvent *event = event_new (P2PTUN_EVENT_REFUSED, msg->from,
                                             "refused a tunnel from %s: not trusted",
                                             msg->from);

      event->error = g_error_new (P2PTUN_ERROR, P2PTUN_ERROR_NOT_TRUSTED,
                                  "peer-id %s is not trusted", msg->from);
      node_emit (node, event);
      node_refuse (node, msg, "not-trusted", text);
      return;
    }
  node_evict_silent (node, msg->from);
  /* Both sides paired at once: the offer of the lower peer-id wins. */
  if (peer && peer->link && !tunnel_has_answer (peer->link->tunnel))
    {
      if (strcmp (node->identity->peer_id, msg->from) < 0)
        return;
      g_hash_table_remove (node->links, tunnel_session (peer->link->tunnel));
    }
  if (g_hash_table_size (node->links) >= NODE_MAX_TUNNELS
      || node_count_links (node, msg->from) >= NODE_MAX_TUNNELS_PER_PEER)
    {
      P2ptunEvent *event = event_new (P2PTUN_EVENT_REFUSED, msg->from,
                                             "refused a tunnel from %s: too many tunnels",
                                             msg->from);

      event->error = g_error_new_literal (P2PTUN_ERROR, P2PTUN_ERROR_LIMIT, "too many tunnels");
      node_emit (node, event);
      node_refuse (node, msg, "busy", "too many tunnels");
      return;
    }
  link = link_new (node, msg->from, msg->session, FALSE, &error);
  if (link == NULL)
    {
      node_warn (node, "cannot answer %s: %s", msg->from, error->message);
      return;
    }
  if (peer && peer->link == NULL)
    {
      /* The peer's offer replaces ours: this is the tunnel we asked for. */
      link->outgoing = TRUE;
      peer->link = link;
    }
  tunnel_handle_signal (link->tunnel, msg);
  node_replay_orphans (node, link);
}

static void
node_replay_orphans (Node *node, Link *link)
{
  for (guint i = 0; i < node->orphans->len;)
    {
      Orphan *o = node->orphans->pdata[i];
      if (strcmp (o->msg->session, tunnel_session (link->tunnel)) == 0
          && peerid_equal (o->msg->from, link->peer))
        {
          tunnel_handle_signal (link->tunnel, o->msg);
          g_ptr_array_remove_index (node->orphans, i);
        }
      else
        i++;
    }
}

static void
node_keep_orphan (Node *node, const Sigmsg *msg)
{
  Orphan *o;
  gint64 now = g_get_monotonic_time ();

  /* Messages can overtake the offer: keep a few for a while. */
  for (guint i = 0; i < node->orphans->len;)
    if (now - ((Orphan *) node->orphans->pdata[i])->received > NODE_ORPHAN_AGE_US)
      g_ptr_array_remove_index (node->orphans, i);
    else
      i++;
  if (node->orphans->len >= NODE_MAX_ORPHANS)
    g_ptr_array_remove_index (node->orphans, 0);
  o = g_new0 (Orphan, 1);
  o->msg = sigmsg_new (msg->type, msg->session);
  g_strlcpy (o->msg->from, msg->from, sizeof o->msg->from);
  o->msg->generation = msg->generation;
  o->msg->candidate = g_strdup (msg->candidate);
  o->msg->reason = g_strdup (msg->reason);
  o->msg->text = g_strdup (msg->text);
  o->received = now;
  g_ptr_array_add (node->orphans, o);
}

static void
on_message (Sigclient *client, const Sigmsg *msg, gpointer data)
{
  Node *node = data;
  Link *link;

  if (node->closing || !peerid_is_valid (msg->from))
    return;
  link = g_hash_table_lookup (node->links, msg->session);
  if (link)
    {
      /* Only the tunnel's own peer may speak in its session. */
      if (peerid_equal (link->peer, msg->from))
        tunnel_handle_signal (link->tunnel, msg);
      return;
    }
  /* A later generation or a restart request of a session we do not know:
   * this agent restarted under it. The peer hears so at once, rather than
   * after --hold. */
  if ((msg->type == SIGMSG_OFFER && msg->generation > 0) || msg->type == SIGMSG_RESTART)
    node_refuse (node, msg, "unknown-session", "this agent does not know the session "
                 "(it restarted)");
  else if (msg->type == SIGMSG_OFFER)
    node_handle_offer (node, msg);
  else if (msg->type == SIGMSG_CANDIDATE || msg->type == SIGMSG_END_OF_CANDIDATES)
    node_keep_orphan (node, msg);
}

static void
on_signal_notice (Sigclient *client, gboolean trouble, const char *text, gpointer data)
{
  Node *node = data;

  if (trouble)
    node_warn (node, "%s", text);
  else
    node_emit (node, event_new (P2PTUN_EVENT_NOTICE, NULL, "%s", text));
}

static void
on_signal_fatal (Sigclient *client, const GError *error, gpointer data)
{
  if (node_admission_refused (data, error))
    return;
  node_fatal (data, g_error_new_literal (P2PTUN_ERROR, P2PTUN_ERROR_SIGNALING, error->message));
}

static void
on_ice_servers (Sigclient *client, SigmsgIceServers *servers, const GError *error,
                gpointer data)
{
  Node *node = data;

  if (servers == NULL)
    {
      if (node_admission_refused (node, error))
        return;
      node_fatal (node, g_error_new_literal (P2PTUN_ERROR, P2PTUN_ERROR_SIGNALING,
                                             error->message));
      return;
    }
  node_relays_arrived (node, servers);
}

void
node_relays_arrived (Node *node, SigmsgIceServers *servers)
{
  GHashTableIter it;
  gpointer value;
  gboolean was_ready = node->ready;

  g_clear_pointer (&node->ice_servers, sigmsg_ice_servers_free);
  node->ice_servers = servers;
  if (node->config->relay_only && relays_usable (servers) == 0)
    {
      node_fatal (node, g_error_new_literal (
                            P2PTUN_ERROR, P2PTUN_ERROR_INVALID,
                            "--relay-only, but the signaling server hands out no usable relay "
                            "(TURN over UDP or TCP at an IP address, or over TLS)"));
      return;
    }
  node->ready = TRUE;
  sigclient_set_notice_func (node->sig, on_signal_notice, node);
  /* Again after a refusal stopped it; nothing when it runs. */
  sigclient_start (node->sig, on_message, on_signal_fatal, node);
  if (node->ice_refresh == NULL)
    node_schedule_ice_refresh (node, 0);
  if (was_ready)
    return;
  node_emit (node, event_new (P2PTUN_EVENT_READY, NULL,
                                     "serving as %s; waiting for peers",
                                     node->identity->peer_id));
  g_hash_table_iter_init (&it, node->peers);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (((Peer *) value)->link == NULL)
      peer_start (value);
}

/* ---- what the owner asks for ---- */

Node *
node_new (GMainContext *context, const Identity *identity, const P2ptunConfig *config,
          NodeEmitFunc emit, gpointer user_data, GError **error)
{
  Node *node;
  Sigclient *sig;

  if (config->signal_url == NULL)
    {
      g_set_error (error, P2PTUN_ERROR, P2PTUN_ERROR_INVALID,
                   "no signaling server (set one: --signal URL)");
      return NULL;
    }
  sig = sigclient_new (context, config->signal_url, config->signal_pin, identity, error);
  if (sig == NULL)
    return NULL;
  node = g_new0 (Node, 1);
  node->context = g_main_context_ref (context);
  node->identity = identity;
  node->config = p2ptun_config_ref ((P2ptunConfig *) config);
  node->emit = emit;
  node->emit_data = user_data;
  node->sig = sig;
  node->locals = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  node->links = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) link_free);
  node->peers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) peer_free);
  node->orphans = g_ptr_array_new_with_free_func (orphan_free);
  node->offers_sent = g_ptr_array_new_with_free_func (g_free);
  node->releases = relay_releases_new (node->context);
  return node;
}

void
node_start (Node *node)
{
  node->default_route = netwatch_default_route ();
  node->netwatch = netwatch_new (node->context, node_network_changed, node);
  sigclient_get_ice_servers (node->sig, on_ice_servers, node);
}

const char *
node_peer_id (Node *node)
{
  return node->identity->peer_id;
}

static Peer *
node_ensure_peer (Node *node, const char *peer_id, GError **error)
{
  Peer *peer;

  if (!peerid_is_valid (peer_id))
    {
      g_set_error (error, P2PTUN_ERROR, P2PTUN_ERROR_INVALID,
                   "'%s' is not a peer-id (52 characters of a-z and 2-7)", peer_id);
      return NULL;
    }
  if (peerid_equal (peer_id, node->identity->peer_id))
    {
      g_set_error (error, P2PTUN_ERROR, P2PTUN_ERROR_INVALID,
                   "%s is this node's own peer-id", peer_id);
      return NULL;
    }
  peer = g_hash_table_lookup (node->peers, peer_id);
  if (peer)
    return peer;
  peer = g_new0 (Peer, 1);
  peer->node = node;
  g_strlcpy (peer->peer, peer_id, sizeof peer->peer);
  peer->forwards = g_ptr_array_new_with_free_func ((GDestroyNotify) forwards_free);
  peer->udp_forwards = g_ptr_array_new_with_free_func ((GDestroyNotify) udp_forwards_free);
  g_hash_table_insert (node->peers, g_strdup (peer_id), peer);
  return peer;
}

gboolean
node_pair (Node *node, const char *peer_id, GError **error)
{
  Peer *peer = node_ensure_peer (node, peer_id, error);

  if (peer == NULL)
    return FALSE;
  if (node->ready && peer->link == NULL && !node->closing)
    peer_start (peer);
  return TRUE;
}

static void
on_forward_fatal (const GError *error, gpointer data)
{
  Node *node = data;

  node_fatal (node, g_error_copy (error));
}

static void
on_forward_say (const char *line, gpointer data)
{
  node_emit (data, event_new (P2PTUN_EVENT_NOTICE, NULL, "%s", line));
}

gboolean
node_forward (Node *node, const char *peer_id, P2ptunServiceKind kind, const char *spec,
              GError **error)
{
  Peer *peer = node_ensure_peer (node, peer_id, error);
  const char *specs[] = { spec, NULL };

  if (peer == NULL)
    return FALSE;
  if (kind == P2PTUN_SERVICE_RTP)
    {
      if (peer->media != NULL)
        {
          g_set_error (error, P2PTUN_ERROR, P2PTUN_ERROR_INVALID,
                       "-M %s: a tunnel carries one media leg, and this peer has one", spec);
          return FALSE;
        }
      peer->media = media_forward_new (node->context, spec, on_forward_fatal, on_forward_say,
                                       node, error);
      if (peer->media == NULL)
        return FALSE;
      if (peer->link && tunnel_is_up (peer->link->tunnel))
        media_forward_start (peer->media, peer->link->tunnel);
    }
  else if (kind == P2PTUN_SERVICE_UDP)
    {
      UdpForwards *f = udp_forwards_new (node->context, specs, node->config->udp_timeout_s,
                                         on_forward_fatal, on_forward_say, node, error);

      if (f == NULL)
        return FALSE;
      g_ptr_array_add (peer->udp_forwards, f);
      if (peer->link && tunnel_is_up (peer->link->tunnel))
        udp_forwards_start (f, tunnel_transport (peer->link->tunnel));
    }
  else
    {
      Forwards *f = forwards_new (node->context, specs, 0, on_forward_fatal, on_forward_say,
                                  node, error);

      if (f == NULL)
        return FALSE;
      g_ptr_array_add (peer->forwards, f);
      if (peer->link && tunnel_is_up (peer->link->tunnel))
        forwards_start (f, tunnel_transport (peer->link->tunnel));
    }
  return TRUE;
}

/* ---- ending ---- */

static gboolean
on_release_poll (gpointer data)
{
  Node *node = data;

  if (relay_releases_pending (node->releases) > 0
      && g_get_monotonic_time () < node->release_deadline)
    return G_SOURCE_CONTINUE;
  g_clear_pointer (&node->closer, g_source_unref);
  if (relay_releases_pending (node->releases) > 0)
    node_warn (node, "%u relay allocations not given back in time; the relay expires them",
               relay_releases_pending (node->releases));
  node_emit (node, event_new (P2PTUN_EVENT_CLOSED, NULL, "closed"));
  return G_SOURCE_REMOVE;
}

/* The byes are out (or their time is up): free the tunnels, whose relay
 * allocations are then given back, and wait for that. */
static void
node_closed_sends (Node *node)
{
  if (node->closer)
    {
      g_source_destroy (node->closer);
      g_source_unref (node->closer);
    }
  g_hash_table_remove_all (node->links);
  node->release_deadline = g_get_monotonic_time () + NODE_RELEASE_WAIT_MS * 1000;
  node->closer = g_timeout_source_new (NODE_RELEASE_POLL_MS);
  g_source_set_callback (node->closer, on_release_poll, node, NULL);
  g_source_attach (node->closer, node->context);
}

static gboolean
on_bye_grace (gpointer data)
{
  Node *node = data;

  g_clear_pointer (&node->closer, g_source_unref);
  node_closed_sends (node);
  return G_SOURCE_REMOVE;
}

void
node_close (Node *node)
{
  GHashTableIter it;
  gpointer value;

  if (node->closing)
    return;
  node->closing = TRUE;
  g_hash_table_remove_all (node->peers);
  g_hash_table_iter_init (&it, node->links);
  while (g_hash_table_iter_next (&it, NULL, &value))
    /* Its bye goes through tunnel_on_signal, which counts it as pending. */
    tunnel_close (((Link *) value)->tunnel, "closed", "the agent is shutting down");
  if (node->pending_sends == 0)
    node_closed_sends (node);
  else
    {
      node->closer = g_timeout_source_new (NODE_BYE_GRACE_MS);
      g_source_set_callback (node->closer, on_bye_grace, node, NULL);
      g_source_attach (node->closer, node->context);
    }
}

void
node_free (Node *node)
{
  if (node == NULL)
    return;
  node->closing = TRUE;
  if (node->closer)
    {
      g_source_destroy (node->closer);
      g_source_unref (node->closer);
    }
  if (node->ice_refresh)
    {
      g_source_destroy (node->ice_refresh);
      g_source_unref (node->ice_refresh);
    }
  node_admission_clear (node);
  netwatch_free (node->netwatch);
  g_free (node->default_route);
  /* Forwards before the tunnels they ride; the links still look peers up. */
  g_hash_table_remove_all (node->peers);
  g_hash_table_unref (node->links);
  g_hash_table_unref (node->peers);
  /* Releases under way go on by themselves (relays.h). */
  relay_releases_free (node->releases);
  sigclient_free (node->sig);
  g_ptr_array_unref (node->offers_sent);
  g_clear_pointer (&node->ice_servers, sigmsg_ice_servers_free);
  g_ptr_array_unref (node->orphans);
  g_hash_table_unref (node->locals);
  p2ptun_config_unref (node->config);
  g_main_context_unref (node->context);
  g_free (node);
}
