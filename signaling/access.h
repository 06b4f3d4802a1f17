/* Who may use a p2ptun-signal: enrolled peer-ids, revoked ones, enrollment
 * tokens, peers seen but not admitted, and per-peer relay policy. No I/O:
 * time is passed in (Unix seconds), the state goes to and from JSON
 * (access.json in the state directory, written by accessfile.c).
 *
 * Tokens are "p2ptun1-" and 32 characters of lowercase base32: 160 random
 * bits. Only their SHA-256 is kept; a presented token is compared against
 * every stored hash in constant time. A token's id (for listing and
 * cancelling) is the first 8 hex digits of its hash. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "enrolltoken.h"
#include "peerid.h"

#define ACCESS_TOKEN_PREFIX ENROLLTOKEN_PREFIX
#define ACCESS_TOKEN_RAW_LEN ENROLLTOKEN_RAW_LEN
#define ACCESS_TOKEN_LEN ENROLLTOKEN_LEN
#define ACCESS_TOKEN_ID_LEN 8
#define ACCESS_TOKEN_ID_SIZE (ACCESS_TOKEN_ID_LEN + 1)
#define ACCESS_HASH_LEN 32

/* Bounds of what the state may hold. */
#define ACCESS_MAX_PEERS 100000
#define ACCESS_MAX_REVOKED 100000
#define ACCESS_MAX_TOKENS 1000
#define ACCESS_MAX_SEEN 1024
#define ACCESS_NOTE_MAX 200
/* access.json is read whole: at most this large. */
#define ACCESS_FILE_MAX (64 * 1024 * 1024)
/* A relay policy's bounds; they match the TURN username grammar
 * (proto/turnuser.h). */
#define ACCESS_MAX_ALLOCATIONS 10000
#define ACCESS_MAX_BPS G_GUINT64_CONSTANT (1000000000000)

#define ACCESS_ERROR (access_error_quark ())
GQuark access_error_quark (void);

typedef enum
{
  ACCESS_ERROR_BAD_FILE,   /* access.json is not valid */
  ACCESS_ERROR_FULL,       /* a bound above is reached */
  ACCESS_ERROR_UNKNOWN,    /* no such peer or token */
  ACCESS_ERROR_INVALID,    /* an argument is not valid */
} AccessError;

typedef enum
{
  ACCESS_ADMITTED,
  ACCESS_NOT_ENROLLED,
  ACCESS_REVOKED,
} AccessVerdict;

typedef enum
{
  ACCESS_REDEEM_ENROLLED,
  ACCESS_REDEEM_ALREADY,   /* enrolled before: the token is not used up */
  ACCESS_REDEEM_BAD_TOKEN, /* unknown, expired, used or cancelled */
  ACCESS_REDEEM_REVOKED,   /* the peer is revoked: no token admits it again */
  ACCESS_REDEEM_FULL,      /* ACCESS_MAX_PEERS enrolled */
} AccessRedeem;

/* 0 means "not set": the relay's own default applies. */
typedef struct
{
  guint max_allocations;
  guint64 max_bps; /* relayed bytes per second per allocation */
} AccessPolicy;

typedef struct
{
  char id[PEERID_SIZE];
  char *note;       /* may be NULL */
  char *via;        /* "token ID", "operator", "client-ca" or "seen" */
  gint64 enrolled;  /* Unix seconds */
  gint64 last_seen; /* 0: never */
  AccessPolicy policy;
} AccessPeer;

typedef struct
{
  char id[ACCESS_TOKEN_ID_SIZE];
  guint8 hash[ACCESS_HASH_LEN];
  gboolean reusable;
  gint64 created;
  gint64 expires; /* 0: never */
  guint uses;
  char *note;
} AccessToken;

typedef struct
{
  char id[PEERID_SIZE];
  gint64 first, last;
} AccessSeen;

typedef struct
{
  char id[PEERID_SIZE];
  gint64 when;
} AccessRevoked;

typedef struct _AccessStore AccessStore;

AccessStore *access_store_new (void);
void access_store_free (AccessStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AccessStore, access_store_free)

