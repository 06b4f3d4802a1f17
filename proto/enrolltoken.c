/* The shape of an enrollment token; see enrolltoken.h. */
#include "enrolltoken.h"

#include <string.h>

bool
enrolltoken_is_valid (const char *text, size_t len)
{
  unsigned bad = 0;

  if (text == NULL || len != ENROLLTOKEN_LEN
      || memcmp (text, ENROLLTOKEN_PREFIX, ENROLLTOKEN_PREFIX_LEN) != 0)
    return false;
  /* No early exit inside the secret part: its bytes leave no trace in the
   * time taken. */
  for (size_t i = ENROLLTOKEN_PREFIX_LEN; i < ENROLLTOKEN_LEN; i++)
    {
      unsigned char c = (unsigned char)text[i];
      unsigned letter = (unsigned)(c >= 'a') & (unsigned)(c <= 'z');
      unsigned digit = (unsigned)(c >= '2') & (unsigned)(c <= '7');

      bad |= (letter | digit) ^ 1u;
    }
  return bad == 0;
}
