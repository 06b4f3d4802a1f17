/* UDP port forwards; see udpforward.h. */
#include "udpforward.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "ctlmsg.h"
#include "dgram.h"
#include "dgrambatch.h"

/* Datagrams read from one socket in one dispatch, before others run. */
#define UDP_READ_BURST 64
/* Datagrams read with one system call, and sent back to the clients with
 * one. */
#define UDP_BATCH 32
/* Datagrams that find the tunnel's datagram queue full wait in their flow
 * and try again this often, so many times: a burst (the first datagrams of
 * many flows accepted at once, or many clients sending at once) is more
 * than the queue holds, and it empties with the next packets. A queue full
 * for longer is a tunnel slower than the clients: then datagrams are
 * dropped, as the network would, until one gets through again. */
#define UDP_QUEUE_RETRY_MS 1
#define UDP_QUEUE_TRIES 10
/* The listening socket's receive buffer: many clients that start at once,
 * while the agent is busy for a moment, overflow Linux's default 208 KiB,
 * which holds 256 small datagrams. The kernel caps it at
 * net.core.rmem_max. */
#define UDP_LISTEN_BUFFER (1024 * 1024)
/* Drops are reported at most this often per forward. */
#define UDP_DROP_REPORT_US (10 * G_USEC_PER_SEC)

typedef struct _UdpListener UdpListener;

/* Why datagrams were dropped: each reason is told on its own, so that one
 * reason's flood does not hide another (a full queue, a client too many). */
typedef enum
{
  DROP_TOO_BIG,      /* over what the tunnel carries now */
  DROP_QUEUE_FULL,   /* the tunnel's datagram queue */
  DROP_CLOSED,       /* the flow ended meanwhile */
  DROP_TOO_MANY,     /* UDP_FORWARD_MAX_FLOWS */
  DROP_NO_FLOW,      /* no stream for a new flow (the tunnel's stream limit) */
  DROP_NOT_ANSWERED, /* more than a flow holds until the peer accepts it */
  DROP_KINDS,
} DropKind;

typedef struct
{
  guint64 count; /* since the last report */
  char why[128]; /* the latest drop's reason */
  gint64 last_report;
} DropReport;

typedef struct
{
  UdpListener *l;
  struct sockaddr_storage addr; /* the local client */
  socklen_t addr_len;
  GBytes *key;
  TransportStream *stream;
  gboolean open; /* the peer accepted */
  GQueue pending; /* GBytes*: until then, or while the tunnel's queue is full */
  gsize pending_bytes;
  guint queue_tries;      /* flow_flush() found the tunnel's queue full */
  gboolean queue_gave_up; /* and gave up: drop until a datagram goes */
  gint64 last_active;
} UdpFlow;

struct _UdpListener
{
  UdpForwards *owner;
  GSocket *socket;
  GSource *source;
  char *service;
  char *display;
  GHashTable *flows; /* GBytes (sockaddr) -> UdpFlow* */
  DgramBatch *in;  /* read from the clients */
  DgramBatch *out; /* to send back to them */
  DropReport drops[DROP_KINDS];
  guint64 no_tunnel;       /* dropped while there is no tunnel, not told yet */
  gint64 no_tunnel_report; /* when that was last told, or the tunnel went */
};

struct _UdpForwards
{
  GMainContext *context;
  GPtrArray *listeners; /* UdpListener* */
  Transport *transport; /* the current tunnel's, or NULL */
  guint idle_timeout_s;
  GSource *idle_check;
  GSource *flush_retry; /* flow_flush(): held datagrams wait for the queue */
  ForwardReport report;
};

/* Drops are told at once, then at most every UDP_DROP_REPORT_US per reason
 * with their count; the idle check tells what is left when they stop. */
static void
report_flush (UdpListener *l, DropReport *d, gint64 now)
{
  if (d->count == 0 || (d->last_report != 0 && now - d->last_report < UDP_DROP_REPORT_US))
    return;
  if (d->count == 1)
    forward_report_say (&l->owner->report, "udp %s -> %s: dropped 1 datagram: %s", l->display,
                        l->service, d->why);
  else
    forward_report_say (&l->owner->report,
                        "udp %s -> %s: dropped %" G_GUINT64_FORMAT " datagrams (the last: %s)",
                        l->display, l->service, d->count, d->why);
  d->count = 0;
  d->last_report = now;
}

