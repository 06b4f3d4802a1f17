/* The services one peer's tunnel may open: the node's exposed TCP and UDP
 * services (host:port) and its in-process ones. Holds the bridges, the
 * connections in flight and the UDP flows of that tunnel. */
#pragma once

#include <gio/gio.h>

#include "p2ptun-private.h"
#include "transport.h"
#include "tunnel.h"

typedef struct _Expose Expose;

/* An in-process service: @fd (one end of a socket pair) is the callee's. */
typedef struct
{
  void (*accept) (const char *peer_id, int fd, gpointer user_data);
  gpointer user_data;
} ExposeLocal;

/* Takes @event (a REFUSED or a NOTICE). */
typedef void (*ExposeEmitFunc) (P2ptunEvent *event, gpointer user_data);

/* @config and @locals (name -> ExposeLocal*) are borrowed and outlive it. */
Expose *expose_new (GMainContext *context, const char *peer_id, const P2ptunConfig *config,
                    GHashTable *locals, ExposeEmitFunc emit, gpointer user_data);
/* The peer asks @tunnel for a stream, a UDP flow or the media leg to
 * @service. */
void expose_open_request (Expose *expose, Tunnel *tunnel, TransportStream *stream,
                          const char *service);
/* Ends every stream and flow (before the transport goes). */
void expose_free (Expose *expose);
