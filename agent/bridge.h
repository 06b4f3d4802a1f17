/* A bridge carries bytes between local file descriptors (a TCP connection, or
 * stdin/stdout) and one tunnel stream, both ways, with backpressure: it reads
 * from one side only while the other has room, so a slow reader on either
 * side never makes memory grow. Half-closes are passed on. */
#pragma once

#include <gio/gio.h>

#include "transport.h"

#define BRIDGE_ERROR (bridge_error_quark ())
GQuark bridge_error_quark (void);
typedef enum
{
  BRIDGE_ERROR_REFUSED, /* the peer refused the stream; message has its reason */
  BRIDGE_ERROR_NOT_EXPOSED, /* the peer exposes no TCP service by that name */
  BRIDGE_ERROR_IO,      /* the local side failed */
  BRIDGE_ERROR_RESET,   /* the stream was reset */
} BridgeError;

typedef struct _Bridge Bridge;

/* The bridge is finished (@error NULL: both directions ended cleanly). Free
 * it with bridge_free(), from this callback or later. */
typedef void (*BridgeDoneFunc) (Bridge *bridge, const GError *error, gpointer user_data);

/* Opens a stream to @service and bridges it to @in_fd/@out_fd (the same fd for
 * a socket). The bridge owns the fds and closes them. */
Bridge *bridge_open (GMainContext *context, Transport *transport, const char *service,
                     int in_fd, int out_fd, BridgeDoneFunc done, gpointer user_data,
                     GError **error);
/* Accepts a stream the peer asked for and bridges it. */
Bridge *bridge_accept (GMainContext *context, TransportStream *stream, int in_fd, int out_fd,
                       BridgeDoneFunc done, gpointer user_data);
void bridge_free (Bridge *bridge);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Bridge, bridge_free)

guint64 bridge_bytes_sent (Bridge *bridge);     /* local -> tunnel */
guint64 bridge_bytes_received (Bridge *bridge); /* tunnel -> local */
