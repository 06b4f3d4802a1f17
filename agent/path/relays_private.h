/* The TURN servers of one ICE stream: which of those the signaling server
 * handed out libnice can use, handing them to libnice (TURN over TLS
 * through a TLS shim of ours), which relay a relayed candidate came from,
 * and giving the allocations back when the path ends. Nothing outside
 * agent/path/ includes this. */
#pragma once

#include <nice/agent.h>

#include "relays.h"
#include "tlsshim.h"
#include "warn.h"

/* One relay handed to libnice, in the order of nice_agent_set_relay_info(). */
typedef struct
{
  char *uri;
  const char *transport; /* how we reach it: "udp", "tcp", "tls" (through shim) */
  TlsShim *shim;
  gint64 expiry; /* of its credentials (Unix seconds; see relays_expiry()), or 0 */
} Relay;

/* A UDP relay or the STUN server is on this machine's loopback: the host
 * sockets must include loopback ones (nicesock_set_local_addresses()). */
gboolean relays_need_loopback (const SigmsgIceServers *servers);
/* Hands every usable relay of @servers to libnice for the component; returns
 * them (Relay*, possibly none). */
GPtrArray *relays_add (GMainContext *context, NiceAgent *agent, guint stream_id,
                       guint component_id, const SigmsgIceServers *servers, const Warn *warn);
/* The relay that @local, a relayed candidate of ours, came from, or NULL. */
Relay *relays_of_candidate (GPtrArray *relays, const NiceCandidate *local);
/* Whether @addr has the IP address of one of @relays (by URI; a relay given
 * by name never matches): the peer's relayed candidates live there. */
gboolean relays_at_address (GPtrArray *relays, const NiceAddress *addr);
/* "relay URI did not answer" for each relay, joined by "; ": what to say
 * when gathering ended without a relayed candidate. (Only then: libnice
 * drops a relayed candidate, and gives its allocation back, when another
 * relay's candidate makes it redundant.) */
char *relays_silent_string (GPtrArray *relays);

/* Gives back the allocations of the stream in the background, listed in
 * @releases; takes @agent and @relays. */
void relays_release (RelayReleases *releases, NiceAgent *agent, guint stream_id,
                     guint component_id, GPtrArray *relays);
