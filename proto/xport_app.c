/* The application's side of the tunnel transport: stream and datagram
 * calls of xport.h. See xport_conn.h. */
#include "xport_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- streams ---- */

static struct xport_stream *
user_stream (const struct xport_conn *c, uint64_t id)
{
  struct xport_stream *s = xport_conn_stream_find (c, id, NULL);
  return s != NULL && !s->released ? s : NULL;
}

int
xport_stream_open (struct xport_conn *c, uint64_t *id)
{
  if (c->state == CONN_CLOSED)
    return XPORT_ERR_CLOSED;
  if (c->next_local_index >= c->remote_max_streams
      || c->n_local_live >= c->cfg.max_streams)
    return XPORT_ERR_STREAM_LIMIT;
  uint64_t nid = c->next_local_index << 1 | (c->cfg.is_client ? 1u : 0u);
  struct xport_stream *s = xport_conn_stream_create (c, nid, true);
  if (s == NULL)
    return XPORT_ERR_NOMEM;
  c->next_local_index++;
  *id = nid;
  return XPORT_OK;
}

ssize_t
xport_stream_write (struct xport_conn *c, uint64_t id, const uint8_t *buf, size_t len)
{
  if (c->state == CONN_CLOSED)
    return XPORT_ERR_CLOSED;
  struct xport_stream *s = user_stream (c, id);
  if (s == NULL)
    return XPORT_ERR_NO_STREAM;
  if (s->s_stopped || s->s_reset)
    return XPORT_ERR_RESET;
  if (s->s_fin)
    return XPORT_ERR_STATE;
  if (len == 0)
    return 0;
  ssize_t n = xport_stream_buffer_write (s, buf, len);
  return n < 0 ? XPORT_ERR_NOMEM : n;
}

size_t
xport_stream_writable (const struct xport_conn *c, uint64_t id)
{
  struct xport_stream *s = user_stream (c, id);
  return s != NULL && !s->s_stopped ? xport_stream_buffer_room (s) : 0;
}

int
xport_stream_shutdown (struct xport_conn *c, uint64_t id)
{
  struct xport_stream *s = user_stream (c, id);
  if (s == NULL)
    return XPORT_ERR_NO_STREAM;
  if (s->s_reset)
    return XPORT_ERR_RESET;
  s->s_fin = true;
  return XPORT_OK;
}

ssize_t
xport_stream_read (struct xport_conn *c, uint64_t id, uint8_t *buf, size_t len, bool *fin,
                   uint64_t *code)
{
  if (fin != NULL)
    *fin = false;
  struct xport_stream *s = user_stream (c, id);
  if (s == NULL)
    return XPORT_ERR_NO_STREAM;
  if (s->r_reset)
    {
      if (code != NULL)
        *code = s->r_reset_code;
      return XPORT_ERR_RESET;
    }
  if (s->r_stop)
    return XPORT_ERR_STATE;
  size_t n = xport_stream_read_bytes (s, buf, len);
  if (n > 0)
    {
      c->rx_consumed += n;
      if (xport_stream_update_window (s, c->now, c->rec.srtt))
        s->r_max_pending = true;
      /* The connection's window stays at least twice the largest stream
       * window in use, so that one fast stream never waits for it and a
       * stalled one leaves room for the others. */
      if (c->rx_window < 2 * s->r_window && c->rx_window < c->cfg.conn_window_max)
        {
          c->rx_window = 2 * s->r_window < c->cfg.conn_window_max
                             ? 2 * s->r_window
                             : c->cfg.conn_window_max;
          c->rx_max_data = c->rx_consumed + c->rx_window;
          c->max_data_pending = true;
        }
      xport_conn_update_window (c);
    }
  if (xport_stream_at_end (s))
    {
      if (fin != NULL)
        *fin = true;
      s->r_fin_read = true;
    }
  if (n == 0 && !xport_stream_at_end (s))
    return c->state == CONN_CLOSED ? XPORT_ERR_CLOSED : XPORT_ERR_AGAIN;
  return (ssize_t)n;
}

int
xport_stream_reset (struct xport_conn *c, uint64_t id, uint64_t code)
{
  struct xport_stream *s = user_stream (c, id);
  if (s == NULL)
    return XPORT_ERR_NO_STREAM;
  if (!s->s_reset && !xport_stream_send_done (s))
    {
      s->s_reset = true;
      s->s_reset_pending = true;
      s->s_reset_code = code;
    }
  return XPORT_OK;
}

int
xport_stream_stop (struct xport_conn *c, uint64_t id, uint64_t code)
{
  struct xport_stream *s = user_stream (c, id);
  if (s == NULL)
    return XPORT_ERR_NO_STREAM;
  if (!s->r_stop && !xport_stream_recv_done (s))
    {
      s->r_stop = true;
      s->r_stop_pending = true;
      s->r_stop_code = code;
      /* Bytes buffered but unread return their connection credit now;
       * xport_stream_maybe_free() accounts for the rest at the end. */
      if (s->r_highest > s->r_read)
        {
          c->rx_consumed += s->r_highest - s->r_read;
          s->r_read = s->r_highest;
          xport_conn_update_window (c);
        }
    }
  return XPORT_OK;
}

void
xport_stream_release (struct xport_conn *c, uint64_t id)
{
  struct xport_stream *s = user_stream (c, id);
  if (s == NULL)
    return;
  if (!s->s_fin)
    xport_stream_reset (c, id, 0);
  xport_stream_stop (c, id, 0);
  s->released = true;
  xport_conn_stream_maybe_free (c, s);
}

/* ---- datagrams ---- */

size_t
xport_datagram_max (const struct xport_conn *c)
{
  /* Header (version and an 8-byte packet number), frame type and length. It
   * grows when path MTU discovery raises the packet size, and shrinks back
   * when the path changes. */
  size_t room = xport_conn_packet_size (c) - 1 - 8 - 1 - 2;
  return room < XPORT_MAX_DATAGRAM ? room : XPORT_MAX_DATAGRAM;
}

int
xport_datagram_send (struct xport_conn *c, const uint8_t *buf, size_t len)
{
  if (c->state == CONN_CLOSED)
    return XPORT_ERR_CLOSED;
  if (len > xport_datagram_max (c))
    return XPORT_ERR_TOO_BIG;
  if (c->dg_out.n == c->dg_out.cap)
    return XPORT_ERR_AGAIN;
  struct dgram *d = &c->dg_out.q[(c->dg_out.head + c->dg_out.n) % c->dg_out.cap];
  d->len = (uint16_t)len;
  if (len > 0)
    memcpy (d->data, buf, len);
  c->dg_out.n++;
  return XPORT_OK;
}

ssize_t
xport_datagram_recv (struct xport_conn *c, uint8_t *buf, size_t cap)
{
  if (c->dg_in.n == 0)
    return c->state == CONN_CLOSED ? XPORT_ERR_CLOSED : XPORT_ERR_AGAIN;
  struct dgram *d = &c->dg_in.q[c->dg_in.head];
  c->dg_in.head = (c->dg_in.head + 1) % c->dg_in.cap;
  c->dg_in.n--;
  size_t n = d->len < cap ? d->len : cap;
  if (n > 0)
    memcpy (buf, d->data, n);
  return (ssize_t)n;
}
