/* Unit tests for proto/ctlmsg.c. Byte strings are written out by hand from
 * proto/PROTOCOL.md, so that the tests check the format, not only symmetry. */
#include <string.h>

#include <glib.h>

#include "ctlmsg.h"

typedef struct
{
  const char *name;
  const uint8_t *bytes;
  size_t len;
} Vector;

#define V(n, ...)                                                                        \
  {                                                                                      \
    n, (const uint8_t[]){ __VA_ARGS__ }, sizeof ((const uint8_t[]){ __VA_ARGS__ })       \
  }

static const Vector valid[] = {
  V ("hello", 1, 0, 1, 1),
  V ("open", 2, 0, 8, 0, 0, 0, 5, 3, 'w', 'e', 'b'),
  V ("accept", 3, 0, 4, 0, 0, 0, 5),
  V ("refuse", 4, 0, 9, 0, 0, 0, 5, 1, 3, 'n', 'o', '!'),
  V ("refuse-no-text", 4, 0, 6, 0, 0, 0, 6, 3, 0),
  V ("close", 5, 0, 4, 0xff, 0xff, 0xff, 0xff),
  V ("ping", 6, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8),
  V ("pong", 7, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0),
  V ("bye", 8, 0, 5, 0, 3, 'b', 'y', 'e'),
  V ("bye-no-text", 8, 0, 2, 9, 0),
  V ("fin", 9, 0, 12, 0, 0, 0, 7, 0, 0, 0, 0, 0, 1, 0, 2),
  V ("open-dgram", 10, 0, 8, 0, 0, 0, 7, 3, 'r', 't', 'p'),
  V ("open-media", 11, 0, 10, 0, 0, 0, 9, 5, 'm', 'u', 's', 'i', 'c'),
  V ("refuse-wrong-kind", 4, 0, 8, 0, 0, 0, 7, 6, 2, 'n', 'o'),
};

static const Vector invalid[] = {
  V ("type-0", 0, 0, 0),
  V ("type-12", 12, 0, 0),
  V ("open-media-stream-0", 11, 0, 8, 0, 0, 0, 0, 3, 'r', 't', 'p'),
  V ("open-dgram-empty-name", 10, 0, 5, 0, 0, 0, 7, 0),
  V ("open-dgram-stream-0", 10, 0, 8, 0, 0, 0, 0, 3, 'r', 't', 'p'),
  V ("fin-short", 9, 0, 11, 0, 0, 0, 7, 0, 0, 0, 0, 0, 1, 0),
  V ("fin-stream-0", 9, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2),
  V ("type-255", 255, 0, 0),
  V ("too-long", 6, 0x02, 0x01),
  V ("too-long-max", 2, 0xff, 0xff),
  V ("hello-empty", 1, 0, 0),
  V ("hello-version-0", 1, 0, 1, 0),
  V ("hello-current-version-trailing", 1, 0, 2, CTLMSG_VERSION, 0),
  V ("open-empty-name", 2, 0, 5, 0, 0, 0, 5, 0),
  V ("open-name-short", 2, 0, 8, 0, 0, 0, 5, 2, 'w', 'e', 'b'),
  V ("open-name-long", 2, 0, 8, 0, 0, 0, 5, 4, 'w', 'e', 'b'),
  V ("open-name-char", 2, 0, 8, 0, 0, 0, 5, 3, 'w', '/', 'b'),
  V ("open-name-nul", 2, 0, 8, 0, 0, 0, 5, 3, 'w', 0, 'b'),
  V ("open-stream-0", 2, 0, 8, 0, 0, 0, 0, 3, 'w', 'e', 'b'),
  V ("open-short", 2, 0, 4, 0, 0, 0, 5),
  V ("accept-short", 3, 0, 3, 0, 0, 5),
  V ("accept-trailing", 3, 0, 5, 0, 0, 0, 5, 0),
  V ("accept-stream-0", 3, 0, 4, 0, 0, 0, 0),
  V ("close-stream-0", 5, 0, 4, 0, 0, 0, 0),
  V ("refuse-stream-0", 4, 0, 6, 0, 0, 0, 0, 1, 0),
  V ("refuse-text-ctl", 4, 0, 7, 0, 0, 0, 5, 1, 1, '\n'),
  V ("refuse-text-high", 4, 0, 7, 0, 0, 0, 5, 1, 1, 0x80),
  V ("refuse-text-del", 4, 0, 7, 0, 0, 0, 5, 1, 1, 0x7f),
  V ("refuse-text-len", 4, 0, 7, 0, 0, 0, 5, 1, 2, 'a'),
  V ("refuse-short", 4, 0, 5, 0, 0, 0, 5, 1),
  V ("ping-short", 6, 0, 7, 1, 2, 3, 4, 5, 6, 7),
  V ("pong-trailing", 7, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9),
  V ("bye-short", 8, 0, 1, 0),
  V ("bye-text-len", 8, 0, 3, 0, 2, 'a'),
  V ("bye-text-nul", 8, 0, 3, 0, 1, 0),
};

