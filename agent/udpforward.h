/* UDP port forwards (-U [BIND:]PORT:SERVICE): a UDP socket whose clients,
 * one flow per source address, reach the peer's UDP service through the
 * tunnel's datagrams (PROTOCOL.md section 3). The sockets are bound at
 * once, so that a port in use is an error at start. A flow ends after the
 * idle timeout without a datagram either way. */
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
/* Starts receiving; each new client opens a flow on @transport. */
void udp_forwards_start (UdpForwards *forwards, Transport *transport);
void udp_forwards_free (UdpForwards *forwards);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (UdpForwards, udp_forwards_free)
