/* The relay core's counters; see stats.h. */
#include "stats.h"

static const struct
{
  unsigned code;
  const char *name;
} relay_stats_refusals[RELAY_N_REFUSALS] = {
  [RELAY_REFUSAL_BAD_REQUEST] = { 400, "bad_request" },
  [RELAY_REFUSAL_UNAUTHORIZED] = { 401, "unauthorized" },
  [RELAY_REFUSAL_FORBIDDEN] = { 403, "forbidden_peer" },
  [RELAY_REFUSAL_UNKNOWN_ATTRIBUTE] = { 420, "unknown_attribute" },
  [RELAY_REFUSAL_ALLOCATION_MISMATCH] = { 437, "allocation_mismatch" },
  [RELAY_REFUSAL_STALE_NONCE] = { 438, "stale_nonce" },
  [RELAY_REFUSAL_ADDRESS_FAMILY] = { 440, "address_family_not_supported" },
  [RELAY_REFUSAL_WRONG_CREDENTIALS] = { 441, "wrong_credentials" },
  [RELAY_REFUSAL_UNSUPPORTED_TRANSPORT] = { 442, "unsupported_transport" },
  [RELAY_REFUSAL_PEER_FAMILY_MISMATCH] = { 443, "peer_address_family_mismatch" },
  [RELAY_REFUSAL_QUOTA] = { 486, "quota" },
  [RELAY_REFUSAL_CAPACITY] = { 508, "capacity" },
  [RELAY_REFUSAL_OTHER] = { 0, "other" },
};

void
relay_stats_error (struct relay_stats *stats, unsigned code, gboolean with_integrity)
{
  if (code == 401 && !with_integrity)
    {
      stats->auth_challenges++;
      return;
    }
  for (int r = 0; r < RELAY_REFUSAL_OTHER; r++)
    if (relay_stats_refusals[r].code == code)
      {
        stats->refusals[r]++;
        return;
      }
  stats->refusals[RELAY_REFUSAL_OTHER]++;
}

const char *
relay_stats_refusal_name (enum relay_refusal r)
{
  return r < RELAY_N_REFUSALS ? relay_stats_refusals[r].name : "other";
}

unsigned
relay_stats_refusal_code (enum relay_refusal r)
{
  return r < RELAY_N_REFUSALS ? relay_stats_refusals[r].code : 0;
}
