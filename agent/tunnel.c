/* One tunnel: a session over its current path; see tunnel.h. */
#include "tunnel.h"

#include "path.h"
#include "peerid.h"

struct _Tunnel
{
  GMainContext *context;
  const Identity *identity;
  char peer_id[PEERID_SIZE];
  char session_id[SIGMSG_SESSION_LEN + 1];
  TunnelCallbacks cb;
  gpointer user_data;

  Session *session;
  /* The path the session runs over. Signaling messages of another ICE
   * generation are not for it (PROTOCOL.md section 4); only generation 0
   * is made so far. */
  Path *path;
  GPtrArray *sent; /* Sigmsg*, for tunnel_resend_signals */

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
  if (msg->type != SIGMSG_BYE)
    g_ptr_array_add (self->sent, msg);
  else
    sigmsg_free (msg);
}

/* ---- the session ---- */

static gboolean
session_on_send_record (const guint8 *buf, gsize len, gpointer data)
{
  Tunnel *self = data;

  return path_send (self->path, buf, len);
}

static void
session_on_up (gpointer data)
{
  Tunnel *self = data;

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

/* ---- the path ---- */

static void
path_on_signal (Sigmsg *msg, gpointer data)
{
  Tunnel *self = data;

  tunnel_send_signal (self, msg);
}

static void
path_on_connected (gpointer data)
{
  Tunnel *self = data;

  session_start (self->session);
}

static void
path_on_selected (const PathInfo *info, gboolean new_pair, gpointer data)
{
  Tunnel *self = data;

  if (new_pair)
    session_path_changed (self->session);
  if (session_is_up (self->session) && self->cb.path_changed)
    self->cb.path_changed (info, self->user_data);
}

static void
path_on_receive (const guint8 *buf, gsize len, gpointer data)
{
  Tunnel *self = data;

  if (!self->down)
    session_receive (self->session, buf, len);
}

/* Losing the path ends the tunnel. (A new ICE generation could carry the
 * session on instead.) Once the session is up the user hears that the
 * path was lost, not which candidates the path began with. */
static void
path_on_lost (const GError *error, gpointer data)
{
  Tunnel *self = data;

  if (g_error_matches (error, PATH_ERROR, PATH_ERROR_INTERNAL))
    tunnel_fail (self, TUNNEL_ERROR_INTERNAL, "%s", error->message);
  else if (session_is_up (self->session))
    tunnel_fail (self, TUNNEL_ERROR_ICE_FAILED, "the path to the peer was lost");
  else
    tunnel_fail (self, TUNNEL_ERROR_ICE_FAILED, "%s", error->message);
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
  PathConfig path_config = {
    .session = config->session,
    .generation = 0,
    .controlling = config->controlling,
    .ice_servers = config->ice_servers,
    .local_addresses = config->local_addresses,
    .relay_only = config->relay_only,
    .releases = config->releases,
    .warn = config->warn,
  };

  g_return_val_if_fail (peerid_is_valid (config->peer_id), NULL);
  g_return_val_if_fail (config->releases != NULL, NULL);
  self->context = g_main_context_ref (context);
  self->identity = config->identity;
  self->cb = *callbacks;
  self->user_data = user_data;
  g_strlcpy (self->peer_id, config->peer_id, sizeof self->peer_id);
  g_strlcpy (self->session_id, config->session, sizeof self->session_id);
  self->sent = g_ptr_array_new_with_free_func ((GDestroyNotify) sigmsg_free);

  self->session = session_new (context, config->identity, config->peer_id, config->controlling,
                               &session_callbacks, self, error);
  if (self->session == NULL)
    return NULL;
  self->path = path_new (context, &path_config, &path_callbacks, self, &local_error);
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
  if (self->down_idle)
    {
      g_source_destroy (self->down_idle);
      g_source_unref (self->down_idle);
    }
  /* The session sends through the path: it goes first. */
  session_free (self->session);
  path_free (self->path);
  g_clear_pointer (&self->sent, g_ptr_array_unref);
  g_clear_error (&self->down_error);
  g_main_context_unref (self->context);
  g_free (self);
}

void
tunnel_start (Tunnel *self)
{
  path_offer (self->path);
}

void
tunnel_handle_signal (Tunnel *self, const Sigmsg *msg)
{
  if (self->down || strcmp (msg->session, self->session_id) != 0)
    return;
  if (msg->generation != path_generation (self->path))
    {
      g_debug ("session %.8s: ignoring a %s of path generation %u (ours is %u)",
               self->session_id, sigmsg_type_to_string (msg->type), msg->generation,
               path_generation (self->path));
      return;
    }
  g_debug ("session %.8s: received %s", self->session_id, sigmsg_type_to_string (msg->type));
  if (msg->type != SIGMSG_BYE)
    path_handle_signal (self->path, msg);
  else if (g_strcmp0 (msg->reason, "not-trusted") == 0)
    tunnel_fail (self, TUNNEL_ERROR_REFUSED,
                 "the peer does not trust this agent (our peer-id is %s); on the peer, "
                 "add it with --trust %s", self->identity->peer_id, self->identity->peer_id);
  else
    tunnel_fail (self,
                 session_is_up (self->session) ? TUNNEL_ERROR_CLOSED : TUNNEL_ERROR_REFUSED,
                 "the peer ended the session: %s%s%s", msg->reason, msg->text ? ": " : "",
                 msg->text ? msg->text : "");
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
  bye->reason = g_strdup (reason);
  bye->text = g_strdup (text);
  tunnel_send_signal (self, bye);
}
