/* The Prometheus text writer (promtext.h). */
#include "promtext.h"

static void
test_family_and_samples (void)
{
  g_autoptr (GString) out = g_string_new (NULL);
  const char *const labels[] = { "code", "401", "reason", "a\"b\\c\nd", NULL };

  promtext_family (out, "p2ptun_x_total", PROMTEXT_COUNTER, "Help with \\ and\nnewline");
  promtext_sample (out, "p2ptun_x_total", labels, 7);
  promtext_sample (out, "p2ptun_x_total", NULL, 18446744073709551615u);
  g_assert_cmpstr (out->str, ==,
                   "# HELP p2ptun_x_total Help with \\\\ and\\nnewline\n"
                   "# TYPE p2ptun_x_total counter\n"
                   "p2ptun_x_total{code=\"401\",reason=\"a\\\"b\\\\c\\nd\"} 7\n"
                   "p2ptun_x_total 18446744073709551615\n");
}

static void
test_histogram (void)
{
  static const double bounds[] = { 0.005, 0.1, 1 };
  g_autoptr (GString) out = g_string_new (NULL);
  PromtextHistogram h;

  promtext_histogram_init (&h, bounds, G_N_ELEMENTS (bounds));
  promtext_histogram_observe (&h, 0.00390625);
  promtext_histogram_observe (&h, 0.0625);
  promtext_histogram_observe (&h, 0.5);
  promtext_histogram_observe (&h, 9);
  promtext_histogram_write (out, "p2ptun_l_seconds", "Latency.", &h);
  g_assert_cmpstr (out->str, ==,
                   "# HELP p2ptun_l_seconds Latency.\n"
                   "# TYPE p2ptun_l_seconds histogram\n"
                   "p2ptun_l_seconds_bucket{le=\"0.005\"} 1\n"
                   "p2ptun_l_seconds_bucket{le=\"0.1\"} 2\n"
                   "p2ptun_l_seconds_bucket{le=\"1\"} 3\n"
                   "p2ptun_l_seconds_bucket{le=\"+Inf\"} 4\n"
                   "p2ptun_l_seconds_sum 9.56640625\n"
                   "p2ptun_l_seconds_count 4\n");
}

static void
test_names (void)
{
  g_assert_true (promtext_name_is_valid ("p2ptun_relay:x_1"));
  g_assert_false (promtext_name_is_valid ("2ptun"));
  g_assert_false (promtext_name_is_valid ("p2ptun-relay"));
  g_assert_false (promtext_name_is_valid (""));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/promtext/family-and-samples", test_family_and_samples);
  g_test_add_func ("/promtext/histogram", test_histogram);
  g_test_add_func ("/promtext/names", test_names);
  return g_test_run ();
}
