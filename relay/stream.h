/* Stream framing of TURN over TCP and TLS (RFC 8656 section 12.5, RFC 8489
 * section 6.2.2), sans-IO: STUN messages and ChannelData messages follow
 * each other on the byte stream with no other framing; a message's length
 * is in its header. One struct relay_stream per connection buffers what was
 * read until a whole message is there; it never allocates. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Our bound on one message on a stream (no RFC limit beyond the 16-bit
 * length fields): relayed data goes on to peers over UDP, where anything
 * above a path MTU (1500 bytes, rarely up to 9000) is fragmented or lost,
 * and clients (libnice, browsers, coturn's) send messages of at most about
 * 1.5 KiB. A frame announcing more closes the connection. */
#define RELAY_STREAM_MAX_FRAME 16384
/* RFC 8656 section 12.5: over TCP and TLS, ChannelData is padded to a
 * multiple of 4 bytes (the padding is not counted in its length field). */
#define RELAY_STREAM_CHANNEL_HEADER_LEN 4

enum relay_frame_status
{
  RELAY_FRAME_OK,         /* a whole message is there */
  RELAY_FRAME_INCOMPLETE, /* read more */
  RELAY_FRAME_INVALID,    /* not STUN nor ChannelData: close the connection */
  RELAY_FRAME_TOO_BIG,    /* over RELAY_STREAM_MAX_FRAME: close the connection */
};

/* Looks at the message at the start of buf (len bytes so far). On
 * RELAY_FRAME_OK, *msg_len is the message without padding and *frame_len
 * the bytes it takes on the stream (ChannelData padded to 4). On
 * RELAY_FRAME_TOO_BIG, *frame_len is the length announced. Decides from the
 * first 4 bytes for ChannelData, the first 8 for STUN. */
enum relay_frame_status relay_frame_check (const uint8_t *buf, size_t len,
                                           size_t *msg_len, size_t *frame_len);

/* A connection's input buffer: bytes [start, end) are read and not yet
 * consumed. */
struct relay_stream
{
  size_t start;
  size_t end;
  uint8_t buf[RELAY_STREAM_MAX_FRAME];
};

void relay_stream_init (struct relay_stream *st);
/* Where to read into, and how much fits (never 0 while relay_stream_next
 * has not failed: a whole frame always fits). Moves unconsumed bytes to the
 * front first. */
uint8_t *relay_stream_space (struct relay_stream *st, size_t *avail);
/* n bytes were read into the space (n <= avail). */
void relay_stream_commit (struct relay_stream *st, size_t n);
/* The next whole message, or why there is none. On RELAY_FRAME_OK, *msg and
 * *msg_len (padding excluded) stay valid until the next call on st. After
 * INVALID or TOO_BIG the connection must be closed. */
enum relay_frame_status relay_stream_next (struct relay_stream *st, const uint8_t **msg,
                                           size_t *msg_len);
