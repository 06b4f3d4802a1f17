/* The serving end of a UDP flow; see udpservice.h. */
#include "udpservice.h"

#include <errno.h>
#include <sys/socket.h>

#include "ctlmsg.h"
#include "dgram.h"
#include "dgrambatch.h"

/* Datagrams read from the service in one dispatch, before others run. */
#define UDP_READ_BURST 64
/* Datagrams read with one system call, and sent to the service with one:
 * each flow has its two batches (46 KiB). */
#define UDP_BATCH 16
/* The socket's receive buffer: a service that answers a burst at once
 * overflows Linux's default 208 KiB (90 datagrams of 1200 bytes, 3 ms at
 * 300 Mbit/s) while the agent waits for the CPU. The kernel caps it at
 * net.core.rmem_max. */
#define UDP_SERVICE_BUFFER (1024 * 1024)
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
  DgramBatch *in;  /* read from the service; in_next on waits for the tunnel */
  guint in_next;
  DgramBatch *out; /* the peer's datagrams, to send to the service */
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

/* To the service, what the flow holds. */
static void
service_send (UdpService *self)
{
  if (self->socket == NULL)
    {
      self->dropped += dgrambatch_count (self->out);
      dgrambatch_clear (self->out);
      return;
    }
  /* A full buffer, or the service's port closed (ICMP): lost. */
  self->dropped += dgrambatch_send (self->out, g_socket_get_fd (self->socket), NULL);
}

static void
flow_datagram (TransportStream *stream, const guint8 *buf, gsize len, gpointer data)
{
  UdpService *self = data;

  /* Held for the burst's end (flow_datagrams_done), or for room. */
  if (!dgrambatch_add (self->out, buf, len, NULL, 0))
    {
      service_send (self);
      if (!dgrambatch_add (self->out, buf, len, NULL, 0))
        self->dropped++; /* longer than any flow carries */
    }
}

static void
flow_datagrams_done (TransportStream *stream, gpointer data)
{
  service_send (data);
}

static const TransportStreamCallbacks flow_callbacks = {
  .readable = flow_readable,
  .closed = flow_closed,
  .datagram = flow_datagram,
  .datagrams_done = flow_datagrams_done,
};

static gboolean on_service_readable (GSocket *socket, GIOCondition cond, gpointer data);

static void
service_watch (UdpService *self)
{
  self->source = g_socket_create_source (self->socket, G_IO_IN, NULL);
  g_source_set_callback (self->source, (GSourceFunc) (void (*) (void)) on_service_readable,
                         self, NULL);
  /* See bridge_new(): no wakeups for each dispatch. */
  g_source_set_can_recurse (self->source, TRUE);
  g_source_attach (self->source, self->context);
}

/* Sends the service's datagrams on, what the batch holds first, then what
 * the socket holds. FALSE when the tunnel's queue was full and they wait
 * for the retry timer (in the batch, and in the socket). */
static gboolean
service_pump (UdpService *self)
{
  int fd = g_socket_get_fd (self->socket);
  guint taken = 0;

  while (taken < UDP_READ_BURST)
    {
      guint n = dgrambatch_count (self->in);

      if (self->in_next == n)
        {
          /* Fewer than it holds: the socket was empty then. */
          if (n > 0 && n < dgrambatch_capacity (self->in))
            break;
          self->in_next = 0;
          /* < 0: an ICMP error of an earlier send; nothing to do. */
          if (dgrambatch_recv (self->in, fd) <= 0)
            {
              dgrambatch_clear (self->in);
              break;
            }
          continue;
        }
      gsize len;
      const guint8 *buf = dgrambatch_data (self->in, self->in_next, &len);

      /* A truncated one is longer than any flow carries: TOO_BIG. */
      switch (transport_stream_send_datagram (self->stream, buf, len))
        {
        case TRANSPORT_DATAGRAM_OK:
          self->queue_tries = 0;
          self->queue_gave_up = FALSE;
          break;
        case TRANSPORT_DATAGRAM_QUEUE_FULL:
          if (!self->queue_gave_up && self->queue_tries++ < UDP_QUEUE_TRIES)
            {
              transport_stream_flush (self->stream);
              return FALSE;
            }
          self->queue_tries = 0;
          self->queue_gave_up = TRUE;
          self->dropped++;
          break;
        default:
          self->dropped++;
          break;
        }
      self->in_next++;
      taken++;
    }
  /* All taken: the next read starts afresh. */
  if (self->in_next == dgrambatch_count (self->in))
    {
      dgrambatch_clear (self->in);
      self->in_next = 0;
    }
  if (taken > 0)
    transport_stream_flush (self->stream);
  return TRUE;
}

static gboolean on_retry (gpointer data);

/* The tunnel's queue is full: the service's datagrams wait a moment. */
static void
service_wait (UdpService *self)
{
  self->retry = g_timeout_source_new (UDP_QUEUE_RETRY_MS);
  g_source_set_callback (self->retry, on_retry, self, NULL);
  g_source_attach (self->retry, self->context);
}

static gboolean
on_retry (gpointer data)
{
  UdpService *self = data;

  g_clear_pointer (&self->retry, g_source_unref);
  service_watch (self);
  /* What waits in the batch: the socket may have nothing more to tell. */
  if (!service_pump (self))
    {
      g_source_destroy (self->source);
      g_clear_pointer (&self->source, g_source_unref);
      service_wait (self);
    }
  return G_SOURCE_REMOVE;
}

static gboolean
on_service_readable (GSocket *socket, GIOCondition cond, gpointer data)
{
  UdpService *self = data;

  if (service_pump (self))
    return G_SOURCE_CONTINUE;
  g_clear_pointer (&self->source, g_source_unref);
  service_wait (self);
  return G_SOURCE_REMOVE;
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
  (void) setsockopt (g_socket_get_fd (self->socket), SOL_SOCKET, SO_RCVBUF,
                     &(int) { UDP_SERVICE_BUFFER }, sizeof (int));
  self->in = dgrambatch_new (UDP_BATCH);
  self->out = dgrambatch_new (UDP_BATCH);
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
  dgrambatch_free (self->in);
  dgrambatch_free (self->out);
  g_clear_error (&self->error);
  g_free (self->name);
  g_main_context_unref (self->context);
  g_free (self);
}
