/* One tunnel: a session over its current path; see tunnel.h. */
#include "tunnel.h"

#include "path.h"
#include "peerid.h"

/* A network change can make two restarts within a debounce of each other;
 * more than this from a peer is abuse. */
#define TUNNEL_MAX_OFFERS_PER_S 3
/* Candidates of a next generation held until its offer (tunnel_hold_early). */
#define TUNNEL_MAX_EARLY_CANDIDATES 64

struct _Tunnel
{
  GMainContext *context;
  const Identity *identity;
  char peer_id[PEERID_SIZE];
  char session_id[SIGMSG_SESSION_LEN + 1];
  gboolean controlling;
  TunnelCallbacks cb;
  gpointer user_data;
  /* For the paths of later generations. */
  const char *const *local_addresses;
  gboolean relay_only;
  RelayReleases *releases;
  Warn warn;

  Session *session;
  /* The path the session runs over, and the next generation while it is
   * being made (NULL otherwise). Signaling messages of another generation
   * are for neither (PROTOCOL.md section 4). */
  Path *path;
  Path *next;
  gboolean path_lost;       /* ICE declared self->path failed */
  guint32 max_generation;   /* the highest made or asked for */
  GSource *next_deadline;
  GSource *retry;           /* the next restart, after a backoff */
  GSource *relay_move;      /* the move off our relay's expiring credentials */
  guint backoff_s;
  gint64 last_request;      /* the peer's last restart request we acted on */
  guint32 asked_generation; /* controlled: the generation we asked for last */
  gint64 offers_since;      /* controlled: restart offers taken in this second */
  guint offers;
  guint restarts;
  guint stalls;
  GPtrArray *dead;          /* Path*: freed from an idle, not from their own callbacks */
  GSource *reaper;
  GPtrArray *sent; /* Sigmsg* of generation 0, for tunnel_resend_signals */
  /* Controlled side: the candidates of a next generation that came before
   * its offer (the peer POSTs them at once, and the server may store them
   * in another order), for the path that the offer makes. */
  guint32 early_generation;
  GPtrArray *early_candidates; /* char*, at most TUNNEL_MAX_EARLY_CANDIDATES */
  gboolean early_end;

  TunnelMediaSink media_sink;
  gpointer media_data;

  gboolean down;
  GError *down_error;
  GSource *down_idle;
};

G_DEFINE_QUARK (p2ptun-tunnel-error-quark, tunnel_error)

char *
tunnel_path_to_string (const TunnelPath *path)
{
  return path_info_to_string (path);
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
  if (msg->type != SIGMSG_BYE && msg->generation == 0)
    g_ptr_array_add (self->sent, msg);
  else
    sigmsg_free (msg);
}

static void tunnel_arm_relay_move (Tunnel *self);

/* ---- the session ---- */

static gboolean
session_on_send_record (const guint8 *buf, gsize len, gboolean more, gpointer data)
{
  Tunnel *self = data;

  return path_send (self->path, buf, len, more);
}

static void
session_on_flush (gpointer data)
{
  Tunnel *self = data;

  path_flush (self->path);
}

static gsize
session_on_max_datagram (gpointer data)
{
  Tunnel *self = data;

  return path_max_datagram (self->path);
}

