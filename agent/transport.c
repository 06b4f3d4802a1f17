/* The tunnel transport on libnice's pseudo-TCP; see transport.h.
 *
 * Re-entrancy rule: pseudo-TCP calls us back from inside its own functions, so
 * nothing that can free a stream or the transport runs from those callbacks.
 * Stream endings and transport failures are noticed there and delivered from
 * the stream's own clock source instead. */
#include "transport.h"

#include <errno.h>

#include <nice/pseudotcp.h>

#include "frame.h"

/* libnice's pseudo-TCP subtracts 116 bytes of assumed IP, UDP and Jingle
 * headers from the MTU it is given and adds its own 24-byte header: a segment
 * is mtu - 92 bytes long. */
#define PTCP_MTU_TO_SEGMENT 92
#define STREAM_BUFFER (256 * 1024)
/* On a path over TCP (TURN over TCP or TLS) libnice drops what it cannot
 * write at once (DESIGN.md), and pseudo-TCP recovers from each drop with a
 * timeout of a second or more: a window that the sockets on the way absorb
 * avoids the drops (measured through coturn: 4 MiB in 13 s with 256 KiB,
 * 0.2 s with 32 KiB). */
#define STREAM_BUFFER_TCP_PATH (32 * 1024)
/* pseudo-TCP's SYN carries data, so its answer is a delayed ACK (100 ms):
 * until the handshake is over, acknowledge at once, or an acceptor with bytes
 * to send first waits 100 ms to learn the stream is open. */
#define PTCP_ACK_DELAY_MS 100
#define CONTROL_BUFFER (64 * 1024)
/* Bound on control bytes queued behind a full control socket. */
#define CONTROL_QUEUE_MAX (256 * 1024)

typedef enum
{
  STREAM_OPENING,  /* we sent OPEN, waiting for ACCEPT or REFUSE */
  STREAM_PENDING,  /* the peer sent OPEN, the user has not answered */
  STREAM_CONNECTING, /* accepted, pseudo-TCP handshake in progress */
  STREAM_OPEN,
  STREAM_DONE,     /* closed() delivered or due */
} StreamState;

struct _TransportStream
{
  Transport *transport;
  guint32 id;
  StreamState state;
  PseudoTcpSocket *ptcp;
  GSource *clock;
  TransportStreamCallbacks cb;
  gpointer user_data;
  guint64 sent;        /* bytes pseudo-TCP took from us */
  guint64 received;    /* bytes we handed to the user */
  guint64 peer_final;  /* the peer's total, once it sent FIN */
  gboolean peer_fin;
  gboolean fin_sent;   /* we sent FIN: no more bytes from us */
  gboolean eof_read;   /* the user has read the end of the stream */
  gboolean ptcp_shut;  /* both directions ended: pseudo-TCP closing */
  gboolean handshaken; /* pseudo-TCP is established: delayed ACKs from now on */
  gboolean wake;       /* an event waits for the clock's next dispatch */
  gboolean ptcp_closed;
  int reset_errno;     /* non-zero: the stream was reset */
  gboolean closed_delivered;
  gboolean refused_pending;
  guint8 refuse_code;
  char *refuse_text;
};

struct _Transport
{
  GMainContext *context;
  gboolean initiator;
  TransportCallbacks cb;
  gpointer user_data;
  gsize mtu;
  guint32 stream_buffer; /* for streams opened from now on */
  TransportStream *control;
  GHashTable *streams; /* id -> TransportStream, not the control stream */
  guint32 next_id;
  GByteArray *ctl_in;
  GByteArray *ctl_out;
  gboolean hello_received;
  gboolean ready;
  gboolean closed;      /* closed() delivered or due */
  gboolean closed_delivered;
  guint8 close_code;
  char *close_text;
  GSource *close_idle;
};

static void stream_adjust_clock (TransportStream *s);

/* Events found inside pseudo-TCP's callbacks are delivered from the stream's
 * clock source; pseudo-TCP's own timers must not postpone them. */
