/* A BBR-like model-based congestion controller (after Cardwell et al.,
 * "BBR: Congestion-Based Congestion Control", and draft-cardwell-iccrg-bbr-
 * congestion-control-00, i.e. BBR version 1): the bottleneck bandwidth is the
 * windowed maximum of delivery-rate samples over 10 round trips, the
 * propagation delay is the minimum RTT over 10 s; the sender paces at
 * gain x bandwidth, cycling the gain to probe for more, and caps what is in
 * flight at twice the bandwidth-delay product. Random loss does not enter
 * the model, which is why it keeps the link full at a few percent of loss
 * where a loss-based controller collapses (Mathis et al.).
 *
 * One addition, a queue guard in the manner of TCP Vegas: BBR v1 flows that
 * share a bottleneck over-estimate its bandwidth together, fill the queue
 * and then each stays at whatever share its window gives it (measured here:
 * Jain index 0.8). Once per round the guard estimates how much of the queue
 * this flow holds (delivered per round x queueing delay / RTT) and steers
 * its window so that it holds XPORT_BBR_QUEUE_TARGET packets: every flow
 * holding the same queue means every flow getting the same rate (the Vegas
 * equilibrium), and loss plays no part in it.
 *
 * A second addition makes up for random loss. Packets lost on the way to
 * the bottleneck (a radio link before it) never reach it: a sender pacing
 * at the bottleneck's rate then leaves a fraction p of it idle, and BBR v1
 * loses p of the link at a loss rate of p (measured: 95 % of the lossless
 * rate at 3 %). Loss after the bottleneck lowers the measured bandwidth by
 * the same fraction. Either way, pacing at bandwidth / (1 - p) fills the
 * bottleneck exactly. p must be the loss that does not come from sending
 * too fast, or making up for it would feed itself (a policer drops more
 * the faster one sends; measured: 16 % lost behind a 20 Mbit/s policer).
 * So p is sampled only from packets sent in the draining phase of the
 * gain cycle, paced at 3/4 of the bandwidth: neither a queue nor a policer
 * drops those. A sample whose least RTT shows a standing queue (another
 * flow's) counts as no random loss; p is smoothed over samples. */
#include "xport_cc.h"

#include <string.h>

enum
{
  BBR_STARTUP,
  BBR_DRAIN,
  BBR_PROBE_BW,
  BBR_PROBE_RTT,
};

#define BBR_HIGH_GAIN 2.885 /* 2 / ln 2: doubles the rate each round */
#define BBR_BW_ROUNDS 10
#define BBR_MIN_RTT_WINDOW_US 10000000
#define BBR_PROBE_RTT_US 200000
/* A floor under the window: on a path whose round trip is mostly the
 * endpoints' own scheduling (loopback, a LAN), the model's BDP is a few
 * packets and the window would starve the pipe (loopback, 256 MiB: 4
 * packets gave 390-720 Mbit/s, 32 gave 1.3-1.6 Gbit/s); the simulator's
 * 100 Mbit/s table is unchanged. */
#define BBR_MIN_CWND_PACKETS 32
#define BBR_CYCLE_LEN 8
#define BBR_CYCLE_DRAIN 1 /* the phase with a gain below 1 */
#define XPORT_BBR_QUEUE_TARGET 16 /* packets */
/* Random loss: the smoothing per sample, the most made up for, the least
 * sample (packets), and the RTT above the minimum that means a standing
 * queue (a quarter, and 2 ms). */
#define BBR_LOSS_GAIN 0.25
#define BBR_LOSS_SAMPLE_PACKETS 32
#define BBR_LOSS_MAX 0.15
#define BBR_QUEUE_RTT(min_rtt) ((min_rtt) + (min_rtt) / 4 + 2000)
static const double bbr_cycle_gain[BBR_CYCLE_LEN] = { 1.25, 0.75, 1, 1, 1, 1, 1, 1 };

static uint64_t
bbr_max_bw (const struct xport_cc_bbr *b)
{
  uint64_t m = 0;
  for (unsigned i = 0; i < BBR_BW_ROUNDS; i++)
    if (b->bw_rounds[i] > m)
      m = b->bw_rounds[i];
  return m;
}