static void
test_parse_valid (void)
{
  struct ctlmsg m;
  size_t consumed;

  for (gsize i = 0; i < G_N_ELEMENTS (valid); i++)
    {
      g_test_message ("%s", valid[i].name);
      g_assert_cmpint (ctlmsg_parse (valid[i].bytes, valid[i].len, &m, &consumed), ==,
                       CTLMSG_OK);
      g_assert_cmpuint (consumed, ==, valid[i].len);
    }

  g_assert_cmpint (ctlmsg_parse (valid[1].bytes, valid[1].len, &m, &consumed), ==,
                   CTLMSG_OK);
  g_assert_cmpuint (m.type, ==, CTLMSG_OPEN);
  g_assert_cmpuint (m.stream_id, ==, 5);
  g_assert_cmpstr (m.name, ==, "web");

  g_assert_cmpint (ctlmsg_parse (valid[3].bytes, valid[3].len, &m, &consumed), ==,
                   CTLMSG_OK);
  g_assert_cmpuint (m.type, ==, CTLMSG_REFUSE);
  g_assert_cmpuint (m.code, ==, CTLMSG_REFUSE_NOT_EXPOSED);
  g_assert_cmpstr (m.text, ==, "no!");

  g_assert_cmpint (ctlmsg_parse (valid[6].bytes, valid[6].len, &m, &consumed), ==,
                   CTLMSG_OK);
  g_assert_cmpuint (m.token, ==, G_GUINT64_CONSTANT (0x0102030405060708));

  g_assert_cmpint (ctlmsg_parse (valid[5].bytes, valid[5].len, &m, &consumed), ==,
                   CTLMSG_OK);
  g_assert_cmpuint (m.stream_id, ==, 0xffffffffu);

  g_assert_cmpint (ctlmsg_parse (valid[0].bytes, valid[0].len, &m, &consumed), ==,
                   CTLMSG_OK);
  g_assert_cmpuint (m.version, ==, 1); /* the vector's */
}

static void
test_parse_hello_other_version (void)
{
  /* A later version may extend HELLO; we still learn its version. */
  const uint8_t v2[] = { 1, 0, 3, 3, 0xaa, 0xbb, 8 };
  struct ctlmsg m;
  size_t consumed;
  g_assert_cmpint (ctlmsg_parse (v2, sizeof v2, &m, &consumed), ==, CTLMSG_OK);
  g_assert_cmpuint (consumed, ==, 6);
  g_assert_cmpuint (m.version, ==, 3);
}

static void
test_parse_invalid (void)
{
  struct ctlmsg m;
  size_t consumed;

  for (gsize i = 0; i < G_N_ELEMENTS (invalid); i++)
    {
      g_test_message ("%s", invalid[i].name);
      consumed = 99;
      g_assert_cmpint (ctlmsg_parse (invalid[i].bytes, invalid[i].len, &m, &consumed), ==,
                       CTLMSG_INVALID);
      g_assert_cmpuint (consumed, ==, 0);
    }
  g_assert_cmpint (ctlmsg_parse (valid[0].bytes, valid[0].len, NULL, &consumed), ==,
                   CTLMSG_INVALID);
  g_assert_cmpint (ctlmsg_parse (valid[0].bytes, valid[0].len, &m, NULL), ==,
                   CTLMSG_INVALID);
}

static void
test_parse_truncated (void)
{
  struct ctlmsg m;
  size_t consumed;

  for (gsize i = 0; i < G_N_ELEMENTS (valid); i++)
    for (size_t len = 0; len < valid[i].len; len++)
      {
        g_assert_cmpint (ctlmsg_parse (valid[i].bytes, len, &m, &consumed), ==,
                         CTLMSG_INCOMPLETE);
        g_assert_cmpuint (consumed, ==, 0);
      }
  g_assert_cmpint (ctlmsg_parse (NULL, 0, &m, &consumed), ==, CTLMSG_INCOMPLETE);

  /* An unknown type or an over-long length is refused before the body. */
  const uint8_t bad_type[] = { 42 };
  g_assert_cmpint (ctlmsg_parse (bad_type, 1, &m, &consumed), ==, CTLMSG_INVALID);
  const uint8_t too_long[] = { 2, 0x02, 0x01 };
  g_assert_cmpint (ctlmsg_parse (too_long, 3, &m, &consumed), ==, CTLMSG_INVALID);
}

