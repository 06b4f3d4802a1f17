/* fd <-> tunnel stream, with backpressure; see bridge.h. */
#include "bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>

/* One buffer each way: the most a bridge holds on top of the stream's own. */
#define BRIDGE_BUFFER (64 * 1024)

struct _Bridge
{
  GMainContext *context;
  TransportStream *stream;
  int in_fd;
  int out_fd;
  BridgeDoneFunc done;
  gpointer user_data;
  GSource *source;
  gpointer in_tag;
  gpointer out_tag;
  GIOCondition in_watched; /* what in_tag polls for */
  GIOCondition out_watched;

  guint8 up[BRIDGE_BUFFER]; /* local -> stream */
  gsize up_off, up_len;
  gboolean in_eof;
  gboolean up_shut;

  guint8 down[BRIDGE_BUFFER]; /* stream -> local */
  gsize down_off, down_len;
  gboolean stream_eof;
  gboolean down_shut;

  gboolean open;     /* the stream is accepted and connected */
  gboolean finished; /* done() is due or delivered */
  GError *error;
  GSource *done_idle;
  guint64 sent, received;
};

G_DEFINE_QUARK (p2ptun-bridge-error-quark, bridge_error)

static void bridge_pump (Bridge *self);

static gboolean
bridge_done_dispatch (gpointer data)
{
  Bridge *self = data;

  g_clear_pointer (&self->done_idle, g_source_unref);
  self->done (self, self->error, self->user_data);
  return G_SOURCE_REMOVE;
}

/* The end is delivered from an idle source: this may run inside the
 * transport's callbacks, where the stream must not be freed. */
static void
bridge_finish (Bridge *self, GError *error)
{
  if (self->finished)
    {
      g_clear_error (&error);
      return;
    }
  self->finished = TRUE;
  self->error = error;
  if (self->source)
    {
      g_source_destroy (self->source);
      g_clear_pointer (&self->source, g_source_unref);
    }
  self->done_idle = g_idle_source_new ();
  g_source_set_priority (self->done_idle, G_PRIORITY_DEFAULT);
  g_source_set_callback (self->done_idle, bridge_done_dispatch, self, NULL);
  g_source_attach (self->done_idle, self->context);
}

/* Polls an fd only for what the bridge wants from it now: poll reports
 * POLLHUP even for an fd polled for nothing, and a closed peer would then make
 * the loop spin. Only a change is told to GLib: each one wakes the context
 * through its eventfd (a write and a read per 64 KiB otherwise). */
static void
bridge_watch_fd (Bridge *self, gpointer *tag, GIOCondition *watched, int fd,
                 GIOCondition cond)
{
  if (*tag != NULL && cond == *watched)
    return;
  *watched = cond;
  if (cond == 0 && *tag != NULL)
    {
      g_source_remove_unix_fd (self->source, *tag);
      *tag = NULL;
    }
  else if (cond != 0 && *tag == NULL)
    *tag = g_source_add_unix_fd (self->source, fd, cond);
  else if (cond != 0)
    g_source_modify_unix_fd (self->source, *tag, cond);
}

static void
bridge_watch (Bridge *self)
{
  GIOCondition in_cond = 0, out_cond = 0;

  if (self->source == NULL)
    return;
  /* Read locally only while the up buffer is empty: that is the backpressure
   * towards the local writer. */
  if (self->open && !self->in_eof && self->up_len == 0)
    in_cond = G_IO_IN;
  if (self->down_len > 0 && self->out_fd >= 0)
    out_cond = G_IO_OUT;
  bridge_watch_fd (self, &self->in_tag, &self->in_watched, self->in_fd, in_cond);
  bridge_watch_fd (self, &self->out_tag, &self->out_watched, self->out_fd, out_cond);
}

