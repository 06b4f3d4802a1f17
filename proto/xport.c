/* The tunnel transport's connection: lifetime, packet input and frame
 * dispatch, timers, events. See xport.h; packets are built in xport_send.c,
 * the application's stream and datagram calls are in xport_app.c. The wire
 * format is PROTOCOL.md section 6. */
#include "xport_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static bool
stream_is_local (const struct xport_conn *c, uint64_t id)
{
  return (id & 1) == (c->cfg.is_client ? 1u : 0u);
}

struct xport_stream *
xport_conn_stream_find (const struct xport_conn *c, uint64_t id, size_t *slot)
{
  for (size_t i = 0; i < c->slots_hi; i++)
    if (c->slots[i] != NULL && c->slots[i]->id == id)
      {
        if (slot != NULL)
          *slot = i;
        return c->slots[i];
      }
  return NULL;
}

static void
queue_event (struct xport_conn *c, struct xport_stream *s)
{
  size_t i;
  if (xport_conn_stream_find (c, s->id, &i) == NULL || c->slot_queued[i])
    return;
  c->slot_queued[i] = true;
  c->evq[(c->evq_head + c->evq_n) % c->n_slots] = i;
  c->evq_n++;
}

static void
mark_readable (struct xport_conn *c, struct xport_stream *s)
{
  if (s->released)
    return;
  s->ev_readable = true;
  queue_event (c, s);
}

static void
mark_writable (struct xport_conn *c, struct xport_stream *s)
{
  if (s->released)
    return;
  s->ev_writable = true;
  s->s_blocked = false;
  queue_event (c, s);
}

static void
conn_close_local (struct xport_conn *c, uint64_t code, const char *reason, bool send)
{
  if (c->state == CONN_CLOSED)
    return;
  c->state = CONN_CLOSED;
  c->close_code = code;
  c->close_remote = false;
  snprintf (c->close_reason, sizeof c->close_reason, "%s", reason != NULL ? reason : "");
  c->close_pending = send;
  c->ev_closed = true;
}

struct xport_stream *
xport_conn_stream_create (struct xport_conn *c, uint64_t id, bool local)
{
  size_t i;
  for (i = 0; i < c->n_slots; i++)
    if (c->slots[i] == NULL)
      break;
  if (i == c->n_slots)
    return NULL;
  struct xport_stream *s = xport_stream_new (
      id, local, XPORT_INITIAL_MAX_STREAM_DATA, XPORT_INITIAL_MAX_STREAM_DATA,
      c->cfg.stream_window_max, c->cfg.send_buffer_max);
  if (s == NULL)
    return NULL;
  s->r_window_time = c->now;
  c->slots[i] = s;
  if (i >= c->slots_hi)
    c->slots_hi = i + 1;
  if (local)
    c->n_local_live++;
  else
    c->n_peer_live++;
  return s;
}

/* Frees the stream once the application let go and both directions ended. */
void
xport_conn_stream_maybe_free (struct xport_conn *c, struct xport_stream *s)
{
  size_t i;
  if (!s->released || !xport_stream_send_done (s) || !xport_stream_recv_done (s))
    return;
  if (xport_conn_stream_find (c, s->id, &i) == NULL)
    return;
  /* What the application never read still returns connection credit. */
  if (s->r_final > s->r_read)
    c->rx_consumed += s->r_final - s->r_read;
  if (s->local)
    c->n_local_live--;
  else
    {
      c->n_peer_live--;
      c->local_max_streams++;
      c->max_streams_pending = true;
    }
  c->slots[i] = NULL;
  while (c->slots_hi > 0 && c->slots[c->slots_hi - 1] == NULL)
    c->slots_hi--;
  xport_stream_free (s);
}

