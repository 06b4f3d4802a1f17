/* What the relay's protocol core (server.h) counted since it started: plain
 * data, read by the shell's metrics (metrics.h). Counters only grow. */
#pragma once

#include <glib.h>

/* The error answers the core gives (RFC 8656 section 19, RFC 8489 section
 * 14.8), each under a short name for the metrics' reason label. */
enum relay_refusal
{
  RELAY_REFUSAL_BAD_REQUEST,           /* 400 */
  RELAY_REFUSAL_UNAUTHORIZED,          /* 401 to a request with credentials */
  RELAY_REFUSAL_FORBIDDEN,             /* 403: the peer policy */
  RELAY_REFUSAL_UNKNOWN_ATTRIBUTE,     /* 420 */
  RELAY_REFUSAL_ALLOCATION_MISMATCH,   /* 437 */
  RELAY_REFUSAL_STALE_NONCE,           /* 438 */
  RELAY_REFUSAL_ADDRESS_FAMILY,        /* 440 */
  RELAY_REFUSAL_WRONG_CREDENTIALS,     /* 441 */
  RELAY_REFUSAL_UNSUPPORTED_TRANSPORT, /* 442 */
  RELAY_REFUSAL_PEER_FAMILY_MISMATCH,  /* 443 */
  RELAY_REFUSAL_QUOTA,                 /* 486: per user or per address */
  RELAY_REFUSAL_CAPACITY,              /* 508: allocations, ports, permissions, channels */
  RELAY_REFUSAL_OTHER,
  RELAY_N_REFUSALS,
};

struct relay_stats
{
  guint64 allocations[3];   /* made, by enum relay_transport */
  /* 401 to a request without MESSAGE-INTEGRITY: the first step of every
   * client's authentication (RFC 8489 section 9.2.4), not a refusal. */
  guint64 auth_challenges;
  guint64 refusals[RELAY_N_REFUSALS];
  /* Relayed payload (ChannelData and Send/Data indication data, without
   * their headers) that was sent on; what policy or bandwidth dropped is not. */
  guint64 to_peer_bytes, to_peer_packets;
  guint64 to_client_bytes, to_client_packets;
};

/* Counts an error answer with STUN code @code to a request that carried
 * MESSAGE-INTEGRITY (@with_integrity) or not. */
void relay_stats_error (struct relay_stats *stats, unsigned code, gboolean with_integrity);

/* The reason label and the STUN code (0 for OTHER) of @r. */
const char *relay_stats_refusal_name (enum relay_refusal r);
unsigned relay_stats_refusal_code (enum relay_refusal r);
