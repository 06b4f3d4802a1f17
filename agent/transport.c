/* The tunnel transport on our own sans-IO transport (proto/xport.h); see
 * transport.h.
 *
 * One GLib source, the pump, drives the connection: it fires at the time
 * xport asks for (retransmission, pacing, acknowledgement, keepalive) and
 * whenever something happened (a packet arrived, a stream was written to).
 * Every callback to the user runs from the pump, never from inside a call
 * the user made, so a callback may free what it likes.
 *
 * Each side's control messages travel on the first stream it opens (the
 * initiator's stream 1, the responder's stream 0). Every later stream starts
 * with an OPEN message naming its service, in the stream itself (so that the
 * stream exists for the acceptor, who may then write first); ACCEPT, REFUSE
 * and CLOSE answer on the acceptor's control stream. */
#include "transport.h"

#include <errno.h>

#include "memtrim.h"
#include "transport_private.h"
#include "xport.h"

/* Bound on control bytes queued behind a full control stream, and on the
 * peer's control bytes that do not yet make a whole message. */
#define CONTROL_QUEUE_MAX (256 * 1024)
/* xport counts application close codes from here (PROTOCOL.md). */
#define BYE_CODE_BASE XPORT_CLOSE_APP


static void transport_fail (Transport *t, guint8 code, const char *text);
static void transport_handle_control (Transport *t, const struct ctlmsg *msg);

guint64
transport_now_us (void)
{
  return (guint64) g_get_monotonic_time ();
}


static void
stream_note (TransportStream *s, guint note)
{
  if (s->transport == NULL)
    return;
  if (s->notes == 0)
    g_array_append_val (s->transport->noted, s->id);
  s->notes |= note;
  transport_kick (s->transport);
}

TransportStream *
transport_stream_lookup (Transport *t, guint64 id)
{
  if (id > G_MAXUINT32)
    return NULL;
  return g_hash_table_lookup (t->streams, GUINT_TO_POINTER ((guint32) id));
}

/* ---- control stream ---- */

static void
control_flush (Transport *t)
{
  while (t->ctl_out->len > 0 && !t->closed)
    {
      gssize n = xport_stream_write (t->conn, t->ctl_out_id, t->ctl_out->data, t->ctl_out->len);
      if (n < 0)
        {
          transport_fail (t, 0, "the control stream broke");
          return;
        }
      if (n == 0)
        return;
      g_byte_array_remove_range (t->ctl_out, 0, (guint) n);
    }
}

static void
control_send (Transport *t, const struct ctlmsg *msg)
{
  guint8 buf[CTLMSG_MAX_LEN];
  gsize n = ctlmsg_build (buf, sizeof buf, msg);

  g_assert (n > 0);
  if (t->closed)
    return;
  g_debug ("control: sending type %u stream %u", msg->type, msg->stream_id);
  if (t->ctl_out->len + n > CONTROL_QUEUE_MAX)
    {
      transport_fail (t, 0, "the control channel is stuck (peer not reading)");
      return;
    }
  g_byte_array_append (t->ctl_out, buf, (guint) n);
  control_flush (t);
  transport_kick (t);
}