/* Moves what can move without blocking, in both directions. */
static void
bridge_pump (Bridge *self)
{
  gboolean progress = TRUE;

  while (progress && !self->finished && self->open)
    {
      progress = FALSE;

      /* local -> stream */
      if (self->up_len > 0)
        {
          gssize n = transport_stream_write (self->stream, self->up + self->up_off,
                                             self->up_len);
          if (n < 0)
            {
              bridge_finish (self, g_error_new (BRIDGE_ERROR, BRIDGE_ERROR_RESET,
                                                "the tunnel stream stopped accepting data"));
              return;
            }
          if (n > 0)
            {
              self->up_off += (gsize) n;
              self->up_len -= (gsize) n;
              self->sent += (guint64) n;
              progress = TRUE;
            }
        }
      if (self->up_len == 0 && self->in_eof && !self->up_shut)
        {
          self->up_shut = TRUE;
          transport_stream_shutdown_write (self->stream);
        }

      /* stream -> local */
      if (self->down_len == 0 && !self->stream_eof)
        {
          gssize n = transport_stream_read (self->stream, self->down, sizeof self->down);
          if (n > 0)
            {
              self->down_off = 0;
              self->down_len = (gsize) n;
              self->received += (guint64) n;
              progress = TRUE;
            }
          else if (n == 0)
            {
              self->stream_eof = TRUE;
              progress = TRUE;
            }
          else if (errno != EAGAIN)
            {
              bridge_finish (self, g_error_new (BRIDGE_ERROR, BRIDGE_ERROR_RESET,
                                                "the tunnel stream was reset"));
              return;
            }
        }
      if (self->down_len > 0)
        {
          gssize n = write (self->out_fd, self->down + self->down_off, self->down_len);
          if (n > 0)
            {
              self->down_off += (gsize) n;
              self->down_len -= (gsize) n;
              progress = TRUE;
            }
          else if (n < 0 && errno != EAGAIN && errno != EINTR)
            {
              bridge_finish (self, g_error_new (BRIDGE_ERROR, BRIDGE_ERROR_IO,
                                                "local write failed: %s", g_strerror (errno)));
              return;
            }
        }
      if (self->down_len == 0 && self->stream_eof && !self->down_shut)
        {
          self->down_shut = TRUE;
          /* A socket is half-closed; a pipe or terminal is closed. */
          if (shutdown (self->out_fd, SHUT_WR) < 0 && errno == ENOTSOCK
              && self->out_fd != self->in_fd)
            {
              /* A closed fd must leave the poll set, or poll reports POLLNVAL. */
              bridge_watch_fd (self, &self->out_tag, &self->out_watched, self->out_fd, 0);
              close (self->out_fd);
              self->out_fd = -1;
            }
        }
    }
  bridge_watch (self);
}

