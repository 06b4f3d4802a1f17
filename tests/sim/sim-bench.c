/* Benchmark of the tunnel transport in the link simulator (not a test).
 *
 *   sim-bench [--cc bbr|newreno] [--seconds N] [--no-ptcp] [--one-way]
 *
 * For a 100 Mbit/s link with a drop-tail queue of one bandwidth-delay
 * product, RTT 20/50/100 ms x random loss 0, 0.1, 1, 3 % and a burst-loss
 * profile (Gilbert-Elliott), with the transport configured as the agent runs
 * it (its windows, path MTU discovery up to the 1435-byte packets of a
 * 1500-byte IPv4 path under DTLS with AES-GCM), it prints: goodput (bytes the
 * receiving application read) over the whole run and after a 5 s warm-up, as
 * Mbit/s and as a fraction of the link, the longest stall (the longest time
 * the receiving application got no new byte), and the Jain fairness index of
 * two connections sharing the link; and beside it the goodput of libnice's
 * pseudo-TCP (the agent's first reliable layer, 256 KiB buffers as the agent
 * sets them) on the same link. Loss applies in both directions (data and
 * acknowledgements) unless --one-way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nice/pseudotcp.h>

#include "sim.h"
#include "xport.h"

#define MS 1000ull
#define SEC 1000000ull
#define LINK_BPS 100000000ull
#define WARMUP (5 * SEC)
/* What the agent's probes find on a 1500-byte IPv4 path (1472 bytes of UDP
 * payload less 37 of DTLS record). */
#define AGENT_PACKET_PROBE 1435

static enum xport_cc_algo opt_cc = XPORT_CC_BBR;
static uint64_t opt_seconds = 30;
static bool opt_ptcp = true;
static bool opt_one_way = false;
static uint64_t opt_rtt_ms = 0; /* 0: every RTT */
static bool opt_verbose = false;

struct prof
{
  const char *name;
  double loss;
  bool burst;
};

static struct sim_link_params
link_params (uint64_t rtt, const struct prof *pr, bool fwd)
{
  struct sim_link_params p = { 0 };
  p.delay_us = rtt / 2;
  p.rate_bps = fwd ? LINK_BPS : 0;
  p.queue_bytes = LINK_BPS / 8 * rtt / SEC;
  if (p.queue_bytes < 64 * 1024)
    p.queue_bytes = 64 * 1024;
  if (!fwd && opt_one_way)
    return p;
  p.loss = pr->loss;
  if (pr->burst)
    {
      /* Bursts of 4 packets on average, 1 % of the packets overall. */
      p.ge_p = 0.0025;
      p.ge_r = 0.25;
      p.ge_loss_bad = 1.0;
    }
  return p;
}

struct result
{
  double total, steady, stall, jain;
};

