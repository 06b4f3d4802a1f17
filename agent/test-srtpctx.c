/* Unit tests of agent/srtpctx.c: packets protected by one side's context and
 * unprotected by the other's, in both profiles; what must be refused (a
 * changed byte, a replay, one SSRC too many, a packet that is not RTP);
 * sequence numbers that roll over past 65535. The keys are made here: where
 * they come from is test-dtls's part. */
#include "srtpctx.h"

#include <string.h>

#define PAYLOAD 160
#define CAP (12 + PAYLOAD + SRTPCTX_TRAILER_ROOM)

typedef struct
{
  SrtpCtx *a, *b; /* a sends with the key b receives with, and the reverse */
} Fixture;

static void
make_keys (DtlsSrtpProfile profile, DtlsSrtpKeys *a, DtlsSrtpKeys *b)
{
  memset (a, 0, sizeof *a);
  a->profile = profile;
  a->salt_len = profile == DTLS_SRTP_AEAD_AES_128_GCM ? 12 : 14;
  for (gsize i = 0; i < sizeof a->local; i++)
    {
      a->local[i] = (guint8) (i * 7 + 1);
      a->remote[i] = (guint8) (i * 13 + 5);
    }
  *b = *a;
  memcpy (b->local, a->remote, sizeof b->local);
  memcpy (b->remote, a->local, sizeof b->remote);
}

static void
setup (Fixture *f, gconstpointer data)
{
  DtlsSrtpKeys ka, kb;
  g_autoptr (GError) error = NULL;

  make_keys ((DtlsSrtpProfile) GPOINTER_TO_INT (data), &ka, &kb);
  f->a = srtpctx_new (&ka, 4, &error);
  g_assert_no_error (error);
  f->b = srtpctx_new (&kb, 4, &error);
  g_assert_no_error (error);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  srtpctx_free (f->a);
  srtpctx_free (f->b);
}

/* An RTP packet: version 2, payload type 96 (dynamic), then a pattern. */
static gsize
rtp_packet (guint8 *buf, guint16 seq, guint32 ssrc)
{
  buf[0] = 0x80;
  buf[1] = 96;
  buf[2] = (guint8) (seq >> 8);
  buf[3] = (guint8) seq;
  memset (buf + 4, 0, 4); /* timestamp */
  buf[8] = (guint8) (ssrc >> 24);
  buf[9] = (guint8) (ssrc >> 16);
  buf[10] = (guint8) (ssrc >> 8);
  buf[11] = (guint8) ssrc;
  for (int i = 0; i < PAYLOAD; i++)
    buf[12 + i] = (guint8) (seq + i);
  return 12 + PAYLOAD;
}

/* A receiver report with no report block: RTCP type 201. */
static gsize
rtcp_packet (guint8 *buf, guint32 ssrc)
{
  static const guint8 rr[8] = { 0x80, 201, 0, 1 };

  memcpy (buf, rr, sizeof rr);
  buf[4] = (guint8) (ssrc >> 24);
  buf[5] = (guint8) (ssrc >> 16);
  buf[6] = (guint8) (ssrc >> 8);
  buf[7] = (guint8) ssrc;
  return sizeof rr;
}

static void
round_trip (Fixture *f, guint16 seq, guint32 ssrc)
{
  guint8 buf[CAP], plain[CAP];
  gsize len = rtp_packet (buf, seq, ssrc), plain_len = len;

  memcpy (plain, buf, len);
  g_assert_cmpint (srtpctx_protect (f->a, buf, &len, sizeof buf), ==, SRTPCTX_OK);
  g_assert_cmpuint (len, >, plain_len);
  g_assert_cmpuint (len, <=, plain_len + SRTPCTX_OVERHEAD_MAX);
  /* Header in the clear, payload not. */
  g_assert_cmpmem (buf, 12, plain, 12);
  g_assert_true (memcmp (buf + 12, plain + 12, PAYLOAD) != 0);
  g_assert_cmpint (srtpctx_unprotect (f->b, buf, &len), ==, SRTPCTX_OK);
  g_assert_cmpmem (buf, len, plain, plain_len);
}

static void
test_both_ways (Fixture *f, gconstpointer data)
{
  guint8 buf[CAP], plain[CAP];
  gsize len, plain_len;

  for (guint16 seq = 1; seq < 50; seq++)
    round_trip (f, seq, 0x11223344);
  /* The other way, and RTCP. */
  len = plain_len = rtcp_packet (buf, 0x55667788);
  memcpy (plain, buf, len);
  g_assert_true (srtpctx_is_rtcp (buf, len));
  g_assert_cmpint (srtpctx_protect (f->b, buf, &len, sizeof buf), ==, SRTPCTX_OK);
  g_assert_cmpint (srtpctx_unprotect (f->a, buf, &len), ==, SRTPCTX_OK);
  g_assert_cmpmem (buf, len, plain, plain_len);
  g_assert_cmpuint (srtpctx_n_ssrcs_out (f->a), ==, 1);
  g_assert_cmpuint (srtpctx_n_ssrcs_in (f->a), ==, 1);
}

