/* The serving end of a UDP flow; see udpservice.h. */
#include "udpservice.h"

#include <errno.h>
#include <sys/socket.h>

#include "ctlmsg.h"

/* Datagrams read from the service in one dispatch, before others run. */
#define UDP_READ_BURST 64
#define UDP_PAYLOAD_MAX 65507
/* A service's answer that finds the tunnel's datagram queue full waits in
 * its socket and tries again this often, so many times: answers to a burst
 * of clients come together, more than the queue holds, and it empties with
 * the next packets. A queue full for longer is a tunnel slower than the
 * service: then answers are dropped, as the network would, until one gets
 * through again. (Counted in tries, not time: an agent that is short of
 * CPU sends its packets between two tries all the same.) */
#define UDP_QUEUE_RETRY_MS 1
#define UDP_QUEUE_TRIES 10

struct _UdpService
{
  GMainContext *context;
  TransportStream *stream;
  char *name;
  GSocket *socket;
  GSource *source; /* the socket is readable; none while waiting (retry) */
  GSource *retry;
  guint queue_tries;      /* the tunnel's datagram queue was full */
  gboolean queue_gave_up; /* and stayed full: drop until an answer goes */
  GCancellable *cancellable;
  GSocketAddressEnumerator *resolver;
  UdpServiceDoneFunc done;
  ForwardsSayFunc say;
  gpointer user_data;
  GSource *done_idle;
  GError *error;
  guint64 dropped; /* datagrams the tunnel or the service did not take */
};

static gboolean
done_dispatch (gpointer data)
{
  UdpService *self = data;

  g_clear_pointer (&self->done_idle, g_source_unref);
  self->done (self, self->error, self->user_data);
  return G_SOURCE_REMOVE;
}

/* Tells the owner from the loop: the caller may be deep in a callback of
 * the stream or the socket. */
static void
service_finish (UdpService *self, GError *error)
{
  if (self->done_idle != NULL)
    {
      g_clear_error (&error);
      return;
    }
  self->error = error;
  if (self->source)
    {
      g_source_destroy (self->source);
      g_clear_pointer (&self->source, g_source_unref);
    }
  if (self->retry)
    {
      g_source_destroy (self->retry);
      g_clear_pointer (&self->retry, g_source_unref);
    }
  self->done_idle = g_idle_source_new ();
  g_source_set_callback (self->done_idle, done_dispatch, self, NULL);
  g_source_attach (self->done_idle, self->context);
}

static void
flow_readable (TransportStream *stream, gpointer data)
{
  if (transport_stream_drain (stream))
    service_finish (data, NULL);
}

static void
flow_closed (TransportStream *stream, const GError *error, gpointer data)
{
  service_finish (data, error ? g_error_copy (error) : NULL);
}

static void
flow_datagram (TransportStream *stream, const guint8 *buf, gsize len, gpointer data)
{
  UdpService *self = data;

  if (self->socket == NULL
      || send (g_socket_get_fd (self->socket), buf, len, MSG_DONTWAIT) < 0)
    self->dropped++; /* a full buffer, or the service's port closed (ICMP) */
}

static const TransportStreamCallbacks flow_callbacks = {
  .readable = flow_readable,
  .closed = flow_closed,
  .datagram = flow_datagram,
};

static gboolean on_service_readable (GSocket *socket, GIOCondition cond, gpointer data);

static void
service_watch (UdpService *self)
{
  self->source = g_socket_create_source (self->socket, G_IO_IN, NULL);
  g_source_set_callback (self->source, (GSourceFunc) (void (*) (void)) on_service_readable,
                         self, NULL);
  g_source_attach (self->source, self->context);
}

static gboolean
on_retry (gpointer data)
{
  UdpService *self = data;

  g_clear_pointer (&self->retry, g_source_unref);
  service_watch (self);
  return G_SOURCE_REMOVE;
}

