/* Control messages: carried on the tunnel's control stream (stream 0), a
 * reliable byte stream. Each message:
 *
 *   +-------+---------------+----------------+
 *   | type  | length (u16)  | body (length)  |
 *   +-------+---------------+----------------+
 *
 * The first message each side sends is HELLO, whose first body byte is the
 * protocol version. See proto/PROTOCOL.md for the bodies. No allocation, no I/O. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CTLMSG_VERSION 2
#define CTLMSG_HEADER_LEN 3
#define CTLMSG_MAX_BODY 512
#define CTLMSG_MAX_LEN (CTLMSG_HEADER_LEN + CTLMSG_MAX_BODY)
/* Service names: 1 to 63 characters of [A-Za-z0-9._-]. */
#define CTLMSG_NAME_MAX 63
#define CTLMSG_TEXT_MAX 255

enum ctlmsg_type
{
  CTLMSG_HELLO = 1,  /* version */
  CTLMSG_OPEN = 2,   /* stream_id, name: open a stream to service NAME */
  CTLMSG_ACCEPT = 3, /* stream_id */
  CTLMSG_REFUSE = 4, /* stream_id, code, text */
  CTLMSG_CLOSE = 5,  /* stream_id */
  CTLMSG_PING = 6,   /* token */
  CTLMSG_PONG = 7,   /* token */
  CTLMSG_BYE = 8,    /* code, text: the peer is going away */
  CTLMSG_FIN = 9,    /* stream_id, token = final size: no more bytes after that */
  CTLMSG_OPEN_DGRAM = 10, /* stream_id, name: open a UDP flow to service NAME */
  CTLMSG_OPEN_MEDIA = 11, /* stream_id, name: open the media leg (SRTP) to service NAME */
};

enum ctlmsg_refuse_code
{
  CTLMSG_REFUSE_NOT_EXPOSED = 1,    /* no such service */
  CTLMSG_REFUSE_CONNECT_FAILED = 2, /* the service did not accept the connection */
  CTLMSG_REFUSE_LIMIT = 3,          /* too many streams */
  CTLMSG_REFUSE_NOT_TRUSTED = 4,    /* the peer is not trusted */
  CTLMSG_REFUSE_BAD_STREAM = 5,     /* stream id in use or of the wrong parity */
  CTLMSG_REFUSE_WRONG_KIND = 6,     /* a TCP service asked for UDP, or any other mix of kinds */
};

enum ctlmsg_status
{
  CTLMSG_OK = 0,
  CTLMSG_INCOMPLETE, /* need more bytes */
  CTLMSG_INVALID,    /* malformed: the control stream must be closed */
};

struct ctlmsg
{
  uint8_t type;
  uint8_t version;    /* HELLO */
  uint8_t code;       /* REFUSE, BYE */
  uint32_t stream_id; /* OPEN, OPEN_DGRAM, ACCEPT, REFUSE, CLOSE */
  uint64_t token;     /* PING, PONG; FIN: the stream's final size in bytes */
  char name[CTLMSG_NAME_MAX + 1]; /* OPEN, OPEN_DGRAM */
  char text[CTLMSG_TEXT_MAX + 1]; /* REFUSE, BYE; printable ASCII */
};

/* Parses the first message in @buf. On CTLMSG_OK sets *@consumed to its length. */
enum ctlmsg_status ctlmsg_parse (const uint8_t *buf, size_t len, struct ctlmsg *out,
                                 size_t *consumed);

/* Writes @msg into @buf. Returns its length, or 0 if it does not fit or @msg is
 * not valid (unknown type, bad name, over-long text). */
size_t ctlmsg_build (uint8_t *buf, size_t cap, const struct ctlmsg *msg);

/* True for 1 to CTLMSG_NAME_MAX characters of [A-Za-z0-9._-]. */
int ctlmsg_name_is_valid (const char *name);
