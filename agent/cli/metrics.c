/* p2ptun-agent's Prometheus metrics. See metrics.h. */
#include "metrics.h"

#include <string.h>

#include "promhttp.h"
#include "promtext.h"

/* The per-tunnel counters of P2ptunStatus that are summed per peer. */
enum
{
  METRICS_BYTES_SENT,
  METRICS_BYTES_RECEIVED,
  METRICS_PACKETS_SENT,
  METRICS_PACKETS_RECEIVED,
  METRICS_PACKETS_LOST,
  METRICS_PATH_CHANGES,
  METRICS_RESTARTS,
  METRICS_OUTAGES,
  METRICS_N_COUNTERS
};

/* One peer label's counters: its live tunnels' sum at the last sample
 * (live), plus what tunnels that went had (ended). The counter is their
 * sum. */
typedef struct
{
  guint64 ended[METRICS_N_COUNTERS];
  guint64 live[METRICS_N_COUNTERS];
  guint64 reconnects; /* the library's count is per peer already: the highest seen */
} MetricsPeer;

/* One peer label's tunnels now, for the gauges. */
typedef struct
{
  guint64 sums[METRICS_N_COUNTERS];
  guint64 reconnects;
  guint streams; /* without the UDP flows */
  guint udp_flows;
  gint64 rtt_us; /* of an up tunnel; 0 for none */
} MetricsNow;

struct _Metrics
{
  GHashTable *names;
  GTree *peers; /* label -> MetricsPeer, sorted for a stable text */
  P2ptunNode *node;
  Promhttp *http;
  GSource *sampler;
};

static const char *const metrics_transports[] = { "udp", "tcp", "tls" };

static int
metrics_compare_labels (gconstpointer a, gconstpointer b, gpointer data)
{
  (void)data;
  return strcmp (a, b);
}

Metrics *
metrics_new (GHashTable *names)
{
  Metrics *self = g_new0 (Metrics, 1);

  self->names = names ? g_hash_table_ref (names) : NULL;
  self->peers = g_tree_new_full (metrics_compare_labels, NULL, g_free, g_free);
  return self;
}

void
metrics_free (Metrics *self)
{
  if (self == NULL)
    return;
  /* The endpoint first: it renders from the rest. */
  g_clear_pointer (&self->http, promhttp_free);
  if (self->sampler != NULL)
    g_source_destroy (self->sampler);
  g_clear_pointer (&self->sampler, g_source_unref);
  g_clear_pointer (&self->peers, g_tree_destroy);
  g_clear_pointer (&self->names, g_hash_table_unref);
  g_free (self);
}

static const char *
metrics_label (Metrics *self, const char *peer_id)
{
  const char *name = self->names ? g_hash_table_lookup (self->names, peer_id) : NULL;

  return name != NULL ? name : peer_id;
}

/* The tunnels of @statuses by peer label: label -> MetricsNow. */
static GTree *
metrics_now (Metrics *self, GPtrArray *statuses)
{
  GTree *now = g_tree_new_full (metrics_compare_labels, NULL, g_free, g_free);

  for (guint i = 0; statuses != NULL && i < statuses->len; i++)
    {
      const P2ptunStatus *s = statuses->pdata[i];
      const char *label = metrics_label (self, p2ptun_status_get_peer_id (s));
      MetricsNow *n = g_tree_lookup (now, label);
      guint64 counts[METRICS_N_COUNTERS] = {
        [METRICS_BYTES_SENT] = p2ptun_status_get_bytes_sent (s),
        [METRICS_BYTES_RECEIVED] = p2ptun_status_get_bytes_received (s),
        [METRICS_PACKETS_SENT] = p2ptun_status_get_packets_sent (s),
        [METRICS_PACKETS_RECEIVED] = p2ptun_status_get_packets_received (s),
        [METRICS_PACKETS_LOST] = p2ptun_status_get_packets_lost (s),
        [METRICS_PATH_CHANGES] = p2ptun_status_get_path_changes (s),
        [METRICS_RESTARTS] = p2ptun_status_get_restarts (s),
        [METRICS_OUTAGES] = p2ptun_status_get_outages (s),
      };
      guint streams = p2ptun_status_get_streams (s);
      guint flows = p2ptun_status_get_udp_flows (s);

      if (n == NULL)
        {
          n = g_new0 (MetricsNow, 1);
          g_tree_insert (now, g_strdup (label), n);
        }
      for (int c = 0; c < METRICS_N_COUNTERS; c++)
        n->sums[c] += counts[c];
      n->reconnects = MAX (n->reconnects, p2ptun_status_get_reconnects (s));
      n->streams += streams > flows ? streams - flows : 0;
      n->udp_flows += flows;
      if (p2ptun_status_is_up (s) && p2ptun_status_get_rtt_us (s) > 0)
        n->rtt_us = p2ptun_status_get_rtt_us (s);
    }
  return now;
}

