/* A session with one peer: DTLS authenticates the peer's key against its
 * peer-id, the transport carries streams over it, and a tick a second
 * pings the peer, notices silence and declares the peer gone. It knows
 * nothing of the path underneath: its owner feeds it the datagrams that
 * arrive (session_receive) and puts its records on the wire (send_record),
 * so that one session can outlive the ICE paths it runs over. */
#pragma once

#include <gio/gio.h>

#include "dtls.h"
#include "identity.h"
#include "transport.h"

#define SESSION_ERROR (session_error_quark ())
GQuark session_error_quark (void);
typedef enum
{
  SESSION_ERROR_DTLS,          /* the handshake failed */
  SESSION_ERROR_PEER_MISMATCH, /* the peer's certificate is not the peer-id */
  SESSION_ERROR_CLOSED,        /* the peer ended the session, or it broke */
  SESSION_ERROR_TIMEOUT,       /* the peer stopped answering */
} SessionError;

/* How long a session waits for a silent peer by default (--hold): ten
 * minutes, as long as a TCP connection inside WireGuard lives through an
 * outage. */
#define SESSION_HOLD_DEFAULT_S 600
/* The failure detector (SessionCallbacks.silence): the peer has said
 * nothing for this long while we have data in flight (it would have
 * acknowledged it within a few round trips), or for this long when idle
 * (the DTLS client pings every SESSION_PING_INTERVAL_S and the server
 * answers, so neither end of a live idle path is quiet for more than that
 * plus a round trip; the server pings too when the client's pings stop). */
#define SESSION_STALL_LOADED_US (2 * G_USEC_PER_SEC)
#define SESSION_STALL_IDLE_US (5 * G_USEC_PER_SEC)
#define SESSION_PING_INTERVAL_S 2

typedef struct _Session Session;

typedef struct
{
  /* A DTLS record for the peer; returns whether it went out (or was
   * queued). @more: a flush follows, so the record may wait for it and go
   * out with the others of its burst. */
  gboolean (*send_record) (const guint8 *buf, gsize len, gboolean more, gpointer user_data);
  /* The records of a burst were all handed to send_record. */
  void (*flush) (gpointer user_data);
  /* The largest datagram the path carries as far as this host knows (its
   * route's MTU, less the IP and UDP headers); the transport probes for up
   * to that. */
  gsize (*max_datagram) (gpointer user_data);
  /* The peer is authenticated and the transport is ready: streams may open. */
  void (*up) (gpointer user_data);
  /* The peer wants a stream to @service (see transport.h). */
  void (*open_request) (TransportStream *stream, const char *service, gpointer user_data);
  /* A new round-trip time measurement. Optional. */
  void (*rtt) (gint64 rtt_us, gpointer user_data);
  /* The path looks dead: the peer has said nothing for @gap_us (@over
   * FALSE; see SESSION_STALL_*), or it speaks again after a silence of
   * @gap_us (@over TRUE). Meanwhile the session pings every second, so
   * that the path that comes back is found at once. Optional. */
  void (*silence) (gint64 gap_us, gboolean over, gpointer user_data);
  /* The session is over (@error in SESSION_ERROR). Called once, from inside
   * session_receive() or a timer of the session: do not free it here. */
  void (*down) (const GError *error, gpointer user_data);
} SessionCallbacks;

/* @identity is borrowed and must outlive the session; @controlling: we are
 * the DTLS client; @hold_s: no answer for this long ends the session
 * (SESSION_ERROR_TIMEOUT), its streams with it. */
Session *session_new (GMainContext *context, const Identity *identity, const char *peer_id,
                      gboolean controlling, guint hold_s, const SessionCallbacks *callbacks,
                      gpointer user_data, GError **error);
void session_free (Session *session);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Session, session_free)

/* A path works: the handshake begins (the client sends its ClientHello). */
void session_start (Session *session);
/* A datagram from the peer in the DTLS range (first byte 20..63, RFC 7983). */
void session_receive (Session *session, const guint8 *buf, gsize len);
/* The path under the session is a new one: the handshake records that could
 * not go out go now, and the transport measures the path again. */
void session_path_changed (Session *session);
/* Whether the peer has been silent long enough to call the path dead (the
 * silence callback said so, and it did not end yet). */
gboolean session_is_stalled (Session *session);
/* Whether the session came up (see SessionCallbacks.up). */
gboolean session_is_up (Session *session);
Transport *session_transport (Session *session);
/* The SRTP keys of the session's DTLS handshake (dtls_srtp_keys); FALSE
 * before it is up or when the peer negotiated none. */
gboolean session_srtp_keys (Session *session, DtlsSrtpKeys *keys);
/* Says goodbye inside the session (BYE with @text, then close_notify), if
 * it came up. */
void session_close (Session *session, const char *text);