static gboolean
bridge_dispatch (GSource *source, GSourceFunc unused, gpointer data)
{
  Bridge *self = data;

  if (self->in_tag && (g_source_query_unix_fd (source, self->in_tag) & (G_IO_IN | G_IO_HUP | G_IO_ERR))
      && self->up_len == 0 && !self->in_eof)
    {
      gssize n = read (self->in_fd, self->up, sizeof self->up);
      if (n > 0)
        {
          self->up_off = 0;
          self->up_len = (gsize) n;
        }
      else if (n == 0)
        self->in_eof = TRUE;
      else if (errno != EAGAIN && errno != EINTR)
        {
          bridge_finish (self, g_error_new (BRIDGE_ERROR, BRIDGE_ERROR_IO,
                                            "local read failed: %s", g_strerror (errno)));
          return G_SOURCE_CONTINUE;
        }
    }
  bridge_pump (self);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs bridge_source_funcs = {
  .dispatch = bridge_dispatch,
};

static void
stream_opened (TransportStream *stream, gpointer data)
{
  Bridge *self = data;

  self->open = TRUE;
  bridge_pump (self);
}

static void
stream_refused (TransportStream *stream, guint8 code, const char *text, gpointer data)
{
  Bridge *self = data;

  /* No such TCP service there (none by that name, or a UDP one): this
   * forward can never work. */
  gboolean never = code == CTLMSG_REFUSE_NOT_EXPOSED || code == CTLMSG_REFUSE_WRONG_KIND;

  bridge_finish (self, g_error_new (BRIDGE_ERROR,
                                    never ? BRIDGE_ERROR_NOT_EXPOSED : BRIDGE_ERROR_REFUSED,
                                    "%s", text[0] ? text : "refused by the peer"));
}

static void
stream_io (TransportStream *stream, gpointer data)
{
  Bridge *self = data;

  /* Called from inside the transport: only move bytes, never free. */
  if (!self->open)
    self->open = TRUE;
  bridge_pump (self);
}

static void
stream_closed (TransportStream *stream, const GError *error, gpointer data)
{
  Bridge *self = data;

  if (error)
    bridge_finish (self, g_error_new (BRIDGE_ERROR, BRIDGE_ERROR_RESET, "%s", error->message));
  else
    bridge_finish (self, NULL);
}

static const TransportStreamCallbacks bridge_stream_callbacks = {
  .opened = stream_opened,
  .refused = stream_refused,
  .readable = stream_io,
  .writable = stream_io,
  .closed = stream_closed,
};

static Bridge *
bridge_new (GMainContext *context, int in_fd, int out_fd, BridgeDoneFunc done,
            gpointer user_data)
{
  Bridge *self = g_new0 (Bridge, 1);

  self->context = g_main_context_ref (context);
  self->in_fd = in_fd;
  self->out_fd = out_fd;
  self->done = done;
  self->user_data = user_data;
  g_unix_set_fd_nonblocking (in_fd, TRUE, NULL);
  g_unix_set_fd_nonblocking (out_fd, TRUE, NULL);
  self->source = g_source_new (&bridge_source_funcs, sizeof (GSource));
  g_source_set_callback (self->source, NULL, self, NULL);
  /* Not blocked while it runs: GLib takes a blocked source's descriptors
   * out of the poll set and back, waking the context each time (two
   * eventfd writes per dispatch); nothing here runs a nested loop. */
  g_source_set_can_recurse (self->source, TRUE);
  g_source_attach (self->source, context);
  return self;
}

Bridge *
bridge_open (GMainContext *context, Transport *transport, const char *service, int in_fd,
             int out_fd, BridgeDoneFunc done, gpointer user_data, GError **error)
{
  Bridge *self = bridge_new (context, in_fd, out_fd, done, user_data);

  self->stream = transport_open (transport, service, &bridge_stream_callbacks, self, error);
  if (self->stream == NULL)
    {
      bridge_free (self);
      return NULL;
    }
  return self;
}

Bridge *
bridge_accept (GMainContext *context, TransportStream *stream, int in_fd, int out_fd,
               BridgeDoneFunc done, gpointer user_data)
{
  Bridge *self = bridge_new (context, in_fd, out_fd, done, user_data);

  self->stream = stream;
  transport_stream_accept (stream, &bridge_stream_callbacks, self);
  return self;
}

/* Closes a local fd; @abortive resets a TCP connection (SO_LINGER 0 sends
 * RST) instead of ending it with a FIN. A pipe or terminal is just closed. */
static void
bridge_close_fd (int fd, gboolean abortive)
{
  if (abortive)
    {
      struct linger reset = { .l_onoff = 1, .l_linger = 0 };

      (void) setsockopt (fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    }
  close (fd);
}

void
bridge_free (Bridge *self)
{
  /* A stream that did not end in order on both sides (the tunnel broke, the
   * peer or its service reset it, the agent stops) is reset locally: a
   * client that reads to the end must not take a cut download for a whole
   * one, nor a service a cut upload. */
  gboolean abortive;

  if (self == NULL)
    return;
  abortive = !self->finished || self->error != NULL;
  if (self->source)
    {
      g_source_destroy (self->source);
      g_source_unref (self->source);
    }
  if (self->done_idle)
    {
      g_source_destroy (self->done_idle);
      g_source_unref (self->done_idle);
    }
  transport_stream_free (self->stream);
  if (self->out_fd >= 0 && self->out_fd != self->in_fd)
    bridge_close_fd (self->out_fd, abortive);
  if (self->in_fd >= 0)
    bridge_close_fd (self->in_fd, abortive);
  g_clear_error (&self->error);
  g_main_context_unref (self->context);
  g_free (self);
}

guint64
bridge_bytes_sent (Bridge *self)
{
  return self->sent;
}

guint64
bridge_bytes_received (Bridge *self)
{
  return self->received;
}