/* Datagrams that came while there was no tunnel: told when the next one
 * comes, and every UDP_DROP_REPORT_US meanwhile (@force: now). */
static void
report_no_tunnel (UdpListener *l, gint64 now, gboolean force)
{
  if (l->no_tunnel == 0 || (!force && now - l->no_tunnel_report < UDP_DROP_REPORT_US))
    return;
  forward_report_say (&l->owner->report,
                      "udp %s -> %s: %" G_GUINT64_FORMAT " datagram%s dropped: "
                      "no tunnel to the peer", l->display, l->service, l->no_tunnel,
                      l->no_tunnel == 1 ? "" : "s");
  l->no_tunnel = 0;
  l->no_tunnel_report = now;
}

static void
report_drop (UdpListener *l, DropKind kind, const char *why)
{
  DropReport *d = &l->drops[kind];

  d->count++;
  g_strlcpy (d->why, why, sizeof d->why);
  report_flush (l, d, g_get_monotonic_time ());
}

static void
flow_free (UdpFlow *f)
{
  g_queue_clear_full (&f->pending, (GDestroyNotify) g_bytes_unref);
  if (f->stream)
    transport_stream_free (f->stream);
  g_bytes_unref (f->key);
  g_free (f);
}

/* Ends a flow: its stream is reset, so the peer's end goes too. */
static void
flow_end (UdpFlow *f)
{
  g_hash_table_remove (f->l->flows, f->key);
}

static void
report_too_big (UdpFlow *f, gsize len)
{
  char why[96];

  g_snprintf (why, sizeof why, "%" G_GSIZE_FORMAT " bytes; the tunnel carries at most %"
              G_GSIZE_FORMAT " now", len, transport_stream_datagram_max (f->stream));
  report_drop (f->l, DROP_TOO_BIG, why);
}

/* Sends one datagram; FALSE when the tunnel's datagram queue is full (not
 * reported here). */
static gboolean
flow_try_send (UdpFlow *f, const guint8 *buf, gsize len)
{
  switch (transport_stream_send_datagram (f->stream, buf, len))
    {
    case TRANSPORT_DATAGRAM_OK:
      break;
    case TRANSPORT_DATAGRAM_TOO_BIG:
      report_too_big (f, len);
      break;
    case TRANSPORT_DATAGRAM_QUEUE_FULL:
      return FALSE;
    case TRANSPORT_DATAGRAM_CLOSED:
      report_drop (f->l, DROP_CLOSED, "the flow is closed");
      break;
    }
  return TRUE;
}

static gboolean on_flush_retry (gpointer data);

static void
flow_wait (UdpFlow *f)
{
  UdpForwards *self = f->l->owner;

  if (self->flush_retry != NULL)
    return;
  self->flush_retry = g_timeout_source_new (UDP_QUEUE_RETRY_MS);
  g_source_set_callback (self->flush_retry, on_flush_retry, self, NULL);
  g_source_attach (self->flush_retry, self->context);
}

/* Sends what the flow holds, in order: what it held until the peer
 * accepted it (many flows accepted at once overflow the tunnel's datagram
 * queue with their first datagrams, which are the ones holding is for), or
 * what found the queue full. What does not fit waits for the retry timer. */
static void
flow_flush (UdpFlow *f)
{
  GBytes *b;

  while ((b = g_queue_peek_head (&f->pending)) != NULL)
    {
      gsize len;
      const guint8 *p = g_bytes_get_data (b, &len);

      if (!flow_try_send (f, p, len))
        {
          if (++f->queue_tries >= UDP_QUEUE_TRIES)
            {
              for (guint i = f->pending.length; i > 0; i--)
                report_drop (f->l, DROP_QUEUE_FULL, "the tunnel's datagram queue is full");
              g_queue_clear_full (&f->pending, (GDestroyNotify) g_bytes_unref);
              f->pending_bytes = 0;
              f->queue_tries = 0;
              f->queue_gave_up = TRUE;
              return;
            }
          flow_wait (f);
          return;
        }
      g_queue_pop_head (&f->pending);
      f->pending_bytes -= len;
      g_bytes_unref (b);
      f->queue_tries = 0;
      f->queue_gave_up = FALSE;
    }
}