typedef struct
{
  Metrics *self;
  GTree *now;
} MetricsObserving;

/* A peer of before: what its tunnels lost since the last sample (a tunnel
 * went, or ended and another began) is kept in ended. */
static gboolean
metrics_observe_peer (gpointer key, gpointer value, gpointer data)
{
  MetricsObserving *o = data;
  MetricsPeer *p = value;
  MetricsNow *n = g_tree_lookup (o->now, key);

  for (int c = 0; c < METRICS_N_COUNTERS; c++)
    {
      guint64 live = n != NULL ? n->sums[c] : 0;

      if (live < p->live[c])
        p->ended[c] += p->live[c] - live;
      p->live[c] = live;
    }
  return FALSE;
}

/* A peer of now that was not seen before. */
static gboolean
metrics_observe_new (gpointer key, gpointer value, gpointer data)
{
  MetricsObserving *o = data;
  MetricsNow *n = value;
  MetricsPeer *p = g_tree_lookup (o->self->peers, key);

  if (p == NULL)
    {
      p = g_new0 (MetricsPeer, 1);
      memcpy (p->live, n->sums, sizeof p->live);
      g_tree_insert (o->self->peers, g_strdup (key), p);
    }
  p->reconnects = MAX (p->reconnects, n->reconnects);
  return FALSE;
}

static void
metrics_observe_now (Metrics *self, GTree *now)
{
  MetricsObserving o = { self, now };

  g_tree_foreach (self->peers, metrics_observe_peer, &o);
  g_tree_foreach (now, metrics_observe_new, &o);
}

void
metrics_observe (Metrics *self, GPtrArray *statuses)
{
  g_autoptr (GTree) now = metrics_now (self, statuses);

  metrics_observe_now (self, now);
}

/* ---- the text ---- */

/* The per-peer gauges, from the tunnels now. */
typedef enum
{
  METRICS_GAUGE_STREAMS,
  METRICS_GAUGE_UDP_FLOWS,
  METRICS_GAUGE_RTT,
} MetricsGauge;

typedef struct
{
  GString *out;
  const char *name;
  const char *direction; /* NULL: no direction label */
  int counter;           /* -1: reconnects */
  MetricsGauge gauge;
} MetricsWriting;

static gboolean
metrics_write_counter (gpointer key, gpointer value, gpointer data)
{
  MetricsWriting *w = data;
  MetricsPeer *p = value;
  const char *labels[] = { "peer", key, "direction", w->direction, NULL };
  guint64 v = w->counter < 0 ? p->reconnects : p->ended[w->counter] + p->live[w->counter];

  if (w->direction == NULL)
    labels[2] = NULL;
  promtext_sample (w->out, w->name, (const char *const *)labels, v);
  return FALSE;
}

static void
metrics_counter (GString *out, Metrics *self, const char *name, const char *help,
                 int counter, int received)
{
  MetricsWriting w = { .out = out, .name = name, .counter = counter };

  promtext_family (out, name, PROMTEXT_COUNTER, help);
  if (received >= 0)
    {
      w.direction = "sent";
      g_tree_foreach (self->peers, metrics_write_counter, &w);
      w.direction = "received";
      w.counter = received;
    }
  g_tree_foreach (self->peers, metrics_write_counter, &w);
}

static gboolean
metrics_write_gauge (gpointer key, gpointer value, gpointer data)
{
  MetricsWriting *w = data;
  MetricsNow *n = value;
  const char *const labels[] = { "peer", key, NULL };

  if (w->gauge == METRICS_GAUGE_STREAMS)
    promtext_sample (w->out, w->name, labels, n->streams);
  else if (w->gauge == METRICS_GAUGE_UDP_FLOWS)
    promtext_sample (w->out, w->name, labels, n->udp_flows);
  else if (n->rtt_us > 0) /* none before the first measurement */
    promtext_sample_double (w->out, w->name, labels, (double)n->rtt_us / G_USEC_PER_SEC);
  return FALSE;
}

static void
metrics_gauge (GString *out, GTree *now, const char *name, const char *help,
               MetricsGauge gauge)
{
  MetricsWriting w = { .out = out, .name = name, .gauge = gauge };

  promtext_family (out, name, PROMTEXT_GAUGE, help);
  g_tree_foreach (now, metrics_write_gauge, &w);
}

