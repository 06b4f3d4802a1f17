/* Control messages. See ctlmsg.h and proto/PROTOCOL.md section "Control
 * messages" for the body of each type. */
#include "ctlmsg.h"

#include <string.h>

/* Bytes before the variable part of each body. */
#define CTLMSG_HELLO_LEN 1        /* version */
#define CTLMSG_STREAM_LEN 4       /* stream_id: ACCEPT, CLOSE */
#define CTLMSG_TOKEN_LEN 8        /* token: PING, PONG */
#define CTLMSG_FIN_LEN 12         /* stream_id, final size: FIN */
#define CTLMSG_OPEN_FIXED_LEN 5   /* stream_id, name_len */
#define CTLMSG_REFUSE_FIXED_LEN 6 /* stream_id, code, text_len */
#define CTLMSG_BYE_FIXED_LEN 2    /* code, text_len */

/* Stream 0 is the control stream itself: no message may name it. */
#define CTLMSG_CONTROL_STREAM 0

static int
ctlmsg_type_is_known (uint8_t type)
{
  return type >= CTLMSG_HELLO && type <= CTLMSG_OPEN_MEDIA;
}

static int
ctlmsg_name_char_ok (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
         || c == '.' || c == '_' || c == '-';
}

static int
ctlmsg_text_char_ok (char c)
{
  return c >= 0x20 && c <= 0x7e;
}

int
ctlmsg_name_is_valid (const char *name)
{
  if (name == NULL)
    return 0;
  size_t n = strnlen (name, CTLMSG_NAME_MAX + 1);
  if (n == 0 || n > CTLMSG_NAME_MAX)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!ctlmsg_name_char_ok (name[i]))
      return 0;
  return 1;
}

static uint32_t
ctlmsg_get_u32 (const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8
         | (uint32_t)p[3];
}

static void
ctlmsg_put_u32 (uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint64_t
ctlmsg_get_u64 (const uint8_t *p)
{
  return (uint64_t)ctlmsg_get_u32 (p) << 32 | ctlmsg_get_u32 (p + 4);
}

static void
ctlmsg_put_u64 (uint8_t *p, uint64_t v)
{
  ctlmsg_put_u32 (p, (uint32_t)(v >> 32));
  ctlmsg_put_u32 (p + 4, (uint32_t)v);
}

/* Copies a length-prefixed string of exactly @n bytes (the rest of the body)
 * into @dst (capacity @max + 1), checking each character. */
static int
ctlmsg_take_string (const uint8_t *src, size_t n, size_t max, int (*char_ok) (char),
                    char *dst)
{
  if (n > max)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!char_ok ((char)src[i]))
      return 0;
  memcpy (dst, src, n);
  dst[n] = '\0';
  return 1;
}

/* Parses the body of a message whose header said @type and @body_len. Every
 * body is fully specified: trailing bytes are an error. */
