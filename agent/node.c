/* The running agent; see node.h. */
#include "node.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib-unix.h>

#include "bridge.h"
#include "ctlmsg.h"
#include "forward.h"
#include "peerid.h"
#include "relays.h"
#include "sigclient.h"
#include "tunnel.h"
#include "udpforward.h"
#include "udpservice.h"

/* Remote parties can grow these. */
#define NODE_MAX_TUNNELS 64
#define NODE_MAX_TUNNELS_PER_PEER 4
#define NODE_MAX_ORPHANS 64
#define NODE_ORPHAN_AGE_US (30 * G_USEC_PER_SEC)
/* While the peer is not connected to the signaling server, offer again so
 * that it finds a whole offer in its mailbox (which keeps messages 60 s). */
#define NODE_REOFFER_S 10
#define NODE_SHUTDOWN_GRACE_MS 1000
/* Giving back relay allocations at exit: one round trip to each relay. */
#define NODE_RELEASE_WAIT_MS 1000
/* Relay credentials last the signaling server's --turn-ttl: renewed when half
 * of that is gone, so that the tunnels of an agent that runs for days get
 * working relays; a failed renewal is retried this often. */
#define NODE_ICE_REFRESH_MIN_S 60
#define NODE_ICE_REFRESH_RETRY_S 60

typedef struct _Node Node;

typedef struct
{
  Node *node;
  Tunnel *tunnel;
  char peer[PEERID_SIZE];
  gboolean outgoing;   /* our pair tunnel */
  gboolean announced;  /* "tunnel up" printed */
  GPtrArray *bridges;  /* Bridge* */
  GPtrArray *connects; /* ServiceConnect* in flight */
  GPtrArray *udp_services; /* UdpService*: the peer's UDP flows */
  GSource *reoffer;
  gboolean told_offline;
} Link;

typedef struct
{
  Link *link;
  TransportStream *stream;
  GCancellable *cancellable;
  char *service;
} ServiceConnect;

typedef struct
{
  Sigmsg *msg;
  gint64 received;
} Orphan;

struct _Node
{
  const NodeOptions *options;
  const Identity *identity;
  GMainContext *context;
  GMainLoop *loop;
  Sigclient *sig;
  SigmsgIceServers *ice_servers;
  GHashTable *exposed;  /* name -> "host:port" */
  GHashTable *exposed_udp; /* names of the exposed services that are UDP */
  GHashTable *links;    /* session -> Link* */
  GPtrArray *orphans;   /* Orphan*: messages before their offer */
  Link *pair;           /* pair mode: our tunnel */
  Forwards *forwards;
  UdpForwards *udp_forwards;
  Bridge *stdio;
  int exit_code;
  gboolean closing;
  guint pending_sends;
  GSource *timeout;
  GSource *ice_refresh; /* renews the relay credentials */
  RelayReleases *releases;
};

void
node_say (const char *format, ...)
{
  g_autofree char *text = NULL;
  va_list ap;

  va_start (ap, format);
  text = g_strdup_vprintf (format, ap);
  va_end (ap);
  fprintf (stderr, "p2ptun-agent: %s\n", text);
  fflush (stderr);
}

static void node_quit (Node *node, int code);

/* What forwards and UDP services have to say (ForwardsSayFunc). */
static void
node_say_line (const char *line, gpointer data)
{
  node_say ("%s", line);
}

static void link_free (Link *link);

