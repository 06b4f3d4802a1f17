/* The first TLS record of a connection. See tlshello.h. */
#include "tlshello.h"

TlsHelloStatus
tlshello_check (const uint8_t *data, size_t len)
{
  size_t record_len;

  if (len < TLSHELLO_HEADER_LEN)
    return len > 0 && data[0] != TLSHELLO_TYPE_HANDSHAKE ? TLSHELLO_INVALID
                                                         : TLSHELLO_INCOMPLETE;
  record_len = ((size_t)data[3] << 8) | data[4];
  if (data[0] != TLSHELLO_TYPE_HANDSHAKE || record_len == 0
      || record_len > TLSHELLO_PLAINTEXT_MAX)
    return TLSHELLO_INVALID;
  return len - TLSHELLO_HEADER_LEN >= record_len ? TLSHELLO_COMPLETE
                                                 : TLSHELLO_INCOMPLETE;
}
