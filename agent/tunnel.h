/* One tunnel to one peer: a session (session.h: DTLS authenticates the
 * peer's key against its peer-id, the transport carries streams) over a
 * path that ICE found (path/path.h, libnice). Driven by signaling messages
 * that the owner relays (tunnel_handle_signal in, callbacks->signal out). */
#pragma once

#include <gio/gio.h>

#include "identity.h"
#include "path.h"
#include "relays.h"
#include "session.h"
#include "sigmsg.h"
#include "warn.h"
#include "transport.h"

#define TUNNEL_ERROR (tunnel_error_quark ())
GQuark tunnel_error_quark (void);
typedef enum
{
  TUNNEL_ERROR_ICE_FAILED,    /* no candidate pair worked */
  TUNNEL_ERROR_DTLS,          /* handshake failed, or peer key mismatch */
  TUNNEL_ERROR_PEER_MISMATCH, /* the peer's certificate is not the peer-id */
  TUNNEL_ERROR_REFUSED,       /* the peer refused the tunnel (bye) */
  TUNNEL_ERROR_CLOSED,        /* the peer ended the tunnel */
  TUNNEL_ERROR_TIMEOUT,       /* the peer stopped answering */
  TUNNEL_ERROR_INTERNAL,
} TunnelError;

typedef struct _Tunnel Tunnel;

/* The selected candidate pair under the tunnel. */
typedef PathInfo TunnelPath;

/* "direct (host 192.0.2.1:5000 -> srflx 198.51.100.2:6000, udp)" */
char *tunnel_path_to_string (const TunnelPath *path);

/* ICE restarts (PROTOCOL.md section 4): a path that looks dead, or whose
 * host address went away, is replaced by a new ICE generation (a new libnice
 * agent that gathers afresh) while the session and its streams carry on.
 * The controlling side (the offerer) makes the generations; the other side
 * asks it to with a "restart" message. The old path carries data until the
 * new one selects a pair (make before break); a new generation that does not
 * within TUNNEL_RESTART_DEADLINE_S is dropped, and the next one is tried
 * after a backoff that doubles from 1 s up to TUNNEL_RESTART_BACKOFF_MAX_S
 * for as long as the path stays dead. */
#define TUNNEL_RESTART_DEADLINE_S 10
#define TUNNEL_RESTART_BACKOFF_MAX_S 8

/* Relay credentials expire (relays_expiry(); minutes, the signaling
 * server's --turn-ttl), and then a strict relay refreshes the allocation no
 * more and drops it. libnice 0.1.21 takes a 401 to its Refresh quietly (it
 * stops refreshing, conncheck.c priv_map_reply_to_relay_refresh, and keeps
 * the candidate): the path just goes dead, and the silence detector would
 * restart it 2 s later. So a path whose pair goes through our own relay
 * allocation moves to a new generation, gathered with the owner's fresh
 * credentials, while the old one still works: when a quarter of the life
 * the credentials had when the path was made is left, but no later than
 * TUNNEL_RELAY_MARGIN_MIN_S before they expire (time for a generation or
 * two on a slow machine). The controlled side asks a quarter of its margin
 * later than it would, so that the controlling side, which makes the
 * generations, goes first when both relays expire together. A move waits
 * for credentials that outlive the path's (the owner renews them in time
 * and then calls tunnel_relays_renewed()); one that finds no pair is tried
 * again with the backoff above. A path whose own end is not relayed does
 * not move: its relayed candidates are standby that nothing falls back to
 * (libnice fails the whole component when the selected pair loses consent,
 * and a path that dies is replaced by a new generation with fresh
 * allocations). */
#define TUNNEL_RELAY_MARGIN_MIN_S 5
#define TUNNEL_RELAY_MARGIN_DIVISOR 4

/* Why a new ICE generation is made. */
typedef enum
{
  TUNNEL_RESTART_SILENCE,  /* the peer went quiet (the failure detector) */
  TUNNEL_RESTART_LOST,     /* ICE declared the path failed */
  TUNNEL_RESTART_NETWORK,  /* a local address went away, or the default route moved */
  TUNNEL_RESTART_PEER,     /* the peer asked (it noticed first) */
  TUNNEL_RESTART_RETRY,    /* the last generation found no pair */
  TUNNEL_RESTART_CREDENTIALS, /* our relay's credentials expire soon (no fault) */
} TunnelRestartReason;