static gboolean
node_trusts (Node *node, const char *peer)
{
  if (node->options->pair_peer && peerid_equal (node->options->pair_peer, peer))
    return TRUE;
  for (guint i = 0; node->options->trust && node->options->trust[i]; i++)
    if (peerid_equal (node->options->trust[i], peer))
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

static void
on_send_done (Sigclient *client, gboolean online, const GError *error, gpointer data)
{
  Node *node = data;

  node->pending_sends--;
  if (error && !node->closing)
    node_say ("warning: cannot send to the peer through the signaling server: %s",
              error->message);
  if (node->closing && node->pending_sends == 0)
    g_main_loop_quit (node->loop);
}

static void
on_offer_sent (Sigclient *client, gboolean online, const GError *error, gpointer data)
{
  Node *node = data;
  Link *link = node->pair;

  on_send_done (client, online, error, node);
  if (error || link == NULL || online || link->told_offline)
    return;
  link->told_offline = TRUE;
  node_say ("peer %s is not connected to the signaling server; waiting for it%s", link->peer,
            node->options->timeout_s ? "" : " (Ctrl-C to stop, --timeout to give up)");
}

static void
link_send (Link *link, const Sigmsg *msg, SigclientSendFunc done)
{
  link->node->pending_sends++;
  sigclient_send (link->node->sig, link->peer, msg, done ? done : on_send_done, link->node);
}

static void
tunnel_on_signal (const Sigmsg *msg, gpointer data)
{
  Link *link = data;

  link_send (link, msg, msg->type == SIGMSG_OFFER ? on_offer_sent : NULL);
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

/* ---- streams the peer opens: our exposed services ---- */

static void
bridge_done (Bridge *bridge, const GError *error, gpointer data)
{
  Link *link = data;

  if (error)
    g_debug ("stream with %s ended: %s", link->peer, error->message);
  g_ptr_array_remove_fast (link->bridges, bridge);
}

static void
service_connect_free (ServiceConnect *c)
{
  g_cancellable_cancel (c->cancellable);
  g_object_unref (c->cancellable);
  transport_stream_free (c->stream);
  g_free (c->service);
  g_free (c);
}

static void
on_service_connected (GObject *source, GAsyncResult *result, gpointer data)
{
  ServiceConnect *c = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketConnection) conn = NULL;
  Link *link;
  int fd;

  conn = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (source), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return; /* the link is gone, and so is c */
  link = c->link;
  {
    guint index;
    /* Ours from here on: take it out without freeing it. */
    if (g_ptr_array_find (link->connects, c, &index))
      g_ptr_array_steal_index_fast (link->connects, index);
  }
  if (conn == NULL)
    {
      g_autofree char *text = g_strdup_printf ("service %s is not reachable: %s", c->service,
                                               error->message);
      node_say ("refused a stream from %s: %s", link->peer, text);
      transport_stream_refuse (g_steal_pointer (&c->stream), CTLMSG_REFUSE_CONNECT_FAILED,
                               text);
      service_connect_free (c);
      return;
    }
  fd = dup (g_socket_get_fd (g_socket_connection_get_socket (conn)));
  if (fd < 0)
    {
      transport_stream_refuse (g_steal_pointer (&c->stream), CTLMSG_REFUSE_CONNECT_FAILED,
                               "out of file descriptors");
      service_connect_free (c);
      return;
    }
  g_ptr_array_add (link->bridges, bridge_accept (link->node->context,
                                                 g_steal_pointer (&c->stream), fd, fd,
                                                 bridge_done, link));
  service_connect_free (c);
}

static void
udp_service_done (UdpService *service, const GError *error, gpointer data)
{
  Link *link = data;

  if (error)
    g_debug ("udp flow with %s ended: %s", link->peer, error->message);
  g_ptr_array_remove_fast (link->udp_services, service);
}

static void
tunnel_on_open_request (TransportStream *stream, const char *service, gpointer data)
{
  Link *link = data;
  Node *node = link->node;
  const char *target = g_hash_table_lookup (node->exposed, service);
  gboolean udp = g_hash_table_contains (node->exposed_udp, service);
  gboolean wants_udp = transport_stream_is_datagram (stream);
  g_autoptr (GSocketClient) client = NULL;
  ServiceConnect *c;

  /* A pair tunnel is trusted for the session; a serving agent checked the
   * trust list before it answered the offer. */
  if (target == NULL)
    {
      g_autofree char *text = g_strdup_printf ("service '%s' is not exposed by this agent",
                                               service);
      node_say ("refused a stream from %s: service '%s' is not exposed", link->peer, service);
      transport_stream_refuse (stream, CTLMSG_REFUSE_NOT_EXPOSED, text);
      return;
    }
  if (udp != wants_udp)
    {
      g_autofree char *text = g_strdup_printf (
          "service '%s' is a %s service (forward it with %s)", service, udp ? "UDP" : "TCP",
          udp ? "-U" : "-L");
      node_say ("refused a %s from %s: %s", wants_udp ? "udp flow" : "stream", link->peer, text);
      transport_stream_refuse (stream, CTLMSG_REFUSE_WRONG_KIND, text);
      return;
    }
  if (udp)
    {
      g_ptr_array_add (link->udp_services,
                       udp_service_open (node->context, stream, service, target,
                                         udp_service_done, node_say_line, link));
      return;
    }
  c = g_new0 (ServiceConnect, 1);
  c->link = link;
  c->stream = stream;
  c->service = g_strdup (service);
  c->cancellable = g_cancellable_new ();
  g_ptr_array_add (link->connects, c);
  client = g_socket_client_new ();
  g_socket_client_set_timeout (client, 10);
  g_socket_client_connect_to_host_async (client, target, 0, c->cancellable,
                                         on_service_connected, c);
}

/* ---- pair side: stdio ---- */

static void
node_stdio_done (Bridge *bridge, const GError *error, gpointer data)
{
  Node *node = data;

  if (error)
    {
      node_say ("error: %s", error->message);
      node_quit (node, 1);
    }
  else
    node_quit (node, 0);
}

/* ---- tunnel life ---- */

static void
link_start_forwarding (Link *link)
{
  Node *node = link->node;
  Transport *transport = tunnel_transport (link->tunnel);

  if (node->forwards)
    forwards_start (node->forwards, transport);
  if (node->udp_forwards)
    udp_forwards_start (node->udp_forwards, transport);
  if (node->options->stdio_service && node->stdio == NULL)
    {
      g_autoptr (GError) error = NULL;

      node->stdio = bridge_open (node->context, transport, node->options->stdio_service,
                                 STDIN_FILENO, STDOUT_FILENO, node_stdio_done,
                                 node, &error);
      if (node->stdio == NULL)
        {
          node_say ("error: %s", error->message);
          node_quit (node, 1);
        }
    }
}

static void
tunnel_on_rtt (gint64 rtt_us, gpointer data)
{
  Link *link = data;
  g_autofree char *path = NULL;

  if (link->announced)
    return;
  /* The first round trip completes the picture: announce now. */
  link->announced = TRUE;
  path = tunnel_path_to_string (tunnel_path (link->tunnel));
  if (link->outgoing)
    node_say ("tunnel up: peer %s, path %s, rtt %.1f ms", link->peer, path, rtt_us / 1000.0);
  else
    node_say ("peer %s connected: path %s, rtt %.1f ms", link->peer, path, rtt_us / 1000.0);
}

static void
tunnel_on_up (const TunnelPath *path, gpointer data)
{
  Link *link = data;

  if (link->reoffer)
    {
      g_source_destroy (link->reoffer);
      g_clear_pointer (&link->reoffer, g_source_unref);
    }
  /* Streams open at once; "tunnel up" is printed with the first round trip. */
  if (link->outgoing)
    link_start_forwarding (link);
}

static void
tunnel_on_path_changed (const TunnelPath *path, gpointer data)
{
  Link *link = data;
  g_autofree char *p = tunnel_path_to_string (path);

  node_say ("path changed: peer %s, path %s", link->peer, p);
}

static void
tunnel_on_silence (gint64 gap_us, gboolean over, gpointer data)
{
  Link *link = data;

  if (over)
    node_say ("peer %s: answering again after %.1f s of silence", link->peer,
              gap_us / (double) G_USEC_PER_SEC);
  else
    node_say ("peer %s: no answer for %d s; streams wait, the tunnel ends after %d s of "
              "silence", link->peer, (int) (gap_us / G_USEC_PER_SEC), TUNNEL_DEAD_AFTER_S);
}

static void
tunnel_on_down (const GError *error, gpointer data)
{
  Link *link = data;
  Node *node = link->node;

  if (node->closing)
    return;
  if (link->outgoing)
    {
      node_say ("error: %s", error->message);
      node_quit (node, 1);
      return;
    }
  node_say ("peer %s: %s", link->peer, error->message);
  g_hash_table_remove (node->links, tunnel_session (link->tunnel));
}

static const TunnelCallbacks link_callbacks = {
  .signal = tunnel_on_signal,
  .up = tunnel_on_up,
  .path_changed = tunnel_on_path_changed,
  .open_request = tunnel_on_open_request,
  .rtt = tunnel_on_rtt,
  .silence = tunnel_on_silence,
  .down = tunnel_on_down,
};

static Link *
link_new (Node *node, const char *peer, const char *session, gboolean outgoing, GError **error)
{
  Link *link = g_new0 (Link, 1);
  TunnelConfig config = {
    .identity = node->identity,
    .peer_id = peer,
    .session = session,
    .controlling = outgoing,
    .ice_servers = node->ice_servers,
    .local_addresses = (const char *const *) node->options->local_addresses,
    .relay_only = node->options->relay_only,
    .releases = node->releases,
  };

  link->node = node;
  link->outgoing = outgoing;
  g_strlcpy (link->peer, peer, sizeof link->peer);
  link->bridges = g_ptr_array_new_with_free_func ((GDestroyNotify) bridge_free);
  link->connects = g_ptr_array_new_with_free_func ((GDestroyNotify) service_connect_free);
  link->udp_services = g_ptr_array_new_with_free_func ((GDestroyNotify) udp_service_free);
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
  if (link->node->pair == link)
    link->node->pair = NULL;
  /* Streams before the transport that carries them. */
  g_ptr_array_unref (link->connects);
  g_ptr_array_unref (link->bridges);
  g_ptr_array_unref (link->udp_services);
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

static void
node_start_pair (Node *node)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *session = new_session_id ();

  node->pair = link_new (node, node->options->pair_peer, session, TRUE, &error);
  if (node->pair == NULL)
    {
      node_say ("error: %s", error->message);
      node_quit (node, 1);
      return;
    }
  node->pair->reoffer = g_timeout_source_new_seconds (NODE_REOFFER_S);
  g_source_set_callback (node->pair->reoffer, on_reoffer, node->pair, NULL);
  g_source_attach (node->pair->reoffer, node->context);
  tunnel_start (node->pair->tunnel);
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
  Link *link;

  if (!node_trusts (node, msg->from))
    {
      g_autofree char *text = g_strdup_printf ("this agent does not trust peer-id %s",
                                               msg->from);
      node_say ("refused a tunnel from %s: not trusted (add it with --trust)", msg->from);
      node_refuse (node, msg, "not-trusted", text);
      return;
    }
  /* Both sides ran pair at once: the offer of the lower peer-id wins. */
  if (node->pair && peerid_equal (node->pair->peer, msg->from)
      && !tunnel_has_answer (node->pair->tunnel))
    {
      if (strcmp (node->identity->peer_id, msg->from) < 0)
        return;
      g_hash_table_remove (node->links, tunnel_session (node->pair->tunnel));
    }
  if (g_hash_table_size (node->links) >= NODE_MAX_TUNNELS
      || node_count_links (node, msg->from) >= NODE_MAX_TUNNELS_PER_PEER)
    {
      node_say ("refused a tunnel from %s: too many tunnels", msg->from);
      node_refuse (node, msg, "busy", "too many tunnels");
      return;
    }
  link = link_new (node, msg->from, msg->session, FALSE, &error);
  if (link == NULL)
    {
      node_say ("cannot answer %s: %s", msg->from, error->message);
      return;
    }
  if (node->options->pair_peer && peerid_equal (node->options->pair_peer, msg->from))
    {
      /* The peer's offer replaces ours: this tunnel is the pair tunnel. */
      link->outgoing = TRUE;
      node->pair = link;
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
  if (msg->type == SIGMSG_OFFER)
    node_handle_offer (node, msg);
  else if (msg->type == SIGMSG_CANDIDATE || msg->type == SIGMSG_END_OF_CANDIDATES)
    node_keep_orphan (node, msg);
}

static void
on_signal_fatal (Sigclient *client, const GError *error, gpointer data)
{
  Node *node = data;

  node_say ("error: %s", error->message);
  node_quit (node, 1);
}

/* The earliest expiry (Unix seconds) of the TURN REST usernames
 * "EXPIRY:PEER-ID" in @servers; 0 when there is none. */
static gint64
ice_servers_expiry (const SigmsgIceServers *servers)
{
  gint64 earliest = 0;

  for (guint i = 0; i < servers->turn->len; i++)
    {
      const SigmsgTurnServer *turn = servers->turn->pdata[i];
      char *end = NULL;
      gint64 expiry = g_ascii_strtoll (turn->username, &end, 10);

      if (end != turn->username && *end == ':' && expiry > 0
          && (earliest == 0 || expiry < earliest))
        earliest = expiry;
    }
  return earliest;
}

static void node_schedule_ice_refresh (Node *node, gint64 delay_s);

static void
on_ice_servers_renewed (Sigclient *client, SigmsgIceServers *servers, const GError *error,
                        gpointer data)
{
  Node *node = data;

  if (servers == NULL)
    {
      node_say ("warning: cannot renew the relay credentials: %s (again in %d s)",
                error->message, NODE_ICE_REFRESH_RETRY_S);
      node_schedule_ice_refresh (node, NODE_ICE_REFRESH_RETRY_S);
      return;
    }
  /* Tunnels took what they needed from the old list when they began. */
  sigmsg_ice_servers_free (node->ice_servers);
  node->ice_servers = servers;
  g_debug ("relay credentials renewed");
  node_schedule_ice_refresh (node, 0);
}

static gboolean
on_ice_refresh (gpointer data)
{
  Node *node = data;

  g_clear_pointer (&node->ice_refresh, g_source_unref);
  sigclient_get_ice_servers (node->sig, on_ice_servers_renewed, node);
  return G_SOURCE_REMOVE;
}

/* In @delay_s seconds, or (0) when half the credentials' life is gone. */
static void
node_schedule_ice_refresh (Node *node, gint64 delay_s)
{
  if (delay_s == 0)
    {
      gint64 expiry = ice_servers_expiry (node->ice_servers);

      if (expiry == 0)
        return; /* no relays: nothing expires */
      delay_s = MAX ((expiry - g_get_real_time () / G_USEC_PER_SEC) / 2,
                     (gint64) NODE_ICE_REFRESH_MIN_S);
    }
  node->ice_refresh = g_timeout_source_new_seconds ((guint) MIN (delay_s, (gint64) G_MAXUINT));
  g_source_set_callback (node->ice_refresh, on_ice_refresh, node, NULL);
  g_source_attach (node->ice_refresh, node->context);
}

static void
on_ice_servers (Sigclient *client, SigmsgIceServers *servers, const GError *error,
                gpointer data)
{
  Node *node = data;

  if (servers == NULL)
    {
      node_say ("error: %s", error->message);
      node_quit (node, 1);
      return;
    }
  node->ice_servers = servers;
  if (node->options->relay_only && relays_usable (servers) == 0)
    {
      node_say ("error: --relay-only, but the signaling server hands out no usable relay "
                "(TURN over UDP or TCP at an IP address, or over TLS)");
      node_quit (node, 1);
      return;
    }
  sigclient_start (node->sig, on_message, on_signal_fatal, node);
  node_schedule_ice_refresh (node, 0);
  if (node->options->pair_peer)
    node_start_pair (node);
  else
    node_say ("serving as %s; waiting for peers", node->identity->peer_id);
}

static void
on_forward_fatal (const GError *error, gpointer data)
{
  Node *node = data;

  node_say ("error: %s", error->message);
  node_quit (node, 1);
}

/* ---- ending ---- */

static void
node_quit (Node *node, int code)
{
  GHashTableIter it;
  gpointer value;

  if (node->closing)
    return;
  node->closing = TRUE;
  node->exit_code = code;
  g_clear_pointer (&node->stdio, bridge_free);
  g_clear_pointer (&node->forwards, forwards_free);
  g_clear_pointer (&node->udp_forwards, udp_forwards_free);
  g_hash_table_iter_init (&it, node->links);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      Link *link = value;
      g_ptr_array_set_size (link->bridges, 0);
      g_ptr_array_set_size (link->connects, 0);
      /* Its bye goes through link_send, which counts it as pending. */
      tunnel_close (link->tunnel, "closed", "the agent is shutting down");
    }
  if (node->pending_sends == 0)
    g_main_loop_quit (node->loop);
  else
    g_timeout_add_once (NODE_SHUTDOWN_GRACE_MS, (GSourceOnceFunc) g_main_loop_quit, node->loop);
}

static gboolean
on_unix_signal (gpointer data)
{
  Node *node = data;

  if (!node->closing)
    node_say ("closing");
  node_quit (node, 0);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_timeout (gpointer data)
{
  Node *node = data;

  g_clear_pointer (&node->timeout, g_source_unref);
  if (node->pair && tunnel_is_up (node->pair->tunnel))
    return G_SOURCE_REMOVE;
  node_say ("error: timed out after %d s: no tunnel to peer %s", node->options->timeout_s,
            node->options->pair_peer);
  node_quit (node, 1);
  return G_SOURCE_REMOVE;
}

static gboolean
node_parse_exposes (Node *node, GError **error)
{
  for (guint i = 0; node->options->expose && node->options->expose[i]; i++)
    {
      const char *spec = node->options->expose[i];
      const char *eq = strchr (spec, '=');
      g_autofree char *name = NULL;
      g_autofree char *target = NULL;
      g_autofree char *host = NULL;
      guint16 port;
      gboolean udp = g_str_has_suffix (spec, "/udp");

      if (eq == NULL)
        goto bad;
      name = g_strndup (spec, (gsize) (eq - spec));
      target = g_strndup (eq + 1, strlen (eq + 1) - (udp ? 4 : 0));
      if (!ctlmsg_name_is_valid (name) || !sigmsg_split_host_port (target, &host, &port))
        goto bad;
      if (g_hash_table_contains (node->exposed, name))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--expose %s: service '%s' is exposed twice", spec, name);
          return FALSE;
        }
      if (udp)
        g_hash_table_add (node->exposed_udp, g_strdup (name));
      g_hash_table_insert (node->exposed, g_steal_pointer (&name), g_steal_pointer (&target));
      continue;
    bad:
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--expose %s: expected NAME=HOST:PORT (TCP) or NAME=HOST:PORT/udp, NAME of "
                   "letters, digits, '.', '_' or '-' (at most %d)", spec, CTLMSG_NAME_MAX);
      return FALSE;
    }
  return TRUE;
}

