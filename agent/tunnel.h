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

/* No answer to pings for this long: the peer is gone. */
#define TUNNEL_DEAD_AFTER_S SESSION_DEAD_AFTER_S

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
  const SigmsgIceServers *ice_servers;
  const char *const *local_addresses; /* NULL: every interface */
  gboolean relay_only;                /* relayed candidates only (needs a usable relay) */
  RelayReleases *releases;            /* borrowed; where the relay allocations go back */
  Warn warn;                          /* relays that fail, STUN servers skipped */
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
const char *tunnel_session (Tunnel *tunnel);
const char *tunnel_peer_id (Tunnel *tunnel);
Transport *tunnel_transport (Tunnel *tunnel);
/* The path in use (valid once up). */
const TunnelPath *tunnel_path (Tunnel *tunnel);
/* Tells the peer we are leaving (BYE inside the tunnel, bye by signaling). */
void tunnel_close (Tunnel *tunnel, const char *reason, const char *text);
