/* The signaling server's own TLS identity, and identities of its clients. */
#include "cert.h"

#include <errno.h>
#include <sys/stat.h>

#include <glib/gstdio.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

GQuark
signal_cert_error_quark (void)
{
  return g_quark_from_static_string ("p2ptun-signal-cert-error-quark");
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIO, BIO_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIGNUM, BN_free)

#define SIGNAL_CERT_DAYS (10 * 365)
#define SIGNAL_CERT_KEY_FILE "key.pem"
#define SIGNAL_CERT_CERT_FILE "cert.pem"

static gboolean
cert_add_ext (X509 *x, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509_EXTENSION *ext;
  gboolean ok;

  X509V3_set_ctx_nodb (&ctx);
  X509V3_set_ctx (&ctx, x, x, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
  if (ext == NULL)
    return FALSE;
  ok = X509_add_ext (x, ext, -1) == 1;
  X509_EXTENSION_free (ext);
  return ok;
}

/* "IP:127.0.0.1,IP:::1,DNS:localhost", plus @listen_host first when it is an
 * address other than those and other than the unspecified address. */
static char *
cert_san_for (const char *listen_host)
{
  g_autoptr (GInetAddress) addr = NULL;
  const char *fixed = "IP:127.0.0.1,IP:::1,DNS:localhost";

  if (listen_host != NULL)
    addr = g_inet_address_new_from_string (listen_host);
  if (addr == NULL || g_inet_address_get_is_any (addr)
      || g_inet_address_get_is_loopback (addr))
    return g_strdup (fixed);
  {
    g_autofree char *text = g_inet_address_to_string (addr);
    return g_strdup_printf ("IP:%s,%s", text, fixed);
  }
}

static X509 *
cert_make_self_signed (EVP_PKEY *pkey, const char *listen_host)
{
  g_autoptr (X509) x = X509_new ();
  g_autoptr (BIGNUM) serial = BN_new ();
  g_autofree char *san = cert_san_for (listen_host);
  X509_NAME *name;

  if (x == NULL || serial == NULL)
    return NULL;
  /* RFC 5280 section 4.1.2.2: positive, at most 20 octets. */
  if (X509_set_version (x, X509_VERSION_3) != 1
      || BN_rand (serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1
      || BN_to_ASN1_INTEGER (serial, X509_get_serialNumber (x)) == NULL
      || X509_gmtime_adj (X509_getm_notBefore (x), -3600) == NULL
      || X509_time_adj_ex (X509_getm_notAfter (x), SIGNAL_CERT_DAYS, 0, NULL) == NULL
      || X509_set_pubkey (x, pkey) != 1)
    return NULL;
  name = X509_get_subject_name (x);
  if (X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_ASC,
                                  (const unsigned char *)"p2ptun-signal", -1, -1, 0)
          != 1
      || X509_set_issuer_name (x, name) != 1)
    return NULL;
  if (!cert_add_ext (x, NID_basic_constraints, "critical,CA:FALSE")
      || !cert_add_ext (x, NID_key_usage, "critical,digitalSignature")
      || !cert_add_ext (x, NID_ext_key_usage, "serverAuth")
      || !cert_add_ext (x, NID_subject_alt_name, san))
    return NULL;
  if (X509_sign (x, pkey, EVP_sha256 ()) <= 0)
    return NULL;
  return g_steal_pointer (&x);
}

/* Writes the contents of @bio to @path atomically, mode 0600. */
static gboolean
cert_write_bio (BIO *bio, const char *path, GError **error)
{
  char *data = NULL;
  long len = BIO_get_mem_data (bio, &data);

  if (len <= 0 || data == NULL)
    {
      g_set_error (error, SIGNAL_CERT_ERROR, SIGNAL_CERT_ERROR_FAILED, "cannot encode %s",
                   path);
      return FALSE;
    }
  return g_file_set_contents_full (path, data, len, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                   error);
}

static gboolean
cert_create (const char *cert_path, const char *key_path, const char *listen_host,
             GError **error)
{
  g_autoptr (EVP_PKEY) pkey = EVP_EC_gen ("P-256");
  g_autoptr (X509) x = NULL;
  /* Secure-heap BIO: the key's PEM is wiped when it is freed. */
  g_autoptr (BIO) key_bio = BIO_new (BIO_s_secmem ());
  g_autoptr (BIO) cert_bio = BIO_new (BIO_s_mem ());

  if (pkey != NULL)
    x = cert_make_self_signed (pkey, listen_host);
  if (x == NULL || key_bio == NULL || cert_bio == NULL
      || PEM_write_bio_PrivateKey (key_bio, pkey, NULL, NULL, 0, NULL, NULL) != 1
      || PEM_write_bio_X509 (cert_bio, x) != 1)
    {
      g_set_error_literal (error, SIGNAL_CERT_ERROR, SIGNAL_CERT_ERROR_FAILED,
                           "cannot create a key and certificate");
      return FALSE;
    }
  return cert_write_bio (key_bio, key_path, error)
         && cert_write_bio (cert_bio, cert_path, error);
}

gboolean
signal_cert_ensure (const char *dir, const char *listen_host, char **cert_path,
                    char **key_path, GError **error)
{
  g_autofree char *cpath = g_build_filename (dir, SIGNAL_CERT_CERT_FILE, NULL);
  g_autofree char *kpath = g_build_filename (dir, SIGNAL_CERT_KEY_FILE, NULL);
  GStatBuf st;

  g_return_val_if_fail (dir != NULL && cert_path != NULL && key_path != NULL, FALSE);

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
                   "cannot create %s: %s", dir, g_strerror (saved));
      return FALSE;
    }
  if (g_stat (kpath, &st) == 0 && g_file_test (cpath, G_FILE_TEST_IS_REGULAR))
    {
      if ((st.st_mode & 077) != 0)
        {
          g_set_error (error, SIGNAL_CERT_ERROR, SIGNAL_CERT_ERROR_UNSAFE,
                       "%s may be read by others (mode %03o); chmod 600 it", kpath,
                       (unsigned)(st.st_mode & 0777));
          return FALSE;
        }
    }
  else if (!cert_create (cpath, kpath, listen_host, error))
    return FALSE;

  *cert_path = g_steal_pointer (&cpath);
  *key_path = g_steal_pointer (&kpath);
  return TRUE;
}

static X509 *
cert_to_x509 (GTlsCertificate *cert)
{
  g_autoptr (GByteArray) der = NULL;
  const unsigned char *p;

  g_object_get (cert, "certificate", &der, NULL);
  if (der == NULL || der->len == 0)
    return NULL;
  p = der->data;
  return d2i_X509 (NULL, &p, (long)der->len);
}

char *
signal_cert_pin (GTlsCertificate *cert, GError **error)
{
  g_autoptr (X509) x = cert_to_x509 (cert);
  char pin[PEERID_PIN_SIZE];

  if (x == NULL || !peerid_pin_from_x509 (x, pin))
    {
      g_set_error_literal (error, SIGNAL_CERT_ERROR, SIGNAL_CERT_ERROR_FAILED,
                           "cannot read the server certificate's public key");
      return NULL;
    }
  return g_strdup (pin);
}

gboolean
signal_cert_peer_id (GTlsCertificate *cert, char out[static PEERID_SIZE])
{
  g_autoptr (X509) x = NULL;

  if (cert == NULL)
    return FALSE;
  x = cert_to_x509 (cert);
  return x != NULL && peerid_from_x509 (x, out);
}
