/* Strict JSON syntax check (RFC 8259) for hostile input, before json-glib
 * sees it: no comments, no single quotes, no leading zeros, no "\u0000",
 * surrogate escapes only in pairs, nesting at most JSONSTRICT_MAX_DEPTH. */
#pragma once

#include <glib.h>

/* Our messages nest three deep ({"messages":[{...}]}); unknown members may
 * carry a little more structure, but not enough to exhaust a stack. */
#define JSONSTRICT_MAX_DEPTH 16

/* TRUE if @s (@len bytes, UTF-8 already checked) is exactly one JSON value. */
gboolean jsonstrict_check (const char *s, size_t len);