static gboolean
on_flush_retry (gpointer data)
{
  UdpForwards *self = data;

  g_clear_pointer (&self->flush_retry, g_source_unref);
  for (guint i = 0; i < self->listeners->len; i++)
    {
      UdpListener *l = self->listeners->pdata[i];
      GHashTableIter it;
      gpointer value;

      g_hash_table_iter_init (&it, l->flows);
      while (g_hash_table_iter_next (&it, NULL, &value))
        {
          UdpFlow *f = value;

          if (f->open && f->pending.length > 0)
            flow_flush (f);
        }
    }
  return G_SOURCE_REMOVE;
}

static void
flow_hold (UdpFlow *f, const guint8 *buf, gsize len)
{
  if (g_queue_get_length (&f->pending) >= UDP_FLOW_PENDING_MAX
      || f->pending_bytes + len > UDP_FLOW_PENDING_BYTES)
    {
      if (f->open)
        report_drop (f->l, DROP_QUEUE_FULL, "the tunnel's datagram queue is full");
      else
        report_drop (f->l, DROP_NOT_ANSWERED, "the peer has not answered the flow yet");
      return;
    }
  g_queue_push_tail (&f->pending, g_bytes_new (buf, len));
  f->pending_bytes += len;
}

/* A client's datagram on an open flow: sent; or held behind what the flow
 * holds already, or while the tunnel's queue is full for a moment. */
static void
flow_send (UdpFlow *f, const guint8 *buf, gsize len)
{
  if (f->pending.length == 0)
    {
      if (flow_try_send (f, buf, len))
        {
          f->queue_gave_up = FALSE;
          return;
        }
      if (f->queue_gave_up)
        {
          report_drop (f->l, DROP_QUEUE_FULL, "the tunnel's datagram queue is full");
          return;
        }
    }
  flow_hold (f, buf, len);
  flow_wait (f);
}

static void
flow_opened (TransportStream *stream, gpointer data)
{
  UdpFlow *f = data;

  f->open = TRUE;
  flow_flush (f);
}

static void
flow_refused (TransportStream *stream, guint8 code, const char *text, gpointer data)
{
  UdpFlow *f = data;
  UdpForwards *self = f->l->owner;

  /* A forward to a service the peer does not have can never work. */
  if (code == CTLMSG_REFUSE_NOT_EXPOSED || code == CTLMSG_REFUSE_WRONG_KIND)
    forward_report_fatal (&self->report, g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                                                      "-U %s:%s: %s", f->l->display,
                                                      f->l->service, text));
  else
    forward_report_say (&self->report, "udp %s -> %s: the peer refused a flow: %s",
                        f->l->display, f->l->service, text);
  flow_end (f);
}

static void
flow_readable (TransportStream *stream, gpointer data)
{
  if (transport_stream_drain (stream))
    flow_end (data);
}

static void
flow_closed (TransportStream *stream, const GError *error, gpointer data)
{
  UdpFlow *f = data;

  if (error)
    g_debug ("udp %s -> %s: flow ended: %s", f->l->display, f->l->service, error->message);
  flow_end (f);
}

/* Back to the clients, what the listener holds; a full socket buffer
 * drops it, as UDP does. */
static void
listener_answer (UdpListener *l)
{
  int error = 0;

  if (dgrambatch_send (l->out, g_socket_get_fd (l->socket), &error) > 0 && error != EAGAIN
      && error != EWOULDBLOCK)
    g_debug ("udp %s: cannot answer a client: %s", l->display, g_strerror (error));
}

static void
flow_datagram (TransportStream *stream, const guint8 *buf, gsize len, gpointer data)
{
  UdpFlow *f = data;
  const struct sockaddr *to = (const struct sockaddr *) &f->addr;

  f->last_active = g_get_monotonic_time ();
  /* Held for the burst's end (flow_datagrams_done), or for room. */
  if (!dgrambatch_add (f->l->out, buf, len, to, f->addr_len))
    {
      listener_answer (f->l);
      if (!dgrambatch_add (f->l->out, buf, len, to, f->addr_len))
        g_debug ("udp %s: a datagram of %" G_GSIZE_FORMAT " bytes from the peer is too long",
                 f->l->display, len);
    }
}

static void
flow_datagrams_done (TransportStream *stream, gpointer data)
{
  UdpFlow *f = data;

  listener_answer (f->l);
}

