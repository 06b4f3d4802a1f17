/* The first TLS record of a connection, looked at before its handshake
 * starts (accept.c): sans-IO, for the fuzz target tests/fuzz/fuzz-tlshello.c. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* RFC 8446 section 5.1 (RFC 5246 section 6.2.1 alike): a record is a 5-byte
 * header (content type, version, 16-bit length) and at most 2^14 bytes of
 * plaintext; a ClientHello is plaintext of content type handshake (22). */
#define TLSHELLO_HEADER_LEN 5
#define TLSHELLO_PLAINTEXT_MAX 16384
#define TLSHELLO_TYPE_HANDSHAKE 22
/* Bytes that hold any whole first record. */
#define TLSHELLO_BUFFER_MAX (TLSHELLO_HEADER_LEN + TLSHELLO_PLAINTEXT_MAX)

typedef enum
{
  TLSHELLO_INCOMPLETE, /* a part of a handshake record: wait for more */
  TLSHELLO_COMPLETE,   /* a whole handshake record is in @data */
  TLSHELLO_INVALID,    /* not a TLS handshake record */
} TlsHelloStatus;

/* What the first @len bytes a client sent are. */
TlsHelloStatus tlshello_check (const uint8_t *data, size_t len);
