/* A node's relay credentials: fetched at start, renewed when half their
 * life is gone; see node-private.h. */
#include "node-private.h"

/* Relay credentials last the signaling server's --turn-ttl: renewed when half
 * of that is gone, so that the tunnels of a node that runs for days get
 * working relays; a failed renewal is retried this often. */
#define NODE_ICE_REFRESH_MIN_S 60
#define NODE_ICE_REFRESH_RETRY_S 60

/* The earliest expiry (Unix seconds) of the TURN REST usernames
 * "EXPIRY:PEER-ID" in @servers; 0 when there is none. */
static gint64
ice_servers_expiry (const SigmsgIceServers *servers)
{
  gint64 earliest = 0;

  for (guint i = 0; i < servers->turn->len; i++)
    {
      const SigmsgTurnServer *turn = servers->turn->pdata[i];
      char *end = NULL;
      gint64 expiry = g_ascii_strtoll (turn->username, &end, 10);

      if (end != turn->username && *end == ':' && expiry > 0
          && (earliest == 0 || expiry < earliest))
        earliest = expiry;
    }
  return earliest;
}

static void
on_ice_servers_renewed (Sigclient *client, SigmsgIceServers *servers, const GError *error,
                        gpointer data)
{
  Node *node = data;

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
  /* Tunnels took what they needed from the old list when they began. */
  sigmsg_ice_servers_free (node->ice_servers);
  node->ice_servers = servers;
  g_debug ("relay credentials renewed");
  node_schedule_ice_refresh (node, 0);
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
      gint64 expiry = ice_servers_expiry (node->ice_servers);

      if (expiry == 0)
        return; /* no relays: nothing expires */
      delay_s = MAX ((expiry - g_get_real_time () / G_USEC_PER_SEC) / 2,
                     (gint64) NODE_ICE_REFRESH_MIN_S);
    }
  node->ice_refresh = g_timeout_source_new_seconds ((guint) MIN (delay_s, (gint64) G_MAXUINT));
  g_source_set_callback (node->ice_refresh, on_ice_refresh, node, NULL);
  g_source_attach (node->ice_refresh, node->context);
}

