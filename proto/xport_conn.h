/* The connection of the tunnel transport, shared by the files that make it
 * up: xport.c (lifetime, input, timers, events), xport_send.c (packet
 * assembly), xport_app.c (the stream and datagram calls of xport.h).
 * Internal: nothing outside proto/xport*.c includes this. */
#pragma once

#include "xport.h"
#include "xport_pmtu.h"
#include "xport_ranges.h"
#include "xport_recovery.h"
#include "xport_stream.h"

/* PROTOCOL.md section 6.3: what each side may assume before the peer's
 * first MAX_* frame. */
#define XPORT_INITIAL_MAX_STREAM_DATA (256 * 1024)
#define XPORT_INITIAL_MAX_DATA (1024 * 1024)
#define XPORT_INITIAL_MAX_STREAMS 16
/* Section 6.1: an ACK is sent within this time of an ack-eliciting packet
 * (RFC 9000 section 13.2.1), and at once after every second one. */
#define XPORT_MAX_ACK_DELAY_US 10000
#define XPORT_ACK_EVERY 2
#define XPORT_RX_PN_RANGES 64
#define XPORT_STREAM_LIMIT_MAX 4096
/* Pacing may catch up with at most this much idle time in one burst. */
#define XPORT_PACING_BURST_US 1000
/* A stream frame smaller than this is not worth its header. */
#define XPORT_MIN_CHUNK 64
/* A peer that keeps talking after our CLOSE hears it again, this often. */
#define XPORT_CLOSE_RESENDS 8

enum conn_state
{
  CONN_OPEN,
  CONN_CLOSED,
};

struct dgram
{
  uint16_t len;
  uint8_t data[XPORT_MAX_DATAGRAM];
};

struct dgram_queue
{
  struct dgram *q;
  size_t cap, head, n;
};

struct xport_conn
{
  struct xport_config cfg;
  uint64_t now;
  enum conn_state state;
  struct xport_recovery rec;
  struct xport_pmtu pmtu;

  struct xport_stream **slots;
  size_t n_slots;
  size_t slots_hi; /* slots at and above this index are all empty: the
                    * per-packet scans stop here (streams take the lowest
                    * free slot, so this is about the number of streams) */
  bool *slot_queued; /* slot is in the event queue */
  size_t *evq;
  size_t evq_head, evq_n;
  size_t rr;
  uint32_t n_local_live, n_peer_live;
  uint64_t next_local_index;
  uint64_t peer_next_index;
  uint64_t local_max_streams;  /* the peer may open indexes below this */
  uint64_t remote_max_streams; /* we may open indexes below this */
  bool max_streams_pending;

  uint64_t tx_max_data, tx_data;
  uint64_t rx_max_data, rx_data, rx_consumed, rx_window, rx_window_time;
  bool max_data_pending;

  struct xport_ranges rx_pns;
  struct xport_range rx_pns_r[XPORT_RX_PN_RANGES];
  uint64_t largest_rx_pn, largest_rx_time;
  bool have_rx;
  /* ack_pending: packet numbers not yet acknowledged (they ride along with
   * anything we send); ack_needed: one of them was ack-eliciting, so an ACK
   * is due by ack_deadline, or at once if ack_immediate. */
  bool ack_pending, ack_needed, ack_immediate;
  unsigned ack_eliciting_unacked;
  uint64_t ack_deadline;

  uint64_t last_rx_time, last_tx_time;
  uint64_t next_send_time;
  unsigned probes;
  bool ping_pending;

  struct dgram_queue dg_out, dg_in;
  bool ev_datagram;

  bool close_pending, ev_closed, close_delivered, close_remote;
  unsigned close_resends;
  bool ack_seen; /* this packet already had an ACK frame */
  uint64_t close_code;
  char close_reason[XPORT_MAX_REASON + 1];

  uint64_t packets_received, packets_invalid, stream_bytes_sent, stream_bytes_received;
  /* The frame being parsed: with its 64 ACK ranges too big for the stack of
   * a small thread, and never allocated per packet. */
  struct xport_frame rx_frame;
};

struct xport_stream *xport_conn_stream_find (const struct xport_conn *c, uint64_t id,
                                             size_t *slot);
struct xport_stream *xport_conn_stream_create (struct xport_conn *c, uint64_t id,
                                               bool local);
/* Frees the stream once the application let go and both directions ended. */
void xport_conn_stream_maybe_free (struct xport_conn *c, struct xport_stream *s);
/* After the application consumed bytes: grows the connection window. */
void xport_conn_update_window (struct xport_conn *c);
/* The congestion window (or a probe) lets an ack-eliciting packet go. */
bool xport_conn_window_open (const struct xport_conn *c);
/* Something ack-eliciting waits to be sent. */
bool xport_conn_wants_data (const struct xport_conn *c);
/* The size of the path MTU probe that may go now, or 0. */
size_t xport_conn_pmtu_probe (const struct xport_conn *c, uint64_t now);
/* Packets are built up to this size now. */
static inline size_t
xport_conn_packet_size (const struct xport_conn *c)
{
  return c->pmtu.current;
}
