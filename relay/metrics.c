/* p2ptun-relay's Prometheus metrics (--metrics): the core's counters
 * (stats.h) and the shell's connections, in the text format (promtext.h)
 * on a plain-HTTP endpoint (promhttp.h). No secret, key or username is
 * ever a label. */
#include "shell.h"

#include "promhttp.h"
#include "promtext.h"

static const char *const relay_metrics_transports[] = { "udp", "tcp", "tls" };

static void
relay_metrics_counter (GString *out, const char *name, const char *help, guint64 value)
{
  promtext_family (out, name, PROMTEXT_COUNTER, help);
  promtext_sample (out, name, NULL, value);
}

static void
relay_metrics_gauge (GString *out, const char *name, const char *help, guint64 value)
{
  promtext_family (out, name, PROMTEXT_GAUGE, help);
  promtext_sample (out, name, NULL, value);
}

/* A counter with one sample per direction. */
static void
relay_metrics_directions (GString *out, const char *name, const char *help,
                          guint64 to_peer, guint64 to_client)
{
  const char *const peer[] = { "direction", "to_peer", NULL };
  const char *const client[] = { "direction", "to_client", NULL };

  promtext_family (out, name, PROMTEXT_COUNTER, help);
  promtext_sample (out, name, peer, to_peer);
  promtext_sample (out, name, client, to_client);
}

static GString *
relay_metrics_render (gpointer data)
{
  RelayMain *m = data;
  const struct relay_stats *st = relay_server_stats (m->server);
  GString *out = g_string_new (NULL);

  relay_metrics_gauge (out, "p2ptun_relay_allocations", "Allocations alive now.",
                       relay_server_n_allocations (m->server));
  promtext_family (out, "p2ptun_relay_allocations_total", PROMTEXT_COUNTER,
                   "Allocations made, by the transport the client used.");
  for (gsize t = 0; t < G_N_ELEMENTS (relay_metrics_transports); t++)
    {
      const char *const labels[] = { "transport", relay_metrics_transports[t], NULL };
      promtext_sample (out, "p2ptun_relay_allocations_total", labels, st->allocations[t]);
    }
  relay_metrics_directions (out, "p2ptun_relay_relayed_bytes_total",
                            "Relayed payload bytes sent on, by direction.",
                            st->to_peer_bytes, st->to_client_bytes);
  relay_metrics_directions (out, "p2ptun_relay_relayed_packets_total",
                            "Relayed datagrams sent on, by direction.",
                            st->to_peer_packets, st->to_client_packets);
  relay_metrics_counter (out, "p2ptun_relay_auth_challenges_total",
                         "401 answers to requests without credentials: the first step of "
                         "every authentication, not a failure.",
                         st->auth_challenges);
  relay_metrics_counter (out, "p2ptun_relay_auth_failures_total",
                         "Requests with credentials refused with 401 (wrong secret or "
                         "realm, expired or malformed username, bad nonce).",
                         st->refusals[RELAY_REFUSAL_UNAUTHORIZED]);
  promtext_family (out, "p2ptun_relay_refusals_total", PROMTEXT_COUNTER,
                   "Requests answered with a STUN error, by code and reason.");
  for (int r = 0; r < RELAY_N_REFUSALS; r++)
    {
      char code[16];
      g_snprintf (code, sizeof code, "%u", relay_stats_refusal_code (r));
      const char *const labels[]
          = { "code", r == RELAY_REFUSAL_OTHER ? "other" : code, "reason",
              relay_stats_refusal_name (r), NULL };
      promtext_sample (out, "p2ptun_relay_refusals_total", labels, st->refusals[r]);
    }
  relay_metrics_gauge (out, "p2ptun_relay_connections", "TCP and TLS connections open now.",
                       m->conns != NULL ? g_hash_table_size (m->conns) : 0);
  promtext_family (out, "p2ptun_relay_connections_total", PROMTEXT_COUNTER,
                   "TCP and TLS connections accepted, by transport.");
  for (gsize t = RELAY_TRANSPORT_TCP; t <= RELAY_TRANSPORT_TLS; t++)
    {
      const char *const labels[] = { "transport", relay_metrics_transports[t], NULL };
      promtext_sample (out, "p2ptun_relay_connections_total", labels,
                       m->conns_accepted[t]);
    }
  relay_metrics_counter (out, "p2ptun_relay_connections_refused_total",
                         "TCP and TLS connections closed at accept by the connection "
                         "limits.",
                         m->conns_refused);
  return out;
}

gboolean
relay_metrics_start (RelayMain *m, GInetSocketAddress *addr, GError **error)
{
  m->metrics = promhttp_new (m->context, addr, relay_metrics_render, m, error);
  return m->metrics != NULL;
}

char *
relay_metrics_address (RelayMain *m)
{
  return promhttp_address (m->metrics);
}

void
relay_metrics_stop (RelayMain *m)
{
  g_clear_pointer (&m->metrics, promhttp_free);
}
