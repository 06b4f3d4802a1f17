/* Batched sending of datagrams on one UDP socket; see udpbatch.h. */
#include "udpbatch.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, Linux 4.18 */
#endif

/* Linux's UDP_MAX_SEGMENTS: segments in one GSO message. */
#define UDPBATCH_GSO_SEGMENTS 64
/* One GSO message is one IP packet before it is cut: its UDP payload stays
 * well under 64 KiB with either IP version's header. */
#define UDPBATCH_GSO_BYTES 65000

struct _UdpBatch
{
  UdpBatchMode mode;
  int fd;
  struct sockaddr_storage to;
  socklen_t to_len;

  guint n;   /* datagrams queued */
  gsize used; /* bytes queued, back to back in buf */
  guint16 len[UDPBATCH_MAX_DATAGRAMS];
  /* One message per GSO run (or per datagram): its datagrams. */
  guint first[UDPBATCH_MAX_DATAGRAMS];
  guint count[UDPBATCH_MAX_DATAGRAMS];
  struct mmsghdr msgs[UDPBATCH_MAX_DATAGRAMS];
  struct iovec iov[UDPBATCH_MAX_DATAGRAMS];
  union
  {
    char buf[CMSG_SPACE (sizeof (guint16))];
    size_t align; /* cmsghdr starts with a size_t */
  } control[UDPBATCH_MAX_DATAGRAMS];
  UdpBatchStats stats;
  guint8 buf[UDPBATCH_MAX_BYTES];
};

static UdpBatchMode
mode_from_string (const char *value)
{
  if (value == NULL || *value == '\0' || g_str_equal (value, "gso"))
    return UDPBATCH_GSO;
  if (g_str_equal (value, "sendmmsg"))
    return UDPBATCH_SENDMMSG;
  if (g_str_equal (value, "off"))
    return UDPBATCH_OFF;
  g_printerr ("p2ptun: P2PTUN_UDP_BATCH=%s is not off, sendmmsg or gso: using gso\n", value);
  return UDPBATCH_GSO;
}

UdpBatchMode
udpbatch_mode_from_env (void)
{
  static gsize once;
  static UdpBatchMode mode;

  if (g_once_init_enter (&once))
    {
      mode = mode_from_string (g_getenv ("P2PTUN_UDP_BATCH"));
      g_once_init_leave (&once, 1);
    }
  return mode;
}

const char *
udpbatch_mode_name (UdpBatchMode mode)
{
  switch (mode)
    {
    case UDPBATCH_OFF:
      return "off";
    case UDPBATCH_SENDMMSG:
      return "sendmmsg";
    case UDPBATCH_GSO:
      return "gso";
    default:
      return "unknown";
    }
}

UdpBatch *
udpbatch_new (UdpBatchMode mode)
{
  UdpBatch *self;

  g_return_val_if_fail (mode == UDPBATCH_SENDMMSG || mode == UDPBATCH_GSO, NULL);
  self = g_new0 (UdpBatch, 1);
  self->mode = mode;
  self->fd = -1;
  return self;
}

void
udpbatch_free (UdpBatch *self)
{
  if (self == NULL)
    return;
  udpbatch_flush (self);
  g_free (self);
}

void
udpbatch_set_target (UdpBatch *self, int fd, const struct sockaddr *to, socklen_t to_len)
{
  udpbatch_flush (self);
  if (fd < 0 || to == NULL || to_len == 0 || to_len > sizeof self->to)
    {
      self->fd = -1;
      self->to_len = 0;
      return;
    }
  self->fd = fd;
  memcpy (&self->to, to, to_len);
  self->to_len = to_len;
}

gboolean
udpbatch_has_target (const UdpBatch *self)
{
  return self->fd >= 0;
}

gboolean
udpbatch_add (UdpBatch *self, const guint8 *buf, gsize len)
{
  if (self->fd < 0 || len == 0 || len > UDPBATCH_DATAGRAM_MAX)
    return FALSE;
  if (self->n == UDPBATCH_MAX_DATAGRAMS || self->used + len > sizeof self->buf)
    udpbatch_flush (self);
  memcpy (self->buf + self->used, buf, len);
  self->len[self->n++] = (guint16) len;
  self->used += len;
  return TRUE;
}

