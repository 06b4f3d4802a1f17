/* Tests of the tunnel transport (proto/xport.h) in the link simulator.
 *
 *   sim-test NAME [ARG]
 *
 * Each test prints what it measured and exits 0 on success, 1 on failure;
 * meson runs each as its own test (suite "sim"). Simulated time is cheap:
 * every test takes a second or so of wall time, also under the sanitizers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "xport.h"
#include "xport_conn.h"
#include "xport_pmtu.h"
#include "xport_wire.h"

#define MS 1000ull
#define SEC 1000000ull
#define MIB (1024ull * 1024)

static int failures;

#define CHECK(cond, ...)                                                                 \
  do                                                                                     \
    {                                                                                    \
      if (!(cond))                                                                       \
        {                                                                                \
          printf ("FAIL %s:%d: ", __FILE__, __LINE__);                                   \
          printf (__VA_ARGS__);                                                          \
          printf ("\n");                                                                 \
          failures++;                                                                    \
        }                                                                                \
    }                                                                                    \
  while (0)

static struct sim_link_params
base_link (uint64_t rate_bps, uint64_t rtt_us)
{
  struct sim_link_params p = { 0 };
  p.delay_us = rtt_us / 2;
  p.rate_bps = rate_bps;
  /* Drop-tail queue of one bandwidth-delay product. */
  p.queue_bytes = rate_bps / 8 * rtt_us / SEC;
  if (p.queue_bytes < 64 * 1024)
    p.queue_bytes = 64 * 1024;
  return p;
}

static bool
profile (const char *name, struct sim_link_params *p, struct xport_config *cfg)
{
  *p = base_link (100000000, 40 * MS);
  if (strcmp (name, "clean") == 0)
    return true;
  if (strcmp (name, "small-ring") == 0)
    {
      /* The window wants more packets in flight than the sender tracks. */
      cfg->sent_packets = 512;
      p->loss = 0.01;
      return true;
    }
  if (strcmp (name, "jitter") == 0)
    p->jitter_us = 10 * MS;
  else if (strcmp (name, "loss1") == 0)
    p->loss = 0.01;
  else if (strcmp (name, "loss3") == 0)
    p->loss = 0.03;
  else if (strcmp (name, "burst") == 0)
    {
      /* Bursts of 4 packets on average, about 2 % lost overall. */
      p->ge_p = 0.005;
      p->ge_r = 0.25;
      p->ge_loss_bad = 0.5;
    }
  else if (strcmp (name, "reorder") == 0)
    {
      p->reorder = 0.05;
      p->reorder_us = 3 * MS;
    }
  else if (strcmp (name, "dup") == 0)
    p->duplicate = 0.05;
  else if (strcmp (name, "mixed") == 0)
    {
      p->loss = 0.01;
      p->ge_p = 0.002;
      p->ge_r = 0.3;
      p->ge_loss_bad = 0.5;
      p->jitter_us = 5 * MS;
      p->reorder = 0.02;
      p->reorder_us = 2 * MS;
      p->duplicate = 0.02;
    }
  else
    return false;
  return true;
}

struct pair
{
  struct sim *sim;
  struct sim_link *ab, *ba;
  struct sim_node *a, *b;
};

static void
pair_make (struct pair *pr, uint64_t seed, const struct sim_link_params *fwd,
           const struct sim_link_params *rev, const struct xport_config *cfg,
           sim_app_fn app, void *ctx)
{
  struct xport_config ca = *cfg, cb = *cfg;
  ca.is_client = true;
  cb.is_client = false;
  pr->sim = sim_new (seed);
  pr->ab = sim_link_new (pr->sim, fwd);
  pr->ba = sim_link_new (pr->sim, rev);
  pr->a = sim_node_new (pr->sim, &ca, pr->ab, app, ctx);
  pr->b = sim_node_new (pr->sim, &cb, pr->ba, app, ctx);
  sim_connect (pr->a, pr->b);
}

/* A pair carrying @f (@n streams of @bytes, data from @flow_seed) from a to
 * b, the same link both ways. */
static void
flow_pair (struct pair *pr, uint64_t seed, const struct sim_link_params *p,
           const struct xport_config *cfg, struct sim_flow *f, unsigned n, uint64_t bytes,
           uint64_t flow_seed)
{
  sim_flow_init (f, n, bytes, flow_seed);
  pair_make (pr, seed, p, p, cfg, sim_flow_app, f);
  f->tx = pr->a;
  f->rx = pr->b;
}

/* ---- integrity under each impairment ---- */

