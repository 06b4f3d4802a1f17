/* Unit tests of tlsio.c: a TLS connection of the relay is not dropped
 * because of an error that other code left on the thread's OpenSSL error
 * queue (issue 13, item 1). A server and a client SSL joined in memory, no
 * sockets. */
#include <string.h>

#include <glib.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tlsio.h"

/* Bytes each way that the in-memory link holds: small, so that a write can
 * block. */
#define LINK_BUF 4096

typedef struct
{
  SSL_CTX *server_ctx, *client_ctx;
  SSL *server, *client;
} Fixture;

/* A throwaway P-256 key and self-signed certificate for the server. */
static void
use_test_certificate (SSL_CTX *ctx)
{
  EVP_PKEY *key = EVP_EC_gen ("P-256");
  X509 *cert = X509_new ();
  g_assert_nonnull (key);
  g_assert_nonnull (cert);
  ASN1_INTEGER_set (X509_get_serialNumber (cert), 1);
  X509_gmtime_adj (X509_getm_notBefore (cert), 0);
  X509_gmtime_adj (X509_getm_notAfter (cert), 3600);
  X509_set_pubkey (cert, key);
  X509_NAME_add_entry_by_txt (X509_get_subject_name (cert), "CN", MBSTRING_ASC,
                              (const unsigned char *)"relay.test", -1, -1, 0);
  X509_set_issuer_name (cert, X509_get_subject_name (cert));
  g_assert_cmpint (X509_sign (cert, key, EVP_sha256 ()), >, 0);
  g_assert_cmpint (SSL_CTX_use_certificate (ctx, cert), ==, 1);
  g_assert_cmpint (SSL_CTX_use_PrivateKey (ctx, key), ==, 1);
  X509_free (cert);
  EVP_PKEY_free (key);
}

/* A client and a server SSL joined by a BIO pair, handshake done. */
static void
setup (Fixture *f, gconstpointer data)
{
  f->server_ctx = SSL_CTX_new (TLS_server_method ());
  f->client_ctx = SSL_CTX_new (TLS_client_method ());
  g_assert_nonnull (f->server_ctx);
  g_assert_nonnull (f->client_ctx);
  use_test_certificate (f->server_ctx);
  f->server = SSL_new (f->server_ctx);
  f->client = SSL_new (f->client_ctx);
  BIO *sbio, *cbio;
  g_assert_cmpint (BIO_new_bio_pair (&sbio, LINK_BUF, &cbio, LINK_BUF), ==, 1);
  SSL_set_bio (f->server, sbio, sbio);
  SSL_set_bio (f->client, cbio, cbio);
  SSL_set_accept_state (f->server);
  SSL_set_connect_state (f->client);
  for (int i = 0;
       i < 50 && !(SSL_is_init_finished (f->server) && SSL_is_init_finished (f->client));
       i++)
    {
      (void)SSL_do_handshake (f->client);
      (void)SSL_do_handshake (f->server);
    }
  g_assert_true (SSL_is_init_finished (f->server) && SSL_is_init_finished (f->client));
  ERR_clear_error ();
}

static void
teardown (Fixture *f, gconstpointer data)
{
  SSL_free (f->server);
  SSL_free (f->client);
  SSL_CTX_free (f->server_ctx);
  SSL_CTX_free (f->client_ctx);
  ERR_clear_error ();
}

/* What another component's failure leaves behind (libcurl's, in the agent
 * of issue 13; here anything on the relay's thread), in the middle of a
 * connection's life (OpenSSL clears the queue when a handshake starts). */
static void
stale_error (void)
{
  ERR_raise (ERR_LIB_SSL, SSL_R_UNEXPECTED_EOF_WHILE_READING);
  g_assert_cmpuint (ERR_peek_error (), !=, 0);
}

/* The hazard itself: SSL_get_error reads the queue, so a stale entry turns
 * "no input yet" on an established connection into a fatal error. */
static void
test_hazard (Fixture *f, gconstpointer data)
{
  uint8_t buf[64];
  stale_error ();
  int r = SSL_read (f->server, buf, sizeof buf);
  g_assert_cmpint (r, <=, 0);
  g_assert_cmpint (SSL_get_error (f->server, r), ==, SSL_ERROR_SSL);
}

static void
test_stale_error_read (Fixture *f, gconstpointer data)
{
  uint8_t buf[64];
  size_t done = 1;
  char detail[RELAY_TLS_DETAIL_LEN];
  stale_error ();
  g_assert_cmpint (relay_tls_read (f->server, buf, sizeof buf, &done, detail), ==,
                   RELAY_TLS_WANT_READ);
  g_assert_cmpuint (done, ==, 0);
  /* The connection still works. */
  g_assert_cmpint (SSL_write (f->client, "ping", 4), ==, 4);
  stale_error ();
  g_assert_cmpint (relay_tls_read (f->server, buf, sizeof buf, &done, detail), ==,
                   RELAY_TLS_OK);
  g_assert_cmpmem (buf, done, "ping", 4);
}

/* A client that does not read: the link fills and the write must wait. */
static void
test_stale_error_write (Fixture *f, gconstpointer data)
{
  static uint8_t block[1024];
  size_t done = 0;
  char detail[RELAY_TLS_DETAIL_LEN];
  enum relay_tls_result r = RELAY_TLS_OK;
  for (int i = 0; i < 100 && r == RELAY_TLS_OK; i++)
    {
      stale_error ();
      r = relay_tls_write (f->server, block, sizeof block, &done, detail);
    }
  g_assert_cmpint (r, ==, RELAY_TLS_WANT_WRITE);
}

/* A real failure is still one, with OpenSSL's reason, and leaves the queue
 * clean for the next connection. */
static void
test_real_failure (Fixture *f, gconstpointer data)
{
  /* Header of a 32-byte application-data record, then its body. */
  uint8_t junk[5 + 32] = { 0x17, 0x03, 0x03, 0x00, 0x20 };
  for (size_t i = 5; i < sizeof junk; i++)
    junk[i] = (uint8_t)i;
  uint8_t buf[64];
  size_t done;
  char detail[RELAY_TLS_DETAIL_LEN];
  /* A forged application-data record: it fails to decrypt. */
  BIO *wire = SSL_get_wbio (f->client);
  g_assert_cmpint (BIO_write (wire, junk, sizeof junk), ==, (int)sizeof junk);
  g_assert_cmpint (relay_tls_read (f->server, buf, sizeof buf, &done, detail), ==,
                   RELAY_TLS_FAILED);
  g_assert_cmpuint (strlen (detail), >, 0);
  g_assert_cmpuint (ERR_peek_error (), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define T(path, fn) g_test_add ("/relay/tlsio/" path, Fixture, NULL, setup, fn, teardown)
  T ("hazard", test_hazard);
  T ("stale-error-read", test_stale_error_read);
  T ("stale-error-write", test_stale_error_write);
  T ("real-failure", test_real_failure);
#undef T
  return g_test_run ();
}
