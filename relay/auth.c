/* TURN REST credentials and stateless nonces; see auth.h. */
#include "auth.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

gboolean
relay_rest_password (const uint8_t *secret, size_t secret_len, const char *username,
                     size_t username_len, char out[static 29])
{
  uint8_t mac[20];
  size_t n = 0;
  out[0] = '\0';
  if (EVP_Q_mac (NULL, "HMAC", NULL, "SHA1", NULL, secret, secret_len,
                 (const unsigned char *)username, username_len, mac, sizeof mac, &n)
          == NULL
      || n != sizeof mac)
    return FALSE;
  EVP_EncodeBlock ((unsigned char *)out, mac, sizeof mac); /* 28 chars + NUL */
  OPENSSL_cleanse (mac, sizeof mac);
  return TRUE;
}

static void
nonce_mac (const uint8_t key[static RELAY_NONCE_KEY_LEN], guint32 bucket,
           const struct stun_addr *client, uint8_t mac[static RELAY_NONCE_MAC_LEN])
{
  uint8_t in[4 + 1 + 2 + 16] = { 0 };
  in[0] = (uint8_t)(bucket >> 24);
  in[1] = (uint8_t)(bucket >> 16);
  in[2] = (uint8_t)(bucket >> 8);
  in[3] = (uint8_t)bucket;
  in[4] = client->family;
  in[5] = (uint8_t)(client->port >> 8);
  in[6] = (uint8_t)client->port;
  memcpy (in + 7, client->ip, client->family == 6 ? 16 : 4);
  uint8_t full[32];
  size_t n = 0;
  if (EVP_Q_mac (NULL, "HMAC", NULL, "SHA256", NULL, key, RELAY_NONCE_KEY_LEN, in,
                 sizeof in, full, sizeof full, &n)
      == NULL)
    memset (full, 0, sizeof full);
  memcpy (mac, full, RELAY_NONCE_MAC_LEN);
}

void
relay_nonce_make (const uint8_t key[static RELAY_NONCE_KEY_LEN], gint64 now,
                  const struct stun_addr *client, char out[static RELAY_NONCE_LEN + 1])
{
  guint32 bucket = (guint32)(now / RELAY_NONCE_BUCKET);
  uint8_t mac[RELAY_NONCE_MAC_LEN];
  nonce_mac (key, bucket, client, mac);
  g_snprintf (out, 9, "%08x", bucket);
  for (size_t i = 0; i < RELAY_NONCE_MAC_LEN; i++)
    g_snprintf (out + 8 + 2 * i, 3, "%02x", mac[i]);
}

enum relay_nonce_status
relay_nonce_check (const uint8_t key[static RELAY_NONCE_KEY_LEN], gint64 now,
                   const struct stun_addr *client, const char *nonce, size_t len)
{
  if (len != RELAY_NONCE_LEN)
    return RELAY_NONCE_BAD;
  guint32 bucket = 0;
  for (size_t i = 0; i < 8; i++)
    {
      int d = g_ascii_xdigit_value (nonce[i]);
      if (d < 0)
        return RELAY_NONCE_BAD;
      bucket = (bucket << 4) | (guint32)d;
    }
  char want[RELAY_NONCE_LEN + 1];
  uint8_t mac[RELAY_NONCE_MAC_LEN];
  nonce_mac (key, bucket, client, mac);
  for (size_t i = 0; i < RELAY_NONCE_MAC_LEN; i++)
    g_snprintf (want + 8 + 2 * i, 3, "%02x", mac[i]);
  if (CRYPTO_memcmp (want + 8, nonce + 8, 2 * RELAY_NONCE_MAC_LEN) != 0)
    return RELAY_NONCE_BAD;
  guint32 cur = (guint32)(now / RELAY_NONCE_BUCKET);
  if (bucket > cur)
    return RELAY_NONCE_BAD;
  if (cur - bucket > 1)
    return RELAY_NONCE_STALE;
  return RELAY_NONCE_VALID;
}
