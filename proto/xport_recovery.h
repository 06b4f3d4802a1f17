/* Loss detection, RTT estimation and delivery-rate sampling of the tunnel
 * transport (RFC 9002 sections 5 and 6; one packet-number space, since the
 * handshake belongs to DTLS). Sent packets live in a ring preallocated at
 * connection start, indexed by packet number; nothing allocates per packet.
 * The connection (xport.c) learns of each acknowledged or lost packet through
 * two callbacks and retransmits the frames it recorded in it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xport_cc.h"
#include "xport_wire.h"

/* What a sent packet carried, for retransmission: frames that must be
 * delivered again if the packet is lost (RFC 9000 section 13.3). */
enum xport_ref_type
{
  XPORT_REF_STREAM, /* stream data [offset, offset + len), and FIN */
  XPORT_REF_MAX_STREAM_DATA,
  XPORT_REF_RESET,
  XPORT_REF_STOP_SENDING,
};

#define XPORT_PACKET_REFS 6

struct xport_ref
{
  uint64_t stream_id;
  uint64_t offset;
  uint16_t len;
  uint8_t type;
  uint8_t fin;
};

enum
{
  XPORT_SENT_MAX_DATA = 1 << 0,
  XPORT_SENT_MAX_STREAMS = 1 << 1,
  XPORT_SENT_PING = 1 << 2,
  /* A path MTU probe: its loss says the size does not pass, not that the
   * path is congested (RFC 9000 section 14.4). */
  XPORT_SENT_PMTU_PROBE = 1 << 3,
};

enum xport_sent_state
{
  XPORT_SENT_EMPTY = 0,
  XPORT_SENT_IN_FLIGHT,
  XPORT_SENT_DONE, /* acknowledged, lost, or never tracked */
};

struct xport_sent
{
  uint64_t pn;
  uint64_t time_sent;
  uint64_t delivered; /* rate sampling: state at send time */
  uint64_t delivered_time;
  uint64_t first_sent_time;
  uint32_t size;
  uint8_t state;
  uint8_t ack_eliciting;
  uint8_t app_limited;
  uint8_t flags;
  uint8_t n_refs;
  struct xport_ref refs[XPORT_PACKET_REFS];
};

struct xport_recovery_callbacks
{
  void (*acked) (void *ctx, const struct xport_sent *p);
  void (*lost) (void *ctx, const struct xport_sent *p);
};

struct xport_recovery
{
  struct xport_sent *ring;
  size_t ring_mask;
  uint64_t next_pn;
  uint64_t lowest_unresolved; /* every packet below is acknowledged or lost */
  uint64_t largest_acked;     /* UINT64_MAX until the first ACK */
  uint64_t bytes_in_flight;
  uint64_t ack_eliciting_in_flight;
  uint64_t time_last_ack_eliciting;
  uint64_t loss_time; /* 0: no time-threshold timer */
  unsigned pto_count;
  uint64_t max_ack_delay;
  /* RTT, RFC 9002 section 5. */
  bool have_rtt;
  uint64_t latest_rtt, min_rtt, srtt, rttvar;
  /* Delivery-rate sampling. */
  uint64_t delivered, delivered_time, first_sent_time;
  uint64_t app_limited; /* non-zero: delivered mark until which app-limited */
  struct xport_cc cc;
  /* Counters. */
  uint64_t packets_sent, packets_lost, bytes_sent, bytes_lost;
  struct xport_recovery_callbacks cb;
  void *ctx;
};

/* @ring_packets is a power of two. False if out of memory. */
bool xport_recovery_init (struct xport_recovery *r, size_t ring_packets,
                          enum xport_cc_algo algo, uint64_t mss, uint64_t max_ack_delay,
                          uint64_t now, const struct xport_recovery_callbacks *cb,
                          void *ctx);
void xport_recovery_clear (struct xport_recovery *r);

/* True when one more packet can be tracked with @reserve slots to spare.
 * Packets that carry data keep a reserve free for ACK-only packets, so that
 * two ends with full rings can still acknowledge each other. */
#define XPORT_RING_RESERVE 64
bool xport_recovery_has_room (const struct xport_recovery *r, size_t reserve);
/* The record for the next packet number, zeroed, to fill while building. */
struct xport_sent *xport_recovery_next (struct xport_recovery *r);
/* The packet built from xport_recovery_next() was sent. */
void xport_recovery_on_sent (struct xport_recovery *r, struct xport_sent *p, uint64_t now,
                             size_t size, bool ack_eliciting);
/* The sender has nothing more to send although the window allows it. */
void xport_recovery_set_app_limited (struct xport_recovery *r);

enum xport_ack_result
{
  XPORT_ACK_OK,
  XPORT_ACK_INVALID, /* acknowledges a packet never sent */
};
enum xport_ack_result xport_recovery_on_ack (struct xport_recovery *r, uint64_t now,
                                             const struct xport_frame *ack);
/* Absolute time of the loss or probe timer; UINT64_MAX when none. */
uint64_t xport_recovery_timer (const struct xport_recovery *r);
/* The timer fired. Returns the number of probe packets to send (0 when it
 * was the time-threshold loss timer). */
unsigned xport_recovery_on_timer (struct xport_recovery *r, uint64_t now);
/* The probe timeout for the current backoff (RFC 9002 section 6.2.1). */
uint64_t xport_recovery_pto (const struct xport_recovery *r);