int
node_run (const NodeOptions *options, const Identity *identity)
{
  g_autoptr (GError) error = NULL;
  Node node_storage = { 0 };
  Node *node = &node_storage;
  guint sigint, sigterm;

  node->options = options;
  node->identity = identity;
  node->context = g_main_context_default ();
  node->loop = g_main_loop_new (node->context, FALSE);
  node->releases = relay_releases_new (node->context);
  node->exposed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  node->exposed_udp = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  node->links = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) link_free);
  node->orphans = g_ptr_array_new_with_free_func (orphan_free);

  if (!node_parse_exposes (node, &error))
    goto fail;
  if (options->forward && options->forward[0])
    {
      node->forwards = forwards_new (node->context, (const char *const *) options->forward,
                                     on_forward_fatal, node_say_line, node, &error);
      if (node->forwards == NULL)
        goto fail;
    }
  if (options->udp_forward && options->udp_forward[0])
    {
      node->udp_forwards = udp_forwards_new (node->context,
                                             (const char *const *) options->udp_forward,
                                             (guint) options->udp_timeout_s, on_forward_fatal,
                                             node_say_line, node, &error);
      if (node->udp_forwards == NULL)
        goto fail;
    }
  node->sig = sigclient_new (node->context, options->signal_url, options->signal_pin, identity,
                             &error);
  if (node->sig == NULL)
    goto fail;

  sigint = g_unix_signal_add (SIGINT, on_unix_signal, node);
  sigterm = g_unix_signal_add (SIGTERM, on_unix_signal, node);
  if (options->pair_peer && options->timeout_s > 0)
    {
      node->timeout = g_timeout_source_new_seconds ((guint) options->timeout_s);
      g_source_set_callback (node->timeout, on_timeout, node, NULL);
      g_source_attach (node->timeout, node->context);
    }
  sigclient_get_ice_servers (node->sig, on_ice_servers, node);
  g_main_loop_run (node->loop);

  if (node->timeout)
    {
      g_source_destroy (node->timeout);
      g_source_unref (node->timeout);
    }
  if (node->ice_refresh)
    {
      g_source_destroy (node->ice_refresh);
      g_source_unref (node->ice_refresh);
    }
  g_clear_pointer (&node->stdio, bridge_free);
  g_clear_pointer (&node->forwards, forwards_free);
  g_clear_pointer (&node->udp_forwards, udp_forwards_free);
  g_hash_table_unref (node->links);
  /* A second SIGTERM while the relays are told goodbye changes nothing. */
  relay_releases_wait (node->releases, NODE_RELEASE_WAIT_MS);
  relay_releases_free (node->releases);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  g_clear_pointer (&node->sig, sigclient_free);
  g_clear_pointer (&node->ice_servers, sigmsg_ice_servers_free);
  g_ptr_array_unref (node->orphans);
  g_hash_table_unref (node->exposed);
  g_hash_table_unref (node->exposed_udp);
  g_main_loop_unref (node->loop);
  return node->exit_code;

fail:
  node_say ("error: %s", error->message);
  g_clear_pointer (&node->forwards, forwards_free);
  g_clear_pointer (&node->udp_forwards, udp_forwards_free);
  g_hash_table_unref (node->links);
  g_ptr_array_unref (node->orphans);
  g_hash_table_unref (node->exposed);
  g_hash_table_unref (node->exposed_udp);
  relay_releases_free (node->releases);
  g_main_loop_unref (node->loop);
  return 1;
}