static int
test_integrity (const char *name)
{
  struct sim_link_params p;
  struct xport_config cfg = { 0 };
  if (!profile (name, &p, &cfg))
    {
      printf ("unknown profile %s\n", name);
      return 2;
    }
  /* Path MTU discovery on, on a path that carries 1400-byte packets. */
  cfg.max_packet_probe = SIM_PACKET_CEILING;
  p.mtu = 1400;
  struct sim_flow f;
  struct pair pr;
  flow_pair (&pr, 42, &p, &cfg, &f, 3, 2 * MIB, 7);
  f.datagram_interval_us = 2 * MS;
  sim_node_kick (pr.a);
  uint64_t end = sim_run (pr.sim, 60 * SEC, sim_flow_done, &f);

  char why[200];
  bool ok = sim_flow_verify (&f, why, sizeof why);
  struct xport_stats st;
  xport_conn_stats (sim_node_conn (pr.a), &st);
  double secs = (double)(f.done_time - f.start_time) / 1e6;
  printf ("%s: %s in %.3f s simulated, %.1f Mbit/s, longest stall %.3f s, "
          "%llu packets sent, %llu lost, srtt %.1f ms, datagrams %llu/%llu, "
          "packets of %u bytes\n",
          name, ok ? "6 MiB intact" : why, secs, ok ? 6.0 * MIB * 8 / secs / 1e6 : 0.0,
          (double)f.max_stall / 1e6, (unsigned long long)st.packets_sent,
          (unsigned long long)st.packets_lost, st.srtt_us / 1000.0,
          (unsigned long long)f.dgram_received, (unsigned long long)f.dgram_sent,
          st.packet_size);
  /* The search may still run when 6 MiB are through; sim-pmtu checks
   * where it ends. */
  CHECK (st.packet_size <= 1400 && st.packet_size > XPORT_BASE_PACKET,
         "packets of %u bytes on a path of 1400", st.packet_size);
  CHECK (ok, "%s", why);
  CHECK (!f.closed, "connection closed (code %llu)", (unsigned long long)f.close_code);
  CHECK (f.max_stall <= SEC, "stall of %.3f s", (double)f.max_stall / 1e6);
  CHECK (f.dgram_bad == 0, "%llu corrupted datagrams", (unsigned long long)f.dgram_bad);
  CHECK (f.dgram_received > f.dgram_sent / 2, "only %llu of %llu datagrams arrived",
         (unsigned long long)f.dgram_received, (unsigned long long)f.dgram_sent);
  CHECK (f.dgram_received <= f.dgram_sent, "more datagrams than sent");
  /* Timers fire for a reason: at most about once per packet sent. */
  uint64_t fires = sim_node_timer_fires (pr.a) + sim_node_timer_fires (pr.b);
  CHECK (fires < st.packets_sent + 1000, "timers fired %llu times for %llu packets",
         (unsigned long long)fires, (unsigned long long)st.packets_sent);
  (void)end;
  sim_flow_clear (&f);
  sim_free (pr.sim);
  return failures ? 1 : 0;
}

/* ---- a stalled reader slows no other stream, memory stays bounded ---- */

struct mem_watch
{
  struct sim_flow *f;
  struct sim_node *tx, *rx;
  uint64_t max_tx, max_rx;
  bool (*until) (const struct sim_flow *);
};

static bool
active_done (const struct sim_flow *f)
{
  for (unsigned i = 1; i < f->n_streams; i++)
    if (!f->s[i].done)
      return false;
  return true;
}

static bool
all_done (const struct sim_flow *f)
{
  return f->done_time != 0;
}

static bool
mem_watch_done (void *ctx)
{
  struct mem_watch *w = ctx;
  struct xport_stats st;
  xport_conn_stats (sim_node_conn (w->tx), &st);
  if (st.memory > w->max_tx)
    w->max_tx = st.memory;
  xport_conn_stats (sim_node_conn (w->rx), &st);
  if (st.memory > w->max_rx)
    w->max_rx = st.memory;
  return w->until (w->f) || w->f->closed;
}

static uint64_t
run_streams (unsigned n, bool stall_first, uint64_t *max_tx, uint64_t *max_rx,
             bool *ok_all)
{
  struct sim_link_params p = base_link (100000000, 40 * MS);
  struct xport_config cfg = { 0 };
  cfg.stream_window_max = 1 * MIB;
  cfg.send_buffer_max = 2 * MIB;
  struct sim_flow f;
  struct pair pr;
  flow_pair (&pr, 5, &p, &cfg, &f, n, 16 * MIB, 11);
  if (stall_first)
    f.s[0].paused = true;
  struct mem_watch w = { &f, pr.a, pr.b, 0, 0, active_done };
  sim_node_kick (pr.a);
  sim_run (pr.sim, 60 * SEC, mem_watch_done, &w);
  uint64_t t = 0;
  for (unsigned i = stall_first ? 1 : 0; i < n; i++)
    if (f.s[i].done_time - f.start_time > t)
      t = f.s[i].done_time - f.start_time;
  if (!active_done (&f))
    t = UINT64_MAX;
  *max_tx = w.max_tx;
  *max_rx = w.max_rx;
  *ok_all = true;
  if (stall_first)
    {
      printf ("stalled stream: %llu bytes read, receiver holds the rest of its window\n",
              (unsigned long long)f.s[0].read);
      /* The reader comes back: the stalled stream completes intact. */
      f.s[0].paused = false;
      sim_node_kick (pr.b);
      w.until = all_done;
      sim_run (pr.sim, sim_now (pr.sim) + 60 * SEC, mem_watch_done, &w);
      char why[200];
      *ok_all = sim_flow_verify (&f, why, sizeof why);
      if (!*ok_all)
        printf ("after resuming: %s\n", why);
    }
  sim_flow_clear (&f);
  sim_free (pr.sim);
  return t;
}

static int
test_stalled_reader (void)
{
  uint64_t tx0, rx0, tx1, rx1;
  bool ok0, ok1;
  uint64_t base = run_streams (2, false, &tx0, &rx0, &ok0);
  uint64_t with = run_streams (3, true, &tx1, &rx1, &ok1);
  printf ("two streams of 16 MiB: %.3f s alone, %.3f s beside a stalled stream\n",
          (double)base / 1e6, (double)with / 1e6);
  printf ("memory high-water: sender %.2f MiB, receiver %.2f MiB (window ceiling 1 MiB, "
          "send buffer ceiling 2 MiB per stream)\n",
          (double)tx1 / MIB, (double)rx1 / MIB);
  CHECK (base != UINT64_MAX && with != UINT64_MAX, "transfer did not complete");
  CHECK (with <= base + base / 5, "a stalled stream slowed the others: %.3f s vs %.3f s",
         (double)with / 1e6, (double)base / 1e6);
  /* Three streams, each at most its window (receiver) or send buffer
   * (sender), plus the fixed per-stream state. */
  CHECK (rx1 <= 3 * (1 * MIB + 64 * 1024 + 16 * 1024), "receiver memory %llu",
         (unsigned long long)rx1);
  CHECK (tx1 <= 3 * (2 * MIB + 256 * 1024 + 16 * 1024), "sender memory %llu",
         (unsigned long long)tx1);
  CHECK (ok1, "the stalled stream did not complete intact after its reader resumed");
  return failures ? 1 : 0;
}

