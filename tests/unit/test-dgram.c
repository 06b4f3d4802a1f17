/* Unit tests of proto/dgram.c: the flow prefix of UDP-forward datagrams. */
#include <glib.h>
#include <string.h>

#include "dgram.h"

static void
test_round_trip (void)
{
  const uint64_t flows[] = { 0, 7, 63, 64, 300, 16383, 16384, (1ull << 30) - 1, 1ull << 30,
                             (1ull << 62) - 1 };
  uint8_t buf[DGRAM_HEADER_MAX + 3];

  for (gsize i = 0; i < G_N_ELEMENTS (flows); i++)
    {
      size_t n = dgram_put_header (buf, sizeof buf, flows[i]);
      uint64_t flow;
      const uint8_t *payload;
      size_t len;

      g_assert_cmpuint (n, >=, 1);
      g_assert_cmpuint (n, <=, DGRAM_HEADER_MAX);
      memcpy (buf + n, "abc", 3);
      g_assert_true (dgram_parse (buf, n + 3, &flow, &payload, &len));
      g_assert_cmpuint (flow, ==, flows[i]);
      g_assert_cmpuint (len, ==, 3);
      g_assert_true (payload == buf + n);
      g_assert_cmpmem (payload, len, "abc", 3);
    }
}

static void
test_vectors (void)
{
  /* PROTOCOL.md section 3: flow 7 "hi", flow 300 (2-byte varint) empty. */
  const uint8_t a[] = { 0x07, 'h', 'i' };
  const uint8_t b[] = { 0x41, 0x2c };
  uint8_t buf[DGRAM_HEADER_MAX];
  uint64_t flow;
  const uint8_t *payload;
  size_t len;

  g_assert_true (dgram_parse (a, sizeof a, &flow, &payload, &len));
  g_assert_cmpuint (flow, ==, 7);
  g_assert_cmpmem (payload, len, "hi", 2);
  g_assert_true (dgram_parse (b, sizeof b, &flow, &payload, &len));
  g_assert_cmpuint (flow, ==, 300);
  g_assert_cmpuint (len, ==, 0);
  g_assert_cmpuint (dgram_put_header (buf, sizeof buf, 300), ==, 2);
  g_assert_cmpmem (buf, 2, b, 2);
}

static void
test_malformed (void)
{
  const uint8_t truncated[] = { 0x80, 0x00, 0x01 }; /* a 4-byte varint in 3 */
  uint8_t small[1];
  uint64_t flow;
  const uint8_t *payload;
  size_t len;

  g_assert_false (dgram_parse (truncated, sizeof truncated, &flow, &payload, &len));
  g_assert_false (dgram_parse (truncated, 0, &flow, &payload, &len));
  g_assert_cmpuint (dgram_put_header (small, sizeof small, 300), ==, 0);
  g_assert_cmpuint (dgram_put_header (small, sizeof small, 1ull << 62), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dgram/round-trip", test_round_trip);
  g_test_add_func ("/dgram/vectors", test_vectors);
  g_test_add_func ("/dgram/malformed", test_malformed);
  return g_test_run ();
}
