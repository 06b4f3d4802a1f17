/* Loss detection and RTT estimation after RFC 9002; see xport_recovery.h. */
#include "xport_recovery.h"

#include <stdlib.h>
#include <string.h>

/* RFC 9002 section 6.1.1: kPacketThreshold. */
#define XPORT_PACKET_THRESHOLD 3
/* Section 6.1.2: kTimeThreshold 9/8, kGranularity 1 ms. */
#define XPORT_GRANULARITY_US 1000
/* Section 6.2.2: 333 ms before the first RTT sample. */
#define XPORT_INITIAL_RTT_US 333000
/* Section 6.2.1 doubles the probe timeout without bound; a tunnel wants to
 * notice the end of an outage soon, so the backoff stops at 1 s. */
#define XPORT_MAX_PTO_US 1000000
/* Section 7.6: persistent congestion after 3 PTOs without an ACK. */
#define XPORT_PERSISTENT_CONGESTION_THRESHOLD 3

bool
xport_recovery_init (struct xport_recovery *r, size_t ring_packets,
                     enum xport_cc_algo algo, uint64_t mss, uint64_t max_ack_delay,
                     uint64_t now, const struct xport_recovery_callbacks *cb, void *ctx)
{
  memset (r, 0, sizeof *r);
  if (ring_packets < 4 * XPORT_RING_RESERVE || (ring_packets & (ring_packets - 1)) != 0)
    return false;
  r->ring = calloc (ring_packets, sizeof r->ring[0]);
  if (r->ring == NULL)
    return false;
  r->ring_mask = ring_packets - 1;
  r->largest_acked = UINT64_MAX;
  r->max_ack_delay = max_ack_delay;
  r->min_rtt = UINT64_MAX;
  r->srtt = XPORT_INITIAL_RTT_US;
  r->rttvar = XPORT_INITIAL_RTT_US / 2;
  r->cb = *cb;
  r->ctx = ctx;
  xport_cc_init (&r->cc, algo, mss, now);
  return true;
}

void
xport_recovery_clear (struct xport_recovery *r)
{
  free (r->ring);
  r->ring = NULL;
}

static struct xport_sent *
slot (const struct xport_recovery *r, uint64_t pn)
{
  return &r->ring[pn & r->ring_mask];
}

bool
xport_recovery_has_room (const struct xport_recovery *r, size_t reserve)
{
  return r->next_pn - r->lowest_unresolved + reserve <= r->ring_mask;
}

struct xport_sent *
xport_recovery_next (struct xport_recovery *r)
{
  struct xport_sent *p = slot (r, r->next_pn);
  memset (p, 0, offsetof (struct xport_sent, refs));
  p->pn = r->next_pn;
  return p;
}

void
xport_recovery_set_app_limited (struct xport_recovery *r)
{
  uint64_t mark = r->delivered + r->bytes_in_flight;
  r->app_limited = mark > 0 ? mark : 1;
}

void
xport_recovery_on_sent (struct xport_recovery *r, struct xport_sent *p, uint64_t now,
                        size_t size, bool ack_eliciting)
{
  p->time_sent = now;
  p->size = (uint32_t)size;
  p->ack_eliciting = ack_eliciting;
  r->next_pn++;
  r->packets_sent++;
  r->bytes_sent += size;
  if (!ack_eliciting)
    {
      /* ACK-only packets are neither in flight nor retransmitted. */
      p->state = XPORT_SENT_DONE;
      if (r->lowest_unresolved == p->pn)
        r->lowest_unresolved++;
      return;
    }
  if (r->bytes_in_flight == 0)
    {
      r->first_sent_time = now;
      r->delivered_time = now;
    }
  p->delivered = r->delivered;
  p->delivered_time = r->delivered_time;
  p->first_sent_time = r->first_sent_time;
  p->app_limited = r->app_limited != 0;
  p->state = XPORT_SENT_IN_FLIGHT;
  r->bytes_in_flight += size;
  r->ack_eliciting_in_flight++;
  r->time_last_ack_eliciting = now;
}

static void
advance_lowest (struct xport_recovery *r)
{
  while (r->lowest_unresolved < r->next_pn
         && slot (r, r->lowest_unresolved)->state != XPORT_SENT_IN_FLIGHT)
    r->lowest_unresolved++;
}

