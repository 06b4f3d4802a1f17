/* One tunnel: ICE + a session (DTLS + transport); see tunnel.h. */
#include "tunnel.h"

#include <sys/socket.h>

#include <nice/agent.h>

#include "nicesock.h"
#include "pathprobe.h"
#include "relays_private.h"
#include "peerid.h"

#define TUNNEL_COMPONENT 1
/* Buffered remote candidates that arrive before the offer or answer. */
#define TUNNEL_MAX_EARLY_CANDIDATES 64
/* Candidates we accept from a peer in all (a remote party can grow this). */
#define TUNNEL_MAX_REMOTE_CANDIDATES 128
/* libnice does not fail a component that has no candidate pair at all (for
 * instance IPv4 candidates on one side, IPv6 on the other): give up on our
 * own after this long without a working pair. Checks on any real path take
 * well under a second. */
#define TUNNEL_ICE_TIMEOUT_S 10

struct _Tunnel
{
  GMainContext *context;
  const Identity *identity;
  char peer_id[PEERID_SIZE];
  char session_id[SIGMSG_SESSION_LEN + 1];
  /* The ICE generation of the path: signaling messages of another one are
   * not for it (PROTOCOL.md section 4). Only generation 0 is made so far. */
  guint32 generation;
  gboolean controlling;
  TunnelCallbacks cb;
  gpointer user_data;

  NiceAgent *agent;
  guint stream_id;
  gboolean remote_credentials;
  gboolean early_end_of_candidates;
  gboolean started;
  GPtrArray *early_candidates; /* char* SDP lines before credentials */
  guint n_remote_candidates;
  GPtrArray *sent;             /* Sigmsg*, for tunnel_resend_signals */
  GPtrArray *relays;           /* Relay*, see relays_private.h */
  RelayReleases *releases;
  PathProbe *probe;            /* NULL with --relay-only */
  gboolean gathered;
  guint local_types;           /* bit per NiceCandidateType gathered */
  guint remote_types;
  GSource *ice_deadline;

  Session *session;
  gboolean connected;          /* a pair works: the session started */
  TunnelPath path;

  gboolean down;
  GError *down_error;
  GSource *down_idle;
};

G_DEFINE_QUARK (p2ptun-tunnel-error-quark, tunnel_error)

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
tunnel_path_to_string (const TunnelPath *path)
{
  return g_strdup_printf ("%s (%s %s -> %s %s, %s)", path->relayed ? "relayed" : "direct",
                          path->local_type, path->local_addr, path->remote_type,
                          path->remote_addr, path->transport);
}

static gboolean
down_dispatch (gpointer data)
{
  Tunnel *self = data;

  g_clear_pointer (&self->down_idle, g_source_unref);
  self->cb.down (self->down_error, self->user_data);
  return G_SOURCE_REMOVE;
}

/* Fatal for the tunnel; the owner hears of it from a clean stack. */
static void
tunnel_fail (Tunnel *self, TunnelError code, const char *format, ...) G_GNUC_PRINTF (3, 4);

static void
tunnel_fail (Tunnel *self, TunnelError code, const char *format, ...)
{
  va_list ap;

  if (self->down)
    return;
  self->down = TRUE;
  va_start (ap, format);
  self->down_error = g_error_new_valist (TUNNEL_ERROR, code, format, ap);
  va_end (ap);
  self->down_idle = g_idle_source_new ();
  g_source_set_priority (self->down_idle, G_PRIORITY_DEFAULT);
  g_source_set_callback (self->down_idle, down_dispatch, self, NULL);
  g_source_attach (self->down_idle, self->context);
}

static void
tunnel_send_signal (Tunnel *self, Sigmsg *msg)
{
  g_debug ("session %.8s: sending %s", self->session_id, sigmsg_type_to_string (msg->type));
  self->cb.signal (msg, self->user_data);
  if (msg->type != SIGMSG_BYE)
    g_ptr_array_add (self->sent, msg);
  else
    sigmsg_free (msg);
}

