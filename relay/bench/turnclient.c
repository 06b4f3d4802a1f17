/* One TURN allocation's control exchange (turnclient.h). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth.h"
#include "turnclient.h"

/* RFC 8656 section 14.7: REQUESTED-TRANSPORT carries the IP protocol number
 * in its first byte; 17 is UDP. */
#define TURNCLIENT_PROTO_UDP 17u

static enum turnclient_step
turnclient_fail (struct turnclient *tc, const char *what)
{
  tc->state = TURNCLIENT_FAILED;
  snprintf (tc->error, sizeof tc->error, "%s", what);
  return TURNCLIENT_DONE;
}

static bool
turnclient_set_string (char *dst, size_t cap, size_t *dst_len, const char *src,
                       size_t len)
{
  if (len >= cap)
    return false;
  memcpy (dst, src, len);
  dst[len] = '\0';
  *dst_len = len;
  return true;
}

bool
turnclient_init (struct turnclient *tc, const uint8_t *secret, size_t secret_len,
                 const char *name, int64_t expiry, uint32_t lifetime,
                 const struct stun_addr *peer, uint16_t channel)
{
  memset (tc, 0, sizeof *tc);
  tc->state = TURNCLIENT_IDLE;
  int n
      = snprintf (tc->username, sizeof tc->username, "%lld:%s", (long long)expiry, name);
  if (n < 0 || (size_t)n >= sizeof tc->username)
    {
      turnclient_fail (tc, "username too long");
      return false;
    }
  tc->username_len = (size_t)n;
  if (channel < 0x4000 || channel > 0x4FFF)
    {
      turnclient_fail (tc, "channel number out of 0x4000-0x4FFF");
      return false;
    }
  if (!relay_rest_password (secret, secret_len, tc->username, tc->username_len,
                            tc->password))
    {
      turnclient_fail (tc, "HMAC-SHA1 of the username failed");
      return false;
    }
  tc->lifetime = lifetime;
  tc->peer = *peer;
  tc->channel = channel;
  return true;
}

void
turnclient_clear (struct turnclient *tc)
{
  OPENSSL_cleanse (tc->password, sizeof tc->password);
  OPENSSL_cleanse (tc->key, sizeof tc->key);
  OPENSSL_cleanse (tc->req, sizeof tc->req);
}

/* Builds the request of the current state into tc->req with a fresh
 * transaction id; authenticated once a 401 has told the realm and nonce. */
static enum turnclient_step
turnclient_build (struct turnclient *tc, int64_t now_ms)
{
  uint16_t method;
  switch (tc->state)
    {
    case TURNCLIENT_ALLOCATING:
      method = STUN_METHOD_ALLOCATE;
      break;
    case TURNCLIENT_BINDING:
      method = STUN_METHOD_CHANNEL_BIND;
      break;
    case TURNCLIENT_RELEASING:
      method = STUN_METHOD_REFRESH;
      break;
    default:
      return turnclient_fail (tc, "no request in this state");
    }
  if (RAND_bytes (tc->txid, sizeof tc->txid) != 1)
    return turnclient_fail (tc, "RAND_bytes failed");
  struct stun_builder b;
  memset (tc->req, 0, sizeof tc->req);
  stun_builder_init (&b, tc->req, sizeof tc->req, method, STUN_CLASS_REQUEST, tc->txid);
  if (method == STUN_METHOD_ALLOCATE)
    {
      stun_builder_add_u32 (&b, STUN_ATTR_REQUESTED_TRANSPORT,
                            TURNCLIENT_PROTO_UDP << 24);
      stun_builder_add_u32 (&b, STUN_ATTR_LIFETIME, tc->lifetime);
    }
  else if (method == STUN_METHOD_CHANNEL_BIND)
    {
      stun_builder_add_u32 (&b, STUN_ATTR_CHANNEL_NUMBER, (uint32_t)tc->channel << 16);
      stun_builder_add_xor_addr (&b, STUN_ATTR_XOR_PEER_ADDRESS, &tc->peer);
    }
  else
    stun_builder_add_u32 (&b, STUN_ATTR_LIFETIME, 0);
  if (tc->have_key)
    {
      stun_builder_add (&b, STUN_ATTR_USERNAME, tc->username, tc->username_len);
      stun_builder_add (&b, STUN_ATTR_REALM, tc->realm, tc->realm_len);
      stun_builder_add (&b, STUN_ATTR_NONCE, tc->nonce, tc->nonce_len);
      stun_builder_add_integrity (&b, tc->key, sizeof tc->key);
    }
  tc->req_len = stun_builder_finish (&b);
  if (tc->req_len == 0)
    return turnclient_fail (tc, "request does not fit the buffer");
  tc->sent_ms = now_ms;
  tc->sends = 1;
  return TURNCLIENT_SEND;
}

