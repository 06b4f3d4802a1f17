/* Transport packet codec; see xport_wire.h and PROTOCOL.md section 6. */
#include "xport_wire.h"

#include <string.h>

size_t
xport_varint_len (uint64_t v)
{
  if (v < 64)
    return 1;
  if (v < 16384)
    return 2;
  if (v < (UINT64_C (1) << 30))
    return 4;
  return 8;
}

size_t
xport_varint_put (uint8_t *buf, size_t cap, uint64_t v)
{
  if (v > XPORT_VARINT_MAX)
    return 0;
  size_t n = xport_varint_len (v);
  if (n > cap)
    return 0;
  /* RFC 9000 section 16: the two top bits of the first byte give the length. */
  uint8_t prefix = n == 1 ? 0x00 : n == 2 ? 0x40 : n == 4 ? 0x80 : 0xc0;
  for (size_t i = 0; i < n; i++)
    buf[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  buf[0] |= prefix;
  return n;
}

bool
xport_varint_get (const uint8_t *buf, size_t len, size_t *off, uint64_t *v)
{
  if (*off >= len)
    return false;
  size_t n = (size_t)1 << (buf[*off] >> 6);
  if (len - *off < n)
    return false;
  uint64_t x = buf[*off] & 0x3f;
  for (size_t i = 1; i < n; i++)
    x = x << 8 | buf[*off + i];
  *off += n;
  *v = x;
  return true;
}

enum xport_wire_status
xport_packet_parse_header (const uint8_t *buf, size_t len, uint64_t *pn, size_t *off)
{
  *off = 0;
  if (buf == NULL || len < 3 || len > XPORT_MAX_PACKET || buf[0] != XPORT_VERSION)
    return XPORT_WIRE_INVALID;
  *off = 1;
  if (!xport_varint_get (buf, len, off, pn))
    return XPORT_WIRE_INVALID;
  /* A packet carries at least one frame. */
  if (*off >= len)
    return XPORT_WIRE_INVALID;
  return XPORT_WIRE_OK;
}

static bool
get (const uint8_t *buf, size_t len, size_t *off, uint64_t *v)
{
  return xport_varint_get (buf, len, off, v);
}

/* Reads a length and checks that many bytes follow. */
static bool
get_bytes (const uint8_t *buf, size_t len, size_t *off, size_t max, const uint8_t **data,
           size_t *n)
{
  uint64_t l;
  if (!get (buf, len, off, &l) || l > max || l > len - *off)
    return false;
  *n = (size_t)l;
  *data = l > 0 ? buf + *off : NULL;
  *off += (size_t)l;
  return true;
}

static enum xport_wire_status
parse_ack (const uint8_t *buf, size_t len, size_t *off, struct xport_frame *f)
{
  uint64_t largest, count, first;
  if (!get (buf, len, off, &largest) || !get (buf, len, off, &f->ack_delay_us)
      || !get (buf, len, off, &count) || !get (buf, len, off, &first))
    return XPORT_WIRE_INVALID;
  /* RFC 9000 section 19.3.1: a range below packet 0 is an error. */
  if (first > largest || count >= XPORT_MAX_ACK_RANGES)
    return XPORT_WIRE_INVALID;
  f->ranges[0].largest = largest;
  f->ranges[0].smallest = largest - first;
  f->n_ranges = 1;
  uint64_t smallest = largest - first;
  for (uint64_t i = 0; i < count; i++)
    {
      uint64_t gap, rlen;
      if (!get (buf, len, off, &gap) || !get (buf, len, off, &rlen))
        return XPORT_WIRE_INVALID;
      /* The next range's largest is smallest - gap - 2. */
      if (smallest < gap + 2 || smallest - gap - 2 < rlen)
        return XPORT_WIRE_INVALID;
      uint64_t l = smallest - gap - 2;
      f->ranges[f->n_ranges].largest = l;
      f->ranges[f->n_ranges].smallest = l - rlen;
      smallest = l - rlen;
      f->n_ranges++;
    }
  return XPORT_WIRE_OK;
}

enum xport_wire_status
xport_frame_parse (const uint8_t *buf, size_t len, size_t *off, struct xport_frame *f)
{
  uint64_t t, l;

  f->n_ranges = 0;
  f->data = NULL;
  f->len = 0;
  f->fin = false;
  if (*off >= len)
    return XPORT_WIRE_END;
  /* Frame types are varints in QUIC; ours all fit in one byte, and a longer
   * encoding of a type is refused (RFC 9000 section 12.4). */
  if (buf[*off] > 0x3f)
    return XPORT_WIRE_INVALID;
  t = buf[(*off)++];
  f->type = (uint8_t)t;
  switch (t)
    {
    case XPORT_FRAME_PADDING:
      while (*off < len && buf[*off] == 0)
        (*off)++;
      return XPORT_WIRE_OK;
    case XPORT_FRAME_PING:
      return XPORT_WIRE_OK;
    case XPORT_FRAME_ACK:
      return parse_ack (buf, len, off, f);
    case XPORT_FRAME_RESET_STREAM:
      if (!get (buf, len, off, &f->stream_id) || !get (buf, len, off, &f->code)
          || !get (buf, len, off, &f->value))
        return XPORT_WIRE_INVALID;
      return XPORT_WIRE_OK;
    case XPORT_FRAME_STOP_SENDING:
      if (!get (buf, len, off, &f->stream_id) || !get (buf, len, off, &f->code))
        return XPORT_WIRE_INVALID;
      return XPORT_WIRE_OK;
    case XPORT_FRAME_STREAM:
    case XPORT_FRAME_STREAM_FIN:
      f->fin = t == XPORT_FRAME_STREAM_FIN;
      if (!get (buf, len, off, &f->stream_id) || !get (buf, len, off, &f->offset)
          || !get_bytes (buf, len, off, XPORT_MAX_PACKET, &f->data, &f->len))
        return XPORT_WIRE_INVALID;
      /* RFC 9000 section 19.8: offset + length stays below 2^62. */
      if (f->offset > XPORT_VARINT_MAX - f->len)
        return XPORT_WIRE_INVALID;
      return XPORT_WIRE_OK;
    case XPORT_FRAME_MAX_DATA:
    case XPORT_FRAME_MAX_STREAMS:
      if (!get (buf, len, off, &f->value))
        return XPORT_WIRE_INVALID;
      return XPORT_WIRE_OK;
    case XPORT_FRAME_MAX_STREAM_DATA:
      if (!get (buf, len, off, &f->stream_id) || !get (buf, len, off, &f->value))
        return XPORT_WIRE_INVALID;
      return XPORT_WIRE_OK;
    case XPORT_FRAME_CLOSE:
      if (!get (buf, len, off, &f->code)
          || !get_bytes (buf, len, off, XPORT_MAX_REASON, &f->data, &f->len))
        return XPORT_WIRE_INVALID;
      for (size_t i = 0; i < f->len; i++)
        if (f->data[i] < 0x20 || f->data[i] > 0x7e)
          return XPORT_WIRE_INVALID;
      return XPORT_WIRE_OK;
    case XPORT_FRAME_DATAGRAM:
      if (!get_bytes (buf, len, off, XPORT_MAX_PACKET, &f->data, &f->len))
        return XPORT_WIRE_INVALID;
      (void)l;
      return XPORT_WIRE_OK;
    default:
      return XPORT_WIRE_INVALID;
    }
}

static bool
put (uint8_t *buf, size_t cap, size_t *off, uint64_t v)
{
  size_t n = xport_varint_put (buf + *off, cap - *off, v);
  *off += n;
  return n > 0;
}

bool
xport_packet_put_header (uint8_t *buf, size_t cap, size_t *off, uint64_t pn)
{
  size_t o = *off;
  if (o >= cap)
    return false;
  buf[o++] = XPORT_VERSION;
  if (!put (buf, cap, &o, pn))
    return false;
  *off = o;
  return true;
}

bool
xport_frame_put_simple (uint8_t *buf, size_t cap, size_t *off, uint8_t type)
{
  if (*off >= cap)
    return false;
  buf[(*off)++] = type;
  return true;
}

bool
xport_frame_put_ack (uint8_t *buf, size_t cap, size_t *off, uint64_t ack_delay_us,
                     const struct xport_ack_range *r, size_t n)
{
  size_t o = *off;
  if (n == 0 || o >= cap)
    return false;
  buf[o++] = XPORT_FRAME_ACK;
  if (!put (buf, cap, &o, r[0].largest) || !put (buf, cap, &o, ack_delay_us)
      || !put (buf, cap, &o, n - 1) || !put (buf, cap, &o, r[0].largest - r[0].smallest))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!put (buf, cap, &o, r[i - 1].smallest - r[i].largest - 2)
        || !put (buf, cap, &o, r[i].largest - r[i].smallest))
      return false;
  *off = o;
  return true;
}

