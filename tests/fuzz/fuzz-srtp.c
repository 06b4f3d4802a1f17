/* libFuzzer target: the media leg's SRTP and SRTCP (agent/srtpctx.c over
 * libsrtp2), with keys fixed here. The first byte picks what the rest is:
 *   0, 1: RTP or RTCP from a local application (GCM, AES-CM): protected by
 *         one side and unprotected by the other, which must give it back
 *         byte for byte;
 *   2, 3: a packet from the network (GCM, AES-CM): unprotected, which must
 *         refuse it or give back no more bytes than came. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "srtpctx.h"

#define BUF (16448 + SRTPCTX_TRAILER_ROOM)

static SrtpCtx *ctx[2][2]; /* [profile][side] */

static void
make (DtlsSrtpProfile profile, SrtpCtx **a, SrtpCtx **b)
{
  DtlsSrtpKeys ka = { .profile = profile }, kb;

  ka.salt_len = profile == DTLS_SRTP_AEAD_AES_128_GCM ? 12 : 14;
  for (size_t i = 0; i < sizeof ka.local; i++)
    {
      ka.local[i] = (uint8_t) (i * 3 + 1);
      ka.remote[i] = (uint8_t) (i * 5 + 2);
    }
  kb = ka;
  memcpy (kb.local, ka.remote, sizeof kb.local);
  memcpy (kb.remote, ka.local, sizeof kb.remote);
  *a = srtpctx_new (&ka, 16, NULL);
  *b = srtpctx_new (&kb, 16, NULL);
  if (*a == NULL || *b == NULL)
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static uint8_t buf[BUF], plain[BUF];
  size_t len;
  int mode, profile;

  if (ctx[0][0] == NULL)
    {
      make (DTLS_SRTP_AEAD_AES_128_GCM, &ctx[0][0], &ctx[0][1]);
      make (DTLS_SRTP_AES128_CM_SHA1_80, &ctx[1][0], &ctx[1][1]);
    }
  if (size < 1 || size - 1 > 16448)
    return 0;
  mode = data[0] & 3;
  profile = mode & 1;
  len = size - 1;
  memcpy (buf, data + 1, len);
  if (mode < 2)
    {
      memcpy (plain, buf, len);
      if (srtpctx_protect (ctx[profile][0], buf, &len, sizeof buf) != SRTPCTX_OK)
        return 0;
      /* Refused as a replay if the same packet came before: fine. */
      switch (srtpctx_unprotect (ctx[profile][1], buf, &len))
        {
        case SRTPCTX_OK:
          if (len != size - 1 || memcmp (buf, plain, len) != 0)
            abort ();
          break;
        case SRTPCTX_REPLAYED:
          break;
        default:
          abort ();
        }
      return 0;
    }
  if (srtpctx_unprotect (ctx[profile][1], buf, &len) == SRTPCTX_OK && len > size - 1)
    abort ();
  return 0;
}
