/* The tunnel transport: reliable, ordered, flow-controlled streams to named
 * services, with a control channel, over packets that the caller carries one
 * per DTLS record (send_packet out, transport_receive_packet in).
 *
 * It runs our own transport, proto/xport.h (loss recovery, pacing,
 * per-stream credit; PROTOCOL.md sections 3 and 6). The DTLS client (the
 * "initiator") opens odd stream ids, the other side even ones, so that both
 * may open streams at once without clashing. */
#pragma once

#include <gio/gio.h>

#include "ctlmsg.h"

/* A remote party can grow the number of streams: this bounds it. */
#define TRANSPORT_MAX_STREAMS 256

typedef struct _Transport Transport;
typedef struct _TransportStream TransportStream;

typedef struct
{
  /* A packet to encrypt and send; dropping it is allowed (the transport
   * retransmits). It may wait for the flush that follows every burst. */
  void (*send_packet) (const guint8 *buf, gsize len, gpointer user_data);
  /* The packets of a burst were all handed to send_packet: they go out now
   * (together, where the socket can). */
  void (*flush) (gpointer user_data);
  /* Both sides said HELLO: streams may be opened. */
  void (*ready) (gpointer user_data);
  /* The peer asks to open a stream to @service: answer with
   * transport_stream_accept() or transport_stream_refuse(), now or later. */
  void (*open_request) (TransportStream *stream, const char *service, gpointer user_data);
  /* An answer to our PING: round-trip time in microseconds. */
  void (*rtt) (gint64 rtt_us, gpointer user_data);
  /* The peer said BYE, or the control channel broke (@code 0, @text says why).
   * No stream callback runs after this. */
  void (*closed) (guint8 code, const char *text, gpointer user_data);
} TransportCallbacks;

typedef struct
{
  /* The peer accepted the stream: data may flow. */
  void (*opened) (TransportStream *stream, gpointer user_data);
  /* The peer refused it (the stream is then dead: free it). */
  void (*refused) (TransportStream *stream, guint8 code, const char *text, gpointer user_data);
  /* Bytes (or the end of the stream) can be read. */
  void (*readable) (TransportStream *stream, gpointer user_data);
  /* transport_stream_write() would take bytes again. */
  void (*writable) (TransportStream *stream, gpointer user_data);
  /* The stream is finished (both directions ended, or reset: @error set).
   * Free it with transport_stream_free(). */
  void (*closed) (TransportStream *stream, const GError *error, gpointer user_data);
  /* A UDP flow's datagram (transport_open_datagram, or a peer's flow). */
  void (*datagram) (TransportStream *stream, const guint8 *buf, gsize len,
                    gpointer user_data);
  /* Optional: the flow's datagram() calls of a burst are over, so what the
   * user held back to send in one batch may go now. */
  void (*datagrams_done) (TransportStream *stream, gpointer user_data);
} TransportStreamCallbacks;

typedef enum
{
  TRANSPORT_DATAGRAM_OK,
  TRANSPORT_DATAGRAM_TOO_BIG,    /* over transport_stream_datagram_max() */
  TRANSPORT_DATAGRAM_QUEUE_FULL, /* dropped, as a full link would */
  TRANSPORT_DATAGRAM_CLOSED,     /* the flow is not open (yet, or any more) */
} TransportDatagramResult;

Transport *transport_new (GMainContext *context, gboolean initiator,
                          const TransportCallbacks *callbacks, gpointer user_data);
/* Resets every stream and frees. No callback runs during or after this. */
void transport_free (Transport *transport);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Transport, transport_free)

/* Before transport_start: the connection closes when nothing arrives for
 * @seconds (the default is the connection's own, 30 s). */
void transport_set_idle_timeout (Transport *transport, guint seconds);
/* Starts the connection: packets of @max_packet bytes fit a DTLS record on
 * every path; path MTU discovery probes for up to @max_packet_probe. */
void transport_start (Transport *transport, gsize max_packet, gsize max_packet_probe);
/* ICE moved to another path: its MTU is to be found again, probing for up
 * to @max_packet_probe. */
