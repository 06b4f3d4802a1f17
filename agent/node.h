/* A node: an identity, its signaling client, its tunnels by peer, the
 * services it exposes and the forwards it runs. The library's P2ptunNode
 * (p2ptun.c) is its public face; everything a person would be told goes out
 * as a P2ptunEvent through the emit function. */
#pragma once

#include <glib.h>

#include "p2ptun-private.h"
#include "media.h"
#include "transport.h"

typedef struct _Node Node;

/* Takes @event. Called from inside the node's work, also from inside calls
 * into it: the owner queues. */
typedef void (*NodeEmitFunc) (P2ptunEvent *event, gpointer user_data);
/* A trusted peer opened a stream to an in-process service; @fd is the
 * callee's. */
typedef void (*NodeAcceptFunc) (const char *peer_id, int fd, gpointer user_data);

Node *node_new (GMainContext *context, const Identity *identity, const P2ptunConfig *config,
                NodeEmitFunc emit, gpointer user_data, GError **error);
/* No emit after this. Call node_close() first for an orderly end. */
void node_free (Node *node);
void node_start (Node *node);
gboolean node_pair (Node *node, const char *peer_id, GError **error);
gboolean node_forward (Node *node, const char *peer_id, P2ptunServiceKind kind,
                       const char *spec, GError **error);
/* Takes @in_fd and @out_fd, also when it fails. */
guint node_connect_fds (Node *node, const char *peer_id, const char *service, int in_fd,
                        int out_fd, GError **error);
/* @func and @user_data must live as long as the node. */
gboolean node_expose (Node *node, const char *name, NodeAcceptFunc func, gpointer user_data,
                      GError **error);

/* A UDP flow that the node ends with its tunnel: @lost is called then, and
 * the flow is freed (its stream too) right after. */
typedef struct _NodeFlow NodeFlow;
typedef void (*NodeFlowLostFunc) (gpointer user_data);
NodeFlow *node_open_flow (Node *node, const char *peer_id, const char *service,
                          const TransportStreamCallbacks *callbacks, gpointer user_data,
                          NodeFlowLostFunc lost, GError **error);
TransportStream *node_flow_stream (NodeFlow *flow);
/* Ends the flow and frees it (not from inside its own lost function). */
void node_flow_close (NodeFlow *flow);

/* An application's media leg (media.h) that the node ends with its tunnel:
 * @lost is called then and the leg is freed right after. @packet and
 * @ended as media_app_open() says; the drops it reports become NOTICE
 * events. */
typedef struct _NodeMedia NodeMedia;
NodeMedia *node_open_media (Node *node, const char *peer_id, const char *service,
                            MediaAppPacketFunc packet, MediaAppEndedFunc ended,
                            NodeFlowLostFunc lost, gpointer user_data, GError **error);
MediaApp *node_media_app (NodeMedia *media);
/* Ends the leg and frees it (not from inside its own lost function). */
void node_media_close (NodeMedia *media);

/* P2ptunStatus* of every tunnel. */
GPtrArray *node_statuses (Node *node);
void node_ping (Node *node);
/* Tells every peer, gives back relay allocations, then emits CLOSED. */
void node_close (Node *node);
const char *node_peer_id (Node *node);
