/* Unit tests for proto/enrolltoken.c: the shape of an enrollment token. */
#include <string.h>

#include <glib.h>

#include "enrolltoken.h"

/* 32 characters using every letter of the alphabet. */
#define GOOD "p2ptun1-abcdefghijklmnopqrstuvwxyz234567"

static gboolean
valid (const char *text)
{
  return enrolltoken_is_valid (text, strlen (text));
}

static void
test_good (void)
{
  g_assert_cmpuint (strlen (GOOD), ==, ENROLLTOKEN_LEN);
  g_assert_true (valid (GOOD));
  g_assert_true (valid ("p2ptun1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
  g_assert_true (valid ("p2ptun1-77777777777777777777777777777777"));
}

static void
test_bad (void)
{
  static const char *const bad[] = {
    "",
    "p2ptun1-",
    "p2ptun1-abcdefghijklmnopqrstuvwxyz23456",   /* 31 */
    "p2ptun1-abcdefghijklmnopqrstuvwxyz2345677", /* 33 */
    "P2PTUN1-abcdefghijklmnopqrstuvwxyz234567",  /* prefix case */
    "p2ptun2-abcdefghijklmnopqrstuvwxyz234567",  /* other version */
    "p2ptun1_abcdefghijklmnopqrstuvwxyz234567",
    "p2ptun1-Abcdefghijklmnopqrstuvwxyz234567", /* upper case */
    "p2ptun1-abcdefghijklmnopqrstuvwxyz234561", /* 1 is not base32 */
    "p2ptun1-abcdefghijklmnopqrstuvwxyz234568", /* 8 neither */
    "p2ptun1-abcdefghijklmnopqrstuvwxyz23456=", /* no padding */
    "p2ptun1-abcdefghijklmnopqrstuvwxyz23456 ",
    " p2ptun1-abcdefghijklmnopqrstuvwxyz23456",
    "p2ptun1-abcdefghijklmnopqrstuvwxyz23456\n",
    "abcdefghijklmnopqrstuvwxyz234567abcdefgh", /* no prefix */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (valid (bad[i]));
  g_assert_false (enrolltoken_is_valid (NULL, ENROLLTOKEN_LEN));
}

/* A NUL inside the length, and bytes past @len never read: the checker is
 * given exactly the token's bytes in a buffer of that size. */
static void
test_bounds (void)
{
  char exact[ENROLLTOKEN_LEN];
  char with_nul[] = GOOD;

  memcpy (exact, GOOD, sizeof exact);
  g_assert_true (enrolltoken_is_valid (exact, sizeof exact));
  with_nul[20] = '\0';
  g_assert_false (enrolltoken_is_valid (with_nul, ENROLLTOKEN_LEN));
  /* A valid token followed by more: the length decides. */
  g_assert_false (enrolltoken_is_valid (GOOD "a", ENROLLTOKEN_LEN + 1));
  g_assert_true (enrolltoken_is_valid (GOOD "a", ENROLLTOKEN_LEN));
}

/* Every byte value in every position of the body. */
static void
test_every_byte (void)
{
  for (gsize pos = ENROLLTOKEN_PREFIX_LEN; pos < ENROLLTOKEN_LEN; pos++)
    for (int b = 0; b < 256; b++)
      {
        gboolean want = (b >= 'a' && b <= 'z') || (b >= '2' && b <= '7');
        char text[ENROLLTOKEN_LEN];

        /* A fresh copy each time: putting the byte back in place was lost
         * to gcc 12's dead-store elimination (-O1 and up). */
        memcpy (text, GOOD, sizeof text);
        text[pos] = (char)b;
        g_assert_cmpint (enrolltoken_is_valid (text, sizeof text), ==, want);
      }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/enrolltoken/good", test_good);
  g_test_add_func ("/enrolltoken/bad", test_bad);
  g_test_add_func ("/enrolltoken/bounds", test_bounds);
  g_test_add_func ("/enrolltoken/every-byte", test_every_byte);
  return g_test_run ();
}