/* ---- two connections share a bottleneck fairly ---- */

struct two_flows
{
  struct sim_flow f[2];
};

static double
jain (double a, double b)
{
  return (a + b) * (a + b) / (2 * (a * a + b * b));
}

static int
test_fairness (void)
{
  struct sim *sim = sim_new (99);
  struct sim_link_params fwd = base_link (100000000, 40 * MS);
  struct sim_link_params rev = base_link (0, 40 * MS);
  struct sim_link *ab = sim_link_new (sim, &fwd);
  struct sim_link *ba = sim_link_new (sim, &rev);
  struct two_flows t;
  struct xport_config ca = { .is_client = true }, cb = { .is_client = false };
  for (int i = 0; i < 2; i++)
    {
      sim_flow_init (&t.f[i], 1, 1ull << 40, 100 + i);
      t.f[i].tx = sim_node_new (sim, &ca, ab, sim_flow_app, &t.f[i]);
      t.f[i].rx = sim_node_new (sim, &cb, ba, sim_flow_app, &t.f[i]);
      sim_connect (t.f[i].tx, t.f[i].rx);
    }
  sim_node_kick (t.f[0].tx);
  sim_run (sim, 1 * SEC, NULL, NULL);
  sim_node_kick (t.f[1].tx);
  sim_run (sim, 6 * SEC, NULL, NULL);
  uint64_t b0 = t.f[0].bytes_read, b1 = t.f[1].bytes_read;
  sim_run (sim, 16 * SEC, NULL, NULL);
  double x0 = (double)(t.f[0].bytes_read - b0) * 8 / 10e6;
  double x1 = (double)(t.f[1].bytes_read - b1) * 8 / 10e6;
  double j = jain (x0, x1);
  printf ("two connections over 100 Mbit/s, 40 ms: %.1f and %.1f Mbit/s from 6 to 16 s, "
          "Jain index %.3f\n",
          x0, x1, j);
  CHECK (j >= 0.9, "Jain index %.3f", j);
  CHECK (x0 + x1 >= 85, "the two use only %.1f Mbit/s of 100", x0 + x1);
  for (int i = 0; i < 2; i++)
    sim_flow_clear (&t.f[i]);
  sim_free (sim);
  return failures ? 1 : 0;
}

/* ---- a 20 s blackout is survived ---- */

static int
test_blackout (void)
{
  struct sim_link_params p = base_link (20000000, 40 * MS);
  p.blackout_start = 2 * SEC;
  p.blackout_end = 22 * SEC;
  struct xport_config cfg = { 0 };
  struct sim_flow f;
  struct pair pr;
  flow_pair (&pr, 8, &p, &cfg, &f, 2, 8 * MIB, 3);
  sim_node_kick (pr.a);
  sim_run (pr.sim, 21 * SEC, sim_flow_done, &f);
  uint64_t during = f.bytes_read;
  sim_run (pr.sim, 23500 * MS, sim_flow_done, &f);
  uint64_t after = f.bytes_read;
  sim_run (pr.sim, 60 * SEC, sim_flow_done, &f);
  char why[200];
  bool ok = sim_flow_verify (&f, why, sizeof why);
  printf ("20 s blackout from 2 s: %.2f MiB before, +%.2f MiB by 23.5 s, done at %.2f s, "
          "longest stall %.2f s\n",
          (double)during / MIB, (double)(after - during) / MIB, (double)f.done_time / 1e6,
          (double)f.max_stall / 1e6);
  CHECK (!f.closed, "connection closed (code %llu)", (unsigned long long)f.close_code);
  CHECK (ok, "%s", why);
  CHECK (after > during, "no progress within 1.5 s after the blackout");
  /* 16 MiB at 20 Mbit/s is 6.7 s of transfer; 20 s of blackout on top. */
  CHECK (f.done_time != 0 && f.done_time < 32 * SEC, "done at %.2f s",
         (double)f.done_time / 1e6);
  sim_flow_clear (&f);
  sim_free (pr.sim);
  return failures ? 1 : 0;
}

/* ---- a tunnel's hold: streams paused for 30 s, then resumed ---- */

/* The agent's session keeps streams through an outage of up to --hold (10
 * minutes by default) and sets the connection's idle timeout beyond it:
 * with no path for 30 s, nothing is lost or duplicated, and data flows
 * again within about a second (the retransmission backoff stops at 1 s). */
