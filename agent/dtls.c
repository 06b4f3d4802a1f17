/* DTLS 1.2 session over memory BIOs; see dtls.h. */
#include "dtls.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "peerid.h"

/* Our own limit on a handshake, on top of OpenSSL's retransmission backoff:
 * ICE already proved the path works, so a handshake that takes longer than this
 * will not finish. */
#define DTLS_HANDSHAKE_TIMEOUT_MS 15000

struct _Dtls
{
  GMainContext *context;
  SSL_CTX *ctx;
  SSL *ssl;
  const guint8 *in; /* the datagram dtls_receive() was given, for the in BIO */
  gsize in_len;      /* 0 once OpenSSL read it */
  gboolean is_client;
  gboolean connected;
  gboolean failed;
  gboolean peer_mismatch;
  char expected[PEERID_SIZE];
  char seen[PEERID_SIZE];
  DtlsCallbacks cb;
  gpointer user_data;
  GSource *retransmit;
  GSource *deadline;
};

G_DEFINE_QUARK (p2ptun-dtls-error-quark, dtls_error)

static BIO_METHOD *out_method;
static BIO_METHOD *in_method;

/* The write side is a BIO of our own so that each datagram OpenSSL writes
 * stays one datagram on the wire (a memory BIO would run them together). */
static int
out_write (BIO *bio, const char *buf, int len)
{
  Dtls *self = BIO_get_data (bio);

  if (len <= 0)
    return 0;
  self->cb.send_record ((const guint8 *) buf, (gsize) len, self->user_data);
  return len;
}

static long
out_ctrl (BIO *bio, int cmd, long num, void *ptr)
{
  switch (cmd)
    {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
      return DTLS_LINK_MTU;
    default:
      return 0;
    }
}

static int
out_create (BIO *bio)
{
  BIO_set_init (bio, 1);
  return 1;
}

/* The read side hands OpenSSL the caller's datagram, whole, once: one copy
 * (into OpenSSL's record buffer) where a memory BIO took two. */
static int
in_read (BIO *bio, char *buf, int len)
{
  Dtls *self = BIO_get_data (bio);
  gsize n;

  BIO_clear_retry_flags (bio);
  if (self->in_len == 0 || len <= 0)
    {
      BIO_set_retry_read (bio);
      return -1;
    }
  /* A datagram longer than OpenSSL's buffer is cut, and DTLS drops it. */
  n = MIN (self->in_len, (gsize) len);
  memcpy (buf, self->in, n);
  self->in_len = 0;
  return (int) n;
}

static long
in_ctrl (BIO *bio, int cmd, long num, void *ptr)
{
  Dtls *self = BIO_get_data (bio);

  switch (cmd)
    {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_PENDING:
      return self ? (long) self->in_len : 0;
    default:
      return 0;
    }
}

static gpointer
out_method_init (gpointer unused)
{
  BIO_METHOD *m = BIO_meth_new (BIO_get_new_index () | BIO_TYPE_SOURCE_SINK, "p2ptun-dtls-out");
  BIO_METHOD *in = BIO_meth_new (BIO_get_new_index () | BIO_TYPE_SOURCE_SINK, "p2ptun-dtls-in");

  g_assert (m != NULL && in != NULL);
  BIO_meth_set_write (m, out_write);
  BIO_meth_set_ctrl (m, out_ctrl);
  BIO_meth_set_create (m, out_create);
  BIO_meth_set_read (in, in_read);
  BIO_meth_set_ctrl (in, in_ctrl);
  BIO_meth_set_create (in, out_create);
  out_method = m;
  in_method = in;
  return NULL;
}

/* Every SSL_* call below starts with ERR_clear_error(): SSL_get_error()
 * reads the thread's error queue, which this session shares with libcurl's
 * TLS and the relay shims. A stale entry left there by another connection
 * (the signaling server's, killed mid-request) made a plain WANT_READ look
 * like a broken session and ended healthy tunnels. */
static char *
ssl_error_text (void)
{
  unsigned long e = ERR_get_error ();
  char buf[256];

  ERR_clear_error ();
  if (e == 0)
    return g_strdup ("no detail");
  ERR_error_string_n (e, buf, sizeof buf);
  return g_strdup (buf);
}

static void
dtls_stop_timers (Dtls *self)
{
  if (self->retransmit)
    {
      g_source_destroy (self->retransmit);
      g_clear_pointer (&self->retransmit, g_source_unref);
    }
  if (self->deadline)
    {
      g_source_destroy (self->deadline);
      g_clear_pointer (&self->deadline, g_source_unref);
    }
}