static const TransportStreamCallbacks flow_callbacks = {
  .opened = flow_opened,
  .refused = flow_refused,
  .readable = flow_readable,
  .closed = flow_closed,
  .datagram = flow_datagram,
  .datagrams_done = flow_datagrams_done,
};

static UdpFlow *
flow_new (UdpListener *l, const struct sockaddr *addr, socklen_t addr_len, GBytes *key)
{
  UdpForwards *self = l->owner;
  g_autoptr (GError) error = NULL;
  UdpFlow *f;

  if (g_hash_table_size (l->flows) >= UDP_FORWARD_MAX_FLOWS)
    {
      report_drop (l, DROP_TOO_MANY,
                   "too many clients at once (" G_STRINGIFY (UDP_FORWARD_MAX_FLOWS) ")");
      return NULL;
    }
  f = g_new0 (UdpFlow, 1);
  f->l = l;
  f->addr_len = MIN (addr_len, (socklen_t) sizeof f->addr);
  memcpy (&f->addr, addr, f->addr_len);
  f->key = g_bytes_ref (key);
  f->last_active = g_get_monotonic_time ();
  g_queue_init (&f->pending);
  f->stream = transport_open_datagram (self->transport, l->service, &flow_callbacks, f,
                                       &error);
  if (f->stream == NULL)
    {
      g_autofree char *why = g_strdup_printf ("cannot open a flow: %s", error->message);
      report_drop (l, DROP_NO_FLOW, why);
      flow_free (f);
      return NULL;
    }
  g_hash_table_insert (l->flows, g_bytes_ref (key), f);
  return f;
}

/* One datagram from a client. */
static void
listener_take (UdpListener *l, const struct sockaddr *addr, socklen_t addr_len,
               const guint8 *buf, gsize len)
{
  g_autoptr (GBytes) key = NULL;
  UdpFlow *f;

  if (l->owner->transport == NULL)
    {
      l->no_tunnel++;
      return;
    }
  key = g_bytes_new (addr, addr_len);
  f = g_hash_table_lookup (l->flows, key);
  if (f == NULL
      && (f = flow_new (l, addr, addr_len, key)) == NULL)
    return;
  f->last_active = g_get_monotonic_time ();
  /* Read truncated: too big for any flow, and only its start is here. */
  if (len > DGRAM_PAYLOAD_MAX)
    report_too_big (f, len);
  else if (f->open)
    flow_send (f, buf, len);
  else
    flow_hold (f, buf, len);
}