static void
stream_wake (TransportStream *s)
{
  if (s->clock == NULL)
    return;
  s->wake = TRUE;
  g_source_set_ready_time (s->clock, 0);
}
static void transport_fail (Transport *t, guint8 code, const char *text);
static void control_send (Transport *t, const struct ctlmsg *msg);
static void transport_handle_control (Transport *t, const struct ctlmsg *msg);

static PseudoTcpWriteResult
ptcp_write_packet (PseudoTcpSocket *sock, const gchar *buf, guint32 len, gpointer data)
{
  TransportStream *s = data;
  guint8 frame[FRAME_MAX_LEN];
  gsize n;

  if (len > s->transport->mtu - FRAME_HEADER_LEN)
    return WR_TOO_LARGE;
  n = frame_build (frame, sizeof frame, FRAME_SEGMENT, s->id, (const guint8 *) buf, len);
  if (n == 0)
    return WR_TOO_LARGE;
  s->transport->cb.send_frame (frame, n, s->transport->user_data);
  return WR_SUCCESS;
}

static void
control_on_readable (Transport *t)
{
  TransportStream *s = t->control;
  guint8 buf[4096];

  while (!t->closed)
    {
      gint n = pseudo_tcp_socket_recv (s->ptcp, (char *) buf, sizeof buf);
      gsize off = 0;

      if (n == 0)
        {
          transport_fail (t, 0, "the peer closed the control channel");
          return;
        }
      if (n < 0)
        return;
      g_byte_array_append (t->ctl_in, buf, (guint) n);
      while (!t->closed)
        {
          struct ctlmsg msg;
          gsize used = 0;
          enum ctlmsg_status st = ctlmsg_parse (t->ctl_in->data + off, t->ctl_in->len - off,
                                                &msg, &used);
          if (st == CTLMSG_INCOMPLETE)
            break;
          if (st == CTLMSG_INVALID)
            {
              transport_fail (t, 0, "malformed control message from the peer");
              return;
            }
          off += used;
          transport_handle_control (t, &msg);
        }
      if (t->closed)
        return;
      g_byte_array_remove_range (t->ctl_in, 0, (guint) off);
    }
}

static void
control_flush (Transport *t)
{
  while (t->ctl_out->len > 0)
    {
      gint n = pseudo_tcp_socket_send (t->control->ptcp, (const char *) t->ctl_out->data,
                                       t->ctl_out->len);
      if (n <= 0)
        return;
      g_byte_array_remove_range (t->ctl_out, 0, (guint) n);
    }
}

static void
ptcp_opened (PseudoTcpSocket *sock, gpointer data)
{
  TransportStream *s = data;

  /* pseudo-TCP decides how to ACK after this callback returns: restore the
   * delayed ACK only once the packet is processed (transport_receive_frame). */
  s->handshaken = TRUE;
  g_debug ("stream %u: pseudo-TCP open", s->id);
  if (s->id == 0)
    {
      control_flush (s->transport);
      return;
    }
  if (s->state != STREAM_CONNECTING)
    return;
  s->state = STREAM_OPEN;
  /* The opener learns of it now; the acceptor may write from now on. */
  if (s->cb.opened)
    s->cb.opened (s, s->user_data);
  if (s->cb.writable)
    s->cb.writable (s, s->user_data);
}

static void
ptcp_readable (PseudoTcpSocket *sock, gpointer data)
{
  TransportStream *s = data;

  if (s->id == 0)
    control_on_readable (s->transport);
  else if (s->state == STREAM_OPEN && s->cb.readable)
    s->cb.readable (s, s->user_data);
}

static void
ptcp_writable (PseudoTcpSocket *sock, gpointer data)
{
  TransportStream *s = data;

  if (s->id == 0)
    control_flush (s->transport);
  else if (s->state == STREAM_OPEN && s->cb.writable)
    s->cb.writable (s, s->user_data);
}

static void
ptcp_closed (PseudoTcpSocket *sock, guint32 err, gpointer data)
{
  TransportStream *s = data;

  s->ptcp_closed = TRUE;
  if (err != 0 && s->reset_errno == 0)
    s->reset_errno = (int) err;
  /* Delivered from the clock source, outside pseudo-TCP. */
  if (s->clock)
    stream_wake (s);
}