static void
control_on_readable (Transport *t)
{
  guint8 buf[4096];

  while (!t->closed)
    {
      bool fin = false;
      gssize n = xport_stream_read (t->conn, t->ctl_in_id, buf, sizeof buf, &fin, NULL);
      gsize off = 0;

      if (n == XPORT_ERR_AGAIN)
        return;
      if (n < 0 || fin)
        {
          transport_fail (t, 0, "the peer closed the control channel");
          return;
        }
      if (t->ctl_in->len + (gsize) n > CONTROL_QUEUE_MAX)
        {
          transport_fail (t, 0, "the peer's control messages are malformed (too long)");
          return;
        }
      g_byte_array_append (t->ctl_in, buf, (guint) n);
      while (!t->closed)
        {
          struct ctlmsg msg;
          gsize used = 0;
          enum ctlmsg_status st
              = ctlmsg_parse (t->ctl_in->data + off, t->ctl_in->len - off, &msg, &used);
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

/* ---- streams ---- */

static TransportStream *
stream_new (Transport *t, guint32 id, StreamState state)
{
  TransportStream *s = g_new0 (TransportStream, 1);

  s->transport = t;
  s->id = id;
  s->state = state;
  g_hash_table_insert (t->streams, GUINT_TO_POINTER (id), s);
  return s;
}

static void
stream_release (TransportStream *s)
{
  Transport *t = s->transport;

  if (s->released || t == NULL || t->conn == NULL)
    return;
  s->released = TRUE;
  xport_stream_release (t->conn, s->id);
  transport_kick (t);
}

static gboolean
stream_id_is_peers (Transport *t, guint32 id)
{
  /* The initiator opens odd ids, the responder even ones; the first of each
   * is its control stream. */
  return id > 1 && ((id & 1) == 1) != t->initiator;
}

static void
stream_drop (TransportStream *s)
{
  Transport *t = s->transport;

  stream_release (s);
  g_hash_table_remove (t->streams, GUINT_TO_POINTER (s->id));
  g_free (s->refuse_text);
  g_free (s);
}

/* Reads the OPEN message that starts a stream of the peer's, exactly: the
 * bytes after it are the service's. */
static void
stream_read_header (Transport *t, TransportStream *s)
{
  while (s->state == STREAM_HEADER)
    {
      gsize want = s->header_len < CTLMSG_HEADER_LEN
                       ? CTLMSG_HEADER_LEN - s->header_len
                       : CTLMSG_HEADER_LEN + ((gsize) s->header[1] << 8 | s->header[2])
                             - s->header_len;
      struct ctlmsg msg;
      gsize used;
      bool fin = false;
      gssize n;

      if (s->header_len + want > sizeof s->header)
        {
          stream_drop (s); /* an OPEN is never this long */
          return;
        }
      if (want > 0)
        {
          n = xport_stream_read (t->conn, s->id, s->header + s->header_len, want, &fin, NULL);
          if (n == XPORT_ERR_AGAIN)
            return;
          if (n <= 0)
            {
              stream_drop (s); /* ended or reset before it said what it is */
              return;
            }
          s->header_len += (gsize) n;
          continue;
        }
      if (ctlmsg_parse (s->header, s->header_len, &msg, &used) != CTLMSG_OK
          || (msg.type != CTLMSG_OPEN && msg.type != CTLMSG_OPEN_DGRAM
              && msg.type != CTLMSG_OPEN_MEDIA)
          || msg.stream_id != s->id)
        {
          struct ctlmsg refuse = { .type = CTLMSG_REFUSE, .stream_id = s->id,
                                   .code = CTLMSG_REFUSE_BAD_STREAM };
          g_strlcpy (refuse.text, "a stream must start with its OPEN", sizeof refuse.text);
          control_send (t, &refuse);
          stream_drop (s);
          return;
        }
      s->state = STREAM_PENDING;
      /* A media leg's stream carries no bytes either (section 7). */
      s->datagram = msg.type != CTLMSG_OPEN;
      s->media = msg.type == CTLMSG_OPEN_MEDIA;
      /* Last: the user may accept, refuse (and so free) it from there. */
      t->cb.open_request (s, msg.name, t->user_data);
      return;
    }
}

/* A stream of the peer's that we hear of for the first time. */
static void
stream_from_peer (Transport *t, guint64 id)
{
  if (id > G_MAXUINT32 || !stream_id_is_peers (t, (guint32) id))
    return;
  if (g_hash_table_size (t->streams) >= TRANSPORT_MAX_STREAMS)
    {
      struct ctlmsg refuse = { .type = CTLMSG_REFUSE, .stream_id = (guint32) id,
                               .code = CTLMSG_REFUSE_LIMIT };
      g_snprintf (refuse.text, sizeof refuse.text, "too many streams (limit %d)",
                  TRANSPORT_MAX_STREAMS);
      control_send (t, &refuse);
      xport_stream_release (t->conn, id);
      return;
    }
  stream_read_header (t, stream_new (t, (guint32) id, STREAM_HEADER));
}

static void
transport_handle_control (Transport *t, const struct ctlmsg *msg)
{
  TransportStream *s = transport_stream_lookup (t, msg->stream_id);

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
    case CTLMSG_ACCEPT:
      if (s && s->state == STREAM_OPENING)
        {
          s->state = STREAM_OPEN;
          stream_note (s, NOTE_OPENED | NOTE_WRITABLE | NOTE_READABLE);
        }
      break;
    case CTLMSG_REFUSE:
      if (s && s->state == STREAM_OPENING)
        {
          s->refused = TRUE;
          s->refuse_code = msg->code;
          s->refuse_text = g_strdup (msg->text);
          stream_release (s);
          stream_note (s, NOTE_ENDED);
        }
      break;
    case CTLMSG_CLOSE:
      /* Given up before it was answered. */
      if (s && (s->state == STREAM_PENDING || s->state == STREAM_OPENING))
        {
          s->reset = TRUE;
          stream_release (s);
          stream_note (s, NOTE_ENDED);
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
    default:
      /* OPEN travels in its own stream; BYE and FIN belonged to version 1
       * (the connection's CLOSE and the streams' own end replace them). */
      break;
    }
}

/* ---- the pump ---- */

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
  if (t->conn != NULL && !xport_conn_is_closed (t->conn))
    xport_conn_close (t->conn, code ? BYE_CODE_BASE + code : XPORT_CLOSE_PROTOCOL, text);
  /* The transport's closed() says it all: no stream callback after it. */
  g_hash_table_iter_init (&it, t->streams);
  while (g_hash_table_iter_next (&it, NULL, &value))
    ((TransportStream *) value)->notes = 0;
  g_array_set_size (t->noted, 0);
  transport_kick (t);
}

static void
handle_event (Transport *t, const struct xport_event *ev)
{
  TransportStream *s;

  switch (ev->type)
    {
    case XPORT_EVENT_READABLE:
      if (ev->stream_id == t->ctl_in_id)
        {
          control_on_readable (t);
          break;
        }
      s = transport_stream_lookup (t, ev->stream_id);
      if (s == NULL)
        stream_from_peer (t, ev->stream_id);
      else if (s->state == STREAM_HEADER)
        stream_read_header (t, s);
      else if (s->state == STREAM_OPEN)
        stream_note (s, NOTE_READABLE);
      break;
    case XPORT_EVENT_WRITABLE:
      if (ev->stream_id == t->ctl_out_id)
        {
          control_flush (t);
          break;
        }
      s = transport_stream_lookup (t, ev->stream_id);
      if (s && s->state == STREAM_OPEN)
        stream_note (s, NOTE_WRITABLE);
      break;
    case XPORT_EVENT_CLOSED:
      if (ev->remote && ev->code > BYE_CODE_BASE && ev->code <= BYE_CODE_BASE + 255)
        transport_fail (t, (guint8) (ev->code - BYE_CODE_BASE),
                        ev->reason && ev->reason[0] ? ev->reason : "the peer left");
      else if (ev->remote)
        transport_fail (t, 0, ev->reason && ev->reason[0] ? ev->reason : "the peer closed");
      else if (ev->code == XPORT_CLOSE_IDLE)
        transport_fail (t, 0, "the peer stopped answering");
      else
        {
          g_autofree char *why = g_strdup_printf ("transport error %" G_GUINT64_FORMAT ": %s",
                                                  ev->code, ev->reason ? ev->reason : "");
          transport_fail (t, 0, why);
        }
      break;
    case XPORT_EVENT_STREAM_OPENED:
      if (ev->stream_id != t->ctl_in_id && transport_stream_lookup (t, ev->stream_id) == NULL)
        stream_from_peer (t, ev->stream_id);
      break;
    case XPORT_EVENT_DATAGRAM:
      transport_deliver_datagrams (t);
      break;
    }
}

static void
stream_deliver (Transport *t, TransportStream *s, guint notes)
{
  if (notes & NOTE_ENDED)
    {
      if (s->state == STREAM_OPENING && s->refused)
        {
          s->state = STREAM_DONE;
          if (s->cb.refused)
            s->cb.refused (s, s->refuse_code, s->refuse_text ? s->refuse_text : "",
                           s->user_data);
          return;
        }
      if (s->state != STREAM_DONE)
        {
          g_autoptr (GError) error = NULL;

          s->state = STREAM_DONE;
          if (s->reset)
            error = g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                 "stream %u reset by the peer", s->id);
          if (s->cb.closed)
            s->cb.closed (s, error, s->user_data);
        }
      return;
    }
  if (s->state != STREAM_OPEN)
    return;
  if ((notes & NOTE_OPENED) && s->cb.opened)
    {
      s->cb.opened (s, s->user_data);
      /* The callback may have freed it. */
      if (transport_stream_lookup (t, s->id) != s)
        return;
    }
  if ((notes & NOTE_READABLE) && s->cb.readable)
    {
      s->cb.readable (s, s->user_data);
      if (transport_stream_lookup (t, s->id) != s || s->state != STREAM_OPEN)
        return;
    }
  if ((notes & NOTE_WRITABLE) && s->cb.writable)
    s->cb.writable (s, s->user_data);
}

/* Path MTU discovery moved the packet size: worth a debug line, since it
 * decides the throughput of a fast path. */
static void
log_packet_size (Transport *t)
{
  struct xport_stats st;

  xport_conn_stats (t->conn, &st);
  if (st.packet_size != t->packet_size)
    {
      g_debug ("tunnel packets of %u bytes (were %u)", st.packet_size, t->packet_size);
      t->packet_size = st.packet_size;
    }
}


gboolean
transport_pump_round (Transport *t, guint64 now)
{
  struct xport_event ev;
  gboolean busy = FALSE;
  guint sent = 0;

  control_flush (t);
  while (t->conn && xport_conn_poll_event (t->conn, &ev))
    {
      handle_event (t, &ev);
      busy = TRUE;
    }
  /* Notes taken one at a time: a callback may note others or free any. */
  while (t->noted->len > 0 && !t->closed)
    {
      guint32 id = g_array_index (t->noted, guint32, 0);
      TransportStream *s;
      guint notes;

      g_array_remove_index (t->noted, 0);
      s = transport_stream_lookup (t, id);
      if (s == NULL || s->notes == 0)
        continue;
      notes = s->notes;
      s->notes = 0;
      stream_deliver (t, s, notes);
      busy = TRUE;
    }
  sent = transport_send_burst (t, now);
  if (t->conn)
    log_packet_size (t);
  return busy || sent > 0;
}


/* ---- the interface ---- */

Transport *
transport_new (GMainContext *context, gboolean initiator, const TransportCallbacks *callbacks,
               gpointer user_data)
{
  Transport *t = g_new0 (Transport, 1);

  t->context = g_main_context_ref (context);
  t->initiator = initiator;
  t->cb = *callbacks;
  t->user_data = user_data;
  t->ctl_out_id = initiator ? 1 : 0;
  t->dgram = g_malloc (XPORT_MAX_PACKET);
  t->ctl_in_id = initiator ? 0 : 1;
  t->streams = g_hash_table_new (NULL, NULL);
  t->noted = g_array_new (FALSE, FALSE, sizeof (guint32));
  t->ctl_in = g_byte_array_new ();
  t->ctl_out = g_byte_array_new ();
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
    ((TransportStream *) value)->transport = NULL; /* the user still holds it */
  g_hash_table_unref (t->streams);
  if (t->pump != NULL)
    {
      g_source_destroy (t->pump);
      g_source_unref (t->pump);
    }
  if (t->conn != NULL)
    xport_conn_free (t->conn);
  if (t->dgrams_dropped > 0)
    g_debug ("%" G_GUINT64_FORMAT " datagrams for no open UDP flow were dropped",
             t->dgrams_dropped);
  g_free (t->packet);
  g_free (t->dgram);
  g_array_unref (t->noted);
  g_byte_array_unref (t->ctl_in);
  g_byte_array_unref (t->ctl_out);
  g_free (t->close_text);
  g_main_context_unref (t->context);
  g_free (t);
}

void
transport_start (Transport *t, gsize max_packet, gsize max_packet_probe)
{
  struct ctlmsg hello = { .type = CTLMSG_HELLO, .version = CTLMSG_VERSION };
  struct xport_config cfg = {
    .is_client = t->initiator,
    .cc = XPORT_CC_BBR,
    .max_streams = TRANSPORT_MAX_STREAMS + 1,
    .stream_window_max = XPORT_TUNNEL_STREAM_WINDOW,
    .conn_window_max = XPORT_TUNNEL_CONN_WINDOW,
    .send_buffer_max = XPORT_TUNNEL_SEND_BUFFER,
    .max_packet = max_packet,
    .max_packet_probe = MIN (max_packet_probe, XPORT_MAX_PACKET),
    .idle_timeout_us = t->idle_timeout_us,
  };
  guint64 id = 0;

  g_return_if_fail (t->conn == NULL);
  /* Room for the largest packet, which a later path may probe for. */
  t->packet_cap = XPORT_MAX_PACKET;
  t->packet = g_malloc (t->packet_cap);
  t->packet_size = (guint32) max_packet;
  t->conn = xport_conn_new (&cfg, transport_now_us ());
  g_assert (t->conn != NULL); /* the configuration is ours; memory is there */
  t->pump = transport_pump_new (t);
  g_source_set_callback (t->pump, NULL, t, NULL);
  g_source_set_name (t->pump, "p2ptun-transport");
  g_source_attach (t->pump, t->context);
  /* Our control stream is the first we open. */
  if (xport_stream_open (t->conn, &id) != XPORT_OK || id != t->ctl_out_id)
    {
      transport_fail (t, 0, "cannot open the control stream");
      return;
    }
  control_send (t, &hello);
}

void
transport_receive_packet (Transport *t, const guint8 *buf, gsize len)
{
  if (t->conn == NULL || t->closed)
    return;
  t->bytes_received += len;
  xport_conn_receive (t->conn, transport_now_us (), buf, len);
  /* Datagrams at once: the transport's queue of received ones is short, and
   * a burst of packets could overflow it before the pump runs. */
  transport_deliver_datagrams (t);
  transport_kick (t);
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
  gsize n;

  if (t->closed || t->conn == NULL)
    return;
  xport_conn_close (t->conn, BYE_CODE_BASE + code, text);
  /* Out now: the caller closes DTLS next. */
  n = xport_conn_send (t->conn, transport_now_us (), t->packet, t->packet_cap);
  if (n > 0)
    {
      t->cb.send_packet (t->packet, n, t->user_data);
      t->cb.flush (t->user_data);
    }
  t->closed = TRUE;
  t->closed_notified = TRUE; /* we said it; nothing to tell the user */
}

void
transport_path_changed (Transport *t, gsize max_packet_probe)
{
  if (t->conn == NULL || t->closed)
    return;
  xport_conn_set_max_packet_probe (t->conn, max_packet_probe);
  xport_conn_path_changed (t->conn, transport_now_us ());
  log_packet_size (t);
  transport_kick (t);
}

guint
transport_n_streams (Transport *t)
{
  return g_hash_table_size (t->streams);
}

void
transport_set_idle_timeout (Transport *t, guint seconds)
{
  g_return_if_fail (t->conn == NULL);
  t->idle_timeout_us = (guint64) seconds * G_USEC_PER_SEC;
}

guint64
transport_bytes_in_flight (Transport *t)
{
  struct xport_stats st;

  if (t->conn == NULL)
    return 0;
  xport_conn_stats (t->conn, &st);
  return st.bytes_in_flight;
}

void
transport_get_bytes (Transport *t, guint64 *sent, guint64 *received)
{
  *sent = t->bytes_sent;
  *received = t->bytes_received;
}

void
transport_get_packets (Transport *t, guint64 *sent, guint64 *received, guint64 *lost)
{
  struct xport_stats st = { 0 };

  if (t->conn != NULL)
    xport_conn_stats (t->conn, &st);
  *sent = st.packets_sent;
  *received = st.packets_received;
  *lost = st.packets_lost;
}

guint
transport_n_flows (Transport *t)
{
  GHashTableIter it;
  gpointer value;
  guint n = 0;

  g_hash_table_iter_init (&it, t->streams);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (((TransportStream *) value)->datagram && !((TransportStream *) value)->media)
      n++;
  return n;
}

TransportStream *
transport_stream_open_typed (Transport *t, guint8 type, const char *service,
             const TransportStreamCallbacks *callbacks, gpointer user_data, GError **error)
{
  struct ctlmsg open = { .type = type };
  guint8 header[CTLMSG_MAX_LEN];
  TransportStream *s;
  guint64 id;
  gsize n;
  int r;

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
  r = xport_stream_open (t->conn, &id);
  if (r != XPORT_OK || id > G_MAXUINT32)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES,
                   "the peer allows no more streams right now");
      return NULL;
    }
  open.stream_id = (guint32) id;
  g_strlcpy (open.name, service, sizeof open.name);
  n = ctlmsg_build (header, sizeof header, &open);
  /* A new stream's send buffer takes this at once. */
  if (n == 0 || xport_stream_write (t->conn, id, header, n) != (gssize) n)
    {
      xport_stream_release (t->conn, id);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot open a stream to '%s'",
                   service);
      return NULL;
    }
  transport_kick (t);
  s = stream_new (t, (guint32) id, STREAM_OPENING);
  s->cb = *callbacks;
  s->user_data = user_data;
  s->datagram = type != CTLMSG_OPEN;
  s->media = type == CTLMSG_OPEN_MEDIA;
  return s;
}

