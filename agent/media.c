/* The media leg; see media.h. */
#include "media.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "ctlmsg.h"
#include "path.h"
#include "srtpctx.h"

/* Packets read from one local socket in one dispatch, before others run. */
#define MEDIA_READ_BURST 64
/* The largest packet read or sent, and the room libsrtp2 writes past it. */
#define MEDIA_PACKET_MAX PATH_DATAGRAM_MAX
#define MEDIA_BUF (MEDIA_PACKET_MAX + SRTPCTX_TRAILER_ROOM)

enum
{
  MEDIA_RTP = 0, /* the RTP socket, which also takes muxed RTCP */
  MEDIA_RTCP = 1,
};

typedef struct
{
  guint64 auth_failed, replayed, too_big, over_rate, ssrcs, malformed;
} MediaDrops;

/* A token bucket: MEDIA_MAX_PPS packets a second, a second's worth at once. */
typedef struct
{
  double tokens;
  gint64 at;
} MediaRate;

/* What both ends share: the sockets, the keys, the counts. */
typedef struct
{
  GMainContext *context;
  char *name;           /* the service */
  gboolean service_end; /* the --expose end; else the -M end */
  Tunnel *tunnel;       /* the leg's, while it has one */
  SrtpCtx *srtp;        /* while keys are set */
  gboolean sending;     /* the peer accepted the leg */
  GSocket *socket[2];
  GSource *source[2];
  GSocketAddress *dest[2]; /* where packets of each socket go locally */
  gboolean rtcp_mux;       /* service end: the service sent RTCP on its RTP port */
  MediaDrops drops, told;
  gint64 told_at;
  GSource *tell_later; /* the drops of the second after a report */
  guint64 sent, received, unsent;
  MediaRate rate_out, rate_in;
  /* An application's leg: packets go to it, not to sockets. */
  MediaAppPacketFunc deliver;
  ForwardsSayFunc say;
  gpointer user_data;
} Leg;

struct _MediaForward
{
  Leg leg;
  ForwardReport report; /* the fatal error, told from the loop */
  char *display; /* "127.0.0.1:5004" */
  TransportStream *stream;
};

struct _MediaApp
{
  Leg leg;
  TransportStream *stream;
  MediaAppEndedFunc ended;
};

struct _MediaService
{
  Leg leg;
  TransportStream *stream;
  GCancellable *cancellable;
  GSocketAddressEnumerator *resolver;
  MediaServiceDoneFunc done;
  GSource *done_idle;
  GError *error;
};

/* ---- the leg ---- */