static gboolean
stream_finished (TransportStream *s)
{
  if (s->reset_errno != 0)
    return TRUE;
  return s->ptcp_closed && s->eof_read && s->fin_sent;
}

static void
stream_deliver_closed (TransportStream *s)
{
  g_autoptr (GError) error = NULL;

  if (s->closed_delivered)
    return;
  s->closed_delivered = TRUE;
  s->state = STREAM_DONE;
  if (s->reset_errno != 0)
    error = g_error_new (G_IO_ERROR, g_io_error_from_errno (s->reset_errno),
                         "stream %u reset: %s", s->id, g_strerror (s->reset_errno));
  if (s->cb.closed)
    s->cb.closed (s, error, s->user_data);
}

static gboolean
stream_clock_dispatch (GSource *source, GSourceFunc unused, gpointer data)
{
  TransportStream *s = data;
  Transport *t = s->transport;

  g_source_set_ready_time (source, -1);
  s->wake = FALSE;
  if (s->refused_pending)
    {
      s->refused_pending = FALSE;
      s->state = STREAM_DONE;
      s->closed_delivered = TRUE;
      s->cb.refused (s, s->refuse_code, s->refuse_text, s->user_data);
      return G_SOURCE_CONTINUE; /* the user frees the stream, and so this source */
    }
  if (s->ptcp && !s->ptcp_closed)
    {
      pseudo_tcp_socket_notify_clock (s->ptcp);
      stream_adjust_clock (s);
    }
  if (s->id == 0)
    {
      if (t->closed && !t->closed_delivered)
        {
          t->closed_delivered = TRUE;
          t->cb.closed (t->close_code, t->close_text, t->user_data);
        }
      return G_SOURCE_CONTINUE;
    }
  /* The end of the stream is readable once every byte before it was read. */
  if (s->state == STREAM_OPEN && !s->eof_read && s->peer_fin && s->received == s->peer_final
      && s->cb.readable)
    s->cb.readable (s, s->user_data);
  if (s->state != STREAM_DONE && stream_finished (s))
    stream_deliver_closed (s);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs stream_clock_funcs = {
  .dispatch = stream_clock_dispatch,
};

static void
stream_adjust_clock (TransportStream *s)
{
  guint64 timeout = 0;
  guint32 now;

  if (s->ptcp == NULL || s->clock == NULL || s->wake)
    return;
  if (!pseudo_tcp_socket_get_next_clock (s->ptcp, &timeout))
    {
      s->ptcp_closed = TRUE;
      g_source_set_ready_time (s->clock, 0);
      return;
    }
  /* pseudo-TCP counts milliseconds of g_get_monotonic_time(), as a guint32. */
  now = (guint32) (g_get_monotonic_time () / 1000);
  if (timeout <= now)
    g_source_set_ready_time (s->clock, 0);
  else
    g_source_set_ready_time (s->clock, g_get_monotonic_time () + (gint64) (timeout - now) * 1000);
}

static TransportStream *
stream_new (Transport *t, guint32 id, guint buffer)
{
  TransportStream *s = g_new0 (TransportStream, 1);
  PseudoTcpCallbacks cbs = {
    .user_data = s,
    .PseudoTcpOpened = ptcp_opened,
    .PseudoTcpReadable = ptcp_readable,
    .PseudoTcpWritable = ptcp_writable,
    .PseudoTcpClosed = ptcp_closed,
    .WritePacket = ptcp_write_packet,
  };

  s->transport = t;
  s->id = id;
  s->ptcp = pseudo_tcp_socket_new (id, &cbs);
  g_object_set (s->ptcp, "rcv-buf", buffer, "snd-buf", buffer, "no-delay", TRUE, "ack-delay", 0,
                NULL);
  pseudo_tcp_socket_notify_mtu (s->ptcp, (guint16) (t->mtu - FRAME_HEADER_LEN
                                                     + PTCP_MTU_TO_SEGMENT));
  s->clock = g_source_new (&stream_clock_funcs, sizeof (GSource));
  g_source_set_callback (s->clock, NULL, s, NULL);
  g_source_set_ready_time (s->clock, -1);
  g_source_attach (s->clock, t->context);
  return s;
}

static void
stream_destroy (TransportStream *s)
{
  if (s->clock)
    {
      g_source_destroy (s->clock);
      g_clear_pointer (&s->clock, g_source_unref);
    }
  if (s->ptcp)
    {
      if (!s->ptcp_closed)
        pseudo_tcp_socket_close (s->ptcp, TRUE);
      g_clear_object (&s->ptcp);
    }
  g_free (s->refuse_text);
  g_free (s);
}

Transport *
transport_new (GMainContext *context, gboolean initiator, const TransportCallbacks *callbacks,
               gpointer user_data)
{
  Transport *t = g_new0 (Transport, 1);

  t->context = g_main_context_ref (context);
  t->initiator = initiator;
  t->cb = *callbacks;
  t->user_data = user_data;
  t->mtu = FRAME_MAX_LEN;
  t->stream_buffer = STREAM_BUFFER;
  t->next_id = initiator ? 1 : 2;
  t->streams = g_hash_table_new (NULL, NULL);
  t->ctl_in = g_byte_array_new ();
  t->ctl_out = g_byte_array_new ();
  /* The responder's control socket must exist before the initiator's SYN. */
  t->control = stream_new (t, 0, CONTROL_BUFFER);
  t->control->state = STREAM_OPEN;
  return t;
}

void
transport_free (Transport *t)
{
  GHashTableIter it;
  gpointer value;

  if (t == NULL)
    return;
  g_hash_table_iter_init (&it, t->streams);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      TransportStream *s = value;
      /* The user still holds it: detach it so that its free is harmless. */
      s->transport = NULL;
      if (s->clock)
        {
          g_source_destroy (s->clock);
          g_clear_pointer (&s->clock, g_source_unref);
        }
      if (s->ptcp)
        g_clear_object (&s->ptcp);
    }
  g_hash_table_unref (t->streams);
  stream_destroy (t->control);
  if (t->close_idle)
    {
      g_source_destroy (t->close_idle);
      g_source_unref (t->close_idle);
    }
  g_byte_array_unref (t->ctl_in);
  g_byte_array_unref (t->ctl_out);
  g_free (t->close_text);
  g_main_context_unref (t->context);
  g_free (t);
}

