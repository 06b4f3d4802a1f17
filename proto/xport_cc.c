/* Dispatch to the congestion controller; see xport_cc.h. */
#include "xport_cc.h"

#include <string.h>

/* RFC 9002 section 7.2 allows 10 packets; a tunnel carries many flows at
 * once, and the controller's model replaces the window within a round. */
#define XPORT_CC_INITIAL_PACKETS 32

void
xport_cc_init (struct xport_cc *cc, enum xport_cc_algo algo, uint64_t mss, uint64_t now)
{
  memset (cc, 0, sizeof *cc);
  cc->algo = algo;
  cc->mss = mss;
  cc->cwnd = XPORT_CC_INITIAL_PACKETS * mss;
  if (algo == XPORT_CC_RENO)
    xport_reno_init (cc, now);
  else
    xport_bbr_init (cc, now);
}

void
xport_cc_on_ack (struct xport_cc *cc, const struct xport_cc_ack *a)
{
  if (cc->algo == XPORT_CC_RENO)
    xport_reno_on_ack (cc, a);
  else
    xport_bbr_on_ack (cc, a);
}

void
xport_cc_on_loss (struct xport_cc *cc, uint64_t now, uint64_t lost_bytes,
                  uint64_t largest_lost_sent_time, uint64_t bytes_in_flight)
{
  if (cc->algo == XPORT_CC_RENO)
    xport_reno_on_loss (cc, now, lost_bytes, largest_lost_sent_time, bytes_in_flight);
  else
    xport_bbr_on_loss (cc, now, lost_bytes, largest_lost_sent_time, bytes_in_flight);
}

void
xport_cc_on_persistent_congestion (struct xport_cc *cc, uint64_t now)
{
  /* RFC 9002 section 7.6.2: back to the minimum window. The BBR model keeps
   * its bandwidth estimate and rebuilds the window from it on the next ACK. */
  if (cc->algo == XPORT_CC_RENO)
    {
      cc->cwnd = 2 * cc->mss;
      cc->u.reno.recovery_start = now;
    }
}

const char *
xport_cc_name (enum xport_cc_algo algo)
{
  return algo == XPORT_CC_RENO ? "newreno" : "bbr";
}
