/* Unit tests of udpbatch.c over two UDP sockets on 127.0.0.1: every
 * datagram of a batched burst arrives once, whole and in order, in each
 * mode, across a change of destination; GSO takes fewer system calls than
 * datagrams. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "udpbatch.h"

/* Datagrams per burst before the test flushes and reads them back: small
 * enough that a burst fits any receive buffer. */
#define BURST 8
#define DATAGRAMS 600

typedef struct
{
  int fd;
  struct sockaddr_in addr;
  guint32 next; /* sequence number expected */
  guint received;
} Receiver;

static void
receiver_open (Receiver *r)
{
  socklen_t len = sizeof r->addr;
  int size = 4 * 1024 * 1024;

  memset (r, 0, sizeof *r);
  r->fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  g_assert_cmpint (r->fd, >=, 0);
  if (setsockopt (r->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
    (void) setsockopt (r->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  r->addr.sin_family = AF_INET;
  r->addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (bind (r->fd, (struct sockaddr *) &r->addr, sizeof r->addr), ==, 0);
  g_assert_cmpint (getsockname (r->fd, (struct sockaddr *) &r->addr, &len), ==, 0);
}

/* The size of datagram @seq: runs of equal sizes, shorter ones that end a
 * run, single large ones, the smallest and the largest. */
static gsize
size_of (guint32 seq)
{
  static const gsize pattern[] = { 1400, 1400, 1400, 1400, 700, 1400, 1400, 16000,
                                   16000, 9, 4,   1200, 1200, 1201, UDPBATCH_DATAGRAM_MAX,
                                   64,   64,  64,   64,   64,   3000, 2999, 1 };
  gsize n = pattern[seq % G_N_ELEMENTS (pattern)];

  return MAX (n, 4);
}

static void
fill (guint8 *buf, guint32 seq, gsize len)
{
  memcpy (buf, &seq, 4);
  for (gsize i = 4; i < len; i++)
    buf[i] = (guint8) (seq * 31 + i);
}

/* Reads what arrived; every datagram must be the next one, whole. */
static void
receiver_drain (Receiver *r)
{
  static guint8 buf[65536];
  static guint8 want[65536];
  /* Loopback delivers within the sendmmsg call; the bound only stops a
   * broken test. */
  for (guint i = 0; i < 2 * BURST * 64 + 1; i++)
    {
      ssize_t n = recv (r->fd, buf, sizeof buf, 0);
      guint32 seq;

      if (n < 0)
        {
          g_assert_true (errno == EAGAIN || errno == EWOULDBLOCK);
          return;
        }
      g_assert_cmpint (n, >=, 4);
      memcpy (&seq, buf, 4);
      g_assert_cmpuint (seq, ==, r->next);
      g_assert_cmpuint ((gsize) n, ==, size_of (seq));
      fill (want, seq, (gsize) n);
      g_assert_cmpmem (buf, n, want, n);
      r->next++;
      r->received++;
    }
  g_assert_not_reached ();
}

static void
send_range (UdpBatch *b, Receiver *r, guint32 from, guint32 to)
{
  static guint8 buf[UDPBATCH_DATAGRAM_MAX];

  for (guint32 seq = from; seq < to; seq++)
    {
      gsize len = size_of (seq);

      fill (buf, seq, len);
      g_assert_true (udpbatch_add (b, buf, len));
      /* Bursts of 1 to BURST datagrams, then what arrived is checked. */
      if ((seq % BURST) == (seq / BURST) % BURST || seq % BURST == BURST - 1)
        {
          udpbatch_flush (b);
          receiver_drain (r);
        }
    }
  udpbatch_flush (b);
  receiver_drain (r);
}

static void
test_burst (gconstpointer data)
{
  UdpBatchMode mode = GPOINTER_TO_INT (data);
  g_autoptr (UdpBatch) b = udpbatch_new (mode);
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  Receiver r;
  const UdpBatchStats *st;

  receiver_open (&r);
  g_assert_false (udpbatch_add (b, (const guint8 *) "x", 1)); /* no target yet */
  udpbatch_set_target (b, fd, (struct sockaddr *) &r.addr, sizeof r.addr);
  g_assert_true (udpbatch_has_target (b));
  send_range (b, &r, 0, DATAGRAMS);
  st = udpbatch_stats (b);
  g_test_message ("mode %s (asked %s): %" G_GUINT64_FORMAT " datagrams in %" G_GUINT64_FORMAT
                  " messages, %" G_GUINT64_FORMAT " sendmmsg, %" G_GUINT64_FORMAT " dropped",
                  udpbatch_mode_name (udpbatch_mode (b)), udpbatch_mode_name (mode),
                  st->datagrams, st->messages, st->syscalls, st->dropped);
  g_assert_cmpuint (r.received, ==, DATAGRAMS);
  g_assert_cmpuint (st->datagrams, ==, DATAGRAMS);
  g_assert_cmpuint (st->dropped, ==, 0);
  /* A flush is one system call whatever the mode; GSO makes its messages
   * fewer, which the datagrams read back above show to be intact. */
  g_assert_cmpuint (st->syscalls, <, DATAGRAMS / 2);
  if (udpbatch_mode (b) == UDPBATCH_GSO)
    g_assert_cmpuint (st->messages, <, st->datagrams);
  else
    g_assert_cmpuint (st->messages, ==, st->datagrams);
  close (r.fd);
  g_clear_pointer (&b, udpbatch_free);
  close (fd);
}

/* A new destination while datagrams wait: they go to the old one first. */
static void
test_retarget (void)
{
  g_autoptr (UdpBatch) b = udpbatch_new (UDPBATCH_GSO);
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  static guint8 buf[UDPBATCH_DATAGRAM_MAX];
  Receiver one, two;

  receiver_open (&one);
  receiver_open (&two);
  udpbatch_set_target (b, fd, (struct sockaddr *) &one.addr, sizeof one.addr);
  for (guint32 seq = 0; seq < 5; seq++)
    {
      fill (buf, seq, size_of (seq));
      g_assert_true (udpbatch_add (b, buf, size_of (seq)));
    }
  udpbatch_set_target (b, fd, (struct sockaddr *) &two.addr, sizeof two.addr);
  receiver_drain (&one);
  g_assert_cmpuint (one.received, ==, 5);
  two.next = 5;
  send_range (b, &two, 5, 40);
  g_assert_cmpuint (two.received, ==, 35);
  receiver_drain (&one);
  g_assert_cmpuint (one.received, ==, 5);

  /* Nowhere: refused, and nothing waits. */
  udpbatch_set_target (b, -1, NULL, 0);
  g_assert_false (udpbatch_has_target (b));
  g_assert_false (udpbatch_add (b, buf, 10));
  close (one.fd);
  close (two.fd);
  g_clear_pointer (&b, udpbatch_free);
  close (fd);
}

/* A socket that refuses GSO (Linux refuses it without UDP checksums, as a
 * device without checksum offload does): the batch goes on without GSO,
 * and nothing is lost on the way. */
static void
test_gso_refused (void)
{
  g_autoptr (UdpBatch) b = udpbatch_new (UDPBATCH_GSO);
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int one = 1;
  Receiver r;

  g_assert_cmpint (setsockopt (fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof one), ==, 0);
  receiver_open (&r);
  udpbatch_set_target (b, fd, (struct sockaddr *) &r.addr, sizeof r.addr);
  send_range (b, &r, 0, 200);
  g_test_message ("after the refusal: mode %s, %" G_GUINT64_FORMAT " datagrams in %"
                  G_GUINT64_FORMAT " messages", udpbatch_mode_name (udpbatch_mode (b)),
                  udpbatch_stats (b)->datagrams, udpbatch_stats (b)->messages);
  g_assert_cmpuint (r.received, ==, 200);
  g_assert_cmpuint (udpbatch_stats (b)->dropped, ==, 0);
  g_assert_cmpint (udpbatch_mode (b), ==, UDPBATCH_SENDMMSG);
  close (r.fd);
  g_clear_pointer (&b, udpbatch_free);
  close (fd);
}

/* What no socket takes: empty and oversized datagrams. */
static void
test_limits (void)
{
  g_autoptr (UdpBatch) b = udpbatch_new (UDPBATCH_SENDMMSG);
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  static guint8 buf[UDPBATCH_DATAGRAM_MAX + 1];
  Receiver r;

  receiver_open (&r);
  udpbatch_set_target (b, fd, (struct sockaddr *) &r.addr, sizeof r.addr);
  g_assert_false (udpbatch_add (b, buf, 0));
  g_assert_false (udpbatch_add (b, buf, UDPBATCH_DATAGRAM_MAX + 1));
  /* More than a batch holds, without a flush: full batches go by
   * themselves, in order. */
  for (guint32 seq = 0; seq < UDPBATCH_MAX_DATAGRAMS + 10; seq++)
    {
      memset (buf, 0, 64);
      fill (buf, seq, 64);
      g_assert_true (udpbatch_add (b, buf, 64));
    }
  udpbatch_flush (b);
  for (guint32 seq = 0; seq < UDPBATCH_MAX_DATAGRAMS + 10; seq++)
    {
      guint8 got[128];
      guint8 want[64];
      ssize_t n = recv (r.fd, got, sizeof got, 0);

      g_assert_cmpint (n, ==, 64);
      fill (want, seq, 64);
      g_assert_cmpmem (got, 64, want, 64);
    }
  close (r.fd);
  g_clear_pointer (&b, udpbatch_free);
  close (fd);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/udpbatch/burst/sendmmsg", GINT_TO_POINTER (UDPBATCH_SENDMMSG),
                        test_burst);
  g_test_add_data_func ("/udpbatch/burst/gso", GINT_TO_POINTER (UDPBATCH_GSO), test_burst);
  g_test_add_func ("/udpbatch/retarget", test_retarget);
  g_test_add_func ("/udpbatch/gso-refused", test_gso_refused);
  g_test_add_func ("/udpbatch/limits", test_limits);
  return g_test_run ();
}