static int
test_hold (void)
{
  struct sim_link_params p = base_link (20000000, 40 * MS);
  p.blackout_start = 2 * SEC;
  p.blackout_end = 32 * SEC;
  struct xport_config cfg = { .idle_timeout_us = 605 * SEC };
  struct sim_flow f;
  struct pair pr;
  flow_pair (&pr, 11, &p, &cfg, &f, 2, 8 * MIB, 5);
  sim_node_kick (pr.a);
  sim_run (pr.sim, 32 * SEC, sim_flow_done, &f);
  uint64_t during = f.bytes_read;
  uint64_t resumed = 0;
  for (uint64_t t = 32 * SEC + 50 * MS; t <= 40 * SEC && resumed == 0; t += 50 * MS)
    {
      sim_run (pr.sim, t, sim_flow_done, &f);
      if (f.bytes_read > during || f.done_time)
        resumed = t - 32 * SEC;
    }
  sim_run (pr.sim, 90 * SEC, sim_flow_done, &f);
  char why[200];
  bool ok = sim_flow_verify (&f, why, sizeof why);
  printf ("30 s without a path from 2 s: %.2f MiB before, data again %.2f s after the path "
          "came back, done at %.2f s\n",
          (double)during / MIB, (double)resumed / 1e6, (double)f.done_time / 1e6);
  CHECK (!f.closed, "connection closed (code %llu)", (unsigned long long)f.close_code);
  CHECK (ok, "%s", why);
  /* Target 1 s (the backoff's ceiling); bound 5 s. */
  CHECK (resumed != 0 && resumed <= 5 * SEC, "data again only %.2f s after the path came back",
         (double)resumed / 1e6);
  sim_flow_clear (&f);
  sim_free (pr.sim);
  return failures ? 1 : 0;
}

/* ---- an ICE restart onto a path of another round-trip time ---- */

/* The agent moves the connection to the next ICE generation's pair, whose
 * RTT may be much larger (a relay far away) or smaller (back to a direct
 * pair), and tells it (xport_conn_path_changed): the stream carries on
 * intact, and its rate follows the new path. */
static int
test_rtt_change (void)
{
  struct sim_link_params p = base_link (20000000, 10 * MS);
  struct xport_config cfg = { 0 };
  struct sim_flow f;
  struct pair pr;
  const uint64_t rtts[] = { 150 * MS, 10 * MS };
  flow_pair (&pr, 12, &p, &cfg, &f, 2, 16 * MIB, 9);
  sim_node_kick (pr.a);
  for (size_t i = 0; i < 2; i++)
    {
      sim_run (pr.sim, (2 + 2 * i) * SEC, sim_flow_done, &f);
      uint64_t before = f.bytes_read;
      struct sim_link_params q = base_link (20000000, rtts[i]);
      sim_link_set (pr.ab, &q);
      sim_link_set (pr.ba, &q);
      xport_conn_path_changed (sim_node_conn (pr.a), sim_now (pr.sim));
      xport_conn_path_changed (sim_node_conn (pr.b), sim_now (pr.sim));
      sim_node_kick (pr.a);
      sim_node_kick (pr.b);
      sim_run (pr.sim, (3 + 2 * i) * SEC, sim_flow_done, &f);
      printf ("to an RTT of %llu ms at %zu s: %.2f MiB in the next second\n",
              (unsigned long long)(rtts[i] / MS), 2 + 2 * i,
              (double)(f.bytes_read - before) / MIB);
      CHECK (f.bytes_read > before, "no progress in the second after the move to %llu ms",
             (unsigned long long)(rtts[i] / MS));
    }
  sim_run (pr.sim, 60 * SEC, sim_flow_done, &f);
  char why[200];
  bool ok = sim_flow_verify (&f, why, sizeof why);
  printf ("16 MiB done at %.2f s\n", (double)f.done_time / 1e6);
  CHECK (!f.closed, "connection closed (code %llu)", (unsigned long long)f.close_code);
  CHECK (ok, "%s", why);
  /* 16 MiB at 20 Mbit/s is 6.7 s; bound 5x. */
  CHECK (f.done_time != 0 && f.done_time < 35 * SEC, "done at %.2f s",
         (double)f.done_time / 1e6);
  sim_flow_clear (&f);
  sim_free (pr.sim);
  return failures ? 1 : 0;
}

/* ---- path MTU discovery: search, black hole, path change ---- */

static void
set_mtu (struct pair *pr, struct sim_link_params *p, size_t mtu)
{
  p->mtu = mtu;
  sim_link_set (pr->ab, p);
  sim_link_set (pr->ba, p);
}

static uint32_t
packet_size (struct sim_node *n)
{
  struct xport_stats st;
  xport_conn_stats (sim_node_conn (n), &st);
  return st.packet_size;
}

static bool
never_done (void *ctx)
{
  (void)ctx;
  return false;
}