bool
xport_frame_put_stream_header (uint8_t *buf, size_t cap, size_t *off, uint64_t id,
                               uint64_t offset, size_t len, bool fin)
{
  size_t o = *off;
  if (o >= cap)
    return false;
  buf[o++] = fin ? XPORT_FRAME_STREAM_FIN : XPORT_FRAME_STREAM;
  if (!put (buf, cap, &o, id) || !put (buf, cap, &o, offset) || !put (buf, cap, &o, len)
      || cap - o < len)
    return false;
  *off = o;
  return true;
}

size_t
xport_frame_stream_room (size_t cap, size_t off, uint64_t id, uint64_t offset)
{
  size_t hdr = 1 + xport_varint_len (id) + xport_varint_len (offset);
  if (off + hdr + 1 >= cap)
    return 0;
  size_t room = cap - off - hdr;
  /* The length field takes 2 bytes for any length up to a packet. */
  return room > 2 ? room - 2 : 0;
}

bool
xport_frame_put_u1 (uint8_t *buf, size_t cap, size_t *off, uint8_t type, uint64_t a)
{
  size_t o = *off;
  if (o >= cap)
    return false;
  buf[o++] = type;
  if (!put (buf, cap, &o, a))
    return false;
  *off = o;
  return true;
}

bool
xport_frame_put_u2 (uint8_t *buf, size_t cap, size_t *off, uint8_t type, uint64_t a,
                    uint64_t b)
{
  size_t o = *off;
  if (!xport_frame_put_u1 (buf, cap, &o, type, a) || !put (buf, cap, &o, b))
    return false;
  *off = o;
  return true;
}

