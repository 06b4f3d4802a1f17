/* One session with a peer: DTLS + transport + liveness; see session.h. */
#include "session.h"

#include "dtls.h"

#include <string.h>

/* The tick runs when a ping, a stall threshold or the hold limit is due,
 * and at least this often: 4 times a second while data is in flight or the
 * peer is silent, so that a dead path is noticed within a quarter of a
 * second of the thresholds (session.h); once a second when idle, so that
 * an idle agent sleeps (a transfer that starts is seen within a second). */
#define SESSION_LOOK_BUSY_US (G_USEC_PER_SEC / 4)
#define SESSION_LOOK_IDLE_US G_USEC_PER_SEC
/* Handshake records that found no selected pair yet, resent when one exists. */
#define SESSION_MAX_HELD_RECORDS 8

struct _Session
{
  GMainContext *context;
  SessionCallbacks cb;
  gpointer user_data;
  guint hold_s;

  Dtls *dtls;
  gboolean started;
  GPtrArray *held;   /* GBytes: DTLS records that did not go out before up */
  Transport *transport;
  gboolean up;
  gboolean down;
  gboolean controlling;
  gint64 last_ping;
  gint64 last_heard; /* a DTLS record from the peer */
  gboolean silent;   /* stalled: said so through cb.silence */
  gboolean in_burst; /* the transport is sending: a flush follows */
  GSource *tick;     /* silence, pings, death; its ready time is the next due */
};

G_DEFINE_QUARK (p2ptun-session-error-quark, session_error)

static void
session_stop_tick (Session *self)
{
  if (self->tick)
    {
      g_source_destroy (self->tick);
      g_clear_pointer (&self->tick, g_source_unref);
    }
}

static void
session_fail (Session *self, SessionError code, const char *format, ...) G_GNUC_PRINTF (3, 4);

static void
session_fail (Session *self, SessionError code, const char *format, ...)
{
  g_autoptr (GError) error = NULL;
  va_list ap;

  if (self->down)
    return;
  self->down = TRUE;
  session_stop_tick (self);
  va_start (ap, format);
  error = g_error_new_valist (SESSION_ERROR, code, format, ap);
  va_end (ap);
  self->cb.down (error, self->user_data);
}

/* ---- DTLS ---- */

static void
dtls_on_send_record (const guint8 *buf, gsize len, gpointer data)
{
  Session *self = data;

  /* The answerer can get the ClientHello before its own checks selected a
   * pair: hold its answer until one is (session_path_changed()), rather
   * than waiting for a DTLS retransmission. The path cannot tell a
   * handshake record from another; the session can. Later a failed send is
   * a lost datagram, which DTLS and the transport recover from. */
  if (!self->cb.send_record (buf, len, self->in_burst, self->user_data) && !self->up
      && self->held->len < SESSION_MAX_HELD_RECORDS)
    g_ptr_array_add (self->held, g_bytes_new (buf, len));
}

static void
dtls_on_connected (gpointer data)
{
  Session *self = data;

  transport_start (self->transport, dtls_max_payload (self->dtls),
                   dtls_max_payload_for_link (self->dtls, self->cb.max_datagram (self->user_data)));
}

static void
dtls_on_data (const guint8 *buf, gsize len, gpointer data)
{
  Session *self = data;

  transport_receive_packet (self->transport, buf, len);
}

static void
dtls_on_failed (const GError *error, gpointer data)
{
  Session *self = data;

  if (g_error_matches (error, DTLS_ERROR, DTLS_ERROR_PEER_MISMATCH))
    session_fail (self, SESSION_ERROR_PEER_MISMATCH, "%s", error->message);
  else if (g_error_matches (error, DTLS_ERROR, DTLS_ERROR_CLOSED))
    /* close_notify is only sent by a peer that ends the tunnel in order. */
    session_fail (self, SESSION_ERROR_CLOSED, "the peer ended the tunnel");
  else
    session_fail (self, SESSION_ERROR_DTLS, "%s", error->message);
}

static const DtlsCallbacks dtls_callbacks = {
  .send_record = dtls_on_send_record,
  .connected = dtls_on_connected,
  .data = dtls_on_data,
  .failed = dtls_on_failed,
};

/* ---- transport ---- */

static void
transport_on_send_packet (const guint8 *buf, gsize len, gpointer data)
{
  Session *self = data;

  self->in_burst = TRUE;
  (void) dtls_send (self->dtls, buf, len);
  self->in_burst = FALSE;
}

static void
transport_on_flush (gpointer data)
{
  Session *self = data;

  self->cb.flush (self->user_data);
}

/* While the path works, the DTLS client's pings keep both ends' failure
 * detectors fed, and the server pings only when they stop coming; a
 * silent peer is pinged every second by both. */
static gint64
session_next_ping (Session *self)
{
  gint64 interval = SESSION_PING_INTERVAL_S * G_USEC_PER_SEC;

  if (self->silent)
    return self->last_ping + G_USEC_PER_SEC;
  if (self->controlling)
    return self->last_ping + interval;
  return MAX (self->last_ping + interval, self->last_heard + interval + G_USEC_PER_SEC);
}

static void
session_schedule_tick (Session *self, gint64 now)
{
  gboolean loaded = transport_bytes_in_flight (self->transport) > 0;
  gint64 next = now + (self->silent || loaded ? SESSION_LOOK_BUSY_US : SESSION_LOOK_IDLE_US);

  next = MIN (next, session_next_ping (self));
  if (!self->silent)
    next = MIN (next, self->last_heard
                          + (loaded ? SESSION_STALL_LOADED_US : SESSION_STALL_IDLE_US) + 1);
  next = MIN (next, self->last_heard + (gint64) self->hold_s * G_USEC_PER_SEC + 1);
  g_source_set_ready_time (self->tick, MAX (next, now));
}

