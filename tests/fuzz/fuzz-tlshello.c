/* libFuzzer target: tlshello_check of the first bytes a client sends to the
 * signaling server (signaling/accept.c peeks at them before its handshake). */
#include <stdlib.h>

#include "fuzz.h"
#include "tlshello.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  TlsHelloStatus status = tlshello_check (data, size);

  /* A whole record fits the buffer that accept.c peeks into, and more bytes
   * never turn a verdict back: a complete record stays complete, an invalid
   * one invalid. */
  if (status == TLSHELLO_COMPLETE && size >= TLSHELLO_HEADER_LEN
      && TLSHELLO_HEADER_LEN + (((size_t)data[3] << 8) | data[4]) > TLSHELLO_BUFFER_MAX)
    abort ();
  for (size_t n = size; n > 0; n--)
    {
      TlsHelloStatus shorter = tlshello_check (data, n - 1);

      if (status == TLSHELLO_INCOMPLETE && shorter != TLSHELLO_INCOMPLETE)
        abort ();
      if (shorter == TLSHELLO_INVALID && status != TLSHELLO_INVALID)
        abort ();
    }
  return 0;
}