bool
xport_frame_put_u3 (uint8_t *buf, size_t cap, size_t *off, uint8_t type, uint64_t a,
                    uint64_t b, uint64_t c)
{
  size_t o = *off;
  if (!xport_frame_put_u2 (buf, cap, &o, type, a, b) || !put (buf, cap, &o, c))
    return false;
  *off = o;
  return true;
}

bool
xport_frame_put_close (uint8_t *buf, size_t cap, size_t *off, uint64_t code,
                       const char *reason)
{
  size_t n = reason != NULL ? strnlen (reason, XPORT_MAX_REASON) : 0;
  size_t o = *off;
  if (!xport_frame_put_u2 (buf, cap, &o, XPORT_FRAME_CLOSE, code, n) || cap - o < n)
    return false;
  for (size_t i = 0; i < n; i++)
    {
      unsigned char c = (unsigned char)reason[i];
      buf[o + i] = c >= 0x20 && c <= 0x7e ? c : '?';
    }
  *off = o + n;
  return true;
}

bool
xport_frame_put_datagram (uint8_t *buf, size_t cap, size_t *off, const uint8_t *data,
                          size_t len)
{
  size_t o = *off;
  if (!xport_frame_put_u1 (buf, cap, &o, XPORT_FRAME_DATAGRAM, len) || cap - o < len)
    return false;
  if (len > 0)
    memcpy (buf + o, data, len);
  *off = o + len;
  return true;
}
