/* p2ptun-agent's metrics core (metrics.h), fed with made-up statuses: the
 * peer labels, the path gauge, and counters that only grow when a tunnel
 * ends or another takes its place. */
#include <string.h>

#include "metrics.h"
#include "p2ptun-private.h"

#define PEER_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define PEER_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static P2ptunStatus *
status_new (const char *peer, gboolean up, gboolean relayed, guint64 bytes)
{
  P2ptunStatus *s = g_new0 (P2ptunStatus, 1);

  g_strlcpy (s->peer_id, peer, sizeof s->peer_id);
  s->up = up;
  s->has_path = up;
  s->path.path.relayed = relayed;
  g_strlcpy (s->path.path.transport, "udp", sizeof s->path.path.transport);
  s->rtt_us = up ? 2500 : 0;
  s->bytes_sent = bytes;
  s->bytes_received = 2 * bytes;
  s->packets_sent = bytes / 1000;
  s->streams = 3;
  s->udp_flows = 1;
  return s;
}

static GPtrArray *
statuses (void)
{
  return g_ptr_array_new_with_free_func ((GDestroyNotify)p2ptun_status_free);
}

static void
assert_line (GString *text, const char *line)
{
  g_autofree char *with_end = g_strconcat ("\n", line, "\n", NULL);

  if (strstr (text->str, with_end) == NULL)
    g_error ("no line '%s' in:\n%s", line, text->str);
}

static void
test_labels_and_gauges (void)
{
  g_autoptr (GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (Metrics) m = NULL;
  g_autoptr (GPtrArray) now = statuses ();
  GString *text;

  g_hash_table_insert (names, PEER_A, "laptop");
  m = metrics_new (names);
  g_ptr_array_add (now, status_new (PEER_A, TRUE, FALSE, 1000));
  g_ptr_array_add (now, status_new (PEER_B, TRUE, TRUE, 10));
  g_ptr_array_add (now, status_new (PEER_B, FALSE, FALSE, 0));
  text = metrics_render (m, now);
  assert_line (text, "p2ptun_agent_tunnels{path=\"direct\",transport=\"udp\"} 1");
  assert_line (text, "p2ptun_agent_tunnels{path=\"relayed\",transport=\"udp\"} 1");
  assert_line (text, "p2ptun_agent_tunnels{path=\"none\",transport=\"none\"} 1");
  assert_line (text, "p2ptun_agent_bytes_total{peer=\"laptop\",direction=\"sent\"} 1000");
  assert_line (text,
               "p2ptun_agent_bytes_total{peer=\"laptop\",direction=\"received\"} 2000");
  assert_line (text,
               "p2ptun_agent_bytes_total{peer=\"" PEER_B "\",direction=\"sent\"} 10");
  assert_line (text, "p2ptun_agent_rtt_seconds{peer=\"laptop\"} 0.0025");
  /* Two tunnels to B: one series, the streams of both. */
  assert_line (text, "p2ptun_agent_streams{peer=\"" PEER_B "\"} 4");
  assert_line (text, "p2ptun_agent_udp_flows{peer=\"" PEER_B "\"} 2");
  g_assert_null (strstr (text->str, "peer=\"" PEER_A "\""));
  g_string_free (text, TRUE);
}

static void
test_counters_only_grow (void)
{
  g_autoptr (Metrics) m = metrics_new (NULL);
  g_autoptr (GPtrArray) first = statuses ();
  g_autoptr (GPtrArray) none = statuses ();
  g_autoptr (GPtrArray) second = statuses ();
  g_autoptr (GPtrArray) later = statuses ();
  GString *text;

  g_ptr_array_add (first, status_new (PEER_A, TRUE, FALSE, 5000));
  metrics_observe (m, first);
  /* The tunnel ended: its bytes stay. */
  text = metrics_render (m, none);
  assert_line (text,
               "p2ptun_agent_bytes_total{peer=\"" PEER_A "\",direction=\"sent\"} 5000");
  assert_line (text, "p2ptun_agent_tunnels{path=\"direct\",transport=\"udp\"} 0");
  g_assert_null (strstr (text->str, "p2ptun_agent_rtt_seconds{"));
  g_string_free (text, TRUE);
  /* A new tunnel to the same peer counts from there. */
  g_ptr_array_add (second, status_new (PEER_A, TRUE, FALSE, 300));
  text = metrics_render (m, second);
  assert_line (text,
               "p2ptun_agent_bytes_total{peer=\"" PEER_A "\",direction=\"sent\"} 5300");
  g_string_free (text, TRUE);
  /* Ended and replaced between two samples by a smaller one: never less. */
  g_ptr_array_add (later, status_new (PEER_A, TRUE, FALSE, 100));
  text = metrics_render (m, later);
  assert_line (text,
               "p2ptun_agent_bytes_total{peer=\"" PEER_A "\",direction=\"sent\"} 5300");
  g_string_free (text, TRUE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/metrics/labels-and-gauges", test_labels_and_gauges);
  g_test_add_func ("/metrics/counters-only-grow", test_counters_only_grow);
  return g_test_run ();
}