void
xport_conn_update_window (struct xport_conn *c)
{
  if (c->rx_max_data - c->rx_consumed >= c->rx_window / 2)
    return;
  /* As for a stream (xport_stream_update_window): grow when the reader keeps
   * up, or when much of the window waits behind holes left by loss. */
  bool fast = c->now - c->rx_window_time < 2 * c->rec.srtt;
  bool behind_holes = c->rx_data - c->rx_consumed > c->rx_window / 4;
  if ((fast || behind_holes) && c->rx_window < c->cfg.conn_window_max)
    {
      c->rx_window *= 2;
      if (c->rx_window > c->cfg.conn_window_max)
        c->rx_window = c->cfg.conn_window_max;
    }
  c->rx_window_time = c->now;
  c->rx_max_data = c->rx_consumed + c->rx_window;
  c->max_data_pending = true;
}

/* ---- recovery callbacks ---- */

/* The packet size changed: the controller counts in packets of it. */
static void
packet_size_changed (struct xport_conn *c)
{
  c->rec.cc.mss = c->pmtu.current;
}

static void
on_packet_acked (void *ctx, const struct xport_sent *p)
{
  struct xport_conn *c = ctx;
  if ((p->flags & XPORT_SENT_PMTU_PROBE) && xport_pmtu_on_acked (&c->pmtu, p->pn, c->now))
    packet_size_changed (c);
  for (unsigned i = 0; i < p->n_refs; i++)
    {
      const struct xport_ref *r = &p->refs[i];
      struct xport_stream *s = xport_conn_stream_find (c, r->stream_id, NULL);
      if (s == NULL)
        continue;
      switch (r->type)
        {
        case XPORT_REF_STREAM:
          xport_stream_on_acked (s, r->offset, r->len, r->fin);
          if (s->s_blocked && xport_stream_buffer_room (s) > 0)
            mark_writable (c, s);
          break;
        case XPORT_REF_RESET:
          s->s_reset_acked = true;
          break;
        default:
          break;
        }
      xport_conn_stream_maybe_free (c, s);
    }
}

static void
on_packet_lost (void *ctx, const struct xport_sent *p)
{
  struct xport_conn *c = ctx;
  if (p->flags & XPORT_SENT_PMTU_PROBE)
    xport_pmtu_on_lost (&c->pmtu, p->pn, c->now);
  if (p->flags & XPORT_SENT_MAX_DATA)
    c->max_data_pending = true;
  if (p->flags & XPORT_SENT_MAX_STREAMS)
    c->max_streams_pending = true;
  for (unsigned i = 0; i < p->n_refs; i++)
    {
      const struct xport_ref *r = &p->refs[i];
      struct xport_stream *s = xport_conn_stream_find (c, r->stream_id, NULL);
      if (s == NULL)
        continue;
      switch (r->type)
        {
        case XPORT_REF_STREAM:
          xport_stream_on_lost (s, r->offset, r->len, r->fin);
          break;
        case XPORT_REF_MAX_STREAM_DATA:
          if (s->r_final == UINT64_MAX && !s->r_stop)
            s->r_max_pending = true;
          break;
        case XPORT_REF_RESET:
          if (!s->s_reset_acked)
            s->s_reset_pending = true;
          break;
        case XPORT_REF_STOP_SENDING:
          if (s->r_final == UINT64_MAX)
            s->r_stop_pending = true;
          break;
        default:
          break;
        }
    }
}

/* ---- lifetime ---- */

static bool
dgq_init (struct dgram_queue *q, size_t cap)
{
  q->q = calloc (cap, sizeof q->q[0]);
  q->cap = cap;
  q->head = q->n = 0;
  return q->q != NULL;
}

