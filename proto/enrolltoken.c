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

static unsigned
enrolltoken_value (unsigned char c)
{
  return c >= 'a' && c <= 'z' ? (unsigned)(c - 'a') : (unsigned)(c - '2') + 26;
}

bool
enrolltoken_decode (const char *text, size_t len, uint8_t raw[static ENROLLTOKEN_RAW_LEN])
{
  uint64_t acc = 0;
  unsigned bits = 0;
  size_t out = 0;

  if (!enrolltoken_is_valid (text, len))
    return false;
  /* 32 characters of 5 bits are exactly 20 bytes: no bits left over. */
  for (size_t i = ENROLLTOKEN_PREFIX_LEN; i < ENROLLTOKEN_LEN; i++)
    {
      acc = (acc << 5) | enrolltoken_value ((unsigned char)text[i]);
      bits += 5;
      if (bits >= 8)
        {
          bits -= 8;
          raw[out++] = (uint8_t)(acc >> bits);
          acc &= ((uint64_t)1 << bits) - 1;
        }
    }
  return true;
}

void
enrolltoken_encode (const uint8_t raw[static ENROLLTOKEN_RAW_LEN],
                    char out[static ENROLLTOKEN_LEN + 1])
{
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  uint64_t acc = 0;
  unsigned bits = 0;
  size_t n = ENROLLTOKEN_PREFIX_LEN;

  memcpy (out, ENROLLTOKEN_PREFIX, ENROLLTOKEN_PREFIX_LEN);
  for (size_t i = 0; i < ENROLLTOKEN_RAW_LEN; i++)
    {
      acc = (acc << 8) | raw[i];
      bits += 8;
      while (bits >= 5)
        {
          bits -= 5;
          out[n++] = alphabet[(acc >> bits) & 31];
        }
    }
  out[n] = '\0';
}
