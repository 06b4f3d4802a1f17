/* Tunnel frames: one frame is the plaintext of one DTLS record.
 *
 *   0       1       2               6
 *   +-------+-------+---------------+------------------+
 *   |version| type  |   stream id   |  payload ...     |
 *   +-------+-------+---------------+------------------+
 *
 * version is FRAME_VERSION; stream id is big-endian. See proto/PROTOCOL.md.
 * No allocation, no I/O. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define FRAME_VERSION 1
#define FRAME_HEADER_LEN 6
/* DTLS 1.2 with AES-GCM at a 1200-byte MTU carries 1163 bytes per record. */
#define FRAME_MAX_LEN 1163
#define FRAME_MAX_PAYLOAD (FRAME_MAX_LEN - FRAME_HEADER_LEN)

enum frame_type
{
  FRAME_SEGMENT = 1,  /* a segment of the reliable layer for one stream */
  FRAME_DATAGRAM = 2, /* one unreliable datagram */
};

enum frame_status
{
  FRAME_OK = 0,
  FRAME_INCOMPLETE, /* fewer bytes than a header */
  FRAME_INVALID,    /* unknown version or type, or too long */
};

struct frame
{
  uint8_t type;
  uint32_t stream_id;
  const uint8_t *payload; /* points into the parsed buffer */
  size_t payload_len;
};

/* Parses one whole frame (@len is the record length). */
enum frame_status frame_parse (const uint8_t *buf, size_t len, struct frame *out);

/* Writes a frame into @buf. Returns its length, or 0 if it does not fit in @cap
 * or exceeds FRAME_MAX_LEN or @type is unknown. */
size_t frame_build (uint8_t *buf, size_t cap, uint8_t type, uint32_t stream_id,
                    const uint8_t *payload, size_t payload_len);