/* The state from access.json's text; an ACCESS_ERROR_BAD_FILE on anything
 * malformed, out of bounds or duplicated. */
AccessStore *access_store_from_json (const char *data, gsize len, GError **error);
char *access_store_to_json (const AccessStore *store, gsize *len);

/* Whether @peer may use the server. */
AccessVerdict access_store_check (const AccessStore *store, const char *peer);

/* Notes a request by @peer at @now: its last-seen time when enrolled, else a
 * place in the seen list (the oldest is dropped when full). Returns TRUE
 * when the seen list changed (worth saving soon). */
gboolean access_store_saw (AccessStore *store, const char *peer, gint64 now);

/* A new token; returns its text (the only copy: the caller shows it once and
 * wipes it) and its id in @id. */
char *access_store_add_token (AccessStore *store, gboolean reusable, gint64 expires,
                              const char *note, gint64 now,
                              char id[static ACCESS_TOKEN_ID_SIZE], GError **error);
/* Presents a token (its bytes, from access_token_parse) for @peer. */
AccessRedeem access_store_redeem (AccessStore *store,
                                  const guint8 token[static ACCESS_TOKEN_RAW_LEN],
                                  const char *peer, gint64 now);
gboolean access_store_cancel_token (AccessStore *store, const char *id, GError **error);
/* Drops the tokens that expired. Returns how many. */
guint access_store_prune (AccessStore *store, gint64 now);

/* Enrolls @peer directly (the operator, or a client CA); a revoked peer is
 * admitted again. Already enrolled: its note is replaced when @note is
 * given. */
gboolean access_store_enroll (AccessStore *store, const char *peer, const char *via,
                              const char *note, gint64 now, GError **error);
/* Enrolls every peer of the seen list. Returns how many. */
guint access_store_enroll_seen (AccessStore *store, gint64 now);
/* Revokes @peer, enrolled or seen: it is refused from now on. */
gboolean access_store_revoke (AccessStore *store, const char *peer, gint64 now,
                              GError **error);

/* @peer NULL: the default of every peer without one of its own. */
gboolean access_store_set_policy (AccessStore *store, const char *peer,
                                  const AccessPolicy *policy, GError **error);
/* What applies to @peer: its own values, else the defaults. */
AccessPolicy access_store_policy_for (const AccessStore *store, const char *peer);
AccessPolicy access_store_default_policy (const AccessStore *store);

/* The lists, as new arrays (free them) of elements the store owns: peers,
 * seen and revoked sorted by peer-id, tokens by age. */
GPtrArray *access_store_peers (const AccessStore *store);
GPtrArray *access_store_tokens (const AccessStore *store);
GPtrArray *access_store_seen (const AccessStore *store);
GPtrArray *access_store_revoked (const AccessStore *store);

/* Whether @peer has a receive open now (the running server's mailboxes). */
typedef gboolean (*AccessOnlineFunc) (const char *peer, gpointer data);

/* Adds "default_policy", "peers", "revoked" and "seen" to the object open in
 * @b; with @online, each peer gets "online" too. Policies carry only the
 * values that are set. */
void access_store_add_lists (const AccessStore *store, JsonBuilder *b, AccessOnlineFunc online,
                             gpointer data);
/* Adds "tokens": with @hashes their SHA-256 (access.json), else their ids. */
void access_store_add_tokens (const AccessStore *store, JsonBuilder *b, gboolean hashes);
/* Ends the object open in @b and returns the text of the whole. */
char *access_json_finish (JsonBuilder *b, gboolean pretty, gsize *len);

/* A token's text (proto/enrolltoken.h) to its raw bytes. */
gboolean access_token_parse (const char *text, gsize len,
                             guint8 raw[static ACCESS_TOKEN_RAW_LEN]);
/* The token of POST /v1/enroll's body {"token":"..."}: FALSE when the body
 * is not exactly that. */
gboolean access_enroll_body_parse (const char *data, gsize len,
                                   guint8 raw[static ACCESS_TOKEN_RAW_LEN]);
