/* One ICE path to a peer; see path.h. */
#include "path.h"

#include <errno.h>
#include <netinet/in.h>
#include <unistd.h>

#include <nice/agent.h>

#include "nicesock.h"
#include "pathprobe.h"
#include "relays_private.h"
#include "udpbatch.h"

#define PATH_COMPONENT 1
/* Buffered remote candidates that arrive before the offer or answer. */
#define PATH_MAX_EARLY_CANDIDATES 64
/* Candidates we accept from a peer in all (a remote party can grow this). */
#define PATH_MAX_REMOTE_CANDIDATES 128
/* libnice does not fail a component that has no candidate pair at all (for
 * instance IPv4 candidates on one side, IPv6 on the other): give up on our
 * own after this long without a working pair. Checks on any real path take
 * well under a second. */
#define PATH_ICE_TIMEOUT_S 10
/* libnice's Ta in ms (see path_new). */
#define PATH_ICE_TA_MS 10u

struct _Path
{
  GMainContext *context;
  char session[SIGMSG_SESSION_LEN + 1];
  guint32 generation;
  gboolean controlling;
  RelayReleases *releases;
  Warn warn;
  PathCallbacks cb;
  gpointer user_data;

  NiceAgent *agent;
  guint stream_id;
  gboolean started;            /* gathering */
  gboolean remote_credentials;
  gboolean early_end_of_candidates;
  GPtrArray *early_candidates; /* char* SDP lines before credentials */
  guint n_remote_candidates;
  GPtrArray *relays;           /* Relay*, see relays_private.h */
  gint64 made_s;               /* Unix time of path_new(), for path_relay_expiry() */
  PathProbe *probe;            /* NULL with relay_only */
  gboolean gathered;
  guint local_types;           /* bit per NiceCandidateType gathered */
  guint remote_types;
  GSource *ice_deadline;
  gboolean connected;
  PathInfo info;
  gsize max_datagram;   /* what the selected pair's route carries */
  UdpBatch *batch;      /* NULL: P2PTUN_UDP_BATCH=off */
  GSocket *batch_socket; /* the direct pair's, which the batch sends on */
};

G_DEFINE_QUARK (p2ptun-path-error-quark, path_error)

static const char *
candidate_type_name (NiceCandidateType type)
{
  switch (type)
    {
    case NICE_CANDIDATE_TYPE_HOST:
      return "host";
    case NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE:
      return "srflx";
    case NICE_CANDIDATE_TYPE_PEER_REFLEXIVE:
      return "prflx";
    case NICE_CANDIDATE_TYPE_RELAYED:
      return "relay";
    default:
      return "unknown";
    }
}

static char *
candidate_types_string (guint mask)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < 4; i++)
    if (mask & (1u << i))
      g_string_append_printf (s, "%s%s", s->len ? ", " : "", candidate_type_name (i));
  if (s->len == 0)
    g_string_append (s, "none");
  return g_string_free (s, FALSE);
}

char *
path_info_to_string (const PathInfo *info)
{
  return g_strdup_printf ("%s (%s %s -> %s %s, %s)", info->relayed ? "relayed" : "direct",
                          info->local_type, info->local_addr, info->remote_type,
                          info->remote_addr, info->transport);
}

static void
path_send_signal (Path *self, Sigmsg *msg)
{
  msg->generation = self->generation;
  self->cb.signal (self, msg, self->user_data);
}

/* Whether one of our own host candidates has @addr's IP address. */
static gboolean
path_is_local_ip (Path *self, const NiceAddress *addr)
{
  GSList *locals = nice_agent_get_local_candidates (self->agent, self->stream_id,
                                                    PATH_COMPONENT);
  gboolean found = FALSE;

  for (GSList *l = locals; l && !found; l = l->next)
    {
      NiceCandidate *c = l->data;

      found = c->type == NICE_CANDIDATE_TYPE_HOST && nice_address_equal_no_port (&c->addr, addr);
    }
  g_slist_free_full (locals, (GDestroyNotify) nice_candidate_free);
  return found;
}