typedef struct
{
  /* A signaling message for the peer. */
  void (*signal) (const Sigmsg *msg, gpointer user_data);
  /* The tunnel is up: peer authenticated, streams may open. */
  void (*up) (const TunnelPath *path, gpointer user_data);
  /* The path under the tunnel changed (the tunnel stays up). */
  void (*path_changed) (const TunnelPath *path, gpointer user_data);
  /* The peer wants a stream to @service (see transport.h). */
  void (*open_request) (TransportStream *stream, const char *service, gpointer user_data);
  /* A new round-trip time measurement. */
  void (*rtt) (gint64 rtt_us, gpointer user_data);
  /* The peer has said nothing for @gap_us (@over FALSE), or speaks again
   * after a silence of @gap_us (@over TRUE). Optional. */
  void (*silence) (gint64 gap_us, gboolean over, gpointer user_data);
  /* An ICE restart began: a path of @generation is being made (or, on the
   * controlled side, asked for), for @reason. Optional. */
  void (*restarting) (guint32 generation, TunnelRestartReason reason, gpointer user_data);
  /* The relays to gather from now (the owner renews their credentials). */
  const SigmsgIceServers *(*ice_servers) (gpointer user_data);
  /* The tunnel is over; free it (not from inside this callback's caller:
   * this is always called from its own main-loop dispatch). */
  void (*down) (const GError *error, gpointer user_data);
} TunnelCallbacks;

typedef struct
{
  const Identity *identity;  /* borrowed */
  const char *peer_id;       /* the peer we expect */
  const char *session;       /* SIGMSG_SESSION_LEN hex characters */
  gboolean controlling;      /* we sent the offer; we are the DTLS client */
  const char *const *local_addresses; /* NULL: every interface; must outlive the tunnel */
  gboolean relay_only;                /* relayed candidates only (needs a usable relay) */
  RelayReleases *releases;            /* borrowed; where the relay allocations go back */
  Warn warn;                          /* relays that fail, STUN servers skipped */
  guint hold_s;                       /* see session_new() */
} TunnelConfig;

Tunnel *tunnel_new (GMainContext *context, const TunnelConfig *config,
                    const TunnelCallbacks *callbacks, gpointer user_data, GError **error);
/* Frees @tunnel; its relay allocations are given back in the background (see
 * relay_releases_pending). */
void tunnel_free (Tunnel *tunnel);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Tunnel, tunnel_free)

/* The offerer: gathers candidates and sends the offer. */
void tunnel_start (Tunnel *tunnel);
/* A message for this tunnel's session from the peer. The answerer's tunnel is
 * started by passing it the offer. */
void tunnel_handle_signal (Tunnel *tunnel, const Sigmsg *msg);
/* Sends again every signaling message sent so far (for a peer that was not
 * connected to the signaling server when they were first sent). */
void tunnel_resend_signals (Tunnel *tunnel);
gboolean tunnel_has_answer (Tunnel *tunnel);
gboolean tunnel_is_up (Tunnel *tunnel);
/* Whether the peer went quiet (see SessionCallbacks.silence). */
gboolean tunnel_is_stalled (Tunnel *tunnel);
const char *tunnel_session (Tunnel *tunnel);
const char *tunnel_peer_id (Tunnel *tunnel);
Transport *tunnel_transport (Tunnel *tunnel);

/* The media leg beside the session (media.h): SRTP and SRTCP packets (first
 * byte 128..191, RFC 7983) go on the path in use as they are, not through
 * DTLS or the transport, and those that arrive go to the sink. */
typedef void (*TunnelMediaSink) (const guint8 *buf, gsize len, gpointer user_data);
/* FALSE if the tunnel has a sink already: one media leg per tunnel. */
gboolean tunnel_set_media_sink (Tunnel *tunnel, TunnelMediaSink sink, gpointer user_data);
/* Takes the sink away if it is @user_data's. */
void tunnel_clear_media_sink (Tunnel *tunnel, gpointer user_data);
/* FALSE if there is no path to send on. */
gboolean tunnel_send_media (Tunnel *tunnel, const guint8 *buf, gsize len);
/* The largest packet the path in use carries (PATH_DATAGRAM_MIN at least). */
gsize tunnel_media_max (Tunnel *tunnel);
/* See session_srtp_keys(). */
gboolean tunnel_srtp_keys (Tunnel *tunnel, DtlsSrtpKeys *keys);
/* The path in use (valid once up). */
const TunnelPath *tunnel_path (Tunnel *tunnel);
/* The network under us changed (netwatch.h): restarts ICE at once when the
 * path's own address is gone (@has_address says which are left) or
 * @route_moved. */
void tunnel_network_changed (Tunnel *tunnel, gboolean (*has_address) (const char *ip),
                             gboolean route_moved);
/* The owner's relay credentials were renewed: a path that waits for them
 * to move off expiring ones moves now. */
void tunnel_relays_renewed (Tunnel *tunnel);
/* The ICE generation in use, and how many restarts and stalls (the peer
 * went quiet) the tunnel has been through. */
guint32 tunnel_generation (Tunnel *tunnel);
guint tunnel_restarts (Tunnel *tunnel);
guint tunnel_stalls (Tunnel *tunnel);
/* Tells the peer we are leaving (BYE inside the tunnel, bye by signaling). */
void tunnel_close (Tunnel *tunnel, const char *reason, const char *text);