static void
leg_say (Leg *leg, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
leg_say (Leg *leg, const char *format, ...)
{
  g_autofree char *line = NULL;
  va_list ap;

  va_start (ap, format);
  line = g_strdup_vprintf (format, ap);
  va_end (ap);
  leg->say (line, leg->user_data);
}

static gboolean leg_on_tell_drops (gpointer data);

/* The drops since the last time, at most once a second: those of the
 * second after a report are told when it is over. */
static void
leg_tell_drops (Leg *leg)
{
  MediaDrops *d = &leg->drops, *t = &leg->told;
  gint64 now = g_get_monotonic_time ();
  const struct
  {
    guint64 n;
    const char *what;
  } parts[] = {
    { d->auth_failed - t->auth_failed, "failing authentication" },
    { d->replayed - t->replayed, "replayed" },
    { d->too_big - t->too_big, "too large for the path" },
    { d->over_rate - t->over_rate, "over " G_STRINGIFY (MEDIA_MAX_PPS) " packets/s" },
    { d->ssrcs - t->ssrcs, "beyond " G_STRINGIFY (MEDIA_MAX_SSRCS) " SSRCs" },
    { d->malformed - t->malformed, "not RTP or RTCP" },
  };
  g_autoptr (GString) line = NULL;

  if (memcmp (d, t, sizeof *d) == 0 || leg->tell_later != NULL)
    return;
  if (now - leg->told_at < G_USEC_PER_SEC)
    {
      leg->tell_later = g_timeout_source_new (
          (guint) ((leg->told_at + G_USEC_PER_SEC - now + 999) / 1000));
      g_source_set_callback (leg->tell_later, leg_on_tell_drops, leg, NULL);
      g_source_attach (leg->tell_later, leg->context);
      return;
    }
  line = g_string_new (NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (parts); i++)
    if (parts[i].n > 0)
      g_string_append_printf (line, "%s%" G_GUINT64_FORMAT " %s", line->len ? ", " : "",
                              parts[i].n, parts[i].what);
  leg_say (leg, "media leg %s: dropped %s", leg->name, line->str);
  *t = *d;
  leg->told_at = now;
}

static gboolean
leg_on_tell_drops (gpointer data)
{
  Leg *leg = data;

  g_clear_pointer (&leg->tell_later, g_source_unref);
  leg_tell_drops (leg);
  return G_SOURCE_REMOVE;
}

static gboolean
rate_take (MediaRate *r)
{
  gint64 now = g_get_monotonic_time ();

  if (r->at == 0)
    r->tokens = MEDIA_MAX_PPS;
  else
    r->tokens = MIN ((double) MEDIA_MAX_PPS,
                     r->tokens + (double) (now - r->at) * MEDIA_MAX_PPS / G_USEC_PER_SEC);
  r->at = now;
  if (r->tokens < 1.0)
    return FALSE;
  r->tokens -= 1.0;
  return TRUE;
}

static void
leg_count (Leg *leg, SrtpCtxResult result)
{
  switch (result)
    {
    case SRTPCTX_OK:
      return;
    case SRTPCTX_AUTH_FAILED:
      leg->drops.auth_failed++;
      break;
    case SRTPCTX_REPLAYED:
      leg->drops.replayed++;
      break;
    case SRTPCTX_TOO_MANY_SSRCS:
      leg->drops.ssrcs++;
      break;
    case SRTPCTX_TOO_BIG:
      leg->drops.too_big++;
      break;
    case SRTPCTX_MALFORMED:
    case SRTPCTX_FAILED:
    default:
      leg->drops.malformed++;
      break;
    }
  leg_tell_drops (leg);
}

/* A packet from the peer: checked, decrypted, and on to the local side. */
static void
leg_on_media (const guint8 *packet, gsize len, gpointer data)
{
  Leg *leg = data;
  guint8 buf[MEDIA_BUF];
  SrtpCtxResult result;
  int kind;
  GSocket *socket;
  GSocketAddress *dest;

  if (leg->srtp == NULL || len > MEDIA_PACKET_MAX)
    return;
  if (!rate_take (&leg->rate_in))
    {
      leg->drops.over_rate++;
      leg_tell_drops (leg);
      return;
    }
  memcpy (buf, packet, len);
  result = srtpctx_unprotect (leg->srtp, buf, &len);
  if (result != SRTPCTX_OK)
    {
      leg_count (leg, result);
      return;
    }
  leg->received++;
  if (leg->deliver != NULL)
    {
      leg->deliver (buf, len, leg->user_data);
      return;
    }
  kind = srtpctx_is_rtcp (buf, len) ? MEDIA_RTCP : MEDIA_RTP;
  if (kind == MEDIA_RTCP && (leg->service_end ? leg->rtcp_mux : leg->dest[MEDIA_RTCP] == NULL))
    kind = MEDIA_RTP; /* muxed */
  socket = leg->socket[kind];
  dest = leg->dest[kind];
  /* The -M end knows where to deliver once its application has sent. */
  if (socket == NULL || dest == NULL)
    return;
  (void) g_socket_send_to (socket, dest, (const char *) buf, len, NULL, NULL);
}

/* A packet from the local side (in @buf, MEDIA_BUF bytes of room):
 * protected, and to the peer. */
static MediaSendResult
leg_send (Leg *leg, guint8 *buf, gsize len)
{
  SrtpCtxResult result;

  if (!leg->sending || leg->srtp == NULL || leg->tunnel == NULL)
    {
      leg->unsent++;
      return MEDIA_SEND_CLOSED;
    }
  if (len > MEDIA_PACKET_MAX || len + SRTPCTX_OVERHEAD_MAX > tunnel_media_max (leg->tunnel))
    {
      leg->drops.too_big++;
      leg_tell_drops (leg);
      return MEDIA_SEND_TOO_BIG;
    }
  if (!rate_take (&leg->rate_out))
    {
      leg->drops.over_rate++;
      leg_tell_drops (leg);
      return MEDIA_SEND_OVER_RATE;
    }
  result = srtpctx_protect (leg->srtp, buf, &len, MEDIA_BUF);
  if (result != SRTPCTX_OK)
    {
      leg_count (leg, result);
      return result == SRTPCTX_TOO_BIG ? MEDIA_SEND_TOO_BIG : MEDIA_SEND_INVALID;
    }
  if (!tunnel_send_media (leg->tunnel, buf, len))
    {
      leg->unsent++;
      return MEDIA_SEND_CLOSED;
    }
  leg->sent++;
  return MEDIA_SEND_OK;
}

/* The same, from one of the local sockets: its sender is where packets of
 * its kind go back (the -M end), or tells whether RTCP is muxed (the
 * service end). */
static void
leg_send_up (Leg *leg, int kind, guint8 *buf, gsize len, GSocketAddress *from)
{
  if (leg->service_end)
    {
      if (kind == MEDIA_RTP && srtpctx_is_rtcp (buf, len))
        leg->rtcp_mux = TRUE;
      g_object_unref (from);
    }
  else
    {
      g_clear_object (&leg->dest[kind]);
      leg->dest[kind] = from;
    }
  (void) leg_send (leg, buf, len);
}

static gboolean
leg_on_readable (GSocket *socket, GIOCondition cond, gpointer data)
{
  Leg *leg = data;
  int kind = socket == leg->socket[MEDIA_RTP] ? MEDIA_RTP : MEDIA_RTCP;
  guint8 buf[MEDIA_BUF];

  for (int i = 0; i < MEDIA_READ_BURST; i++)
    {
      GSocketAddress *from = NULL;
      /* One byte more than the largest packet: a larger one is seen whole
       * enough to be dropped as too large, never cut short. */
      gssize n = g_socket_receive_from (socket, &from, (char *) buf, MEDIA_PACKET_MAX + 1, NULL,
                                        NULL);

      if (n < 0)
        break; /* would block, or an ICMP error of an earlier send */
      if (from == NULL)
        continue;
      leg_send_up (leg, kind, buf, (gsize) n, from);
    }
  return G_SOURCE_CONTINUE;
}

static void
leg_watch (Leg *leg)
{
  for (int i = 0; i < 2; i++)
    {
      if (leg->source[i] != NULL || leg->socket[i] == NULL)
        continue;
      leg->source[i] = g_socket_create_source (leg->socket[i], G_IO_IN, NULL);
      g_source_set_callback (leg->source[i], (GSourceFunc) G_CALLBACK (leg_on_readable), leg,
                             NULL);
      g_source_set_can_recurse (leg->source[i], TRUE);
      g_source_attach (leg->source[i], leg->context);
    }
}

/* P2PTUN_SRTP_KEYLOG=FILE, for debugging only (a capture decrypted with
 * them): one line per leg, appended, the file made owner-only. Nothing of a
 * key goes anywhere else. */
static void
leg_log_keys (Leg *leg, Tunnel *tunnel, const DtlsSrtpKeys *keys)
{
  const char *path = g_getenv ("P2PTUN_SRTP_KEYLOG");
  gsize key_len = DTLS_SRTP_KEY_LEN + keys->salt_len;
  g_autofree char *out = NULL, *in = NULL, *line = NULL;
  int fd;

  if (path == NULL || *path == '\0')
    return;
  fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    {
      leg_say (leg, "P2PTUN_SRTP_KEYLOG=%s: %s; SRTP keys not logged", path, g_strerror (errno));
      return;
    }
  out = g_base64_encode (keys->local, key_len);
  in = g_base64_encode (keys->remote, key_len);
  line = g_strdup_printf ("SRTP %s %s %s out=%s in=%s\n", tunnel_peer_id (tunnel),
                          tunnel_session (tunnel), dtls_srtp_profile_name (keys->profile), out,
                          in);
  if (write (fd, line, strlen (line)) != (gssize) strlen (line))
    leg_say (leg, "P2PTUN_SRTP_KEYLOG=%s: short write", path);
  close (fd);
  memset (out, 0, strlen (out));
  memset (in, 0, strlen (in));
  memset (line, 0, strlen (line));
}

/* Keys from @tunnel, and its media: FALSE with @error if it has neither to
 * give. */
static gboolean
leg_attach (Leg *leg, Tunnel *tunnel, GError **error)
{
  DtlsSrtpKeys keys;
  SrtpCtx *srtp;

  if (!tunnel_srtp_keys (tunnel, &keys))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "the peer's agent negotiated no SRTP keys (a version without media)");
      return FALSE;
    }
  srtp = srtpctx_new (&keys, MEDIA_MAX_SSRCS, error);
  if (srtp != NULL)
    leg_log_keys (leg, tunnel, &keys);
  dtls_srtp_keys_clear (&keys);
  if (srtp == NULL)
    return FALSE;
  if (!tunnel_set_media_sink (tunnel, leg_on_media, leg))
    {
      srtpctx_free (srtp);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS, "the tunnel has a media leg already");
      return FALSE;
    }
  leg->tunnel = tunnel;
  leg->srtp = srtp;
  return TRUE;
}