static uint64_t
bbr_bdp (const struct xport_cc_bbr *b, double gain)
{
  uint64_t bw = bbr_max_bw (b);
  if (bw == 0 || b->min_rtt == UINT64_MAX)
    return 0;
  return (uint64_t)((double)bw * (double)b->min_rtt / 1e6 * gain);
}

void
xport_bbr_init (struct xport_cc *cc, uint64_t now)
{
  struct xport_cc_bbr *b = &cc->u.bbr;
  memset (b, 0, sizeof *b);
  b->mode = BBR_STARTUP;
  b->min_rtt = UINT64_MAX;
  b->min_rtt_stamp = now;
  b->pacing_gain = BBR_HIGH_GAIN;
  b->cwnd_gain = BBR_HIGH_GAIN;
  b->round_min_rtt = UINT64_MAX;
  b->guard_cwnd = UINT64_MAX;
  b->sample_start = b->sample_end = UINT64_MAX; /* none before the first cycle */
  b->sample_min_rtt = UINT64_MAX;
  /* No RTT yet: assume 100 ms for the first flight's rate. */
  cc->pacing_rate = (uint64_t)(BBR_HIGH_GAIN * (double)cc->cwnd * 10);
}

/* A draining phase begins: the last sample, if large enough, goes into the
 * estimate, and packets sent from now on are the next one. */
static void
bbr_loss_sample_start (struct xport_cc *cc, uint64_t now)
{
  struct xport_cc_bbr *b = &cc->u.bbr;
  uint64_t total = b->sample_acked + b->sample_lost;
  if (total >= BBR_LOSS_SAMPLE_PACKETS * cc->mss && b->min_rtt != UINT64_MAX)
    {
      double r = (double)b->sample_lost / (double)total;
      if (b->sample_min_rtt > BBR_QUEUE_RTT (b->min_rtt))
        r = 0; /* a standing queue: not ours to make up for */
      b->random_loss += BBR_LOSS_GAIN * (r - b->random_loss);
      b->sample_acked = b->sample_lost = 0;
      b->sample_min_rtt = UINT64_MAX;
    }
  /* A small sample carries over into the next. */
  b->sample_start = now;
  b->sample_end = UINT64_MAX;
}

static void
bbr_set_cycle (struct xport_cc *cc, unsigned index, uint64_t now)
{
  struct xport_cc_bbr *b = &cc->u.bbr;
  if (b->cycle_index == BBR_CYCLE_DRAIN && b->sample_end == UINT64_MAX)
    b->sample_end = now;
  b->cycle_index = index;
  b->cycle_stamp = now;
  b->pacing_gain = bbr_cycle_gain[index];
  if (index == BBR_CYCLE_DRAIN)
    bbr_loss_sample_start (cc, now);
}

static bool
bbr_in_sample (const struct xport_cc_bbr *b, uint64_t sent_time)
{
  return sent_time >= b->sample_start && sent_time < b->sample_end;
}

static void
bbr_enter_probe_bw (struct xport_cc *cc, uint64_t now)
{
  struct xport_cc_bbr *b = &cc->u.bbr;
  b->mode = BBR_PROBE_BW;
  b->cwnd_gain = 2;
  /* Start anywhere but the draining phase; the clock decorrelates flows. */
  unsigned index = (unsigned)(2 + (now / 1000) % (BBR_CYCLE_LEN - 1)) % BBR_CYCLE_LEN;
  if (index == BBR_CYCLE_DRAIN)
    index = BBR_CYCLE_DRAIN + 1;
  b->cycle_index = 0; /* not draining: no sample ends here */
  bbr_set_cycle (cc, index, now);
}

static void
bbr_update_cycle (struct xport_cc *cc, const struct xport_cc_ack *a)
{
  struct xport_cc_bbr *b = &cc->u.bbr;
  uint64_t elapsed = a->now - b->cycle_stamp;
  bool next = elapsed > b->min_rtt;
  /* The draining phase ends early once the queue it made is gone. */
  if (b->pacing_gain < 1 && a->bytes_in_flight <= bbr_bdp (b, 1))
    next = true;
  /* The probing phase lasts until it filled the pipe to 1.25 BDP. */
  if (b->pacing_gain > 1 && a->bytes_in_flight < bbr_bdp (b, b->pacing_gain)
      && elapsed <= 2 * b->min_rtt)
    next = false;
  if (next)
    bbr_set_cycle (cc, (b->cycle_index + 1) % BBR_CYCLE_LEN, a->now);
}

