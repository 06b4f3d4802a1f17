/* Unit tests of dgrambatch.c over UDP sockets on 127.0.0.1, batched and
 * one datagram per system call (the fallback where the kernel lacks
 * recvmmsg/sendmmsg): what is sent arrives once, whole, in order, with its
 * sender; a datagram too long for a slot is reported with its real length;
 * a full batch refuses more. */
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "dgram.h"
#include "dgrambatch.h"

static int
udp_socket (struct sockaddr_in *addr)
{
  socklen_t len = sizeof *addr;
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

  g_assert_cmpint (fd, >=, 0);
  memset (addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (bind (fd, (struct sockaddr *) addr, sizeof *addr), ==, 0);
  g_assert_cmpint (getsockname (fd, (struct sockaddr *) addr, &len), ==, 0);
  return fd;
}

static void
fill (guint8 *buf, guint32 seq, gsize len)
{
  memcpy (buf, &seq, 4);
  for (gsize i = 4; i < len; i++)
    buf[i] = (guint8) (seq + i);
}

static void
test_roundtrip (gconstpointer data)
{
  gboolean single = GPOINTER_TO_INT (data);
  g_autoptr (DgramBatch) out = dgrambatch_new (16);
  g_autoptr (DgramBatch) in = dgrambatch_new (16);
  struct sockaddr_in a, b;
  int fa = udp_socket (&a), fb = udp_socket (&b);
  guint8 buf[DGRAM_PAYLOAD_MAX];
  guint32 next = 0;

  dgrambatch_set_single (out, single);
  dgrambatch_set_single (in, single);
  for (guint round = 0; round < 20; round++)
    {
      guint n = 1 + round % 16;
      guint got = 0;
      int error = 0;

      for (guint i = 0; i < n; i++)
        {
          gsize len = 4 + (round * 97 + i * 31) % 1200;

          fill (buf, next + i, len);
          g_assert_true (dgrambatch_add (out, buf, len, (struct sockaddr *) &b, sizeof b));
        }
      g_assert_cmpuint (dgrambatch_count (out), ==, n);
      g_assert_cmpuint (dgrambatch_send (out, fa, &error), ==, 0);
      g_assert_cmpuint (dgrambatch_count (out), ==, 0);
      /* Loopback delivers within the send; a bounded number of reads. */
      for (guint tries = 0; got < n && tries < 4; tries++)
        {
          gint r = dgrambatch_recv (in, fb);

          g_assert_cmpint (r, >=, 0);
          for (guint i = 0; i < (guint) r; i++)
            {
              gsize len;
              socklen_t from_len;
              const guint8 *d = dgrambatch_data (in, i, &len);
              const struct sockaddr_in *from
                  = (const struct sockaddr_in *) dgrambatch_from (in, i, &from_len);
              guint8 want[DGRAM_PAYLOAD_MAX];
              guint32 seq;

              g_assert_cmpuint (len, >=, 4);
              memcpy (&seq, d, 4);
              g_assert_cmpuint (seq, ==, next);
              fill (want, seq, len);
              g_assert_cmpmem (d, len, want, len);
              g_assert_cmpuint (from_len, ==, sizeof *from);
              g_assert_cmpuint (from->sin_port, ==, a.sin_port);
              next++;
            }
          got += (guint) r;
        }
      g_assert_cmpuint (got, ==, n);
    }
  g_assert_cmpint (dgrambatch_recv (in, fb), ==, 0); /* nothing left */
  close (fa);
  close (fb);
}

static void
test_limits (void)
{
  g_autoptr (DgramBatch) out = dgrambatch_new (2);
  g_autoptr (DgramBatch) in = dgrambatch_new (4);
  struct sockaddr_in a, b;
  int fa = udp_socket (&a), fb = udp_socket (&b);
  static guint8 big[DGRAM_PAYLOAD_MAX + 100];
  gsize len;

  g_assert_cmpuint (dgrambatch_capacity (out), ==, 2);
  g_assert_false (dgrambatch_add (out, big, DGRAM_PAYLOAD_MAX + 1, (struct sockaddr *) &b,
                                  sizeof b));
  g_assert_true (dgrambatch_add (out, big, 10, (struct sockaddr *) &b, sizeof b));
  g_assert_true (dgrambatch_add (out, big, 20, (struct sockaddr *) &b, sizeof b));
  g_assert_false (dgrambatch_add (out, big, 30, (struct sockaddr *) &b, sizeof b)); /* full */
  dgrambatch_clear (out);
  g_assert_cmpuint (dgrambatch_count (out), ==, 0);

  /* Longer than a slot: read cut, with its real length. */
  g_assert_cmpint (sendto (fa, big, sizeof big, 0, (struct sockaddr *) &b, sizeof b), ==,
                   (gssize) sizeof big);
  g_assert_cmpint (dgrambatch_recv (in, fb), ==, 1);
  (void) dgrambatch_data (in, 0, &len);
  g_assert_cmpuint (len, ==, sizeof big);
  close (fa);
  close (fb);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/dgrambatch/roundtrip/batched", GINT_TO_POINTER (FALSE),
                        test_roundtrip);
  g_test_add_data_func ("/dgrambatch/roundtrip/single", GINT_TO_POINTER (TRUE), test_roundtrip);
  g_test_add_func ("/dgrambatch/limits", test_limits);
  return g_test_run ();
}