static void
run_xport (uint64_t rtt, const struct prof *pr, uint64_t seed, struct result *r)
{
  struct sim *sim = sim_new (seed);
  struct sim_link_params fp = link_params (rtt, pr, true),
                         rp = link_params (rtt, pr, false);
  struct sim_link *ab = sim_link_new (sim, &fp), *ba = sim_link_new (sim, &rp);
  struct xport_config ca = {
    .is_client = true,
    .cc = opt_cc,
    .stream_window_max = XPORT_TUNNEL_STREAM_WINDOW,
    .conn_window_max = XPORT_TUNNEL_CONN_WINDOW,
    .send_buffer_max = XPORT_TUNNEL_SEND_BUFFER,
    .max_packet_probe = AGENT_PACKET_PROBE,
  };
  struct xport_config cb = ca;
  cb.is_client = false;
  struct sim_flow f;
  uint64_t end = opt_seconds * SEC;

  sim_flow_init (&f, 1, 1ull << 50, seed);
  f.tx = sim_node_new (sim, &ca, ab, sim_flow_app, &f);
  f.rx = sim_node_new (sim, &cb, ba, sim_flow_app, &f);
  sim_connect (f.tx, f.rx);
  sim_node_kick (f.tx);
  sim_run (sim, WARMUP, NULL, NULL);
  uint64_t at_warm = f.bytes_read;
  sim_run (sim, end, NULL, NULL);
  /* A stall still going on at the end counts too. */
  if (end - f.last_progress > f.max_stall)
    f.max_stall = end - f.last_progress;
  if (opt_verbose)
    {
      struct xport_stats st;
      xport_conn_stats (sim_node_conn (f.tx), &st);
      fprintf (
          stderr,
          "  sent %llu pkts, lost %llu, stream bytes sent %llu (read %llu), cwnd %llu, "
          "pacing %.1f Mbit/s, srtt %.1f ms, min %.1f ms, link drops %llu\n",
          (unsigned long long)st.packets_sent, (unsigned long long)st.packets_lost,
          (unsigned long long)st.stream_bytes_sent, (unsigned long long)f.bytes_read,
          (unsigned long long)st.cwnd, st.pacing_rate * 8 / 1e6, st.srtt_us / 1e3,
          st.min_rtt_us / 1e3, (unsigned long long)sim_link_dropped (ab));
    }
  r->total = (double)f.bytes_read * 8 / ((double)end / 1e6) / 1e6;
  r->steady = (double)(f.bytes_read - at_warm) * 8 / ((double)(end - WARMUP) / 1e6) / 1e6;
  r->stall = (double)f.max_stall / 1e6;
  sim_flow_clear (&f);
  sim_free (sim);

  /* Two connections on the same link, the second 1 s later. */
  sim = sim_new (seed + 1);
  ab = sim_link_new (sim, &fp);
  ba = sim_link_new (sim, &rp);
  struct sim_flow g[2];
  for (int i = 0; i < 2; i++)
    {
      sim_flow_init (&g[i], 1, 1ull << 50, seed + 10 + i);
      g[i].tx = sim_node_new (sim, &ca, ab, sim_flow_app, &g[i]);
      g[i].rx = sim_node_new (sim, &cb, ba, sim_flow_app, &g[i]);
      sim_connect (g[i].tx, g[i].rx);
    }
  sim_node_kick (g[0].tx);
  sim_run (sim, 1 * SEC, NULL, NULL);
  sim_node_kick (g[1].tx);
  sim_run (sim, WARMUP, NULL, NULL);
  uint64_t b0 = g[0].bytes_read, b1 = g[1].bytes_read;
  sim_run (sim, end, NULL, NULL);
  double x0 = (double)(g[0].bytes_read - b0), x1 = (double)(g[1].bytes_read - b1);
  r->jain = x0 + x1 > 0 ? (x0 + x1) * (x0 + x1) / (2 * (x0 * x0 + x1 * x1)) : 0;
  for (int i = 0; i < 2; i++)
    sim_flow_clear (&g[i]);
  sim_free (sim);
}

/* ---- libnice pseudo-TCP in the same simulator ---- */

/* The agent's tunnel frame header rides on every segment. */
#define PTCP_FRAME_OVERHEAD 6
#define PTCP_BUFFER (256 * 1024)

struct ptcp_ep
{
  PseudoTcpSocket *sock;
  struct sim_node *node;
  uint64_t now;
  bool sender;
  uint64_t bytes_read, last_progress, max_stall;
};

/* pseudo-TCP reads its clock from g_get_monotonic_time() (its own setter,
 * pseudo_tcp_socket_set_time(), is not exported by Debian's libnice): this
 * program defines that function, and libnice's calls bind to it, so that
 * pseudo-TCP runs on simulated time like the rest. Nothing else here uses
 * GLib's clock. */
static uint64_t bench_clock_us;

gint64
g_get_monotonic_time (void)
{
  return (gint64)bench_clock_us + 1000000;
}

static void
ptcp_clock (struct ptcp_ep *e, uint64_t now)
{
  e->now = now;
  bench_clock_us = now;
}

