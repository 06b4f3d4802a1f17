/* Batched datagrams of local UDP sockets; see dgrambatch.h. */
#include "dgrambatch.h"

#include <errno.h>
#include <string.h>

#include "dgram.h"

struct _DgramBatch
{
  guint cap;
  guint count;
  gboolean single; /* no recvmmsg/sendmmsg: one datagram per call */
  struct mmsghdr *msgs;
  struct iovec *iov;
  struct sockaddr_storage *addrs;
  guint8 *data; /* cap slots of DGRAM_PAYLOAD_MAX bytes */
};

DgramBatch *
dgrambatch_new (guint n)
{
  DgramBatch *b;

  g_return_val_if_fail (n >= 1 && n <= DGRAMBATCH_MAX, NULL);
  b = g_new0 (DgramBatch, 1);
  b->cap = n;
  b->msgs = g_new0 (struct mmsghdr, n);
  b->iov = g_new0 (struct iovec, n);
  b->addrs = g_new0 (struct sockaddr_storage, n);
  b->data = g_malloc ((gsize) n * DGRAM_PAYLOAD_MAX);
  return b;
}

void
dgrambatch_free (DgramBatch *b)
{
  if (b == NULL)
    return;
  g_free (b->msgs);
  g_free (b->iov);
  g_free (b->addrs);
  g_free (b->data);
  g_free (b);
}

void
dgrambatch_set_single (DgramBatch *b, gboolean single)
{
  b->single = single;
}

guint
dgrambatch_count (const DgramBatch *b)
{
  return b->count;
}

guint
dgrambatch_capacity (const DgramBatch *b)
{
  return b->cap;
}

void
dgrambatch_clear (DgramBatch *b)
{
  b->count = 0;
}

static guint8 *
slot (const DgramBatch *b, guint i)
{
  return b->data + (gsize) i * DGRAM_PAYLOAD_MAX;
}

/* Slot @i set up to receive into. */
static struct msghdr *
recv_header (DgramBatch *b, guint i)
{
  struct msghdr *h = &b->msgs[i].msg_hdr;

  memset (h, 0, sizeof *h);
  b->iov[i].iov_base = slot (b, i);
  b->iov[i].iov_len = DGRAM_PAYLOAD_MAX;
  h->msg_iov = &b->iov[i];
  h->msg_iovlen = 1;
  h->msg_name = &b->addrs[i];
  h->msg_namelen = sizeof b->addrs[i];
  b->msgs[i].msg_len = 0;
  return h;
}

/* MSG_TRUNC: a UDP socket then gives a datagram's real length, so that one
 * too long is told as what it is (udp(7)). */
#define RECV_FLAGS (MSG_DONTWAIT | MSG_TRUNC)

static gint
recv_single (DgramBatch *b, int fd)
{
  while (b->count < b->cap)
    {
      ssize_t n = recvmsg (fd, recv_header (b, b->count), RECV_FLAGS);

      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
          return b->count > 0 ? (gint) b->count : -1;
        }
      b->msgs[b->count].msg_len = (unsigned int) n;
      b->count++;
    }
  return (gint) b->count;
}

gint
dgrambatch_recv (DgramBatch *b, int fd)
{
  int n;

  b->count = 0;
  if (b->single)
    return recv_single (b, fd);
  for (guint i = 0; i < b->cap; i++)
    recv_header (b, i);
  do
    n = recvmmsg (fd, b->msgs, b->cap, RECV_FLAGS, NULL);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == ENOSYS)
    {
      b->single = TRUE;
      return recv_single (b, fd);
    }
  if (n < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  b->count = (guint) n;
  return n;
}

const guint8 *
dgrambatch_data (const DgramBatch *b, guint i, gsize *len)
{
  g_return_val_if_fail (i < b->count, NULL);
  *len = b->msgs[i].msg_len;
  return slot (b, i);
}

const struct sockaddr *
dgrambatch_from (const DgramBatch *b, guint i, socklen_t *len)
{
  g_return_val_if_fail (i < b->count, NULL);
  *len = b->msgs[i].msg_hdr.msg_namelen;
  return (const struct sockaddr *) &b->addrs[i];
}

gboolean
dgrambatch_add (DgramBatch *b, const guint8 *buf, gsize len, const struct sockaddr *to,
                socklen_t to_len)
{
  struct msghdr *h;
  guint i = b->count;

  if (i == b->cap || len > DGRAM_PAYLOAD_MAX || to_len > sizeof b->addrs[i])
    return FALSE;
  h = &b->msgs[i].msg_hdr;
  memset (h, 0, sizeof *h);
  if (len > 0)
    memcpy (slot (b, i), buf, len);
  b->iov[i].iov_base = slot (b, i);
  b->iov[i].iov_len = len;
  h->msg_iov = &b->iov[i];
  h->msg_iovlen = 1;
  if (to != NULL)
    {
      memcpy (&b->addrs[i], to, to_len);
      h->msg_name = &b->addrs[i];
      h->msg_namelen = to_len;
    }
  b->msgs[i].msg_len = 0;
  b->count++;
  return TRUE;
}

guint
dgrambatch_send (DgramBatch *b, int fd, int *error)
{
  guint done = 0, refused = 0;

  while (done < b->count)
    {
      int n;

      if (b->single)
        n = sendmsg (fd, &b->msgs[done].msg_hdr, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -1 : 1;
      else
        n = sendmmsg (fd, b->msgs + done, b->count - done, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0)
        {
          done += (guint) n;
          continue;
        }
      if (errno == EINTR)
        continue;
      if (errno == ENOSYS && !b->single)
        {
          b->single = TRUE;
          continue;
        }
      /* The first one left was refused: it is lost; on with the rest. */
      if (error != NULL)
        *error = errno;
      refused++;
      done++;
    }
  b->count = 0;
  return refused;
}
