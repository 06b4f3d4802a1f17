/* Which peers a client of the relay may reach (DESIGN.md, Relay;
 * CVE-2020-26262 is the classic bug): the peer policy, and the table of the
 * relayed addresses of live allocations that the rule for the relay's own
 * address needs. No I/O. */
#pragma once

#include <glib.h>

#include "policy.h"
#include "stun.h"

typedef struct RelayReach RelayReach;

/* allow_peers (of struct relay_cidr, may be NULL) is borrowed: it must
 * outlive the table. */
RelayReach *relay_reach_new (const GArray *allow_peers);
void relay_reach_free (RelayReach *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RelayReach, relay_reach_free)

/* A live allocation's relayed address (address and port), added when it is
 * made and removed when it ends. *relayed must stay valid in between. */
void relay_reach_add (RelayReach *r, const struct stun_addr *relayed);
void relay_reach_remove (RelayReach *r, const struct stun_addr *relayed);

/* CreatePermission and ChannelBind (RFC 8656 sections 9 and 11): whether a
 * client whose allocation is relayed at own may name peer. A range of
 * --allow-peer admits it (the operator's explicit choice, for labs); the
 * relay's own address (own's IP) only at another live allocation's relayed
 * address ("relay to relay": two clients that both need the relay meet
 * there); anything else unless the default policy restricts it. */
gboolean relay_reach_peer_allowed (const RelayReach *r, const struct stun_addr *own,
                                   const struct stun_addr *peer);

/* Every datagram between an allocation relayed at own and peer, both ways
 * (Send indication, ChannelData, and what arrives on the relayed socket).
 * Permissions are per IP (RFC 8656 section 9), so a permission to another
 * allocation's relayed address covers every port of the relay's host, and
 * an allocation at a channel's peer may be gone and its port taken by some
 * other service: at the relay's own address only the exact address and port
 * of a live allocation is reachable, unless --allow-peer opens it. */
gboolean relay_reach_datagram_allowed (const RelayReach *r, const struct stun_addr *own,
                                       const struct stun_addr *peer);
