/* SRTP and SRTCP protection for a tunnel's media leg (RFC 3711, RFC 7714),
 * with libsrtp2 and the keys of the tunnel's DTLS handshake (RFC 5764): one
 * context protects what we send with our key, the other unprotects what the
 * peer sends with its key. Each holds a stream per SSRC, up to a limit. */
#pragma once

#include <glib.h>

#include "dtls.h"

/* The most bytes protection adds to a packet (the tag; 4 more for SRTCP's
 * index), and the room a buffer must have past the packet for libsrtp2 to
 * write into (it allows for a key identifier we never use). */
#define SRTPCTX_OVERHEAD_MAX 20
#define SRTPCTX_TRAILER_ROOM 148

typedef enum
{
  SRTPCTX_OK = 0,
  SRTPCTX_MALFORMED,      /* not RTP or RTCP version 2, or too short */
  SRTPCTX_AUTH_FAILED,    /* unprotect: the tag does not verify */
  SRTPCTX_REPLAYED,       /* unprotect: seen already, or too old for the window */
  SRTPCTX_TOO_MANY_SSRCS, /* a new SSRC beyond the limit */
  SRTPCTX_TOO_BIG,        /* protect: no room for the tag */
  SRTPCTX_FAILED,         /* libsrtp2 refused for another reason */
} SrtpCtxResult;

typedef struct _SrtpCtx SrtpCtx;

/* @keys from dtls_srtp_keys(); copied into libsrtp2, not kept. */
SrtpCtx *srtpctx_new (const DtlsSrtpKeys *keys, guint max_ssrcs, GError **error);
void srtpctx_free (SrtpCtx *ctx);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SrtpCtx, srtpctx_free)

/* Whether a datagram that starts with a byte of 128..191 (RFC 7983) is RTCP
 * rather than RTP: its second byte, the packet type, is 192..223 (RFC 5761
 * section 4). */
gboolean srtpctx_is_rtcp (const guint8 *buf, gsize len);

/* Protects the RTP or RTCP packet in @buf (*@len bytes, room for @cap) in
 * place; *@len grows by the tag. */
SrtpCtxResult srtpctx_protect (SrtpCtx *ctx, guint8 *buf, gsize *len, gsize cap);
/* Checks and decrypts the SRTP or SRTCP packet in @buf in place. */
SrtpCtxResult srtpctx_unprotect (SrtpCtx *ctx, guint8 *buf, gsize *len);

/* The SSRCs each direction has a stream for. */
guint srtpctx_n_ssrcs_out (SrtpCtx *ctx);
guint srtpctx_n_ssrcs_in (SrtpCtx *ctx);

const char *srtpctx_result_text (SrtpCtxResult result);
