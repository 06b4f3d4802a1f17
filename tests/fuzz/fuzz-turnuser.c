/* libFuzzer target: turnuser_parse over arbitrary bytes, and for a peer-id
 * username, turnuser_format of what it parsed, which must parse back to the
 * same fields. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "turnuser.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *s = (const char *)data;
  struct turnuser u;
  if (turnuser_parse (s, size, &u) != TURNUSER_OK)
    {
      if (u.expiry != 0 || u.name != NULL || u.max_alloc != 0 || u.max_bps != 0)
        abort ();
      return 0;
    }
  if (size > TURNUSER_MAX_LEN || u.expiry < 0 || u.max_alloc > TURNUSER_MAX_ALLOC
      || u.max_bps > TURNUSER_MAX_BPS)
    abort ();
  if (u.name == NULL || u.name < s || u.name_len > size
      || (size_t)(u.name - s) > size - u.name_len
      || memchr (u.name, '\0', u.name_len) != NULL)
    abort ();
  if (!u.is_peer)
    {
      if (u.max_alloc != 0 || u.max_bps != 0)
        abort ();
      return 0;
    }
  if (u.name_len != PEERID_LEN)
    abort ();
  char peer[PEERID_SIZE];
  memcpy (peer, u.name, PEERID_LEN);
  peer[PEERID_LEN] = '\0';
  char *again = turnuser_format (u.expiry, peer, u.max_alloc, u.max_bps);
  struct turnuser v;
  if (again == NULL || turnuser_parse (again, strlen (again), &v) != TURNUSER_OK
      || v.expiry != u.expiry || !v.is_peer || v.name_len != PEERID_LEN
      || memcmp (v.name, peer, PEERID_LEN) != 0 || v.max_alloc != u.max_alloc
      || v.max_bps != u.max_bps)
    abort ();
  g_free (again);
  return 0;
}
