/* Stream framing of TURN over TCP and TLS; see stream.h. */
#include "stream.h"

#include <string.h>

#include "stun.h"

enum relay_frame_status
relay_frame_check (const uint8_t *buf, size_t len, size_t *msg_len, size_t *frame_len)
{
  *msg_len = 0;
  *frame_len = 0;
  if (len < 1)
    return RELAY_FRAME_INCOMPLETE;
  /* RFC 7983 / RFC 8656 section 12: 0b00 is STUN, 0b01 ChannelData. */
  switch (buf[0] & 0xC0)
    {
    case 0x00:
      {
        if (len < 8)
          return RELAY_FRAME_INCOMPLETE;
        uint32_t cookie = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16
                          | (uint32_t)buf[6] << 8 | buf[7];
        size_t body = (size_t)buf[2] << 8 | buf[3];
        /* RFC 8489 section 5: the length is a multiple of 4 and the magic
         * cookie is there; anything else has lost the framing. */
        if (cookie != STUN_MAGIC_COOKIE || body % 4 != 0)
          return RELAY_FRAME_INVALID;
        size_t n = STUN_HEADER_LEN + body;
        *frame_len = n;
        if (n > RELAY_STREAM_MAX_FRAME)
          return RELAY_FRAME_TOO_BIG;
        if (len < n)
          return RELAY_FRAME_INCOMPLETE;
        *msg_len = n;
        return RELAY_FRAME_OK;
      }
    case 0x40:
      {
        if (len < RELAY_STREAM_CHANNEL_HEADER_LEN)
          return RELAY_FRAME_INCOMPLETE;
        size_t data = (size_t)buf[2] << 8 | buf[3];
        size_t n = RELAY_STREAM_CHANNEL_HEADER_LEN + data;
        size_t padded = (n + 3) & ~(size_t)3;
        *frame_len = padded;
        if (padded > RELAY_STREAM_MAX_FRAME)
          return RELAY_FRAME_TOO_BIG;
        if (len < padded)
          return RELAY_FRAME_INCOMPLETE;
        *msg_len = n;
        return RELAY_FRAME_OK;
      }
    default:
      return RELAY_FRAME_INVALID;
    }
}

void
relay_stream_init (struct relay_stream *st)
{
  st->start = 0;
  st->end = 0;
}

uint8_t *
relay_stream_space (struct relay_stream *st, size_t *avail)
{
  if (st->start > 0)
    {
      memmove (st->buf, st->buf + st->start, st->end - st->start);
      st->end -= st->start;
      st->start = 0;
    }
  *avail = sizeof st->buf - st->end;
  return st->buf + st->end;
}

void
relay_stream_commit (struct relay_stream *st, size_t n)
{
  if (n > sizeof st->buf - st->end)
    n = sizeof st->buf - st->end; /* a caller's bug; never past the buffer */
  st->end += n;
}

enum relay_frame_status
relay_stream_next (struct relay_stream *st, const uint8_t **msg, size_t *msg_len)
{
  size_t frame_len;
  enum relay_frame_status r
      = relay_frame_check (st->buf + st->start, st->end - st->start, msg_len, &frame_len);
  if (r != RELAY_FRAME_OK)
    {
      *msg = NULL;
      if (r != RELAY_FRAME_INCOMPLETE)
        *msg_len = frame_len;
      return r;
    }
  *msg = st->buf + st->start;
  st->start += frame_len;
  if (st->start == st->end)
    st->start = st->end = 0;
  return RELAY_FRAME_OK;
}
