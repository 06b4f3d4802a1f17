/* The TURN REST username (coturn's use-auth-secret; draft-uberti-behave-
 * turn-rest-00 section 2.2), as p2ptun-signal writes it and p2ptun-relay
 * reads it. Sans-IO, no allocation while parsing.
 *
 *   username = EXPIRY [ ":" NAME ]
 *   NAME     = PEERID [ ":" OPT *( "," OPT ) ]   ; a peer-id with options
 *            / ANYNAME                           ; anything else, no options
 *   OPT      = KEY "=" DIGITS
 *   KEY      = 1*8 ( "a" - "z" )
 *   DIGITS   = 1*20 ( "0" - "9" )
 *   EXPIRY   = 1*19 ( "0" - "9" )                ; Unix seconds, <= G_MAXINT64
 *
 * PEERID is a valid peer-id (peerid.h). Known keys: "a", the most
 * allocations for this peer at once (1 to TURNUSER_MAX_ALLOC), "b", the most
 * relayed bytes per second per allocation (1 to TURNUSER_MAX_BPS). A key may
 * appear once; unknown keys are skipped, so that a newer signaling server
 * does not lock out an older relay. ANYNAME (any bytes but NUL, possibly
 * empty or with colons) keeps usernames of other REST issuers working: a
 * NAME that begins with a peer-id and a colon is always read as PEERID and
 * options. The whole username is at most TURNUSER_MAX_LEN bytes.
 *
 * The password is base64(HMAC-SHA1(secret, username)) over all of it, so
 * the options are signed by the operator's secret. */
#pragma once

#include <glib.h>

#include "peerid.h"

/* Longer usernames are refused (RFC 8489 section 14.3 allows up to 509
 * bytes; a p2ptun username with both known options at their largest is
 * 19 + 1 + 52 + 24 = 96 bytes). */
#define TURNUSER_MAX_LEN 256
#define TURNUSER_MAX_KEY_LEN 8
#define TURNUSER_MAX_DIGITS 20
#define TURNUSER_MAX_EXPIRY_DIGITS 19
/* "a": allocations per peer. */
#define TURNUSER_MAX_ALLOC 10000u
/* "b": bytes per second per allocation; the relay's largest --max-bps (its
 * token bucket counts byte-microseconds in 64 bits). */
#define TURNUSER_MAX_BPS 1000000000000ull

enum turnuser_status
{
  TURNUSER_OK,
  TURNUSER_TOO_LONG,     /* over TURNUSER_MAX_LEN */
  TURNUSER_BAD_EXPIRY,   /* not 1 to 19 digits (at most G_MAXINT64) up to the
                            end or the first ':' */
  TURNUSER_BAD_NAME,     /* a NUL byte in the name */
  TURNUSER_BAD_OPTION,   /* after PEERID ":", not KEY "=" DIGITS separated by ',' */
  TURNUSER_DUPLICATE,    /* a key given twice */
  TURNUSER_OUT_OF_RANGE, /* "a" or "b" outside its range */
};

struct turnuser
{
  gint64 expiry;
  const char *name; /* NAME: the peer-id, or ANYNAME; points into the
                       input, never NULL after TURNUSER_OK */
  size_t name_len;  /* 0 for a bare "EXPIRY" or "EXPIRY:" */
  gboolean is_peer; /* NAME is a peer-id (options may have followed) */
  guint max_alloc;  /* "a", 0: not given */
  guint64 max_bps;  /* "b", 0: not given */
};

/* Parses s[0, len) (need not be NUL-terminated) into *out. On any status
 * but TURNUSER_OK, *out is zeroed. */
enum turnuser_status turnuser_parse (const char *s, size_t len, struct turnuser *out);

/* A short English description of @status, for logs. */
const char *turnuser_status_to_string (enum turnuser_status status);

/* "EXPIRY:PEERID", with ":a=N" and/or ",b=N" (":b=N" alone) when max_alloc
 * or max_bps is not 0. expiry >= 0, peer_id valid, max_alloc at most
 * TURNUSER_MAX_ALLOC and max_bps at most TURNUSER_MAX_BPS; NULL (a
 * programming error) otherwise. Free with g_free. */
char *turnuser_format (gint64 expiry, const char *peer_id, guint max_alloc,
                       guint64 max_bps);
