/* libFuzzer target: the signaling server's access state (access.json), the
 * body of POST /v1/enroll, a token's text and the operator's requests
 * (signaling/access.c, signaling/admin.c). The first byte picks the parser. */
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "admin.h"
#include "fuzz.h"

#define PEER "v7hgw73wxjh5x4e2yhbzmzbd3ozvxabnxzgkcsusztm34ucax2ma"

static void
fuzz_file (const char *data, size_t size)
{
  g_autoptr (AccessStore) store = access_store_from_json (data, size, NULL);
  g_autoptr (AccessStore) back = NULL;
  g_autofree char *json = NULL, *json2 = NULL;
  gsize len = 0, len2 = 0;

  if (store == NULL)
    return;
  /* What loads, saves, and loads again the same. */
  json = access_store_to_json (store, &len);
  back = access_store_from_json (json, len, NULL);
  if (back == NULL)
    abort ();
  json2 = access_store_to_json (back, &len2);
  if (len != len2 || memcmp (json, json2, len) != 0)
    abort ();
  (void) access_store_check (store, PEER);
  (void) access_store_saw (store, PEER, 1);
}

static void
fuzz_admin (const char *data, size_t size)
{
  g_autoptr (AccessStore) store = access_store_new ();
  g_autofree char *reply = NULL;
  gboolean changed = FALSE;
  gsize len = 0;

  (void) access_store_enroll (store, PEER, "operator", NULL, 1, NULL);
  reply = admin_run (store, data, size, 1, NULL, &changed, &len);
  if (reply == NULL || len == 0)
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  guint8 raw[ACCESS_TOKEN_RAW_LEN];
  const char *text = (const char *) data + 1;

  if (size == 0)
    return 0;
  switch (data[0] % 4)
    {
    case 0:
      fuzz_file (text, size - 1);
      break;
    case 1:
      (void) access_enroll_body_parse (text, size - 1, raw);
      break;
    case 2:
      if (access_token_parse (text, size - 1, raw) && size - 1 != ACCESS_TOKEN_LEN)
        abort ();
      break;
    default:
      fuzz_admin (text, size - 1);
      break;
    }
  return 0;
}
