/* Unit tests for proto/turnuser.c: the TURN REST username grammar. */
#include <string.h>

#include <glib.h>

#include "turnuser.h"

#define PEER "v7hgw73wxjh5x4e2yhbzmzbd3ozvxabnxzgkcsusztm34ucax2ma"
/* 52 base32 characters, but the last one's low bits are not zero: not a
 * peer-id (peerid.h), so an ANYNAME. */
#define NOT_PEER "v7hgw73wxjh5x4e2yhbzmzbd3ozvxabnxzgkcsusztm34ucax2mb"

struct parse_case
{
  const char *in;
  enum turnuser_status status;
  gint64 expiry;
  const char *name;
  gboolean is_peer;
  guint max_alloc;
  guint64 max_bps;
};

static void
check_case (const struct parse_case *c)
{
  struct turnuser u;
  g_test_message ("%s", c->in);
  g_assert_cmpint (turnuser_parse (c->in, strlen (c->in), &u), ==, c->status);
  if (c->status != TURNUSER_OK)
    {
      g_assert_cmpint (u.expiry, ==, 0);
      g_assert_null (u.name);
      g_assert_cmpuint (u.max_alloc, ==, 0);
      g_assert_cmpuint (u.max_bps, ==, 0);
      return;
    }
  g_assert_cmpint (u.expiry, ==, c->expiry);
  g_assert_nonnull (u.name);
  g_assert_cmpmem (u.name, u.name_len, c->name, strlen (c->name));
  g_assert_cmpint (u.is_peer, ==, c->is_peer);
  g_assert_cmpuint (u.max_alloc, ==, c->max_alloc);
  g_assert_cmpuint (u.max_bps, ==, c->max_bps);
}

