/* The insides of a node, shared by node.c (signaling and tunnels by peer),
 * node-streams.c (what an app opens through the tunnels) and node-ice.c
 * (relay credentials). */
#pragma once

#include "bridge.h"
#include "expose.h"
#include "forward.h"
#include "node.h"
#include "relays.h"
#include "sigclient.h"
#include "tunnel.h"
#include "udpforward.h"

typedef struct _Link Link;

/* A peer we asked for a tunnel (node_pair): its forwards wait for the
 * tunnel and end with it. */
typedef struct
{
  Node *node;
  char peer[PEERID_SIZE];
  Link *link;              /* the tunnel to it, once begun */
  GPtrArray *forwards;     /* Forwards* */
  GPtrArray *udp_forwards; /* UdpForwards* */
  gboolean told_offline;
} Peer;

/* One tunnel (one signaling session) to one peer. */
struct _Link
{
  Node *node;
  Tunnel *tunnel;
  char peer[PEERID_SIZE];
  gboolean outgoing;   /* a tunnel we asked for (its Peer's link) */
  gboolean announced;  /* PEER_UP emitted */
  gint64 rtt_us;
  Expose *expose;
  GPtrArray *fd_streams; /* FdStream* */
  GPtrArray *flows;      /* NodeFlow* */
  GSource *reoffer;
};

typedef struct
{
  Link *link;
  guint id;
  Bridge *bridge;
} FdStream;

struct _NodeFlow
{
  Link *link;
  TransportStream *stream;
  NodeFlowLostFunc lost;
  gpointer user_data;
};

typedef struct
{
  Sigmsg *msg;
  gint64 received;
} Orphan;

struct _Node
{
  GMainContext *context;
  const Identity *identity;
  P2ptunConfig *config;
  NodeEmitFunc emit;
  gpointer emit_data;
  Sigclient *sig;
  SigmsgIceServers *ice_servers;
  GHashTable *locals;   /* name -> ExposeLocal* (in-process services) */
  GHashTable *links;    /* session -> Link* */
  GHashTable *peers;    /* peer-id -> Peer* (the ones we pair with) */
  GPtrArray *orphans;   /* Orphan*: messages before their offer */
  GPtrArray *offers_sent; /* OfferSent* in flight: sigclient_free() drops them unanswered */
  gboolean ready;       /* the relays are known: tunnels may begin */
  gboolean closing;
  guint pending_sends;
  guint next_stream;
  GSource *ice_refresh; /* renews the relay credentials */
  RelayReleases *releases; /* the allocations that ended tunnels give back */
  GSource *closer;      /* closing: the grace period, then release polling */
  gint64 release_deadline;
};

void node_emit (Node *node, P2ptunEvent *event);
void node_warn (Node *node, const char *format, ...) G_GNUC_PRINTF (2, 3);
/* Takes @error. */
void node_fatal (Node *node, GError *error);
void link_emit (Link *link, P2ptunEvent *event);
/* Ends the fd streams and flows of @link (before its transport goes). */
void link_end_streams (Link *link);
void fd_stream_free (FdStream *s);

/* Renews them in @delay_s seconds, or (0) when half their life is gone. */
void node_schedule_ice_refresh (Node *node, gint64 delay_s);
