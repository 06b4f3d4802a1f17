/* Stream buffers and per-stream flow control; see xport_stream.h. */
#include <sys/types.h>

#include "xport_stream.h"

#include <stdlib.h>
#include <string.h>

static size_t
pow2_at_least (uint64_t v)
{
  size_t p = 4096;
  while (p < v)
    p *= 2;
  return p;
}

/* Copies @n bytes at stream offset @from between rings of different sizes. */
static void
ring_move (uint8_t *dst, size_t dcap, const uint8_t *src, size_t scap, uint64_t from,
           size_t n)
{
  while (n > 0)
    {
      size_t so = (size_t)(from & (scap - 1)), d = (size_t)(from & (dcap - 1));
      size_t k = n;
      if (k > scap - so)
        k = scap - so;
      if (k > dcap - d)
        k = dcap - d;
      memcpy (dst + d, src + so, k);
      from += k;
      n -= k;
    }
}

static void
ring_put (uint8_t *ring, size_t cap, uint64_t off, const uint8_t *src, size_t n)
{
  while (n > 0)
    {
      size_t o = (size_t)(off & (cap - 1));
      size_t k = n < cap - o ? n : cap - o;
      memcpy (ring + o, src, k);
      off += k;
      src += k;
      n -= k;
    }
}

static void
ring_get (const uint8_t *ring, size_t cap, uint64_t off, uint8_t *dst, size_t n)
{
  while (n > 0)
    {
      size_t o = (size_t)(off & (cap - 1));
      size_t k = n < cap - o ? n : cap - o;
      memcpy (dst, ring + o, k);
      off += k;
      dst += k;
      n -= k;
    }
}

/* Regrows @ring to @newcap keeping the bytes at [from, from + n). */
static bool
ring_grow (uint8_t **ring, size_t *cap, size_t newcap, uint64_t from, size_t n)
{
  uint8_t *b = malloc (newcap);
  if (b == NULL)
    return false;
  if (*ring != NULL && n > 0)
    ring_move (b, newcap, *ring, *cap, from, n);
  free (*ring);
  *ring = b;
  *cap = newcap;
  return true;
}