static void
leg_detach (Leg *leg)
{
  if (leg->tunnel != NULL)
    tunnel_clear_media_sink (leg->tunnel, leg);
  leg->tunnel = NULL;
  g_clear_pointer (&leg->srtp, srtpctx_free);
  leg->sending = FALSE;
}

/* Frees what the leg holds. Its owner is going away (a node or a tunnel
 * being freed): the last counts go to the debug log, not to the owner. */
static void
leg_clear (Leg *leg)
{
  MediaDrops *d = &leg->drops;

  leg_detach (leg);
  if (leg->tell_later != NULL)
    {
      g_source_destroy (leg->tell_later);
      g_clear_pointer (&leg->tell_later, g_source_unref);
    }
  g_debug ("media leg %s: %" G_GUINT64_FORMAT " packets sent, %" G_GUINT64_FORMAT
           " received, %" G_GUINT64_FORMAT " not sent (no leg or no path); dropped in all %"
           G_GUINT64_FORMAT " failing authentication, %" G_GUINT64_FORMAT " replayed, %"
           G_GUINT64_FORMAT " too large, %" G_GUINT64_FORMAT " over the rate, %" G_GUINT64_FORMAT
           " beyond the SSRCs, %" G_GUINT64_FORMAT " not RTP or RTCP",
           leg->name, leg->sent, leg->received, leg->unsent, d->auth_failed, d->replayed,
           d->too_big, d->over_rate, d->ssrcs, d->malformed);
  for (int i = 0; i < 2; i++)
    {
      if (leg->source[i])
        {
          g_source_destroy (leg->source[i]);
          g_source_unref (leg->source[i]);
        }
      g_clear_object (&leg->socket[i]);
      g_clear_object (&leg->dest[i]);
    }
  g_free (leg->name);
  g_main_context_unref (leg->context);
}