/* Whether one of our own host candidates has @addr's IP address. */
static gboolean
tunnel_is_local_ip (Tunnel *self, const NiceAddress *addr)
{
  GSList *locals = nice_agent_get_local_candidates (self->agent, self->stream_id,
                                                    TUNNEL_COMPONENT);
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
 * place (tunnel_refresh_path()). Until then, a check from the address of
 * one of our relays came from the peer's allocation there, unless that
 * relay runs on this machine, where the peer's host candidates live too. */
static gboolean
tunnel_remote_is_relayed (Tunnel *self, const NiceCandidate *remote)
{
  if (remote->type == NICE_CANDIDATE_TYPE_RELAYED)
    return TRUE;
  return remote->type == NICE_CANDIDATE_TYPE_PEER_REFLEXIVE
         && relays_at_address (self->relays, &remote->addr)
         && !tunnel_is_local_ip (self, &remote->addr);
}

static void
fill_path (Tunnel *self, TunnelPath *path, NiceCandidate *local, NiceCandidate *remote)
{
  char addr[NICE_ADDRESS_STRING_LEN];

  memset (path, 0, sizeof *path);
  path->relayed = local->type == NICE_CANDIDATE_TYPE_RELAYED
                  || tunnel_remote_is_relayed (self, remote);
  g_strlcpy (path->local_type, candidate_type_name (local->type), sizeof path->local_type);
  g_strlcpy (path->remote_type, candidate_type_name (remote->type), sizeof path->remote_type);
  nice_address_to_string (&local->addr, addr);
  g_snprintf (path->local_addr, sizeof path->local_addr, "%s%s%s:%u",
              strchr (addr, ':') ? "[" : "", addr, strchr (addr, ':') ? "]" : "",
              nice_address_get_port (&local->addr));
  nice_address_to_string (&remote->addr, addr);
  g_snprintf (path->remote_addr, sizeof path->remote_addr, "%s%s%s:%u",
              strchr (addr, ':') ? "[" : "", addr, strchr (addr, ':') ? "]" : "",
              nice_address_get_port (&remote->addr));
  if (local->type == NICE_CANDIDATE_TYPE_RELAYED)
    {
      Relay *relay = relays_of_candidate (self->relays, local);

      g_strlcpy (path->transport, relay ? relay->transport : "udp", sizeof path->transport);
    }
  else
    g_strlcpy (path->transport,
               local->transport == NICE_CANDIDATE_TRANSPORT_UDP ? "udp" : "tcp",
               sizeof path->transport);
}


/* ---- the session ---- */

static gboolean
session_on_send_record (const guint8 *buf, gsize len, gpointer data)
{
  Tunnel *self = data;

  return nice_agent_send (self->agent, self->stream_id, TUNNEL_COMPONENT, (guint) len,
                          (const gchar *) buf) >= 0;
}

static void
session_on_up (gpointer data)
{
  Tunnel *self = data;

  self->cb.up (&self->path, self->user_data);
}

static void
session_on_open_request (TransportStream *stream, const char *service, gpointer data)
{
  Tunnel *self = data;

  self->cb.open_request (stream, service, self->user_data);
}

static void
session_on_rtt (gint64 rtt_us, gpointer data)
{
  Tunnel *self = data;

  if (self->cb.rtt)
    self->cb.rtt (rtt_us, self->user_data);
}

static void
session_on_silence (gint64 gap_us, gboolean over, gpointer data)
{
  Tunnel *self = data;

  if (self->cb.silence)
    self->cb.silence (gap_us, over, self->user_data);
}

static void
session_on_down (const GError *error, gpointer data)
{
  static const TunnelError codes[] = {
    [SESSION_ERROR_DTLS] = TUNNEL_ERROR_DTLS,
    [SESSION_ERROR_PEER_MISMATCH] = TUNNEL_ERROR_PEER_MISMATCH,
    [SESSION_ERROR_CLOSED] = TUNNEL_ERROR_CLOSED,
    [SESSION_ERROR_TIMEOUT] = TUNNEL_ERROR_TIMEOUT,
  };
  Tunnel *self = data;

  g_return_if_fail (error->domain == SESSION_ERROR
                    && (gsize) error->code < G_N_ELEMENTS (codes));
  tunnel_fail (self, codes[error->code], "%s", error->message);
}

static const SessionCallbacks session_callbacks = {
  .send_record = session_on_send_record,
  .up = session_on_up,
  .open_request = session_on_open_request,
  .rtt = session_on_rtt,
  .silence = session_on_silence,
  .down = session_on_down,
};

/* ---- ICE ---- */

static void
ice_on_recv (NiceAgent *agent, guint stream_id, guint component_id, guint len, gchar *buf,
             gpointer data)
{
  Tunnel *self = data;
  guint8 first;

  if (len == 0 || self->down)
    return;
  /* RFC 7983: 20..63 is DTLS. STUN (0..3) never reaches here. */
  first = (guint8) buf[0];
  if (first < 20 || first > 63)
    return;
  session_receive (self->session, (const guint8 *) buf, len);
}

static void
ice_on_new_candidate (NiceAgent *agent, NiceCandidate *cand, gpointer data)
{
  Tunnel *self = data;
  g_autofree char *sdp = NULL;
  Sigmsg *msg;

  if (cand->stream_id != self->stream_id)
    return;
  self->local_types |= 1u << cand->type;
  sdp = nice_agent_generate_local_candidate_sdp (agent, cand);
  if (sdp == NULL || !g_str_has_prefix (sdp, "a=candidate:"))
    return;
  msg = sigmsg_new (SIGMSG_CANDIDATE, self->session_id);
  msg->candidate = g_strdup (sdp + 2);
  tunnel_send_signal (self, msg);
}


/* Gathering ended with relays to ask and no relayed candidate. */
static gboolean
tunnel_relays_silent (Tunnel *self)
{
  return self->gathered && self->relays && self->relays->len > 0
         && !(self->local_types & (1u << NICE_CANDIDATE_TYPE_RELAYED));
}

static void
ice_on_gathering_done (NiceAgent *agent, guint stream_id, gpointer data)
{
  Tunnel *self = data;

  if (stream_id != self->stream_id)
    return;
  nicesock_tune (self->agent, self->stream_id, TUNNEL_COMPONENT);
  self->gathered = TRUE;
  if (tunnel_relays_silent (self))
    {
      g_autofree char *silent = relays_silent_string (self->relays);
      g_message ("%s", silent);
    }
  tunnel_send_signal (self, sigmsg_new (SIGMSG_END_OF_CANDIDATES, self->session_id));
}

static void
tunnel_set_path (Tunnel *self, const TunnelPath *path, const NiceCandidate *local)
{
  self->path = *path;
  if (self->probe)
    pathprobe_set_path (self->probe, path->relayed, local->type == NICE_CANDIDATE_TYPE_RELAYED);
}

/* The selected pair's remote candidate may have been peer-reflexive and
 * have just got its real type: the same pair, told right. */
static void
tunnel_refresh_path (Tunnel *self)
{
  NiceCandidate *local, *remote;
  TunnelPath path;

  if (!nice_agent_get_selected_pair (self->agent, self->stream_id, TUNNEL_COMPONENT, &local,
                                     &remote))
    return;
  fill_path (self, &path, local, remote);
  if (memcmp (&path, &self->path, sizeof path) == 0)
    return;
  tunnel_set_path (self, &path, local);
  if (session_is_up (self->session) && self->cb.path_changed)
    self->cb.path_changed (&self->path, self->user_data);
}

static void
ice_on_selected_pair (NiceAgent *agent, guint stream_id, guint component_id,
                      NiceCandidate *local, NiceCandidate *remote, gpointer data)
{
  Tunnel *self = data;
  TunnelPath path;

  if (stream_id != self->stream_id)
    return;
  fill_path (self, &path, local, remote);
  tunnel_set_path (self, &path, local);
  /* Sockets made since gathering began. */
  nicesock_tune (self->agent, self->stream_id, TUNNEL_COMPONENT);
  session_path_changed (self->session);
  if (session_is_up (self->session) && self->cb.path_changed)
    self->cb.path_changed (&self->path, self->user_data);
}

static void
tunnel_stop_ice_deadline (Tunnel *self)
{
  if (self->ice_deadline)
    {
      g_source_destroy (self->ice_deadline);
      g_clear_pointer (&self->ice_deadline, g_source_unref);
    }
}

static void
tunnel_fail_ice (Tunnel *self, const char *why)
{
  g_autofree char *local = candidate_types_string (self->local_types);
  g_autofree char *remote = candidate_types_string (self->remote_types);
  g_autofree char *silent = tunnel_relays_silent (self) ? relays_silent_string (self->relays)
                                                        : NULL;

  tunnel_fail (self, TUNNEL_ERROR_ICE_FAILED,
               "ICE failed: no working path to the peer%s (local candidates: %s; "
               "remote candidates: %s%s%s)", why, local, remote, silent ? "; " : "",
               silent ? silent : "");
}

static gboolean
on_ice_deadline (gpointer data)
{
  Tunnel *self = data;
  g_autofree char *why = g_strdup_printf (" within %d s", TUNNEL_ICE_TIMEOUT_S);

  g_clear_pointer (&self->ice_deadline, g_source_unref);
  if (!self->connected)
    tunnel_fail_ice (self, why);
  return G_SOURCE_REMOVE;
}

static void
ice_on_state (NiceAgent *agent, guint stream_id, guint component_id, guint state,
              gpointer data)
{
  Tunnel *self = data;

  if (stream_id != self->stream_id)
    return;
  g_debug ("session %.8s: ICE %s", self->session_id, nice_component_state_to_string (state));
  /* CONNECTED: a pair works. READY waits for gathering and the peer's
   * end-of-candidates too (seconds behind a NAT); records that find no
   * selected pair yet are held by the session. */
  if ((state == NICE_COMPONENT_STATE_CONNECTED || state == NICE_COMPONENT_STATE_READY)
      && !self->connected)
    {
      self->connected = TRUE;
      tunnel_stop_ice_deadline (self);
      session_start (self->session);
    }
  else if (state == NICE_COMPONENT_STATE_FAILED && !session_is_up (self->session))
    tunnel_fail_ice (self, "");
  else if (state == NICE_COMPONENT_STATE_FAILED && session_is_up (self->session))
    tunnel_fail (self, TUNNEL_ERROR_ICE_FAILED, "the path to the peer was lost");
}

static void
add_remote_candidate (Tunnel *self, const char *candidate)
{
  g_autofree char *sdp = g_strconcat ("a=", candidate, NULL);
  NiceCandidate *cand;
  GSList one = { 0 };

  if (self->n_remote_candidates >= TUNNEL_MAX_REMOTE_CANDIDATES)
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
  nice_agent_set_remote_candidates (self->agent, self->stream_id, TUNNEL_COMPONENT, &one);
  nice_candidate_free (cand);
  tunnel_refresh_path (self);
}

static gboolean
set_stun_server (Tunnel *self, const SigmsgIceServers *servers)
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
          g_message ("STUN server %s: only addresses are supported, skipping",
                     (const char *) servers->stun->pdata[i]);
          continue;
        }
      g_object_set (self->agent, "stun-server", host, "stun-server-port", (guint) port, NULL);
      return TRUE;
    }
  return FALSE;
}

