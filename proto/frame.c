/* Tunnel frames. See frame.h and proto/PROTOCOL.md section "Tunnel frame". */
#include "frame.h"

#include <string.h>

static int
frame_type_is_known (uint8_t type)
{
  return type == FRAME_SEGMENT || type == FRAME_DATAGRAM;
}

enum frame_status
frame_parse (const uint8_t *buf, size_t len, struct frame *out)
{
  if (out != NULL)
    memset (out, 0, sizeof *out);
  if (buf == NULL || out == NULL || len < FRAME_HEADER_LEN)
    return FRAME_INCOMPLETE;
  /* One frame is one DTLS record: anything longer was not sent by a peer that
   * follows the protocol. */
  if (len > FRAME_MAX_LEN)
    return FRAME_INVALID;
  if (buf[0] != FRAME_VERSION || !frame_type_is_known (buf[1]))
    return FRAME_INVALID;

  out->type = buf[1];
  out->stream_id = (uint32_t)buf[2] << 24 | (uint32_t)buf[3] << 16 | (uint32_t)buf[4] << 8
                   | (uint32_t)buf[5];
  out->payload_len = len - FRAME_HEADER_LEN;
  out->payload = out->payload_len > 0 ? buf + FRAME_HEADER_LEN : NULL;
  return FRAME_OK;
}

size_t
frame_build (uint8_t *buf, size_t cap, uint8_t type, uint32_t stream_id,
             const uint8_t *payload, size_t payload_len)
{
  if (buf == NULL || !frame_type_is_known (type))
    return 0;
  if (payload_len > FRAME_MAX_PAYLOAD || (payload == NULL && payload_len > 0))
    return 0;
  size_t total = FRAME_HEADER_LEN + payload_len;
  if (total > cap)
    return 0;

  /* memmove: callers may build in place, with the payload already at
   * buf + FRAME_HEADER_LEN. */
  if (payload_len > 0)
    memmove (buf + FRAME_HEADER_LEN, payload, payload_len);
  buf[0] = FRAME_VERSION;
  buf[1] = type;
  buf[2] = (uint8_t)(stream_id >> 24);
  buf[3] = (uint8_t)(stream_id >> 16);
  buf[4] = (uint8_t)(stream_id >> 8);
  buf[5] = (uint8_t)stream_id;
  return total;
}
