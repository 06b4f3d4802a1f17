/* One TURN allocation (RFC 8656 section 2.2) and its permission and channel
 * tables, with their lookups. No I/O; time is passed in. */
#pragma once

#include <glib.h>

#include "server.h"
#include "stun.h"

/* RFC 8656 section 2.2: an allocation is named by its 5-tuple. Over TCP and
 * TLS the connection stands for it (conn: the shell's handle; NULL over
 * UDP). */
struct relay_tuple
{
  enum relay_transport transport;
  struct stun_addr client;
  void *conn;
};

struct relay_perm
{
  struct stun_addr peer; /* port ignored: permissions are per IP (RFC 8656 9) */
  gint64 expiry;
};

struct relay_chan
{
  uint16_t number;
  struct stun_addr peer;
  gint64 expiry;
};

struct relay_alloc
{
  struct relay_tuple tuple;
  char *username;
  char *name;         /* the username's NAME: the quota's key (quota.h) */
  gint64 cred_expiry; /* the username's EXPIRY: expiry never passes it */
  guint64 max_bps;    /* the username's "b=", else config.max_bps */
  uint8_t key[16];
  struct stun_addr relayed;
  void *handle;
  gint64 expiry;
  uint8_t txid[STUN_TXID_LEN]; /* of the Allocate, to answer retransmissions */
  gboolean has_token;
  uint8_t token[RELAY_TOKEN_LEN]; /* handed out with this allocation */
  guint n_perms;
  guint n_chans;
  struct relay_perm *perms; /* config.max_permissions entries */
  struct relay_chan *chans; /* config.max_channels entries */
  /* Token bucket of the bandwidth limit (max_bps): credit in
   * byte-microseconds and when last filled; when a drop was last logged and
   * what was dropped since. */
  guint64 bw_tokens;
  gint64 bw_filled_us;
  gint64 bw_logged;
  guint64 bw_dropped;
};

/* Takes len bytes from the bucket of a limit of max_bps bytes per second
 * (0: none), refilling it for the time since the last call; FALSE, and
 * nothing taken, when fewer are left. */
gboolean relay_alloc_bw_take (struct relay_alloc *a, guint64 max_bps, gint64 now_us,
                              size_t len);

gboolean relay_addr_equal_ip (const struct stun_addr *a, const struct stun_addr *b);
gboolean relay_addr_equal (const struct stun_addr *a, const struct stun_addr *b);
/* A hash of the address and port (relay_addr_equal's match). */
guint relay_addr_hash (const struct stun_addr *a);
/* "A.B.C.D:PORT" or "[V6]:PORT" into buf; returns buf. */
char *relay_addr_to_string (const struct stun_addr *a, char *buf, size_t cap);

/* Frees @p, a struct relay_alloc (a GDestroyNotify). */
void relay_alloc_free (gpointer p);

/* The live permission for @peer's IP address, or NULL. */
struct relay_perm *relay_alloc_perm_find (struct relay_alloc *a,
                                          const struct stun_addr *peer, gint64 now);
/* Installs or refreshes a permission; FALSE when the table holds
 * @max_permissions live entries already. */
gboolean relay_alloc_perm_install (guint max_permissions, struct relay_alloc *a,
                                   const struct stun_addr *peer, gint64 now);

/* The live channel with @number, or bound to @peer (address and port), or NULL. */
struct relay_chan *relay_alloc_chan_by_number (struct relay_alloc *a, uint16_t number,
                                               gint64 now);
struct relay_chan *relay_alloc_chan_by_peer (struct relay_alloc *a,
                                             const struct stun_addr *peer, gint64 now);
/* relay_alloc_bw_take, and on a drop a log line at most once per
 * RELAY_BW_LOG_INTERVAL per allocation, with the bytes dropped since the
 * last one. TRUE to relay the len bytes. */
gboolean relay_alloc_bw_allow (struct relay_alloc *a, guint64 max_bps, gint64 now_us,
                               size_t len);
