/* Packet assembly of the tunnel transport: ACKs, control frames,
 * datagrams, stream data round robin; congestion window and pacing. See
 * xport_conn.h. */
#include "xport_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- sending ---- */

static bool
has_control (const struct xport_conn *c)
{
  if (c->max_data_pending || c->max_streams_pending || c->ping_pending || c->dg_out.n > 0)
    return true;
  for (size_t i = 0; i < c->slots_hi; i++)
    {
      const struct xport_stream *s = c->slots[i];
      if (s != NULL && (s->r_max_pending || s->s_reset_pending || s->r_stop_pending))
        return true;
    }
  return false;
}

bool
xport_conn_wants_data (const struct xport_conn *c)
{
  if (has_control (c))
    return true;
  uint64_t credit = c->tx_max_data - c->tx_data;
  for (size_t i = 0; i < c->slots_hi; i++)
    if (c->slots[i] != NULL && xport_stream_wants_send (c->slots[i], credit))
      return true;
  return false;
}

static bool
add_ref (struct xport_sent *p, uint8_t type, uint64_t id, uint64_t off, size_t len,
         bool fin)
{
  if (p->n_refs == XPORT_PACKET_REFS)
    return false;
  struct xport_ref *r = &p->refs[p->n_refs++];
  r->type = type;
  r->stream_id = id;
  r->offset = off;
  r->len = (uint16_t)len;
  r->fin = fin;
  return true;
}

static size_t
put_ack (struct xport_conn *c, uint8_t *buf, size_t cap, size_t off)
{
  struct xport_ack_range r[XPORT_ACK_RANGES_SENT];
  size_t n = 0;
  for (size_t i = c->rx_pns.n; i-- > 0 && n < XPORT_ACK_RANGES_SENT;)
    {
      r[n].largest = c->rx_pns.r[i].end - 1;
      r[n].smallest = c->rx_pns.r[i].start;
      n++;
    }
  uint64_t delay = c->now - c->largest_rx_time;
  /* Fewer ranges if the packet is short of room. */
  while (n > 0 && !xport_frame_put_ack (buf, cap, &off, delay, r, n))
    n = n > 1 ? n / 2 : 0;
  if (n > 0)
    {
      c->ack_pending = false;
      c->ack_needed = false;
      c->ack_immediate = false;
      c->ack_eliciting_unacked = 0;
    }
  return off;
}

/* Control frames; returns the new offset. */
static size_t
put_control (struct xport_conn *c, struct xport_sent *p, uint8_t *buf, size_t cap,
             size_t off)
{
  if (c->max_data_pending
      && xport_frame_put_u1 (buf, cap, &off, XPORT_FRAME_MAX_DATA, c->rx_max_data))
    {
      c->max_data_pending = false;
      p->flags |= XPORT_SENT_MAX_DATA;
    }
  if (c->max_streams_pending
      && xport_frame_put_u1 (buf, cap, &off, XPORT_FRAME_MAX_STREAMS,
                             c->local_max_streams))
    {
      c->max_streams_pending = false;
      p->flags |= XPORT_SENT_MAX_STREAMS;
    }
  if (c->ping_pending && xport_frame_put_simple (buf, cap, &off, XPORT_FRAME_PING))
    {
      c->ping_pending = false;
      p->flags |= XPORT_SENT_PING;
    }
  for (size_t i = 0; i < c->slots_hi && p->n_refs < XPORT_PACKET_REFS; i++)
    {
      struct xport_stream *s = c->slots[i];
      if (s == NULL)
        continue;
      if (s->r_max_pending && p->n_refs < XPORT_PACKET_REFS
          && xport_frame_put_u2 (buf, cap, &off, XPORT_FRAME_MAX_STREAM_DATA, s->id,
                                 s->r_max_sent))
        {
          s->r_max_pending = false;
          add_ref (p, XPORT_REF_MAX_STREAM_DATA, s->id, 0, 0, false);
        }
      if (s->s_reset_pending && p->n_refs < XPORT_PACKET_REFS
          && xport_frame_put_u3 (buf, cap, &off, XPORT_FRAME_RESET_STREAM, s->id,
                                 s->s_reset_code, s->s_next))
        {
          s->s_reset_pending = false;
          add_ref (p, XPORT_REF_RESET, s->id, 0, 0, false);
        }
      if (s->r_stop_pending && p->n_refs < XPORT_PACKET_REFS
          && xport_frame_put_u2 (buf, cap, &off, XPORT_FRAME_STOP_SENDING, s->id,
                                 s->r_stop_code))
        {
          s->r_stop_pending = false;
          add_ref (p, XPORT_REF_STOP_SENDING, s->id, 0, 0, false);
        }
    }
  return off;
}

