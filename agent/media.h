/* The media leg (PROTOCOL.md section 7, docs/media-leg.md): RTP and RTCP
 * between local UDP sockets and the peer, protected as SRTP and SRTCP
 * (srtpctx.h) with the keys of the tunnel's DTLS handshake and sent beside
 * the session on the tunnel's path (tunnel_send_media), not through the
 * transport. One leg per tunnel; its transport stream (OPEN_MEDIA) is its
 * id and its end. Two ends:
 *
 * - the forward, -M [BIND:]PORT:SERVICE: binds PORT (RTP, and RTCP muxed
 *   with it) and PORT+1 (RTCP) at once; what a local application sends
 *   there goes to the peer, what comes back goes to the last sender on the
 *   socket of its kind (RTCP to the last sender on PORT+1, else on PORT);
 * - the service, --expose NAME=HOST:PORT/rtp: sends RTP to HOST:PORT and
 *   RTCP to HOST:PORT+1, or to HOST:PORT once the service has sent RTCP on
 *   its RTP port (rtcp-mux); what the service sends back to the two sockets
 *   goes to the peer.
 *
 * A packet that fails authentication or is replayed, one SSRC too many (of
 * MEDIA_MAX_SSRCS each way), a packet over MEDIA_MAX_PPS a second, and one
 * too large for the path are dropped, counted, and told at most once a
 * second. */
#pragma once

#include <gio/gio.h>

#include "forward.h"
#include "tunnel.h"

#define MEDIA_MAX_SSRCS 16
#define MEDIA_MAX_PPS 5000

/* ---- the forward (-M) ---- */

typedef struct _MediaForward MediaForward;

/* Parses @spec and binds both sockets (an error if either port is taken).
 * @fatal: the peer has no such RTP service, so the forward cannot work. */
MediaForward *media_forward_new (GMainContext *context, const char *spec, ForwardsFatalFunc fatal,
                                 ForwardsSayFunc say, gpointer user_data, GError **error);
/* A tunnel is up: opens the leg on it (or says why it cannot). @tunnel stays
 * valid until media_forward_stop() or media_forward_free(). */
void media_forward_start (MediaForward *forward, Tunnel *tunnel);
/* The tunnel is going away; the sockets stay, and what arrives on them is
 * dropped until the next start. */
void media_forward_stop (MediaForward *forward, const char *why);
void media_forward_free (MediaForward *forward);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MediaForward, media_forward_free)

/* ---- an application's leg (the library's p2ptun_node_open_media) ---- */

typedef struct _MediaApp MediaApp;
/* One RTP or RTCP packet from the peer, decrypted and authenticated. */
typedef void (*MediaAppPacketFunc) (const guint8 *packet, gsize len, gpointer user_data);
/* The leg ended (the peer refused or closed it): @error says why. No
 * packet comes after it; free the leg. */
typedef void (*MediaAppEndedFunc) (const GError *error, gpointer user_data);

typedef enum
{
  MEDIA_SEND_OK,
  MEDIA_SEND_TOO_BIG,   /* larger than the path carries with the tag */
  MEDIA_SEND_OVER_RATE, /* over MEDIA_MAX_PPS */
  MEDIA_SEND_INVALID,   /* not RTP or RTCP, or a new SSRC over MEDIA_MAX_SSRCS */
  MEDIA_SEND_CLOSED,    /* not accepted yet, or ended, or no path */
} MediaSendResult;

/* Opens @tunnel's media leg to the peer's RTP @service (@tunnel is up and
 * outlives the leg). Sends fail with MEDIA_SEND_CLOSED until the peer
 * accepted it. */
MediaApp *media_app_open (GMainContext *context, Tunnel *tunnel, const char *service,
                          MediaAppPacketFunc packet, MediaAppEndedFunc ended, ForwardsSayFunc say,
                          gpointer user_data, GError **error);
/* Protects one RTP or RTCP packet and sends it. */
MediaSendResult media_app_send (MediaApp *app, const guint8 *packet, gsize len);
void media_app_free (MediaApp *app);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MediaApp, media_app_free)

/* ---- the service (--expose NAME=HOST:PORT/rtp) ---- */

typedef struct _MediaService MediaService;
/* The leg ended (the peer closed it, or the tunnel went): free it. */
typedef void (*MediaServiceDoneFunc) (MediaService *service, const GError *error,
                                      gpointer user_data);

/* Takes @stream (the peer's OPEN_MEDIA) and accepts or refuses it. @tunnel
 * outlives the service. */
MediaService *media_service_open (GMainContext *context, Tunnel *tunnel, TransportStream *stream,
                                  const char *name, const char *target, MediaServiceDoneFunc done,
                                  ForwardsSayFunc say, gpointer user_data);
void media_service_free (MediaService *service);
