/* Datagrams of UDP forwards: see dgram.h. */
#include "dgram.h"

#include "xport_wire.h"

size_t
dgram_put_header (uint8_t *buf, size_t cap, uint64_t flow)
{
  return xport_varint_put (buf, cap, flow);
}

bool
dgram_parse (const uint8_t *buf, size_t len, uint64_t *flow, const uint8_t **payload,
             size_t *payload_len)
{
  size_t off = 0;

  if (!xport_varint_get (buf, len, &off, flow))
    return false;
  *payload = buf + off;
  *payload_len = len - off;
  return true;
}
