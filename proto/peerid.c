/* Peer identity: SHA-256 of the DER SubjectPublicKeyInfo, lowercase base32.
 * See proto/PROTOCOL.md section "Peer-id". */
#include "peerid.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

/* RFC 4648 section 6, "The Base 32 Alphabet", lowercased. */
static const char peerid_alphabet[32] = "abcdefghijklmnopqrstuvwxyz234567";

/* Characters needed for @len bytes without padding: ceil (len * 8 / 5), written
 * without overflowing size_t for any @len. */
static size_t
peerid_base32_len (size_t len)
{
  return (len / 5) * 8 + ((len % 5) * 8 + 4) / 5;
}

size_t
peerid_base32_encode (const uint8_t *in, size_t len, char *out, size_t cap)
{
  if (out == NULL || cap == 0)
    return 0;
  out[0] = '\0';
  if (len > 0 && in == NULL)
    return 0;
  /* Refuse lengths whose output length would overflow size_t. */
  if (len > (SIZE_MAX - 8) / 8 * 5)
    return 0;

  size_t need = peerid_base32_len (len);
  if (need >= cap)
    return 0;

  size_t n = 0;
  uint32_t acc = 0; /* at most 12 significant bits are ever pending */
  unsigned bits = 0;
  for (size_t i = 0; i < len; i++)
    {
      acc = (acc << 8) | in[i];
      bits += 8;
      while (bits >= 5)
        {
          bits -= 5;
          out[n++] = peerid_alphabet[(acc >> bits) & 0x1f];
        }
      acc &= (1u << bits) - 1;
    }
  /* RFC 4648 section 6: the last group is padded with zero bits on the right. */
  if (bits > 0)
    out[n++] = peerid_alphabet[(acc << (5 - bits)) & 0x1f];
  out[n] = '\0';
  return n;
}

void
peerid_from_spki_der (const uint8_t *spki_der, size_t len, char out[static PEERID_SIZE])
{
  uint8_t hash[PEERID_HASH_LEN];
  unsigned int hash_len = 0;

  memset (out, 0, PEERID_SIZE);
  if (spki_der == NULL && len > 0)
    return;
  if (!EVP_Digest (spki_der, len, hash, &hash_len, EVP_sha256 (), NULL)
      || hash_len != PEERID_HASH_LEN)
    return;
  peerid_base32_encode (hash, sizeof hash, out, PEERID_SIZE);
}

/* Hashes an i2d_*() encoding; the encoder allocates, we free. */
static bool
peerid_from_der (unsigned char *der, int der_len, char out[static PEERID_SIZE])
{
  if (der == NULL || der_len <= 0)
    {
      OPENSSL_free (der);
      return false;
    }
  peerid_from_spki_der (der, (size_t)der_len, out);
  OPENSSL_free (der);
  return out[0] != '\0';
}

bool
peerid_from_x509 (X509 *cert, char out[static PEERID_SIZE])
{
  memset (out, 0, PEERID_SIZE);
  if (cert == NULL)
    return false;
  /* The certificate's own SubjectPublicKeyInfo, as it appears in its DER. */
  X509_PUBKEY *spki = X509_get_X509_PUBKEY (cert);
  if (spki == NULL)
    return false;
  unsigned char *der = NULL;
  int der_len = i2d_X509_PUBKEY (spki, &der);
  return peerid_from_der (der, der_len, out);
}

bool
peerid_pin_from_x509 (X509 *cert, char out[static PEERID_PIN_SIZE])
{
  unsigned char *der = NULL;
  unsigned char hash[SHA256_DIGEST_LENGTH];
  int der_len;

  memset (out, 0, PEERID_PIN_SIZE);
  if (cert == NULL || X509_get_X509_PUBKEY (cert) == NULL)
    return false;
  der_len = i2d_X509_PUBKEY (X509_get_X509_PUBKEY (cert), &der);
  if (der == NULL || der_len <= 0)
    {
      OPENSSL_free (der);
      return false;
    }
  SHA256 (der, (size_t)der_len, hash);
  OPENSSL_free (der);
  memcpy (out, "sha256//", 8);
  /* 32 bytes are 44 base64 characters; EVP_EncodeBlock adds the NUL. */
  return EVP_EncodeBlock ((unsigned char *)out + 8, hash, sizeof hash) == 44;
}

bool
peerid_from_pkey (EVP_PKEY *pkey, char out[static PEERID_SIZE])
{
  memset (out, 0, PEERID_SIZE);
  if (pkey == NULL)
    return false;
  /* i2d_PUBKEY writes the SubjectPublicKeyInfo (RFC 5280 section 4.1). */
  unsigned char *der = NULL;
  int der_len = i2d_PUBKEY (pkey, &der);
  return peerid_from_der (der, der_len, out);
}

static bool
peerid_char_value (char c, unsigned *value)
{
  if (c >= 'a' && c <= 'z')
    *value = (unsigned)(c - 'a');
  else if (c >= '2' && c <= '7')
    *value = (unsigned)(c - '2') + 26;
  else
    return false;
  return true;
}

bool
peerid_is_valid (const char *s)
{
  if (s == NULL || strnlen (s, PEERID_SIZE) != PEERID_LEN)
    return false;
  unsigned value = 0;
  for (size_t i = 0; i < PEERID_LEN; i++)
    if (!peerid_char_value (s[i], &value))
      return false;
  /* 52 characters carry 260 bits for a 256-bit hash: the last character's low
   * 4 bits are padding and must be zero, so each hash has exactly one name. */
  return (value & 0x0f) == 0;
}

bool
peerid_equal (const char *a, const char *b)
{
  if (!peerid_is_valid (a) || !peerid_is_valid (b))
    return false;
  return CRYPTO_memcmp (a, b, PEERID_LEN) == 0;
}
