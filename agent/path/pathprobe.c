/* Path probes while a tunnel runs on the relay; see pathprobe.h. */
#include "pathprobe.h"

#include <stun/usages/ice.h>

/* Seconds from one round to the next: doubling from 1 s, then steady. A
 * round is a few packets (one per socket and target); the steady interval
 * bounds how long a tunnel stays on the relay once a direct path works
 * again (after an outage of the direct path, or when a NAT's filter
 * opens). */
#define PATHPROBE_FIRST_INTERVAL_S 1
#define PATHPROBE_MAX_INTERVAL_S 4
/* The peer's candidates probed per round, highest priority first: a peer
 * may send up to PATH_MAX_REMOTE_CANDIDATES (path.c), and each probe is a packet
 * to an address it chose. */
#define PATHPROBE_MAX_TARGETS 16
/* Of our sockets (host sockets, one per local address; TCP ones skipped). */
#define PATHPROBE_MAX_SOCKETS 8
/* RFC 8445 section 5.1.2.1: PRIORITY of a check is that of a peer-reflexive
 * candidate, type preference 110; one component. */
#define PATHPROBE_PRIORITY ((110u << 24) | (65535u << 8) | (256u - 1u))
/* RFC 8445 section 4 and RFC 8489 section 14.3: ufrags of up to 256
 * characters each, joined by a colon. */
#define PATHPROBE_MAX_USERNAME 513

struct _PathProbe
{
  GMainContext *context;
  NiceAgent *agent;
  guint stream_id;
  guint component_id;
  char *remote_ufrag;
  char *remote_pwd;
  gboolean relayed;
  gboolean local_relayed;
  guint interval_s;
  GSource *timer;
  StunAgent stun;
};

PathProbe *
pathprobe_new (GMainContext *context, NiceAgent *agent, guint stream_id, guint component_id)
{
  PathProbe *self = g_new0 (PathProbe, 1);

  self->context = g_main_context_ref (context);
  self->agent = g_object_ref (agent);
  self->stream_id = stream_id;
  self->component_id = component_id;
  return self;
}

void
pathprobe_set_remote_credentials (PathProbe *self, const char *ufrag, const char *pwd)
{
  g_free (self->remote_ufrag);
  g_free (self->remote_pwd);
  self->remote_ufrag = g_strdup (ufrag);
  self->remote_pwd = g_strdup (pwd);
}

/* A candidate of the peer that a check from one of our sockets could make
 * a better pair with than the selected one. */
static gboolean
is_target (PathProbe *self, const NiceCandidate *cand)
{
  return cand->transport == NICE_CANDIDATE_TRANSPORT_UDP
         && (cand->type != NICE_CANDIDATE_TYPE_RELAYED || self->local_relayed);
}

static gint
by_priority_descending (gconstpointer a, gconstpointer b)
{
  guint32 pa = ((const NiceCandidate *) a)->priority;
  guint32 pb = ((const NiceCandidate *) b)->priority;

  return pa < pb ? 1 : pa > pb ? -1 : 0;
}

/* One connectivity check from @socket to @target; FALSE when it could not
 * be built or sent. */
static gboolean
send_check (PathProbe *self, GSocket *socket, const NiceCandidate *target,
            const char *username, gboolean controlling)
{
  struct sockaddr_storage ss;
  g_autoptr (GSocketAddress) to = NULL;
  StunMessage msg;
  uint8_t buf[1024];
  size_t len;

  /* The tie-breaker 0 never wins a role conflict (RFC 8445 section
   * 7.3.1.1): a probe cannot make the peer change its role; libnice's own
   * checks settle any conflict. */
  stun_agent_init (&self->stun, NULL, STUN_COMPATIBILITY_RFC5389,
                   STUN_AGENT_USAGE_SHORT_TERM_CREDENTIALS | STUN_AGENT_USAGE_USE_FINGERPRINT);
  len = stun_usage_ice_conncheck_create (&self->stun, &msg, buf, sizeof buf,
                                         (const uint8_t *) username, strlen (username),
                                         (const uint8_t *) self->remote_pwd,
                                         strlen (self->remote_pwd), false, controlling,
                                         PATHPROBE_PRIORITY, 0, NULL,
                                         STUN_USAGE_ICE_COMPATIBILITY_RFC5245);
  if (len == 0)
    return FALSE;
  nice_address_copy_to_sockaddr (&target->addr, (struct sockaddr *) &ss);
  to = g_socket_address_new_from_native (&ss, sizeof ss);
  /* Non-blocking: a full send buffer loses a probe, and the next round
   * sends another. */
  return to != NULL && g_socket_send_to (socket, to, (const char *) buf, len, NULL, NULL) > 0;
}