static void
leg_init (Leg *leg, GMainContext *context, const char *name, gboolean service_end,
          ForwardsSayFunc say, gpointer user_data)
{
  leg->context = g_main_context_ref (context);
  leg->name = g_strdup (name);
  leg->service_end = service_end;
  leg->say = say;
  leg->user_data = user_data;
}

/* ---- the forward (-M) ---- */

static void
forward_end_stream (MediaForward *self)
{
  leg_detach (&self->leg);
  g_clear_pointer (&self->stream, transport_stream_free);
}

static void
forward_opened (TransportStream *stream, gpointer data)
{
  MediaForward *self = data;

  self->leg.sending = TRUE;
  leg_watch (&self->leg);
  leg_say (&self->leg, "media leg %s -> %s open (SRTP)", self->display, self->leg.name);
}

static void
forward_refused (TransportStream *stream, guint8 code, const char *text, gpointer data)
{
  MediaForward *self = data;

  forward_end_stream (self);
  /* A forward to a service the peer does not have can never work. */
  if (code == CTLMSG_REFUSE_NOT_EXPOSED || code == CTLMSG_REFUSE_WRONG_KIND)
    {
      forward_report_fatal (&self->report, g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                                                        "-M %s:%s: %s", self->display,
                                                        self->leg.name, text));
      return;
    }
  leg_say (&self->leg, "media leg %s -> %s refused by the peer: %s", self->display,
           self->leg.name, text);
}