Tunnel *
tunnel_new (GMainContext *context, const TunnelConfig *config, const TunnelCallbacks *callbacks,
            gpointer user_data, GError **error)
{
  g_autoptr (Tunnel) self = g_new0 (Tunnel, 1);
  g_autoptr (GError) local_error = NULL;

  g_return_val_if_fail (peerid_is_valid (config->peer_id), NULL);
  g_return_val_if_fail (config->releases != NULL, NULL);
  self->context = g_main_context_ref (context);
  self->identity = config->identity;
  self->releases = config->releases;
  self->controlling = config->controlling;
  self->cb = *callbacks;
  self->user_data = user_data;
  g_strlcpy (self->peer_id, config->peer_id, sizeof self->peer_id);
  g_strlcpy (self->session_id, config->session, sizeof self->session_id);
  self->early_candidates = g_ptr_array_new_with_free_func (g_free);
  self->sent = g_ptr_array_new_with_free_func ((GDestroyNotify) sigmsg_free);

  self->session = session_new (context, config->identity, config->peer_id, config->controlling,
                               &session_callbacks, self, error);
  if (self->session == NULL)
    return NULL;

  self->agent = nice_agent_new_full (context, NICE_COMPATIBILITY_RFC5245,
                                     NICE_AGENT_OPTION_ICE_TRICKLE);
  g_object_set (self->agent, "controlling-mode", config->controlling, "upnp", FALSE,
                "ice-tcp", FALSE, "keepalive-conncheck", TRUE, NULL);
  if (config->relay_only)
    {
      /* "force-relay" is in libnice since 0.1.x; check rather than warn at run time. */
      if (g_object_class_find_property (G_OBJECT_GET_CLASS (self->agent), "force-relay")
          == NULL)
        {
          g_set_error (error, TUNNEL_ERROR, TUNNEL_ERROR_INTERNAL,
                       "--relay-only: this libnice cannot force the relay");
          return NULL;
        }
      g_object_set (self->agent, "force-relay", TRUE, NULL);
    }
  set_stun_server (self, config->ice_servers);
  if (!nicesock_set_local_addresses (self->agent, config->local_addresses,
                                     relays_need_loopback (config->ice_servers), &local_error))
    {
      g_set_error (error, TUNNEL_ERROR, TUNNEL_ERROR_INTERNAL, "%s", local_error->message);
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
      g_set_error (error, TUNNEL_ERROR, TUNNEL_ERROR_INTERNAL, "cannot create an ICE stream");
      return NULL;
    }
  self->relays = relays_add (context, self->agent, self->stream_id, TUNNEL_COMPONENT,
                             config->ice_servers);
  if (self->relays->len == 0 && config->relay_only)
    {
      g_set_error (error, TUNNEL_ERROR, TUNNEL_ERROR_INTERNAL,
                   "--relay-only, but no usable relay");
      return NULL;
    }
  if (!config->relay_only)
    self->probe = pathprobe_new (context, self->agent, self->stream_id, TUNNEL_COMPONENT);
  /* A receive callback must be attached before gathering, or STUN replies
   * are never read (DESIGN.md). */
  nice_agent_attach_recv (self->agent, self->stream_id, TUNNEL_COMPONENT, context, ice_on_recv,
                          self);
  return g_steal_pointer (&self);
}