/* Tunnels by path: direct or relayed with the transport, none when not up. */
static void
metrics_tunnels (GString *out, GPtrArray *statuses)
{
  guint64 counts[2][G_N_ELEMENTS (metrics_transports)] = { { 0 } };
  guint64 none = 0;
  const char *const none_labels[] = { "path", "none", "transport", "none", NULL };

  for (guint i = 0; statuses != NULL && i < statuses->len; i++)
    {
      const P2ptunPath *path = p2ptun_status_get_path (statuses->pdata[i]);
      gsize t;

      if (!p2ptun_status_is_up (statuses->pdata[i]) || path == NULL)
        {
          none++;
          continue;
        }
      for (t = 0; t < G_N_ELEMENTS (metrics_transports); t++)
        if (g_strcmp0 (p2ptun_path_get_transport (path), metrics_transports[t]) == 0)
          break;
      if (t < G_N_ELEMENTS (metrics_transports))
        counts[p2ptun_path_is_relayed (path)][t]++;
    }
  promtext_family (out, "p2ptun_agent_tunnels", PROMTEXT_GAUGE,
                   "Tunnels now, by path (direct, relayed, or none while not up) and "
                   "transport.");
  for (int r = 0; r < 2; r++)
    for (gsize t = 0; t < G_N_ELEMENTS (metrics_transports); t++)
      {
        const char *const labels[] = { "path", r ? "relayed" : "direct", "transport",
                                       metrics_transports[t], NULL };
        promtext_sample (out, "p2ptun_agent_tunnels", labels, counts[r][t]);
      }
  promtext_sample (out, "p2ptun_agent_tunnels", none_labels, none);
}

GString *
metrics_render (Metrics *self, GPtrArray *statuses)
{
  g_autoptr (GTree) now = metrics_now (self, statuses);
  GString *out = g_string_new (NULL);

  metrics_observe_now (self, now);
  metrics_tunnels (out, statuses);
  metrics_counter (out, self, "p2ptun_agent_bytes_total",
                   "Bytes of tunnel packets (streams and datagrams with the transport's "
                   "framing, without DTLS), by peer and direction.",
                   METRICS_BYTES_SENT, METRICS_BYTES_RECEIVED);
  metrics_counter (out, self, "p2ptun_agent_packets_total",
                   "Tunnel packets (retransmissions included), by peer and direction.",
                   METRICS_PACKETS_SENT, METRICS_PACKETS_RECEIVED);
  metrics_counter (out, self, "p2ptun_agent_lost_packets_total",
                   "Tunnel packets sent and declared lost (not acknowledged in time), by "
                   "peer.",
                   METRICS_PACKETS_LOST, -1);
  metrics_counter (out, self, "p2ptun_agent_path_changes_total",
                   "Times ICE moved a tunnel to another candidate pair after it was up.",
                   METRICS_PATH_CHANGES, -1);
  metrics_counter (out, self, "p2ptun_agent_ice_restarts_total",
                   "ICE restarts a tunnel made or took part in.", METRICS_RESTARTS, -1);
  metrics_counter (out, self, "p2ptun_agent_outages_total",
                   "Times a peer went quiet long enough for the path to be called dead.",
                   METRICS_OUTAGES, -1);
  metrics_counter (out, self, "p2ptun_agent_reconnects_total",
                   "New tunnels to a paired peer after the one before ended.", -1, -1);
  metrics_gauge (
      out, now, "p2ptun_agent_rtt_seconds",
      "The last round-trip time measured through the peer's tunnel that is up.",
      METRICS_GAUGE_RTT);
  metrics_gauge (out, now, "p2ptun_agent_streams", "Streams open now, by peer.",
                 METRICS_GAUGE_STREAMS);
  metrics_gauge (out, now, "p2ptun_agent_udp_flows", "UDP flows open now, by peer.",
                 METRICS_GAUGE_UDP_FLOWS);
  return out;
}

/* ---- the shell ---- */

static GString *
metrics_on_scrape (gpointer data)
{
  Metrics *self = data;
  g_autoptr (GPtrArray) statuses = p2ptun_node_get_statuses (self->node);

  return metrics_render (self, statuses);
}

static gboolean
metrics_on_sample (gpointer data)
{
  Metrics *self = data;
  g_autoptr (GPtrArray) statuses = p2ptun_node_get_statuses (self->node);

  metrics_observe (self, statuses);
  return G_SOURCE_CONTINUE;
}

Metrics *
metrics_serve (GMainContext *ctx, P2ptunNode *node, GHashTable *names,
               GInetSocketAddress *address, GError **error)
{
  g_autoptr (Metrics) self = metrics_new (names);

  if (ctx == NULL)
    ctx = g_main_context_default ();
  self->node = node;
  self->http = promhttp_new (ctx, address, metrics_on_scrape, self, error);
  if (self->http == NULL)
    return NULL;
  self->sampler = g_timeout_source_new_seconds (METRICS_SAMPLE_S);
  g_source_set_callback (self->sampler, metrics_on_sample, self, NULL);
  g_source_attach (self->sampler, ctx);
  return g_steal_pointer (&self);
}

char *
metrics_address (Metrics *self)
{
  return promhttp_address (self->http);
}