/* A peer-reflexive remote candidate is one whose check came before its
 * candidate line: when the line comes, libnice gives it its real type in
 * place (path_refresh_info()). Until then, a check from the address of
 * one of our relays came from the peer's allocation there, unless that
 * relay runs on this machine, where the peer's host candidates live too. */
static gboolean
path_remote_is_relayed (Path *self, const NiceCandidate *remote)
{
  if (remote->type == NICE_CANDIDATE_TYPE_RELAYED)
    return TRUE;
  return remote->type == NICE_CANDIDATE_TYPE_PEER_REFLEXIVE
         && relays_at_address (self->relays, &remote->addr)
         && !path_is_local_ip (self, &remote->addr);
}

static void
format_address (char *out, gsize size, const NiceAddress *addr)
{
  char ip[NICE_ADDRESS_STRING_LEN];
  gboolean v6;

  nice_address_to_string (addr, ip);
  v6 = strchr (ip, ':') != NULL;
  g_snprintf (out, size, "%s%s%s:%u", v6 ? "[" : "", ip, v6 ? "]" : "",
              nice_address_get_port (addr));
}

static void
fill_info (Path *self, PathInfo *info, NiceCandidate *local, NiceCandidate *remote)
{
  memset (info, 0, sizeof *info);
  info->relayed = local->type == NICE_CANDIDATE_TYPE_RELAYED
                  || path_remote_is_relayed (self, remote);
  g_strlcpy (info->local_type, candidate_type_name (local->type), sizeof info->local_type);
  g_strlcpy (info->remote_type, candidate_type_name (remote->type), sizeof info->remote_type);
  format_address (info->local_addr, sizeof info->local_addr, &local->addr);
  format_address (info->remote_addr, sizeof info->remote_addr, &remote->addr);
  if (local->type == NICE_CANDIDATE_TYPE_RELAYED)
    {
      Relay *relay = relays_of_candidate (self->relays, local);

      g_strlcpy (info->transport, relay ? relay->transport : "udp", sizeof info->transport);
    }
  else
    g_strlcpy (info->transport,
               local->transport == NICE_CANDIDATE_TRANSPORT_UDP ? "udp" : "tcp",
               sizeof info->transport);
}

/* The IP packets the route to @to carries (its interface's MTU, or what
 * the kernel learned of the path), less the IP and UDP headers: a socket
 * connected for the question, which sends nothing. */