static PseudoTcpWriteResult
ptcp_write (PseudoTcpSocket *sock, const gchar *buf, guint32 len, gpointer data)
{
  struct ptcp_ep *e = data;
  uint8_t pkt[2048];
  if (len + PTCP_FRAME_OVERHEAD > XPORT_BASE_PACKET)
    return WR_TOO_LARGE;
  memset (pkt, 0, PTCP_FRAME_OVERHEAD);
  memcpy (pkt + PTCP_FRAME_OVERHEAD, buf, len);
  sim_node_transmit (e->node, pkt, len + PTCP_FRAME_OVERHEAD);
  return WR_SUCCESS;
}

static void
ptcp_noop (PseudoTcpSocket *sock, gpointer data)
{
}

static void
ptcp_closed (PseudoTcpSocket *sock, guint32 err, gpointer data)
{
}

static void
pt_receive (void *impl, uint64_t now, const uint8_t *buf, size_t len)
{
  struct ptcp_ep *e = impl;
  if (len <= PTCP_FRAME_OVERHEAD)
    return;
  ptcp_clock (e, now);
  pseudo_tcp_socket_notify_packet (e->sock, (const gchar *)buf + PTCP_FRAME_OVERHEAD,
                                   (guint32)(len - PTCP_FRAME_OVERHEAD));
}

static uint64_t
pt_timeout (void *impl)
{
  struct ptcp_ep *e = impl;
  guint64 ms = 0;
  if (!pseudo_tcp_socket_get_next_clock (e->sock, &ms))
    return UINT64_MAX;
  /* Milliseconds of our clock, which is 1 s ahead of simulated time. */
  return ms >= 1000 ? (ms - 1000) * 1000 : 0;
}

static void
pt_on_timeout (void *impl, uint64_t now)
{
  struct ptcp_ep *e = impl;
  ptcp_clock (e, now);
  pseudo_tcp_socket_notify_clock (e->sock);
}

static const struct sim_endpoint_ops ptcp_ops
    = { pt_receive, NULL, pt_timeout, pt_on_timeout };

static void
ptcp_app (struct sim_node *n, void *ctx)
{
  struct ptcp_ep *e = sim_node_impl (n);
  static char buf[65536];
  ptcp_clock (e, sim_now (sim_node_sim (n)));
  if (e->sender)
    {
      while (pseudo_tcp_socket_send (e->sock, buf, sizeof buf) > 0)
        ;
      return;
    }
  gint k;
  while ((k = pseudo_tcp_socket_recv (e->sock, buf, sizeof buf)) > 0)
    {
      if (e->now - e->last_progress > e->max_stall)
        e->max_stall = e->now - e->last_progress;
      e->last_progress = e->now;
      e->bytes_read += (uint64_t)k;
    }
}

static double
run_ptcp (uint64_t rtt, const struct prof *pr, uint64_t seed)
{
  struct sim *sim = sim_new (seed);
  struct sim_link_params fp = link_params (rtt, pr, true),
                         rp = link_params (rtt, pr, false);
  struct sim_link *ab = sim_link_new (sim, &fp), *ba = sim_link_new (sim, &rp);
  struct ptcp_ep e[2] = { 0 };
  struct sim_node *n[2];
  for (int i = 0; i < 2; i++)
    {
      PseudoTcpCallbacks cbs
          = { &e[i], ptcp_noop, ptcp_noop, ptcp_noop, ptcp_closed, ptcp_write };
      e[i].sock = pseudo_tcp_socket_new (1, &cbs);
      e[i].sender = i == 0;
      g_object_set (e[i].sock, "rcv-buf", PTCP_BUFFER, "snd-buf", PTCP_BUFFER, "no-delay",
                    TRUE, "ack-delay", 0, NULL);
      /* As the agent does: segments fill a 1163-byte frame. */
      pseudo_tcp_socket_notify_mtu (e[i].sock,
                                    XPORT_BASE_PACKET - PTCP_FRAME_OVERHEAD + 92);
      n[i]
          = sim_node_new_custom (sim, &ptcp_ops, &e[i], i == 0 ? ab : ba, ptcp_app, NULL);
      e[i].node = n[i];
    }
  sim_connect (n[0], n[1]);
  ptcp_clock (&e[0], 0);
  ptcp_clock (&e[1], 0);
  pseudo_tcp_socket_connect (e[0].sock);
  sim_node_kick (n[0]);
  sim_node_kick (n[1]);
  uint64_t end = opt_seconds * SEC;
  sim_run (sim, end, NULL, NULL);
  double mbit = (double)e[1].bytes_read * 8 / ((double)end / 1e6) / 1e6;
  sim_free (sim);
  for (int i = 0; i < 2; i++)
    g_object_unref (e[i].sock);
  return mbit;
}