void
transport_start (Transport *t, gsize max_frame)
{
  struct ctlmsg hello = { .type = CTLMSG_HELLO, .version = CTLMSG_VERSION };

  t->mtu = MIN (max_frame, (gsize) FRAME_MAX_LEN);
  pseudo_tcp_socket_notify_mtu (t->control->ptcp,
                                (guint16) (t->mtu - FRAME_HEADER_LEN + PTCP_MTU_TO_SEGMENT));
  if (t->initiator)
    pseudo_tcp_socket_connect (t->control->ptcp);
  control_send (t, &hello);
  stream_adjust_clock (t->control);
}

static void
control_send (Transport *t, const struct ctlmsg *msg)
{
  guint8 buf[CTLMSG_MAX_LEN];
  gsize n = ctlmsg_build (buf, sizeof buf, msg);

  g_assert (n > 0);
  g_debug ("control: sending type %u stream %u", msg->type, msg->stream_id);
  if (t->ctl_out->len + n > CONTROL_QUEUE_MAX)
    {
      transport_fail (t, 0, "the control channel is stuck (peer not reading)");
      return;
    }
  g_byte_array_append (t->ctl_out, buf, (guint) n);
  control_flush (t);
  stream_adjust_clock (t->control);
}

/* Fatal for the whole transport; delivered from the control clock. */
static void
transport_fail (Transport *t, guint8 code, const char *text)
{
  GHashTableIter it;
  gpointer value;

  if (t->closed)
    return;
  t->closed = TRUE;
  t->close_code = code;
  t->close_text = g_strdup (text);
  g_hash_table_iter_init (&it, t->streams);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      TransportStream *s = value;
      if (s->reset_errno == 0)
        s->reset_errno = ECONNRESET;
      s->cb.closed = NULL; /* closed() of the transport says it all */
      s->cb.refused = NULL;
      s->refused_pending = FALSE;
    }
  stream_wake (t->control);
}