static gsize
route_max_datagram (const struct sockaddr_storage *to)
{
  gboolean v6 = to->ss_family == AF_INET6;
  socklen_t to_len = v6 ? sizeof (struct sockaddr_in6) : sizeof (struct sockaddr_in);
  gsize headers = v6 ? 40 + 8 : 20 + 8;
  int mtu = 0;
  socklen_t mtu_len = sizeof mtu;
  int fd = socket (to->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return PATH_DATAGRAM_COMMON;
  if (connect (fd, (const struct sockaddr *) to, to_len) < 0
      || getsockopt (fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MTU : IP_MTU, &mtu,
                     &mtu_len) < 0)
    mtu = 0;
  close (fd);
  if (mtu <= 0 || (gsize) mtu < headers + PATH_DATAGRAM_MIN)
    return PATH_DATAGRAM_COMMON;
  return MIN ((gsize) mtu - headers, PATH_DATAGRAM_MAX);
}

/* P2PTUN_MAX_DATAGRAM: a ceiling on the datagrams sent (for A/B figures,
 * and for paths that lie about their MTU). 0: none. */
static gsize
max_datagram_from_env (void)
{
  static gsize once;
  static gsize cap;

  if (g_once_init_enter (&once))
    {
      const char *v = g_getenv ("P2PTUN_MAX_DATAGRAM");
      guint64 n = 0;

      if (v && *v
          && (!g_ascii_string_to_unsigned (v, 10, PATH_DATAGRAM_MIN, PATH_DATAGRAM_MAX, &n, NULL)))
        g_printerr ("p2ptun: P2PTUN_MAX_DATAGRAM=%s is not a size from %d to %d: ignored\n", v,
                    PATH_DATAGRAM_MIN, PATH_DATAGRAM_MAX);
      cap = (gsize) n;
      g_once_init_leave (&once, 1);
    }
  return cap;
}

/* The selected pair decides the datagram size and whether records bypass
 * libnice in batches: a direct UDP pair's socket sends to the peer's
 * address in batches, and its route's MTU bounds the records. Anything
 * else (our relay's framing, the peer's relay, TCP) goes through libnice
 * at the size every path carries. */
static void
path_set_target (Path *self, const NiceCandidate *local, const NiceCandidate *remote)
{
  struct sockaddr_storage to;
  GSocket *socket = NULL;
  gsize cap = max_datagram_from_env ();

  self->max_datagram = PATH_DATAGRAM_COMMON;
  if (local && remote && !self->info.relayed && local->type != NICE_CANDIDATE_TYPE_RELAYED
      && local->transport == NICE_CANDIDATE_TRANSPORT_UDP)
    {
      memset (&to, 0, sizeof to);
      nice_address_copy_to_sockaddr (&remote->addr, (struct sockaddr *) &to);
      self->max_datagram = route_max_datagram (&to);
      if (self->batch)
        socket = nice_agent_get_selected_socket (self->agent, self->stream_id, PATH_COMPONENT);
    }
  if (cap > 0)
    self->max_datagram = MIN (self->max_datagram, cap);
  if (self->batch)
    {
      /* What is queued goes to the old pair first, on its socket. */
      if (socket)
        udpbatch_set_target (self->batch, g_socket_get_fd (socket), (struct sockaddr *) &to,
                             to.ss_family == AF_INET6 ? sizeof (struct sockaddr_in6)
                                                      : sizeof (struct sockaddr_in));
      else
        udpbatch_set_target (self->batch, -1, NULL, 0);
      g_clear_object (&self->batch_socket);
      self->batch_socket = socket;
    }
  g_debug ("session %.8s: datagrams up to %zu bytes, %s", self->session, self->max_datagram,
           self->batch_socket ? udpbatch_mode_name (udpbatch_mode (self->batch))
                              : "sent by libnice");
}

static void
path_set_info (Path *self, const PathInfo *info, const NiceCandidate *local)
{
  self->info = *info;
  if (self->probe)
    pathprobe_set_path (self->probe, info->relayed, local->type == NICE_CANDIDATE_TYPE_RELAYED);
}

/* The selected pair's remote candidate may have been peer-reflexive and
 * have just got its real type: the same pair, told right. */
static void
path_refresh_info (Path *self)
{
  NiceCandidate *local, *remote;
  PathInfo info;

  if (!nice_agent_get_selected_pair (self->agent, self->stream_id, PATH_COMPONENT, &local,
                                     &remote))
    return;
  fill_info (self, &info, local, remote);
  if (memcmp (&info, &self->info, sizeof info) == 0)
    return;
  path_set_info (self, &info, local);
  path_set_target (self, local, remote);
  self->cb.selected (self, &self->info, FALSE, self->user_data);
}

/* Gathering ended with relays to ask and no relayed candidate. */
static gboolean
path_relays_silent (Path *self)
{
  return self->gathered && self->relays && self->relays->len > 0
         && !(self->local_types & (1u << NICE_CANDIDATE_TYPE_RELAYED));
}

static void
path_lost (Path *self, PathError code, const char *message)
{
  g_autoptr (GError) error = g_error_new_literal (PATH_ERROR, code, message);

  self->cb.lost (self, error, self->user_data);
}

static void
path_fail_ice (Path *self, const char *why)
{
  g_autofree char *local = candidate_types_string (self->local_types);
  g_autofree char *remote = candidate_types_string (self->remote_types);
  g_autofree char *silent = path_relays_silent (self) ? relays_silent_string (self->relays)
                                                      : NULL;
  g_autofree char *message = g_strdup_printf (
      "ICE failed: no working path to the peer%s (local candidates: %s; "
      "remote candidates: %s%s%s)", why, local, remote, silent ? "; " : "",
      silent ? silent : "");

  path_lost (self, PATH_ERROR_ICE_FAILED, message);
}

static void
path_stop_ice_deadline (Path *self)
{
  if (self->ice_deadline)
    {
      g_source_destroy (self->ice_deadline);
      g_clear_pointer (&self->ice_deadline, g_source_unref);
    }
}

static gboolean
on_ice_deadline (gpointer data)
{
  Path *self = data;
  g_autofree char *why = g_strdup_printf (" within %d s", PATH_ICE_TIMEOUT_S);

  g_clear_pointer (&self->ice_deadline, g_source_unref);
  if (!self->connected)
    path_fail_ice (self, why);
  return G_SOURCE_REMOVE;
}

/* ---- libnice's signals ---- */

static void
ice_on_recv (NiceAgent *agent, guint stream_id, guint component_id, guint len, gchar *buf,
             gpointer data)
{
  Path *self = data;
  GSource *source = g_main_current_source ();
  guint8 first;

  /* libnice calls this from its socket's source, which it does not let
   * recurse: GLib then takes the socket out of the poll set around every
   * dispatch and puts it back, each time writing the loop's wakeup eventfd,
   * and the next poll returns at once for it (docs/fast-path.md).  Nothing
   * under this callback iterates a main loop, so letting the source recurse
   * changes only that. */
  if (source != NULL && !g_source_get_can_recurse (source))
    g_source_set_can_recurse (source, TRUE);
  if (len == 0)
    return;
  /* RFC 7983: 20..63 is DTLS, 128..191 RTP and RTCP (the media leg's SRTP).
   * STUN (0..3) never reaches here. */
  first = (guint8) buf[0];
  if ((first < 20 || first > 63) && (first < 128 || first > 191))
    return;
  self->cb.receive (self, (const guint8 *) buf, len, self->user_data);
}

static void
ice_on_new_candidate (NiceAgent *agent, NiceCandidate *cand, gpointer data)
{
  Path *self = data;
  g_autofree char *sdp = NULL;
  Sigmsg *msg;

  if (cand->stream_id != self->stream_id)
    return;
  self->local_types |= 1u << cand->type;
  sdp = nice_agent_generate_local_candidate_sdp (agent, cand);
  if (sdp == NULL || !g_str_has_prefix (sdp, "a=candidate:"))
    return;
  msg = sigmsg_new (SIGMSG_CANDIDATE, self->session);
  msg->candidate = g_strdup (sdp + 2);
  path_send_signal (self, msg);
}

static void
ice_on_gathering_done (NiceAgent *agent, guint stream_id, gpointer data)
{
  Path *self = data;

  if (stream_id != self->stream_id)
    return;
  nicesock_tune (self->agent, self->stream_id, PATH_COMPONENT);
  self->gathered = TRUE;
  if (path_relays_silent (self))
    {
      g_autofree char *silent = relays_silent_string (self->relays);
      warn_say (&self->warn, "%s", silent);
    }
  path_send_signal (self, sigmsg_new (SIGMSG_END_OF_CANDIDATES, self->session));
}

static void
ice_on_selected_pair (NiceAgent *agent, guint stream_id, guint component_id,
                      NiceCandidate *local, NiceCandidate *remote, gpointer data)
{
  Path *self = data;
  PathInfo info;

  if (stream_id != self->stream_id)
    return;
  fill_info (self, &info, local, remote);
  path_set_info (self, &info, local);
  path_set_target (self, local, remote);
  /* Sockets made since gathering began. */
  nicesock_tune (self->agent, self->stream_id, PATH_COMPONENT);
  self->cb.selected (self, &self->info, TRUE, self->user_data);
}

static void
ice_on_state (NiceAgent *agent, guint stream_id, guint component_id, guint state,
              gpointer data)
{
  Path *self = data;

  if (stream_id != self->stream_id)
    return;
  g_debug ("session %.8s: ICE %s", self->session, nice_component_state_to_string (state));
  /* CONNECTED: a pair works. READY waits for gathering and the peer's
   * end-of-candidates too (seconds behind a NAT); records that find no
   * selected pair yet are held by the session. */
  if ((state == NICE_COMPONENT_STATE_CONNECTED || state == NICE_COMPONENT_STATE_READY)
      && !self->connected)
    {
      self->connected = TRUE;
      path_stop_ice_deadline (self);
      self->cb.connected (self, self->user_data);
    }
  else if (state == NICE_COMPONENT_STATE_FAILED)
    path_fail_ice (self, "");
}

/* ---- signaling ---- */

static void
add_remote_candidate (Path *self, const char *candidate)
{
  g_autofree char *sdp = g_strconcat ("a=", candidate, NULL);
  NiceCandidate *cand;
  GSList one = { 0 };

  if (self->n_remote_candidates >= PATH_MAX_REMOTE_CANDIDATES)
    return;
  cand = nice_agent_parse_remote_candidate_sdp (self->agent, self->stream_id, sdp);
  if (cand == NULL)
    {
      g_debug ("ignoring a remote candidate libnice cannot parse");
      return;
    }
  self->n_remote_candidates++;
  self->remote_types |= 1u << cand->type;
  one.data = cand;
  nice_agent_set_remote_candidates (self->agent, self->stream_id, PATH_COMPONENT, &one);
  nice_candidate_free (cand);
  path_refresh_info (self);
}

static void
path_send_credentials (Path *self, SigmsgType type)
{
  Sigmsg *msg = sigmsg_new (type, self->session);

  nice_agent_get_local_credentials (self->agent, self->stream_id, &msg->ufrag, &msg->pwd);
  path_send_signal (self, msg);
}

static void
path_gather (Path *self)
{
  self->started = TRUE;
  /* Candidate signals can fire inside this call (DESIGN.md). */
  if (!nice_agent_gather_candidates (self->agent, self->stream_id))
    path_lost (self, PATH_ERROR_INTERNAL, "cannot gather ICE candidates");
  else
    nicesock_tune (self->agent, self->stream_id, PATH_COMPONENT); /* host sockets now */
}

void
path_offer (Path *self)
{
  g_return_if_fail (self->controlling && !self->started);
  path_send_credentials (self, SIGMSG_OFFER);
  path_gather (self);
}

static void
path_set_remote (Path *self, const Sigmsg *msg)
{
  if (self->remote_credentials)
    return;
  self->remote_credentials = TRUE;
  self->ice_deadline = g_timeout_source_new_seconds (PATH_ICE_TIMEOUT_S);
  g_source_set_callback (self->ice_deadline, on_ice_deadline, self, NULL);
  g_source_attach (self->ice_deadline, self->context);
  nice_agent_set_remote_credentials (self->agent, self->stream_id, msg->ufrag, msg->pwd);
  if (self->probe)
    pathprobe_set_remote_credentials (self->probe, msg->ufrag, msg->pwd);
  for (guint i = 0; i < self->early_candidates->len; i++)
    add_remote_candidate (self, self->early_candidates->pdata[i]);
  g_ptr_array_set_size (self->early_candidates, 0);
  if (self->early_end_of_candidates)
    nice_agent_peer_candidate_gathering_done (self->agent, self->stream_id);
}

void
path_handle_signal (Path *self, const Sigmsg *msg)
{
  g_return_if_fail (msg->generation == self->generation);
  switch (msg->type)
    {
    case SIGMSG_OFFER:
      if (self->controlling || self->started)
        return;
      path_set_remote (self, msg);
      path_send_credentials (self, SIGMSG_ANSWER);
      path_gather (self);
      break;
    case SIGMSG_ANSWER:
      if (self->controlling)
        path_set_remote (self, msg);
      break;
    case SIGMSG_CANDIDATE:
      if (self->remote_credentials)
        add_remote_candidate (self, msg->candidate);
      else if (self->early_candidates->len < PATH_MAX_EARLY_CANDIDATES)
        g_ptr_array_add (self->early_candidates, g_strdup (msg->candidate));
      break;
    case SIGMSG_END_OF_CANDIDATES:
      /* Messages can overtake each other on their way (separate requests). */
      if (self->remote_credentials)
        nice_agent_peer_candidate_gathering_done (self->agent, self->stream_id);
      else
        self->early_end_of_candidates = TRUE;
      break;
    default:
      break;
    }
}

/* ---- the path ---- */

static gboolean
set_stun_server (Path *self, const SigmsgIceServers *servers)
{
  for (guint i = 0; servers && i < servers->stun->len; i++)
    {
      g_autofree char *host = NULL;
      guint16 port;
      g_autoptr (GInetAddress) addr = NULL;

      if (!sigmsg_split_host_port (servers->stun->pdata[i], &host, &port))
        continue;
      /* libnice takes an address, not a name. */
      addr = g_inet_address_new_from_string (host);
      if (addr == NULL)
        {
          warn_say (&self->warn, "STUN server %s: only addresses are supported, skipping",
                     (const char *) servers->stun->pdata[i]);
          continue;
        }
      g_object_set (self->agent, "stun-server", host, "stun-server-port", (guint) port, NULL);
      return TRUE;
    }
  return FALSE;
}

Path *
path_new (GMainContext *context, const PathConfig *config, const PathCallbacks *callbacks,
          gpointer user_data, GError **error)
{
  g_autoptr (Path) self = g_new0 (Path, 1);
  g_autoptr (GError) local_error = NULL;

  g_return_val_if_fail (config->releases != NULL, NULL);
  self->context = g_main_context_ref (context);
  g_strlcpy (self->session, config->session, sizeof self->session);
  self->generation = config->generation;
  self->controlling = config->controlling;
  self->releases = config->releases;
  self->warn = config->warn;
  self->cb = *callbacks;
  self->user_data = user_data;
  self->early_candidates = g_ptr_array_new_with_free_func (g_free);
  self->max_datagram = PATH_DATAGRAM_COMMON;
  self->made_s = g_get_real_time () / G_USEC_PER_SEC;
  if (udpbatch_mode_from_env () != UDPBATCH_OFF)
    self->batch = udpbatch_new (udpbatch_mode_from_env ());

  self->agent = nice_agent_new_full (context, NICE_COMPATIBILITY_RFC5245,
                                     NICE_AGENT_OPTION_ICE_TRICKLE);
  /* Ta: the pace of connectivity checks, and the wait before the first.
   * libnice's 20 ms holds every check, triggered ones too, until its next
   * tick; RFC 8445 (section 14) allows 5 ms, and a path has few pairs. */
  g_object_set (self->agent, "controlling-mode", config->controlling, "upnp", FALSE,
                "ice-tcp", FALSE, "keepalive-conncheck", TRUE, "stun-pacing-timer",
                PATH_ICE_TA_MS, NULL);
  if (config->relay_only)
    {
      /* "force-relay" is in libnice since 0.1.x; check rather than warn at run time. */
      if (g_object_class_find_property (G_OBJECT_GET_CLASS (self->agent), "force-relay")
          == NULL)
        {
          g_set_error (error, PATH_ERROR, PATH_ERROR_INTERNAL,
                       "--relay-only: this libnice cannot force the relay");
          return NULL;
        }
      g_object_set (self->agent, "force-relay", TRUE, NULL);
    }
  set_stun_server (self, config->ice_servers);
  if (!nicesock_set_local_addresses (self->agent, config->local_addresses,
                                     relays_need_loopback (config->ice_servers), &local_error))
    {
      g_set_error (error, PATH_ERROR, PATH_ERROR_INTERNAL, "%s", local_error->message);
      return NULL;
    }
  g_signal_connect (self->agent, "new-candidate-full", G_CALLBACK (ice_on_new_candidate), self);
  g_signal_connect (self->agent, "candidate-gathering-done", G_CALLBACK (ice_on_gathering_done),
                    self);
  g_signal_connect (self->agent, "new-selected-pair-full", G_CALLBACK (ice_on_selected_pair),
                    self);
  g_signal_connect (self->agent, "component-state-changed", G_CALLBACK (ice_on_state), self);

  self->stream_id = nice_agent_add_stream (self->agent, 1);
  if (self->stream_id == 0)
    {
      g_set_error (error, PATH_ERROR, PATH_ERROR_INTERNAL, "cannot create an ICE stream");
      return NULL;
    }
  self->relays = relays_add (context, self->agent, self->stream_id, PATH_COMPONENT,
                             config->ice_servers, &self->warn);
  if (self->relays->len == 0 && config->relay_only)
    {
      g_set_error (error, PATH_ERROR, PATH_ERROR_INTERNAL, "--relay-only, but no usable relay");
      return NULL;
    }
  if (!config->relay_only)
    self->probe = pathprobe_new (context, self->agent, self->stream_id, PATH_COMPONENT);
  /* A receive callback must be attached before gathering, or STUN replies
   * are never read (DESIGN.md). */
  nice_agent_attach_recv (self->agent, self->stream_id, PATH_COMPONENT, context, ice_on_recv,
                          self);
  return g_steal_pointer (&self);
}

void
path_free (Path *self)
{
  if (self == NULL)
    return;
  path_stop_ice_deadline (self);
  pathprobe_free (self->probe);
  /* Queued datagrams go before their socket can. */
  g_clear_pointer (&self->batch, udpbatch_free);
  g_clear_object (&self->batch_socket);
  if (self->agent)
    {
      g_signal_handlers_disconnect_by_data (self->agent, self);
      if (self->stream_id && self->relays && self->relays->len > 0)
        {
          g_debug ("giving back the relay allocations of session %.8s", self->session);
          relays_release (self->releases, g_steal_pointer (&self->agent), self->stream_id,
                          PATH_COMPONENT, g_steal_pointer (&self->relays));
        }
      else
        {
          if (self->stream_id)
            nice_agent_remove_stream (self->agent, self->stream_id);
          g_object_unref (self->agent);
        }
    }
  g_clear_pointer (&self->relays, g_ptr_array_unref);
  g_clear_pointer (&self->early_candidates, g_ptr_array_unref);
  g_main_context_unref (self->context);
  g_free (self);
}

gboolean
path_send (Path *self, const guint8 *buf, gsize len, gboolean more)
{
  if (self->batch && udpbatch_has_target (self->batch))
    {
      if (!udpbatch_add (self->batch, buf, len))
        return FALSE;
      if (!more)
        udpbatch_flush (self->batch);
      return TRUE;
    }
  return nice_agent_send (self->agent, self->stream_id, PATH_COMPONENT, (guint) len,
                          (const gchar *) buf) >= 0;
}

void
path_flush (Path *self)
{
  if (self->batch)
    udpbatch_flush (self->batch);
}

gsize
path_max_datagram (Path *self)
{
  return self->max_datagram;
}


gboolean
path_has_remote (Path *self)
{
  return self->remote_credentials;
}

guint32
path_generation (Path *self)
{
  return self->generation;
}

const PathInfo *
path_info (Path *self)
{
  return &self->info;
}

gint64
path_relay_expiry (Path *self, gint64 *lifetime_s)
{
  NiceCandidate *local, *remote;
  Relay *relay;

  *lifetime_s = 0;
  if (!nice_agent_get_selected_pair (self->agent, self->stream_id, PATH_COMPONENT, &local,
                                     &remote)
      || local->type != NICE_CANDIDATE_TYPE_RELAYED)
    return 0;
  relay = relays_of_candidate (self->relays, local);
  if (relay == NULL || relay->expiry == 0)
    return 0;
  *lifetime_s = relay->expiry - self->made_s;
  return relay->expiry;
}

gboolean
path_lost_address (Path *self, gboolean (*has_address) (const char *ip))
{
  GSList *locals = nice_agent_get_local_candidates (self->agent, self->stream_id,
                                                    PATH_COMPONENT);
  gboolean lost = FALSE;

  for (GSList *l = locals; l && !lost; l = l->next)
    {
      NiceCandidate *c = l->data;
      char ip[NICE_ADDRESS_STRING_LEN];

      if (c->type != NICE_CANDIDATE_TYPE_HOST)
        continue;
      nice_address_to_string (&c->addr, ip);
      lost = !has_address (ip);
    }
  g_slist_free_full (locals, (GDestroyNotify) nice_candidate_free);
  return lost;
}
