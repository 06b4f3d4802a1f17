/* The operator's requests to p2ptun-signal (enroll, revoke, peers, tokens,
 * policy), as one JSON object each way, run on an AccessStore. No I/O: the
 * running server takes them on its admin socket (adminsock.h), and the
 * admin commands run them on the state directory themselves when no server
 * runs (admincli.c).
 *
 * Requests: {"op":OP, ...}; replies {"ok":true, ...} or
 * {"ok":false,"error":TEXT}.
 *   token        reusable (bool), expires (Unix s, 0: never), note
 *                -> token, id        (the token's only copy)
 *   cancel       id
 *   enroll       peer, note
 *   enroll-seen  -> count
 *   revoke       peer
 *   policy       peer (absent: the default), max_allocations, max_bps
 *                (0: not set)
 *   peers        -> peers [{id, via, note, enrolled, last_seen, online,
 *                   max_allocations, max_bps}] (online only from a running
 *                   server; policies only when set), seen [{id, first, last}],
 *                   revoked [{id, when}], default_policy
 *   tokens       -> tokens [{id, reusable, created, expires, uses, note}] */
#pragma once

#include <glib.h>

#include "access.h"

/* Requests are at most this long. */
#define ADMIN_REQUEST_MAX (64 * 1024)

typedef struct
{
  /* NULL when no server runs: peers then have no "online". */
  AccessOnlineFunc is_online;
  /* After a revoke: the server ends what the peer has open. */
  void (*revoked) (const char *peer, gpointer data);
  gpointer data;
} AdminHooks;

/* Runs @request at @now (Unix seconds). Returns the reply's JSON text;
 * *changed tells whether the store changed and must be saved. */
char *admin_run (AccessStore *store, const char *request, gsize len, gint64 now,
                 const AdminHooks *hooks, gboolean *changed, gsize *reply_len);
