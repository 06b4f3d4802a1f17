/* Peer identity: the peer-id names a public key.
 *
 * peer-id = lowercase RFC 4648 base32, without padding, of SHA-256 over the
 * certificate's DER SubjectPublicKeyInfo: 52 characters. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

/* 256 bits in 5-bit groups: ceil(256 / 5) = 52 characters. */
#define PEERID_LEN 52
#define PEERID_SIZE (PEERID_LEN + 1)
#define PEERID_HASH_LEN 32

/* Lowercase base32 (RFC 4648 section 6 alphabet), no padding. Writes a NUL
 * terminated string. Returns the number of characters written (without the
 * NUL), or 0 when @cap is too small. */
size_t peerid_base32_encode (const uint8_t *in, size_t len, char *out, size_t cap);

/* SHA-256 of @spki_der, base32. */
void peerid_from_spki_der (const uint8_t *spki_der, size_t len, char out[static PEERID_SIZE]);

/* The peer-id of @cert's public key. Returns false if the key cannot be encoded. */
bool peerid_from_x509 (X509 *cert, char out[static PEERID_SIZE]);

/* The key pin of @cert, as curl's CURLOPT_PINNEDPUBLICKEY and the agents
 * take it: "sha256//" and the base64 of the same SHA-256 over the
 * certificate's SubjectPublicKeyInfo that the peer-id is made of. Returns
 * false if the key cannot be encoded. */
#define PEERID_PIN_LEN (8 + 44)
#define PEERID_PIN_SIZE (PEERID_PIN_LEN + 1)
bool peerid_pin_from_x509 (X509 *cert, char out[static PEERID_PIN_SIZE]);

/* The peer-id of @pkey. */
bool peerid_from_pkey (EVP_PKEY *pkey, char out[static PEERID_SIZE]);

/* Strict check of a user- or network-supplied peer-id: exactly 52 characters of
 * [a-z2-7], and the unused low 4 bits of the last character zero (so that every
 * valid string names exactly one hash). */
bool peerid_is_valid (const char *s);

/* Constant-time comparison of two valid peer-ids. */
bool peerid_equal (const char *a, const char *b);
