/* Unit tests of the first-record check (signaling/tlshello.c). */
#include <glib.h>

#include "tlshello.h"

static void
test_verdicts (void)
{
  guint8 buf[TLSHELLO_BUFFER_MAX + 1] = { TLSHELLO_TYPE_HANDSHAKE, 3, 1, 0, 4 };

  g_assert_cmpint (tlshello_check (buf, 0), ==, TLSHELLO_INCOMPLETE);
  g_assert_cmpint (tlshello_check (buf, 1), ==, TLSHELLO_INCOMPLETE);
  g_assert_cmpint (tlshello_check (buf, 5), ==, TLSHELLO_INCOMPLETE);
  g_assert_cmpint (tlshello_check (buf, 8), ==, TLSHELLO_INCOMPLETE);
  g_assert_cmpint (tlshello_check (buf, 9), ==, TLSHELLO_COMPLETE);
  g_assert_cmpint (tlshello_check (buf, 20), ==, TLSHELLO_COMPLETE);

  /* The largest record, and one byte more. */
  buf[3] = 0x40;
  buf[4] = 0x00;
  g_assert_cmpint (tlshello_check (buf, TLSHELLO_BUFFER_MAX - 1), ==,
                   TLSHELLO_INCOMPLETE);
  g_assert_cmpint (tlshello_check (buf, TLSHELLO_BUFFER_MAX), ==, TLSHELLO_COMPLETE);
  buf[4] = 0x01;
  g_assert_cmpint (tlshello_check (buf, sizeof buf), ==, TLSHELLO_INVALID);

  /* An empty record, another content type, plain HTTP. */
  buf[3] = buf[4] = 0;
  g_assert_cmpint (tlshello_check (buf, 5), ==, TLSHELLO_INVALID);
  buf[0] = 23;
  g_assert_cmpint (tlshello_check (buf, 1), ==, TLSHELLO_INVALID);
  g_assert_cmpint (tlshello_check ((const guint8 *)"GET / HTTP/1.1", 14), ==,
                   TLSHELLO_INVALID);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/signal/tlshello/verdicts", test_verdicts);
  return g_test_run ();
}
