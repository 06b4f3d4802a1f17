/* UDP port forwards (-U [BIND:]PORT:SERVICE): a UDP socket whose clients,
 * one flow per source address, reach the peer's UDP service through the
 * tunnel's datagrams (PROTOCOL.md section 3). The sockets are bound at
 * once, so that a port in use is an error at start. A flow ends after the
 * idle timeout without a datagram either way, or with its tunnel.
 *
 * Until the first tunnel the sockets are not read: the first datagrams wait
 * in the kernel's buffer. Between two tunnels (udp_forwards_stop, then
 * udp_forwards_start) datagrams are read and dropped, and their count told:
 * a stale datagram is worth less than none. */
#pragma once

#include <gio/gio.h>

#include "forward.h"

/* Flows through one forward at once. */
#define UDP_FORWARD_MAX_FLOWS 256
/* What a flow holds until the peer accepted it. */
#define UDP_FLOW_PENDING_MAX 16
#define UDP_FLOW_PENDING_BYTES (64 * 1024)

typedef struct _UdpForwards UdpForwards;

/* Parses and binds every spec; @idle_timeout_s ends idle flows. */
UdpForwards *udp_forwards_new (GMainContext *context, const char *const *specs,
                               guint idle_timeout_s, ForwardsFatalFunc fatal,
                               ForwardsSayFunc say, gpointer user_data, GError **error);
/* Starts receiving; each new client opens a flow on @transport, which the
 * caller keeps valid until udp_forwards_stop() or udp_forwards_free(). Again
 * after udp_forwards_stop(), with the next tunnel's transport. */
void udp_forwards_start (UdpForwards *forwards, Transport *transport);
/* The tunnel is going away (@transport is still valid during the call):
 * every flow ends and its stream is freed; the sockets stay. @why ends the
 * line told to the owner. */
void udp_forwards_stop (UdpForwards *forwards, const char *why);
void udp_forwards_free (UdpForwards *forwards);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (UdpForwards, udp_forwards_free)