static void
forward_readable (TransportStream *stream, gpointer data)
{
  MediaForward *self = data;

  if (transport_stream_drain (stream))
    {
      leg_say (&self->leg, "media leg %s -> %s closed by the peer", self->display,
               self->leg.name);
      forward_end_stream (self);
    }
}

static void
forward_closed (TransportStream *stream, const GError *error, gpointer data)
{
  MediaForward *self = data;

  leg_say (&self->leg, "media leg %s -> %s closed%s%s", self->display, self->leg.name,
           error ? ": " : "", error ? error->message : "");
  forward_end_stream (self);
}

static const TransportStreamCallbacks forward_callbacks = {
  .opened = forward_opened,
  .refused = forward_refused,
  .readable = forward_readable,
  .closed = forward_closed,
};

MediaForward *
media_forward_new (GMainContext *context, const char *spec, ForwardsFatalFunc fatal,
                   ForwardsSayFunc say, gpointer user_data, GError **error)
{
  g_autoptr (MediaForward) self = g_new0 (MediaForward, 1);
  g_autofree char *service = NULL;
  g_autoptr (GSocketAddress) rtp_addr = NULL;
  g_autoptr (GSocketAddress) rtcp_addr = NULL;
  GInetAddress *inet;
  guint16 port;

  self->leg.socket[MEDIA_RTP] = forward_bind ("-M", spec, G_SOCKET_TYPE_DATAGRAM, &service,
                                              &self->display, error);
  leg_init (&self->leg, context, service ? service : "", FALSE, say, user_data);
  forward_report_init (&self->report, context, fatal, say, user_data);
  if (self->leg.socket[MEDIA_RTP] == NULL)
    return NULL;
  rtp_addr = g_socket_get_local_address (self->leg.socket[MEDIA_RTP], error);
  if (rtp_addr == NULL)
    return NULL;
  inet = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (rtp_addr));
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (rtp_addr));
  if (port == G_MAXUINT16)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "-M %s: RTCP takes the port after the RTP port, and 65535 has none", spec);
      return NULL;
    }
  rtcp_addr = g_inet_socket_address_new (inet, port + 1);
  self->leg.socket[MEDIA_RTCP] = g_socket_new (g_inet_address_get_family (inet),
                                               G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP,
                                               error);
  if (self->leg.socket[MEDIA_RTCP] == NULL
      || !g_socket_bind (self->leg.socket[MEDIA_RTCP], rtcp_addr, FALSE, error))
    {
      g_prefix_error (error, "-M %s: the RTCP port %u: ", spec, port + 1);
      return NULL;
    }
  for (int i = 0; i < 2; i++)
    g_socket_set_blocking (self->leg.socket[i], FALSE);
  leg_say (&self->leg, "media %s -> %s (RTCP on port %u too)", self->display, self->leg.name,
           port + 1);
  return g_steal_pointer (&self);
}

void
media_forward_start (MediaForward *self, Tunnel *tunnel)
{
  g_autoptr (GError) error = NULL;

  forward_end_stream (self);
  if (!leg_attach (&self->leg, tunnel, &error))
    {
      leg_say (&self->leg, "media leg %s -> %s: %s", self->display, self->leg.name,
               error->message);
      return;
    }
  self->stream = transport_open_media (tunnel_transport (tunnel), self->leg.name,
                                       &forward_callbacks, self, &error);
  if (self->stream == NULL)
    {
      leg_say (&self->leg, "media leg %s -> %s: %s", self->display, self->leg.name,
               error->message);
      leg_detach (&self->leg);
    }
}

void
media_forward_stop (MediaForward *self, const char *why)
{
  if (self->stream != NULL)
    leg_say (&self->leg, "media leg %s -> %s ended: %s", self->display, self->leg.name, why);
  forward_end_stream (self);
}

void
media_forward_free (MediaForward *self)
{
  if (self == NULL)
    return;
  forward_end_stream (self);
  forward_report_clear (&self->report);
  if (self->leg.context != NULL)
    leg_clear (&self->leg);
  g_free (self->display);
  g_free (self);
}

