/* UDP flows of the tunnel transport: streams opened with OPEN_DGRAM whose
 * datagrams carry their id (PROTOCOL.md section 3); see transport.h. */
#include "transport_private.h"

#include <errno.h>
#include <string.h>

#include "dgram.h"

/* Tells the flow @id, if it is still there, that its burst is over. */
static void
datagrams_done (Transport *t, guint32 id)
{
  TransportStream *s = transport_stream_lookup (t, id);

  if (s != NULL && s->state == STREAM_OPEN && s->cb.datagrams_done != NULL)
    s->cb.datagrams_done (s, s->user_data);
}

/* Datagrams of UDP flows (PROTOCOL.md section 3), straight to the flow's
 * user: they are not ordered with anything, and a late one is worth less.
 * A burst for one flow ends with its datagrams_done(), so that the user may
 * send them on in one system call; flows taking turns end many bursts. */
void
transport_deliver_datagrams (Transport *t)
{
  gboolean burst = FALSE;
  guint32 burst_id = 0;
  gssize n;

  while (!t->closed && (n = xport_datagram_recv (t->conn, t->dgram, XPORT_MAX_PACKET)) >= 0)
    {
      const guint8 *payload;
      gsize len;
      guint64 flow;
      TransportStream *s;

      if (!dgram_parse (t->dgram, (gsize) n, &flow, &payload, &len)
          || (s = transport_stream_lookup (t, flow)) == NULL || !s->datagram || s->media
          || s->state != STREAM_OPEN || s->cb.datagram == NULL)
        {
          t->dgrams_dropped++;
          continue;
        }
      if (burst && burst_id != s->id)
        datagrams_done (t, burst_id);
      burst = TRUE;
      burst_id = s->id;
      /* The user may free the stream, or send, from here. */
      s->cb.datagram (s, payload, len, s->user_data);
    }
  if (burst && !t->closed)
    datagrams_done (t, burst_id);
}

TransportStream *
transport_open_datagram (Transport *t, const char *service,
                         const TransportStreamCallbacks *callbacks, gpointer user_data,
                         GError **error)
{
  return transport_stream_open_typed (t, CTLMSG_OPEN_DGRAM, service, callbacks, user_data,
                                      error);
}

gboolean
transport_stream_is_datagram (TransportStream *s)
{
  return s->datagram && !s->media;
}

TransportStream *
transport_open_media (Transport *t, const char *service, const TransportStreamCallbacks *callbacks,
                      gpointer user_data, GError **error)
{
  return transport_stream_open_typed (t, CTLMSG_OPEN_MEDIA, service, callbacks, user_data,
                                      error);
}

gboolean
transport_stream_is_media (TransportStream *s)
{
  return s->media;
}

gsize
transport_stream_datagram_max (TransportStream *s)
{
  Transport *t = s->transport;
  gsize max;

  if (t == NULL || t->conn == NULL || t->closed)
    return 0;
  max = xport_datagram_max (t->conn);
  return max > DGRAM_HEADER_MAX ? max - DGRAM_HEADER_MAX : 0;
}

gboolean
transport_stream_drain (TransportStream *s)
{
  guint8 buf[256];
  gssize n;

  while ((n = transport_stream_read (s, buf, sizeof buf)) > 0)
    ;
  return n == 0 || errno != EAGAIN;
}

TransportDatagramResult
transport_stream_send_datagram (TransportStream *s, const guint8 *buf, gsize len)
{
  Transport *t = s->transport;
  guint8 packet[XPORT_MAX_PACKET];
  gsize n;

  if (t == NULL || t->closed || t->conn == NULL || !s->datagram || s->media
      || s->state != STREAM_OPEN)
    return TRANSPORT_DATAGRAM_CLOSED;
  if (len > transport_stream_datagram_max (s))
    return TRANSPORT_DATAGRAM_TOO_BIG;
  n = dgram_put_header (packet, DGRAM_HEADER_MAX, s->id);
  memcpy (packet + n, buf, len);
  switch (xport_datagram_send (t->conn, packet, n + len))
    {
    case XPORT_OK:
      transport_kick (t);
      return TRANSPORT_DATAGRAM_OK;
    case XPORT_ERR_AGAIN:
      return TRANSPORT_DATAGRAM_QUEUE_FULL;
    case XPORT_ERR_TOO_BIG:
      return TRANSPORT_DATAGRAM_TOO_BIG;
    default:
      return TRANSPORT_DATAGRAM_CLOSED;
    }
}

