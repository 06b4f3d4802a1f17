/* Unit tests of the sans-IO token buckets (signaling/ratelimit.c). */
#include "ratelimit.h"

#define S G_USEC_PER_SEC

static void
test_burst_then_rate (void)
{
  g_autoptr (RateLimiter) rl = ratelimit_new (2, 5, 100);

  for (int i = 0; i < 5; i++)
    g_assert_true (ratelimit_allow (rl, "a", 0));
  g_assert_false (ratelimit_allow (rl, "a", 0));
  /* Other keys have buckets of their own. */
  g_assert_true (ratelimit_allow (rl, "b", 0));
  /* Two per second: one token after half a second, not before. */
  g_assert_false (ratelimit_allow (rl, "a", S / 2 - 1));
  g_assert_true (ratelimit_allow (rl, "a", S / 2));
  g_assert_false (ratelimit_allow (rl, "a", S / 2));
  /* A long idle time refills to the burst, no more, without overflow. */
  for (int i = 0; i < 5; i++)
    g_assert_true (ratelimit_allow (rl, "a", G_MAXINT64 / 2));
  g_assert_false (ratelimit_allow (rl, "a", G_MAXINT64 / 2));
}

static void
test_max_keys (void)
{
  g_autoptr (RateLimiter) rl = ratelimit_new (1, 2, 2);

  g_assert_true (ratelimit_allow (rl, "a", 0));
  g_assert_true (ratelimit_allow (rl, "b", 0));
  /* Both buckets are still refilling: a third key is refused. */
  g_assert_false (ratelimit_allow (rl, "c", 0));
  /* Once they have refilled they are forgotten, and "c" gets a bucket. */
  g_assert_true (ratelimit_allow (rl, "c", 2 * S));
  g_assert_cmpuint (ratelimit_prune (rl, 2 * S), ==, 1);
  g_assert_cmpuint (ratelimit_prune (rl, 10 * S), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/signal/ratelimit/burst-then-rate", test_burst_then_rate);
  g_test_add_func ("/signal/ratelimit/max-keys", test_max_keys);
  return g_test_run ();
}
