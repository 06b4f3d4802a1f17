/* The TURN servers of an ICE stream; see relays.h and relays_private.h. */
#include "relays_private.h"

/* A relayed candidate's priority carries the index of its TURN server in
 * the order they were added (bits 6-8 of the local preference, libnice's
 * guarantee of unique priorities; the relay tests check it). libnice hands
 * out copies of its candidates, on which nice_candidate_relay_address()
 * crashes (DESIGN.md), so this is how to tell. */
Relay *
relays_of_candidate (GPtrArray *relays, const NiceCandidate *local)
{
  guint index = (local->priority >> (8 + 6)) & 7;

  return relays && index < relays->len ? relays->pdata[index] : NULL;
}

gboolean
relays_at_address (GPtrArray *relays, const NiceAddress *addr)
{
  for (guint i = 0; relays && i < relays->len; i++)
    {
      const Relay *relay = relays->pdata[i];
      g_autofree char *host = NULL;
      guint16 port;
      SigmsgTurnTransport transport;
      NiceAddress relay_addr;

      if (sigmsg_turn_uri_split (relay->uri, &host, &port, &transport)
          && nice_address_set_from_string (&relay_addr, host)
          && nice_address_equal_no_port (&relay_addr, addr))
        return TRUE;
    }
  return FALSE;
}

char *
relays_silent_string (GPtrArray *relays)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; relays && i < relays->len; i++)
    g_string_append_printf (s, "%srelay %s did not answer", i ? "; " : "",
                            ((Relay *) relays->pdata[i])->uri);
  return g_string_free (s, FALSE);
}

/* Host, port and transport of @turn when a tunnel can use it (see
 * relays_usable()). */
static gboolean
usable_relay (const SigmsgTurnServer *turn, char **host, guint16 *port,
              SigmsgTurnTransport *transport, const Warn *warn)
{
  g_autofree char *h = NULL;

  if (!sigmsg_turn_uri_split (turn->uri, &h, port, transport))
    return FALSE;
  /* libnice takes relays by address; our TLS shim resolves names itself. */
  if (*transport != SIGMSG_TURN_TLS && !g_hostname_is_ip_address (h))
    {
      warn_say (warn, "relay %s: TURN over UDP or TCP must be given by IP address, skipping",
                turn->uri);
      return FALSE;
    }
  if (host != NULL)
    *host = g_steal_pointer (&h);
  return TRUE;
}

guint
relays_usable (const SigmsgIceServers *servers)
{
  guint n = 0;

  for (guint i = 0; servers && i < servers->turn->len; i++)
    {
      guint16 port;
      SigmsgTurnTransport transport;

      if (usable_relay (servers->turn->pdata[i], NULL, &port, &transport, NULL))
        n++;
    }
  return n;
}

/* The EXPIRY of a TURN REST username "EXPIRY:PEER-ID[:OPTIONS]", or 0. */
static gint64
username_expiry (const char *username)
{
  char *end = NULL;
  gint64 expiry = g_ascii_strtoll (username, &end, 10);

  return end != username && *end == ':' && expiry > 0 ? expiry : 0;
}

gint64
relays_expiry (const SigmsgIceServers *servers)
{
  gint64 earliest = 0;

  for (guint i = 0; servers && i < servers->turn->len; i++)
    {
      const SigmsgTurnServer *turn = servers->turn->pdata[i];
      gint64 expiry = username_expiry (turn->username);

      if (expiry != 0 && (earliest == 0 || expiry < earliest))
        earliest = expiry;
    }
  return earliest;
}

static gboolean
is_loopback (const char *host)
{
  g_autoptr (GInetAddress) addr = g_inet_address_new_from_string (host);

  return addr != NULL && g_inet_address_get_is_loopback (addr);
}

gboolean
relays_need_loopback (const SigmsgIceServers *servers)
{
  for (guint i = 0; servers && i < servers->turn->len; i++)
    {
      g_autofree char *host = NULL;
      guint16 port;
      SigmsgTurnTransport transport;

      if (usable_relay (servers->turn->pdata[i], &host, &port, &transport, NULL)
          && transport == SIGMSG_TURN_UDP && is_loopback (host))
        return TRUE;
    }
  for (guint i = 0; servers && i < servers->stun->len; i++)
    {
      g_autofree char *host = NULL;
      guint16 port;

      if (sigmsg_split_host_port (servers->stun->pdata[i], &host, &port) && is_loopback (host))
        return TRUE;
    }
  return FALSE;
}

static void
relay_free (Relay *relay)
{
  tls_shim_free (relay->shim);
  g_free (relay->uri);
  g_free (relay);
}

