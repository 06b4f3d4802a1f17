/* TLS reads and writes of the relay's stream connections that no other code
 * on the thread can mislead. SSL_get_error looks at the thread's OpenSSL
 * error queue: an error some other call left there (another connection's,
 * the core's HMAC, a certificate reload) turns a harmless "want read" into
 * SSL_ERROR_SSL and the connection is dropped (issue 13, item 1). So every
 * call starts from a clean queue, and the result is taken right after the
 * call, before anything else can touch the queue. No I/O of its own: the SSL
 * object does it through its BIOs. */
#pragma once

#include <stddef.h>

#include <openssl/ssl.h>

/* Room for one OpenSSL error line (ERR_error_string_n). */
#define RELAY_TLS_DETAIL_LEN 256

enum relay_tls_result
{
  RELAY_TLS_OK,         /* *done bytes moved (at least one) */
  RELAY_TLS_WANT_READ,  /* call again when the socket is readable */
  RELAY_TLS_WANT_WRITE, /* call again when the socket is writable */
  RELAY_TLS_CLOSED,     /* the peer sent close_notify */
  RELAY_TLS_FAILED,     /* anything else: close the connection */
};

/* SSL_read_ex / SSL_write_ex (which also move the handshake on). On
 * RELAY_TLS_FAILED, detail holds OpenSSL's reason ("" if it gave none); the
 * error queue is empty again on return. */
enum relay_tls_result relay_tls_read (SSL *ssl, void *buf, size_t len, size_t *done,
                                      char detail[static RELAY_TLS_DETAIL_LEN]);
enum relay_tls_result relay_tls_write (SSL *ssl, const void *buf, size_t len,
                                       size_t *done,
                                       char detail[static RELAY_TLS_DETAIL_LEN]);