/* The queue guard, once per round. */
static void
bbr_guard_round (struct xport_cc *cc, const struct xport_cc_ack *a)
{
  struct xport_cc_bbr *b = &cc->u.bbr;
  uint64_t rtt = b->round_min_rtt, delivered = a->delivered - b->round_delivered;
  b->round_min_rtt = UINT64_MAX;
  b->round_delivered = a->delivered;
  if (b->mode != BBR_PROBE_BW || rtt == UINT64_MAX || b->min_rtt == UINT64_MAX
      || rtt < b->min_rtt)
    return;
  if (b->guard_cwnd == UINT64_MAX)
    b->guard_cwnd = cc->cwnd;
  /* This flow's bytes in the queue: its rate times the queueing delay. */
  double queued = (double)delivered * (double)(rtt - b->min_rtt) / (double)rtt;
  double step = ((double)(XPORT_BBR_QUEUE_TARGET * cc->mss) - queued) / 2;
  double w = (double)b->guard_cwnd + step;
  /* Room to grow quickly when the queue is empty. */
  if (queued < XPORT_BBR_QUEUE_TARGET * cc->mss / 2)
    w += (double)b->guard_cwnd / 8;
  double lo = (double)(BBR_MIN_CWND_PACKETS * cc->mss);
  double hi = (double)(bbr_bdp (b, b->cwnd_gain) + 3 * cc->mss);
  if (w < lo)
    w = lo;
  if (w > hi)
    w = hi;
  b->guard_cwnd = (uint64_t)w;
}

