/* TURN REST credentials (coturn's use-auth-secret; the username's grammar
 * is proto/turnuser.h) and stateless nonces (RFC 8489 section 9.2). No
 * state: the nonce key is the caller's. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "stun.h"

/* A nonce stays fresh for one to two buckets (stale: 438, RFC 8489 9.2.4). */
#define RELAY_NONCE_BUCKET 600
#define RELAY_NONCE_KEY_LEN 32
/* Nonce: 8 hex digits of the time bucket, 24 of a truncated HMAC-SHA256
 * over the bucket and the client's address. */
#define RELAY_NONCE_MAC_LEN 12
#define RELAY_NONCE_LEN (8 + 2 * RELAY_NONCE_MAC_LEN)

enum relay_nonce_status
{
  RELAY_NONCE_VALID,
  RELAY_NONCE_STALE, /* ours, but older than one bucket: 438 */
  RELAY_NONCE_BAD,   /* not ours, or not for this client: 401 */
};

void relay_nonce_make (const uint8_t key[static RELAY_NONCE_KEY_LEN], gint64 now,
                       const struct stun_addr *client,
                       char out[static RELAY_NONCE_LEN + 1]);
enum relay_nonce_status relay_nonce_check (const uint8_t key[static RELAY_NONCE_KEY_LEN],
                                           gint64 now, const struct stun_addr *client,
                                           const char *nonce, size_t len);

/* For tests and tools: the REST password base64(HMAC-SHA1(secret, username))
 * into out (at least 29 bytes), NUL-terminated. */
gboolean relay_rest_password (const uint8_t *secret, size_t secret_len,
                              const char *username, size_t username_len,
                              char out[static 29]);