struct xport_stream *
xport_stream_new (uint64_t id, bool local, uint64_t send_credit, uint64_t recv_window,
                  uint64_t recv_window_max, size_t send_buffer_max)
{
  struct xport_stream *s = calloc (1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->id = id;
  s->local = local;
  s->scap_max = pow2_at_least (send_buffer_max);
  s->s_max = send_credit;
  xport_ranges_init (&s->s_acked, s->s_acked_r, XPORT_STREAM_ACKED_RANGES);
  xport_ranges_init (&s->s_lost, s->s_lost_r, XPORT_STREAM_LOST_RANGES);
  xport_ranges_init (&s->r_recv, s->r_recv_r, XPORT_STREAM_RECV_RANGES);
  s->r_final = UINT64_MAX;
  s->r_window = recv_window;
  s->r_window_max = recv_window_max;
  s->r_max_sent = recv_window;
  return s;
}

void
xport_stream_free (struct xport_stream *s)
{
  if (s == NULL)
    return;
  free (s->sbuf);
  free (s->rbuf);
  free (s);
}

size_t
xport_stream_memory (const struct xport_stream *s)
{
  return sizeof *s + s->scap + s->rcap;
}

/* ---- sending ---- */

size_t
xport_stream_buffer_room (const struct xport_stream *s)
{
  if (s->s_fin || s->s_reset)
    return 0;
  size_t used = (size_t)(s->s_end - s->s_base);
  size_t cap = s->scap != 0 ? s->scap : XPORT_SEND_BUFFER_INITIAL;
  return used < cap ? cap - used : 0;
}

ssize_t
xport_stream_buffer_write (struct xport_stream *s, const uint8_t *buf, size_t len)
{
  size_t used = (size_t)(s->s_end - s->s_base);
  if (s->sbuf == NULL)
    {
      size_t c = XPORT_SEND_BUFFER_INITIAL < s->scap_max ? XPORT_SEND_BUFFER_INITIAL
                                                         : s->scap_max;
      if (!ring_grow (&s->sbuf, &s->scap, c, 0, 0))
        return -1;
    }
  /* Grow when the buffer limits what is in flight: full, and most of it
   * already sent. Unsent bytes waiting for the peer's credit never grow it. */
  if (len > s->scap - used && s->scap < s->scap_max
      && s->s_end - s->s_next <= s->scap / 4)
    {
      if (!ring_grow (&s->sbuf, &s->scap, s->scap * 2, s->s_base, used))
        return -1;
    }
  size_t n = s->scap - used;
  if (n > len)
    n = len;
  ring_put (s->sbuf, s->scap, s->s_end, buf, n);
  s->s_end += n;
  s->s_blocked = n < len;
  return (ssize_t)n;
}

/* The first lost range, trimmed to what is neither acked nor freed. */
static bool
next_lost (struct xport_stream *s, uint64_t *start, uint64_t *end)
{
  while (s->s_lost.n > 0)
    {
      struct xport_range r = s->s_lost.r[0];
      uint64_t a = r.start > s->s_base ? r.start : s->s_base;
      for (size_t i = 0; i < s->s_acked.n && a < r.end; i++)
        {
          const struct xport_range *k = &s->s_acked.r[i];
          if (k->end <= a)
            continue;
          if (k->start <= a)
            {
              a = k->end;
              continue;
            }
          break;
        }
      if (a >= r.end)
        {
          xport_ranges_remove (&s->s_lost, r.start, r.end);
          continue;
        }
      uint64_t e = r.end;
      for (size_t i = 0; i < s->s_acked.n; i++)
        if (s->s_acked.r[i].start > a)
          {
            if (s->s_acked.r[i].start < e)
              e = s->s_acked.r[i].start;
            break;
          }
      if (a > r.start)
        xport_ranges_remove (&s->s_lost, r.start, a);
      *start = a;
      *end = e;
      return true;
    }
  return false;
}

bool
xport_stream_wants_send (const struct xport_stream *s, uint64_t conn_credit)
{
  if (s->s_reset)
    return false;
  if (s->s_lost.n > 0 || s->s_fin_lost)
    return true;
  if (s->s_next < s->s_end && s->s_next < s->s_max && conn_credit > 0)
    return true;
  return s->s_fin && !s->s_fin_sent && s->s_next == s->s_end;
}

bool
xport_stream_next_chunk (struct xport_stream *s, uint64_t conn_credit, size_t room,
                         uint64_t *off, size_t *len, bool *fin, bool *is_new)
{
  uint64_t a, e;
  if (s->s_reset || room == 0)
    return false;
  if (next_lost (s, &a, &e))
    {
      size_t n = e - a < room ? (size_t)(e - a) : room;
      *off = a;
      *len = n;
      *fin = s->s_fin && a + n == s->s_end;
      *is_new = false;
      return true;
    }
  uint64_t n = s->s_end - s->s_next;
  if (n > s->s_max - s->s_next || s->s_next > s->s_max)
    n = s->s_next > s->s_max ? 0 : s->s_max - s->s_next;
  if (n > conn_credit)
    n = conn_credit;
  if (n > room)
    n = room;
  bool f = s->s_fin && s->s_next + n == s->s_end;
  if (n == 0 && !(f && (!s->s_fin_sent || s->s_fin_lost)))
    return false;
  *off = s->s_next;
  *len = (size_t)n;
  *fin = f;
  *is_new = true;
  return true;
}

void
xport_stream_chunk_sent (struct xport_stream *s, uint64_t off, size_t len, bool fin,
                         bool is_new)
{
  if (is_new)
    s->s_next = off + len;
  else
    xport_ranges_remove (&s->s_lost, off, off + len);
  if (fin)
    {
      s->s_fin_sent = true;
      s->s_fin_lost = false;
    }
}

void
xport_stream_copy_out (const struct xport_stream *s, uint64_t off, uint8_t *dst,
                       size_t len)
{
  ring_get (s->sbuf, s->scap, off, dst, len);
}

void
xport_stream_on_acked (struct xport_stream *s, uint64_t off, size_t len, bool fin)
{
  if (s->s_reset)
    return;
  if (fin)
    {
      s->s_fin_acked = true;
      s->s_fin_lost = false;
    }
  uint64_t end = off + len;
  if (end <= s->s_base || len == 0)
    return;
  if (off < s->s_base)
    off = s->s_base;
  /* A full set forgets nothing silently: what it cannot hold is sent again. */
  if (!xport_ranges_add (&s->s_acked, off, end))
    {
      xport_ranges_add_merge (&s->s_lost, off, end);
      return;
    }
  if (s->s_acked.r[0].start <= s->s_base)
    {
      s->s_base = s->s_acked.r[0].end;
      xport_ranges_trim_below (&s->s_acked, s->s_base);
      xport_ranges_trim_below (&s->s_lost, s->s_base);
    }
}

void
xport_stream_on_lost (struct xport_stream *s, uint64_t off, size_t len, bool fin)
{
  if (s->s_reset)
    return;
  if (fin && !s->s_fin_acked)
    s->s_fin_lost = true;
  uint64_t end = off + len;
  if (end <= s->s_base)
    return;
  if (off < s->s_base)
    off = s->s_base;
  xport_ranges_add_merge (&s->s_lost, off, end);
}

bool
xport_stream_send_done (const struct xport_stream *s)
{
  if (s->s_reset)
    return s->s_reset_acked;
  return s->s_fin && s->s_fin_acked && s->s_base == s->s_end;
}

/* ---- receiving ---- */

static enum xport_stream_rx
check_final (struct xport_stream *s, uint64_t end, bool fin, uint64_t *new_bytes)
{
  *new_bytes = 0;
  /* RFC 9000 section 4.5: the final size never changes, and no data lies
   * beyond it. */
  if (end > s->r_max_sent)
    return XPORT_STREAM_RX_FLOW_CONTROL;
  if (s->r_final != UINT64_MAX && (end > s->r_final || (fin && end != s->r_final)))
    return XPORT_STREAM_RX_FINAL_SIZE;
  if (fin && end < s->r_highest)
    return XPORT_STREAM_RX_FINAL_SIZE;
  if (fin)
    s->r_final = end;
  if (end > s->r_highest)
    {
      *new_bytes = end - s->r_highest;
      s->r_highest = end;
    }
  return XPORT_STREAM_RX_OK;
}

enum xport_stream_rx
xport_stream_on_data (struct xport_stream *s, uint64_t off, const uint8_t *data,
                      size_t len, bool fin, uint64_t *new_bytes)
{
  uint64_t end = off + len;
  enum xport_stream_rx st = check_final (s, end, fin, new_bytes);
  if (st != XPORT_STREAM_RX_OK)
    return st;
  if (s->r_reset || s->r_stop || end <= s->r_read || len == 0)
    return XPORT_STREAM_RX_OK;
  if (off < s->r_read)
    {
      data += s->r_read - off;
      off = s->r_read;
    }
  if (s->r_recv.n > 0 && s->r_recv.r[0].start <= off && s->r_recv.r[0].end >= end)
    return XPORT_STREAM_RX_OK; /* a duplicate */
  /* The ring covers what arrived, not the whole window: memory follows the
   * data (which connection credit bounds), not the credit given to each of
   * many streams. It doubles as data extends, so it is rarely regrown. */
  if (s->rcap < end - s->r_read)
    {
      size_t held = s->r_highest > s->r_read ? (size_t)(s->r_highest - s->r_read) : 0;
      if (!ring_grow (&s->rbuf, &s->rcap, pow2_at_least (end - s->r_read), s->r_read,
                      held < s->rcap ? held : s->rcap))
        return XPORT_STREAM_RX_NO_ROOM;
    }
  if (!xport_ranges_add (&s->r_recv, off, end))
    return XPORT_STREAM_RX_NO_ROOM;
  ring_put (s->rbuf, s->rcap, off, data, (size_t)(end - off));
  return XPORT_STREAM_RX_OK;
}

enum xport_stream_rx
xport_stream_on_reset (struct xport_stream *s, uint64_t final, uint64_t code,
                       uint64_t *new_bytes)
{
  enum xport_stream_rx st = check_final (s, final, true, new_bytes);
  if (st != XPORT_STREAM_RX_OK)
    return st;
  if (!s->r_reset)
    {
      s->r_reset = true;
      s->r_reset_code = code;
    }
  return XPORT_STREAM_RX_OK;
}

size_t
xport_stream_readable (const struct xport_stream *s)
{
  if (s->r_reset || s->r_stop || s->r_recv.n == 0 || s->r_recv.r[0].start > s->r_read)
    return 0;
  return (size_t)(s->r_recv.r[0].end - s->r_read);
}

size_t
xport_stream_read_bytes (struct xport_stream *s, uint8_t *buf, size_t len)
{
  size_t n = xport_stream_readable (s);
  if (n > len)
    n = len;
  if (n == 0)
    return 0;
  ring_get (s->rbuf, s->rcap, s->r_read, buf, n);
  s->r_read += n;
  xport_ranges_trim_below (&s->r_recv, s->r_read);
  return n;
}

bool
xport_stream_at_end (const struct xport_stream *s)
{
  return s->r_final != UINT64_MAX && s->r_read == s->r_final;
}

bool
xport_stream_recv_done (const struct xport_stream *s)
{
  if (s->r_final == UINT64_MAX)
    return false;
  return s->r_reset || s->r_stop || s->r_read == s->r_final;
}

bool
xport_stream_update_window (struct xport_stream *s, uint64_t now, uint64_t srtt)
{
  if (s->r_final != UINT64_MAX || s->r_stop || s->r_reset)
    return false;
  if (s->r_max_sent - s->r_read >= s->r_window / 2)
    return false;
  /* Autotuning: double the window when it, not the reader, limits the
   * stream: the reader drained half of it within two RTTs, or much of it
   * waits behind holes that loss left (the sender runs into the limit while
   * retransmissions are under way). A reader that stops never gets here. */
  bool fast = now - s->r_window_time < 2 * srtt;
  bool behind_holes = s->r_highest - s->r_read > s->r_window / 4;
  if ((fast || behind_holes) && s->r_window < s->r_window_max)
    {
      s->r_window *= 2;
      if (s->r_window > s->r_window_max)
        s->r_window = s->r_window_max;
    }
  s->r_window_time = now;
  s->r_max_sent = s->r_read + s->r_window;
  return true;
}