static enum ctlmsg_status
ctlmsg_parse_body (uint8_t type, const uint8_t *b, size_t body_len, struct ctlmsg *out)
{
  size_t n;

  switch (type)
    {
    case CTLMSG_HELLO:
      if (body_len < CTLMSG_HELLO_LEN || b[0] == 0)
        return CTLMSG_INVALID;
      out->version = b[0];
      /* A HELLO of our version is exactly one byte. A HELLO of another version
       * may be longer (a later version may extend it); we keep its version so
       * the agent can answer with BYE instead of a protocol error. */
      if (out->version == CTLMSG_VERSION && body_len != CTLMSG_HELLO_LEN)
        return CTLMSG_INVALID;
      return CTLMSG_OK;

    case CTLMSG_ACCEPT:
    case CTLMSG_CLOSE:
      if (body_len != CTLMSG_STREAM_LEN)
        return CTLMSG_INVALID;
      out->stream_id = ctlmsg_get_u32 (b);
      break;

    case CTLMSG_PING:
    case CTLMSG_PONG:
      if (body_len != CTLMSG_TOKEN_LEN)
        return CTLMSG_INVALID;
      out->token = ctlmsg_get_u64 (b);
      return CTLMSG_OK;

    case CTLMSG_FIN:
      if (body_len != CTLMSG_FIN_LEN)
        return CTLMSG_INVALID;
      out->stream_id = ctlmsg_get_u32 (b);
      out->token = ctlmsg_get_u64 (b + 4);
      break;

    case CTLMSG_OPEN:
    case CTLMSG_OPEN_DGRAM:
    case CTLMSG_OPEN_MEDIA:
      if (body_len < CTLMSG_OPEN_FIXED_LEN)
        return CTLMSG_INVALID;
      out->stream_id = ctlmsg_get_u32 (b);
      n = b[4];
      if (n == 0 || n != body_len - CTLMSG_OPEN_FIXED_LEN
          || !ctlmsg_take_string (b + CTLMSG_OPEN_FIXED_LEN, n, CTLMSG_NAME_MAX,
                                  ctlmsg_name_char_ok, out->name))
        return CTLMSG_INVALID;
      break;

    case CTLMSG_REFUSE:
      if (body_len < CTLMSG_REFUSE_FIXED_LEN)
        return CTLMSG_INVALID;
      out->stream_id = ctlmsg_get_u32 (b);
      out->code = b[4];
      n = b[5];
      if (n != body_len - CTLMSG_REFUSE_FIXED_LEN
          || !ctlmsg_take_string (b + CTLMSG_REFUSE_FIXED_LEN, n, CTLMSG_TEXT_MAX,
                                  ctlmsg_text_char_ok, out->text))
        return CTLMSG_INVALID;
      break;

    case CTLMSG_BYE:
      if (body_len < CTLMSG_BYE_FIXED_LEN)
        return CTLMSG_INVALID;
      out->code = b[0];
      n = b[1];
      if (n != body_len - CTLMSG_BYE_FIXED_LEN
          || !ctlmsg_take_string (b + CTLMSG_BYE_FIXED_LEN, n, CTLMSG_TEXT_MAX,
                                  ctlmsg_text_char_ok, out->text))
        return CTLMSG_INVALID;
      return CTLMSG_OK;

    default:
      return CTLMSG_INVALID;
    }

  /* OPEN, ACCEPT, REFUSE, CLOSE name a data stream. */
  if (out->stream_id == CTLMSG_CONTROL_STREAM)
    return CTLMSG_INVALID;
  return CTLMSG_OK;
}

enum ctlmsg_status
ctlmsg_parse (const uint8_t *buf, size_t len, struct ctlmsg *out, size_t *consumed)
{
  if (consumed != NULL)
    *consumed = 0;
  if (out != NULL)
    memset (out, 0, sizeof *out);
  if (out == NULL || consumed == NULL)
    return CTLMSG_INVALID;
  if (buf == NULL)
    len = 0;

  /* Judge what we have as early as possible, so that a hostile peer cannot
   * make us wait for a body we would refuse anyway. */
  if (len >= 1 && !ctlmsg_type_is_known (buf[0]))
    return CTLMSG_INVALID;
  if (len < CTLMSG_HEADER_LEN)
    return CTLMSG_INCOMPLETE;
  size_t body_len = (size_t)buf[1] << 8 | (size_t)buf[2];
  if (body_len > CTLMSG_MAX_BODY)
    return CTLMSG_INVALID;
  if (len - CTLMSG_HEADER_LEN < body_len)
    return CTLMSG_INCOMPLETE;

  out->type = buf[0];
  enum ctlmsg_status st
      = ctlmsg_parse_body (buf[0], buf + CTLMSG_HEADER_LEN, body_len, out);
  if (st != CTLMSG_OK)
    {
      memset (out, 0, sizeof *out);
      return st;
    }
  *consumed = CTLMSG_HEADER_LEN + body_len;
  return CTLMSG_OK;
}

/* Length of a NUL-terminated string inside a fixed array, or SIZE_MAX when the
 * array holds no NUL or a character @char_ok refuses. */