void
xport_bbr_on_ack (struct xport_cc *cc, const struct xport_cc_ack *a)
{
  struct xport_cc_bbr *b = &cc->u.bbr;
  bool round_start = false;

  if (a->latest_rtt > 0 && a->latest_rtt < b->round_min_rtt)
    b->round_min_rtt = a->latest_rtt;
  if (bbr_in_sample (b, a->largest_acked_sent_time))
    {
      b->sample_acked += a->acked_bytes;
      if (a->latest_rtt > 0 && a->latest_rtt < b->sample_min_rtt)
        b->sample_min_rtt = a->latest_rtt;
    }

  /* Round trips counted in delivered data. */
  if (a->rs_interval_us > 0 && a->rs_prior_delivered >= b->next_round_delivered)
    {
      b->next_round_delivered = a->delivered;
      b->round++;
      round_start = true;
      /* The bandwidth window moves on only with rounds that had data to
       * send: otherwise an idle minute of keepalives would leave the rate
       * of the keepalives (measured: 20 Mbit/s to 1 kbit/s after 120 s),
       * and the next request would crawl. */
      if (!a->rs_app_limited)
        b->bw_rounds[b->round % BBR_BW_ROUNDS] = 0;
      bbr_guard_round (cc, a);
    }

  /* Bandwidth: an app-limited sample only counts if it raises the maximum. */
  if (a->rs_interval_us > 0)
    {
      uint64_t bw = a->rs_delivered * 1000000 / a->rs_interval_us;
      uint64_t *slot = &b->bw_rounds[b->round % BBR_BW_ROUNDS];
      if ((!a->rs_app_limited || bw >= bbr_max_bw (b)) && bw > *slot)
        *slot = bw;
    }

  /* Minimum RTT over 10 s; an equal sample refreshes it. */
  bool min_rtt_expired = a->now > b->min_rtt_stamp + BBR_MIN_RTT_WINDOW_US;
  if (a->latest_rtt > 0 && (a->latest_rtt <= b->min_rtt || min_rtt_expired))
    {
      b->min_rtt = a->latest_rtt;
      b->min_rtt_stamp = a->now;
    }

  /* Startup ends when three rounds in a row failed to grow the rate 25 %. */
  if (b->mode == BBR_STARTUP && round_start && !a->rs_app_limited)
    {
      uint64_t bw = bbr_max_bw (b);
      if (bw >= b->full_bw + b->full_bw / 4)
        {
          b->full_bw = bw;
          b->full_bw_count = 0;
        }
      else if (++b->full_bw_count >= 3)
        {
          b->filled_pipe = true;
          b->mode = BBR_DRAIN;
          b->pacing_gain = 1 / BBR_HIGH_GAIN;
          b->cwnd_gain = BBR_HIGH_GAIN;
        }
    }
  if (b->mode == BBR_DRAIN && a->bytes_in_flight <= bbr_bdp (b, 1))
    bbr_enter_probe_bw (cc, a->now);
  else if (b->mode == BBR_PROBE_BW)
    bbr_update_cycle (cc, a);

  /* Probe the propagation delay when it was not seen for 10 s: half a BDP
   * in flight for 200 ms (BBRv2's gentler version of BBRv1's 4 packets). */
  if (b->mode != BBR_PROBE_RTT && min_rtt_expired && b->min_rtt != UINT64_MAX
      && b->filled_pipe)
    {
      b->mode = BBR_PROBE_RTT;
      b->prior_cwnd = cc->cwnd;
      b->pacing_gain = 1;
      b->probe_rtt_done = a->now + BBR_PROBE_RTT_US + b->min_rtt;
    }
  if (b->mode == BBR_PROBE_RTT && a->now >= b->probe_rtt_done)
    {
      b->min_rtt_stamp = a->now;
      cc->cwnd = b->prior_cwnd;
      bbr_enter_probe_bw (cc, a->now);
    }

  /* Window: cwnd_gain x BDP, approached by the bytes acknowledged. */
  uint64_t target = bbr_bdp (b, b->cwnd_gain) + 3 * cc->mss;
  uint64_t min_cwnd = BBR_MIN_CWND_PACKETS * cc->mss;
  if (b->mode == BBR_PROBE_RTT)
    {
      uint64_t w = bbr_bdp (b, 0.5);
      cc->cwnd = w > min_cwnd ? w : min_cwnd;
    }
  else if (bbr_bdp (b, 1) == 0)
    cc->cwnd += a->acked_bytes;
  else if (b->filled_pipe)
    cc->cwnd = cc->cwnd + a->acked_bytes < target ? cc->cwnd + a->acked_bytes : target;
  else if (cc->cwnd < target || cc->cwnd < 64 * cc->mss)
    cc->cwnd += a->acked_bytes;
  if (b->mode == BBR_PROBE_BW && b->guard_cwnd < cc->cwnd)
    cc->cwnd = b->guard_cwnd;
  if (cc->cwnd < min_cwnd)
    cc->cwnd = min_cwnd;

  /* Pacing rate: gain x bandwidth; before the pipe is full it only rises. */
  uint64_t bw = bbr_max_bw (b);
  uint64_t rate;
  if (bw > 0 && b->mode == BBR_PROBE_BW)
    rate = (uint64_t)((double)bw * b->pacing_gain
                      / (1 - (b->random_loss < BBR_LOSS_MAX ? b->random_loss : BBR_LOSS_MAX)));
  else if (bw > 0)
    rate = (uint64_t)((double)bw * b->pacing_gain);
  else
    rate = (uint64_t)(BBR_HIGH_GAIN * (double)cc->cwnd * 1e6
                      / (double)(a->srtt ? a->srtt : 100000));
  if (b->filled_pipe || rate > cc->pacing_rate)
    cc->pacing_rate = rate;
}

void
xport_bbr_on_loss (struct xport_cc *cc, uint64_t now, uint64_t lost_bytes,
                   uint64_t largest_lost_sent_time, uint64_t bytes_in_flight)
{
  /* BBR v1 does not react to loss: the model is built from deliveries. The
   * bounded queue of the bottleneck limits what is in flight through the
   * window (2 BDP). Loss only enters the random-loss estimate. */
  if (bbr_in_sample (&cc->u.bbr, largest_lost_sent_time))
    cc->u.bbr.sample_lost += lost_bytes;
  (void)now;
  (void)bytes_in_flight;
}
