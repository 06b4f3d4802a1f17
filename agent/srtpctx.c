/* SRTP contexts of a media leg; see srtpctx.h. */
#include "srtpctx.h"

#include <string.h>

#include <srtp2/srtp.h>

#define RTP_HEADER_MIN 12
#define RTCP_HEADER_MIN 8
/* The replay window (RFC 3711 section 3.3.2 asks for at least 64): packets
 * up to this far behind the newest are still accepted once. */
#define SRTPCTX_REPLAY_WINDOW 1024

G_STATIC_ASSERT (SRTPCTX_TRAILER_ROOM >= SRTP_MAX_TRAILER_LEN + 4);

typedef struct
{
  srtp_t session;
  guint32 *ssrcs; /* the SSRCs it has a stream for, to hold to the limit */
  guint n_ssrcs;
} Direction;

struct _SrtpCtx
{
  Direction out, in;
  guint max_ssrcs;
};

static gpointer
library_init (gpointer unused)
{
  return GINT_TO_POINTER (srtp_init () == srtp_err_status_ok);
}

static gboolean
direction_init (Direction *d, const DtlsSrtpKeys *keys, gboolean outbound, guint max_ssrcs)
{
  srtp_policy_t policy;
  guint8 key[DTLS_SRTP_KEY_LEN + DTLS_SRTP_SALT_MAX];
  srtp_err_status_t status;

  memset (&policy, 0, sizeof policy);
  if (keys->profile == DTLS_SRTP_AEAD_AES_128_GCM)
    {
      srtp_crypto_policy_set_aes_gcm_128_16_auth (&policy.rtp);
      srtp_crypto_policy_set_aes_gcm_128_16_auth (&policy.rtcp);
    }
  else
    {
      srtp_crypto_policy_set_rtp_default (&policy.rtp);
      srtp_crypto_policy_set_rtcp_default (&policy.rtcp);
    }
  memcpy (key, outbound ? keys->local : keys->remote, sizeof key);
  policy.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
  policy.key = key;
  policy.window_size = SRTPCTX_REPLAY_WINDOW;
  policy.allow_repeat_tx = 0; /* a GCM nonce is never used twice */
  status = srtp_create (&d->session, &policy);
  memset (key, 0, sizeof key);
  d->ssrcs = g_new0 (guint32, max_ssrcs);
  return status == srtp_err_status_ok;
}

SrtpCtx *
srtpctx_new (const DtlsSrtpKeys *keys, guint max_ssrcs, GError **error)
{
  static GOnce once = G_ONCE_INIT;
  g_autoptr (SrtpCtx) self = NULL;

  g_return_val_if_fail (keys != NULL && max_ssrcs > 0, NULL);
  if (keys->profile != DTLS_SRTP_AEAD_AES_128_GCM && keys->profile != DTLS_SRTP_AES128_CM_SHA1_80)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "no SRTP keys: the peer's agent did not negotiate DTLS-SRTP");
      return NULL;
    }
  if (!GPOINTER_TO_INT (g_once (&once, library_init, NULL)))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "libsrtp2 did not initialise");
      return NULL;
    }
  self = g_new0 (SrtpCtx, 1);
  self->max_ssrcs = max_ssrcs;
  if (!direction_init (&self->out, keys, TRUE, max_ssrcs)
      || !direction_init (&self->in, keys, FALSE, max_ssrcs))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "libsrtp2 refused the %s keys", dtls_srtp_profile_name (keys->profile));
      return NULL;
    }
  return g_steal_pointer (&self);
}

static void
direction_clear (Direction *d)
{
  if (d->session != NULL)
    srtp_dealloc (d->session);
  g_free (d->ssrcs);
}

void
srtpctx_free (SrtpCtx *self)
{
  if (self == NULL)
    return;
  direction_clear (&self->out);
  direction_clear (&self->in);
  g_free (self);
}

gboolean
srtpctx_is_rtcp (const guint8 *buf, gsize len)
{
  return len >= 2 && buf[1] >= 192 && buf[1] <= 223;
}

static guint32
read_u32 (const guint8 *p)
{
  return (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3];
}

/* The packet's SSRC (RTP: bytes 8..11; RTCP: the sender's, 4..7), after the
 * checks that libsrtp2 would make less plainly. */