static int
test_pmtu (void)
{
  struct sim_link_params p = base_link (20000000, 40 * MS);
  p.loss = 0.01;
  struct xport_config cfg = { 0 };
  cfg.max_packet_probe = SIM_PACKET_CEILING;
  struct sim_flow f;
  struct pair pr;
  flow_pair (&pr, 11, &p, &cfg, &f, 2, 16 * MIB, 5);
  f.datagram_interval_us = 5 * MS;
  set_mtu (&pr, &p, 1300);
  CHECK (packet_size (pr.a) == XPORT_BASE_PACKET, "starts at %u", packet_size (pr.a));
  sim_node_kick (pr.a);

  /* The search finds the path's size from both ends (the receiver probes
   * while it only acknowledges). */
  sim_run (pr.sim, 3 * SEC, sim_flow_done, &f);
  uint32_t found_a = packet_size (pr.a), found_b = packet_size (pr.b);
  CHECK (found_a <= 1300 && found_a > 1300 - XPORT_PMTU_STEP, "sender found %u of 1300",
         found_a);
  CHECK (found_b <= 1300 && found_b > 1300 - XPORT_PMTU_STEP, "receiver found %u of 1300",
         found_b);

  /* A black hole: from 3 s the path carries only 1200 bytes. */
  set_mtu (&pr, &p, 1200);
  uint64_t before = f.bytes_read;
  sim_run (pr.sim, 5 * SEC, sim_flow_done, &f);
  uint64_t during = f.bytes_read;
  sim_run (pr.sim, 8 * SEC, sim_flow_done, &f);
  uint32_t hole = packet_size (pr.a);
  CHECK (hole <= 1200 && hole > 1200 - XPORT_PMTU_STEP, "after the black hole: %u of 1200",
         hole);
  CHECK (during > before, "no progress within 2 s of the black hole");

  /* ICE moves to another path, which carries anything (a large MTU, such
   * as loopback's, which the agent reads off the route and probes for):
   * back to the base size at once, then the new ceiling. */
  set_mtu (&pr, &p, 0);
  xport_conn_set_max_packet_probe (sim_node_conn (pr.a), XPORT_MAX_PACKET);
  xport_conn_path_changed (sim_node_conn (pr.a), sim_now (pr.sim));
  uint32_t moved = packet_size (pr.a);
  CHECK (moved == XPORT_BASE_PACKET, "after the path changed: %u", moved);
  sim_run (pr.sim, 10 * SEC, sim_flow_done, &f);
  uint32_t regrown = packet_size (pr.a);
  CHECK (regrown == XPORT_MAX_PACKET, "on the new path: %u", regrown);

  sim_run (pr.sim, 60 * SEC, sim_flow_done, &f);
  char why[200];
  bool ok = sim_flow_verify (&f, why, sizeof why);
  printf ("pmtu: found %u / %u on a 1300 path; %u after it shrank to 1200 "
          "(+%.2f MiB in the 2 s after); %u after a path change, %u 2 s later; "
          "32 MiB %s at %.2f s, longest stall %.3f s, datagrams %llu/%llu\n",
          found_a, found_b, hole, (double)(during - before) / MIB, moved, regrown,
          ok ? "intact" : why, (double)f.done_time / 1e6, (double)f.max_stall / 1e6,
          (unsigned long long)f.dgram_received, (unsigned long long)f.dgram_sent);
  CHECK (ok, "%s", why);
  CHECK (!f.closed, "connection closed (code %llu)", (unsigned long long)f.close_code);
  CHECK (f.max_stall <= 2 * SEC, "stall of %.3f s", (double)f.max_stall / 1e6);
  CHECK (f.dgram_bad == 0, "%llu corrupted datagrams", (unsigned long long)f.dgram_bad);

  /* Idle from here (keepalives only): a path of 1300 again, found without
   * traffic; then the path carries anything, which the search looks for
   * again only after XPORT_PMTU_RAISE_US. */
  uint64_t t = sim_now (pr.sim);
  set_mtu (&pr, &p, 1300);
  xport_conn_set_max_packet_probe (sim_node_conn (pr.a), SIM_PACKET_CEILING);
  xport_conn_path_changed (sim_node_conn (pr.a), t);
  sim_run (pr.sim, t + 5 * SEC, never_done, NULL);
  uint32_t idle_found = packet_size (pr.a);
  set_mtu (&pr, &p, 0);
  sim_run (pr.sim, t + XPORT_PMTU_RAISE_US - SEC, never_done, NULL);
  uint32_t not_yet = packet_size (pr.a);
  sim_run (pr.sim, t + XPORT_PMTU_RAISE_US + 10 * SEC, never_done, NULL);
  uint32_t raised = packet_size (pr.a);
  printf ("pmtu, idle: found %u on a 1300 path; after it grew: %u until the raise timer, "
          "%u after it\n", idle_found, not_yet, raised);
  CHECK (idle_found <= 1300 && idle_found > 1300 - XPORT_PMTU_STEP, "idle: found %u of 1300",
         idle_found);
  CHECK (not_yet == idle_found, "the search ran again before its time (%u)", not_yet);
  CHECK (raised == SIM_PACKET_CEILING, "the raise timer found %u, not %u", raised,
         SIM_PACKET_CEILING);
  CHECK (!f.closed, "the idle connection closed (code %llu)", (unsigned long long)f.close_code);

  /* A host with jumbo frames (a ceiling of 16 KiB) on a 1500-byte path:
   * the common size, at once, and no search between it and the ceiling. */
  t = sim_now (pr.sim);
  set_mtu (&pr, &p, XPORT_COMMON_PACKET);
  xport_conn_set_max_packet_probe (sim_node_conn (pr.a), XPORT_MAX_PACKET);
  xport_conn_path_changed (sim_node_conn (pr.a), t);
  sim_run (pr.sim, t + 5 * SEC, never_done, NULL);
  uint32_t jumbo = packet_size (pr.a);
  uint64_t lost_before = sim_node_conn (pr.a)->pmtu.failures;
  sim_run (pr.sim, t + 60 * SEC, never_done, NULL);
  printf ("pmtu, jumbo host: %u after 5 s, %u after 60 s, next search in %.0f s\n", jumbo,
          packet_size (pr.a),
          (double)(xport_pmtu_next_probe (&sim_node_conn (pr.a)->pmtu) - sim_now (pr.sim)) / 1e6);
  CHECK (jumbo == XPORT_COMMON_PACKET, "a jumbo host on a 1500-byte path: %u", jumbo);
  CHECK (packet_size (pr.a) == XPORT_COMMON_PACKET, "then %u", packet_size (pr.a));
  CHECK (lost_before == 0 && xport_pmtu_next_probe (&sim_node_conn (pr.a)->pmtu)
                                 > sim_now (pr.sim) + XPORT_PMTU_RAISE_US - 60 * SEC,
         "the search went on below the ceiling");
  sim_flow_clear (&f);
  sim_free (pr.sim);
  return failures ? 1 : 0;
}

/* ---- after an idle time, the next transfer starts at the path's rate ---- */

