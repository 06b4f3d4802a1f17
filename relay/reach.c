/* The peer policy and the relay's own address; see reach.h. */
#include "reach.h"

#include <string.h>

#include "alloc.h"

struct RelayReach
{
  const GArray *allow_peers;
  GHashTable *relayed; /* struct stun_addr * (borrowed) -> itself */
};

static guint
reach_addr_hash (gconstpointer p)
{
  return relay_addr_hash (p);
}

static gboolean
reach_addr_equal (gconstpointer a, gconstpointer b)
{
  return relay_addr_equal (a, b);
}

RelayReach *
relay_reach_new (const GArray *allow_peers)
{
  RelayReach *r = g_new0 (RelayReach, 1);
  r->allow_peers = allow_peers;
  r->relayed = g_hash_table_new (reach_addr_hash, reach_addr_equal);
  return r;
}

void
relay_reach_free (RelayReach *r)
{
  if (r == NULL)
    return;
  g_clear_pointer (&r->relayed, g_hash_table_unref);
  g_free (r);
}

void
relay_reach_add (RelayReach *r, const struct stun_addr *relayed)
{
  g_hash_table_add (r->relayed, (gpointer)relayed);
}

void
relay_reach_remove (RelayReach *r, const struct stun_addr *relayed)
{
  g_hash_table_remove (r->relayed, relayed);
}

static gboolean
reach_explicitly_allowed (const RelayReach *r, const struct stun_addr *peer)
{
  if (r->allow_peers != NULL)
    for (guint i = 0; i < r->allow_peers->len; i++)
      if (relay_cidr_contains (&g_array_index (r->allow_peers, struct relay_cidr, i),
                               peer))
        return TRUE;
  return FALSE;
}

gboolean
relay_reach_datagram_allowed (const RelayReach *r, const struct stun_addr *own,
                              const struct stun_addr *peer)
{
  if (!relay_addr_equal_ip (peer, own))
    return TRUE;
  return g_hash_table_contains (r->relayed, peer) || reach_explicitly_allowed (r, peer);
}

gboolean
relay_reach_peer_allowed (const RelayReach *r, const struct stun_addr *own,
                          const struct stun_addr *peer)
{
  if (reach_explicitly_allowed (r, peer))
    return TRUE;
  if (relay_addr_equal_ip (peer, own))
    return g_hash_table_contains (r->relayed, peer);
  return !relay_addr_is_restricted (peer);
}