int
main (int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--cc") == 0 && i + 1 < argc)
        {
          i++;
          if (strcmp (argv[i], "newreno") == 0)
            opt_cc = XPORT_CC_RENO;
          else if (strcmp (argv[i], "bbr") != 0)
            {
              fprintf (stderr, "sim-bench: unknown controller %s\n", argv[i]);
              return 2;
            }
        }
      else if (strcmp (argv[i], "--seconds") == 0 && i + 1 < argc)
        {
          char *e;
          unsigned long v = strtoul (argv[++i], &e, 10);
          if (*e != '\0' || v < 10 || v > 600)
            {
              fprintf (stderr, "sim-bench: --seconds takes 10 to 600\n");
              return 2;
            }
          opt_seconds = v;
        }
      else if (strcmp (argv[i], "--rtt") == 0 && i + 1 < argc)
        opt_rtt_ms = strtoull (argv[++i], NULL, 10);
      else if (strcmp (argv[i], "--verbose") == 0)
        opt_verbose = true;
      else if (strcmp (argv[i], "--no-ptcp") == 0)
        opt_ptcp = false;
      else if (strcmp (argv[i], "--one-way") == 0)
        opt_one_way = true;
      else
        {
          fprintf (stderr,
                   "usage: %s [--cc bbr|newreno] [--seconds N] [--no-ptcp] "
                   "[--one-way] [--rtt MS] [--verbose]\n",
                   argv[0]);
          return 2;
        }
    }

  static const struct prof profs[] = {
    { "0 %", 0, false },    { "0.1 %", 0.001, false }, { "1 %", 0.01, false },
    { "3 %", 0.03, false }, { "burst 1 %", 0, true },
  };
  static const uint64_t rtts[] = { 20 * MS, 50 * MS, 100 * MS };

  printf ("link 100 Mbit/s, drop-tail queue 1 BDP, %llu s per run, controller %s, "
          "loss %s\n\n",
          (unsigned long long)opt_seconds, xport_cc_name (opt_cc),
          opt_one_way ? "on data only" : "both directions");
  printf ("| RTT | loss | xport Mbit/s (all) | after 5 s | of link | longest stall | "
          "Jain (2 conns) | pseudo-TCP Mbit/s |\n");
  printf ("|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < sizeof rtts / sizeof rtts[0]; i++)
    for (size_t j = 0; j < sizeof profs / sizeof profs[0]; j++)
      {
        /* The seed depends on the row only, so that --rtt repeats a row. */
        uint64_t seed = 1 + 7 * (i * (sizeof profs / sizeof profs[0]) + j);
        if (opt_rtt_ms != 0 && rtts[i] != opt_rtt_ms * MS)
          continue;
        struct result r;
        run_xport (rtts[i], &profs[j], seed, &r);
        char pt[32] = "-";
        if (opt_ptcp)
          snprintf (pt, sizeof pt, "%.1f", run_ptcp (rtts[i], &profs[j], seed));
        printf ("| %llu ms | %s | %.1f | %.1f | %.0f %% | %.3f s | %.3f | %s |\n",
                (unsigned long long)(rtts[i] / MS), profs[j].name, r.total, r.steady,
                r.steady / (LINK_BPS / 1e6) * 100, r.stall, r.jain, pt);
        fflush (stdout);
      }
  return 0;
}