void
turnclient_restart (struct turnclient *tc)
{
  tc->state = TURNCLIENT_IDLE;
  tc->mismatch = false;
  tc->error[0] = '\0';
}

enum turnclient_step
turnclient_allocate (struct turnclient *tc, int64_t now_ms)
{
  if (tc->state != TURNCLIENT_IDLE)
    return turnclient_fail (tc, "Allocate: not idle");
  tc->state = TURNCLIENT_ALLOCATING;
  tc->nonce_retries = 0;
  return turnclient_build (tc, now_ms);
}

enum turnclient_step
turnclient_rebind (struct turnclient *tc, int64_t now_ms)
{
  if (tc->state != TURNCLIENT_BOUND)
    return turnclient_fail (tc, "ChannelBind: not bound");
  tc->state = TURNCLIENT_BINDING;
  tc->nonce_retries = 0;
  return turnclient_build (tc, now_ms);
}

enum turnclient_step
turnclient_release (struct turnclient *tc, int64_t now_ms)
{
  if (tc->state != TURNCLIENT_BOUND)
    return turnclient_fail (tc, "Refresh: not bound");
  tc->state = TURNCLIENT_RELEASING;
  tc->nonce_retries = 0;
  return turnclient_build (tc, now_ms);
}

static const char *
turnclient_method_name (enum turnclient_state state)
{
  switch (state)
    {
    case TURNCLIENT_ALLOCATING:
      return "Allocate";
    case TURNCLIENT_BINDING:
      return "ChannelBind";
    case TURNCLIENT_RELEASING:
      return "Refresh";
    default:
      return "?";
    }
}

/* 401 and 438 carry the realm and nonce to use (RFC 8489 section 9.2.4). A
 * 401 to a request that already used this very nonce and realm means the
 * credentials are wrong: retrying cannot help. */
static enum turnclient_step
turnclient_on_challenge (struct turnclient *tc, const struct stun_msg *msg, unsigned code,
                         int64_t now_ms)
{
  const char *realm, *nonce;
  size_t realm_len, nonce_len;
  char what[128];
  const char *name = turnclient_method_name (tc->state);
  if (!stun_msg_get_string (msg, STUN_ATTR_REALM, &realm, &realm_len)
      || !stun_msg_get_string (msg, STUN_ATTR_NONCE, &nonce, &nonce_len))
    {
      snprintf (what, sizeof what, "%s: %u without REALM and NONCE", name, code);
      return turnclient_fail (tc, what);
    }
  bool same = tc->have_key && realm_len == tc->realm_len
              && memcmp (realm, tc->realm, realm_len) == 0 && nonce_len == tc->nonce_len
              && memcmp (nonce, tc->nonce, nonce_len) == 0;
  if ((code == 401 && same) || tc->nonce_retries >= TURNCLIENT_MAX_NONCE_RETRIES)
    {
      snprintf (what, sizeof what, "%s: %u %s", name, code,
                code == 401 ? "Unauthorized (wrong secret or realm?)" : "Stale Nonce");
      return turnclient_fail (tc, what);
    }
  tc->nonce_retries++;
  if (!turnclient_set_string (tc->realm, sizeof tc->realm, &tc->realm_len, realm,
                              realm_len)
      || !turnclient_set_string (tc->nonce, sizeof tc->nonce, &tc->nonce_len, nonce,
                                 nonce_len))
    return turnclient_fail (tc, "REALM or NONCE too long");
  if (!stun_long_term_key (tc->username, tc->username_len, tc->realm, tc->realm_len,
                           tc->password, strlen (tc->password), tc->key))
    return turnclient_fail (tc, "MD5 of the long-term key failed");
  tc->have_key = true;
  return turnclient_build (tc, now_ms);
}

