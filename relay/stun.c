/* Sans-IO STUN/TURN codec; see stun.h. */
#include "stun.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

static uint16_t
rd16 (const uint8_t *p)
{
  return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t
rd32 (const uint8_t *p)
{
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void
wr16 (uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void
wr32 (uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static size_t
pad4 (size_t n)
{
  return (n + 3) & ~(size_t)3;
}

/* RFC 8489 section 5: M11..M7 C1 M6..M4 C0 M3..M0. */
uint16_t
stun_message_type (uint16_t method, enum stun_class cls)
{
  unsigned c = (unsigned)cls;
  return (uint16_t)((method & 0x000F) | ((method & 0x0070) << 1)
                    | ((method & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7));
}

bool
stun_is_stun (const uint8_t *buf, size_t len)
{
  return len >= STUN_HEADER_LEN && (buf[0] & 0xC0) == 0
         && rd32 (buf + 4) == STUN_MAGIC_COOKIE;
}

enum stun_status
stun_parse (const uint8_t *buf, size_t len, struct stun_msg *msg)
{
  memset (msg, 0, sizeof *msg);
  msg->integrity_idx = -1;
  msg->fingerprint_idx = -1;
  if (!stun_is_stun (buf, len))
    return STUN_NOT_STUN;
  size_t body = rd16 (buf + 2);
  /* RFC 8489 section 5: the length is a multiple of 4 (padding). Over UDP a
   * datagram is exactly one message. */
  if (body % 4 != 0)
    return STUN_NOT_STUN;
  if (STUN_HEADER_LEN + body != len)
    return STUN_INVALID;

  msg->buf = buf;
  msg->len = len;
  msg->type = rd16 (buf);
  msg->method = (uint16_t)((msg->type & 0x000F) | ((msg->type & 0x00E0) >> 1)
                           | ((msg->type & 0x3E00) >> 2));
  msg->cls = (enum stun_class) (((msg->type >> 4) & 1) | ((msg->type >> 7) & 2));
  memcpy (msg->txid, buf + 8, STUN_TXID_LEN);

  size_t off = STUN_HEADER_LEN;
  while (off < len)
    {
      if (len - off < 4)
        return STUN_INVALID;
      uint16_t type = rd16 (buf + off);
      size_t alen = rd16 (buf + off + 2);
      if (pad4 (alen) > len - off - 4)
        return STUN_INVALID;
      size_t value = off + 4;
      off = value + pad4 (alen);

      /* RFC 8489 section 14.7: FINGERPRINT is the last attribute. */
      if (msg->fingerprint_idx >= 0)
        return STUN_INVALID;
      if (type == STUN_ATTR_FINGERPRINT && alen != 4)
        return STUN_INVALID;
      if (type == STUN_ATTR_MESSAGE_INTEGRITY && alen != STUN_INTEGRITY_LEN)
        return STUN_INVALID;
      /* RFC 8489 section 14.5: attributes after MESSAGE-INTEGRITY are
       * ignored, except FINGERPRINT. */
      if (msg->integrity_idx >= 0 && type != STUN_ATTR_FINGERPRINT)
        continue;
      if (msg->n_attrs == STUN_MAX_ATTRS)
        return STUN_INVALID;
      if (type == STUN_ATTR_MESSAGE_INTEGRITY)
        msg->integrity_idx = (int)msg->n_attrs;
      else if (type == STUN_ATTR_FINGERPRINT)
        msg->fingerprint_idx = (int)msg->n_attrs;
      msg->attrs[msg->n_attrs++]
          = (struct stun_attr){ .type = type, .offset = value, .len = alen };
    }
  return STUN_OK;
}

const struct stun_attr *
stun_msg_find (const struct stun_msg *msg, uint16_t type)
{
  for (size_t i = 0; i < msg->n_attrs; i++)
    if (msg->attrs[i].type == type)
      return &msg->attrs[i];
  return NULL;
}

/* RFC 8489 section 14.2: family 0x01 (IPv4) or 0x02 (IPv6); port XOR the
 * cookie's top 16 bits; address XOR the cookie (and transaction id). */
bool
stun_msg_get_xor_addr (const struct stun_msg *msg, uint16_t type, struct stun_addr *out)
{
  const struct stun_attr *a = stun_msg_find (msg, type);
  return a != NULL && stun_attr_get_xor_addr (msg, a, out);
}

bool
stun_attr_get_xor_addr (const struct stun_msg *msg, const struct stun_attr *a,
                        struct stun_addr *out)
{
  if (a->len < 4)
    return false;
  const uint8_t *v = msg->buf + a->offset;
  uint8_t mask[16];
  wr32 (mask, STUN_MAGIC_COOKIE);
  memcpy (mask + 4, msg->txid, STUN_TXID_LEN);
  memset (out, 0, sizeof *out);
  size_t iplen;
  if (v[1] == 0x01)
    {
      out->family = 4;
      iplen = 4;
    }
  else if (v[1] == 0x02)
    {
      out->family = 6;
      iplen = 16;
    }
  else
    return false;
  if (a->len != 4 + iplen)
    return false;
  out->port = (uint16_t)(rd16 (v + 2) ^ (STUN_MAGIC_COOKIE >> 16));
  for (size_t i = 0; i < iplen; i++)
    out->ip[i] = v[4 + i] ^ mask[i];
  return true;
}

bool
stun_msg_get_u32 (const struct stun_msg *msg, uint16_t type, uint32_t *out)
{
  const struct stun_attr *a = stun_msg_find (msg, type);
  if (a == NULL || a->len != 4)
    return false;
  *out = rd32 (msg->buf + a->offset);
  return true;
}

/* RFC 8656 section 18.13: protocol number, then 3 reserved bytes. */
bool
stun_msg_get_requested_transport (const struct stun_msg *msg, uint8_t *protocol)
{
  const struct stun_attr *a = stun_msg_find (msg, STUN_ATTR_REQUESTED_TRANSPORT);
  if (a == NULL || a->len != 4)
    return false;
  *protocol = msg->buf[a->offset];
  return true;
}

/* RFC 8656 section 18.1: 16-bit number, then 16 reserved bits. */
bool
stun_msg_get_channel_number (const struct stun_msg *msg, uint16_t *channel)
{
  const struct stun_attr *a = stun_msg_find (msg, STUN_ATTR_CHANNEL_NUMBER);
  if (a == NULL || a->len != 4)
    return false;
  *channel = rd16 (msg->buf + a->offset);
  return true;
}

bool
stun_msg_get_string (const struct stun_msg *msg, uint16_t type, const char **str,
                     size_t *len)
{
  size_t max;
  switch (type)
    {
    case STUN_ATTR_USERNAME:
      max = STUN_MAX_USERNAME_LEN;
      break;
    case STUN_ATTR_REALM:
      max = STUN_MAX_REALM_LEN;
      break;
    case STUN_ATTR_NONCE:
      max = STUN_MAX_NONCE_LEN;
      break;
    case STUN_ATTR_SOFTWARE:
      max = 763; /* RFC 8489 section 14.14 */
      break;
    default:
      return false;
    }
  const struct stun_attr *a = stun_msg_find (msg, type);
  if (a == NULL || a->len > max)
    return false;
  *str = (const char *)msg->buf + a->offset;
  *len = a->len;
  return true;
}

/* RFC 8489 section 14.8: 21 reserved bits, class (3 bits, 3..6), number
 * (8 bits, 0..99), then the reason phrase. */
bool
stun_msg_get_error_code (const struct stun_msg *msg, unsigned *code, const char **reason,
                         size_t *reason_len)
{
  const struct stun_attr *a = stun_msg_find (msg, STUN_ATTR_ERROR_CODE);
  if (a == NULL || a->len < 4 || a->len - 4 > STUN_MAX_REASON_LEN)
    return false;
  const uint8_t *v = msg->buf + a->offset;
  unsigned cls = v[2] & 0x07, num = v[3];
  if (cls < 3 || cls > 6 || num > 99)
    return false;
  *code = cls * 100 + num;
  *reason = (const char *)v + 4;
  *reason_len = a->len - 4;
  return true;
}

bool
stun_msg_get_data (const struct stun_msg *msg, const uint8_t **data, size_t *len)
{
  const struct stun_attr *a = stun_msg_find (msg, STUN_ATTR_DATA);
  if (a == NULL)
    return false;
  *data = msg->buf + a->offset;
  *len = a->len;
  return true;
}

static bool
hmac_sha1 (const uint8_t *key, size_t key_len, const uint8_t *a, size_t a_len,
           const uint8_t *b, size_t b_len, uint8_t out[static STUN_INTEGRITY_LEN])
{
  bool ok = false;
  EVP_MAC *mac = EVP_MAC_fetch (NULL, "HMAC", NULL);
  EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new (mac) : NULL;
  OSSL_PARAM params[] = {
    OSSL_PARAM_construct_utf8_string (OSSL_MAC_PARAM_DIGEST, (char *)"SHA1", 0),
    OSSL_PARAM_construct_end (),
  };
  size_t out_len = 0;
  if (ctx != NULL && EVP_MAC_init (ctx, key, key_len, params) == 1
      && EVP_MAC_update (ctx, a, a_len) == 1
      && (b_len == 0 || EVP_MAC_update (ctx, b, b_len) == 1)
      && EVP_MAC_final (ctx, out, &out_len, STUN_INTEGRITY_LEN) == 1
      && out_len == STUN_INTEGRITY_LEN)
    ok = true;
  EVP_MAC_CTX_free (ctx);
  EVP_MAC_free (mac);
  return ok;
}

bool
stun_msg_check_integrity (const struct stun_msg *msg, const uint8_t *key, size_t key_len)
{
  if (msg->integrity_idx < 0)
    return false;
  const struct stun_attr *a = &msg->attrs[msg->integrity_idx];
  size_t start = a->offset - 4; /* the attribute header */
  uint8_t header[STUN_HEADER_LEN];
  memcpy (header, msg->buf, STUN_HEADER_LEN);
  /* The length as if MESSAGE-INTEGRITY were the last attribute. */
  wr16 (header + 2, (uint16_t)(start + 4 + STUN_INTEGRITY_LEN - STUN_HEADER_LEN));
  uint8_t mac[STUN_INTEGRITY_LEN];
  if (!hmac_sha1 (key, key_len, header, sizeof header, msg->buf + STUN_HEADER_LEN,
                  start - STUN_HEADER_LEN, mac))
    return false;
  return CRYPTO_memcmp (mac, msg->buf + a->offset, STUN_INTEGRITY_LEN) == 0;
}

/* IEEE 802.3 CRC-32, reflected, four bits at a time. */
uint32_t
stun_crc32 (const uint8_t *buf, size_t len)
{
  static const uint32_t table[16] = {
    0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
    0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
    0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
  };
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; i++)
    {
      crc ^= buf[i];
      crc = (crc >> 4) ^ table[crc & 0x0F];
      crc = (crc >> 4) ^ table[crc & 0x0F];
    }
  return crc ^ 0xFFFFFFFFu;
}

bool
stun_msg_check_fingerprint (const struct stun_msg *msg)
{
  if (msg->fingerprint_idx < 0)
    return false;
  const struct stun_attr *a = &msg->attrs[msg->fingerprint_idx];
  /* FINGERPRINT is last (stun_parse), so the header length already covers it. */
  uint32_t want = stun_crc32 (msg->buf, a->offset - 4) ^ STUN_FINGERPRINT_XOR;
  return rd32 (msg->buf + a->offset) == want;
}

bool
stun_long_term_key (const char *username, size_t username_len, const char *realm,
                    size_t realm_len, const char *password, size_t password_len,
                    uint8_t key[static 16])
{
  bool ok = false;
  unsigned int n = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  if (ctx != NULL && EVP_DigestInit_ex (ctx, EVP_md5 (), NULL) == 1
      && EVP_DigestUpdate (ctx, username, username_len) == 1
      && EVP_DigestUpdate (ctx, ":", 1) == 1
      && EVP_DigestUpdate (ctx, realm, realm_len) == 1
      && EVP_DigestUpdate (ctx, ":", 1) == 1
      && EVP_DigestUpdate (ctx, password, password_len) == 1
      && EVP_DigestFinal_ex (ctx, key, &n) == 1 && n == 16)
    ok = true;
  EVP_MD_CTX_free (ctx);
  return ok;
}

/* Builder */

static void
builder_set_length (struct stun_builder *b, size_t len)
{
  wr16 (b->buf + 2, (uint16_t)(len - STUN_HEADER_LEN));
}

void
stun_builder_init (struct stun_builder *b, uint8_t *buf, size_t cap, uint16_t method,
                   enum stun_class cls, const uint8_t txid[static STUN_TXID_LEN])
{
  b->buf = buf;
  b->cap = cap < STUN_MAX_MESSAGE_LEN ? cap : STUN_MAX_MESSAGE_LEN;
  b->len = 0;
  b->failed = cap < STUN_HEADER_LEN;
  if (b->failed)
    return;
  memset (buf, 0, STUN_HEADER_LEN);
  wr16 (buf, stun_message_type (method, cls));
  wr32 (buf + 4, STUN_MAGIC_COOKIE);
  memcpy (buf + 8, txid, STUN_TXID_LEN);
  b->len = STUN_HEADER_LEN;
}

/* Reserves room for an attribute header and a padded value of len bytes,
 * zeroing the padding, and returns the value's position, or NULL. */
static uint8_t *
builder_reserve (struct stun_builder *b, uint16_t type, size_t len)
{
  if (b->failed || len > 0xFFFF || pad4 (len) + 4 > b->cap - b->len)
    {
      b->failed = true;
      return NULL;
    }
  uint8_t *p = b->buf + b->len;
  wr16 (p, type);
  wr16 (p + 2, (uint16_t)len);
  memset (p + 4 + len, 0, pad4 (len) - len);
  b->len += 4 + pad4 (len);
  builder_set_length (b, b->len);
  return p + 4;
}

void
stun_builder_add (struct stun_builder *b, uint16_t type, const void *value, size_t len)
{
  uint8_t *p = builder_reserve (b, type, len);
  if (p != NULL && len > 0)
    memcpy (p, value, len);
}

void
stun_builder_add_u32 (struct stun_builder *b, uint16_t type, uint32_t value)
{
  uint8_t *p = builder_reserve (b, type, 4);
  if (p != NULL)
    wr32 (p, value);
}

void
stun_builder_add_xor_addr (struct stun_builder *b, uint16_t type,
                           const struct stun_addr *addr)
{
  size_t iplen = addr->family == 6 ? 16 : 4;
  uint8_t *p = builder_reserve (b, type, 4 + iplen);
  if (p == NULL)
    return;
  uint8_t mask[16];
  wr32 (mask, STUN_MAGIC_COOKIE);
  memcpy (mask + 4, b->buf + 8, STUN_TXID_LEN);
  p[0] = 0;
  p[1] = addr->family == 6 ? 0x02 : 0x01;
  wr16 (p + 2, (uint16_t)(addr->port ^ (STUN_MAGIC_COOKIE >> 16)));
  for (size_t i = 0; i < iplen; i++)
    p[4 + i] = addr->ip[i] ^ mask[i];
}

void
stun_builder_add_error (struct stun_builder *b, unsigned code, const char *reason)
{
  size_t rlen = strlen (reason);
  if (code < 300 || code > 699 || rlen > STUN_MAX_REASON_LEN)
    {
      b->failed = true;
      return;
    }
  uint8_t *p = builder_reserve (b, STUN_ATTR_ERROR_CODE, 4 + rlen);
  if (p == NULL)
    return;
  p[0] = 0;
  p[1] = 0;
  p[2] = (uint8_t)(code / 100);
  p[3] = (uint8_t)(code % 100);
  memcpy (p + 4, reason, rlen);
}

void
stun_builder_add_integrity (struct stun_builder *b, const uint8_t *key, size_t key_len)
{
  if (b->failed || 4 + STUN_INTEGRITY_LEN > b->cap - b->len)
    {
      b->failed = true;
      return;
    }
  size_t start = b->len;
  uint8_t mac[STUN_INTEGRITY_LEN];
  builder_set_length (b, start + 4 + STUN_INTEGRITY_LEN);
  if (!hmac_sha1 (key, key_len, b->buf, start, NULL, 0, mac))
    {
      b->failed = true;
      return;
    }
  stun_builder_add (b, STUN_ATTR_MESSAGE_INTEGRITY, mac, sizeof mac);
}

void
stun_builder_add_fingerprint (struct stun_builder *b)
{
  if (b->failed || 8 > b->cap - b->len)
    {
      b->failed = true;
      return;
    }
  builder_set_length (b, b->len + 8);
  uint32_t crc = stun_crc32 (b->buf, b->len) ^ STUN_FINGERPRINT_XOR;
  stun_builder_add_u32 (b, STUN_ATTR_FINGERPRINT, crc);
}

size_t
stun_builder_finish (struct stun_builder *b)
{
  return b->failed ? 0 : b->len;
}