static int
test_idle_restart (void)
{
  /* 8 MiB at 20 Mbit/s, then two minutes with keepalives only: the rate
   * model must still say 20 Mbit/s, not the rate of the keepalives. */
  struct sim_link_params p = base_link (20000000, 40 * MS);
  struct xport_config cfg = { 0 };
  struct sim_flow f;
  struct pair pr;
  flow_pair (&pr, 17, &p, &cfg, &f, 1, 8 * MIB, 4);
  sim_node_kick (pr.a);
  sim_run (pr.sim, 30 * SEC, sim_flow_done, &f);
  struct xport_stats busy, idle;
  xport_conn_stats (sim_node_conn (pr.a), &busy);
  sim_run (pr.sim, sim_now (pr.sim) + 120 * SEC, never_done, NULL);
  xport_conn_stats (sim_node_conn (pr.a), &idle);
  printf ("pacing rate after 8 MiB: %.1f Mbit/s; after 120 s idle: %.1f Mbit/s\n",
          busy.pacing_rate * 8 / 1e6, idle.pacing_rate * 8 / 1e6);
  CHECK (f.done_time != 0, "8 MiB not through");
  CHECK (idle.pacing_rate * 8 >= 10000000, "idle pacing rate %.3f Mbit/s",
         idle.pacing_rate * 8 / 1e6);
  CHECK (!f.closed, "connection closed (code %llu)", (unsigned long long)f.close_code);
  sim_flow_clear (&f);
  sim_free (pr.sim);
  return failures ? 1 : 0;
}

/* ---- a policer: loss that comes from sending too fast ---- */

static int
test_policer (void)
{
  /* A rate limit that drops what exceeds it instead of queueing it (a
   * policer: a queue of two packets), no random loss. Making up for loss
   * here would only raise the loss: the sender must stay near the rate. */
  struct sim_link_params p = base_link (20000000, 40 * MS);
  p.queue_bytes = 2 * 1500;
  struct xport_config cfg = { 0 };
  struct sim_flow f;
  struct pair pr;
  flow_pair (&pr, 13, &p, &cfg, &f, 1, 1024 * MIB, 9);
  sim_node_kick (pr.a);
  sim_run (pr.sim, 10 * SEC, never_done, NULL);
  struct xport_stats s0, s1;
  xport_conn_stats (sim_node_conn (pr.a), &s0);
  uint64_t read0 = f.bytes_read;
  sim_run (pr.sim, 30 * SEC, never_done, NULL);
  xport_conn_stats (sim_node_conn (pr.a), &s1);
  double lost = (double)(s1.packets_lost - s0.packets_lost)
                / (double)(s1.packets_sent - s0.packets_sent);
  double mbps = (double)(f.bytes_read - read0) * 8 / 20e6;
  printf ("policer at 20 Mbit/s: %.1f Mbit/s from 10 to 30 s, %.2f %% of packets lost\n",
          mbps, 100 * lost);
  CHECK (mbps >= 16, "only %.1f Mbit/s", mbps);
  CHECK (lost < 0.05, "%.2f %% of packets lost", 100 * lost);
  sim_flow_clear (&f);
  sim_free (pr.sim);
  return failures ? 1 : 0;
}

/* ---- idle timeout, close with a reason ---- */

struct closer
{
  struct sim_node *a, *b;
  int closed[2];
  uint64_t code[2], when[2];
  bool remote[2];
  char reason[2][256];
};

static void
closer_app (struct sim_node *n, void *ctx)
{
  struct closer *k = ctx;
  int i = n == k->a ? 0 : 1;
  struct xport_event ev;
  while (xport_conn_poll_event (sim_node_conn (n), &ev))
    if (ev.type == XPORT_EVENT_CLOSED)
      {
        k->closed[i]++;
        k->code[i] = ev.code;
        k->remote[i] = ev.remote;
        k->when[i] = sim_now (sim_node_sim (n));
        snprintf (k->reason[i], sizeof k->reason[i], "%s", ev.reason);
      }
}

static int
test_idle_and_close (void)
{
  /* Idle: the path dies at 1 s for good; both ends give up after 30 s. */
  struct sim_link_params p = base_link (10000000, 20 * MS);
  p.blackout_start = 1 * SEC;
  p.blackout_end = UINT64_MAX;
  struct xport_config cfg = { 0 };
  struct closer k = { 0 };
  struct pair pr;
  pair_make (&pr, 1, &p, &p, &cfg, closer_app, &k);
  k.a = pr.a;
  k.b = pr.b;
  xport_conn_ping (sim_node_conn (pr.a));
  sim_node_kick (pr.a);
  sim_run (pr.sim, 40 * SEC, NULL, NULL);
  printf ("idle: closed at %.3f s and %.3f s, code %llu (%s)\n", (double)k.when[0] / 1e6,
          (double)k.when[1] / 1e6, (unsigned long long)k.code[0], k.reason[0]);
  for (int i = 0; i < 2; i++)
    {
      CHECK (k.closed[i] == 1, "side %d: %d CLOSED events", i, k.closed[i]);
      CHECK (k.code[i] == XPORT_CLOSE_IDLE && !k.remote[i], "side %d: code %llu", i,
             (unsigned long long)k.code[i]);
      CHECK (k.when[i] >= 30 * SEC && k.when[i] <= 32 * SEC, "side %d: at %.3f s", i,
             (double)k.when[i] / 1e6);
    }
  sim_free (pr.sim);

  /* Close with a reason: the peer hears code and text at once. Keepalive
   * keeps an otherwise silent connection open past the idle timeout. */
  memset (&k, 0, sizeof k);
  p.blackout_start = p.blackout_end = 0;
  pair_make (&pr, 2, &p, &p, &cfg, closer_app, &k);
  k.a = pr.a;
  k.b = pr.b;
  xport_conn_ping (sim_node_conn (pr.a));
  sim_node_kick (pr.a);
  sim_run (pr.sim, 45 * SEC, NULL, NULL);
  CHECK (k.closed[0] == 0 && k.closed[1] == 0, "a silent connection closed after 45 s");
  xport_conn_close (sim_node_conn (pr.b), XPORT_CLOSE_APP + 44, "service shutting down");
  sim_node_kick (pr.b);
  sim_run (pr.sim, 46 * SEC, NULL, NULL);
  printf ("close: the peer heard code %llu \"%s\" after %.1f ms\n",
          (unsigned long long)k.code[0], k.reason[0],
          (double)(k.when[0] - 45 * SEC) / 1e3);
  CHECK (k.closed[0] == 1 && k.remote[0] && k.code[0] == XPORT_CLOSE_APP + 44
             && strcmp (k.reason[0], "service shutting down") == 0,
         "peer saw close %d remote %d code %llu \"%s\"", k.closed[0], k.remote[0],
         (unsigned long long)k.code[0], k.reason[0]);
  CHECK (k.closed[1] == 1 && !k.remote[1], "closing side saw %d events", k.closed[1]);
  sim_free (pr.sim);
  return failures ? 1 : 0;
}