enum turnclient_step
turnclient_input (struct turnclient *tc, const uint8_t *buf, size_t len, int64_t now_ms)
{
  if (tc->state != TURNCLIENT_ALLOCATING && tc->state != TURNCLIENT_BINDING
      && tc->state != TURNCLIENT_RELEASING)
    return tc->state == TURNCLIENT_IDLE ? TURNCLIENT_WAIT : TURNCLIENT_DONE;
  struct stun_msg msg;
  if (stun_parse (buf, len, &msg) != STUN_OK
      || (msg.cls != STUN_CLASS_SUCCESS && msg.cls != STUN_CLASS_ERROR)
      || memcmp (msg.txid, tc->txid, STUN_TXID_LEN) != 0)
    return TURNCLIENT_WAIT;
  const char *name = turnclient_method_name (tc->state);
  char what[160];
  /* An answer that claims integrity must have it (RFC 8489 section 9.2.5). */
  if (msg.integrity_idx >= 0 && tc->have_key
      && !stun_msg_check_integrity (&msg, tc->key, sizeof tc->key))
    {
      snprintf (what, sizeof what, "%s: answer with a wrong MESSAGE-INTEGRITY", name);
      return turnclient_fail (tc, what);
    }
  if (msg.cls == STUN_CLASS_ERROR)
    {
      unsigned code = 0;
      const char *reason = "";
      size_t reason_len = 0;
      if (!stun_msg_get_error_code (&msg, &code, &reason, &reason_len))
        {
          snprintf (what, sizeof what, "%s: error answer without ERROR-CODE", name);
          return turnclient_fail (tc, what);
        }
      if (code == 401 || code == 438)
        return turnclient_on_challenge (tc, &msg, code, now_ms);
      /* RFC 8656 section 7.3: 437 to a Refresh: the allocation is gone;
       * to an Allocate: the 5-tuple is taken. */
      if (code == 437 && tc->state == TURNCLIENT_RELEASING)
        {
          tc->state = TURNCLIENT_RELEASED;
          return TURNCLIENT_DONE;
        }
      tc->mismatch = code == 437 && tc->state == TURNCLIENT_ALLOCATING;
      snprintf (what, sizeof what, "%s: %u %.*s", name, code,
                (int)(reason_len > 80 ? 80 : reason_len), reason);
      return turnclient_fail (tc, what);
    }
  switch (tc->state)
    {
    case TURNCLIENT_ALLOCATING:
      if (!stun_msg_get_xor_addr (&msg, STUN_ATTR_XOR_RELAYED_ADDRESS, &tc->relayed))
        return turnclient_fail (tc, "Allocate: success without XOR-RELAYED-ADDRESS");
      tc->state = TURNCLIENT_BINDING;
      tc->nonce_retries = 0;
      return turnclient_build (tc, now_ms);
    case TURNCLIENT_BINDING:
      tc->state = TURNCLIENT_BOUND;
      return TURNCLIENT_DONE;
    default:
      tc->state = TURNCLIENT_RELEASED;
      return TURNCLIENT_DONE;
    }
}

static int64_t
turnclient_rto_ms (const struct turnclient *tc)
{
  /* Doubles with every send: 200, 400, ... (RFC 8489 section 6.2.1). */
  unsigned shift = tc->sends > 0 ? tc->sends - 1 : 0;
  return (int64_t)TURNCLIENT_RTO_MS << (shift > 10 ? 10 : shift);
}

enum turnclient_step
turnclient_tick (struct turnclient *tc, int64_t now_ms)
{
  if (tc->state != TURNCLIENT_ALLOCATING && tc->state != TURNCLIENT_BINDING
      && tc->state != TURNCLIENT_RELEASING)
    return tc->state == TURNCLIENT_IDLE ? TURNCLIENT_WAIT : TURNCLIENT_DONE;
  if (now_ms - tc->sent_ms < turnclient_rto_ms (tc))
    return TURNCLIENT_WAIT;
  if (tc->sends >= TURNCLIENT_MAX_SENDS)
    {
      char what[96];
      snprintf (what, sizeof what, "%s: no answer after %u sends",
                turnclient_method_name (tc->state), tc->sends);
      return turnclient_fail (tc, what);
    }
  tc->sends++;
  tc->sent_ms = now_ms;
  return TURNCLIENT_SEND;
}

int64_t
turnclient_next_ms (const struct turnclient *tc, int64_t now_ms)
{
  if (tc->state != TURNCLIENT_ALLOCATING && tc->state != TURNCLIENT_BINDING
      && tc->state != TURNCLIENT_RELEASING)
    return INT64_MAX;
  int64_t left = tc->sent_ms + turnclient_rto_ms (tc) - now_ms;
  return left > 0 ? left : 0;
}