static void
test_parse_stream (void)
{
  /* Several messages back to back, as they arrive on the control stream. */
  uint8_t buf[256];
  size_t len = 0;
  for (gsize i = 0; i < G_N_ELEMENTS (valid); i++)
    {
      memcpy (buf + len, valid[i].bytes, valid[i].len);
      len += valid[i].len;
    }
  size_t off = 0;
  for (gsize i = 0; i < G_N_ELEMENTS (valid); i++)
    {
      struct ctlmsg m;
      size_t consumed;
      g_assert_cmpint (ctlmsg_parse (buf + off, len - off, &m, &consumed), ==, CTLMSG_OK);
      g_assert_cmpuint (m.type, ==, valid[i].bytes[0]);
      off += consumed;
    }
  g_assert_cmpuint (off, ==, len);
}

static void
test_parse_garbage (void)
{
  GRand *rand = g_rand_new_with_seed (1234);
  uint8_t buf[64];

  for (int i = 0; i < 20000; i++)
    {
      size_t len = (size_t)g_rand_int_range (rand, 0, sizeof buf + 1);
      for (size_t j = 0; j < len; j++)
        buf[j] = (uint8_t)g_rand_int_range (rand, 0, 12);
      if (len >= 2)
        buf[1] = 0;
      uint8_t *copy = g_memdup2 (buf, len);
      struct ctlmsg m;
      size_t consumed;
      enum ctlmsg_status st = ctlmsg_parse (copy, len, &m, &consumed);
      if (st == CTLMSG_OK)
        g_assert_cmpuint (consumed, <=, len);
      else
        g_assert_cmpuint (consumed, ==, 0);
      g_free (copy);
    }
  g_rand_free (rand);
}

static void
test_build_vectors (void)
{
  uint8_t buf[CTLMSG_MAX_LEN];

  for (gsize i = 0; i < G_N_ELEMENTS (valid); i++)
    {
      struct ctlmsg m;
      size_t consumed;
      g_assert_cmpint (ctlmsg_parse (valid[i].bytes, valid[i].len, &m, &consumed), ==,
                       CTLMSG_OK);
      size_t n = ctlmsg_build (buf, sizeof buf, &m);
      g_assert_cmpmem (buf, n, valid[i].bytes, valid[i].len);

      /* Capacity: exactly enough works, one short is refused. */
      uint8_t *exact = g_malloc (n);
      g_assert_cmpuint (ctlmsg_build (exact, n, &m), ==, n);
      g_assert_cmpuint (ctlmsg_build (exact, n - 1, &m), ==, 0);
      g_assert_cmpuint (ctlmsg_build (exact, 0, &m), ==, 0);
      g_free (exact);
    }
}

static void
test_build_refuses (void)
{
  uint8_t buf[CTLMSG_MAX_LEN];
  struct ctlmsg m;

  memset (&m, 0, sizeof m);
  g_assert_cmpuint (ctlmsg_build (NULL, sizeof buf, &m), ==, 0);
  g_assert_cmpuint (ctlmsg_build (buf, sizeof buf, NULL), ==, 0);

  memset (&m, 0, sizeof m);
  g_assert_cmpuint (ctlmsg_build (buf, sizeof buf, &m), ==, 0); /* type 0 */
  m.type = 11;
  g_assert_cmpuint (ctlmsg_build (buf, sizeof buf, &m), ==, 0);

  memset (&m, 0, sizeof m);
  m.type = CTLMSG_HELLO; /* version 0 */
  g_assert_cmpuint (ctlmsg_build (buf, sizeof buf, &m), ==, 0);

  memset (&m, 0, sizeof m);
  m.type = CTLMSG_OPEN;
  m.stream_id = 3;
  g_assert_cmpuint (ctlmsg_build (buf, sizeof buf, &m), ==, 0); /* empty name */
  strcpy (m.name, "a b");
  g_assert_cmpuint (ctlmsg_build (buf, sizeof buf, &m), ==, 0);
  memset (m.name, 'a', sizeof m.name); /* no NUL */
  g_assert_cmpuint (ctlmsg_build (buf, sizeof buf, &m), ==, 0);
  memset (m.name, 0, sizeof m.name);
  memset (m.name, 'a', CTLMSG_NAME_MAX);
  g_assert_cmpuint (ctlmsg_build (buf, sizeof buf, &m), ==,
                    CTLMSG_HEADER_LEN + 5 + CTLMSG_NAME_MAX);
  m.stream_id = 0;
  g_assert_cmpuint (ctlmsg_build (buf, sizeof buf, &m), ==, 0);

  const uint8_t types[] = { CTLMSG_ACCEPT, CTLMSG_CLOSE, CTLMSG_REFUSE };
  for (gsize i = 0; i < G_N_ELEMENTS (types); i++)
    {
      memset (&m, 0, sizeof m);
      m.type = types[i];
      g_assert_cmpuint (ctlmsg_build (buf, sizeof buf, &m), ==, 0); /* stream 0 */
    }

  memset (&m, 0, sizeof m);
  m.type = CTLMSG_BYE;
  strcpy (m.text, "tab\there");
  g_assert_cmpuint (ctlmsg_build (buf, sizeof buf, &m), ==, 0);
  memset (m.text, 'x', sizeof m.text); /* no NUL */
  g_assert_cmpuint (ctlmsg_build (buf, sizeof buf, &m), ==, 0);
  memset (m.text, 0, sizeof m.text);
  memset (m.text, '~', CTLMSG_TEXT_MAX);
  size_t n = ctlmsg_build (buf, sizeof buf, &m);
  g_assert_cmpuint (n, ==, CTLMSG_HEADER_LEN + 2 + CTLMSG_TEXT_MAX);
  g_assert_cmpuint (ctlmsg_build (buf, n - 1, &m), ==, 0);
}