static void
test_valid (void)
{
  static const struct parse_case cases[] = {
    { "1700000000:" PEER, TURNUSER_OK, 1700000000, PEER, TRUE, 0, 0 },
    { "1700000000:" PEER ":a=5", TURNUSER_OK, 1700000000, PEER, TRUE, 5, 0 },
    { "1700000000:" PEER ":b=1000", TURNUSER_OK, 1700000000, PEER, TRUE, 0, 1000 },
    { "1700000000:" PEER ":a=5,b=1000", TURNUSER_OK, 1700000000, PEER, TRUE, 5, 1000 },
    { "1700000000:" PEER ":b=1000,a=5", TURNUSER_OK, 1700000000, PEER, TRUE, 5, 1000 },
    /* Unknown keys are skipped, wherever they are. */
    { "1:" PEER ":zz=1,a=2,abcdefgh=00000000000000000000,b=3", TURNUSER_OK, 1, PEER, TRUE,
      2, 3 },
    { "1:" PEER ":future=99", TURNUSER_OK, 1, PEER, TRUE, 0, 0 },
    /* Generic REST usernames, as coturn takes them. */
    { "1700000000", TURNUSER_OK, 1700000000, "", FALSE, 0, 0 },
    { "1700000000:", TURNUSER_OK, 1700000000, "", FALSE, 0, 0 },
    { "1700000000:alice", TURNUSER_OK, 1700000000, "alice", FALSE, 0, 0 },
    { "1700000000:alice:a=5", TURNUSER_OK, 1700000000, "alice:a=5", FALSE, 0, 0 },
    { "0:" NOT_PEER ":a=5", TURNUSER_OK, 0, NOT_PEER ":a=5", FALSE, 0, 0 },
    { "0:" PEER "x", TURNUSER_OK, 0, PEER "x", FALSE, 0, 0 },
    { "0:" PEER ",a=5", TURNUSER_OK, 0, PEER ",a=5", FALSE, 0, 0 },
    /* Boundaries. */
    { "9223372036854775807:" PEER, TURNUSER_OK, G_MAXINT64, PEER, TRUE, 0, 0 },
    { "0000000000000000001", TURNUSER_OK, 1, "", FALSE, 0, 0 },
    { "1:" PEER ":a=1,b=1", TURNUSER_OK, 1, PEER, TRUE, 1, 1 },
    { "1:" PEER ":a=10000,b=1000000000000", TURNUSER_OK, 1, PEER, TRUE, 10000,
      1000000000000ull },
    { "1:" PEER ":a=00010000", TURNUSER_OK, 1, PEER, TRUE, 10000, 0 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    check_case (&cases[i]);
}

static void
test_invalid (void)
{
  static const struct
  {
    const char *in;
    enum turnuser_status status;
  } cases[] = {
    { "", TURNUSER_BAD_EXPIRY },
    { ":" PEER, TURNUSER_BAD_EXPIRY },
    { "x:" PEER, TURNUSER_BAD_EXPIRY },
    { "+1:" PEER, TURNUSER_BAD_EXPIRY },
    { "-1:" PEER, TURNUSER_BAD_EXPIRY },
    { " 1:" PEER, TURNUSER_BAD_EXPIRY },
    { "1x", TURNUSER_BAD_EXPIRY },
    { "9223372036854775808:" PEER, TURNUSER_BAD_EXPIRY },
    { "00000000000000000001:" PEER, TURNUSER_BAD_EXPIRY }, /* 20 digits */
    { "1:" PEER ":", TURNUSER_BAD_OPTION },
    { "1:" PEER ":a", TURNUSER_BAD_OPTION },
    { "1:" PEER ":a=", TURNUSER_BAD_OPTION },
    { "1:" PEER ":=5", TURNUSER_BAD_OPTION },
    { "1:" PEER ":a=+5", TURNUSER_BAD_OPTION },
    { "1:" PEER ":a=-5", TURNUSER_BAD_OPTION },
    { "1:" PEER ":a= 5", TURNUSER_BAD_OPTION },
    { "1:" PEER ":a=5 ", TURNUSER_BAD_OPTION },
    { "1:" PEER ":a=0x5", TURNUSER_BAD_OPTION },
    { "1:" PEER ":A=5", TURNUSER_BAD_OPTION },
    { "1:" PEER ":a1=5", TURNUSER_BAD_OPTION },
    { "1:" PEER ":abcdefghi=5", TURNUSER_BAD_OPTION }, /* 9-letter key */
    { "1:" PEER ":a=5,", TURNUSER_BAD_OPTION },
    { "1:" PEER ":,a=5", TURNUSER_BAD_OPTION },
    { "1:" PEER ":a=5,,b=6", TURNUSER_BAD_OPTION },
    { "1:" PEER ":a=5:b=6", TURNUSER_BAD_OPTION },
    { "1:" PEER ":a=5=6", TURNUSER_BAD_OPTION },
    { "1:" PEER ":x=123456789012345678901", TURNUSER_BAD_OPTION }, /* 21 digits */
    { "1:" PEER ":a=5,a=5", TURNUSER_DUPLICATE },
    { "1:" PEER ":a=5,b=1,a=6", TURNUSER_DUPLICATE },
    { "1:" PEER ":zz=1,zz=2", TURNUSER_DUPLICATE },
    { "1:" PEER ":a=0", TURNUSER_OUT_OF_RANGE },
    { "1:" PEER ":a=10001", TURNUSER_OUT_OF_RANGE },
    { "1:" PEER ":b=0", TURNUSER_OUT_OF_RANGE },
    { "1:" PEER ":b=1000000000001", TURNUSER_OUT_OF_RANGE },
    { "1:" PEER ":b=99999999999999999999", TURNUSER_OUT_OF_RANGE }, /* over 2^64 */
    { "1:" PEER ":a=99999999999999999999", TURNUSER_OUT_OF_RANGE },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    check_case (&(struct parse_case){ .in = cases[i].in, .status = cases[i].status });
}

/* Lengths are explicit: a NUL in the name is refused, and bytes past len
 * are never read. */
static void
test_lengths (void)
{
  struct turnuser u;
  g_assert_cmpint (turnuser_parse (NULL, 0, &u), ==, TURNUSER_BAD_EXPIRY);
  const char with_nul[] = "1:al\0ice";
  g_assert_cmpint (turnuser_parse (with_nul, sizeof with_nul - 1, &u), ==,
                   TURNUSER_BAD_NAME);
  const char *full = "1700000000:" PEER ":a=5";
  /* Cut before the options' digit: not a valid option. */
  g_assert_cmpint (turnuser_parse (full, strlen (full) - 1, &u), ==, TURNUSER_BAD_OPTION);
  /* Cut right after the peer-id: no options. */
  g_assert_cmpint (turnuser_parse (full, 11 + PEERID_LEN, &u), ==, TURNUSER_OK);
  g_assert_true (u.is_peer);
  g_assert_cmpuint (u.max_alloc, ==, 0);
  /* Cut inside the expiry. */
  g_assert_cmpint (turnuser_parse (full, 4, &u), ==, TURNUSER_OK);
  g_assert_cmpint (u.expiry, ==, 1700);
  g_assert_cmpuint (u.name_len, ==, 0);

  /* TURNUSER_MAX_LEN bytes pass, one more does not. */
  char buf[TURNUSER_MAX_LEN + 1];
  memset (buf, 'n', sizeof buf);
  memcpy (buf, "1:", 2);
  g_assert_cmpint (turnuser_parse (buf, TURNUSER_MAX_LEN, &u), ==, TURNUSER_OK);
  g_assert_cmpuint (u.name_len, ==, TURNUSER_MAX_LEN - 2);
  g_assert_cmpint (turnuser_parse (buf, TURNUSER_MAX_LEN + 1, &u), ==, TURNUSER_TOO_LONG);
  g_assert_cmpuint (u.name_len, ==, 0);
}

static void
test_format (void)
{
  g_autofree char *plain = turnuser_format (1700000000, PEER, 0, 0);
  g_assert_cmpstr (plain, ==, "1700000000:" PEER);
  g_autofree char *a = turnuser_format (1700000000, PEER, 5, 0);
  g_assert_cmpstr (a, ==, "1700000000:" PEER ":a=5");
  g_autofree char *b = turnuser_format (1700000000, PEER, 0, 1000);
  g_assert_cmpstr (b, ==, "1700000000:" PEER ":b=1000");
  g_autofree char *ab
      = turnuser_format (G_MAXINT64, PEER, TURNUSER_MAX_ALLOC, TURNUSER_MAX_BPS);
  g_assert_cmpstr (ab, ==, "9223372036854775807:" PEER ":a=10000,b=1000000000000");
  g_assert_cmpuint (strlen (ab), <=, TURNUSER_MAX_LEN);
  struct turnuser u;
  g_assert_cmpint (turnuser_parse (ab, strlen (ab), &u), ==, TURNUSER_OK);
  g_assert_cmpint (u.expiry, ==, G_MAXINT64);
  g_assert_cmpuint (u.max_alloc, ==, TURNUSER_MAX_ALLOC);
  g_assert_cmpuint (u.max_bps, ==, TURNUSER_MAX_BPS);
}

/* Misuse is a programming error: NULL and a critical warning. */
static void
test_format_misuse (void)
{
  if (g_test_subprocess ())
    {
      g_assert_null (turnuser_format (1, NOT_PEER, 0, 0));
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*peerid_is_valid*");
}

static void
test_status_strings (void)
{
  for (int st = TURNUSER_OK; st <= TURNUSER_OUT_OF_RANGE; st++)
    g_assert_cmpstr (turnuser_status_to_string (st), !=, "unknown status");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/turnuser/valid", test_valid);
  g_test_add_func ("/turnuser/invalid", test_invalid);
  g_test_add_func ("/turnuser/lengths", test_lengths);
  g_test_add_func ("/turnuser/format", test_format);
  g_test_add_func ("/turnuser/format-misuse", test_format_misuse);
  g_test_add_func ("/turnuser/status-strings", test_status_strings);
  return g_test_run ();
}