static gboolean
on_tick (gpointer data)
{
  Session *self = data;
  gint64 now = g_get_monotonic_time ();
  gint64 gap = now - self->last_heard;

  if (gap > (gint64) self->hold_s * G_USEC_PER_SEC)
    {
      session_fail (self, SESSION_ERROR_TIMEOUT,
                    "the peer stopped answering (no reply for %u s, the --hold limit)",
                    self->hold_s);
      return G_SOURCE_REMOVE;
    }
  if (!self->silent
      && (gap > SESSION_STALL_IDLE_US
          || (gap > SESSION_STALL_LOADED_US && transport_bytes_in_flight (self->transport) > 0)))
    {
      self->silent = TRUE;
      if (self->cb.silence)
        self->cb.silence (gap, FALSE, self->user_data);
    }
  /* A ping a second while the path looks dead: the cheapest probe of a path
   * that may come back. */
  if (now >= session_next_ping (self))
    {
      self->last_ping = now;
      transport_ping (self->transport);
    }
  session_schedule_tick (self, now);
  return G_SOURCE_CONTINUE;
}

static gboolean
tick_dispatch (GSource *source, GSourceFunc callback, gpointer data)
{
  return callback (data);
}

static GSourceFuncs tick_funcs = {
  .dispatch = tick_dispatch,
};

static void
transport_on_ready (gpointer data)
{
  Session *self = data;

  self->up = TRUE;
  self->last_ping = self->last_heard = g_get_monotonic_time ();
  transport_ping (self->transport);
  self->tick = g_source_new (&tick_funcs, sizeof (GSource));
  g_source_set_name (self->tick, "p2ptun-session-tick");
  g_source_set_callback (self->tick, on_tick, self, NULL);
  session_schedule_tick (self, self->last_ping);
  g_source_attach (self->tick, self->context);
  self->cb.up (self->user_data);
}

static void
transport_on_open_request (TransportStream *stream, const char *service, gpointer data)
{
  Session *self = data;

  self->cb.open_request (stream, service, self->user_data);
}

static void
transport_on_rtt (gint64 rtt_us, gpointer data)
{
  Session *self = data;

  if (self->cb.rtt)
    self->cb.rtt (rtt_us, self->user_data);
}

static void
transport_on_closed (guint8 code, const char *text, gpointer data)
{
  Session *self = data;

  if (code != 0)
    session_fail (self, SESSION_ERROR_CLOSED, "the peer ended the tunnel: %s", text);
  else
    session_fail (self, SESSION_ERROR_CLOSED, "the tunnel broke: %s", text);
}

static const TransportCallbacks transport_callbacks = {
  .send_packet = transport_on_send_packet,
  .flush = transport_on_flush,
  .ready = transport_on_ready,
  .open_request = transport_on_open_request,
  .rtt = transport_on_rtt,
  .closed = transport_on_closed,
};

/* ---- the session ---- */

Session *
session_new (GMainContext *context, const Identity *identity, const char *peer_id,
             gboolean controlling, guint hold_s, const SessionCallbacks *callbacks,
             gpointer user_data, GError **error)
{
  g_autoptr (Session) self = g_new0 (Session, 1);

  self->context = g_main_context_ref (context);
  self->hold_s = hold_s;
  self->controlling = controlling;
  self->cb = *callbacks;
  self->user_data = user_data;
  self->held = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  self->dtls = dtls_new (context, identity, controlling, peer_id, &dtls_callbacks, self, error);
  if (self->dtls == NULL)
    return NULL;
  self->transport = transport_new (context, controlling, &transport_callbacks, self);
  /* The session's own limit ends it first, with its message. */
  transport_set_idle_timeout (self->transport, hold_s + 5);
  return g_steal_pointer (&self);
}

void
session_free (Session *self)
{
  if (self == NULL)
    return;
  session_stop_tick (self);
  /* The transport sends through DTLS: it goes first. */
  transport_free (self->transport);
  dtls_free (self->dtls);
  g_ptr_array_unref (self->held);
  g_main_context_unref (self->context);
  g_free (self);
}

void
session_start (Session *self)
{
  if (self->started)
    return;
  self->started = TRUE;
  dtls_start (self->dtls);
}

void
session_receive (Session *self, const guint8 *buf, gsize len)
{
  if (self->up)
    {
      gint64 now = g_get_monotonic_time ();

      if (self->silent && self->cb.silence)
        self->cb.silence (now - self->last_heard, TRUE, self->user_data);
      self->silent = FALSE;
      self->last_heard = now;
    }
  dtls_receive (self->dtls, buf, len);
}

void
session_path_changed (Session *self)
{
  for (guint i = 0; i < self->held->len; i++)
    {
      gsize len;
      const guint8 *buf = g_bytes_get_data (self->held->pdata[i], &len);

      (void) self->cb.send_record (buf, len, FALSE, self->user_data);
    }
  g_ptr_array_set_size (self->held, 0);
  transport_path_changed (self->transport,
                          dtls_max_payload_for_link (self->dtls,
                                                     self->cb.max_datagram (self->user_data)));
}

gboolean
session_is_stalled (Session *self)
{
  return self->silent;
}

gboolean
session_is_up (Session *self)
{
  return self->up;
}

Transport *
session_transport (Session *self)
{
  return self->transport;
}

gboolean
session_srtp_keys (Session *self, DtlsSrtpKeys *keys)
{
  if (!session_is_up (self))
    {
      memset (keys, 0, sizeof *keys);
      return FALSE;
    }
  return dtls_srtp_keys (self->dtls, keys);
}

void
session_close (Session *self, const char *text)
{
  if (!self->up)
    return;
  transport_bye (self->transport, 1, text);
  dtls_close (self->dtls);
}
