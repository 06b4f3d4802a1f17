/* The tunnel transport's insides, shared by transport.c (control channel,
 * streams, a round of the pump), transport_pump.c (the pump's source and
 * its sends) and transport_dgram.c (UDP flows and their datagrams).
 * Nothing else includes this. */
#pragma once

#include "transport.h"
#include "xport.h"

typedef enum
{
  STREAM_HEADER,  /* the peer's new stream: reading its OPEN message */
  STREAM_OPENING, /* we sent OPEN, waiting for ACCEPT or REFUSE */
  STREAM_PENDING, /* the peer sent OPEN, the user has not answered */
  STREAM_OPEN,
  STREAM_DONE,
} StreamState;

/* What a stream's user is to hear from the next pump. */
enum
{
  NOTE_OPENED = 1 << 0,
  NOTE_READABLE = 1 << 1,
  NOTE_WRITABLE = 1 << 2,
  NOTE_ENDED = 1 << 3, /* closed or refused, per the stream's state */
};

struct _TransportStream
{
  Transport *transport;
  guint32 id;
  StreamState state;
  TransportStreamCallbacks cb;
  gpointer user_data;
  guint notes;
  gboolean fin_sent;
  gboolean eof_read;
  gboolean reset;
  gboolean refused;
  guint8 refuse_code;
  char *refuse_text;
  gboolean released; /* xport_stream_release done */
  gboolean datagram;
  gboolean media; /* a media leg's stream: no bytes, and no datagrams either */ /* a UDP flow (OPEN_DGRAM): its datagrams carry its id */
  guint8 header[CTLMSG_MAX_LEN]; /* STREAM_HEADER: the OPEN message so far */
  gsize header_len;
};

struct _Transport
{
  GMainContext *context;
  gboolean initiator;
  TransportCallbacks cb;
  gpointer user_data;
  struct xport_conn *conn;
  GSource *pump;
  guint8 *packet; /* one packet's buffer */
  gsize packet_cap;  /* its size: the largest packet path MTU discovery tries */
  guint32 packet_size; /* the size in use, as last logged */
  guint64 ctl_out_id;
  guint64 ctl_in_id;
  GByteArray *ctl_in;
  GByteArray *ctl_out;
  GHashTable *streams; /* id -> TransportStream (data streams) */
  GArray *noted;       /* guint32 ids with notes pending, in order */
  gboolean hello_received;
  gboolean ready;
  gboolean closed;          /* no more traffic; closed() is (to be) delivered */
  gboolean closed_notified; /* closed() delivered */
  gboolean kicked;          /* the pump has work: transport_kick() */
  guint8 close_code;
  char *close_text;
  guint8 *dgram;          /* one received datagram */
  guint64 dgrams_dropped; /* for no open flow, or malformed */
  guint64 bytes_sent;     /* packets handed to send_packet */
  guint64 bytes_received; /* packets given to transport_receive_packet */
  guint64 idle_timeout_us; /* 0: the connection's default */
};

/* The pump runs soon. */
void transport_kick (Transport *t);
TransportStream *transport_stream_lookup (Transport *t, guint64 id);
/* transport_open() with OPEN (@type CTLMSG_OPEN) or OPEN_DGRAM. */
TransportStream *transport_stream_open_typed (Transport *t, guint8 type, const char *service,
                                              const TransportStreamCallbacks *callbacks,
                                              gpointer user_data, GError **error);
/* XPORT_EVENT_DATAGRAM: hands every datagram to its flow. */
void transport_deliver_datagrams (Transport *t);

/* transport_pump.c: the pump's source, and the sends of one burst. */
guint64 transport_now_us (void);
GSource *transport_pump_new (Transport *t);
/* The packets due at @now, up to a burst, then the flush that lets them
 * leave together. Returns how many. */
guint transport_send_burst (Transport *t, guint64 now);
/* In transport.c: control messages, events, notes to the streams, then a
 * burst. Returns TRUE if anything happened. */
gboolean transport_pump_round (Transport *t, guint64 now);
