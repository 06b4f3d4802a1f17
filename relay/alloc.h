/* One TURN allocation (RFC 8656 section 2.2) and its permission and channel
 * tables, with their lookups. No I/O; time is passed in. */
#pragma once

#include <glib.h>

#include "server.h"
#include "stun.h"

struct relay_tuple
{
  enum relay_transport transport;
  struct stun_addr client;
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
};

gboolean relay_addr_equal_ip (const struct stun_addr *a, const struct stun_addr *b);
gboolean relay_addr_equal (const struct stun_addr *a, const struct stun_addr *b);

/* Frees @p, a struct relay_alloc (a GDestroyNotify). */
void relay_alloc_free (gpointer p);

/* The live permission for @peer's IP address, or NULL. */
struct relay_perm *relay_alloc_perm_find (struct relay_alloc *a, const struct stun_addr *peer,
                                          gint64 now);
/* Installs or refreshes a permission; FALSE when the table holds
 * @max_permissions live entries already. */
gboolean relay_alloc_perm_install (guint max_permissions, struct relay_alloc *a,
                                   const struct stun_addr *peer, gint64 now);

/* The live channel with @number, or bound to @peer (address and port), or NULL. */
struct relay_chan *relay_alloc_chan_by_number (struct relay_alloc *a, uint16_t number, gint64 now);
struct relay_chan *relay_alloc_chan_by_peer (struct relay_alloc *a, const struct stun_addr *peer,
                                             gint64 now);
