/* libFuzzer target: dgram_parse of a received UDP-forward datagram, and
 * the prefix written again for the flow it named. */
#include <stdlib.h>
#include <string.h>

#include "dgram.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  uint64_t flow;
  const uint8_t *payload;
  size_t len;

  if (!dgram_parse (data, size, &flow, &payload, &len))
    return 0;
  if (payload < data || len > size || payload + len != data + size)
    abort ();
  /* The prefix read is one that dgram_put_header writes (the shortest
   * encoding is not required, so compare values, not bytes). */
  uint8_t out[DGRAM_HEADER_MAX];
  size_t n = dgram_put_header (out, sizeof out, flow);
  uint64_t again;
  const uint8_t *p2;
  size_t l2;
  if (n == 0 || !dgram_parse (out, n, &again, &p2, &l2) || again != flow || l2 != 0)
    abort ();
  return 0;
}