static gboolean
stream_id_is_peers (Transport *t, guint32 id)
{
  /* The initiator opens odd ids, the responder even ones. */
  return id != 0 && ((id & 1) == 1) != t->initiator;
}

static void
handle_open (Transport *t, const struct ctlmsg *msg)
{
  struct ctlmsg refuse = { .type = CTLMSG_REFUSE, .stream_id = msg->stream_id };
  TransportStream *s;

  if (!stream_id_is_peers (t, msg->stream_id)
      || g_hash_table_contains (t->streams, GUINT_TO_POINTER (msg->stream_id)))
    {
      refuse.code = CTLMSG_REFUSE_BAD_STREAM;
      g_strlcpy (refuse.text, "stream id in use or of the wrong side", sizeof refuse.text);
      control_send (t, &refuse);
      return;
    }
  if (g_hash_table_size (t->streams) >= TRANSPORT_MAX_STREAMS)
    {
      refuse.code = CTLMSG_REFUSE_LIMIT;
      g_snprintf (refuse.text, sizeof refuse.text, "too many streams (limit %d)",
                  TRANSPORT_MAX_STREAMS);
      control_send (t, &refuse);
      return;
    }
  s = stream_new (t, msg->stream_id, t->stream_buffer);
  s->state = STREAM_PENDING;
  g_hash_table_insert (t->streams, GUINT_TO_POINTER (s->id), s);
  t->cb.open_request (s, msg->name, t->user_data);
}

static void
stream_reset_by_peer (TransportStream *s)
{
  if (s->reset_errno == 0)
    s->reset_errno = ECONNRESET;
  if (s->ptcp && !s->ptcp_closed)
    {
      pseudo_tcp_socket_close (s->ptcp, TRUE);
      s->ptcp_closed = TRUE;
    }
  stream_wake (s);
}

static void
transport_handle_control (Transport *t, const struct ctlmsg *msg)
{
  TransportStream *s = NULL;

  if (msg->stream_id != 0)
    s = g_hash_table_lookup (t->streams, GUINT_TO_POINTER (msg->stream_id));
  if (!t->hello_received && msg->type != CTLMSG_HELLO)
    {
      transport_fail (t, 0, "the peer did not start with HELLO");
      return;
    }
  g_debug ("control: received type %u stream %u", msg->type, msg->stream_id);
  switch (msg->type)
    {
    case CTLMSG_HELLO:
      if (t->hello_received)
        break;
      if (msg->version != CTLMSG_VERSION)
        {
          g_autofree char *why = g_strdup_printf (
              "the peer speaks tunnel protocol version %u, this agent %u", msg->version,
              CTLMSG_VERSION);
          transport_fail (t, 0, why);
          return;
        }
      t->hello_received = TRUE;
      t->ready = TRUE;
      t->cb.ready (t->user_data);
      break;
    case CTLMSG_OPEN:
      handle_open (t, msg);
      break;
    case CTLMSG_ACCEPT:
      if (s && s->state == STREAM_OPENING)
        {
          s->state = STREAM_CONNECTING;
          pseudo_tcp_socket_connect (s->ptcp);
          stream_adjust_clock (s);
        }
      break;
    case CTLMSG_REFUSE:
      if (s && s->state == STREAM_OPENING)
        {
          s->refused_pending = TRUE;
          s->refuse_code = msg->code;
          s->refuse_text = g_strdup (msg->text);
          stream_wake (s);
        }
      break;
    case CTLMSG_CLOSE:
      if (s && s->state != STREAM_DONE)
        stream_reset_by_peer (s);
      break;
    case CTLMSG_FIN:
      if (s && s->state != STREAM_DONE && !s->peer_fin)
        {
          if (msg->token < s->received)
            {
              stream_reset_by_peer (s);
              break;
            }
          s->peer_fin = TRUE;
          s->peer_final = msg->token;
          /* The reader learns of the end from the stream's clock. */
          stream_wake (s);
        }
      break;
    case CTLMSG_PING:
      {
        struct ctlmsg pong = { .type = CTLMSG_PONG, .token = msg->token };
        control_send (t, &pong);
      }
      break;
    case CTLMSG_PONG:
      {
        gint64 now = g_get_monotonic_time ();
        /* The token is our own clock when we sent the PING. */
        if (msg->token <= (guint64) now && t->cb.rtt)
          t->cb.rtt (now - (gint64) msg->token, t->user_data);
      }
      break;
    case CTLMSG_BYE:
      transport_fail (t, msg->code ? msg->code : 1, msg->text[0] ? msg->text : "the peer left");
      break;
    default:
      break;
    }
}

