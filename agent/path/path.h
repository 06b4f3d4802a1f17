/* One ICE path to a peer: one generation of ICE (PROTOCOL.md section 4) in
 * a libnice agent of its own, with its credentials, candidates, relays,
 * path probes and deadline, and the pair it selected. It sends and takes
 * the signaling messages of its generation, and carries the datagrams of a
 * session that runs over it: what arrives in the DTLS range (RFC 7983) goes
 * up through callbacks->receive, STUN stays inside. This header includes
 * no libnice header; only agent/path/ does. */
#pragma once

#include <gio/gio.h>

#include "relays.h"
#include "sigmsg.h"
#include "warn.h"

#define PATH_ERROR (path_error_quark ())
GQuark path_error_quark (void);
typedef enum
{
  PATH_ERROR_ICE_FAILED, /* no candidate pair works, or none is left */
  PATH_ERROR_INTERNAL,
} PathError;

/* The selected candidate pair, as plain data. */
typedef struct
{
  gboolean relayed;
  char local_type[8];  /* host, srflx, prflx, relay */
  char remote_type[8];
  char local_addr[64]; /* address:port */
  char remote_addr[64];
  char transport[4];   /* udp, tcp */
} PathInfo;

/* "direct (host 192.0.2.1:5000 -> srflx 198.51.100.2:6000, udp)" */
char *path_info_to_string (const PathInfo *info);

/* Datagram sizes: what a path carries at least (an ICE payload inside TURN
 * framing); what most paths carry (a 1500-byte IPv4 packet's UDP payload),
 * the ceiling for any path through a relay or without a known route; and
 * the largest record (16 KiB of plaintext, on paths of large MTU). */
#define PATH_DATAGRAM_MIN 1200
#define PATH_DATAGRAM_COMMON 1472
#define PATH_DATAGRAM_MAX (16384 + 64)

typedef struct _Path Path;

typedef struct
{
  /* A signaling message for the peer, of this path's generation; takes
   * @msg. */
  void (*signal) (Path *path, Sigmsg *msg, gpointer user_data);
  /* A candidate pair works: a session may start over the path. Once. */
  void (*connected) (Path *path, gpointer user_data);
  /* A pair was selected (@new_pair), or the selected pair's remote end
   * got its real type (peer-reflexive until its candidate line came). */
  void (*selected) (Path *path, const PathInfo *info, gboolean new_pair,
                    gpointer user_data);
  /* A datagram from the peer in the DTLS range. */
  void (*receive) (Path *path, const guint8 *buf, gsize len, gpointer user_data);
  /* The path failed: no pair works (within the ICE deadline), the pair in
   * use is gone, or gathering could not start. @error in PATH_ERROR says
   * which candidates there were. May come from inside path_offer() and
   * path_handle_signal(). */
  void (*lost) (Path *path, const GError *error, gpointer user_data);
} PathCallbacks;

typedef struct
{
  const char *session;       /* SIGMSG_SESSION_LEN hex characters */
  guint32 generation;        /* of the signaling messages */
  gboolean controlling;      /* we send the offer */
  const SigmsgIceServers *ice_servers;
  const char *const *local_addresses; /* NULL: every interface */
  gboolean relay_only;                /* relayed candidates only (needs a usable relay) */
  RelayReleases *releases;            /* borrowed; where the relay allocations go back */
  Warn warn;                          /* relays that fail, STUN servers skipped */
} PathConfig;

Path *path_new (GMainContext *context, const PathConfig *config,
                const PathCallbacks *callbacks, gpointer user_data, GError **error);
/* Frees @path; its relay allocations are given back in the background. */
void path_free (Path *path);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Path, path_free)

/* The controlling side: sends the offer and gathers candidates. */
void path_offer (Path *path);
/* An offer, answer, candidate or end-of-candidates of this path's
 * generation. The controlled side starts with the offer: it answers and
 * gathers. */
void path_handle_signal (Path *path, const Sigmsg *msg);
/* Sends one datagram over the selected pair; FALSE when it did not go out
 * (no pair selected yet, or the socket refused it). @more: path_flush()
 * follows, so it may wait in a batch (see udpbatch.h). */
gboolean path_send (Path *path, const guint8 *buf, gsize len, gboolean more);
/* Sends the datagrams waiting in the batch. */
void path_flush (Path *path);
/* The largest datagram the selected pair carries as far as this host knows
 * (PATH_DATAGRAM_COMMON until a direct UDP pair is selected). */
gsize path_max_datagram (Path *path);
/* Whether the peer's credentials (its offer or answer) arrived. */
gboolean path_has_remote (Path *path);
guint32 path_generation (Path *path);
/* The selected pair (zeroed until one is). */
const PathInfo *path_info (Path *path);
/* When (Unix seconds) the credentials of the relay that the selected pair
 * goes through on our side expire (relays_expiry()), with in @lifetime_s
 * how long they had left when the path was made; 0 when our end of the
 * pair is not a relayed candidate (the peer's relay is the peer's
 * business) or its username does not say. */
gint64 path_relay_expiry (Path *path, gint64 *lifetime_s);
/* Whether one of the path's host candidates has an address that
 * @has_address says is no longer on this machine (the network changed
 * under it). */
gboolean path_lost_address (Path *path, gboolean (*has_address) (const char *ip));
