/* libnice's sockets of a component, made fit for the tunnel: large kernel
 * buffers (a fast path overruns the default ones between two reads), and
 * UDP without fragments (so that path MTU probes tell the truth). libnice
 * makes sockets while gathering and when it learns candidates, so this runs
 * again each time; it is idempotent. */
#pragma once

#include <nice/agent.h>

void nicesock_tune (NiceAgent *agent, guint stream_id, guint component_id);

/* Chooses the local addresses of the host sockets: @given (from
 * --local-address) when set; else, with @loopback_needed, every address of
 * this machine including loopback ones; else libnice's own choice (every
 * interface but loopback). libnice binds each UDP host socket to its
 * interface (IP_UNICAST_IF), so a UDP relay or STUN server on this
 * machine's loopback is reachable only from a loopback socket. */
gboolean nicesock_set_local_addresses (NiceAgent *agent, const char *const *given,
                                       gboolean loopback_needed, GError **error);