/* ---- an application's leg ---- */

static void
app_end (MediaApp *self, GError *error)
{
  leg_detach (&self->leg);
  g_clear_pointer (&self->stream, transport_stream_free);
  self->ended (error, self->leg.user_data);
  g_error_free (error);
}

static void
app_opened (TransportStream *stream, gpointer data)
{
  ((MediaApp *) data)->leg.sending = TRUE;
}

static void
app_refused (TransportStream *stream, guint8 code, const char *text, gpointer data)
{
  MediaApp *self = data;

  app_end (self, g_error_new (G_IO_ERROR, code == CTLMSG_REFUSE_NOT_EXPOSED
                                               ? G_IO_ERROR_NOT_FOUND
                                               : G_IO_ERROR_CONNECTION_REFUSED,
                              "media leg to %s refused: %s", self->leg.name, text));
}

static void
app_readable (TransportStream *stream, gpointer data)
{
  MediaApp *self = data;

  if (transport_stream_drain (stream))
    app_end (self, g_error_new (G_IO_ERROR, G_IO_ERROR_CLOSED, "the peer closed the media leg"));
}

static void
app_closed (TransportStream *stream, const GError *error, gpointer data)
{
  MediaApp *self = data;

  app_end (self, error ? g_error_copy (error)
                       : g_error_new (G_IO_ERROR, G_IO_ERROR_CLOSED, "the media leg ended"));
}

static const TransportStreamCallbacks app_callbacks = {
  .opened = app_opened,
  .refused = app_refused,
  .readable = app_readable,
  .closed = app_closed,
};

MediaApp *
media_app_open (GMainContext *context, Tunnel *tunnel, const char *service,
                MediaAppPacketFunc packet, MediaAppEndedFunc ended, ForwardsSayFunc say,
                gpointer user_data, GError **error)
{
  g_autoptr (MediaApp) self = g_new0 (MediaApp, 1);

  leg_init (&self->leg, context, service, FALSE, say, user_data);
  self->leg.deliver = packet;
  self->ended = ended;
  if (!leg_attach (&self->leg, tunnel, error))
    return NULL;
  self->stream = transport_open_media (tunnel_transport (tunnel), service, &app_callbacks, self,
                                       error);
  if (self->stream == NULL)
    return NULL;
  return g_steal_pointer (&self);
}

MediaSendResult
media_app_send (MediaApp *self, const guint8 *packet, gsize len)
{
  guint8 buf[MEDIA_BUF];

  if (len > MEDIA_PACKET_MAX)
    {
      self->leg.drops.too_big++;
      return MEDIA_SEND_TOO_BIG;
    }
  memcpy (buf, packet, len);
  return leg_send (&self->leg, buf, len);
}

void
media_app_free (MediaApp *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->stream, transport_stream_free);
  if (self->leg.context != NULL)
    leg_clear (&self->leg);
  g_free (self);
}

/* ---- the service (--expose NAME=HOST:PORT/rtp) ---- */

static gboolean
service_done_dispatch (gpointer data)
{
  MediaService *self = data;

  g_clear_pointer (&self->done_idle, g_source_unref);
  self->done (self, self->error, self->leg.user_data);
  return G_SOURCE_REMOVE;
}

/* Tells the owner from the loop: the caller may be in a stream's callback. */
static void
service_finish (MediaService *self, GError *error)
{
  if (self->done_idle != NULL)
    {
      g_clear_error (&error);
      return;
    }
  self->error = error;
  leg_detach (&self->leg);
  self->done_idle = g_idle_source_new ();
  g_source_set_callback (self->done_idle, service_done_dispatch, self, NULL);
  g_source_attach (self->done_idle, self->leg.context);
}

static void
service_refuse (MediaService *self, guint8 code, const char *text)
{
  leg_say (&self->leg, "refused a media leg to %s: %s", self->leg.name, text);
  transport_stream_refuse (g_steal_pointer (&self->stream), code, text);
  service_finish (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, text));
}

static void
service_readable (TransportStream *stream, gpointer data)
{
  if (transport_stream_drain (stream))
    service_finish (data, NULL);
}

