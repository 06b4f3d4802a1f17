/* An enrollment token of p2ptun-signal, as the agent presents it to
 * POST /v1/enroll (signaling/API.md): "p2ptun1-" and 32 characters of
 * lowercase base32 (RFC 4648 section 6 alphabet, a-z and 2-7): 160 random
 * bits, which 32 characters carry exactly, so there are no padding bits.
 *
 * A token is a secret: nothing here copies, prints or logs it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define ENROLLTOKEN_PREFIX "p2ptun1-"
#define ENROLLTOKEN_PREFIX_LEN 8
#define ENROLLTOKEN_BODY_LEN 32
#define ENROLLTOKEN_LEN (ENROLLTOKEN_PREFIX_LEN + ENROLLTOKEN_BODY_LEN)

/* Whether the @len bytes at @text are a token's shape: the prefix, then
 * exactly 32 characters of [a-z2-7]. Reads no byte past @len; NUL is not
 * part of the grammar. Takes the same time for every token of the right
 * length. */
bool enrolltoken_is_valid (const char *text, size_t len);