static size_t
ctlmsg_string_len (const char *s, size_t size, int (*char_ok) (char))
{
  size_t n = strnlen (s, size);
  if (n == size)
    return SIZE_MAX;
  for (size_t i = 0; i < n; i++)
    if (!char_ok (s[i]))
      return SIZE_MAX;
  return n;
}

size_t
ctlmsg_build (uint8_t *buf, size_t cap, const struct ctlmsg *msg)
{
  /* The largest body (REFUSE with 255 bytes of text) is 261 bytes. */
  uint8_t body[CTLMSG_MAX_BODY];
  size_t body_len = 0;
  size_t n;

  if (buf == NULL || msg == NULL)
    return 0;
  memset (body, 0, sizeof body);

  switch (msg->type)
    {
    case CTLMSG_HELLO:
      /* We only ever speak our version; its HELLO is one byte. */
      if (msg->version == 0)
        return 0;
      body[0] = msg->version;
      body_len = CTLMSG_HELLO_LEN;
      break;

    case CTLMSG_ACCEPT:
    case CTLMSG_CLOSE:
      if (msg->stream_id == CTLMSG_CONTROL_STREAM)
        return 0;
      ctlmsg_put_u32 (body, msg->stream_id);
      body_len = CTLMSG_STREAM_LEN;
      break;

    case CTLMSG_PING:
    case CTLMSG_PONG:
      ctlmsg_put_u64 (body, msg->token);
      body_len = CTLMSG_TOKEN_LEN;
      break;

    case CTLMSG_FIN:
      if (msg->stream_id == CTLMSG_CONTROL_STREAM)
        return 0;
      ctlmsg_put_u32 (body, msg->stream_id);
      ctlmsg_put_u64 (body + 4, msg->token);
      body_len = CTLMSG_FIN_LEN;
      break;

    case CTLMSG_OPEN:
    case CTLMSG_OPEN_DGRAM:
    case CTLMSG_OPEN_MEDIA:
      n = ctlmsg_string_len (msg->name, sizeof msg->name, ctlmsg_name_char_ok);
      if (msg->stream_id == CTLMSG_CONTROL_STREAM || n == 0 || n > CTLMSG_NAME_MAX)
        return 0;
      ctlmsg_put_u32 (body, msg->stream_id);
      body[4] = (uint8_t)n;
      memcpy (body + CTLMSG_OPEN_FIXED_LEN, msg->name, n);
      body_len = CTLMSG_OPEN_FIXED_LEN + n;
      break;

    case CTLMSG_REFUSE:
      n = ctlmsg_string_len (msg->text, sizeof msg->text, ctlmsg_text_char_ok);
      if (msg->stream_id == CTLMSG_CONTROL_STREAM || n > CTLMSG_TEXT_MAX)
        return 0;
      ctlmsg_put_u32 (body, msg->stream_id);
      body[4] = msg->code;
      body[5] = (uint8_t)n;
      memcpy (body + CTLMSG_REFUSE_FIXED_LEN, msg->text, n);
      body_len = CTLMSG_REFUSE_FIXED_LEN + n;
      break;

    case CTLMSG_BYE:
      n = ctlmsg_string_len (msg->text, sizeof msg->text, ctlmsg_text_char_ok);
      if (n > CTLMSG_TEXT_MAX)
        return 0;
      body[0] = msg->code;
      body[1] = (uint8_t)n;
      memcpy (body + CTLMSG_BYE_FIXED_LEN, msg->text, n);
      body_len = CTLMSG_BYE_FIXED_LEN + n;
      break;

    default:
      return 0;
    }

  if (cap < CTLMSG_HEADER_LEN || cap - CTLMSG_HEADER_LEN < body_len)
    return 0;
  buf[0] = msg->type;
  buf[1] = (uint8_t)(body_len >> 8);
  buf[2] = (uint8_t)body_len;
  memcpy (buf + CTLMSG_HEADER_LEN, body, body_len);
  return CTLMSG_HEADER_LEN + body_len;
}