static void
dtls_fail (Dtls *self, DtlsError code, const char *format, ...) G_GNUC_PRINTF (3, 4);

static void
dtls_fail (Dtls *self, DtlsError code, const char *format, ...)
{
  g_autoptr (GError) error = NULL;
  va_list ap;

  if (self->failed)
    return;
  self->failed = TRUE;
  dtls_stop_timers (self);
  va_start (ap, format);
  error = g_error_new_valist (DTLS_ERROR, code, format, ap);
  va_end (ap);
  self->cb.failed (error, self->user_data);
}

/* Depth 0 is the peer's own certificate: it is self-signed, so the chain's
 * verdict does not matter; the key hash does. */
static int
dtls_verify (int preverify_ok, X509_STORE_CTX *store)
{
  SSL *ssl = X509_STORE_CTX_get_ex_data (store, SSL_get_ex_data_X509_STORE_CTX_idx ());
  Dtls *self = SSL_get_app_data (ssl);
  X509 *cert = X509_STORE_CTX_get_current_cert (store);

  if (X509_STORE_CTX_get_error_depth (store) != 0)
    return 1;
  if (cert == NULL || !peerid_from_x509 (cert, self->seen))
    {
      self->peer_mismatch = TRUE;
      return 0;
    }
  if (!peerid_equal (self->seen, self->expected))
    {
      self->peer_mismatch = TRUE;
      return 0;
    }
  return 1;
}

static gboolean on_retransmit (gpointer data);

/* OpenSSL's first retransmission comes after 1 s; on a path ICE has just
 * checked, a lost flight is better resent after 100 ms, doubling up to 2 s. */
static unsigned int
dtls_timer (SSL *ssl, unsigned int timer_us)
{
  if (timer_us == 0)
    return 100000;
  return MIN (timer_us * 2, 2000000u);
}

static void
dtls_arm_retransmit (Dtls *self)
{
  struct timeval tv;

  if (self->retransmit)
    {
      g_source_destroy (self->retransmit);
      g_clear_pointer (&self->retransmit, g_source_unref);
    }
  if (self->connected || self->failed || DTLSv1_get_timeout (self->ssl, &tv) != 1)
    return;
  self->retransmit = g_timeout_source_new ((guint) (tv.tv_sec * 1000 + tv.tv_usec / 1000) + 1);
  g_source_set_callback (self->retransmit, on_retransmit, self, NULL);
  g_source_attach (self->retransmit, self->context);
}

static gboolean
on_retransmit (gpointer data)
{
  Dtls *self = data;

  g_clear_pointer (&self->retransmit, g_source_unref);
  if (DTLSv1_handle_timeout (self->ssl) < 0)
    {
      g_autofree char *why = ssl_error_text ();
      dtls_fail (self, DTLS_ERROR_HANDSHAKE, "DTLS handshake failed: %s", why);
      return G_SOURCE_REMOVE;
    }
  dtls_arm_retransmit (self);
  return G_SOURCE_REMOVE;
}

static gboolean
on_deadline (gpointer data)
{
  Dtls *self = data;

  g_clear_pointer (&self->deadline, g_source_unref);
  dtls_fail (self, DTLS_ERROR_HANDSHAKE, "DTLS handshake timed out after %d s",
             DTLS_HANDSHAKE_TIMEOUT_MS / 1000);
  return G_SOURCE_REMOVE;
}