static void
remove_in_flight (struct xport_recovery *r, struct xport_sent *p)
{
  p->state = XPORT_SENT_DONE;
  r->bytes_in_flight -= p->size;
  r->ack_eliciting_in_flight--;
}

static uint64_t
loss_delay (const struct xport_recovery *r)
{
  uint64_t rtt = r->srtt > r->latest_rtt ? r->srtt : r->latest_rtt;
  uint64_t d = rtt * 9 / 8;
  return d > XPORT_GRANULARITY_US ? d : XPORT_GRANULARITY_US;
}

/* RFC 9002 section 6.1: packets below the largest acknowledged are lost by
 * count or by time. Amortised O(1): every packet checked below the largest
 * acknowledged is resolved, except the last few waiting for the timer. */
static void
detect_lost (struct xport_recovery *r, uint64_t now)
{
  uint64_t delay = loss_delay (r);
  uint64_t lost_bytes = 0, largest_lost_time = 0;
  uint64_t first_lost_time = 0, last_lost_time = 0;

  r->loss_time = 0;
  if (r->largest_acked == UINT64_MAX)
    return;
  for (uint64_t pn = r->lowest_unresolved; pn < r->largest_acked && pn < r->next_pn; pn++)
    {
      struct xport_sent *p = slot (r, pn);
      if (p->state != XPORT_SENT_IN_FLIGHT)
        continue;
      if (r->largest_acked - pn >= XPORT_PACKET_THRESHOLD || p->time_sent + delay <= now)
        {
          remove_in_flight (r, p);
          r->packets_lost++;
          r->bytes_lost += p->size;
          r->cb.lost (r->ctx, p);
          if (p->flags & XPORT_SENT_PMTU_PROBE)
            continue; /* too big, not congested */
          lost_bytes += p->size;
          if (p->time_sent > largest_lost_time)
            largest_lost_time = p->time_sent;
          if (first_lost_time == 0)
            first_lost_time = p->time_sent;
          last_lost_time = p->time_sent;
        }
      else if (r->loss_time == 0 || p->time_sent + delay < r->loss_time)
        r->loss_time = p->time_sent + delay;
    }
  advance_lowest (r);
  if (lost_bytes > 0)
    {
      xport_cc_on_loss (&r->cc, now, lost_bytes, largest_lost_time, r->bytes_in_flight);
      /* Section 7.6.1, simplified: everything sent over three PTOs was lost. */
      if (r->have_rtt
          && last_lost_time - first_lost_time
                 > (r->srtt + 4 * r->rttvar + r->max_ack_delay)
                       * XPORT_PERSISTENT_CONGESTION_THRESHOLD)
        xport_cc_on_persistent_congestion (&r->cc, now);
    }
}

static void
update_rtt (struct xport_recovery *r, uint64_t latest, uint64_t ack_delay)
{
  /* Section 5.3. */
  r->latest_rtt = latest;
  if (!r->have_rtt)
    {
      r->have_rtt = true;
      r->min_rtt = latest;
      r->srtt = latest;
      r->rttvar = latest / 2;
      return;
    }
  if (latest < r->min_rtt)
    r->min_rtt = latest;
  if (ack_delay > r->max_ack_delay)
    ack_delay = r->max_ack_delay;
  uint64_t adjusted = latest;
  if (latest >= r->min_rtt + ack_delay)
    adjusted = latest - ack_delay;
  uint64_t diff = r->srtt > adjusted ? r->srtt - adjusted : adjusted - r->srtt;
  r->rttvar = (3 * r->rttvar + diff) / 4;
  r->srtt = (7 * r->srtt + adjusted) / 8;
}

