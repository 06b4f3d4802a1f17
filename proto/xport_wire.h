/* Transport packets: the codec of the QUIC-style tunnel transport (xport.h).
 * One packet is the plaintext of one DTLS record (PROTOCOL.md section 6):
 *
 *   +---------+--------------------------+-------------------+
 *   | version | packet number (varint)   | frames ...        |
 *   +---------+--------------------------+-------------------+
 *
 * Integers are QUIC variable-length integers (RFC 9000 section 16). The
 * parser never allocates and never reads past @len; every length is checked
 * before use. No I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The first byte of a transport packet. Tunnel frames of version 1
 * (frame.h) start with 1, so the two never clash. */
#define XPORT_VERSION 2
/* DTLS 1.2 with AES-GCM at a 1200-byte ICE MTU carries 1163 bytes: the size
 * every path carries, where packets start. */
#define XPORT_BASE_PACKET 1163
/* The largest packet either side may send once path MTU discovery proved
 * the path carries it (xport_pmtu.h): the most plaintext a DTLS record
 * holds. Only paths of large MTU carry it (loopback, jumbo frames); on the
 * Internet a packet stays under 1500 bytes. Receivers accept up to this. */
#define XPORT_MAX_PACKET 16384
/* DTLS 1.2 with AES-GCM in the UDP payload of a 1500-byte IPv4 packet: what
 * most paths carry, tried first when the ceiling is larger. */
#define XPORT_COMMON_PACKET 1435
/* The largest DATAGRAM frame payload, whatever the packet size: a 1500-byte
 * IPv6 packet's UDP payload (1452 bytes) less the packet's header and the
 * frame's (12). A UDP application sees one size on every path; receivers
 * drop larger ones. */
#define XPORT_MAX_DATAGRAM 1440
/* RFC 9000 section 16: 2^62 - 1. */
#define XPORT_VARINT_MAX ((UINT64_C (1) << 62) - 1)
/* A hostile ACK may claim any number of ranges; we read at most this many
 * (more is INVALID). Our own ACKs carry at most XPORT_ACK_RANGES_SENT. */
#define XPORT_MAX_ACK_RANGES 64
#define XPORT_ACK_RANGES_SENT 32
#define XPORT_MAX_REASON 200

enum xport_frame_type
{
  XPORT_FRAME_PADDING = 0x00,
  XPORT_FRAME_PING = 0x01,
  XPORT_FRAME_ACK = 0x02,
  XPORT_FRAME_RESET_STREAM = 0x04,
  XPORT_FRAME_STOP_SENDING = 0x05,
  XPORT_FRAME_STREAM = 0x08, /* 0x09: the same with FIN */
  XPORT_FRAME_STREAM_FIN = 0x09,
  XPORT_FRAME_MAX_DATA = 0x10,
  XPORT_FRAME_MAX_STREAM_DATA = 0x11,
  XPORT_FRAME_MAX_STREAMS = 0x12,
  XPORT_FRAME_CLOSE = 0x1c,
  XPORT_FRAME_DATAGRAM = 0x30,
};

enum xport_wire_status
{
  XPORT_WIRE_OK = 0,
  XPORT_WIRE_END,     /* no more frames in the packet */
  XPORT_WIRE_INVALID, /* malformed: drop the packet */
};

/* One acknowledged range, inclusive: [smallest, largest]. */
struct xport_ack_range
{
  uint64_t smallest;
  uint64_t largest;
};

struct xport_frame
{
  uint8_t type;
  uint64_t stream_id;
  uint64_t offset;     /* STREAM */
  uint64_t value;      /* MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS; RESET final size */
  uint64_t code;       /* RESET_STREAM, STOP_SENDING, CLOSE */
  bool fin;            /* STREAM */
  const uint8_t *data; /* STREAM, DATAGRAM, CLOSE reason: points into the packet */
  size_t len;
  /* ACK: ranges from the largest down, disjoint and descending. */
  uint64_t ack_delay_us;
  size_t n_ranges;
  struct xport_ack_range ranges[XPORT_MAX_ACK_RANGES];
};

size_t xport_varint_len (uint64_t v);
/* Writes @v (at most XPORT_VARINT_MAX); returns bytes written or 0 if @cap is
 * too small. */
size_t xport_varint_put (uint8_t *buf, size_t cap, uint64_t v);
/* Reads a varint at *@off; advances *@off. False if truncated. */
bool xport_varint_get (const uint8_t *buf, size_t len, size_t *off, uint64_t *v);

/* Checks the version byte and reads the packet number; *@off is then the
 * start of the frames. */
enum xport_wire_status xport_packet_parse_header (const uint8_t *buf, size_t len,
                                                  uint64_t *pn, size_t *off);
/* Parses the frame at *@off and advances past it. */
enum xport_wire_status xport_frame_parse (const uint8_t *buf, size_t len, size_t *off,
                                          struct xport_frame *f);

/* Builders: each writes at *@off if the whole frame fits before @cap,
 * advances *@off and returns true; otherwise writes nothing. */
bool xport_packet_put_header (uint8_t *buf, size_t cap, size_t *off, uint64_t pn);
bool xport_frame_put_simple (uint8_t *buf, size_t cap, size_t *off, uint8_t type);
bool xport_frame_put_ack (uint8_t *buf, size_t cap, size_t *off, uint64_t ack_delay_us,
                          const struct xport_ack_range *ranges, size_t n_ranges);
bool xport_frame_put_stream_header (uint8_t *buf, size_t cap, size_t *off, uint64_t id,
                                    uint64_t offset, size_t len, bool fin);
/* The largest data length that fits in a STREAM frame at *@off. */
size_t xport_frame_stream_room (size_t cap, size_t off, uint64_t id, uint64_t offset);
bool xport_frame_put_u1 (uint8_t *buf, size_t cap, size_t *off, uint8_t type, uint64_t a);
bool xport_frame_put_u2 (uint8_t *buf, size_t cap, size_t *off, uint8_t type, uint64_t a,
                         uint64_t b);
bool xport_frame_put_u3 (uint8_t *buf, size_t cap, size_t *off, uint8_t type, uint64_t a,
                         uint64_t b, uint64_t c);
bool xport_frame_put_close (uint8_t *buf, size_t cap, size_t *off, uint64_t code,
                            const char *reason);
bool xport_frame_put_datagram (uint8_t *buf, size_t cap, size_t *off, const uint8_t *data,
                               size_t len);