TransportStream *
transport_open (Transport *t, const char *service, const TransportStreamCallbacks *callbacks,
                gpointer user_data, GError **error)
{
  return transport_stream_open_typed (t, CTLMSG_OPEN, service, callbacks, user_data, error);
}

void
transport_stream_accept (TransportStream *s, const TransportStreamCallbacks *callbacks,
                         gpointer user_data)
{
  struct ctlmsg accept = { .type = CTLMSG_ACCEPT, .stream_id = s->id };

  g_return_if_fail (s->state == STREAM_PENDING);
  s->cb = *callbacks;
  s->user_data = user_data;
  s->state = STREAM_OPEN;
  if (s->transport == NULL)
    return;
  control_send (s->transport, &accept);
  /* Bytes may be waiting already; and the acceptor may write from now on. */
  stream_note (s, NOTE_READABLE | NOTE_WRITABLE);
}

void
transport_stream_refuse (TransportStream *s, guint8 code, const char *text)
{
  struct ctlmsg refuse = { .type = CTLMSG_REFUSE, .stream_id = s->id, .code = code };

  g_return_if_fail (s->state == STREAM_PENDING);
  g_strlcpy (refuse.text, text, sizeof refuse.text);
  if (s->transport != NULL)
    control_send (s->transport, &refuse);
  s->state = STREAM_DONE;
  transport_stream_free (s);
}