static void
session_on_up (gpointer data)
{
  Tunnel *self = data;

  tunnel_arm_relay_move (self);
  self->cb.up (path_info (self->path), self->user_data);
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

static void tunnel_restart (Tunnel *self, TunnelRestartReason reason);
static void tunnel_stop_retry (Tunnel *self);

static void
session_on_silence (gint64 gap_us, gboolean over, gpointer data)
{
  Tunnel *self = data;

  if (self->cb.silence)
    self->cb.silence (gap_us, over, self->user_data);
  if (over)
    {
      /* The path works again (the old one, or the new one already): what
       * restarts remain to be tried can wait for the next silence. */
      tunnel_stop_retry (self);
      self->backoff_s = 0;
      /* A move off expiring credentials was perhaps among them. */
      tunnel_arm_relay_move (self);
    }
  else
    {
      self->stalls++;
      tunnel_restart (self, TUNNEL_RESTART_SILENCE);
    }
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
  .flush = session_on_flush,
  .max_datagram = session_on_max_datagram,
  .up = session_on_up,
  .open_request = session_on_open_request,
  .rtt = session_on_rtt,
  .silence = session_on_silence,
  .down = session_on_down,
};

/* ---- the paths ---- */

static gboolean
reap_dead (gpointer data)
{
  Tunnel *self = data;

  g_clear_pointer (&self->reaper, g_source_unref);
  g_ptr_array_set_size (self->dead, 0);
  return G_SOURCE_REMOVE;
}

/* Frees @path soon: we may be inside one of its callbacks. */
static void
tunnel_bury (Tunnel *self, Path *path)
{
  if (path == NULL)
    return;
  g_ptr_array_add (self->dead, path);
  if (self->reaper == NULL)
    {
      self->reaper = g_idle_source_new ();
      g_source_set_callback (self->reaper, reap_dead, self, NULL);
      g_source_attach (self->reaper, self->context);
    }
}

static void
clear_source (GSource **source)
{
  if (*source)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static void
tunnel_stop_retry (Tunnel *self)
{
  clear_source (&self->retry);
}

static void
tunnel_drop_next (Tunnel *self)
{
  clear_source (&self->next_deadline);
  tunnel_bury (self, g_steal_pointer (&self->next));
}

/* ---- relay credentials ---- */

/* When (Unix seconds) the path in use is to move off the credentials of
 * the relay allocation that its pair goes through on our side (see
 * TUNNEL_RELAY_MARGIN_MIN_S), and in @expiry when they expire; 0: it need
 * not move. */
static gint64
tunnel_relay_move_time (Tunnel *self, gint64 *expiry)
{
  gint64 lifetime_s;
  gint64 margin_s;

  *expiry = path_relay_expiry (self->path, &lifetime_s);
  /* Credentials that had expired when the path was made, yet made an
   * allocation: this machine's clock runs ahead, and tells nothing. */
  if (*expiry == 0 || lifetime_s <= 0)
    return 0;
  margin_s = MAX (lifetime_s / TUNNEL_RELAY_MARGIN_DIVISOR,
                  (gint64) TUNNEL_RELAY_MARGIN_MIN_S);
  if (!self->controlling)
    margin_s -= margin_s / 4;
  return *expiry - margin_s;
}

/* Whether the path in use is to move off its relay credentials now, and
 * can: the owner has credentials that outlive them. */
static gboolean
tunnel_relay_due (Tunnel *self)
{
  gint64 expiry;
  gint64 at = tunnel_relay_move_time (self, &expiry);

  return at != 0 && g_get_real_time () >= at * G_USEC_PER_SEC
         && relays_expiry (self->cb.ice_servers (self->user_data)) > expiry;
}

static gboolean
on_relay_move (gpointer data)
{
  Tunnel *self = data;

  g_clear_pointer (&self->relay_move, g_source_unref);
  if (tunnel_relay_due (self))
    tunnel_restart (self, TUNNEL_RESTART_CREDENTIALS);
  else
    g_debug ("session %.8s: waiting for fresh relay credentials", self->session_id);
  return G_SOURCE_REMOVE;
}

/* Sets the timer of the move off the relay credentials of the path in use
 * (again: the pair changed, or a restart that could have been the move was
 * called off). */
static void
tunnel_arm_relay_move (Tunnel *self)
{
  gint64 expiry;
  gint64 at = tunnel_relay_move_time (self, &expiry);
  gint64 now_ms = g_get_real_time () / 1000;
  gint64 delay_ms;

  clear_source (&self->relay_move);
  if (at == 0 || self->down)
    return;
  delay_ms = CLAMP (at * 1000 - now_ms, 0, (gint64) G_MAXUINT);
  g_debug ("session %.8s: relay credentials of ICE generation %u expire in %.1f s; "
           "moving in %.1f s", self->session_id, path_generation (self->path),
           (expiry * 1000 - now_ms) / 1000.0, delay_ms / 1000.0);
  self->relay_move = g_timeout_source_new ((guint) delay_ms);
  g_source_set_callback (self->relay_move, on_relay_move, self, NULL);
  g_source_attach (self->relay_move, self->context);
}

void
tunnel_relays_renewed (Tunnel *self)
{
  if (!self->down && tunnel_relay_due (self))
    tunnel_restart (self, TUNNEL_RESTART_CREDENTIALS);
}

/* ---- restarts ---- */

/* Whether the path in use needs replacing. */
static gboolean
tunnel_needs_path (Tunnel *self)
{
  return self->path_lost || session_is_stalled (self->session) || tunnel_relay_due (self);
}

static gboolean
on_retry (gpointer data)
{
  Tunnel *self = data;

  g_clear_pointer (&self->retry, g_source_unref);
  if (self->path_lost || session_is_stalled (self->session))
    tunnel_restart (self, TUNNEL_RESTART_RETRY);
  else if (tunnel_relay_due (self))
    tunnel_restart (self, TUNNEL_RESTART_CREDENTIALS);
  return G_SOURCE_REMOVE;
}

/* The expensive step (gathering, relay allocations, signaling) backs off;
 * the session's pings probe the old path every second meanwhile. */
static void
tunnel_schedule_retry (Tunnel *self)
{
  if (self->retry || self->down)
    return;
  self->backoff_s = CLAMP (self->backoff_s * 2, 1, TUNNEL_RESTART_BACKOFF_MAX_S);
  self->retry = g_timeout_source_new_seconds (self->backoff_s);
  g_source_set_callback (self->retry, on_retry, self, NULL);
  g_source_attach (self->retry, self->context);
}

static gboolean
on_next_deadline (gpointer data)
{
  Tunnel *self = data;

  g_clear_pointer (&self->next_deadline, g_source_unref);
  g_debug ("session %.8s: ICE generation %u found no pair within %d s", self->session_id,
           path_generation (self->next), TUNNEL_RESTART_DEADLINE_S);
  tunnel_drop_next (self);
  if (tunnel_needs_path (self))
    tunnel_schedule_retry (self);
  return G_SOURCE_REMOVE;
}

static const PathCallbacks path_callbacks;

static Path *
tunnel_new_path (Tunnel *self, guint32 generation, GError **error)
{
  PathConfig config = {
    .session = self->session_id,
    .generation = generation,
    .controlling = self->controlling,
    .ice_servers = self->cb.ice_servers (self->user_data),
    .local_addresses = self->local_addresses,
    .relay_only = self->relay_only,
    .releases = self->releases,
    .warn = self->warn,
  };

  return path_new (self->context, &config, &path_callbacks, self, error);
}

/* The path of @generation replaces the one under way (if any), with its
 * deadline; FALSE (said as a warning) when it cannot be made. */
static gboolean
tunnel_make_next (Tunnel *self, guint32 generation, TunnelRestartReason reason)
{
  g_autoptr (GError) error = NULL;

  tunnel_drop_next (self);
  self->next = tunnel_new_path (self, generation, &error);
  if (self->next == NULL)
    {
      warn_say (&self->warn, "cannot restart ICE: %s", error->message);
      return FALSE;
    }
  self->restarts++;
  self->next_deadline = g_timeout_source_new_seconds (TUNNEL_RESTART_DEADLINE_S);
  g_source_set_callback (self->next_deadline, on_next_deadline, self, NULL);
  g_source_attach (self->next_deadline, self->context);
  /* The controlled side told of a generation it asked for when it asked. */
  if (self->cb.restarting && (self->controlling || generation != self->asked_generation))
    self->cb.restarting (generation, reason, self->user_data);
  return TRUE;
}

/* Makes (controlling) or asks for (controlled) the next ICE generation. */
static void
tunnel_restart (Tunnel *self, TunnelRestartReason reason)
{
  if (self->down || !session_is_up (self->session))
    return;
  tunnel_stop_retry (self);
  if (!self->controlling && self->next && reason != TUNNEL_RESTART_NETWORK)
    {
      /* The peer's generation under way is given its time (its deadline
       * asks again if it finds nothing). */
      tunnel_schedule_retry (self);
      return;
    }
  if (!self->controlling)
    {
      Sigmsg *msg = sigmsg_new (SIGMSG_RESTART, self->session_id);

      msg->generation = self->max_generation + 1;
      self->asked_generation = msg->generation;
      if (self->cb.restarting)
        self->cb.restarting (msg->generation, reason, self->user_data);
      tunnel_send_signal (self, msg);
      /* Asked again after the backoff, while the path stays dead. */
      tunnel_schedule_retry (self);
      return;
    }
  /* A generation under way is given its time, unless the network changed
   * under it too. */
  if (self->next && reason != TUNNEL_RESTART_NETWORK)
    return;
  if (tunnel_make_next (self, ++self->max_generation, reason))
    path_offer (self->next);
  else
    tunnel_schedule_retry (self);
}

/* The controlled side: the peer's offer of a later generation. */
/* Controlled side: a candidate (or the end of them) of a generation whose
 * offer has not come yet. Only the newest such generation is kept. */
static void
tunnel_hold_early (Tunnel *self, const Sigmsg *msg)
{
  if (msg->generation != self->early_generation)
    {
      g_ptr_array_set_size (self->early_candidates, 0);
      self->early_end = FALSE;
      self->early_generation = msg->generation;
    }
  g_debug ("session %.8s: holding a %s of ICE generation %u until its offer", self->session_id,
           sigmsg_type_to_string (msg->type), msg->generation);
  if (msg->type == SIGMSG_END_OF_CANDIDATES)
    self->early_end = TRUE;
  else if (self->early_candidates->len < TUNNEL_MAX_EARLY_CANDIDATES)
    g_ptr_array_add (self->early_candidates, g_strdup (msg->candidate));
}

/* What tunnel_hold_early() kept for the generation @next was made for. */
static void
tunnel_replay_early (Tunnel *self, Path *next)
{
  guint32 generation = path_generation (next);

  if (generation == self->early_generation)
    {
      for (guint i = 0; i < self->early_candidates->len; i++)
        {
          g_autoptr (Sigmsg) m = sigmsg_new (SIGMSG_CANDIDATE, self->session_id);

          m->generation = generation;
          m->candidate = g_strdup (self->early_candidates->pdata[i]);
          path_handle_signal (next, m);
        }
      if (self->early_end)
        {
          g_autoptr (Sigmsg) m = sigmsg_new (SIGMSG_END_OF_CANDIDATES, self->session_id);

          m->generation = generation;
          path_handle_signal (next, m);
        }
    }
  g_ptr_array_set_size (self->early_candidates, 0);
  self->early_end = FALSE;
  self->early_generation = 0;
}

static void
tunnel_accept_restart (Tunnel *self, const Sigmsg *offer)
{
  tunnel_stop_retry (self);
  self->max_generation = offer->generation;
  if (tunnel_make_next (self, offer->generation, TUNNEL_RESTART_PEER))
    {
      path_handle_signal (self->next, offer);
      tunnel_replay_early (self, self->next);
    }
}

/* The next generation selected a pair: the session moves to it, and the
 * old path (and its relay allocations) goes. */
static void
tunnel_promote_next (Tunnel *self)
{
  g_debug ("session %.8s: ICE generation %u replaces %u", self->session_id,
           path_generation (self->next), path_generation (self->path));
  clear_source (&self->next_deadline);
  tunnel_bury (self, self->path);
  self->path = g_steal_pointer (&self->next);
  self->path_lost = FALSE;
  self->backoff_s = 0;
  tunnel_stop_retry (self);
  session_path_changed (self->session);
}

static void
path_on_signal (Path *path, Sigmsg *msg, gpointer data)
{
  Tunnel *self = data;

  tunnel_send_signal (self, msg);
}

static void
path_on_connected (Path *path, gpointer data)
{
  Tunnel *self = data;

  if (path == self->path)
    session_start (self->session);
}

static void
path_on_selected (Path *path, const PathInfo *info, gboolean new_pair, gpointer data)
{
  Tunnel *self = data;

  if (path == self->next)
    {
      if (!new_pair)
        return;
      tunnel_promote_next (self);
    }
  else if (new_pair)
    session_path_changed (self->session);
  if (path == self->path)
    tunnel_arm_relay_move (self);
  if (session_is_up (self->session) && self->cb.path_changed)
    self->cb.path_changed (info, self->user_data);
}

static void
path_on_receive (Path *path, const guint8 *buf, gsize len, gpointer data)
{
  Tunnel *self = data;

  if (self->down)
    return;
  /* RFC 7983: 128..191 is RTP or RTCP (here SRTP or SRTCP); the path
   * passes on nothing but that and DTLS. */
  if (buf[0] >= 128 && buf[0] <= 191)
    {
      if (self->media_sink != NULL)
        self->media_sink (buf, len, self->media_data);
      return;
    }
  session_receive (self->session, buf, len);
}

/* Before the session is up, losing the path ends the tunnel, with what ICE
 * found. Later a lost path is replaced by the next generation: the user
 * hears that the path was lost, not which candidates it began with. */
static void
path_on_lost (Path *path, const GError *error, gpointer data)
{
  Tunnel *self = data;

  if (g_error_matches (error, PATH_ERROR, PATH_ERROR_INTERNAL) && path == self->path
      && !session_is_up (self->session))
    tunnel_fail (self, TUNNEL_ERROR_INTERNAL, "%s", error->message);
  else if (path == self->next)
    {
      g_debug ("session %.8s: ICE generation %u failed: %s", self->session_id,
               path_generation (path), error->message);
      tunnel_drop_next (self);
      if (tunnel_needs_path (self))
        tunnel_schedule_retry (self);
    }
  else if (path != self->path)
    return;
  else if (!session_is_up (self->session))
    tunnel_fail (self, TUNNEL_ERROR_ICE_FAILED, "%s", error->message);
  else if (!self->path_lost)
    {
      g_debug ("session %.8s: ICE generation %u lost: %s", self->session_id,
               path_generation (path), error->message);
      self->path_lost = TRUE;
      tunnel_restart (self, TUNNEL_RESTART_LOST);
    }
}

static const PathCallbacks path_callbacks = {
  .signal = path_on_signal,
  .connected = path_on_connected,
  .selected = path_on_selected,
  .receive = path_on_receive,
  .lost = path_on_lost,
};

/* ---- the tunnel ---- */

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
  self->controlling = config->controlling;
  self->cb = *callbacks;
  self->user_data = user_data;
  self->local_addresses = config->local_addresses;
  self->relay_only = config->relay_only;
  self->releases = config->releases;
  self->warn = config->warn;
  g_strlcpy (self->peer_id, config->peer_id, sizeof self->peer_id);
  g_strlcpy (self->session_id, config->session, sizeof self->session_id);
  self->sent = g_ptr_array_new_with_free_func ((GDestroyNotify) sigmsg_free);
  self->early_candidates = g_ptr_array_new_with_free_func (g_free);
  self->dead = g_ptr_array_new_with_free_func ((GDestroyNotify) path_free);

  self->session = session_new (context, config->identity, config->peer_id, config->controlling,
                               config->hold_s, &session_callbacks, self, error);
  if (self->session == NULL)
    return NULL;
  self->path = tunnel_new_path (self, 0, &local_error);
  if (self->path == NULL)
    {
      g_set_error (error, TUNNEL_ERROR, TUNNEL_ERROR_INTERNAL, "%s", local_error->message);
      return NULL;
    }
  return g_steal_pointer (&self);
}

void
tunnel_free (Tunnel *self)
{
  if (self == NULL)
    return;
  clear_source (&self->down_idle);
  clear_source (&self->next_deadline);
  clear_source (&self->retry);
  clear_source (&self->relay_move);
  clear_source (&self->reaper);
  /* The session sends through the path: it goes first. */
  session_free (self->session);
  path_free (self->next);
  path_free (self->path);
  g_clear_pointer (&self->dead, g_ptr_array_unref);
  g_clear_pointer (&self->sent, g_ptr_array_unref);
  g_clear_pointer (&self->early_candidates, g_ptr_array_unref);
  g_clear_error (&self->down_error);
  g_main_context_unref (self->context);
  g_free (self);
}

void
tunnel_start (Tunnel *self)
{
  path_offer (self->path);
}

/* A bye ends the session only in a generation it has seen: one made so
 * far (the peer may not have moved to the newest yet), or the one it asked
 * for (the peer may answer that request with "unknown-session"). */
static gboolean
tunnel_knows_generation (Tunnel *self, guint32 generation)
{
  return generation <= self->max_generation
         || (self->asked_generation != 0 && generation == self->asked_generation);
}

/* A restart request of the controlled side. It may repeat while the path
 * stays dead; a peer cannot make us gather more than once a second. A
 * generation under way that is as new as the one asked for is given its
 * time (its deadline retries it). */
static void
tunnel_handle_restart_request (Tunnel *self, const Sigmsg *msg)
{
  gint64 now = g_get_monotonic_time ();

  if (!self->controlling || !session_is_up (self->session))
    return;
  if (self->next && msg->generation <= self->max_generation)
    return;
  /* Sent before the peer saw the offer of the generation in use: both
   * sides moved off expiring relay credentials at once, say. */
  if (msg->generation <= path_generation (self->path))
    return;
  if (now - self->last_request < G_USEC_PER_SEC)
    return;
  self->last_request = now;
  tunnel_drop_next (self);
  self->backoff_s = 0;
  tunnel_restart (self, TUNNEL_RESTART_PEER);
}

void
tunnel_handle_signal (Tunnel *self, const Sigmsg *msg)
{
  Path *path = NULL;

  if (self->down || strcmp (msg->session, self->session_id) != 0)
    return;
  if (msg->type == SIGMSG_BYE && !tunnel_knows_generation (self, msg->generation))
    {
      g_debug ("session %.8s: ignoring a bye of ICE generation %u", self->session_id,
               msg->generation);
      return;
    }
  if (msg->type == SIGMSG_BYE)
    {
      if (g_strcmp0 (msg->reason, "not-trusted") == 0)
        tunnel_fail (self, TUNNEL_ERROR_REFUSED,
                     "the peer does not trust this agent (our peer-id is %s); on the peer, "
                     "add it with --trust %s", self->identity->peer_id, self->identity->peer_id);
      else
        tunnel_fail (self,
                     session_is_up (self->session) ? TUNNEL_ERROR_CLOSED : TUNNEL_ERROR_REFUSED,
                     "the peer ended the session: %s%s%s", msg->reason, msg->text ? ": " : "",
                     msg->text ? msg->text : "");
      return;
    }
  if (msg->type == SIGMSG_RESTART)
    {
      tunnel_handle_restart_request (self, msg);
      return;
    }
  if (msg->generation == path_generation (self->path))
    path = self->path;
  else if (self->next && msg->generation == path_generation (self->next))
    path = self->next;
  else if (msg->type == SIGMSG_OFFER && !self->controlling && session_is_up (self->session)
           && msg->generation > self->max_generation)
    {
      /* Each generation is an ICE agent with relay allocations: a peer
       * gets at most TUNNEL_MAX_OFFERS_PER_S a second. (Its offer is not
       * lost for good: a generation that finds no pair is retried.) */
      gint64 now = g_get_monotonic_time ();

      if (now - self->offers_since >= G_USEC_PER_SEC)
        {
          self->offers_since = now;
          self->offers = 0;
        }
      if (++self->offers > TUNNEL_MAX_OFFERS_PER_S)
        {
          g_debug ("session %.8s: ignoring an offer of ICE generation %u: too soon",
                   self->session_id, msg->generation);
          return;
        }
      g_debug ("session %.8s: received offer of ICE generation %u", self->session_id,
               msg->generation);
      tunnel_accept_restart (self, msg);
      return;
    }
  if (path == NULL && !self->controlling && msg->generation > self->max_generation
      && (msg->type == SIGMSG_CANDIDATE || msg->type == SIGMSG_END_OF_CANDIDATES))
    {
      tunnel_hold_early (self, msg);
      return;
    }
  if (path == NULL)
    {
      g_debug ("session %.8s: ignoring a %s of ICE generation %u", self->session_id,
               sigmsg_type_to_string (msg->type), msg->generation);
      return;
    }
  g_debug ("session %.8s: received %s (generation %u)", self->session_id,
           sigmsg_type_to_string (msg->type), msg->generation);
  path_handle_signal (path, msg);
}

void
tunnel_network_changed (Tunnel *self, gboolean (*has_address) (const char *ip),
                        gboolean route_moved)
{
  if (self->down || !session_is_up (self->session))
    return;
  if (route_moved || path_lost_address (self->path, has_address))
    {
      self->backoff_s = 0;
      tunnel_restart (self, TUNNEL_RESTART_NETWORK);
    }
}

guint32
tunnel_generation (Tunnel *self)
{
  return path_generation (self->path);
}

guint
tunnel_restarts (Tunnel *self)
{
  return self->restarts;
}

guint
tunnel_stalls (Tunnel *self)
{
  return self->stalls;
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
  return path_has_remote (self->path);
}

gboolean
tunnel_is_up (Tunnel *self)
{
  return session_is_up (self->session) && !self->down;
}

gboolean
tunnel_is_stalled (Tunnel *self)
{
  return session_is_stalled (self->session);
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
  return path_info (self->path);
}

void
tunnel_close (Tunnel *self, const char *reason, const char *text)
{
  Sigmsg *bye = sigmsg_new (SIGMSG_BYE, self->session_id);

  session_close (self->session, text);
  bye->generation = path_generation (self->path);
  bye->reason = g_strdup (reason);
  bye->text = g_strdup (text);
  tunnel_send_signal (self, bye);
}

gboolean
tunnel_set_media_sink (Tunnel *self, TunnelMediaSink sink, gpointer user_data)
{
  if (self->media_sink != NULL)
    return FALSE;
  self->media_sink = sink;
  self->media_data = user_data;
  return TRUE;
}

void
tunnel_clear_media_sink (Tunnel *self, gpointer user_data)
{
  if (self->media_data != user_data)
    return;
  self->media_sink = NULL;
  self->media_data = NULL;
}

gboolean
tunnel_send_media (Tunnel *self, const guint8 *buf, gsize len)
{
  if (self->down || self->path == NULL)
    return FALSE;
  return path_send (self->path, buf, len, FALSE);
}

gsize
tunnel_media_max (Tunnel *self)
{
  return self->path != NULL ? path_max_datagram (self->path) : PATH_DATAGRAM_MIN;
}

gboolean
tunnel_srtp_keys (Tunnel *self, DtlsSrtpKeys *keys)
{
  return session_srtp_keys (self->session, keys);
}