/* How many datagrams from @i one message carries: with GSO, a run of equal
 * sizes that may end with one shorter datagram (the kernel's rule). */
static guint
run_length (const UdpBatch *self, guint i)
{
  gsize size = self->len[i], total = size;
  guint j = i + 1;

  if (self->mode != UDPBATCH_GSO)
    return 1;
  while (j < self->n && j - i < UDPBATCH_GSO_SEGMENTS && self->len[j] <= size
         && total + self->len[j] <= UDPBATCH_GSO_BYTES)
    {
      total += self->len[j];
      if (self->len[j++] < size)
        break;
    }
  return j - i;
}

/* The messages of datagrams [@from, n); returns how many. */
static guint
build_messages (UdpBatch *self, guint from)
{
  gsize off = 0;
  guint m = 0;

  for (guint i = 0; i < from; i++)
    off += self->len[i];
  for (guint i = from; i < self->n; m++)
    {
      guint count = run_length (self, i);
      struct msghdr *h = &self->msgs[m].msg_hdr;
      gsize total = 0;

      for (guint k = i; k < i + count; k++)
        total += self->len[k];
      memset (&self->msgs[m], 0, sizeof self->msgs[m]);
      self->iov[m].iov_base = self->buf + off;
      self->iov[m].iov_len = total;
      h->msg_name = &self->to;
      h->msg_namelen = self->to_len;
      h->msg_iov = &self->iov[m];
      h->msg_iovlen = 1;
      if (count > 1)
        {
          struct cmsghdr *c;
          guint16 segment = self->len[i];

          h->msg_control = self->control[m].buf;
          h->msg_controllen = sizeof self->control[m].buf;
          c = CMSG_FIRSTHDR (h);
          c->cmsg_level = SOL_UDP;
          c->cmsg_type = UDP_SEGMENT;
          c->cmsg_len = CMSG_LEN (sizeof segment);
          memcpy (CMSG_DATA (c), &segment, sizeof segment);
        }
      self->first[m] = i;
      self->count[m] = count;
      off += total;
      i += count;
    }
  return m;
}

/* The kernel or the device does not do UDP GSO (EIO: no checksum offload;
 * EINVAL, ENOPROTOOPT: an old kernel). */
static gboolean
gso_refused (int err)
{
  return err == EIO || err == EINVAL || err == ENOPROTOOPT || err == EOPNOTSUPP;
}

void
udpbatch_flush (UdpBatch *self)
{
  guint m, k = 0;

  if (self->n == 0)
    return;
  if (self->fd < 0)
    {
      self->stats.dropped += self->n;
      self->n = 0;
      self->used = 0;
      return;
    }
  m = build_messages (self, 0);
  /* Each turn sends at least one message or gives one up: bounded by 2m
   * turns, plus one rebuild when GSO is refused. */
  for (guint turns = 0; k < m && turns < 2 * UDPBATCH_MAX_DATAGRAMS + 2; turns++)
    {
      int r = sendmmsg (self->fd, self->msgs + k, m - k, MSG_DONTWAIT);
      int err = errno;

      self->stats.syscalls++;
      if (r > 0)
        {
          for (guint i = k; i < k + (guint) r; i++)
            self->stats.datagrams += self->count[i];
          self->stats.messages += (guint) r;
          k += (guint) r;
          continue;
        }
      if (err == EINTR)
        continue;
      if (self->mode == UDPBATCH_GSO && self->count[k] > 1 && gso_refused (err))
        {
          g_debug ("UDP GSO refused (%s): sending datagram by datagram", g_strerror (err));
          self->mode = UDPBATCH_SENDMMSG;
          m = build_messages (self, self->first[k]);
          k = 0;
          continue;
        }
      /* The socket's buffer is full: the rest would fail too. */
      if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS)
        break;
      /* This message cannot go (too big for the route, an ICMP error
       * pending on the socket): the others still may. */
      self->stats.dropped += self->count[k++];
    }
  for (; k < m; k++)
    self->stats.dropped += self->count[k];
  self->n = 0;
  self->used = 0;
}

UdpBatchMode
udpbatch_mode (const UdpBatch *self)
{
  return self->mode;
}

const UdpBatchStats *
udpbatch_stats (const UdpBatch *self)
{
  return &self->stats;
}