Dtls *
dtls_new (GMainContext *context, const Identity *identity, gboolean is_client,
          const char *expected_peer_id, const DtlsCallbacks *callbacks, gpointer user_data,
          GError **error)
{
  static GOnce once = G_ONCE_INIT;
  g_autoptr (Dtls) self = g_new0 (Dtls, 1);
  BIO *rbio, *wbio;

  g_return_val_if_fail (peerid_is_valid (expected_peer_id), NULL);
  g_once (&once, out_method_init, NULL);

  self->context = g_main_context_ref (context);
  self->is_client = is_client;
  self->cb = *callbacks;
  self->user_data = user_data;
  g_strlcpy (self->expected, expected_peer_id, sizeof self->expected);

  self->ctx = SSL_CTX_new (DTLS_method ());
  if (self->ctx == NULL || !SSL_CTX_set_min_proto_version (self->ctx, DTLS1_2_VERSION)
      || !SSL_CTX_use_certificate (self->ctx, identity->cert)
      || !SSL_CTX_use_PrivateKey (self->ctx, identity->key)
      || !SSL_CTX_set_cipher_list (self->ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:"
                                              "ECDHE-ECDSA-AES256-GCM-SHA384:"
                                              "ECDHE-ECDSA-CHACHA20-POLY1305")
      || !SSL_CTX_set1_groups_list (self->ctx, "X25519:P-256")
      /* Keys for the media leg (RFC 5764); GCM first (RFC 7714). Note
       * OpenSSL's return convention here: 0 on success. */
      || SSL_CTX_set_tlsext_use_srtp (self->ctx, "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80")
             != 0)
    goto ssl_error;
  SSL_CTX_set_verify (self->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                      dtls_verify);
  SSL_CTX_set_read_ahead (self->ctx, 1);

  self->ssl = SSL_new (self->ctx);
  if (self->ssl == NULL)
    goto ssl_error;
  SSL_set_app_data (self->ssl, self);
  SSL_set_options (self->ssl, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_RENEGOTIATION);
  rbio = BIO_new (in_method);
  wbio = BIO_new (out_method);
  if (rbio == NULL || wbio == NULL)
    {
      BIO_free (rbio);
      BIO_free (wbio);
      goto ssl_error;
    }
  BIO_set_data (rbio, self);
  BIO_set_data (wbio, self);
  SSL_set_bio (self->ssl, rbio, wbio);
  DTLS_set_link_mtu (self->ssl, DTLS_LINK_MTU);
  DTLS_set_timer_cb (self->ssl, dtls_timer);
  if (is_client)
    SSL_set_connect_state (self->ssl);
  else
    SSL_set_accept_state (self->ssl);
  return g_steal_pointer (&self);

ssl_error:
  {
    g_autofree char *why = ssl_error_text ();
    g_set_error (error, DTLS_ERROR, DTLS_ERROR_INTERNAL, "cannot set up DTLS: %s", why);
  }
  return NULL;
}

void
dtls_free (Dtls *self)
{
  if (self == NULL)
    return;
  dtls_stop_timers (self);
  SSL_free (self->ssl); /* frees both BIOs */
  SSL_CTX_free (self->ctx);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_free (self);
}

static void
dtls_handshake (Dtls *self)
{
  int ret;

  ERR_clear_error ();
  ret = SSL_do_handshake (self->ssl);

  if (ret == 1)
    {
      X509 *peer = SSL_get0_peer_certificate (self->ssl);
      char id[PEERID_SIZE];

      dtls_stop_timers (self);
      /* The verify callback has checked it; check again what was accepted. */
      if (peer == NULL || !peerid_from_x509 (peer, id) || !peerid_equal (id, self->expected))
        {
          dtls_fail (self, DTLS_ERROR_PEER_MISMATCH,
                     "peer certificate does not match the peer-id: expected %s", self->expected);
          return;
        }
      self->connected = TRUE;
      self->cb.connected (self->user_data);
      return;
    }
  switch (SSL_get_error (self->ssl, ret))
    {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      dtls_arm_retransmit (self);
      return;
    default:
      if (self->peer_mismatch)
        dtls_fail (self, DTLS_ERROR_PEER_MISMATCH,
                   "peer certificate does not match the peer-id: expected %s, got %s",
                   self->expected, self->seen[0] ? self->seen : "(unreadable key)");
      else
        {
          g_autofree char *why = ssl_error_text ();
          dtls_fail (self, DTLS_ERROR_HANDSHAKE, "DTLS handshake failed: %s", why);
        }
    }
}

void
dtls_start (Dtls *self)
{
  self->deadline = g_timeout_source_new (DTLS_HANDSHAKE_TIMEOUT_MS);
  g_source_set_callback (self->deadline, on_deadline, self, NULL);
  g_source_attach (self->deadline, self->context);
  if (self->is_client)
    dtls_handshake (self);
}

void
dtls_receive (Dtls *self, const guint8 *buf, gsize len)
{
  guint8 plain[DTLS_PLAINTEXT_MAX];

  if (self->failed || len == 0 || len > G_MAXINT)
    return;
  self->in = buf;
  self->in_len = len;
  if (!self->connected)
    {
      dtls_handshake (self);
      if (!self->connected)
        {
          self->in_len = 0;
          return;
        }
    }
  /* The data callback may close us (a peer's BYE): stop at once if so. */
  while (!self->failed)
    {
      int n;

      ERR_clear_error ();
      n = SSL_read (self->ssl, plain, sizeof plain);

      if (n > 0)
        {
          self->cb.data (plain, (gsize) n, self->user_data);
          continue;
        }
      switch (SSL_get_error (self->ssl, n))
        {
        case SSL_ERROR_ZERO_RETURN:
          dtls_fail (self, DTLS_ERROR_CLOSED, "the peer closed the DTLS session");
          return;
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
          break;
        default:
          {
            /* DTLS drops records it cannot authenticate without an error;
             * what reaches here is a broken session. */
            g_autofree char *why = ssl_error_text ();
            dtls_fail (self, DTLS_ERROR_INTERNAL, "DTLS session failed: %s", why);
            return;
          }
        }
      break;
    }
  self->in_len = 0;
}

