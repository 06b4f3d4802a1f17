/* A node's relay credentials: fetched at start, renewed well before they
 * expire; see node-private.h. */
#include "node-private.h"

/* Relay credentials last the signaling server's --turn-ttl (minutes): they
 * are renewed when a third of what is left of them is gone, so that fresh
 * ones are at hand before a tunnel's relayed path must move off the old
 * ones (tunnel.h: at a quarter of their life left, 5 s at the least), but
 * no sooner than NODE_ICE_REFRESH_MIN_S after the last renewal. A failed
 * renewal is retried this often, and so are credentials that look expired
 * on arrival (a clock that runs ahead). */
#define NODE_ICE_REFRESH_MIN_S 3
#define NODE_ICE_REFRESH_RETRY_S 60

static void
on_ice_servers_renewed (Sigclient *client, SigmsgIceServers *servers, const GError *error,
                        gpointer data)
{
  Node *node = data;
  GHashTableIter it;
  gpointer value;

  if (servers == NULL)
    {
      /* Refused: node-admission.c asks again, and renews when admitted. */
      if (node_admission_refused (node, error))
        return;
      node_warn (node, "cannot renew the relay credentials: %s (again in %d s)",
                 error->message, NODE_ICE_REFRESH_RETRY_S);
      node_schedule_ice_refresh (node, NODE_ICE_REFRESH_RETRY_S);
      return;
    }
  /* Paths took what they needed from the old list when they began. */
  sigmsg_ice_servers_free (node->ice_servers);
  node->ice_servers = servers;
  g_debug ("relay credentials renewed");
  node_schedule_ice_refresh (node, 0);
  /* A relayed path whose credentials are about to expire may have been
   * waiting for these. */
  g_hash_table_iter_init (&it, node->links);
  while (g_hash_table_iter_next (&it, NULL, &value))
    tunnel_relays_renewed (((Link *) value)->tunnel);
}

static gboolean
on_ice_refresh (gpointer data)
{
  Node *node = data;

  g_clear_pointer (&node->ice_refresh, g_source_unref);
  sigclient_get_ice_servers (node->sig, on_ice_servers_renewed, node);
  return G_SOURCE_REMOVE;
}

void
node_schedule_ice_refresh (Node *node, gint64 delay_s)
{
  if (delay_s == 0)
    {
      gint64 expiry = relays_expiry (node->ice_servers);
      gint64 left = expiry - g_get_real_time () / G_USEC_PER_SEC;

      if (expiry == 0)
        return; /* no relays: nothing expires */
      if (left <= 0)
        {
          node_warn (node, "the relay credentials had expired when they came: is this "
                     "machine's clock right? (again in %d s)", NODE_ICE_REFRESH_RETRY_S);
          delay_s = NODE_ICE_REFRESH_RETRY_S;
        }
      else
        delay_s = MAX (left / 3, (gint64) NODE_ICE_REFRESH_MIN_S);
    }
  node->ice_refresh = g_timeout_source_new_seconds ((guint) MIN (delay_s, (gint64) G_MAXUINT));
  g_source_set_callback (node->ice_refresh, on_ice_refresh, node, NULL);
  g_source_attach (node->ice_refresh, node->context);
}

