/* Path probes: a tunnel that runs on a relayed pair keeps looking for a
 * direct one.
 *
 * libnice checks each candidate pair a few times (about 5 s) and never
 * again once it failed: when the direct checks fail at first (a filter
 * that opens a moment late on a slow machine, a block that is lifted) and
 * a relayed pair is nominated, the tunnel would stay on the relay for its
 * whole life. While the selected pair is relayed, a probe sends, from each
 * of our UDP sockets to each of the peer's direct candidates (and its
 * relayed ones when the relay in the pair is ours), an ICE
 * connectivity check of its own with the session's credentials. The peer's
 * libnice answers it and, for a pair that failed but would beat the
 * selected one, schedules a triggered check (RFC 8445 section 7.3.1.4) that
 * our probe's packet has just let through our NAT; our libnice then does
 * the same, the pair succeeds, and aggressive nomination selects it. Both
 * agents probe, so it is also hole punching. Probes go out 1, 2, 4, 8 and
 * 16 s after the relay was selected, then every 30 s, until a direct pair
 * is selected. */
#pragma once

#include <nice/agent.h>

typedef struct _PathProbe PathProbe;

PathProbe *pathprobe_new (GMainContext *context, NiceAgent *agent, guint stream_id,
                          guint component_id);
/* The peer's ICE credentials, once known; probes need them. */
void pathprobe_set_remote_credentials (PathProbe *self, const char *ufrag, const char *pwd);
/* The selected pair changed: @relayed when either end of it is a relayed
 * candidate (then probes go out; when direct they stop), @local_relayed
 * when ours is: then the peer's relayed candidates are probed too, since
 * reaching the peer's relay straight from here beats going through ours
 * as well. Changing nothing while probing keeps the schedule. */
void pathprobe_set_path (PathProbe *self, gboolean relayed, gboolean local_relayed);
void pathprobe_free (PathProbe *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PathProbe, pathprobe_free)