/* Sequence numbers past 65535: the rollover counter carries on (a wrong
 * one fails authentication, in both profiles). */
static void
test_rollover (Fixture *f, gconstpointer data)
{
  guint16 seq = 65500;

  for (int i = 0; i < 100; i++)
    round_trip (f, seq++, 0x0badcafe);
  g_assert_cmpuint (seq, ==, 64);
}

static void
test_refusals (Fixture *f, gconstpointer data)
{
  guint8 buf[CAP], copy[CAP];
  gsize len = rtp_packet (buf, 7, 1), copy_len;

  g_assert_cmpint (srtpctx_protect (f->a, buf, &len, sizeof buf), ==, SRTPCTX_OK);
  memcpy (copy, buf, len);
  copy_len = len;
  /* One bit changed in the payload. */
  buf[20] ^= 1;
  g_assert_cmpint (srtpctx_unprotect (f->b, buf, &len), ==, SRTPCTX_AUTH_FAILED);
  /* The original passes once, then is a replay. */
  memcpy (buf, copy, copy_len);
  len = copy_len;
  g_assert_cmpint (srtpctx_unprotect (f->b, buf, &len), ==, SRTPCTX_OK);
  memcpy (buf, copy, copy_len);
  len = copy_len;
  g_assert_cmpint (srtpctx_unprotect (f->b, buf, &len), ==, SRTPCTX_REPLAYED);
  /* Not RTP: version 0, and too short. */
  len = copy_len;
  buf[0] = 0x00;
  g_assert_cmpint (srtpctx_unprotect (f->b, buf, &len), ==, SRTPCTX_MALFORMED);
  len = 5;
  buf[0] = 0x80;
  g_assert_cmpint (srtpctx_protect (f->a, buf, &len, sizeof buf), ==, SRTPCTX_MALFORMED);
  /* No room for the tag. */
  len = rtp_packet (buf, 8, 1);
  g_assert_cmpint (srtpctx_protect (f->a, buf, &len, len + 4), ==, SRTPCTX_TOO_BIG);
  /* A packet that fails authentication took no SSRC place. */
  g_assert_cmpuint (srtpctx_n_ssrcs_in (f->b), ==, 1);
}

static void
test_ssrc_limit (Fixture *f, gconstpointer data)
{
  guint8 buf[CAP];
  gsize len;

  for (guint32 ssrc = 1; ssrc <= 4; ssrc++)
    round_trip (f, 1, ssrc);
  len = rtp_packet (buf, 1, 5);
  g_assert_cmpint (srtpctx_protect (f->a, buf, &len, sizeof buf), ==, SRTPCTX_TOO_MANY_SSRCS);
  /* The known ones still pass. */
  round_trip (f, 2, 3);
  g_assert_cmpuint (srtpctx_n_ssrcs_out (f->a), ==, 4);
  g_assert_cmpuint (srtpctx_n_ssrcs_in (f->b), ==, 4);
}

static void
test_no_keys (void)
{
  DtlsSrtpKeys none = { 0 };
  g_autoptr (GError) error = NULL;

  g_assert_null (srtpctx_new (&none, 4, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
}

int
main (int argc, char **argv)
{
  static const struct
  {
    const char *name;
    DtlsSrtpProfile profile;
  } profiles[] = {
    { "gcm", DTLS_SRTP_AEAD_AES_128_GCM },
    { "cm-sha1-80", DTLS_SRTP_AES128_CM_SHA1_80 },
  };

  g_test_init (&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (profiles); i++)
    {
      gconstpointer p = GINT_TO_POINTER (profiles[i].profile);
      g_autofree char *both = g_strdup_printf ("/srtpctx/%s/both-ways", profiles[i].name);
      g_autofree char *roll = g_strdup_printf ("/srtpctx/%s/rollover", profiles[i].name);
      g_autofree char *ref = g_strdup_printf ("/srtpctx/%s/refusals", profiles[i].name);
      g_autofree char *lim = g_strdup_printf ("/srtpctx/%s/ssrc-limit", profiles[i].name);

      g_test_add (both, Fixture, p, setup, test_both_ways, teardown);
      g_test_add (roll, Fixture, p, setup, test_rollover, teardown);
      g_test_add (ref, Fixture, p, setup, test_refusals, teardown);
      g_test_add (lim, Fixture, p, setup, test_ssrc_limit, teardown);
    }
  g_test_add_func ("/srtpctx/no-keys", test_no_keys);
  return g_test_run ();
}