void
transport_receive_frame (Transport *t, const guint8 *buf, gsize len)
{
  struct frame f;
  TransportStream *s;

  if (t->closed || frame_parse (buf, len, &f) != FRAME_OK || f.type != FRAME_SEGMENT)
    return;
  if (f.stream_id == 0)
    s = t->control;
  else
    s = g_hash_table_lookup (t->streams, GUINT_TO_POINTER (f.stream_id));
  /* Segments of streams we do not know (late retransmissions) are dropped. */
  if (s == NULL || s->ptcp == NULL || s->ptcp_closed || s->state == STREAM_OPENING
      || s->state == STREAM_PENDING)
    return;
  pseudo_tcp_socket_notify_packet (s->ptcp, (const gchar *) f.payload, (guint32) f.payload_len);
  if (s->handshaken && s->ptcp)
    {
      s->handshaken = FALSE;
      g_object_set (s->ptcp, "ack-delay", PTCP_ACK_DELAY_MS, NULL);
    }
  stream_adjust_clock (s);
}

void
transport_ping (Transport *t)
{
  struct ctlmsg ping = { .type = CTLMSG_PING, .token = (guint64) g_get_monotonic_time () };

  if (t->ready && !t->closed)
    control_send (t, &ping);
}

void
transport_bye (Transport *t, guint8 code, const char *text)
{
  struct ctlmsg bye = { .type = CTLMSG_BYE, .code = code };

  if (t->closed)
    return;
  g_strlcpy (bye.text, text, sizeof bye.text);
  if (t->ready)
    control_send (t, &bye);
}

void
transport_set_path_over_tcp (Transport *t, gboolean over_tcp)
{
  t->stream_buffer = over_tcp ? STREAM_BUFFER_TCP_PATH : STREAM_BUFFER;
}

guint
transport_n_streams (Transport *t)
{
  return g_hash_table_size (t->streams);
}

TransportStream *
transport_open (Transport *t, const char *service, const TransportStreamCallbacks *callbacks,
                gpointer user_data, GError **error)
{
  struct ctlmsg open = { .type = CTLMSG_OPEN };
  TransportStream *s;

  if (t->closed || !t->ready)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED, "the tunnel is not up");
      return NULL;
    }
  if (g_hash_table_size (t->streams) >= TRANSPORT_MAX_STREAMS)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES,
                   "too many streams in this tunnel (limit %d)", TRANSPORT_MAX_STREAMS);
      return NULL;
    }
  /* Ids are not reused; 2^31 opens per tunnel is the end of it. */
  if (t->next_id > G_MAXUINT32 - 2)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "stream ids exhausted");
      return NULL;
    }
  s = stream_new (t, t->next_id, t->stream_buffer);
  t->next_id += 2;
  s->state = STREAM_OPENING;
  s->cb = *callbacks;
  s->user_data = user_data;
  g_hash_table_insert (t->streams, GUINT_TO_POINTER (s->id), s);
  open.stream_id = s->id;
  g_strlcpy (open.name, service, sizeof open.name);
  control_send (t, &open);
  return s;
}

void
transport_stream_accept (TransportStream *s, const TransportStreamCallbacks *callbacks,
                         gpointer user_data)
{
  struct ctlmsg accept = { .type = CTLMSG_ACCEPT, .stream_id = s->id };

  g_return_if_fail (s->state == STREAM_PENDING);
  s->cb = *callbacks;
  s->user_data = user_data;
  s->state = STREAM_CONNECTING;
  control_send (s->transport, &accept);
}