static void
probe_round (PathProbe *self)
{
  g_autoptr (GPtrArray) sockets = NULL;
  g_autofree char *local_ufrag = NULL, *local_pwd = NULL;
  g_autofree char *username = NULL;
  GSList *remotes, *targets = NULL;
  gboolean controlling = FALSE;
  guint n_targets = 0, n_sockets = 0, sent = 0, attempted = 0;

  if (self->remote_ufrag == NULL
      || !nice_agent_get_local_credentials (self->agent, self->stream_id, &local_ufrag,
                                            &local_pwd))
    return;
  /* RFC 8445 section 7.2.2: USERNAME is the peer's ufrag, a colon, ours. */
  username = g_strconcat (self->remote_ufrag, ":", local_ufrag, NULL);
  if (strlen (username) > PATHPROBE_MAX_USERNAME)
    return;
  g_object_get (self->agent, "controlling-mode", &controlling, NULL);

  remotes = nice_agent_get_remote_candidates (self->agent, self->stream_id, self->component_id);
  for (GSList *l = remotes; l; l = l->next)
    if (is_target (self, l->data))
      targets = g_slist_prepend (targets, l->data);
  targets = g_slist_sort (targets, by_priority_descending);

  sockets = nice_agent_get_sockets (self->agent, self->stream_id, self->component_id);
  for (guint i = 0; sockets && i < sockets->len && n_sockets < PATHPROBE_MAX_SOCKETS; i++)
    {
      GSocket *socket = sockets->pdata[i];
      GSocketFamily family = g_socket_get_family (socket);

      if (g_socket_get_socket_type (socket) != G_SOCKET_TYPE_DATAGRAM)
        continue;
      n_sockets++;
      n_targets = 0;
      for (GSList *l = targets; l && n_targets < PATHPROBE_MAX_TARGETS; l = l->next)
        {
          const NiceCandidate *target = l->data;
          gboolean v6 = nice_address_ip_version (&target->addr) == 6;

          if (v6 != (family == G_SOCKET_FAMILY_IPV6))
            continue;
          n_targets++;
          attempted++;
          if (send_check (self, socket, target, username, controlling))
            sent++;
        }
    }
  g_debug ("path probe: %u of %u checks sent towards the peer's candidates", sent, attempted);
  g_slist_free (targets);
  g_slist_free_full (remotes, (GDestroyNotify) nice_candidate_free);
}

static void schedule (PathProbe *self);

static gboolean
on_timer (gpointer data)
{
  PathProbe *self = data;

  g_clear_pointer (&self->timer, g_source_unref);
  probe_round (self);
  self->interval_s = MIN (self->interval_s * 2, PATHPROBE_MAX_INTERVAL_S);
  schedule (self);
  return G_SOURCE_REMOVE;
}

static void
schedule (PathProbe *self)
{
  self->timer = g_timeout_source_new_seconds (self->interval_s);
  g_source_set_callback (self->timer, on_timer, self, NULL);
  g_source_attach (self->timer, self->context);
}

static void
stop_timer (PathProbe *self)
{
  if (self->timer)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }
}

void
pathprobe_set_path (PathProbe *self, gboolean relayed, gboolean local_relayed)
{
  self->local_relayed = local_relayed;
  if (relayed == self->relayed)
    return;
  self->relayed = relayed;
  stop_timer (self);
  if (relayed)
    {
      self->interval_s = PATHPROBE_FIRST_INTERVAL_S;
      schedule (self);
    }
}

void
pathprobe_free (PathProbe *self)
{
  if (self == NULL)
    return;
  stop_timer (self);
  g_object_unref (self->agent);
  g_main_context_unref (self->context);
  g_free (self->remote_ufrag);
  g_free (self->remote_pwd);
  g_free (self);
}
