/* srtpdecrypt: decrypts captured SRTP packets with libsrtp2 and a key from
 * P2PTUN_SRTP_KEYLOG, for the NAT lab's media-srtp case. It uses libsrtp2
 * directly, with the policy RFC 5764 and RFC 7714 give the profile, and
 * nothing of p2ptun: a packet it can decrypt is standard SRTP.
 *
 *   srtpdecrypt PROFILE KEY-AND-SALT-BASE64 < records > records
 *
 * A record is a 2-byte big-endian length and that many bytes. Exits 1 at
 * the first packet that does not decrypt, 2 on a usage error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <srtp2/srtp.h>

static int
read_record (uint8_t *buf, size_t cap, size_t *len)
{
  uint8_t head[2];

  if (fread (head, 1, 2, stdin) != 2)
    return 0;
  *len = (size_t) head[0] << 8 | head[1];
  return *len <= cap && fread (buf, 1, *len, stdin) == *len ? 1 : -1;
}

int
main (int argc, char **argv)
{
  srtp_policy_t policy;
  srtp_t session;
  uint8_t buf[65536 + SRTP_MAX_TRAILER_LEN];
  guchar *key;
  gsize key_len, want;
  size_t len;
  int r, n = 0;

  if (argc != 3)
    {
      fprintf (stderr, "usage: srtpdecrypt PROFILE KEY-AND-SALT-BASE64\n");
      return 2;
    }
  memset (&policy, 0, sizeof policy);
  if (strcmp (argv[1], "SRTP_AEAD_AES_128_GCM") == 0)
    {
      srtp_crypto_policy_set_aes_gcm_128_16_auth (&policy.rtp);
      srtp_crypto_policy_set_aes_gcm_128_16_auth (&policy.rtcp);
      want = 16 + 12;
    }
  else if (strcmp (argv[1], "SRTP_AES128_CM_SHA1_80") == 0)
    {
      srtp_crypto_policy_set_rtp_default (&policy.rtp);
      srtp_crypto_policy_set_rtcp_default (&policy.rtcp);
      want = 16 + 14;
    }
  else
    {
      fprintf (stderr, "srtpdecrypt: unknown profile %s\n", argv[1]);
      return 2;
    }
  key = g_base64_decode (argv[2], &key_len);
  if (key_len != want)
    {
      fprintf (stderr, "srtpdecrypt: a key and salt of %zu bytes, not %zu\n", (size_t) key_len,
               (size_t) want);
      return 2;
    }
  policy.ssrc.type = ssrc_any_inbound;
  policy.key = key;
  policy.window_size = 1024;
  if (srtp_init () != srtp_err_status_ok || srtp_create (&session, &policy) != srtp_err_status_ok)
    {
      fprintf (stderr, "srtpdecrypt: libsrtp2 refused the policy\n");
      return 2;
    }
  while ((r = read_record (buf, 65536, &len)) == 1)
    {
      int l = (int) len;
      uint8_t head[2];

      if (srtp_unprotect (session, buf, &l) != srtp_err_status_ok)
        {
          fprintf (stderr, "srtpdecrypt: packet %d does not decrypt\n", n);
          return 1;
        }
      head[0] = (uint8_t) (l >> 8);
      head[1] = (uint8_t) l;
      fwrite (head, 1, 2, stdout);
      fwrite (buf, 1, (size_t) l, stdout);
      n++;
    }
  srtp_dealloc (session);
  srtp_shutdown ();
  g_free (key);
  if (r < 0)
    {
      fprintf (stderr, "srtpdecrypt: a truncated record after %d packets\n", n);
      return 1;
    }
  fprintf (stderr, "srtpdecrypt: %d packets decrypted\n", n);
  return 0;
}
