/* When the signaling server refuses this agent: not enrolled, or revoked
 * (signaling/API.md). See node-private.h.
 *
 * Such a refusal does not heal by retrying at the usual pace, but it does
 * heal when the operator acts (enrolls the agent, or admits it again), and
 * a node that runs as a service should not need a restart for that. So the
 * node says so once, with the server's words, and asks again every 30 s:
 * cheap for the server, and soon enough for an operator who has just
 * enrolled it. An app that would rather stop (p2ptun-agent pair) stops on
 * the warning. Direct tunnels that are up go on: the server cannot cut
 * them, and neither do we. */
#include "node-private.h"

/* How often a refused node asks again. */
#define NODE_ADMISSION_RETRY_S 30

static void
on_admission_answer (Sigclient *client, SigmsgIceServers *servers, const GError *error,
                     gpointer data)
{
  Node *node = data;

  if (node->closing)
    {
      g_clear_pointer (&servers, sigmsg_ice_servers_free);
      return;
    }
  if (servers == NULL)
    {
      /* Refused again, told already, or another failure: the server may be
       * restarting. Either way, ask again later. */
      if (!node_admission_refused (node, error))
        {
          g_debug ("asking the signaling server to admit us: %s", error->message);
          node_admission_refused_later (node);
        }
      return;
    }
  node->refusal = 0;
  node_emit (node, event_new (P2PTUN_EVENT_NOTICE, NULL,
                              "the signaling server admits this agent (peer-id %s) now",
                              node->identity->peer_id));
  node_relays_arrived (node, servers);
}

static gboolean
on_admission_retry (gpointer data)
{
  Node *node = data;

  g_clear_pointer (&node->admission_retry, g_source_unref);
  sigclient_get_ice_servers (node->sig, on_admission_answer, node);
  return G_SOURCE_REMOVE;
}

void
node_admission_refused_later (Node *node)
{
  if (node->admission_retry != NULL || node->closing)
    return;
  node->admission_retry = g_timeout_source_new_seconds (NODE_ADMISSION_RETRY_S);
  g_source_set_name (node->admission_retry, "p2ptun admission retry");
  g_source_set_callback (node->admission_retry, on_admission_retry, node, NULL);
  g_source_attach (node->admission_retry, node->context);
}

gboolean
node_admission_refused (Node *node, const GError *error)
{
  P2ptunError code = error_from_sigclient (error);
  P2ptunEvent *event;

  if (code != P2PTUN_ERROR_NOT_ENROLLED && code != P2PTUN_ERROR_REVOKED)
    return FALSE;
  if (node->closing)
    return TRUE;
  if (node->refusal != (int)code + 1)
    {
      /* The message is the server's, already made printable and short by
       * sigclient.c. */
      node->refusal = (int)code + 1;
      event = event_new (P2PTUN_EVENT_WARNING, NULL, "%s", error->message);
      event->error = g_error_new_literal (P2PTUN_ERROR, code, error->message);
      node_emit (node, event);
    }
  node_admission_refused_later (node);
  return TRUE;
}

void
node_admission_clear (Node *node)
{
  if (node->admission_retry == NULL)
    return;
  g_source_destroy (node->admission_retry);
  g_clear_pointer (&node->admission_retry, g_source_unref);
}