static void
test_round_trip (void)
{
  uint8_t buf[CTLMSG_MAX_LEN];
  struct ctlmsg in, out;
  size_t consumed;

  memset (&in, 0, sizeof in);
  in.type = CTLMSG_REFUSE;
  in.stream_id = 0x80000001u;
  in.code = CTLMSG_REFUSE_NOT_TRUSTED;
  memset (in.text, ' ', CTLMSG_TEXT_MAX);
  in.text[0] = '!';
  size_t n = ctlmsg_build (buf, sizeof buf, &in);
  g_assert_cmpuint (n, ==, CTLMSG_HEADER_LEN + 6 + CTLMSG_TEXT_MAX);
  g_assert_cmpint (ctlmsg_parse (buf, n, &out, &consumed), ==, CTLMSG_OK);
  g_assert_cmpuint (consumed, ==, n);
  g_assert_cmpmem (&in, sizeof in, &out, sizeof out);

  memset (&in, 0, sizeof in);
  in.type = CTLMSG_PONG;
  in.token = G_MAXUINT64;
  n = ctlmsg_build (buf, sizeof buf, &in);
  g_assert_cmpint (ctlmsg_parse (buf, n, &out, &consumed), ==, CTLMSG_OK);
  g_assert_cmpmem (&in, sizeof in, &out, sizeof out);

  memset (&in, 0, sizeof in);
  in.type = CTLMSG_OPEN;
  in.stream_id = 2;
  strcpy (in.name, "Music-API_v2.0");
  n = ctlmsg_build (buf, sizeof buf, &in);
  g_assert_cmpint (ctlmsg_parse (buf, n, &out, &consumed), ==, CTLMSG_OK);
  g_assert_cmpmem (&in, sizeof in, &out, sizeof out);
}

static void
test_name_is_valid (void)
{
  char name[CTLMSG_NAME_MAX + 2];

  g_assert_true (ctlmsg_name_is_valid ("web"));
  g_assert_true (ctlmsg_name_is_valid ("A.b_c-9"));
  g_assert_false (ctlmsg_name_is_valid (NULL));
  g_assert_false (ctlmsg_name_is_valid (""));
  g_assert_false (ctlmsg_name_is_valid ("a b"));
  g_assert_false (ctlmsg_name_is_valid ("a/b"));
  g_assert_false (ctlmsg_name_is_valid ("caf\xc3\xa9"));
  memset (name, 0, sizeof name);
  memset (name, 'n', CTLMSG_NAME_MAX);
  g_assert_true (ctlmsg_name_is_valid (name));
  name[CTLMSG_NAME_MAX] = 'n';
  g_assert_false (ctlmsg_name_is_valid (name));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ctlmsg/parse/valid", test_parse_valid);
  g_test_add_func ("/ctlmsg/parse/hello-other-version", test_parse_hello_other_version);
  g_test_add_func ("/ctlmsg/parse/invalid", test_parse_invalid);
  g_test_add_func ("/ctlmsg/parse/truncated", test_parse_truncated);
  g_test_add_func ("/ctlmsg/parse/stream", test_parse_stream);
  g_test_add_func ("/ctlmsg/parse/garbage", test_parse_garbage);
  g_test_add_func ("/ctlmsg/build/vectors", test_build_vectors);
  g_test_add_func ("/ctlmsg/build/refuses", test_build_refuses);
  g_test_add_func ("/ctlmsg/round-trip", test_round_trip);
  g_test_add_func ("/ctlmsg/name-is-valid", test_name_is_valid);
  return g_test_run ();
}
