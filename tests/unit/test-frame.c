/* Unit tests for proto/frame.c. */
#include <string.h>

#include <glib.h>

#include "frame.h"

static void
test_parse_valid (void)
{
  const uint8_t seg[] = { 1, FRAME_SEGMENT, 0x01, 0x02, 0x03, 0x04, 'h', 'i' };
  struct frame f;

  g_assert_cmpint (frame_parse (seg, sizeof seg, &f), ==, FRAME_OK);
  g_assert_cmpuint (f.type, ==, FRAME_SEGMENT);
  g_assert_cmpuint (f.stream_id, ==, 0x01020304);
  g_assert_cmpuint (f.payload_len, ==, 2);
  g_assert_true (f.payload == seg + FRAME_HEADER_LEN);

  /* An empty datagram on the largest stream id. */
  const uint8_t dgram[] = { 1, FRAME_DATAGRAM, 0xff, 0xff, 0xff, 0xff };
  g_assert_cmpint (frame_parse (dgram, sizeof dgram, &f), ==, FRAME_OK);
  g_assert_cmpuint (f.type, ==, FRAME_DATAGRAM);
  g_assert_cmpuint (f.stream_id, ==, 0xffffffffu);
  g_assert_cmpuint (f.payload_len, ==, 0);
  g_assert_null (f.payload);
}

static void
test_parse_truncated (void)
{
  const uint8_t seg[] = { 1, FRAME_SEGMENT, 0, 0, 0, 7, 'x' };
  struct frame f;

  for (size_t len = 0; len < FRAME_HEADER_LEN; len++)
    {
      g_assert_cmpint (frame_parse (seg, len, &f), ==, FRAME_INCOMPLETE);
      g_assert_cmpuint (f.payload_len, ==, 0);
      g_assert_null (f.payload);
    }
  g_assert_cmpint (frame_parse (NULL, 10, &f), ==, FRAME_INCOMPLETE);
  g_assert_cmpint (frame_parse (seg, sizeof seg, NULL), ==, FRAME_INCOMPLETE);
}

static void
test_parse_invalid (void)
{
  uint8_t buf[FRAME_MAX_LEN + 1];
  struct frame f;

  memset (buf, 0, sizeof buf);
  buf[0] = FRAME_VERSION;
  buf[1] = FRAME_SEGMENT;
  g_assert_cmpint (frame_parse (buf, FRAME_MAX_LEN, &f), ==, FRAME_OK);
  g_assert_cmpuint (f.payload_len, ==, FRAME_MAX_PAYLOAD);
  g_assert_cmpint (frame_parse (buf, FRAME_MAX_LEN + 1, &f), ==, FRAME_INVALID);
  g_assert_cmpuint (f.payload_len, ==, 0);

  /* Versions and types other than ours. */
  const uint8_t versions[] = { 0, 2, 20, 128, 255 };
  for (gsize i = 0; i < G_N_ELEMENTS (versions); i++)
    {
      buf[0] = versions[i];
      g_assert_cmpint (frame_parse (buf, 10, &f), ==, FRAME_INVALID);
    }
  buf[0] = FRAME_VERSION;
  const uint8_t types[] = { 0, 3, 0x7f, 0xff };
  for (gsize i = 0; i < G_N_ELEMENTS (types); i++)
    {
      buf[1] = types[i];
      g_assert_cmpint (frame_parse (buf, 10, &f), ==, FRAME_INVALID);
    }
}

static void
test_parse_garbage (void)
{
  /* Every byte string parses to one of the three results without reading
   * beyond @len; a fixed seed keeps the test repeatable. */
  GRand *rand = g_rand_new_with_seed (4711);
  uint8_t buf[64];
  struct frame f;

  for (int i = 0; i < 10000; i++)
    {
      size_t len = (size_t)g_rand_int_range (rand, 0, sizeof buf + 1);
      for (size_t j = 0; j < len; j++)
        buf[j] = (uint8_t)g_rand_int_range (rand, 0, 4);
      uint8_t *copy = g_memdup2 (buf, len);
      enum frame_status st = frame_parse (copy, len, &f);
      if (st == FRAME_OK)
        {
          g_assert_cmpuint (f.payload_len + FRAME_HEADER_LEN, ==, len);
          g_assert_cmpuint (copy[0], ==, FRAME_VERSION);
        }
      else
        g_assert_true (st == FRAME_INCOMPLETE || st == FRAME_INVALID);
      g_free (copy);
    }
  g_rand_free (rand);
}