/* ---- reset, stop-sending, stream limits, state freed ---- */

struct resetter
{
  struct sim_node *a, *b;
  uint64_t s_reset, s_stop;
  int phase;
  ssize_t b_read_result;
  uint64_t b_code;
  ssize_t a_write_result;
  uint64_t b_bytes;
};

static void
resetter_app (struct sim_node *n, void *ctx)
{
  struct resetter *r = ctx;
  struct xport_conn *c = sim_node_conn (n);
  struct xport_event ev;
  uint8_t buf[65536];
  while (xport_conn_poll_event (c, &ev))
    {
      if (n == r->b && ev.type == XPORT_EVENT_READABLE && ev.stream_id == r->s_reset)
        {
          ssize_t k;
          bool fin;
          uint64_t code = 0;
          while ((k = xport_stream_read (c, ev.stream_id, buf, sizeof buf, &fin, &code))
                 > 0)
            r->b_bytes += (uint64_t)k;
          if (k == XPORT_ERR_RESET)
            {
              r->b_read_result = k;
              r->b_code = code;
              xport_stream_release (c, ev.stream_id);
            }
        }
      if (n == r->b && ev.type == XPORT_EVENT_STREAM_OPENED && ev.stream_id == r->s_stop)
        {
          xport_stream_stop (c, ev.stream_id, 9);
          xport_stream_release (c, ev.stream_id);
        }
      if (n == r->a && ev.type == XPORT_EVENT_WRITABLE && ev.stream_id == r->s_stop)
        {
          r->a_write_result = xport_stream_write (c, r->s_stop, buf, 10);
          if (r->a_write_result == XPORT_ERR_RESET)
            xport_stream_release (c, r->s_stop);
        }
    }
}

static int
test_reset (void)
{
  struct sim_link_params p = base_link (50000000, 30 * MS);
  p.loss = 0.01;
  struct xport_config cfg = { 0 };
  struct resetter r = { 0 };
  struct pair pr;
  pair_make (&pr, 3, &p, &p, &cfg, resetter_app, &r);
  r.a = pr.a;
  r.b = pr.b;
  struct xport_conn *a = sim_node_conn (pr.a), *b = sim_node_conn (pr.b);
  uint8_t data[200000];
  memset (data, 'x', sizeof data);

  CHECK (xport_stream_open (a, &r.s_reset) == XPORT_OK, "open");
  CHECK (xport_stream_open (a, &r.s_stop) == XPORT_OK, "open");
  CHECK (r.s_reset == 1 && r.s_stop == 3, "client ids %llu %llu",
         (unsigned long long)r.s_reset, (unsigned long long)r.s_stop);
  ssize_t w = xport_stream_write (a, r.s_reset, data, sizeof data);
  CHECK (w > 0, "write %zd", w);
  CHECK (xport_stream_write (a, r.s_stop, data, 1000) == 1000, "write");
  sim_node_kick (pr.a);
  sim_run (pr.sim, 15 * MS, NULL, NULL);
  xport_stream_reset (a, r.s_reset, 7);
  xport_stream_release (a, r.s_reset);
  sim_node_kick (pr.a);
  sim_run (pr.sim, 3 * SEC, NULL, NULL);
  printf (
      "reset: the reader got %llu bytes, then result %zd code %llu; stop-sending: the "
      "writer got %zd\n",
      (unsigned long long)r.b_bytes, r.b_read_result, (unsigned long long)r.b_code,
      r.a_write_result);
  CHECK (r.b_read_result == XPORT_ERR_RESET && r.b_code == 7, "reader saw %zd code %llu",
         r.b_read_result, (unsigned long long)r.b_code);
  CHECK (r.a_write_result == XPORT_ERR_RESET, "writer saw %zd", r.a_write_result);
  struct xport_stats sa, sb;
  xport_conn_stats (a, &sa);
  xport_conn_stats (b, &sb);
  CHECK (sa.streams == 0 && sb.streams == 0, "stream state left: %u and %u", sa.streams,
         sb.streams);

  /* Stream limits: the peer allows 128 at once by default. */
  uint64_t id;
  int n = 0, rc;
  while ((rc = xport_stream_open (a, &id)) == XPORT_OK && n < 1000)
    {
      xport_stream_write (a, id, data, 1);
      n++;
    }
  sim_node_kick (pr.a);
  sim_run (pr.sim, 4 * SEC, NULL, NULL);
  /* 16 allowed before the peer's MAX_STREAMS arrived, the first two are gone. */
  printf ("stream limit: %d streams opened before %d\n", n, rc);
  CHECK (rc == XPORT_ERR_STREAM_LIMIT && n >= 14 && n <= 128, "opened %d, rc %d", n, rc);
  while ((rc = xport_stream_open (a, &id)) == XPORT_OK && n < 1000)
    n++;
  CHECK (rc == XPORT_ERR_STREAM_LIMIT && n == 128, "opened %d in all, rc %d", n, rc);
  xport_conn_stats (b, &sb);
  CHECK (sb.streams <= 128, "peer holds %u streams", sb.streams);
  sim_free (pr.sim);
  return failures ? 1 : 0;
}

