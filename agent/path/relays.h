/* The TURN servers that the signaling server hands out, as the rest of the
 * agent sees them: how many a tunnel can use, and the allocations that
 * ended tunnels give back in the background, which their owner waits for
 * before it goes. The relays of one ICE path, in libnice's terms, are in
 * relays_private.h. */
#pragma once

#include <gio/gio.h>

#include "sigmsg.h"

/* How many TURN servers of @servers a tunnel can use: over UDP or TCP at an
 * IP address, or over TLS (turns:) at any host. */
guint relays_usable (const SigmsgIceServers *servers);

/* When (Unix seconds) the credentials of @servers expire: the earliest
 * EXPIRY of their TURN REST usernames "EXPIRY:PEER-ID[:OPTIONS]"; 0 when no
 * username says. A relay refuses to refresh an allocation after that (and
 * p2ptun-relay removes it), so a path whose pair goes through one moves to
 * a new ICE generation before (tunnel.h). */
gint64 relays_expiry (const SigmsgIceServers *servers);

/* The relay allocations being given back (a Refresh with lifetime 0 to each
 * relay) by the tunnels of one owner, in its GMainContext. Its owner frees
 * it after every tunnel that was given it. */
typedef struct _RelayReleases RelayReleases;

RelayReleases *relay_releases_new (GMainContext *context);
/* How many releases are under way: wait for none before the process exits,
 * or the relays keep the allocations until they expire. */
guint relay_releases_pending (RelayReleases *releases);
/* A release still under way goes on without @releases, and frees itself
 * when done. */
void relay_releases_free (RelayReleases *releases);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RelayReleases, relay_releases_free)