/* Datagrams go first, before an ACK could take the room a full-size one
 * needs (xport_datagram_max()). One queued when packets were larger than
 * they are now (the path changed) no longer fits any packet: dropped, as
 * the network would. */
static size_t
put_datagrams (struct xport_conn *c, uint8_t *buf, size_t cap, size_t off)
{
  while (c->dg_out.n > 0)
    {
      struct dgram *d = &c->dg_out.q[c->dg_out.head];
      if (d->len <= xport_datagram_max (c)
          && !xport_frame_put_datagram (buf, cap, &off, d->data, d->len))
        break;
      c->dg_out.head = (c->dg_out.head + 1) % c->dg_out.cap;
      c->dg_out.n--;
    }
  return off;
}

/* Stream data, round robin over the streams. */
static size_t
put_streams (struct xport_conn *c, struct xport_sent *p, uint8_t *buf, size_t cap,
             size_t off)
{
  size_t tried = 0;
  if (c->slots_hi == 0)
    return off;
  c->rr %= c->slots_hi;
  while (tried < c->slots_hi && p->n_refs < XPORT_PACKET_REFS)
    {
      struct xport_stream *s = c->slots[c->rr];
      uint64_t credit = c->tx_max_data - c->tx_data;
      uint64_t so;
      size_t len;
      bool fin, is_new;
      size_t room = s != NULL ? xport_frame_stream_room (cap, off, s->id, s->s_next) : 0;
      if (s == NULL || room == 0
          || !xport_stream_next_chunk (s, credit, room, &so, &len, &fin, &is_new))
        {
          c->rr = (c->rr + 1) % c->slots_hi;
          tried++;
          continue;
        }
      /* The header with the chunk's real offset may be longer. */
      size_t real_room = xport_frame_stream_room (cap, off, s->id, so);
      if (len > real_room)
        {
          len = real_room;
          fin = fin && so + len == s->s_end;
          if (len == 0 && !fin)
            break;
        }
      if (!xport_frame_put_stream_header (buf, cap, &off, s->id, so, len, fin))
        break;
      xport_stream_copy_out (s, so, buf + off, len);
      off += len;
      xport_stream_chunk_sent (s, so, len, fin, is_new);
      if (is_new)
        c->tx_data += len;
      c->stream_bytes_sent += len;
      add_ref (p, XPORT_REF_STREAM, s->id, so, len, fin);
      /* Stay on this stream while it fills the packet; move on once the
       * packet is full so the next packet starts with the next stream. */
      if (cap - off < XPORT_MIN_CHUNK)
        {
          c->rr = (c->rr + 1) % c->slots_hi;
          break;
        }
    }
  return off;
}

size_t
xport_conn_pmtu_probe (const struct xport_conn *c, uint64_t now)
{
  /* Only once the peer is heard from and while ACKs flow: a probe lost to a
   * peer not yet listening or to a dead path says nothing about its size. */
  if (c->state != CONN_OPEN || !c->have_rx || c->rec.pto_count > 0)
    return 0;
  return xport_pmtu_probe_due (&c->pmtu, now);
}