enum xport_ack_result
xport_recovery_on_ack (struct xport_recovery *r, uint64_t now,
                       const struct xport_frame *ack)
{
  /* RFC 9000 section 13.1: acknowledging a packet never sent is an error. */
  if (ack->n_ranges == 0 || ack->ranges[0].largest >= r->next_pn)
    return XPORT_ACK_INVALID;

  uint64_t acked_bytes = 0;
  bool largest_newly_acked = false, any_eliciting = false;
  uint64_t largest_sent_time = 0;
  /* The newest packet acknowledged gives the rate sample. */
  const struct xport_sent *rs_pkt = NULL;
  struct xport_sent rs_copy;

  for (size_t i = 0; i < ack->n_ranges; i++)
    {
      uint64_t lo = ack->ranges[i].smallest, hi = ack->ranges[i].largest;
      if (hi < r->lowest_unresolved)
        break; /* ranges descend: the rest is old news */
      if (lo < r->lowest_unresolved)
        lo = r->lowest_unresolved;
      for (uint64_t pn = hi + 1; pn-- > lo;)
        {
          struct xport_sent *p = slot (r, pn);
          if (p->state != XPORT_SENT_IN_FLIGHT || p->pn != pn)
            continue;
          if (pn == ack->ranges[0].largest)
            {
              largest_newly_acked = true;
              largest_sent_time = p->time_sent;
            }
          if (p->ack_eliciting)
            any_eliciting = true;
          acked_bytes += p->size;
          remove_in_flight (r, p);
          r->delivered += p->size;
          r->delivered_time = now;
          if (rs_pkt == NULL || p->delivered > rs_pkt->delivered
              || (p->delivered == rs_pkt->delivered && p->time_sent > rs_pkt->time_sent))
            {
              rs_copy = *p;
              rs_pkt = &rs_copy;
            }
          if (p->time_sent > largest_sent_time && !largest_newly_acked)
            largest_sent_time = p->time_sent;
          r->cb.acked (r->ctx, p);
        }
    }

  if (r->largest_acked == UINT64_MAX || ack->ranges[0].largest > r->largest_acked)
    r->largest_acked = ack->ranges[0].largest;
  if (acked_bytes == 0)
    {
      advance_lowest (r);
      return XPORT_ACK_OK;
    }
  if (largest_newly_acked && any_eliciting)
    update_rtt (r, now - largest_sent_time, ack->ack_delay_us);

  struct xport_cc_ack a = { 0 };
  a.now = now;
  a.acked_bytes = acked_bytes;
  a.latest_rtt = largest_newly_acked ? r->latest_rtt : 0;
  a.min_rtt = r->min_rtt;
  a.srtt = r->srtt;
  a.largest_acked_sent_time = largest_sent_time;
  if (rs_pkt != NULL)
    {
      /* draft-cheng-iccrg-delivery-rate-estimation section 3.3. */
      uint64_t send_elapsed = rs_pkt->time_sent - rs_pkt->first_sent_time;
      uint64_t ack_elapsed = now - rs_pkt->delivered_time;
      uint64_t interval = send_elapsed > ack_elapsed ? send_elapsed : ack_elapsed;
      r->first_sent_time = rs_pkt->time_sent;
      a.rs_prior_delivered = rs_pkt->delivered;
      a.rs_delivered = r->delivered - rs_pkt->delivered;
      a.rs_app_limited = rs_pkt->app_limited;
      /* A sample over less than the minimum RTT is noise. */
      if (interval >= r->min_rtt && interval > 0)
        a.rs_interval_us = interval;
    }
  if (r->app_limited != 0 && r->delivered > r->app_limited)
    r->app_limited = 0;

  detect_lost (r, now);
  a.delivered = r->delivered;
  a.bytes_in_flight = r->bytes_in_flight;
  xport_cc_on_ack (&r->cc, &a);
  r->pto_count = 0;
  return XPORT_ACK_OK;
}

uint64_t
xport_recovery_pto (const struct xport_recovery *r)
{
  uint64_t var = 4 * r->rttvar;
  if (var < XPORT_GRANULARITY_US)
    var = XPORT_GRANULARITY_US;
  uint64_t pto = r->srtt + var + r->max_ack_delay;
  for (unsigned i = 0; i < r->pto_count && pto < XPORT_MAX_PTO_US; i++)
    pto *= 2;
  return pto < XPORT_MAX_PTO_US ? pto : XPORT_MAX_PTO_US;
}

uint64_t
xport_recovery_timer (const struct xport_recovery *r)
{
  if (r->loss_time != 0)
    return r->loss_time;
  if (r->ack_eliciting_in_flight == 0)
    return UINT64_MAX;
  return r->time_last_ack_eliciting + xport_recovery_pto (r);
}

unsigned
xport_recovery_on_timer (struct xport_recovery *r, uint64_t now)
{
  if (r->loss_time != 0)
    {
      if (now < r->loss_time)
        return 0;
      detect_lost (r, now);
      return 0;
    }
  if (r->ack_eliciting_in_flight == 0
      || now < r->time_last_ack_eliciting + xport_recovery_pto (r))
    return 0;
  /* Section 6.2.4: two probes; the timer backs off. */
  r->pto_count++;
  r->time_last_ack_eliciting = now;
  return 2;
}