void
transport_stream_refuse (TransportStream *s, guint8 code, const char *text)
{
  struct ctlmsg refuse = { .type = CTLMSG_REFUSE, .stream_id = s->id, .code = code };

  g_return_if_fail (s->state == STREAM_PENDING);
  g_strlcpy (refuse.text, text, sizeof refuse.text);
  if (s->transport && !s->transport->closed)
    control_send (s->transport, &refuse);
  s->state = STREAM_DONE;
  s->closed_delivered = TRUE;
  transport_stream_free (s);
}

gssize
transport_stream_write (TransportStream *s, const guint8 *buf, gsize len)
{
  gint n;

  if (s->reset_errno != 0 || s->fin_sent || s->ptcp == NULL)
    return -1;
  if (s->state != STREAM_OPEN)
    return 0;
  n = pseudo_tcp_socket_send (s->ptcp, (const char *) buf, (guint32) MIN (len, G_MAXINT32));
  stream_adjust_clock (s);
  if (n < 0)
    return pseudo_tcp_socket_get_error (s->ptcp) == EWOULDBLOCK ? 0 : -1;
  s->sent += (guint64) n;
  return n;
}

/* Half-close: pseudo-TCP cannot send after it received a FIN, so each
 * direction's end travels on the control channel as FIN with the direction's
 * total size (final size, as in QUIC). Once both directions have ended and
 * every byte was read, pseudo-TCP closes the conversation. */
static void
stream_try_shut (TransportStream *s)
{
  if (s->ptcp_shut || !s->fin_sent || !s->eof_read || s->ptcp == NULL || s->ptcp_closed)
    return;
  s->ptcp_shut = TRUE;
  pseudo_tcp_socket_shutdown (s->ptcp, PSEUDO_TCP_SHUTDOWN_WR);
  stream_adjust_clock (s);
}

gssize
transport_stream_read (TransportStream *s, guint8 *buf, gsize len)
{
  gint n;

  if (s->reset_errno != 0 || s->ptcp == NULL)
    {
      errno = ECONNRESET;
      return -1;
    }
  if (s->state != STREAM_OPEN)
    {
      errno = EAGAIN;
      return -1;
    }
  if (s->peer_fin)
    {
      if (s->received == s->peer_final)
        {
          if (!s->eof_read)
            {
              s->eof_read = TRUE;
              stream_try_shut (s);
              stream_wake (s);
            }
          return 0;
        }
      len = (gsize) MIN ((guint64) len, s->peer_final - s->received);
    }
  n = pseudo_tcp_socket_recv (s->ptcp, (char *) buf, MIN (len, (gsize) G_MAXINT32));
  if (n > 0)
    s->received += (guint64) n;
  else if (n == 0 && !s->peer_fin)
    {
      /* pseudo-TCP's own FIN overtook the peer's FIN message: wait for it. */
      errno = EAGAIN;
      return -1;
    }
  else if (n == 0)
    {
      /* pseudo-TCP ended before the size the peer's FIN gave: bytes are lost. */
      errno = ECONNRESET;
      s->reset_errno = ECONNRESET;
      stream_wake (s);
      return -1;
    }
  else
    errno = pseudo_tcp_socket_get_error (s->ptcp) == EWOULDBLOCK ? EAGAIN : ECONNRESET;
  stream_adjust_clock (s);
  return n;
}

void
transport_stream_shutdown_write (TransportStream *s)
{
  struct ctlmsg fin = { .type = CTLMSG_FIN, .stream_id = s->id };

  if (s->fin_sent || s->transport == NULL || s->transport->closed || s->reset_errno != 0)
    return;
  s->fin_sent = TRUE;
  fin.token = s->sent;
  control_send (s->transport, &fin);
  stream_try_shut (s);
}

void
transport_stream_free (TransportStream *s)
{
  Transport *t;

  if (s == NULL)
    return;
  t = s->transport;
  if (t != NULL)
    {
      /* A stream given up before its natural end: tell the peer. */
      if (!t->closed && s->id != 0 && !stream_finished (s) && s->state != STREAM_DONE)
        {
          struct ctlmsg close = { .type = CTLMSG_CLOSE, .stream_id = s->id };
          control_send (t, &close);
        }
      g_hash_table_remove (t->streams, GUINT_TO_POINTER (s->id));
    }
  stream_destroy (s);
}

guint32
transport_stream_id (TransportStream *s)
{
  return s->id;
}