static gboolean
on_readable (GSocket *socket, GIOCondition cond, gpointer data)
{
  UdpListener *l = data;
  guint taken = 0;

  while (taken < UDP_READ_BURST)
    {
      gint n = dgrambatch_recv (l->in, g_socket_get_fd (socket));

      if (n < 0)
        forward_report_say (&l->owner->report, "udp %s: receive failed: %s", l->display,
                            g_strerror (errno));
      if (n <= 0)
        break;
      for (guint i = 0; i < (guint) n; i++)
        {
          socklen_t addr_len;
          const struct sockaddr *addr = dgrambatch_from (l->in, i, &addr_len);
          gsize len;
          const guint8 *buf = dgrambatch_data (l->in, i, &len);

          listener_take (l, addr, addr_len, buf, len);
        }
      taken += (guint) n;
      /* Fewer than it holds: the socket was empty. */
      if ((guint) n < dgrambatch_capacity (l->in))
        break;
    }
  if (l->owner->transport != NULL)
    transport_flush (l->owner->transport);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_idle_check (gpointer data)
{
  UdpForwards *self = data;
  gint64 now = g_get_monotonic_time ();
  gint64 limit = now - (gint64) self->idle_timeout_s * G_USEC_PER_SEC;

  for (guint i = 0; i < self->listeners->len; i++)
    {
      UdpListener *l = self->listeners->pdata[i];
      GHashTableIter it;
      gpointer value;

      for (int k = 0; k < DROP_KINDS; k++)
        report_flush (l, &l->drops[k], now);
      report_no_tunnel (l, now, FALSE);
      g_hash_table_iter_init (&it, l->flows);
      while (g_hash_table_iter_next (&it, NULL, &value))
        {
          UdpFlow *f = value;

          if (f->last_active <= limit)
            {
              g_debug ("udp %s -> %s: a flow was idle for %u s; ended", l->display, l->service,
                       self->idle_timeout_s);
              g_hash_table_iter_remove (&it);
            }
        }
    }
  return G_SOURCE_CONTINUE;
}

static void
listener_free (UdpListener *l)
{
  if (l->source)
    {
      g_source_destroy (l->source);
      g_source_unref (l->source);
    }
  g_hash_table_unref (l->flows);
  dgrambatch_free (l->in);
  dgrambatch_free (l->out);
  g_clear_object (&l->socket);
  g_free (l->service);
  g_free (l->display);
  g_free (l);
}

UdpForwards *
udp_forwards_new (GMainContext *context, const char *const *specs, guint idle_timeout_s,
                  ForwardsFatalFunc fatal, ForwardsSayFunc say, gpointer user_data,
                  GError **error)
{
  g_autoptr (UdpForwards) self = g_new0 (UdpForwards, 1);

  self->context = g_main_context_ref (context);
  self->idle_timeout_s = idle_timeout_s;
  forward_report_init (&self->report, self->context, fatal, say, user_data);
  self->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) listener_free);
  for (guint i = 0; specs[i]; i++)
    {
      UdpListener *l = g_new0 (UdpListener, 1);

      l->owner = self;
      l->flows = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                        (GDestroyNotify) g_bytes_unref,
                                        (GDestroyNotify) flow_free);
      l->in = dgrambatch_new (UDP_BATCH);
      l->out = dgrambatch_new (UDP_BATCH);
      g_ptr_array_add (self->listeners, l);
      l->socket = forward_bind ("-U", specs[i], G_SOCKET_TYPE_DATAGRAM, &l->service,
                                &l->display, error);
      if (l->socket == NULL)
        return NULL;
      (void) setsockopt (g_socket_get_fd (l->socket), SOL_SOCKET, SO_RCVBUF,
                         &(int) { UDP_LISTEN_BUFFER }, sizeof (int));
    }
  return g_steal_pointer (&self);
}

void
udp_forwards_start (UdpForwards *self, Transport *transport)
{
  g_return_if_fail (transport != NULL);
  g_return_if_fail (self->transport == NULL || self->transport == transport);
  self->transport = transport;
  for (guint i = 0; i < self->listeners->len; i++)
    {
      UdpListener *l = self->listeners->pdata[i];

      report_no_tunnel (l, g_get_monotonic_time (), TRUE);
      if (l->source)
        continue;
      l->source = g_socket_create_source (l->socket, G_IO_IN, NULL);
      g_source_set_callback (l->source, (GSourceFunc) (void (*) (void)) on_readable, l, NULL);
      /* See bridge_new(): no wakeups for each dispatch. */
      g_source_set_can_recurse (l->source, TRUE);
      g_source_attach (l->source, self->context);
      forward_report_say (&self->report, "forwarding udp %s -> %s", l->display, l->service);
    }
  if (self->idle_check == NULL)
    {
      self->idle_check = g_timeout_source_new_seconds (1);
      g_source_set_callback (self->idle_check, on_idle_check, self, NULL);
      g_source_attach (self->idle_check, self->context);
    }
}

void
udp_forwards_stop (UdpForwards *self, const char *why)
{
  if (self->transport == NULL)
    return;
  for (guint i = 0; i < self->listeners->len; i++)
    {
      UdpListener *l = self->listeners->pdata[i];
      guint n = g_hash_table_size (l->flows);

      /* flow_free frees each stream while the transport is still there. */
      g_hash_table_remove_all (l->flows);
      l->no_tunnel_report = g_get_monotonic_time ();
      if (n > 0)
        forward_report_say (&self->report, "udp %s -> %s: %u flow%s ended (%s)",
                            l->display, l->service, n, n == 1 ? "" : "s", why);
    }
  self->transport = NULL;
}

void
udp_forwards_free (UdpForwards *self)
{
  if (self == NULL)
    return;
  if (self->idle_check)
    {
      g_source_destroy (self->idle_check);
      g_source_unref (self->idle_check);
    }
  if (self->flush_retry)
    {
      g_source_destroy (self->flush_retry);
      g_source_unref (self->flush_retry);
    }
  forward_report_clear (&self->report);
  g_ptr_array_unref (self->listeners);
  g_main_context_unref (self->context);
  g_free (self);
}
