/* Sans-IO STUN/TURN message codec (RFC 8489, RFC 8656).
 *
 * stun_parse() checks a whole datagram and indexes its attributes into a
 * caller-owned struct stun_msg, without allocating and without copying: the
 * message points into the caller's buffer, which must outlive it. Typed
 * accessors check every attribute's length again. The builder writes into a
 * caller-owned buffer of explicit capacity and zeroes all padding. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 8489 section 5: 20-byte header, magic cookie, 96-bit transaction id. */
#define STUN_HEADER_LEN 20
#define STUN_MAGIC_COOKIE 0x2112A442u
#define STUN_TXID_LEN 12
/* RFC 8489 section 5: the length field is 16 bits and counts attributes only. */
#define STUN_MAX_MESSAGE_LEN (STUN_HEADER_LEN + 65535u)
/* Our own bound on attributes indexed per message; a message with more is
 * refused (no RFC limit; 64 is far above anything a client sends). */
#define STUN_MAX_ATTRS 64
/* RFC 8489 section 14.3: USERNAME is less than 509 bytes (after SASLprep). */
#define STUN_MAX_USERNAME_LEN 508
/* RFC 8489 sections 14.9 and 14.10: REALM and NONCE are less than 128
 * characters, which can be as long as 763 bytes. */
#define STUN_MAX_REALM_LEN 763
#define STUN_MAX_NONCE_LEN 763
/* RFC 8489 section 14.8: reason phrase less than 128 characters (763 bytes). */
#define STUN_MAX_REASON_LEN 763
/* RFC 8489 section 14.5: HMAC-SHA1, 20 bytes. */
#define STUN_INTEGRITY_LEN 20
/* RFC 8489 section 14.7: CRC-32 XOR-ed with 0x5354554e. */
#define STUN_FINGERPRINT_XOR 0x5354554eu

/* Classes (RFC 8489 section 5) and methods (RFC 8489, RFC 8656 section 17). */
enum stun_class
{
  STUN_CLASS_REQUEST = 0,
  STUN_CLASS_INDICATION = 1,
  STUN_CLASS_SUCCESS = 2,
  STUN_CLASS_ERROR = 3,
};

enum stun_method
{
  STUN_METHOD_BINDING = 0x001,
  STUN_METHOD_ALLOCATE = 0x003,
  STUN_METHOD_REFRESH = 0x004,
  STUN_METHOD_SEND = 0x006,
  STUN_METHOD_DATA = 0x007,
  STUN_METHOD_CREATE_PERMISSION = 0x008,
  STUN_METHOD_CHANNEL_BIND = 0x009,
};

enum stun_attr_type
{
  STUN_ATTR_MAPPED_ADDRESS = 0x0001,
  STUN_ATTR_USERNAME = 0x0006,
  STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,
  STUN_ATTR_ERROR_CODE = 0x0009,
  STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,
  STUN_ATTR_CHANNEL_NUMBER = 0x000C,
  STUN_ATTR_LIFETIME = 0x000D,
  STUN_ATTR_XOR_PEER_ADDRESS = 0x0012,
  STUN_ATTR_DATA = 0x0013,
  STUN_ATTR_REALM = 0x0014,
  STUN_ATTR_NONCE = 0x0015,
  STUN_ATTR_XOR_RELAYED_ADDRESS = 0x0016,
  STUN_ATTR_REQUESTED_ADDRESS_FAMILY = 0x0017,
  STUN_ATTR_EVEN_PORT = 0x0018,
  STUN_ATTR_REQUESTED_TRANSPORT = 0x0019,
  STUN_ATTR_DONT_FRAGMENT = 0x001A,
  STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
  STUN_ATTR_RESERVATION_TOKEN = 0x0022,
  STUN_ATTR_SOFTWARE = 0x8022,
  STUN_ATTR_FINGERPRINT = 0x8028,
};

/* An address as carried by STUN: family 4 or 6, port in host order, IP in
 * network order (4 or 16 bytes used). */
struct stun_addr
{
  uint8_t family;
  uint16_t port;
  uint8_t ip[16];
};

struct stun_attr
{
  uint16_t type;
  size_t offset; /* of the value, from the start of the message */
  size_t len;    /* of the value, without padding */
};

