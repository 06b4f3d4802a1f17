/* Allocation quotas of the relay's core: per REST name and per client IP
 * address. No I/O. One struct relay_quota per server; the server counts an
 * allocation in with relay_quota_add and out with relay_quota_remove, with
 * the same name and client address. The name is the NAME of the REST
 * username (turnuser.h): the peer-id, without EXPIRY or options, since the
 * signaling server hands out a new EXPIRY every second for the same peer. */
#pragma once

#include <glib.h>

#include "stun.h"

/* Default of --max-allocations-per-user, per NAME (a peer-id; a username's
 * "a=" option replaces it for that peer): an agent
 * gathers a relayed candidate over UDP, TCP and TLS for every tunnel, and a
 * serving agent has a tunnel per peer, so 10 tunnels relayed at once. A NAME
 * costs nothing to make (a self-made certificate), so this is about fairness
 * among well-behaved agents; the cap per address is what stops a flood. */
#define RELAY_DEFAULT_MAX_PER_NAME 30
/* Default of --max-allocations-per-address. A carrier-grade NAT (RFC 6888)
 * puts hundreds of phones behind one public address, and an agent uses one
 * allocation per tunnel (two while a path moves), so the cap must leave room
 * for many agents; at a tenth of the default --max-allocations (1000), one
 * address still cannot take the relay alone. */
#define RELAY_DEFAULT_MAX_PER_ADDRESS 100

enum relay_quota_status
{
  RELAY_QUOTA_OK,
  RELAY_QUOTA_NAME,    /* max_per_name reached for the NAME */
  RELAY_QUOTA_ADDRESS, /* --max-allocations-per-address reached for the IP */
};

struct relay_quota
{
  GHashTable *per_name; /* NAME (owned) -> count */
  GHashTable *per_addr; /* client IP as text (owned) -> count */
};

void relay_quota_init (struct relay_quota *q);
void relay_quota_clear (struct relay_quota *q);

/* Whether one more allocation for name from client fits: fewer than
 * max_per_name for the name (the caller's limit for this request: the
 * username's "a=" or --max-allocations-per-user) and fewer than
 * max_per_address for the client's IP. */
enum relay_quota_status relay_quota_check (const struct relay_quota *q, const char *name,
                                           const struct stun_addr *client,
                                           guint max_per_name, guint max_per_address);
void relay_quota_add (struct relay_quota *q, const char *name,
                      const struct stun_addr *client);
void relay_quota_remove (struct relay_quota *q, const char *name,
                         const struct stun_addr *client);