struct xport_conn *
xport_conn_new (const struct xport_config *cfg, uint64_t now)
{
  struct xport_conn *c = calloc (1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->cfg = *cfg;
  struct xport_config *k = &c->cfg;
  if (k->idle_timeout_us == 0)
    k->idle_timeout_us = 30000000;
  if (k->keepalive_us == 0)
    k->keepalive_us = 5000000;
  if (k->max_streams == 0)
    k->max_streams = 128;
  if (k->max_streams < XPORT_INITIAL_MAX_STREAMS)
    k->max_streams = XPORT_INITIAL_MAX_STREAMS;
  if (k->max_streams > XPORT_STREAM_LIMIT_MAX)
    k->max_streams = XPORT_STREAM_LIMIT_MAX;
  if (k->stream_window_max == 0)
    k->stream_window_max = 16u << 20;
  if (k->stream_window_max < XPORT_INITIAL_MAX_STREAM_DATA)
    k->stream_window_max = XPORT_INITIAL_MAX_STREAM_DATA;
  if (k->conn_window_max == 0)
    k->conn_window_max = 3 * k->stream_window_max;
  if (k->conn_window_max < XPORT_INITIAL_MAX_DATA)
    k->conn_window_max = XPORT_INITIAL_MAX_DATA;
  if (k->send_buffer_max == 0)
    k->send_buffer_max = 16u << 20;
  if (k->max_packet == 0)
    k->max_packet = XPORT_BASE_PACKET;
  if (k->sent_packets == 0)
    k->sent_packets = 8192;
  if (k->datagram_queue == 0)
    k->datagram_queue = 64;
  if (k->max_packet < 256 || k->max_packet > XPORT_MAX_PACKET
      || k->max_packet_probe > XPORT_MAX_PACKET
      || (k->sent_packets & (k->sent_packets - 1)) != 0
      || k->datagram_queue > 4096)
    {
      free (c);
      return NULL;
    }

  c->now = now;
  c->n_slots = 2 * (size_t)k->max_streams;
  c->slots = calloc (c->n_slots, sizeof c->slots[0]);
  c->slot_queued = calloc (c->n_slots, sizeof c->slot_queued[0]);
  c->evq = calloc (c->n_slots, sizeof c->evq[0]);
  struct xport_recovery_callbacks cb = { on_packet_acked, on_packet_lost };
  if (c->slots == NULL || c->slot_queued == NULL || c->evq == NULL
      || !dgq_init (&c->dg_out, k->datagram_queue)
      || !dgq_init (&c->dg_in, k->datagram_queue)
      || !xport_recovery_init (&c->rec, k->sent_packets, k->cc, k->max_packet,
                               XPORT_MAX_ACK_DELAY_US, now, &cb, c))
    {
      xport_conn_free (c);
      return NULL;
    }
  xport_pmtu_init (&c->pmtu, k->max_packet, k->max_packet_probe, now);
  c->local_max_streams = k->max_streams;
  c->remote_max_streams = XPORT_INITIAL_MAX_STREAMS;
  c->max_streams_pending = k->max_streams != XPORT_INITIAL_MAX_STREAMS;
  c->tx_max_data = XPORT_INITIAL_MAX_DATA;
  c->rx_max_data = XPORT_INITIAL_MAX_DATA;
  c->rx_window = XPORT_INITIAL_MAX_DATA;
  c->rx_window_time = now;
  xport_ranges_init (&c->rx_pns, c->rx_pns_r, XPORT_RX_PN_RANGES);
  c->last_rx_time = now;
  c->last_tx_time = now;
  c->next_send_time = now;
  return c;
}

void
xport_conn_free (struct xport_conn *c)
{
  if (c == NULL)
    return;
  if (c->slots != NULL)
    for (size_t i = 0; i < c->n_slots; i++)
      xport_stream_free (c->slots[i]);
  free (c->slots);
  free (c->slot_queued);
  free (c->evq);
  free (c->dg_out.q);
  free (c->dg_in.q);
  xport_recovery_clear (&c->rec);
  free (c);
}

/* ---- receiving ---- */

/* The stream a frame names; NULL with *@err 0 when it is gone (ignore the
 * frame), NULL with *@err set when the peer broke a rule. */
static struct xport_stream *
stream_for_frame (struct xport_conn *c, uint64_t id, uint64_t *err)
{
  *err = 0;
  struct xport_stream *s = xport_conn_stream_find (c, id, NULL);
  if (s != NULL)
    return s;
  uint64_t index = id >> 1;
  if (stream_is_local (c, id))
    {
      if (index >= c->next_local_index)
        *err = XPORT_CLOSE_PROTOCOL; /* a stream of ours we never opened */
      return NULL;
    }
  if (index < c->peer_next_index)
    return NULL; /* finished and freed */
  if (index >= c->local_max_streams)
    {
      *err = XPORT_CLOSE_STREAM_LIMIT;
      return NULL;
    }
  /* RFC 9000 section 3.2: opening a stream opens the lower ones too. */
  while (c->peer_next_index <= index)
    {
      uint64_t nid = c->peer_next_index << 1 | (c->cfg.is_client ? 0u : 1u);
      s = xport_conn_stream_create (c, nid, false);
      if (s == NULL)
        {
          *err = XPORT_CLOSE_INTERNAL;
          return NULL;
        }
      c->peer_next_index++;
      s->ev_opened = true;
      queue_event (c, s);
    }
  return s;
}

static uint64_t
rx_status_code (enum xport_stream_rx st)
{
  return st == XPORT_STREAM_RX_FLOW_CONTROL ? XPORT_CLOSE_FLOW_CONTROL
                                            : XPORT_CLOSE_FINAL_SIZE;
}

/* Returns a close code, 0 when fine. *@ackable false: drop unacknowledged. */
static uint64_t
handle_frame (struct xport_conn *c, const struct xport_frame *f, bool *eliciting,
              bool *ackable, const char **why)
{
  struct xport_stream *s;
  uint64_t err = 0, grown = 0;
  enum xport_stream_rx st;

  if (f->type != XPORT_FRAME_ACK && f->type != XPORT_FRAME_PADDING
      && f->type != XPORT_FRAME_CLOSE)
    *eliciting = true;
  switch (f->type)
    {
    case XPORT_FRAME_PADDING:
    case XPORT_FRAME_PING:
      return 0;
    case XPORT_FRAME_ACK:
      /* One ACK per packet is all a peer needs; more would only let it make
       * us walk the sent-packet ring many times for one packet. */
      if (c->ack_seen)
        return 0;
      c->ack_seen = true;
      if (xport_recovery_on_ack (&c->rec, c->now, f) != XPORT_ACK_OK)
        {
          *why = "acknowledgement of a packet never sent";
          return XPORT_CLOSE_PROTOCOL;
        }
      return 0;
    case XPORT_FRAME_STREAM:
    case XPORT_FRAME_STREAM_FIN:
      s = stream_for_frame (c, f->stream_id, &err);
      if (s == NULL)
        {
          *why = "stream frame for a stream out of bounds";
          return err;
        }
      st = xport_stream_on_data (s, f->offset, f->data, f->len, f->fin, &grown);
      if (st == XPORT_STREAM_RX_NO_ROOM)
        {
          *ackable = false;
          st = XPORT_STREAM_RX_OK;
        }
      if (st != XPORT_STREAM_RX_OK)
        {
          *why = "stream data beyond the credit or the final size";
          return rx_status_code (st);
        }
      c->rx_data += grown;
      if (c->rx_data > c->rx_max_data)
        {
          *why = "stream data beyond the connection credit";
          return XPORT_CLOSE_FLOW_CONTROL;
        }
      c->stream_bytes_received += f->len;
      if (xport_stream_readable (s) > 0 || xport_stream_at_end (s))
        mark_readable (c, s);
      if (s->r_stop && s->r_final != UINT64_MAX)
        xport_conn_stream_maybe_free (c, s);
      return 0;
    case XPORT_FRAME_RESET_STREAM:
      s = stream_for_frame (c, f->stream_id, &err);
      if (s == NULL)
        {
          *why = "reset of a stream out of bounds";
          return err;
        }
      st = xport_stream_on_reset (s, f->value, f->code, &grown);
      if (st != XPORT_STREAM_RX_OK)
        {
          *why = "reset beyond the credit or the final size";
          return rx_status_code (st);
        }
      c->rx_data += grown;
      if (c->rx_data > c->rx_max_data)
        {
          *why = "reset beyond the connection credit";
          return XPORT_CLOSE_FLOW_CONTROL;
        }
      /* What will never be read returns its connection credit now. */
      if (s->r_final > s->r_read)
        {
          c->rx_consumed += s->r_final - s->r_read;
          s->r_read = s->r_final;
          xport_conn_update_window (c);
        }
      mark_readable (c, s);
      xport_conn_stream_maybe_free (c, s);
      return 0;
    case XPORT_FRAME_STOP_SENDING:
      s = stream_for_frame (c, f->stream_id, &err);
      if (s == NULL)
        {
          *why = "stop of a stream out of bounds";
          return err;
        }
      /* RFC 9000 section 3.5: answer with a reset, unless all was sent. */
      s->s_stopped = true;
      if (!s->s_reset && !xport_stream_send_done (s))
        {
          s->s_reset = true;
          s->s_reset_pending = true;
          s->s_reset_code = f->code;
        }
      mark_writable (c, s);
      return 0;
    case XPORT_FRAME_MAX_DATA:
      if (f->value > c->tx_max_data)
        c->tx_max_data = f->value;
      return 0;
    case XPORT_FRAME_MAX_STREAM_DATA:
      s = stream_for_frame (c, f->stream_id, &err);
      if (s == NULL)
        {
          *why = "credit for a stream out of bounds";
          return err;
        }
      if (f->value > s->s_max)
        s->s_max = f->value;
      return 0;
    case XPORT_FRAME_MAX_STREAMS:
      if (f->value > c->remote_max_streams)
        c->remote_max_streams
            = f->value > (UINT64_C (1) << 60) ? UINT64_C (1) << 60 : f->value;
      return 0;
    case XPORT_FRAME_CLOSE:
      if (c->state != CONN_CLOSED)
        {
          c->state = CONN_CLOSED;
          c->close_remote = true;
          c->close_code = f->code;
          memcpy (c->close_reason, f->data != NULL ? (const char *)f->data : "", f->len);
          c->close_reason[f->len] = '\0';
          c->ev_closed = true;
        }
      return 0;
    case XPORT_FRAME_DATAGRAM:
      if (c->dg_in.n < c->dg_in.cap && f->len <= XPORT_MAX_DATAGRAM)
        {
          struct dgram *d = &c->dg_in.q[(c->dg_in.head + c->dg_in.n) % c->dg_in.cap];
          d->len = (uint16_t)f->len;
          if (f->len > 0)
            memcpy (d->data, f->data, f->len);
          c->dg_in.n++;
          c->ev_datagram = true;
        }
      return 0;
    default:
      *why = "unknown frame";
      return XPORT_CLOSE_PROTOCOL;
    }
}

int
xport_conn_receive (struct xport_conn *c, uint64_t now, const uint8_t *buf, size_t len)
{
  uint64_t pn;
  size_t start, off;
  struct xport_frame *f = &c->rx_frame;
  static const char *none = "";

  if (now > c->now)
    c->now = now;
  if (c->state == CONN_CLOSED)
    {
      /* A peer that keeps talking did not hear our CLOSE. */
      if (!c->close_remote && c->close_resends < XPORT_CLOSE_RESENDS)
        {
          c->close_resends++;
          c->close_pending = true;
        }
      return XPORT_ERR_CLOSED;
    }
  if (xport_packet_parse_header (buf, len, &pn, &start) != XPORT_WIRE_OK)
    {
      c->packets_invalid++;
      return XPORT_ERR_STATE;
    }
  /* Parse the whole packet before acting on any of it. */
  off = start;
  enum xport_wire_status ws;
  bool dup_eliciting = false;
  while ((ws = xport_frame_parse (buf, len, &off, f)) == XPORT_WIRE_OK)
    if (f->type != XPORT_FRAME_ACK && f->type != XPORT_FRAME_PADDING
        && f->type != XPORT_FRAME_CLOSE)
      dup_eliciting = true;
  if (ws != XPORT_WIRE_END)
    {
      c->packets_invalid++;
      conn_close_local (c, XPORT_CLOSE_PROTOCOL, "malformed frame", true);
      return XPORT_ERR_STATE;
    }
  c->packets_received++;
  c->last_rx_time = now;
  if (xport_ranges_contains (&c->rx_pns, pn))
    {
      /* A duplicate: the peer may have missed our ACK; tell it again (an
       * ACK-only packet never asks for an answer, or two ends would
       * acknowledge each other's acknowledgements for ever). */
      if (dup_eliciting)
        {
          c->ack_pending = true;
          c->ack_needed = true;
          c->ack_immediate = true;
        }
      return XPORT_OK;
    }

  bool eliciting = false, ackable = true;
  const char *why = none;
  c->ack_seen = false;
  off = start;
  while (c->state != CONN_CLOSED
         && xport_frame_parse (buf, len, &off, f) == XPORT_WIRE_OK)
    {
      uint64_t err = handle_frame (c, f, &eliciting, &ackable, &why);
      if (err != 0)
        {
          conn_close_local (c, err, why, true);
          break;
        }
    }
  if (c->state == CONN_CLOSED || !ackable)
    return XPORT_OK;

  xport_ranges_add_drop_low (&c->rx_pns, pn, pn + 1);
  bool in_order = !c->have_rx || pn == c->largest_rx_pn + 1;
  if (!c->have_rx || pn > c->largest_rx_pn)
    {
      c->largest_rx_pn = pn;
      c->largest_rx_time = now;
      c->have_rx = true;
    }
  c->ack_pending = true;
  if (eliciting)
    {
      if (!c->ack_needed)
        c->ack_deadline = now + XPORT_MAX_ACK_DELAY_US;
      c->ack_needed = true;
      c->ack_eliciting_unacked++;
      /* RFC 9000 section 13.2.1: out of order, or every second packet. */
      if (!in_order || c->ack_eliciting_unacked >= XPORT_ACK_EVERY)
        c->ack_immediate = true;
    }
  return XPORT_OK;
}

uint64_t
xport_conn_timeout (const struct xport_conn *c)
{
  if (c->state == CONN_CLOSED)
    return UINT64_MAX;
  /* Every deadline below is one that sending or a timer can act on now, so
   * that a caller's timer never fires in a loop: an ACK waits while the
   * packet ring is full, pacing while the window is shut. */
  uint64_t t = c->last_rx_time + c->cfg.idle_timeout_us;
  uint64_t k = c->last_tx_time + c->cfg.keepalive_us;
  if (!c->ping_pending && k < t)
    t = k;
  if (c->ack_needed && xport_recovery_has_room (&c->rec, 0))
    {
      uint64_t a = c->ack_immediate ? c->now : c->ack_deadline;
      if (a < t)
        t = a;
    }
  uint64_t r = xport_recovery_timer (&c->rec);
  if (r < t)
    t = r;
  if (xport_conn_window_open (c) && (c->probes > 0 || xport_conn_wants_data (c)))
    {
      uint64_t s = c->probes > 0 ? c->now : c->next_send_time;
      if (s < t)
        t = s;
    }
  else if (xport_conn_window_open (c) && xport_conn_pmtu_probe (c, UINT64_MAX) > 0)
    {
      /* An idle connection probes too, so that the next transfer starts
       * at full size. */
      uint64_t s = xport_pmtu_next_probe (&c->pmtu);
      if (s < c->next_send_time)
        s = c->next_send_time;
      if (s < t)
        t = s;
    }
  return t;
}

void
xport_conn_on_timeout (struct xport_conn *c, uint64_t now)
{
  if (now > c->now)
    c->now = now;
  if (c->state == CONN_CLOSED)
    return;
  if (now >= c->last_rx_time + c->cfg.idle_timeout_us)
    {
      conn_close_local (c, XPORT_CLOSE_IDLE, "idle timeout", false);
      return;
    }
  if (now >= c->last_tx_time + c->cfg.keepalive_us)
    c->ping_pending = true;
  if (now >= xport_recovery_timer (&c->rec))
    {
      c->probes += xport_recovery_on_timer (&c->rec, now);
      /* Two probe timeouts in a row with packets larger than every path
       * carries: they may be what vanishes (a black hole, RFC 8899 section
       * 4.3); back to the base size, and search again once ACKs flow. */
      if (c->rec.pto_count >= 2 && c->pmtu.current > c->pmtu.base)
        {
          xport_pmtu_restart (&c->pmtu, now, 0);
          packet_size_changed (c);
        }
    }
}

void
xport_conn_set_max_packet_probe (struct xport_conn *c, size_t size)
{
  if (size > XPORT_MAX_PACKET)
    size = XPORT_MAX_PACKET;
  c->cfg.max_packet_probe = size;
  xport_pmtu_set_ceiling (&c->pmtu, size);
}

void
xport_conn_path_changed (struct xport_conn *c, uint64_t now)
{
  if (now > c->now)
    c->now = now;
  if (xport_pmtu_restart (&c->pmtu, c->now, 0))
    packet_size_changed (c);
  /* The probe timeout backed off on the old path (up to 1 s, during an
   * outage): on the new one, probe at the path's own pace, so that data
   * flows again at once rather than at the next backed-off probe. */
  c->rec.pto_count = 0;
}

bool
xport_conn_poll_event (struct xport_conn *c, struct xport_event *ev)
{
  memset (ev, 0, sizeof *ev);
  if (c->close_delivered)
    return false;
  while (c->evq_n > 0 && c->state != CONN_CLOSED)
    {
      size_t i = c->evq[c->evq_head];
      struct xport_stream *s = c->slots[i];
      if (s != NULL && !s->released)
        {
          ev->stream_id = s->id;
          if (s->ev_opened)
            {
              s->ev_opened = false;
              ev->type = XPORT_EVENT_STREAM_OPENED;
              return true;
            }
          if (s->ev_readable)
            {
              s->ev_readable = false;
              ev->type = XPORT_EVENT_READABLE;
              return true;
            }
          if (s->ev_writable)
            {
              s->ev_writable = false;
              ev->type = XPORT_EVENT_WRITABLE;
              return true;
            }
        }
      c->slot_queued[i] = false;
      c->evq_head = (c->evq_head + 1) % c->n_slots;
      c->evq_n--;
    }
  if (c->ev_datagram && c->state != CONN_CLOSED)
    {
      c->ev_datagram = false;
      ev->type = XPORT_EVENT_DATAGRAM;
      return true;
    }
  if (c->ev_closed)
    {
      c->ev_closed = false;
      c->close_delivered = true;
      ev->type = XPORT_EVENT_CLOSED;
      ev->code = c->close_code;
      ev->remote = c->close_remote;
      ev->reason = c->close_reason;
      return true;
    }
  return false;
}

void
xport_conn_close (struct xport_conn *c, uint64_t code, const char *reason)
{
  conn_close_local (c, code, reason, true);
}

bool
xport_conn_is_closed (const struct xport_conn *c)
{
  return c->state == CONN_CLOSED;
}

void
xport_conn_ping (struct xport_conn *c)
{
  c->ping_pending = true;
}

void
xport_conn_stats (const struct xport_conn *c, struct xport_stats *st)
{
  memset (st, 0, sizeof *st);
  st->srtt_us = c->rec.srtt;
  st->min_rtt_us = c->rec.min_rtt == UINT64_MAX ? 0 : c->rec.min_rtt;
  st->latest_rtt_us = c->rec.latest_rtt;
  st->rttvar_us = c->rec.rttvar;
  st->cwnd = c->rec.cc.cwnd;
  st->bytes_in_flight = c->rec.bytes_in_flight;
  st->pacing_rate = c->rec.cc.pacing_rate;
  st->packets_sent = c->rec.packets_sent;
  st->packets_lost = c->rec.packets_lost;
  st->bytes_sent = c->rec.bytes_sent;
  st->bytes_lost = c->rec.bytes_lost;
  st->packets_received = c->packets_received;
  st->packets_invalid = c->packets_invalid;
  st->stream_bytes_sent = c->stream_bytes_sent;
  st->stream_bytes_received = c->stream_bytes_received;
  st->packet_size = (uint32_t)c->pmtu.current;
  for (size_t i = 0; i < c->n_slots; i++)
    if (c->slots[i] != NULL)
      {
        st->memory += xport_stream_memory (c->slots[i]);
        st->streams++;
      }
}
