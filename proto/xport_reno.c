/* NewReno (RFC 9002 section 7 and appendix B), with pacing at 1.25 times
 * cwnd per smoothed RTT (section 7.7). Loss-based: kept for comparison. */
#include "xport_cc.h"

#include <stdint.h>

void
xport_reno_init (struct xport_cc *cc, uint64_t now)
{
  cc->u.reno.ssthresh = UINT64_MAX;
  cc->u.reno.recovery_start = 0;
  cc->u.reno.srtt = 100000;
  cc->pacing_rate = cc->cwnd * 1000000 / cc->u.reno.srtt * 2;
}

static void
reno_pace (struct xport_cc *cc)
{
  struct xport_cc_reno *r = &cc->u.reno;
  uint64_t gain = cc->cwnd < r->ssthresh ? 200 : 125;
  cc->pacing_rate = cc->cwnd * 1000000 / (r->srtt ? r->srtt : 1) * gain / 100;
}

void
xport_reno_on_ack (struct xport_cc *cc, const struct xport_cc_ack *a)
{
  struct xport_cc_reno *r = &cc->u.reno;
  if (a->srtt)
    r->srtt = a->srtt;
  /* Section 7.3.2: no growth for packets sent before recovery began. */
  if (a->largest_acked_sent_time > r->recovery_start || r->recovery_start == 0)
    {
      if (cc->cwnd < r->ssthresh)
        cc->cwnd += a->acked_bytes;
      else
        {
          r->acked_accum += a->acked_bytes;
          if (r->acked_accum >= cc->cwnd)
            {
              r->acked_accum -= cc->cwnd;
              cc->cwnd += cc->mss;
            }
        }
    }
  reno_pace (cc);
}

void
xport_reno_on_loss (struct xport_cc *cc, uint64_t now, uint64_t lost_bytes,
                    uint64_t largest_lost_sent_time, uint64_t bytes_in_flight)
{
  struct xport_cc_reno *r = &cc->u.reno;
  /* One reduction per round trip: losses of packets sent before the last
   * reduction belong to the same congestion event. */
  if (r->recovery_start != 0 && largest_lost_sent_time <= r->recovery_start)
    return;
  r->recovery_start = now;
  cc->cwnd /= 2;
  if (cc->cwnd < 2 * cc->mss)
    cc->cwnd = 2 * cc->mss;
  r->ssthresh = cc->cwnd;
  reno_pace (cc);
}