gboolean
dtls_send (Dtls *self, const guint8 *buf, gsize len)
{
  if (!self->connected || self->failed || len == 0 || len > DTLS_PLAINTEXT_MAX)
    return FALSE;
  ERR_clear_error ();
  return SSL_write (self->ssl, buf, (int) len) == (int) len;
}

gsize
dtls_max_payload (Dtls *self)
{
  return self->connected ? DTLS_get_data_mtu (self->ssl) : 0;
}

gsize
dtls_max_payload_for_link (Dtls *self, gsize link_mtu)
{
  gsize base = dtls_max_payload (self);

  /* The record's overhead (header, explicit nonce, tag) does not depend on
   * its length with an AEAD cipher. OpenSSL writes application records
   * larger than its link MTU (the MTU only splits handshake messages). */
  if (base == 0 || link_mtu <= DTLS_LINK_MTU)
    return base;
  return MIN (base + link_mtu - DTLS_LINK_MTU, DTLS_PLAINTEXT_MAX);
}

void
dtls_close (Dtls *self)
{
  if (self->connected && !self->failed)
    {
      ERR_clear_error ();
      (void) SSL_shutdown (self->ssl);
    }
}

const char *
dtls_srtp_profile_name (DtlsSrtpProfile profile)
{
  switch (profile)
    {
    case DTLS_SRTP_AEAD_AES_128_GCM:
      return "SRTP_AEAD_AES_128_GCM";
    case DTLS_SRTP_AES128_CM_SHA1_80:
      return "SRTP_AES128_CM_SHA1_80";
    case DTLS_SRTP_NONE:
    default:
      return "none";
    }
}

void
dtls_srtp_keys_clear (DtlsSrtpKeys *keys)
{
  OPENSSL_cleanse (keys, sizeof *keys);
}

gboolean
dtls_srtp_keys (Dtls *self, DtlsSrtpKeys *out)
{
  static const char label[] = "EXTRACTOR-dtls_srtp";
  /* RFC 5764 section 4.2: client key, server key, client salt, server salt. */
  guint8 block[2 * (DTLS_SRTP_KEY_LEN + DTLS_SRTP_SALT_MAX)];
  const guint8 *client_key = block, *server_key = block + DTLS_SRTP_KEY_LEN;
  const guint8 *client_salt, *server_salt;
  const SRTP_PROTECTION_PROFILE *p;
  gsize salt_len;

  memset (out, 0, sizeof *out);
  if (!self->connected || self->failed)
    return FALSE;
  p = SSL_get_selected_srtp_profile (self->ssl);
  if (p == NULL)
    return FALSE;
  switch (p->id)
    {
    case SRTP_AEAD_AES_128_GCM:
      out->profile = DTLS_SRTP_AEAD_AES_128_GCM;
      salt_len = 12;
      break;
    case SRTP_AES128_CM_SHA1_80:
      out->profile = DTLS_SRTP_AES128_CM_SHA1_80;
      salt_len = 14;
      break;
    default:
      return FALSE; /* we offered no other */
    }
  if (SSL_export_keying_material (self->ssl, block, 2 * (DTLS_SRTP_KEY_LEN + salt_len), label,
                                  sizeof label - 1, NULL, 0, 0) != 1)
    {
      OPENSSL_cleanse (block, sizeof block);
      memset (out, 0, sizeof *out);
      return FALSE;
    }
  client_salt = block + 2 * DTLS_SRTP_KEY_LEN;
  server_salt = client_salt + salt_len;
  out->salt_len = salt_len;
  memcpy (out->local, self->is_client ? client_key : server_key, DTLS_SRTP_KEY_LEN);
  memcpy (out->local + DTLS_SRTP_KEY_LEN, self->is_client ? client_salt : server_salt, salt_len);
  memcpy (out->remote, self->is_client ? server_key : client_key, DTLS_SRTP_KEY_LEN);
  memcpy (out->remote + DTLS_SRTP_KEY_LEN, self->is_client ? server_salt : client_salt,
          salt_len);
  OPENSSL_cleanse (block, sizeof block);
  return TRUE;
}