static gboolean
packet_ssrc (const guint8 *buf, gsize len, gboolean *is_rtcp, guint32 *ssrc)
{
  if (len < 1 || (buf[0] >> 6) != 2)
    return FALSE;
  *is_rtcp = srtpctx_is_rtcp (buf, len);
  if (*is_rtcp)
    {
      if (len < RTCP_HEADER_MIN)
        return FALSE;
      *ssrc = read_u32 (buf + 4);
      return TRUE;
    }
  if (len < RTP_HEADER_MIN)
    return FALSE;
  *ssrc = read_u32 (buf + 8);
  return TRUE;
}

/* Room for @ssrc in @d: it has one already, or one more is allowed. */
static gboolean
direction_admit (SrtpCtx *self, Direction *d, guint32 ssrc)
{
  for (guint i = 0; i < d->n_ssrcs; i++)
    if (d->ssrcs[i] == ssrc)
      return TRUE;
  return d->n_ssrcs < self->max_ssrcs;
}

/* Counts @ssrc once the packet passed: only packets that verify may take
 * one of the places. */
static void
direction_note (Direction *d, guint32 ssrc)
{
  for (guint i = 0; i < d->n_ssrcs; i++)
    if (d->ssrcs[i] == ssrc)
      return;
  d->ssrcs[d->n_ssrcs++] = ssrc;
}

SrtpCtxResult
srtpctx_protect (SrtpCtx *self, guint8 *buf, gsize *len, gsize cap)
{
  gboolean rtcp;
  guint32 ssrc;
  int n = (int) *len;
  srtp_err_status_t status;

  if (!packet_ssrc (buf, *len, &rtcp, &ssrc) || *len > G_MAXINT - SRTPCTX_OVERHEAD_MAX)
    return SRTPCTX_MALFORMED;
  /* libsrtp2 writes up to SRTP_MAX_TRAILER_LEN (+4 for SRTCP) past the end. */
  if (cap < *len || cap - *len < SRTPCTX_TRAILER_ROOM)
    return SRTPCTX_TOO_BIG;
  if (!direction_admit (self, &self->out, ssrc))
    return SRTPCTX_TOO_MANY_SSRCS;
  status = rtcp ? srtp_protect_rtcp (self->out.session, buf, &n)
                : srtp_protect (self->out.session, buf, &n);
  if (status != srtp_err_status_ok)
    return status == srtp_err_status_replay_fail || status == srtp_err_status_replay_old
               ? SRTPCTX_REPLAYED
               : SRTPCTX_FAILED;
  direction_note (&self->out, ssrc);
  *len = (gsize) n;
  return SRTPCTX_OK;
}

SrtpCtxResult
srtpctx_unprotect (SrtpCtx *self, guint8 *buf, gsize *len)
{
  gboolean rtcp;
  guint32 ssrc;
  int n = (int) *len;
  srtp_err_status_t status;

  if (!packet_ssrc (buf, *len, &rtcp, &ssrc) || *len > G_MAXINT)
    return SRTPCTX_MALFORMED;
  if (!direction_admit (self, &self->in, ssrc))
    return SRTPCTX_TOO_MANY_SSRCS;
  status = rtcp ? srtp_unprotect_rtcp (self->in.session, buf, &n)
                : srtp_unprotect (self->in.session, buf, &n);
  switch (status)
    {
    case srtp_err_status_ok:
      direction_note (&self->in, ssrc);
      *len = (gsize) n;
      return SRTPCTX_OK;
    case srtp_err_status_auth_fail:
      return SRTPCTX_AUTH_FAILED;
    case srtp_err_status_replay_fail:
    case srtp_err_status_replay_old:
      return SRTPCTX_REPLAYED;
    case srtp_err_status_bad_param:
    case srtp_err_status_parse_err:
      return SRTPCTX_MALFORMED;
    default:
      return SRTPCTX_FAILED;
    }
}

guint
srtpctx_n_ssrcs_out (SrtpCtx *self)
{
  return self->out.n_ssrcs;
}

guint
srtpctx_n_ssrcs_in (SrtpCtx *self)
{
  return self->in.n_ssrcs;
}

const char *
srtpctx_result_text (SrtpCtxResult result)
{
  switch (result)
    {
    case SRTPCTX_OK:
      return "ok";
    case SRTPCTX_MALFORMED:
      return "not an RTP or RTCP packet";
    case SRTPCTX_AUTH_FAILED:
      return "authentication failed";
    case SRTPCTX_REPLAYED:
      return "replayed or too old";
    case SRTPCTX_TOO_MANY_SSRCS:
      return "too many SSRCs";
    case SRTPCTX_TOO_BIG:
      return "too large";
    case SRTPCTX_FAILED:
    default:
      return "libsrtp2 failed";
    }
}