void transport_path_changed (Transport *transport, gsize max_packet_probe);
/* One decrypted packet from the peer. */
void transport_receive_packet (Transport *transport, const guint8 *buf, gsize len);
/* Sends a PING; the answer arrives through callbacks->rtt. */
void transport_ping (Transport *transport);
/* Sends BYE to the peer (best effort) and stops all streams. */
void transport_bye (Transport *transport, guint8 code, const char *text);
guint transport_n_streams (Transport *transport);
/* Bytes of the transport's packets each way (framing included, DTLS not). */
void transport_get_bytes (Transport *transport, guint64 *sent, guint64 *received);
/* The transport's packets each way, and those sent and declared lost. */
void transport_get_packets (Transport *transport, guint64 *sent, guint64 *received,
                            guint64 *lost);
/* Of transport_n_streams(), the UDP flows. */
guint transport_n_flows (Transport *transport);
/* Bytes sent and not yet acknowledged or declared lost. */
guint64 transport_bytes_in_flight (Transport *transport);


/* Asks the peer to open a stream to @service. Callbacks follow. Returns NULL
 * with @error set when the stream limit is reached. */
TransportStream *transport_open (Transport *transport, const char *service,
                                 const TransportStreamCallbacks *callbacks,
                                 gpointer user_data, GError **error);

/* Asks the peer to open a UDP flow to @service (a service it exposes as
 * UDP): a stream that carries no bytes, whose datagrams go with
 * transport_stream_send_datagram() and arrive through callbacks->datagram.
 * The flow ends as a stream does. */
TransportStream *transport_open_datagram (Transport *transport, const char *service,
                                          const TransportStreamCallbacks *callbacks,
                                          gpointer user_data, GError **error);
/* For a stream from open_request: TRUE if the peer opened a UDP flow. */
gboolean transport_stream_is_datagram (TransportStream *stream);
/* Asks the peer to open the tunnel's media leg to @service (a service it
 * exposes as RTP). The stream carries neither bytes nor datagrams: it is
 * the leg's id and end; SRTP goes beside the transport (media.h). */
TransportStream *transport_open_media (Transport *transport, const char *service,
                                       const TransportStreamCallbacks *callbacks,
                                       gpointer user_data, GError **error);
/* For a stream from open_request: TRUE if the peer opened a media leg. */
gboolean transport_stream_is_media (TransportStream *stream);
/* The largest datagram the flow carries now: it changes with the path's
 * MTU (0 when the tunnel is down). */
gsize transport_stream_datagram_max (TransportStream *stream);
/* For a flow's stream, which carries no bytes: drops what arrived and
 * returns TRUE once the stream ended (the peer's end or reset). */
gboolean transport_stream_drain (TransportStream *stream);
/* Sends one datagram of an open flow (unreliable: it may be lost). */
TransportDatagramResult transport_stream_send_datagram (TransportStream *stream,
                                                        const guint8 *buf, gsize len);
/* The datagrams just queued (a burst read from a local socket) leave now
 * rather than at the pump's next turn, a main-loop iteration later: the
 * latency of a lockstep exchange. No callback runs from here. */
void transport_flush (Transport *transport);
void transport_stream_flush (TransportStream *stream);

/* For a stream from open_request: set its callbacks and accept it. */
void transport_stream_accept (TransportStream *stream, const TransportStreamCallbacks *callbacks,
                              gpointer user_data);
/* Refuses and frees a stream from open_request. */
void transport_stream_refuse (TransportStream *stream, guint8 code, const char *text);

/* Returns bytes taken (0 when the send buffer is full: wait for writable), or
 * -1 if the stream can no longer send. */
gssize transport_stream_write (TransportStream *stream, const guint8 *buf, gsize len);
/* Returns bytes read, 0 at the end of the stream, or -1 with errno EAGAIN
 * when nothing is buffered yet (wait for readable), or -1 on a reset stream. */
gssize transport_stream_read (TransportStream *stream, guint8 *buf, gsize len);
/* No more bytes from us (half-close); queued bytes are still delivered. */
void transport_stream_shutdown_write (TransportStream *stream);
/* Resets the stream if it is still open and frees it. No callback afterwards. */
void transport_stream_free (TransportStream *stream);
guint32 transport_stream_id (TransportStream *stream);
