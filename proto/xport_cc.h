/* Congestion control of the tunnel transport behind one small interface.
 *
 * The loss-recovery code (xport_recovery.c) tells the controller about
 * packets sent, acknowledgements (with a delivery-rate sample, in the manner
 * of draft-cheng-iccrg-delivery-rate-estimation) and losses; the controller
 * answers with two numbers, a congestion window and a pacing rate. Two
 * controllers exist: a BBR-like model-based one (xport_bbr.c, the default:
 * it keeps its rate under random loss) and NewReno (xport_reno.c, RFC 9002
 * section 7, loss-based: for comparison). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum xport_cc_algo
{
  XPORT_CC_BBR = 0,
  XPORT_CC_RENO = 1,
};

/* One ACK frame's worth of news. */
struct xport_cc_ack
{
  uint64_t now;
  uint64_t acked_bytes;     /* newly acknowledged, in flight before */
  uint64_t bytes_in_flight; /* after this ACK */
  uint64_t latest_rtt;      /* 0 if this ACK gave no RTT sample */
  uint64_t min_rtt;
  uint64_t srtt;
  uint64_t largest_acked_sent_time;
  /* Delivery-rate sample: rs_delivered bytes over rs_interval_us; no sample
   * when rs_interval_us is 0. */
  uint64_t delivered; /* all bytes delivered so far */
  uint64_t rs_prior_delivered;
  uint64_t rs_delivered;
  uint64_t rs_interval_us;
  bool rs_app_limited;
};

struct xport_cc_bbr
{
  int mode;
  uint64_t bw_rounds[10]; /* max delivery rate per round, bytes/s */
  uint64_t round;
  uint64_t next_round_delivered;
  uint64_t min_rtt;
  uint64_t min_rtt_stamp;
  uint64_t full_bw;
  unsigned full_bw_count;
  bool filled_pipe;
  unsigned cycle_index;
  uint64_t cycle_stamp;
  uint64_t probe_rtt_done;
  uint64_t prior_cwnd;
  double pacing_gain;
  double cwnd_gain;
  /* Queue guard (see xport_bbr.c): the least RTT seen this round, what was
   * delivered when it began, and the window the guard allows. */
  uint64_t round_min_rtt;
  uint64_t round_delivered;
  uint64_t guard_cwnd;
  /* Random loss (see xport_bbr.c): packets sent in [sample_start,
   * sample_end) are the sample; what of them was acknowledged and lost, the
   * least RTT they saw, and the smoothed fraction lost. */
  uint64_t sample_start, sample_end;
  uint64_t sample_acked, sample_lost, sample_min_rtt;
  double random_loss;
};

struct xport_cc_reno
{
  uint64_t ssthresh;
  uint64_t recovery_start;
  uint64_t acked_accum;
  uint64_t srtt;
};

struct xport_cc
{
  enum xport_cc_algo algo;
  uint64_t mss;
  uint64_t cwnd;        /* bytes */
  uint64_t pacing_rate; /* bytes per second */
  union
  {
    struct xport_cc_bbr bbr;
    struct xport_cc_reno reno;
  } u;
};

void xport_cc_init (struct xport_cc *cc, enum xport_cc_algo algo, uint64_t mss,
                    uint64_t now);
void xport_cc_on_ack (struct xport_cc *cc, const struct xport_cc_ack *a);
/* Packets declared lost: @lost_bytes in all, the newest sent at
 * @largest_lost_sent_time. */
void xport_cc_on_loss (struct xport_cc *cc, uint64_t now, uint64_t lost_bytes,
                       uint64_t largest_lost_sent_time, uint64_t bytes_in_flight);
/* RFC 9002 section 7.6: every packet over a long period was lost. */
void xport_cc_on_persistent_congestion (struct xport_cc *cc, uint64_t now);
const char *xport_cc_name (enum xport_cc_algo algo);

/* Per controller. */
void xport_bbr_init (struct xport_cc *cc, uint64_t now);
void xport_bbr_on_ack (struct xport_cc *cc, const struct xport_cc_ack *a);
void xport_bbr_on_loss (struct xport_cc *cc, uint64_t now, uint64_t lost_bytes,
                        uint64_t largest_lost_sent_time, uint64_t bytes_in_flight);
void xport_reno_init (struct xport_cc *cc, uint64_t now);
void xport_reno_on_ack (struct xport_cc *cc, const struct xport_cc_ack *a);
void xport_reno_on_loss (struct xport_cc *cc, uint64_t now, uint64_t lost_bytes,
                         uint64_t largest_lost_sent_time, uint64_t bytes_in_flight);