static void
test_build (void)
{
  uint8_t buf[FRAME_MAX_LEN + 16];
  uint8_t payload[FRAME_MAX_PAYLOAD + 1];
  const uint8_t expect[] = { 1, FRAME_DATAGRAM, 0xde, 0xad, 0xbe, 0xef, 'o', 'k' };

  memset (payload, 0xa5, sizeof payload);
  g_assert_cmpuint (
      frame_build (buf, sizeof buf, FRAME_DATAGRAM, 0xdeadbeef, (const uint8_t *)"ok", 2),
      ==, sizeof expect);
  g_assert_cmpmem (buf, sizeof expect, expect, sizeof expect);

  /* Header only. */
  g_assert_cmpuint (frame_build (buf, FRAME_HEADER_LEN, FRAME_SEGMENT, 0, NULL, 0), ==,
                    FRAME_HEADER_LEN);

  /* Capacity: exactly enough, one byte short. */
  g_assert_cmpuint (frame_build (buf, 8, FRAME_SEGMENT, 1, payload, 2), ==, 8);
  g_assert_cmpuint (frame_build (buf, 7, FRAME_SEGMENT, 1, payload, 2), ==, 0);
  g_assert_cmpuint (frame_build (buf, 0, FRAME_SEGMENT, 1, NULL, 0), ==, 0);
  g_assert_cmpuint (frame_build (NULL, 100, FRAME_SEGMENT, 1, NULL, 0), ==, 0);

  /* FRAME_MAX_LEN is the limit even when the buffer is larger. */
  g_assert_cmpuint (
      frame_build (buf, sizeof buf, FRAME_SEGMENT, 1, payload, FRAME_MAX_PAYLOAD), ==,
      FRAME_MAX_LEN);
  g_assert_cmpuint (
      frame_build (buf, sizeof buf, FRAME_SEGMENT, 1, payload, FRAME_MAX_PAYLOAD + 1), ==,
      0);
  g_assert_cmpuint (frame_build (buf, sizeof buf, FRAME_SEGMENT, 1, NULL, 1), ==, 0);
  g_assert_cmpuint (frame_build (buf, sizeof buf, FRAME_SEGMENT, 1, payload, SIZE_MAX),
                    ==, 0);

  /* Unknown types. */
  g_assert_cmpuint (frame_build (buf, sizeof buf, 0, 1, NULL, 0), ==, 0);
  g_assert_cmpuint (frame_build (buf, sizeof buf, 3, 1, NULL, 0), ==, 0);
}

static void
test_build_in_place (void)
{
  uint8_t buf[32];
  memset (buf, 0, sizeof buf);
  memcpy (buf + FRAME_HEADER_LEN, "payload", 7);
  g_assert_cmpuint (
      frame_build (buf, sizeof buf, FRAME_SEGMENT, 9, buf + FRAME_HEADER_LEN, 7), ==, 13);
  struct frame f;
  g_assert_cmpint (frame_parse (buf, 13, &f), ==, FRAME_OK);
  g_assert_cmpmem (f.payload, f.payload_len, "payload", 7);
}

static void
test_round_trip (void)
{
  uint8_t payload[FRAME_MAX_PAYLOAD];
  uint8_t buf[FRAME_MAX_LEN];
  const size_t lens[] = { 0, 1, 100, 1157, FRAME_MAX_PAYLOAD };
  const uint32_t ids[] = { 0, 1, 2, 0x7fffffff, 0xffffffff };

  for (size_t i = 0; i < sizeof payload; i++)
    payload[i] = (uint8_t)(i * 7);
  for (gsize i = 0; i < G_N_ELEMENTS (lens); i++)
    for (gsize j = 0; j < G_N_ELEMENTS (ids); j++)
      for (uint8_t type = FRAME_SEGMENT; type <= FRAME_DATAGRAM; type++)
        {
          struct frame f;
          size_t n = frame_build (buf, sizeof buf, type, ids[j], payload, lens[i]);
          g_assert_cmpuint (n, ==, FRAME_HEADER_LEN + lens[i]);
          g_assert_cmpint (frame_parse (buf, n, &f), ==, FRAME_OK);
          g_assert_cmpuint (f.type, ==, type);
          g_assert_cmpuint (f.stream_id, ==, ids[j]);
          g_assert_cmpmem (f.payload, f.payload_len, lens[i] ? payload : NULL, lens[i]);
        }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/frame/parse/valid", test_parse_valid);
  g_test_add_func ("/frame/parse/truncated", test_parse_truncated);
  g_test_add_func ("/frame/parse/invalid", test_parse_invalid);
  g_test_add_func ("/frame/parse/garbage", test_parse_garbage);
  g_test_add_func ("/frame/build", test_build);
  g_test_add_func ("/frame/build-in-place", test_build_in_place);
  g_test_add_func ("/frame/round-trip", test_round_trip);
  return g_test_run ();
}