/* ---- the byte strings of PROTOCOL.md section 6 ---- */

static bool
hex_eq (const uint8_t *b, size_t n, const char *hex)
{
  char s[512] = "";
  for (size_t i = 0; i < n; i++)
    snprintf (s + strlen (s), sizeof s - strlen (s), i ? " %02x" : "%02x", b[i]);
  if (strcmp (s, hex) != 0)
    {
      printf ("got      %s\nexpected %s\n", s, hex);
      return false;
    }
  return true;
}

static int
test_wire (void)
{
  uint8_t b[256];
  size_t off = 0;
  struct xport_ack_range r[2] = { { 95, 100 }, { 80, 90 } };

  CHECK (xport_packet_put_header (b, sizeof b, &off, 5), "header");
  CHECK (xport_frame_put_stream_header (b, sizeof b, &off, 1, 0, 3, true), "stream");
  memcpy (b + off, "abc", 3);
  off += 3;
  CHECK (hex_eq (b, off, "02 05 09 01 00 03 61 62 63"), "STREAM frame");

  off = 0;
  xport_packet_put_header (b, sizeof b, &off, 300);
  CHECK (xport_frame_put_ack (b, sizeof b, &off, 2000, r, 2), "ack");
  CHECK (hex_eq (b, off, "02 41 2c 02 40 64 47 d0 01 05 03 0a"), "ACK frame");

  off = 0;
  xport_packet_put_header (b, sizeof b, &off, 0);
  xport_frame_put_close (b, sizeof b, &off, 256, "bye");
  CHECK (hex_eq (b, off, "02 00 1c 41 00 03 62 79 65"), "CLOSE frame");

  /* The parser reads back what the builders wrote, and refuses the rest. */
  struct xport_frame *f = calloc (1, sizeof *f);
  uint64_t pn;
  size_t start;
  off = 0;
  xport_packet_put_header (b, sizeof b, &off, 300);
  xport_frame_put_ack (b, sizeof b, &off, 2000, r, 2);
  CHECK (xport_packet_parse_header (b, off, &pn, &start) == XPORT_WIRE_OK && pn == 300,
         "parse header");
  size_t end = off;
  off = start;
  CHECK (xport_frame_parse (b, end, &off, f) == XPORT_WIRE_OK && f->n_ranges == 2
             && f->ranges[0].largest == 100 && f->ranges[0].smallest == 95
             && f->ranges[1].largest == 90 && f->ranges[1].smallest == 80
             && f->ack_delay_us == 2000,
         "parse ACK");
  static const uint8_t bad_ack[] = { 0x02, 0x00, 0x02, 0x05, 0x00, 0x00, 0x06 };
  off = 2;
  CHECK (xport_frame_parse (bad_ack, sizeof bad_ack, &off, f) == XPORT_WIRE_INVALID,
         "ACK range below 0");
  static const uint8_t bad_ver[] = { 0x01, 0x00, 0x01 };
  CHECK (xport_packet_parse_header (bad_ver, sizeof bad_ver, &pn, &start)
             == XPORT_WIRE_INVALID,
         "version 1 is a tunnel frame, not a transport packet");
  static const uint8_t long_stream[] = { 0x08, 0x01, 0x00, 0x05, 'a', 'b' };
  off = 0;
  CHECK (xport_frame_parse (long_stream, sizeof long_stream, &off, f)
             == XPORT_WIRE_INVALID,
         "STREAM length past the packet");
  free (f);
  if (failures == 0)
    printf ("wire: byte strings of PROTOCOL.md section 6 match\n");
  return failures ? 1 : 0;
}

int
main (int argc, char **argv)
{
  if (argc < 2)
    {
      fprintf (stderr,
               "usage: %s integrity PROFILE | stalled-reader | fairness | blackout | "
               "idle-close | reset | wire | pmtu | policer | idle-restart | hold | rtt-change\n",
               argv[0]);
      return 2;
    }
  const char *t = argv[1];
  if (strcmp (t, "integrity") == 0 && argc == 3)
    return test_integrity (argv[2]);
  if (strcmp (t, "stalled-reader") == 0)
    return test_stalled_reader ();
  if (strcmp (t, "fairness") == 0)
    return test_fairness ();
  if (strcmp (t, "blackout") == 0)
    return test_blackout ();
  if (strcmp (t, "idle-close") == 0)
    return test_idle_and_close ();
  if (strcmp (t, "reset") == 0)
    return test_reset ();
  if (strcmp (t, "wire") == 0)
    return test_wire ();
  if (strcmp (t, "pmtu") == 0)
    return test_pmtu ();
  if (strcmp (t, "policer") == 0)
    return test_policer ();
  if (strcmp (t, "idle-restart") == 0)
    return test_idle_restart ();
  if (strcmp (t, "hold") == 0)
    return test_hold ();
  if (strcmp (t, "rtt-change") == 0)
    return test_rtt_change ();
  fprintf (stderr, "%s: unknown test %s\n", argv[0], t);
  return 2;
}
