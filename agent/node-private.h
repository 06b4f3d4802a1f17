/* The insides of a node, shared by node.c (signaling and tunnels by peer),
 * node-streams.c (what an app opens through the tunnels) and node-ice.c
 * (relay credentials). */
#pragma once

#include "bridge.h"
#include "expose.h"
#include "forward.h"
#include "media.h"
#include "netwatch.h"
#include "node.h"
#include "relays.h"
#include "sigclient.h"
#include "tunnel.h"
#include "udpforward.h"

typedef struct _Link Link;

/* A peer we asked for a tunnel (node_pair): its forwards wait for the
 * tunnel, and for the next one when the tunnel ends after it was up (the
 * peer restarted, or stayed silent past --hold): the node reconnects with
 * backoff (NODE_RECONNECT_*). */
typedef struct
{
  Node *node;
  char peer[PEERID_SIZE];
  Link *link;              /* the tunnel to it, once begun */
  GPtrArray *forwards;     /* Forwards* */
  GPtrArray *udp_forwards; /* UdpForwards* */
  MediaForward *media;     /* -M: the tunnel's media leg, if asked for */
  gboolean told_offline;
  gboolean was_up;         /* a tunnel to it came up once: reconnect when it ends */
  gint64 lost_at;          /* when the last tunnel ended; 0 while one is up */
  guint backoff_ms;        /* the last reconnection delay; 0 after a tunnel came up */
  guint reconnects;        /* tunnels after the first */
  GSource *reconnect;      /* the next attempt */
  GSource *give_up;        /* --give-up-after, while there is no tunnel */
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
  gint64 up_at;        /* monotonic time the tunnel came up; 0 before */
  guint path_changes;  /* after it was up */
  guint reconnects;    /* of its Peer when it began */
  gint64 reconnecting_since; /* its Peer's lost_at when it began; 0: the first */
  Expose *expose;
  GPtrArray *fd_streams; /* FdStream* */
  GPtrArray *flows;      /* NodeFlow* */
  GPtrArray *medias;     /* NodeMedia*: an application's media leg (one at most) */
  GSource *reoffer;
};

typedef struct
{
  Link *link;
  guint id;
  Bridge *bridge;
} FdStream;

struct _NodeMedia
{
  Link *link;
  MediaApp *app;
  MediaAppPacketFunc packet;
  MediaAppEndedFunc ended;
  NodeFlowLostFunc lost;
  gpointer user_data;
};

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
  int refusal;          /* the server refuses us: 1 + the P2PTUN_ERROR told; 0: not */
  GSource *admission_retry; /* refused: the next time we ask */
  RelayReleases *releases; /* the allocations that ended tunnels give back */
  GSource *closer;      /* closing: the grace period, then release polling */
  NetWatch *netwatch;   /* local addresses and default routes */
  char *default_route;  /* as netwatch_default_route() said last */
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

/* Begins a tunnel to @peer (node.c). */
void peer_start (Peer *peer);

/* node-staying.c. The tunnel of a paired peer ended with @error: its
 * streams are reset, its forwards stay, and a new tunnel is tried after a
 * backoff; FALSE when the node gives up instead (never up, a final error,
 * or --give-up-after). */
gboolean peer_schedule_reconnect (Peer *peer, const GError *error);
/* A new session from @peer: its silent incoming tunnels go. */
void node_evict_silent (Node *node, const char *peer);
/* A NetWatchFunc for the node. */
void node_network_changed (gpointer node);

/* node.c: the relay list @servers (taken) arrived, at the start or after a
 * refusal: the node is ready, receives, and renews them in time. */
void node_relays_arrived (Node *node, SigmsgIceServers *servers);

/* node-admission.c. When @error (of sigclient) says that the server refuses
 * this agent (not enrolled, revoked): a WARNING with the server's words and
 * a P2PTUN_ERROR of that code, once per kind, and a new request every 30 s
 * until admitted, when a NOTICE says so and node_relays_arrived runs. FALSE,
 * doing nothing, for any other error. */
gboolean node_admission_refused (Node *node, const GError *error);
/* Asks again in 30 s (unless already waiting to). */
void node_admission_refused_later (Node *node);
/* Stops asking (node_free). */
void node_admission_clear (Node *node);

/* Renews them in @delay_s seconds, or (0) when a third of what is left of
 * them is gone (node-ice.c). */
void node_schedule_ice_refresh (Node *node, gint64 delay_s);
