/* The tunnel transport: a small QUIC-style transport (RFC 9000/9002 in
 * spirit, not on the wire) that carries reliable, ordered, flow-controlled
 * streams and unreliable datagrams in packets, one per DTLS record: 1163
 * bytes at first, larger once path MTU discovery found that the path
 * carries more (xport_pmtu.h). Wire format: PROTOCOL.md section 6.
 *
 * Sans-IO: no sockets, no clock, no threads. The caller
 *   - hands every packet that arrives to xport_conn_receive(),
 *   - calls xport_conn_send() until it returns 0 after anything happened,
 *     and sends each packet it returns (dropping one is allowed),
 *   - arms a timer for xport_conn_timeout() and calls xport_conn_on_timeout()
 *     when it fires,
 *   - drains xport_conn_poll_event() to learn what became readable,
 *     writable, opened, or closed.
 * Time is in microseconds on any monotonic clock. Buffers are allocated when
 * a stream opens or its window grows, never per packet; everything a peer can
 * grow is bounded (streams, windows, queued datagrams, ranges).
 *
 * Streams: the client (the DTLS client in the agent) opens odd ids 1, 3, 5...,
 * the server even ids 0, 2, 4... A stream exists for the peer once its first
 * frame arrives; there is no open handshake (the agent names the service in
 * its own first bytes or on a control stream). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "xport_cc.h"
#include "xport_wire.h"

/* Errors returned by the calls below (negative). */
enum xport_error
{
  XPORT_OK = 0,
  XPORT_ERR_AGAIN = -1,        /* nothing to read / no room: wait for an event */
  XPORT_ERR_NO_STREAM = -2,    /* unknown or already released stream id */
  XPORT_ERR_STREAM_LIMIT = -3, /* the peer allows no more streams yet */
  XPORT_ERR_STATE = -4,        /* write after shutdown, read after release... */
  XPORT_ERR_RESET = -5,        /* the peer reset (read) or stopped (write) it */
  XPORT_ERR_CLOSED = -6,       /* the connection is closed */
  XPORT_ERR_TOO_BIG = -7,      /* datagram larger than xport_datagram_max() */
  XPORT_ERR_NOMEM = -8,
};

/* Connection close codes (PROTOCOL.md section 6.4). Codes from 256 up
 * belong to the application. */
enum xport_close_code
{
  XPORT_CLOSE_NO_ERROR = 0,
  XPORT_CLOSE_INTERNAL = 1,
  XPORT_CLOSE_PROTOCOL = 2,     /* malformed frame, ACK of an unsent packet... */
  XPORT_CLOSE_FLOW_CONTROL = 3, /* data beyond the credit we gave */
  XPORT_CLOSE_STREAM_LIMIT = 4, /* a stream beyond the limit we gave */
  XPORT_CLOSE_FINAL_SIZE = 5,   /* data beyond or a change of a final size */
  XPORT_CLOSE_IDLE = 6,         /* local only: nothing heard for the idle timeout */
  XPORT_CLOSE_APP = 256,
};

struct xport_config
{
  bool is_client;
  enum xport_cc_algo cc;
  /* 0 takes the default given in brackets. */
  uint64_t idle_timeout_us;   /* [30 s] close when nothing arrives for this long */
  uint64_t keepalive_us;      /* [5 s] PING when nothing was sent for this long */
  uint32_t max_streams;       /* [128] streams open at once, each direction */
  uint64_t stream_window_max; /* [16 MiB] per-stream receive window ceiling */
  uint64_t conn_window_max;   /* [48 MiB] connection receive window ceiling */
  uint64_t send_buffer_max;   /* [16 MiB] per-stream send buffer ceiling */
  size_t max_packet;          /* [1163] packet size every path carries, >= 256 */
  size_t max_packet_probe;    /* [0: no discovery] the largest packet size to
                               * probe for, at most XPORT_MAX_PACKET */
  size_t sent_packets;        /* [8192] power of two: packets tracked in flight */
  size_t datagram_queue;      /* [64] datagrams queued each way */
};

/* The tunnel's windows and send buffers (agent/transport.c), here so that
 * the simulator's benchmark measures what the agent runs. With loss, a
 * receiver holds what arrived behind a hole and a sender every byte until it
 * is acknowledged, for a few round trips each. In the simulator at 100
 * Mbit/s (sim-bench, after 5 s), 4 MiB per stream and 12 MiB per connection
 * gave 94.7 Mbit/s at 50 ms with 3 % loss, and 66.0 / 61.2 at 100 ms with
 * 1 / 3 %; these give 98.1, and 97.1 / 92.8. Memory grows with them only as
 * a fast path needs it. */
#define XPORT_TUNNEL_STREAM_WINDOW (8u << 20)
#define XPORT_TUNNEL_CONN_WINDOW (16u << 20)
#define XPORT_TUNNEL_SEND_BUFFER (8u << 20)

enum xport_event_type
{
  XPORT_EVENT_STREAM_OPENED, /* the peer opened @stream_id */
  XPORT_EVENT_READABLE,      /* data, the end, or a reset can be read */
  XPORT_EVENT_WRITABLE,      /* a write would take bytes again, or fail */
  XPORT_EVENT_DATAGRAM,      /* xport_datagram_recv() has datagrams */
  XPORT_EVENT_CLOSED,        /* the connection ended: @code, @remote, @reason */
};