gssize
transport_stream_write (TransportStream *s, const guint8 *buf, gsize len)
{
  gssize n;

  if (s->transport == NULL || s->transport->closed || s->reset || s->fin_sent
      || s->state == STREAM_DONE)
    return -1;
  if (s->state != STREAM_OPEN)
    return 0;
  n = xport_stream_write (s->transport->conn, s->id, buf, len);
  if (n < 0)
    {
      /* The peer stopped reading it (STOP_SENDING) or it is gone. */
      s->reset = TRUE;
      stream_note (s, NOTE_ENDED);
      return -1;
    }
  if (n > 0)
    transport_kick (s->transport);
  return n;
}

static void
stream_check_done (TransportStream *s)
{
  /* Both directions ended: what we queued still goes out after release. */
  if (s->fin_sent && s->eof_read)
    {
      stream_release (s);
      stream_note (s, NOTE_ENDED);
    }
}

gssize
transport_stream_read (TransportStream *s, guint8 *buf, gsize len)
{
  bool fin = false;
  gssize n;

  if (s->transport == NULL || s->transport->closed || s->reset)
    {
      errno = ECONNRESET;
      return -1;
    }
  if (s->state != STREAM_OPEN)
    {
      errno = EAGAIN;
      return -1;
    }
  if (s->eof_read)
    return 0;
  n = xport_stream_read (s->transport->conn, s->id, buf, len, &fin, NULL);
  if (n == XPORT_ERR_AGAIN)
    {
      errno = EAGAIN;
      return -1;
    }
  if (n < 0)
    {
      s->reset = TRUE;
      stream_note (s, NOTE_ENDED);
      errno = ECONNRESET;
      return -1;
    }
  if (n > 0)
    {
      /* Reading opens the window: the peer may hear of it. */
      transport_kick (s->transport);
      return n;
    }
  if (!fin)
    {
      errno = EAGAIN;
      return -1;
    }
  s->eof_read = TRUE;
  stream_check_done (s);
  return 0;
}

void
transport_stream_shutdown_write (TransportStream *s)
{
  if (s->fin_sent || s->transport == NULL || s->transport->closed || s->reset
      || s->state != STREAM_OPEN)
    return;
  s->fin_sent = TRUE;
  xport_stream_shutdown (s->transport->conn, s->id);
  transport_kick (s->transport);
  stream_check_done (s);
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
      /* Given up before the peer answered: tell it on the control stream. */
      if (!t->closed && (s->state == STREAM_OPENING || s->state == STREAM_PENDING))
        {
          struct ctlmsg close = { .type = CTLMSG_CLOSE, .stream_id = s->id };
          control_send (t, &close);
        }
      stream_release (s);
      g_hash_table_remove (t->streams, GUINT_TO_POINTER (s->id));
      if (g_hash_table_size (t->streams) == 0)
        memtrim_soon (t->context);
    }
  g_free (s->refuse_text);
  g_free (s);
}

guint32
transport_stream_id (TransportStream *s)
{
  return s->id;
}