static void
service_closed (TransportStream *stream, const GError *error, gpointer data)
{
  service_finish (data, error ? g_error_copy (error) : NULL);
}

static const TransportStreamCallbacks service_callbacks = {
  .readable = service_readable,
  .closed = service_closed,
};

static void
on_service_resolved (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketAddress) addr = NULL;
  g_autoptr (GSocketAddress) any = NULL;
  MediaService *self;
  GInetSocketAddress *inet;
  guint16 port;

  addr = g_socket_address_enumerator_next_finish (G_SOCKET_ADDRESS_ENUMERATOR (source), result,
                                                  &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return; /* freed */
  self = data;
  if (addr == NULL)
    {
      g_autofree char *text = g_strdup_printf ("service %s has no address: %s", self->leg.name,
                                               error ? error->message : "none found");
      service_refuse (self, CTLMSG_REFUSE_CONNECT_FAILED, text);
      return;
    }
  inet = G_INET_SOCKET_ADDRESS (addr);
  port = g_inet_socket_address_get_port (inet);
  if (port == G_MAXUINT16)
    {
      service_refuse (self, CTLMSG_REFUSE_CONNECT_FAILED,
                      "the service's RTP port is 65535: no port for RTCP after it");
      return;
    }
  self->leg.dest[MEDIA_RTP] = g_object_ref (addr);
  self->leg.dest[MEDIA_RTCP]
      = g_inet_socket_address_new (g_inet_socket_address_get_address (inet), port + 1);
  any = g_inet_socket_address_new (
      g_inet_address_new_any (g_socket_address_get_family (addr)), 0);
  for (int i = 0; i < 2; i++)
    {
      self->leg.socket[i] = g_socket_new (g_socket_address_get_family (addr),
                                          G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &error);
      if (self->leg.socket[i] == NULL || !g_socket_bind (self->leg.socket[i], any, FALSE, &error))
        {
          g_autofree char *text = g_strdup_printf ("service %s: %s", self->leg.name,
                                                   error->message);
          service_refuse (self, CTLMSG_REFUSE_CONNECT_FAILED, text);
          return;
        }
      g_socket_set_blocking (self->leg.socket[i], FALSE);
    }
  if (!leg_attach (&self->leg, self->leg.tunnel, &error))
    {
      service_refuse (self,
                      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS)
                          ? CTLMSG_REFUSE_LIMIT
                          : CTLMSG_REFUSE_CONNECT_FAILED,
                      error->message);
      return;
    }
  self->leg.sending = TRUE;
  leg_watch (&self->leg);
  transport_stream_accept (self->stream, &service_callbacks, self);
}

MediaService *
media_service_open (GMainContext *context, Tunnel *tunnel, TransportStream *stream,
                    const char *name, const char *target, MediaServiceDoneFunc done,
                    ForwardsSayFunc say, gpointer user_data)
{
  MediaService *self = g_new0 (MediaService, 1);
  g_autoptr (GSocketConnectable) where = NULL;
  g_autoptr (GError) error = NULL;

  leg_init (&self->leg, context, name, TRUE, say, user_data);
  /* Kept for leg_attach once the sockets exist; not attached before. */
  self->leg.tunnel = tunnel;
  self->stream = stream;
  self->done = done;
  self->cancellable = g_cancellable_new ();
  where = g_network_address_parse (target, 0, &error);
  if (where == NULL)
    {
      self->leg.tunnel = NULL;
      service_refuse (self, CTLMSG_REFUSE_CONNECT_FAILED, error->message);
      return self;
    }
  self->resolver = g_socket_connectable_enumerate (where);
  g_socket_address_enumerator_next_async (self->resolver, self->cancellable,
                                          on_service_resolved, self);
  return self;
}

void
media_service_free (MediaService *self)
{
  if (self == NULL)
    return;
  g_cancellable_cancel (self->cancellable);
  g_object_unref (self->cancellable);
  g_clear_object (&self->resolver);
  if (self->done_idle)
    {
      g_source_destroy (self->done_idle);
      g_source_unref (self->done_idle);
    }
  if (self->stream)
    transport_stream_free (self->stream);
  leg_clear (&self->leg);
  g_clear_error (&self->error);
  g_free (self);
}
