/* libFuzzer target: frame_parse, and frame_build of whatever parsed. */
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct frame f;
  uint8_t out[FRAME_MAX_LEN];

  if (frame_parse (data, size, &f) != FRAME_OK)
    return 0;
  if (f.payload_len + FRAME_HEADER_LEN != size
      || (f.payload_len > 0 && f.payload != data + FRAME_HEADER_LEN))
    abort ();
  /* A frame that parses is rebuilt byte for byte. */
  size_t n = frame_build (out, sizeof out, f.type, f.stream_id, f.payload, f.payload_len);
  if (n != size || memcmp (out, data, size) != 0)
    abort ();
  return 0;
}
