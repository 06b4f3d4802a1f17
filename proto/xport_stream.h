/* One stream of the tunnel transport: its send buffer (what is unacknowledged
 * or to be retransmitted) and receive buffer (reassembly by offset, final
 * size), and per-stream flow control. Internal to xport.c; no I/O, no clock.
 * Buffers are rings indexed by stream offset, allocated on first use and
 * grown by doubling up to the configured ceiling: never per packet. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xport_ranges.h"

/* Holes a fast stream keeps open for a round trip or two: 1 % loss at
 * 100 Mbit/s and 100 ms leaves about 25 per round trip. */
#define XPORT_STREAM_ACKED_RANGES 512
#define XPORT_STREAM_LOST_RANGES 256
/* Holes in what arrived: beyond this a packet is dropped unacknowledged
 * (the peer retransmits it), so the receiver never forgets acked data. */
#define XPORT_STREAM_RECV_RANGES 1024
#define XPORT_SEND_BUFFER_INITIAL (64 * 1024)

struct xport_stream
{
  uint64_t id;
  bool local;
  bool released;

  /* Sending: [s_base, s_end) is buffered; below s_base all was acked. */
  uint8_t *sbuf;
  size_t scap;
  size_t scap_max;
  uint64_t s_base, s_end, s_next, s_max;
  struct xport_ranges s_acked, s_lost;
  struct xport_range s_acked_r[XPORT_STREAM_ACKED_RANGES];
  struct xport_range s_lost_r[XPORT_STREAM_LOST_RANGES];
  bool s_fin, s_fin_sent, s_fin_lost, s_fin_acked;
  bool s_reset, s_reset_pending, s_reset_acked;
  uint64_t s_reset_code;
  bool s_stopped; /* the peer sent STOP_SENDING */
  bool s_blocked; /* a write came up short: WRITABLE when room returns */

  /* Receiving: [r_read, r_max_sent) fits in the ring. */
  uint8_t *rbuf;
  size_t rcap;
  uint64_t r_read, r_highest, r_final, r_max_sent, r_window, r_window_max, r_window_time;
  struct xport_ranges r_recv;
  struct xport_range r_recv_r[XPORT_STREAM_RECV_RANGES];
  bool r_max_pending;
  bool r_reset;
  uint64_t r_reset_code;
  bool r_stop, r_stop_pending; /* we sent STOP_SENDING: discard what comes */
  uint64_t r_stop_code;
  bool r_fin_read;

  /* Events waiting for xport_conn_poll_event(). */
  bool ev_opened, ev_readable, ev_writable;
};

enum xport_stream_rx
{
  XPORT_STREAM_RX_OK,
  XPORT_STREAM_RX_FLOW_CONTROL,
  XPORT_STREAM_RX_FINAL_SIZE,
  XPORT_STREAM_RX_NO_ROOM, /* drop the packet unacknowledged */
};

struct xport_stream *xport_stream_new (uint64_t id, bool local, uint64_t send_credit,
                                       uint64_t recv_window, uint64_t recv_window_max,
                                       size_t send_buffer_max);
void xport_stream_free (struct xport_stream *s);
size_t xport_stream_memory (const struct xport_stream *s);

/* Sending. */
size_t xport_stream_buffer_room (const struct xport_stream *s);
/* Takes up to @len bytes into the send buffer; -1 when out of memory. */
ssize_t xport_stream_buffer_write (struct xport_stream *s, const uint8_t *buf,
                                   size_t len);
/* Retransmissions first, then new data within @conn_credit: the next chunk
 * of at most @room bytes, or false when the stream has nothing to send.
 * *@is_new tells the caller to charge connection credit. */
bool xport_stream_next_chunk (struct xport_stream *s, uint64_t conn_credit, size_t room,
                              uint64_t *off, size_t *len, bool *fin, bool *is_new);
/* The chunk was put into a packet. */
void xport_stream_chunk_sent (struct xport_stream *s, uint64_t off, size_t len, bool fin,
                              bool is_new);
void xport_stream_copy_out (const struct xport_stream *s, uint64_t off, uint8_t *dst,
                            size_t len);
bool xport_stream_wants_send (const struct xport_stream *s, uint64_t conn_credit);
void xport_stream_on_acked (struct xport_stream *s, uint64_t off, size_t len, bool fin);
void xport_stream_on_lost (struct xport_stream *s, uint64_t off, size_t len, bool fin);
bool xport_stream_send_done (const struct xport_stream *s);

/* Receiving. *@new_bytes is the growth of the highest offset, for the
 * connection's credit. */
enum xport_stream_rx xport_stream_on_data (struct xport_stream *s, uint64_t off,
                                           const uint8_t *data, size_t len, bool fin,
                                           uint64_t *new_bytes);
enum xport_stream_rx xport_stream_on_reset (struct xport_stream *s, uint64_t final,
                                            uint64_t code, uint64_t *new_bytes);
size_t xport_stream_readable (const struct xport_stream *s);
size_t xport_stream_read_bytes (struct xport_stream *s, uint8_t *buf, size_t len);
bool xport_stream_at_end (const struct xport_stream *s);
bool xport_stream_recv_done (const struct xport_stream *s);
/* After a read: grows the window when the reader keeps up (less than two
 * RTTs since the last update) and returns true if MAX_STREAM_DATA is due. */
bool xport_stream_update_window (struct xport_stream *s, uint64_t now, uint64_t srtt);