/* A PMTU probe: PING, padded to @size (an ACK may ride along). */
static size_t
put_pmtu_probe (struct xport_conn *c, struct xport_sent *p, uint8_t *buf, size_t size,
                size_t off)
{
  if (c->ack_needed)
    off = put_ack (c, buf, size, off);
  xport_frame_put_simple (buf, size, &off, XPORT_FRAME_PING);
  memset (buf + off, XPORT_FRAME_PADDING, size - off);
  p->flags |= XPORT_SENT_PMTU_PROBE;
  xport_pmtu_probe_sent (&c->pmtu, p->pn, size);
  return size;
}

size_t
xport_conn_send (struct xport_conn *c, uint64_t now, uint8_t *buf, size_t cap)
{
  size_t off = 0;
  if (now > c->now)
    c->now = now;
  size_t probe = c->probes == 0 ? xport_conn_pmtu_probe (c, now) : 0;
  if (probe > cap)
    probe = 0;
  if (cap > xport_conn_packet_size (c))
    cap = xport_conn_packet_size (c);
  if (cap < 64 || !xport_recovery_has_room (&c->rec, 0))
    return 0;

  if (c->state == CONN_CLOSED)
    {
      if (!c->close_pending)
        return 0;
      c->close_pending = false;
      struct xport_sent *p = xport_recovery_next (&c->rec);
      xport_packet_put_header (buf, cap, &off, p->pn);
      xport_frame_put_close (buf, cap, &off, c->close_code, c->close_reason);
      xport_recovery_on_sent (&c->rec, p, now, off, false);
      return off;
    }

  bool ack_due = c->ack_needed && (c->ack_immediate || now >= c->ack_deadline);
  bool cc_ok = xport_conn_window_open (c);
  bool pace_ok = c->probes > 0 || now >= c->next_send_time;
  bool want = c->probes > 0 || xport_conn_wants_data (c);
  if (!want && cc_ok)
    xport_recovery_set_app_limited (&c->rec);
  bool data = (want || probe > 0) && cc_ok && pace_ok;
  if (!data && !ack_due)
    return 0;

  struct xport_sent *p = xport_recovery_next (&c->rec);
  xport_packet_put_header (buf, cap, &off, p->pn);
  size_t hdr = off;
  size_t dg = off, before = off;
  if (data && probe > 0)
    off = put_pmtu_probe (c, p, buf, probe, off);
  else
    {
      dg = data ? put_datagrams (c, buf, cap, off) : off;
      off = dg;
      /* An ACK goes along only when something ack-eliciting arrived: the
       * numbers of ACK-only packets ride with the next one that is due. */
      if (c->ack_needed)
        off = put_ack (c, buf, cap, off);
      before = off;
    }
  if (data && probe == 0)
    {
      off = put_control (c, p, buf, cap, off);
      off = put_streams (c, p, buf, cap, off);
      if (off == before && c->probes > 0)
        xport_frame_put_simple (buf, cap, &off, XPORT_FRAME_PING);
      if (c->probes > 0)
        c->probes--;
    }
  bool eliciting = off > before || dg > hdr;
  if (off == hdr)
    return 0; /* nothing after all; the packet number is not used */
  xport_recovery_on_sent (&c->rec, p, now, off, eliciting);
  if (eliciting)
    {
      c->last_tx_time = now;
      /* Pacing: the next packet may leave after this one's time at the
       * pacing rate; at most XPORT_PACING_BURST_US of idle time is caught
       * up at once. */
      uint64_t rate = c->rec.cc.pacing_rate > 0 ? c->rec.cc.pacing_rate : 1;
      if (c->next_send_time + XPORT_PACING_BURST_US < now)
        c->next_send_time = now - XPORT_PACING_BURST_US;
      c->next_send_time += (uint64_t)off * 1000000 / rate;
    }
  return off;
}

bool
xport_conn_window_open (const struct xport_conn *c)
{
  /* The sent-packet ring bounds what is in flight as the window does. */
  if (!xport_recovery_has_room (&c->rec, XPORT_RING_RESERVE))
    return false;
  return c->probes > 0
         || c->rec.bytes_in_flight + xport_conn_packet_size (c) <= c->rec.cc.cwnd;
}
