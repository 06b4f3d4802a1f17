/* Peer-address policy of the relay (DESIGN.md, Relay; CVE-2020-26262 is the
 * classic bug): address ranges and the default list of restricted peers. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "stun.h"

struct relay_cidr
{
  uint8_t family; /* 4 or 6 */
  uint8_t ip[16];
  unsigned prefix;
};

/* "ADDR/PREFIX" or a bare address (a host). */
gboolean relay_cidr_parse (const char *text, struct relay_cidr *out);
gboolean relay_cidr_contains (const struct relay_cidr *cidr,
                              const struct stun_addr *addr);
/* Default policy (DESIGN.md, Relay): loopback, private, link-local,
 * unspecified, multicast and reserved addresses are not relayed to. */
gboolean relay_addr_is_restricted (const struct stun_addr *addr);
