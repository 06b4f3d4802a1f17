/* TLS reads and writes from a clean error queue; see tlsio.h. */
#include "tlsio.h"

#include <openssl/err.h>

static enum relay_tls_result
tlsio_result (SSL *ssl, int ret, char detail[static RELAY_TLS_DETAIL_LEN])
{
  /* Right after the call: nothing has touched the queue since. */
  int err = SSL_get_error (ssl, ret);
  detail[0] = '\0';
  switch (err)
    {
    case SSL_ERROR_NONE:
      return RELAY_TLS_OK;
    case SSL_ERROR_WANT_READ:
      return RELAY_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
      return RELAY_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
      ERR_clear_error ();
      return RELAY_TLS_CLOSED;
    default:
      if (ERR_peek_last_error () != 0)
        ERR_error_string_n (ERR_peek_last_error (), detail, RELAY_TLS_DETAIL_LEN);
      ERR_clear_error ();
      return RELAY_TLS_FAILED;
    }
}

enum relay_tls_result
relay_tls_read (SSL *ssl, void *buf, size_t len, size_t *done,
                char detail[static RELAY_TLS_DETAIL_LEN])
{
  *done = 0;
  ERR_clear_error ();
  return tlsio_result (ssl, SSL_read_ex (ssl, buf, len, done), detail);
}

enum relay_tls_result
relay_tls_write (SSL *ssl, const void *buf, size_t len, size_t *done,
                 char detail[static RELAY_TLS_DETAIL_LEN])
{
  *done = 0;
  ERR_clear_error ();
  return tlsio_result (ssl, SSL_write_ex (ssl, buf, len, done), detail);
}