void
tunnel_free (Tunnel *self)
{
  if (self == NULL)
    return;
  tunnel_stop_ice_deadline (self);
  pathprobe_free (self->probe);
  if (self->down_idle)
    {
      g_source_destroy (self->down_idle);
      g_source_unref (self->down_idle);
    }
  /* The session sends through the agent: it goes first. */
  session_free (self->session);
  if (self->agent)
    {
      g_signal_handlers_disconnect_by_data (self->agent, self);
      if (self->stream_id && self->relays && self->relays->len > 0)
        {
          g_debug ("giving back the relay allocations of session %.8s", self->session_id);
          relays_release (self->releases, g_steal_pointer (&self->agent), self->stream_id,
                          TUNNEL_COMPONENT, g_steal_pointer (&self->relays));
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
  g_clear_pointer (&self->sent, g_ptr_array_unref);
  g_clear_error (&self->down_error);
  g_main_context_unref (self->context);
  g_free (self);
}

static void
tunnel_send_credentials (Tunnel *self, SigmsgType type)
{
  Sigmsg *msg = sigmsg_new (type, self->session_id);

  nice_agent_get_local_credentials (self->agent, self->stream_id, &msg->ufrag, &msg->pwd);
  tunnel_send_signal (self, msg);
}

static void
tunnel_gather (Tunnel *self)
{
  self->started = TRUE;
  /* Candidate signals can fire inside this call (DESIGN.md). */
  if (!nice_agent_gather_candidates (self->agent, self->stream_id))
    tunnel_fail (self, TUNNEL_ERROR_INTERNAL, "cannot gather ICE candidates");
  else
    nicesock_tune (self->agent, self->stream_id, TUNNEL_COMPONENT); /* host sockets now */
}

void
tunnel_start (Tunnel *self)
{
  g_return_if_fail (self->controlling && !self->started);
  tunnel_send_credentials (self, SIGMSG_OFFER);
  tunnel_gather (self);
}

static void
tunnel_set_remote (Tunnel *self, const Sigmsg *msg)
{
  if (self->remote_credentials)
    return;
  self->remote_credentials = TRUE;
  self->ice_deadline = g_timeout_source_new_seconds (TUNNEL_ICE_TIMEOUT_S);
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
tunnel_handle_signal (Tunnel *self, const Sigmsg *msg)
{
  if (self->down || strcmp (msg->session, self->session_id) != 0)
    return;
  if (msg->generation != self->generation)
    {
      g_debug ("session %.8s: ignoring a %s of path generation %u (ours is %u)",
               self->session_id, sigmsg_type_to_string (msg->type), msg->generation,
               self->generation);
      return;
    }
  g_debug ("session %.8s: received %s", self->session_id, sigmsg_type_to_string (msg->type));
  switch (msg->type)
    {
    case SIGMSG_OFFER:
      if (self->controlling || self->started)
        return;
      tunnel_set_remote (self, msg);
      tunnel_send_credentials (self, SIGMSG_ANSWER);
      tunnel_gather (self);
      break;
    case SIGMSG_ANSWER:
      if (self->controlling)
        tunnel_set_remote (self, msg);
      break;
    case SIGMSG_CANDIDATE:
      if (self->remote_credentials)
        add_remote_candidate (self, msg->candidate);
      else if (self->early_candidates->len < TUNNEL_MAX_EARLY_CANDIDATES)
        g_ptr_array_add (self->early_candidates, g_strdup (msg->candidate));
      break;
    case SIGMSG_END_OF_CANDIDATES:
      /* Messages can overtake each other on their way (separate requests). */
      if (self->remote_credentials)
        nice_agent_peer_candidate_gathering_done (self->agent, self->stream_id);
      else
        self->early_end_of_candidates = TRUE;
      break;
    case SIGMSG_BYE:
      if (g_strcmp0 (msg->reason, "not-trusted") == 0)
        tunnel_fail (self, TUNNEL_ERROR_REFUSED,
                     "the peer does not trust this agent (our peer-id is %s); on the peer, "
                     "add it with --trust %s", self->identity->peer_id,
                     self->identity->peer_id);
      else
        tunnel_fail (self,
                     session_is_up (self->session) ? TUNNEL_ERROR_CLOSED
                                                   : TUNNEL_ERROR_REFUSED,
                     "the peer ended the session: %s%s%s", msg->reason,
                     msg->text ? ": " : "", msg->text ? msg->text : "");
      break;
    }
}

void
tunnel_resend_signals (Tunnel *self)
{
  for (guint i = 0; i < self->sent->len; i++)
    self->cb.signal (self->sent->pdata[i], self->user_data);
}

gboolean
tunnel_has_answer (Tunnel *self)
{
  return self->remote_credentials;
}

gboolean
tunnel_is_up (Tunnel *self)
{
  return session_is_up (self->session) && !self->down;
}

const char *
tunnel_session (Tunnel *self)
{
  return self->session_id;
}

const char *
tunnel_peer_id (Tunnel *self)
{
  return self->peer_id;
}

Transport *
tunnel_transport (Tunnel *self)
{
  return session_transport (self->session);
}

const TunnelPath *
tunnel_path (Tunnel *self)
{
  return &self->path;
}

void
tunnel_close (Tunnel *self, const char *reason, const char *text)
{
  Sigmsg *bye = sigmsg_new (SIGMSG_BYE, self->session_id);

  session_close (self->session, text);
  bye->reason = g_strdup (reason);
  bye->text = g_strdup (text);
  tunnel_send_signal (self, bye);
}