struct stun_msg
{
  const uint8_t *buf;
  size_t len; /* whole message, header included */
  uint16_t type;
  uint16_t method;
  enum stun_class cls;
  uint8_t txid[STUN_TXID_LEN];
  size_t n_attrs;
  struct stun_attr attrs[STUN_MAX_ATTRS];
  /* Index in attrs of MESSAGE-INTEGRITY and FINGERPRINT, or -1. */
  int integrity_idx;
  int fingerprint_idx;
};

enum stun_status
{
  STUN_OK = 0,
  STUN_NOT_STUN, /* first two bits, cookie or length do not fit STUN */
  STUN_INVALID,  /* looked like STUN, but the attributes are malformed */
};

/* True when the first bytes may be a STUN message (RFC 7983 demultiplexing:
 * first two bits zero, magic cookie present). */
bool stun_is_stun (const uint8_t *buf, size_t len);

enum stun_status stun_parse (const uint8_t *buf, size_t len, struct stun_msg *msg);

const struct stun_attr *stun_msg_find (const struct stun_msg *msg, uint16_t type);

/* Typed accessors: false when the attribute is absent or malformed. */
bool stun_attr_get_xor_addr (const struct stun_msg *msg, const struct stun_attr *attr,
                             struct stun_addr *out);
bool stun_msg_get_xor_addr (const struct stun_msg *msg, uint16_t type,
                            struct stun_addr *out);
bool stun_msg_get_u32 (const struct stun_msg *msg, uint16_t type, uint32_t *out);
bool stun_msg_get_requested_transport (const struct stun_msg *msg, uint8_t *protocol);
bool stun_msg_get_channel_number (const struct stun_msg *msg, uint16_t *channel);
/* USERNAME, REALM, NONCE, SOFTWARE: bytes not NUL-terminated, length-checked
 * against the RFC limit for the type. */
bool stun_msg_get_string (const struct stun_msg *msg, uint16_t type, const char **str,
                          size_t *len);
bool stun_msg_get_error_code (const struct stun_msg *msg, unsigned *code,
                              const char **reason, size_t *reason_len);
bool stun_msg_get_data (const struct stun_msg *msg, const uint8_t **data, size_t *len);

/* RFC 8489 section 14.5: HMAC-SHA1 over the message up to the attribute
 * before MESSAGE-INTEGRITY, with the header length covering MESSAGE-INTEGRITY.
 * Compared with CRYPTO_memcmp. False when absent. */
bool stun_msg_check_integrity (const struct stun_msg *msg, const uint8_t *key,
                               size_t key_len);
/* RFC 8489 section 14.7. False when absent. */
bool stun_msg_check_fingerprint (const struct stun_msg *msg);

uint32_t stun_crc32 (const uint8_t *buf, size_t len);

/* Long-term credential key (RFC 8489 section 9.2.2): MD5(username ":" realm
 * ":" password). The password must already be SASLprep-ed. */
bool stun_long_term_key (const char *username, size_t username_len, const char *realm,
                         size_t realm_len, const char *password, size_t password_len,
                         uint8_t key[static 16]);

/* Builder. Every add refuses to write past cap and then marks the builder
 * failed; stun_builder_finish() returns 0 for a failed builder. */
struct stun_builder
{
  uint8_t *buf;
  size_t cap;
  size_t len;
  bool failed;
};

void stun_builder_init (struct stun_builder *b, uint8_t *buf, size_t cap, uint16_t method,
                        enum stun_class cls, const uint8_t txid[static STUN_TXID_LEN]);
void stun_builder_add (struct stun_builder *b, uint16_t type, const void *value,
                       size_t len);
void stun_builder_add_u32 (struct stun_builder *b, uint16_t type, uint32_t value);
void stun_builder_add_xor_addr (struct stun_builder *b, uint16_t type,
                                const struct stun_addr *addr);
void stun_builder_add_error (struct stun_builder *b, unsigned code, const char *reason);
void stun_builder_add_integrity (struct stun_builder *b, const uint8_t *key,
                                 size_t key_len);
void stun_builder_add_fingerprint (struct stun_builder *b);
size_t stun_builder_finish (struct stun_builder *b);

uint16_t stun_message_type (uint16_t method, enum stun_class cls);
