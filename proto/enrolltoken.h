/* An enrollment token of p2ptun-signal, as the agent presents it to
 * POST /v1/enroll (signaling/API.md): "p2ptun1-" and 32 characters of
 * lowercase base32 (RFC 4648 section 6 alphabet, a-z and 2-7): 160 random
 * bits, which 32 characters carry exactly, so there are no padding bits.
 *
 * A token is a secret: nothing here copies, prints or logs it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENROLLTOKEN_PREFIX "p2ptun1-"
#define ENROLLTOKEN_PREFIX_LEN 8
#define ENROLLTOKEN_BODY_LEN 32
#define ENROLLTOKEN_LEN (ENROLLTOKEN_PREFIX_LEN + ENROLLTOKEN_BODY_LEN)
#define ENROLLTOKEN_RAW_LEN 20

/* Whether the @len bytes at @text are a token's shape: the prefix, then
 * exactly 32 characters of [a-z2-7]. Reads no byte past @len; NUL is not
 * part of the grammar. Takes the same time for every token of the right
 * length. */
bool enrolltoken_is_valid (const char *text, size_t len);

/* The 20 random bytes of a valid token (the server hashes them); false,
 * with @raw untouched, when enrolltoken_is_valid() is false. */
bool enrolltoken_decode (const char *text, size_t len, uint8_t raw[static ENROLLTOKEN_RAW_LEN]);

/* The token of @raw: ENROLLTOKEN_LEN characters and a NUL into @out. */
void enrolltoken_encode (const uint8_t raw[static ENROLLTOKEN_RAW_LEN],
                         char out[static ENROLLTOKEN_LEN + 1]);