struct xport_event
{
  enum xport_event_type type;
  uint64_t stream_id;
  uint64_t code;
  bool remote;
  const char *reason; /* CLOSED: valid until xport_conn_free() */
};

struct xport_stats
{
  uint64_t srtt_us, min_rtt_us, latest_rtt_us, rttvar_us;
  uint64_t cwnd, bytes_in_flight, pacing_rate; /* bytes, bytes/s */
  uint64_t packets_sent, packets_received, packets_lost, packets_invalid;
  uint64_t bytes_sent, bytes_lost;
  uint64_t stream_bytes_sent, stream_bytes_received;
  uint64_t memory;  /* bytes allocated for stream buffers, now */
  uint32_t streams; /* streams with state */
  uint32_t packet_size; /* the largest packet sent now (path MTU discovery) */
};

struct xport_conn;

/* NULL if the configuration is invalid or memory runs out. Free with
 * xport_conn_free(). */
struct xport_conn *xport_conn_new (const struct xport_config *cfg, uint64_t now);
void xport_conn_free (struct xport_conn *c);

/* One packet from the peer. Malformed input never crashes: a packet that
 * does not parse is dropped (XPORT_ERR_STATE, counted in packets_invalid);
 * a peer that breaks the protocol gets the connection closed. */
int xport_conn_receive (struct xport_conn *c, uint64_t now, const uint8_t *buf,
                        size_t len);
/* Writes the next packet to send into @buf (at least max_packet bytes, and
 * max_packet_probe when discovery is on) and
 * returns its length, or 0 when nothing is to be sent before the timeout. */
size_t xport_conn_send (struct xport_conn *c, uint64_t now, uint8_t *buf, size_t cap);
/* Absolute time at which xport_conn_on_timeout() is due; UINT64_MAX: none. */
uint64_t xport_conn_timeout (const struct xport_conn *c);
void xport_conn_on_timeout (struct xport_conn *c, uint64_t now);
bool xport_conn_poll_event (struct xport_conn *c, struct xport_event *ev);
/* Sends CLOSE with @code and @reason (printable ASCII, at most 200 bytes)
 * with the next packet; the connection is closed from now on. */
void xport_conn_close (struct xport_conn *c, uint64_t code, const char *reason);
bool xport_conn_is_closed (const struct xport_conn *c);
/* Sends a PING now; its acknowledgement updates the RTT in the stats. */
void xport_conn_ping (struct xport_conn *c);
void xport_conn_stats (const struct xport_conn *c, struct xport_stats *st);
/* The packets take another path (ICE chose another pair): its MTU is
 * unknown, so packets go back to max_packet until probes prove more, and
 * the probe timeout's backoff starts over. */
void xport_conn_path_changed (struct xport_conn *c, uint64_t now);
/* The largest packet to probe for from the next search on (the path's
 * MTU bounds it; at most XPORT_MAX_PACKET): call before
 * xport_conn_path_changed() when the new path's MTU differs. */
void xport_conn_set_max_packet_probe (struct xport_conn *c, size_t size);

/* Opens a stream of ours. XPORT_ERR_STREAM_LIMIT until the peer allows more. */
int xport_stream_open (struct xport_conn *c, uint64_t *id);
/* Queues bytes; returns how many were taken (0 when the send buffer is
 * full: wait for WRITABLE), or a negative error. */
ssize_t xport_stream_write (struct xport_conn *c, uint64_t id, const uint8_t *buf,
                            size_t len);
/* Half-close: no more bytes from us; the queued ones and the final size
 * are still delivered. */
int xport_stream_shutdown (struct xport_conn *c, uint64_t id);
/* Returns bytes read; 0 with *@fin set at the end; XPORT_ERR_AGAIN when
 * nothing is buffered; XPORT_ERR_RESET (code in *@code) when the peer reset
 * it. @code may be NULL. */
ssize_t xport_stream_read (struct xport_conn *c, uint64_t id, uint8_t *buf, size_t len,
                           bool *fin, uint64_t *code);
/* Abandons our direction (RESET_STREAM with @code). */
int xport_stream_reset (struct xport_conn *c, uint64_t id, uint64_t code);
/* Abandons the peer's direction (STOP_SENDING with @code). */
int xport_stream_stop (struct xport_conn *c, uint64_t id, uint64_t code);
/* The caller is done with @id: an open direction is reset (ours, unless it
 * was shut down: queued bytes are still delivered) or stopped (theirs). The
 * id is invalid afterwards; the state goes once both directions ended. */
void xport_stream_release (struct xport_conn *c, uint64_t id);
/* Bytes xport_stream_write() would take now. */
size_t xport_stream_writable (const struct xport_conn *c, uint64_t id);

/* Datagrams: unreliable, unordered with respect to streams, each at most
 * xport_datagram_max() bytes. XPORT_ERR_AGAIN when the queue is full (the
 * datagram is dropped, as the network would). */
int xport_datagram_send (struct xport_conn *c, const uint8_t *buf, size_t len);
ssize_t xport_datagram_recv (struct xport_conn *c, uint8_t *buf, size_t cap);
size_t xport_datagram_max (const struct xport_conn *c);
