/* The UDP side of the shell: the listener and one socket per allocation,
 * read with recvmmsg and written with sendmmsg (see shell.h).
 *
 * The relayed sockets are watched through one epoll set, which is one fd
 * in the GMainContext: a GSource per socket made GLib build, poll and check
 * a pollfd array as long as the allocation count on every wakeup, most of
 * the relay's CPU with 1000 allocations. */
#include <errno.h>
#include <glib-unix.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shell.h"

/* A tunnel through the relay sends bursts of a window's worth of datagrams;
 * the default socket buffers (208 KiB) overflow whenever the relay is not
 * scheduled for a moment, and each drop costs the tunnel a retransmission
 * timeout. Past net.core.rmem_max/wmem_max only with CAP_NET_ADMIN. */
#define RELAY_SOCKET_BUFFER (8 * 1024 * 1024)

/* One recvmmsg worth of datagrams. */
struct relay_udp_in
{
  struct mmsghdr msgs[RELAY_BATCH];
  struct iovec iov[RELAY_BATCH];
  struct sockaddr_storage from[RELAY_BATCH];
  uint8_t buf[RELAY_BATCH][RELAY_MAX_DATAGRAM];
};

/* Datagrams queued for one socket (fd), sent together by relay_udp_flush. */
struct relay_udp_out
{
  int fd; /* -1: empty */
  unsigned n;
  struct mmsghdr msgs[RELAY_BATCH];
  struct iovec iov[RELAY_BATCH];
  struct sockaddr_storage to[RELAY_BATCH];
  uint8_t buf[RELAY_BATCH][RELAY_MAX_DATAGRAM];
};

/* Ready relayed sockets taken per dispatch of the epoll source. epoll
 * reports level-triggered fds it has just returned after the others that
 * are ready, so a socket left with datagrams (RELAY_READ_ROUNDS) or not
 * reached this time comes round again; the loop runs its other sources
 * (the listener, timers) in between. */
#define RELAY_EPOLL_EVENTS 64

/* The epoll set of the relayed sockets and its one GSource. */
struct relay_udp_ready
{
  int epfd;
  GSource *source;
  gboolean dispatching;
  GPtrArray *closed; /* struct relayed * closed while dispatching, freed after */
  struct epoll_event events[RELAY_EPOLL_EVENTS];
};

struct relayed
{
  RelayMain *main;
  GSocket *socket; /* NULL once closed */
};