GPtrArray *
relays_add (GMainContext *context, NiceAgent *agent, guint stream_id, guint component_id,
            const SigmsgIceServers *servers, const Warn *warn)
{
  static const char *const names[] = {
    [SIGMSG_TURN_UDP] = "udp", [SIGMSG_TURN_TCP] = "tcp", [SIGMSG_TURN_TLS] = "tls"
  };
  GPtrArray *relays = g_ptr_array_new_with_free_func ((GDestroyNotify) relay_free);

  for (guint i = 0; servers && i < servers->turn->len; i++)
    {
      const SigmsgTurnServer *turn = servers->turn->pdata[i];
      g_autofree char *host = NULL;
      g_autoptr (GError) error = NULL;
      guint16 port = 0;
      SigmsgTurnTransport transport;
      Relay *relay;

      if (!usable_relay (turn, &host, &port, &transport, warn))
        continue;
      relay = g_new0 (Relay, 1);
      relay->uri = g_strdup (turn->uri);
      relay->transport = names[transport];
      relay->expiry = username_expiry (turn->username);
      if (transport == SIGMSG_TURN_TLS)
        {
          relay->shim = tls_shim_new (context, host, port, turn->pin, warn, &error);
          if (relay->shim == NULL)
            {
              warn_say (warn, "relay %s: %s, skipping", turn->uri, error->message);
              relay_free (relay);
              continue;
            }
          g_free (host);
          host = g_strdup ("127.0.0.1");
          port = tls_shim_port (relay->shim);
        }
      if (!nice_agent_set_relay_info (agent, stream_id, component_id, host, port,
                                      turn->username, turn->password,
                                      transport == SIGMSG_TURN_UDP ? NICE_RELAY_TYPE_TURN_UDP
                                                                   : NICE_RELAY_TYPE_TURN_TCP))
        {
          warn_say (warn, "relay %s: libnice refused it, skipping", turn->uri);
          relay_free (relay);
          continue;
        }
      g_ptr_array_add (relays, relay);
    }
  return relays;
}


struct _RelayReleases
{
  GMainContext *context;
  GPtrArray *pending; /* RelayRelease* */
};

/* An agent whose TURN allocations are being released (libnice sends each
 * relay a Refresh with lifetime 0), with the relays, whose TLS shims carry
 * those last messages. Listed so that the owner can wait for them. */
typedef struct
{
  RelayReleases *owner; /* NULL once the owner is gone */
  NiceAgent *agent;
  guint stream_id;
  GPtrArray *relays;
} RelayRelease;

static void
release_free (RelayRelease *release)
{
  nice_agent_remove_stream (release->agent, release->stream_id);
  g_object_unref (release->agent);
  g_ptr_array_unref (release->relays); /* after the agent: it may still write to a shim */
  g_free (release);
}

RelayReleases *
relay_releases_new (GMainContext *context)
{
  RelayReleases *self = g_new0 (RelayReleases, 1);

  self->context = g_main_context_ref (context);
  self->pending = g_ptr_array_new_with_free_func ((GDestroyNotify) release_free);
  return self;
}

static void
on_released (GObject *agent, GAsyncResult *result, gpointer data)
{
  RelayRelease *release = data;

  g_debug ("relay allocations given back");
  if (release->owner)
    g_ptr_array_remove_fast (release->owner->pending, release);
  else
    release_free (release);
}

/* What arrives while the allocations are given back goes nowhere (a
 * function, not NULL: detaching with NULL can spin, DESIGN.md). */
static void
on_recv_discard (NiceAgent *agent, guint stream_id, guint component_id, guint len, gchar *buf,
                 gpointer data)
{
}

void
relays_release (RelayReleases *releases, NiceAgent *agent, guint stream_id,
                guint component_id, GPtrArray *relays)
{
  RelayRelease *release = g_new0 (RelayRelease, 1);

  nice_agent_attach_recv (agent, stream_id, component_id, releases->context, on_recv_discard,
                          NULL);
  release->owner = releases;
  release->agent = agent;
  release->stream_id = stream_id;
  release->relays = relays;
  g_ptr_array_add (releases->pending, release);
  g_debug ("giving back the relay allocations of stream %u", stream_id);
  g_main_context_push_thread_default (releases->context);
  nice_agent_close_async (agent, on_released, release);
  g_main_context_pop_thread_default (releases->context);
}

guint
relay_releases_pending (RelayReleases *self)
{
  return self->pending->len;
}

void
relay_releases_free (RelayReleases *self)
{
  if (self == NULL)
    return;
  /* Each release still under way is its close callback's data: it stays
   * reachable, and frees itself if the context ever runs it. */
  for (guint i = 0; i < self->pending->len; i++)
    ((RelayRelease *) self->pending->pdata[i])->owner = NULL;
  g_ptr_array_set_free_func (self->pending, NULL);
  g_ptr_array_unref (self->pending);
  g_main_context_unref (self->context);
  g_free (self);
}
