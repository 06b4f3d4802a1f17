/* The UDP side of the shell: the listener and one socket per allocation,
 * read with recvmmsg and written with sendmmsg (see shell.h). */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

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

struct relayed
{
  RelayMain *main;
  GSocket *socket;
  GSource *source;
};

void
relay_addr_from_sockaddr (const struct sockaddr_storage *ss, struct stun_addr *out)
{
  memset (out, 0, sizeof *out);
  if (ss->ss_family == AF_INET6)
    {
      const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
      out->family = 6;
      out->port = ntohs (s6->sin6_port);
      memcpy (out->ip, &s6->sin6_addr, 16);
    }
  else
    {
      const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
      out->family = 4;
      out->port = ntohs (s4->sin_port);
      memcpy (out->ip, &s4->sin_addr, 4);
    }
}

socklen_t
relay_addr_to_sockaddr (const struct stun_addr *a, struct sockaddr_storage *ss)
{
  memset (ss, 0, sizeof *ss);
  if (a->family == 6)
    {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons (a->port);
      memcpy (&s6->sin6_addr, a->ip, 16);
      return sizeof *s6;
    }
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  s4->sin_family = AF_INET;
  s4->sin_port = htons (a->port);
  memcpy (&s4->sin_addr, a->ip, 4);
  return sizeof *s4;
}

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
  relay_udp_flush (m);
}

static gboolean
on_listener (GSocket *socket, GIOCondition cond, gpointer user_data)
{
  read_socket (user_data, socket, NULL);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_relayed (GSocket *socket, GIOCondition cond, gpointer user_data)
{
  struct relayed *r = user_data;
  read_socket (r->main, socket, r);
  return G_SOURCE_CONTINUE;
}

void *
relay_io_relay_open (void *user, uint16_t port, struct stun_addr *relayed_addr)
{
  RelayMain *m = user;
  g_autoptr (GError) error = NULL;
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
  r->source = g_socket_create_source (r->socket, G_IO_IN, NULL);
  g_source_set_callback (r->source, G_SOURCE_FUNC (on_relayed), r, NULL);
  g_source_attach (r->source, m->context);
  return r;
}

void
relay_io_relay_close (void *user, void *handle)
{
  RelayMain *m = user;
  struct relayed *r = handle;
  if (r == NULL)
    return;
  /* Datagrams queued for this socket go out before it closes. */
  if (m->udp_out != NULL && m->udp_out->n > 0
      && m->udp_out->fd == g_socket_get_fd (r->socket))
    relay_udp_flush (m);
  g_source_destroy (r->source);
  g_source_unref (r->source);
  g_socket_close (r->socket, NULL);
  g_object_unref (r->socket);
  g_free (r);
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
  g_clear_pointer (&m->udp_in, g_free);
  g_clear_pointer (&m->udp_out, g_free);
}