static gboolean
on_service_readable (GSocket *socket, GIOCondition cond, gpointer data)
{
  UdpService *self = data;
  int fd = g_socket_get_fd (socket);
  /* One datagram at a time, on the stack: 64 KiB per flow would be 16 MiB
   * per tunnel, and a buffer shared by all would be process state. */
  guint8 buf[UDP_PAYLOAD_MAX];

  for (int i = 0; i < UDP_READ_BURST; i++)
    {
      /* Peeked: one that has to wait stays in the socket. */
      gssize n = recv (fd, buf, sizeof buf, MSG_DONTWAIT | MSG_PEEK);

      if (n < 0)
        break; /* EAGAIN; or an ICMP error of an earlier send: nothing to do */
      switch (transport_stream_send_datagram (self->stream, buf, (gsize) n))
        {
        case TRANSPORT_DATAGRAM_OK:
          self->queue_tries = 0;
          self->queue_gave_up = FALSE;
          break;
        case TRANSPORT_DATAGRAM_QUEUE_FULL:
          if (!self->queue_gave_up && self->queue_tries++ < UDP_QUEUE_TRIES)
            {
              g_source_destroy (self->source);
              g_clear_pointer (&self->source, g_source_unref);
              self->retry = g_timeout_source_new (UDP_QUEUE_RETRY_MS);
              g_source_set_callback (self->retry, on_retry, self, NULL);
              g_source_attach (self->retry, self->context);
              return G_SOURCE_REMOVE;
            }
          self->queue_tries = 0;
          self->queue_gave_up = TRUE;
          self->dropped++;
          break;
        default:
          self->dropped++;
          break;
        }
      /* Taken: a zero-length read of a datagram socket discards the datagram. */
      (void) recv (fd, NULL, 0, MSG_DONTWAIT);
    }
  return G_SOURCE_CONTINUE;
}

static void
refuse (UdpService *self, const char *text)
{
  g_autofree char *line = g_strdup_printf ("refused a udp flow to %s: %s", self->name, text);

  self->say (line, self->user_data);
  transport_stream_refuse (g_steal_pointer (&self->stream), CTLMSG_REFUSE_CONNECT_FAILED,
                           text);
  service_finish (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, text));
}

static void
on_resolved (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketAddress) addr = NULL;
  UdpService *self;

  addr = g_socket_address_enumerator_next_finish (G_SOCKET_ADDRESS_ENUMERATOR (source), result,
                                                  &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return; /* freed */
  self = data;
  if (addr == NULL)
    {
      g_autofree char *text = g_strdup_printf ("service %s has no address: %s", self->name,
                                               error ? error->message : "none found");
      refuse (self, text);
      return;
    }
  self->socket = g_socket_new (g_socket_address_get_family (addr), G_SOCKET_TYPE_DATAGRAM,
                               G_SOCKET_PROTOCOL_UDP, &error);
  if (self->socket == NULL || !g_socket_connect (self->socket, addr, NULL, &error))
    {
      g_autofree char *text = g_strdup_printf ("service %s is not reachable: %s", self->name,
                                               error->message);
      refuse (self, text);
      return;
    }
  g_socket_set_blocking (self->socket, FALSE);
  service_watch (self);
  transport_stream_accept (self->stream, &flow_callbacks, self);
}

UdpService *
udp_service_open (GMainContext *context, TransportStream *stream, const char *name,
                  const char *target, UdpServiceDoneFunc done, ForwardsSayFunc say,
                  gpointer user_data)
{
  UdpService *self = g_new0 (UdpService, 1);
  g_autoptr (GSocketConnectable) where = NULL;
  g_autoptr (GError) error = NULL;

  self->context = g_main_context_ref (context);
  self->stream = stream;
  self->name = g_strdup (name);
  self->done = done;
  self->say = say;
  self->user_data = user_data;
  self->cancellable = g_cancellable_new ();
  where = g_network_address_parse (target, 0, &error);
  if (where == NULL)
    {
      refuse (self, error->message);
      return self;
    }
  self->resolver = g_socket_connectable_enumerate (where);
  g_socket_address_enumerator_next_async (self->resolver, self->cancellable, on_resolved, self);
  return self;
}

void
udp_service_free (UdpService *self)
{
  if (self == NULL)
    return;
  g_cancellable_cancel (self->cancellable);
  g_object_unref (self->cancellable);
  g_clear_object (&self->resolver);
  if (self->done_idle)
    {
      g_source_destroy (self->done_idle);
      g_source_unref (self->done_idle);
    }
  if (self->source)
    {
      g_source_destroy (self->source);
      g_source_unref (self->source);
    }
  if (self->retry)
    {
      g_source_destroy (self->retry);
      g_source_unref (self->retry);
    }
  if (self->dropped > 0)
    g_debug ("udp flow to %s: %" G_GUINT64_FORMAT " datagrams dropped", self->name,
             self->dropped);
  if (self->stream)
    transport_stream_free (self->stream);
  g_clear_object (&self->socket);
  g_clear_error (&self->error);
  g_free (self->name);
  g_main_context_unref (self->context);
  g_free (self);
}
