/* Unit tests of the relay's stream framing (relay/stream.c): STUN messages
 * and ChannelData back to back on a TCP or TLS connection. */
#include <string.h>

#include <glib.h>

#include "stream.h"

/* Stream framing (RFC 8656 section 12.5, RFC 8489 section 6.2.2). */
static void
test_stream_framing (void)
{
  size_t ml, fl;
  const uint8_t stun[]
      = { 0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xa4, 0x42, 1,    2,    3,    4,
          5,    6,    7,    8,    9,    10,   11,   12,   0x80, 0x22, 0x00, 0x00 };
  for (size_t i = 0; i < sizeof stun; i++)
    g_assert_cmpint (relay_frame_check (stun, i, &ml, &fl), ==, RELAY_FRAME_INCOMPLETE);
  g_assert_cmpint (relay_frame_check (stun, sizeof stun, &ml, &fl), ==, RELAY_FRAME_OK);
  g_assert_cmpuint (ml, ==, 24);
  g_assert_cmpuint (fl, ==, 24);

  /* ChannelData of 5 bytes takes 12 on the stream (padding); 8 is whole. */
  const uint8_t cd[] = { 0x40, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0, 0, 0 };
  g_assert_cmpint (relay_frame_check (cd, 9, &ml, &fl), ==, RELAY_FRAME_INCOMPLETE);
  g_assert_cmpint (relay_frame_check (cd, 12, &ml, &fl), ==, RELAY_FRAME_OK);
  g_assert_cmpuint (ml, ==, 9);
  g_assert_cmpuint (fl, ==, 12);
  const uint8_t cd4[] = { 0x40, 0x01, 0x00, 0x04, 'a', 'b', 'c', 'd' };
  g_assert_cmpint (relay_frame_check (cd4, 8, &ml, &fl), ==, RELAY_FRAME_OK);
  g_assert_cmpuint (fl, ==, 8);

  /* Garbled: another first-bits pattern (TLS handshake 0x16 is STUN-like
   * 0b00 but has no cookie), a STUN length not a multiple of 4. */
  const uint8_t tls[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01 };
  g_assert_cmpint (relay_frame_check (tls, sizeof tls, &ml, &fl), ==,
                   RELAY_FRAME_INVALID);
  const uint8_t high[] = { 0x80, 0 };
  g_assert_cmpint (relay_frame_check (high, 1, &ml, &fl), ==, RELAY_FRAME_INVALID);
  const uint8_t odd[] = { 0x00, 0x01, 0x00, 0x05, 0x21, 0x12, 0xa4, 0x42 };
  g_assert_cmpint (relay_frame_check (odd, sizeof odd, &ml, &fl), ==,
                   RELAY_FRAME_INVALID);
  /* Oversized: decided from the header alone. */
  const uint8_t big[] = { 0x7f, 0xff, 0xff, 0xff };
  g_assert_cmpint (relay_frame_check (big, sizeof big, &ml, &fl), ==,
                   RELAY_FRAME_TOO_BIG);
  g_assert_cmpuint (fl, ==, 0x10000 + 4);
  const uint8_t bigstun[] = { 0x00, 0x03, 0xff, 0xfc, 0x21, 0x12, 0xa4, 0x42 };
  g_assert_cmpint (relay_frame_check (bigstun, sizeof bigstun, &ml, &fl), ==,
                   RELAY_FRAME_TOO_BIG);

  /* The buffer: messages back to back, fed in odd pieces, come out whole. */
  g_autofree struct relay_stream *st = g_new (struct relay_stream, 1);
  relay_stream_init (st);
  uint8_t wire[3 * sizeof stun + 3 * sizeof cd];
  size_t wl = 0;
  for (int i = 0; i < 3; i++)
    {
      memcpy (wire + wl, stun, sizeof stun);
      wl += sizeof stun;
      memcpy (wire + wl, cd, sizeof cd);
      wl += sizeof cd;
    }
  size_t fed = 0, n_stun = 0, n_cd = 0;
  while (fed < wl)
    {
      size_t avail;
      uint8_t *space = relay_stream_space (st, &avail);
      size_t n = MIN (MIN (avail, (size_t)7), wl - fed);
      memcpy (space, wire + fed, n);
      relay_stream_commit (st, n);
      fed += n;
      const uint8_t *msg;
      size_t len;
      enum relay_frame_status r;
      while ((r = relay_stream_next (st, &msg, &len)) == RELAY_FRAME_OK)
        {
          if (len == sizeof stun)
            {
              g_assert_cmpmem (msg, len, stun, sizeof stun);
              n_stun++;
            }
          else
            {
              g_assert_cmpmem (msg, len, cd, 9);
              n_cd++;
            }
        }
      g_assert_cmpint (r, ==, RELAY_FRAME_INCOMPLETE);
    }
  g_assert_cmpuint (n_stun, ==, 3);
  g_assert_cmpuint (n_cd, ==, 3);

  /* A whole largest frame always fits; a larger one is refused, not buffered. */
  relay_stream_init (st);
  size_t avail;
  uint8_t *space = relay_stream_space (st, &avail);
  g_assert_cmpuint (avail, ==, RELAY_STREAM_MAX_FRAME);
  memset (space, 0, RELAY_STREAM_MAX_FRAME);
  space[0] = 0x40, space[2] = (RELAY_STREAM_MAX_FRAME - 4) >> 8,
  space[3] = (RELAY_STREAM_MAX_FRAME - 4) & 0xff;
  relay_stream_commit (st, RELAY_STREAM_MAX_FRAME);
  const uint8_t *msg;
  size_t len;
  g_assert_cmpint (relay_stream_next (st, &msg, &len), ==, RELAY_FRAME_OK);
  g_assert_cmpuint (len, ==, RELAY_STREAM_MAX_FRAME);
  space = relay_stream_space (st, &avail);
  space[0] = 0x40, space[2] = (RELAY_STREAM_MAX_FRAME - 3) >> 8,
  space[3] = (RELAY_STREAM_MAX_FRAME - 3) & 0xff;
  relay_stream_commit (st, 4);
  g_assert_cmpint (relay_stream_next (st, &msg, &len), ==, RELAY_FRAME_TOO_BIG);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/relay/stream-framing", test_stream_framing);
  return g_test_run ();
}