static void
grow_socket_buffers (GSocket *socket)
{
  int fd = g_socket_get_fd (socket);
  int size = RELAY_SOCKET_BUFFER;

  if (setsockopt (fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
    (void)setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (setsockopt (fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
    (void)setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

void
relay_udp_flush (RelayMain *m)
{
  struct relay_udp_out *o = m->udp_out;
  unsigned i = 0;
  /* Bounded: every round sends at least one datagram or skips one. */
  while (i < o->n)
    {
      int r = sendmmsg (o->fd, o->msgs + i, o->n - i, MSG_DONTWAIT);
      if (r > 0)
        {
          i += (unsigned)r;
          continue;
        }
      /* A full socket buffer drops the rest, as the network would; any
       * other error drops the one datagram that failed. */
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
          g_debug ("sendmmsg: %u datagrams dropped: %s", o->n - i, g_strerror (errno));
          break;
        }
      if (r < 0 && errno == EINTR)
        continue;
      g_debug ("sendmmsg: %s", r < 0 ? g_strerror (errno) : "nothing sent");
      i++;
    }
  o->n = 0;
  o->fd = -1;
}

void
relay_io_send (void *user, void *handle, const struct stun_addr *to, const uint8_t *buf,
               size_t len)
{
  RelayMain *m = user;
  struct relay_udp_out *o = m->udp_out;
  struct relayed *r = handle;
  int fd = g_socket_get_fd (r != NULL ? r->socket : m->listener);
  if (len > RELAY_MAX_DATAGRAM)
    return; /* cannot be one UDP datagram */
  if (o->n == RELAY_BATCH || (o->n > 0 && o->fd != fd))
    relay_udp_flush (m);
  unsigned i = o->n++;
  o->fd = fd;
  memcpy (o->buf[i], buf, len);
  o->iov[i].iov_base = o->buf[i];
  o->iov[i].iov_len = len;
  memset (&o->msgs[i], 0, sizeof o->msgs[i]);
  o->msgs[i].msg_hdr.msg_name = &o->to[i];
  o->msgs[i].msg_hdr.msg_namelen = relay_addr_to_sockaddr (to, &o->to[i]);
  o->msgs[i].msg_hdr.msg_iov = &o->iov[i];
  o->msgs[i].msg_hdr.msg_iovlen = 1;
}

/* Reads a socket and feeds the core; the caller flushes what it sent. */
static void
read_socket (RelayMain *m, GSocket *socket, void *handle)
{
  struct relay_udp_in *in = m->udp_in;
  int fd = g_socket_get_fd (socket);
  struct relay_source source
      = { .transport = RELAY_TRANSPORT_UDP, .relay_handle = handle, .conn = NULL };
  for (int round = 0; round < RELAY_READ_ROUNDS; round++)
    {
      for (unsigned i = 0; i < RELAY_BATCH; i++)
        {
          in->iov[i].iov_base = in->buf[i];
          in->iov[i].iov_len = sizeof in->buf[i];
          memset (&in->msgs[i], 0, sizeof in->msgs[i]);
          in->msgs[i].msg_hdr.msg_name = &in->from[i];
          in->msgs[i].msg_hdr.msg_namelen = sizeof in->from[i];
          in->msgs[i].msg_hdr.msg_iov = &in->iov[i];
          in->msgs[i].msg_hdr.msg_iovlen = 1;
        }
      int n = recvmmsg (fd, in->msgs, RELAY_BATCH, MSG_DONTWAIT, NULL);
      if (n <= 0)
        {
          if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            g_debug ("recvmmsg: %s", g_strerror (errno));
          break;
        }
      gint64 now_us = g_get_real_time ();
      for (int i = 0; i < n; i++)
        {
          struct stun_addr from;
          if (in->msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
            continue;
          relay_addr_from_sockaddr (&in->from[i], &from);
          /* Peer datagrams never end an allocation, so the socket outlives
           * this loop. */
          relay_server_process (m->server, now_us, &source, &from, in->buf[i],
                                in->msgs[i].msg_len);
        }
      if (n < RELAY_BATCH)
        break;
    }
}

static gboolean
on_listener (GSocket *socket, GIOCondition cond, gpointer user_data)
{
  read_socket (user_data, socket, NULL);
  relay_udp_flush (user_data);
  return G_SOURCE_CONTINUE;
}

static void
relayed_free (struct relayed *r)
{
  if (r->socket != NULL)
    {
      g_socket_close (r->socket, NULL);
      g_clear_object (&r->socket);
    }
  g_free (r);
}

static gboolean
on_relayed_ready (gint fd, GIOCondition cond, gpointer user_data)
{
  RelayMain *m = user_data;
  struct relay_udp_ready *rd = m->udp_ready;
  int n = epoll_wait (rd->epfd, rd->events, RELAY_EPOLL_EVENTS, 0);
  if (n < 0)
    {
      if (errno != EINTR)
        g_debug ("epoll_wait: %s", g_strerror (errno));
      return G_SOURCE_CONTINUE;
    }
  /* The core does not end an allocation for a peer's datagram; should it
   * ever, the closed sockets stay allocated until this loop is done. */
  rd->dispatching = TRUE;
  for (int i = 0; i < n; i++)
    {
      struct relayed *r = rd->events[i].data.ptr;
      if (r->socket != NULL)
        read_socket (m, r->socket, r);
    }
  /* Once for all the sockets read: what they relay goes to clients through
   * the listener, so relay_io_send puts it in one sendmmsg even when each
   * allocation had only a datagram or two. */
  relay_udp_flush (m);
  rd->dispatching = FALSE;
  if (rd->closed->len > 0)
    g_ptr_array_remove_range (rd->closed, 0, rd->closed->len);
  return G_SOURCE_CONTINUE;
}

void *
relay_io_relay_open (void *user, uint16_t port, struct stun_addr *relayed_addr)
{
  RelayMain *m = user;
  g_autoptr (GError) error = NULL;
  if (m->udp_ready == NULL)
    return NULL; /* relay_udp_start has not run */
  g_autoptr (GSocket) socket
      = g_socket_new (g_inet_address_get_family (m->relay_ip), G_SOCKET_TYPE_DATAGRAM,
                      G_SOCKET_PROTOCOL_UDP, &error);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (m->relay_ip, port);
  if (socket == NULL || !g_socket_bind (socket, any, FALSE, &error))
    {
      if (port == 0)
        g_warning ("relayed socket: %s", error->message);
      return NULL;
    }
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname (g_socket_get_fd (socket), (struct sockaddr *)&ss, &sl) != 0)
    {
      g_warning ("relayed socket: %s", g_strerror (errno));
      return NULL;
    }
  relay_addr_from_sockaddr (&ss, relayed_addr);
  struct relayed *r = g_new0 (struct relayed, 1);
  r->main = m;
  r->socket = g_steal_pointer (&socket);
  grow_socket_buffers (r->socket);
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = r };
  if (epoll_ctl (m->udp_ready->epfd, EPOLL_CTL_ADD, g_socket_get_fd (r->socket), &ev) != 0)
    {
      g_warning ("relayed socket: epoll_ctl: %s", g_strerror (errno));
      relayed_free (r);
      return NULL;
    }
  return r;
}

void
relay_io_relay_close (void *user, void *handle)
{
  RelayMain *m = user;
  struct relayed *r = handle;
  if (r == NULL)
    return;
  int fd = g_socket_get_fd (r->socket);
  /* Datagrams queued for this socket go out before it closes. */
  if (m->udp_out != NULL && m->udp_out->n > 0 && m->udp_out->fd == fd)
    relay_udp_flush (m);
  if (m->udp_ready != NULL)
    {
      /* Before the close: an fd still open elsewhere (fork) would stay in
       * the set. */
      if (epoll_ctl (m->udp_ready->epfd, EPOLL_CTL_DEL, fd, NULL) != 0)
        g_debug ("epoll_ctl: %s", g_strerror (errno));
      if (m->udp_ready->dispatching)
        {
          /* The events of this dispatch may still name r. */
          g_socket_close (r->socket, NULL);
          g_clear_object (&r->socket);
          g_ptr_array_add (m->udp_ready->closed, r);
          return;
        }
    }
  relayed_free (r);
}

static gboolean
ready_start (RelayMain *m, GError **error)
{
  int epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (epfd < 0)
    {
      int e = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e), "epoll_create1: %s",
                   g_strerror (e));
      return FALSE;
    }
  struct relay_udp_ready *rd = g_new0 (struct relay_udp_ready, 1);
  rd->epfd = epfd;
  rd->closed = g_ptr_array_new_with_free_func ((GDestroyNotify)relayed_free);
  rd->source = g_unix_fd_source_new (epfd, G_IO_IN);
  g_source_set_can_recurse (rd->source, TRUE); /* see relay_udp_start */
  g_source_set_callback (rd->source, G_SOURCE_FUNC (on_relayed_ready), m, NULL);
  g_source_attach (rd->source, m->context);
  m->udp_ready = rd;
  return TRUE;
}

/* After the core has closed every relayed socket (relay_main_free). */
static void
ready_stop (RelayMain *m)
{
  struct relay_udp_ready *rd = g_steal_pointer (&m->udp_ready);
  if (rd == NULL)
    return;
  g_source_destroy (rd->source);
  g_source_unref (rd->source);
  g_ptr_array_unref (rd->closed);
  close (rd->epfd);
  g_free (rd);
}

gboolean
relay_udp_start (RelayMain *m, GInetSocketAddress *addr, GError **error)
{
  if (m->udp_in == NULL)
    {
      /* Large, but allocated once; pages are touched only as datagrams
       * fill them. */
      m->udp_in = g_new0 (struct relay_udp_in, 1);
      m->udp_out = g_new0 (struct relay_udp_out, 1);
      m->udp_out->fd = -1;
    }
  if (m->udp_ready == NULL && !ready_start (m, error))
    return FALSE;
  m->listener = g_socket_new (
      g_inet_address_get_family (g_inet_socket_address_get_address (addr)),
      G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, error);
  if (m->listener == NULL)
    return FALSE;
  if (!g_socket_bind (m->listener, G_SOCKET_ADDRESS (addr), FALSE, error))
    {
      g_clear_object (&m->listener);
      return FALSE;
    }
  grow_socket_buffers (m->listener);
  m->listen_source = g_socket_create_source (m->listener, G_IO_IN, NULL);
  /* GLib takes a source that may not recurse out of the poll set while it
   * is dispatched and puts it back after, and each of the two signals the
   * context's wakeup fd: two writes, a read and a poll that returns at once,
   * per dispatch. Nothing here runs the context from a callback. */
  g_source_set_can_recurse (m->listen_source, TRUE);
  g_source_set_callback (m->listen_source, G_SOURCE_FUNC (on_listener), m, NULL);
  g_source_attach (m->listen_source, m->context);
  return TRUE;
}

void
relay_udp_stop (RelayMain *m)
{
  if (m->listen_source != NULL)
    {
      g_source_destroy (m->listen_source);
      g_clear_pointer (&m->listen_source, g_source_unref);
    }
  g_clear_object (&m->listener);
  ready_stop (m);
  g_clear_pointer (&m->udp_in, g_free);
  g_clear_pointer (&m->udp_out, g_free);
}
