/* libFuzzer target: ctlmsg_parse over a whole control stream, and
 * ctlmsg_build of every message that parsed. */
#include <stdlib.h>
#include <string.h>

#include "ctlmsg.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  size_t off = 0;

  while (off < size)
    {
      struct ctlmsg m;
      size_t consumed = 0;
      enum ctlmsg_status st = ctlmsg_parse (data + off, size - off, &m, &consumed);
      if (st != CTLMSG_OK)
        {
          if (consumed != 0)
            abort ();
          break;
        }
      if (consumed < CTLMSG_HEADER_LEN || consumed > size - off
          || consumed > CTLMSG_MAX_LEN)
        abort ();

      /* build (parse (x)) == the consumed prefix of x. The exception: a HELLO
       * of another version may carry bytes we do not interpret. */
      uint8_t out[CTLMSG_MAX_LEN];
      size_t n = ctlmsg_build (out, sizeof out, &m);
      int other_hello = m.type == CTLMSG_HELLO && m.version != CTLMSG_VERSION;
      if (!other_hello && (n != consumed || memcmp (out, data + off, n) != 0))
        abort ();
      if (other_hello && (n != CTLMSG_HEADER_LEN + 1 || out[3] != m.version))
        abort ();
      /* And the rebuilt message parses to the same struct. */
      struct ctlmsg again;
      size_t consumed2;
      if (ctlmsg_parse (out, n, &again, &consumed2) != CTLMSG_OK || consumed2 != n
          || memcmp (&again, &m, sizeof m) != 0)
        abort ();
      off += consumed;
    }
  return 0;
}
