/* The serving end of a UDP flow (PROTOCOL.md section 3): a UDP socket
 * connected to the local service an OPEN_DGRAM named, so that the service's
 * answers come back to this flow and no other. The peer's datagrams go to
 * the service, the service's to the peer. */
#pragma once

#include <gio/gio.h>

#include "forward.h"
#include "transport.h"

typedef struct _UdpService UdpService;

/* The flow ended (the peer reset it, the tunnel ended, or the service could
 * not be reached: @error). Free it with udp_service_free(), not from here. */
typedef void (*UdpServiceDoneFunc) (UdpService *service, const GError *error,
                                    gpointer user_data);

/* Resolves @target (HOST:PORT), connects a socket to it and accepts
 * @stream (a flow from open_request); refuses it when that fails, and tells
 * @say why. Takes @stream. */
UdpService *udp_service_open (GMainContext *context, TransportStream *stream,
                              const char *name, const char *target, UdpServiceDoneFunc done,
                              ForwardsSayFunc say, gpointer user_data);
void udp_service_free (UdpService *service);
