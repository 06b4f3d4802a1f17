/* The agent's identity: an ECDSA P-256 key and a self-signed certificate.
 *
 * Files, in the config directory (mode 0700):
 *   identity.key  PKCS#8 PEM, unencrypted, mode 0600
 *   identity.crt  X.509 v3 PEM, CN = peer-id
 *   signed-cert.pem  optional: a certificate for the same key signed by a CA
 *                 (and its chain), presented to the signaling server instead
 *                 of identity.crt; never written here
 *
 * Each file is written to a fresh temporary file (O_CREAT|O_EXCL, 0600),
 * synced, then moved into place, so a crash never leaves half a file. The key
 * is linked into place without replacing an existing one, so two agents
 * starting at once end up sharing one identity instead of a mix of two. */
#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define IDENTITY_KEY_FILE "identity.key"
#define IDENTITY_CERT_FILE "identity.crt"
/* A PEM key or certificate of ours is well under 2 KiB. */
#define IDENTITY_MAX_FILE (64 * 1024)
#define IDENTITY_VALIDITY_DAYS (100 * 36525L / 100) /* 100 years */
/* Accept a peer whose clock is a little behind ours. */
#define IDENTITY_BACKDATE_SECONDS (24L * 3600)
#define IDENTITY_SERIAL_BYTES 16

/* clang-format off */
G_DEFINE_QUARK (p2ptun-identity-error-quark, identity_error)
/* clang-format on */

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIO, BIO_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIGNUM, BN_free)

const char *
identity_ssl_reason (char *buf, size_t cap)
{
  unsigned long e = ERR_get_error ();
  ERR_clear_error ();
  if (e == 0)
    return "unknown error";
  ERR_error_string_n (e, buf, cap);
  return buf;
}

/* Never prompt for a passphrase on the terminal: our key is not encrypted,
 * and an encrypted one is refused. */
static int
identity_no_passphrase (char *buf, int size, int rwflag, void *u)
{
  return -1;
}

char *
identity_default_config_dir (void)
{
  return g_build_filename (g_get_user_config_dir (), "p2ptun", NULL);
}

void
identity_free (Identity *id)
{
  if (id == NULL)
    return;
  EVP_PKEY_free (id->key);
  X509_free (id->cert);
  g_free (id->key_path);
  g_free (id->cert_path);
  g_free (id);
}

/* Reads at most IDENTITY_MAX_FILE bytes of @fd. */
static GBytes *
identity_read_fd (int fd, const char *path, GError **error)
{
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  guint8 chunk[4096];

  for (;;)
    {
      ssize_t n = read (fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int e = errno;
          g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO, "cannot read %s: %s",
                       path, g_strerror (e));
          return NULL;
        }
      if (n == 0)
        break;
      if (buf->len + (size_t)n > IDENTITY_MAX_FILE)
        {
          g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID,
                       "%s is larger than %d bytes: not an identity file", path,
                       IDENTITY_MAX_FILE);
          return NULL;
        }
      g_byte_array_append (buf, chunk, (guint)n);
    }
  g_autoptr (GBytes) bytes = g_byte_array_free_to_bytes (g_steal_pointer (&buf));
  OPENSSL_cleanse (chunk, sizeof chunk);
  return g_steal_pointer (&bytes);
}

/* Opens @path for reading. Sets *@missing (without an error) when it does not
 * exist. With @check_perms, refuses a file that others may read or that is not
 * ours, as ssh does for its keys. */
static GBytes *
identity_read_file (const char *path, gboolean check_perms, gboolean *missing,
                    GError **error)
{
  struct stat st;
  int fd;

  *missing = FALSE;
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    {
      int e = errno;
      if (e == ENOENT)
        {
          *missing = TRUE;
          return NULL;
        }
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO, "cannot open %s: %s", path,
                   g_strerror (e));
      return NULL;
    }
  if (fstat (fd, &st) < 0)
    {
      int e = errno;
      close (fd);
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO, "cannot stat %s: %s", path,
                   g_strerror (e));
      return NULL;
    }
  if (!S_ISREG (st.st_mode))
    {
      close (fd);
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID,
                   "%s is not a regular file", path);
      return NULL;
    }
  if (check_perms && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    {
      close (fd);
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_PERMS,
                   "private key %s is accessible by other users (mode %04o); "
                   "run: chmod 600 %s",
                   path, (unsigned)(st.st_mode & 07777), path);
      return NULL;
    }
  if (check_perms && st.st_uid != geteuid ())
    {
      close (fd);
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_PERMS,
                   "private key %s belongs to another user (uid %u)", path,
                   (unsigned)st.st_uid);
      return NULL;
    }

  GBytes *bytes = identity_read_fd (fd, path, error);
  close (fd);
  return bytes;
}

/* Writes @data to a new temporary file next to @path (0600, O_EXCL), syncs it
 * and returns its name. */
static char *
identity_write_temp (const char *path, const void *data, size_t len, GError **error)
{
  g_autofree char *tmp = g_strconcat (path, ".tmp-XXXXXX", NULL);
  const guint8 *p = data;
  /* g_mkstemp_full opens with O_CREAT | O_EXCL and the given mode. */
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO,
                   "cannot create a file next to %s: %s", path, g_strerror (e));
      return NULL;
    }
  while (len > 0)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          int e = n < 0 ? errno : EIO;
          close (fd);
          g_unlink (tmp);
          g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO, "cannot write %s: %s",
                       path, g_strerror (e));
          return NULL;
        }
      p += n;
      len -= (size_t)n;
    }
  if (fsync (fd) < 0 || close (fd) < 0)
    {
      int e = errno;
      g_unlink (tmp);
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO, "cannot write %s: %s", path,
                   g_strerror (e));
      return NULL;
    }
  return g_steal_pointer (&tmp);
}

/* The PEM text a BIO holds. */
static gboolean
identity_bio_data (BIO *bio, const char **data, size_t *len)
{
  char *p = NULL;
  long n = BIO_get_mem_data (bio, &p);
  if (n <= 0 || p == NULL)
    return FALSE;
  *data = p;
  *len = (size_t)n;
  return TRUE;
}

static gboolean
identity_sync_dir (const char *dir)
{
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return FALSE;
  (void)fsync (fd);
  close (fd);
  return TRUE;
}

static gboolean
identity_add_ext (X509 *cert, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb (&ctx);
  X509V3_set_ctx (&ctx, cert, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
  if (ext == NULL)
    return FALSE;
  int ok = X509_add_ext (cert, ext, -1);
  X509_EXTENSION_free (ext);
  return ok == 1;
}

/* A self-signed X.509 v3 certificate for @key: CN = @peer_id, random serial,
 * valid for 100 years, signed with SHA-256. */
static X509 *
identity_make_cert (EVP_PKEY *key, const char *peer_id)
{
  g_autoptr (X509) cert = X509_new ();
  guint8 serial[IDENTITY_SERIAL_BYTES];

  if (cert == NULL)
    return NULL;
  if (X509_set_version (cert, X509_VERSION_3) != 1)
    return NULL;

  /* RFC 5280 section 4.1.2.2: a positive integer of at most 20 octets. */
  if (RAND_bytes (serial, sizeof serial) != 1)
    return NULL;
  serial[0] &= 0x7f;
  serial[0] |= 0x40; /* never zero, never negative */
  g_autoptr (BIGNUM) bn = BN_bin2bn (serial, sizeof serial, NULL);
  if (bn == NULL || BN_to_ASN1_INTEGER (bn, X509_get_serialNumber (cert)) == NULL)
    return NULL;

  X509_NAME *name = X509_get_subject_name (cert);
  if (X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_ASC,
                                  (const unsigned char *)peer_id, -1, -1, 0)
          != 1
      || X509_set_issuer_name (cert, name) != 1)
    return NULL;

  if (X509_gmtime_adj (X509_getm_notBefore (cert), -IDENTITY_BACKDATE_SECONDS) == NULL
      || X509_time_adj_ex (X509_getm_notAfter (cert), IDENTITY_VALIDITY_DAYS, 0, NULL)
             == NULL)
    return NULL;

  if (X509_set_pubkey (cert, key) != 1)
    return NULL;

  if (!identity_add_ext (cert, NID_basic_constraints, "critical,CA:FALSE")
      || !identity_add_ext (cert, NID_key_usage, "critical,digitalSignature")
      || !identity_add_ext (cert, NID_ext_key_usage, "serverAuth,clientAuth")
      || !identity_add_ext (cert, NID_subject_key_identifier, "hash"))
    return NULL;

  if (X509_sign (cert, key, EVP_sha256 ()) <= 0)
    return NULL;
  return g_steal_pointer (&cert);
}

/* Writes @cert to @cert_path, replacing what is there. */
static gboolean
identity_write_cert (X509 *cert, const char *dir, const char *cert_path, GError **error)
{
  g_autoptr (BIO) bio = BIO_new (BIO_s_mem ());
  const char *data;
  size_t len;
  char reason[256];

  if (bio == NULL || PEM_write_bio_X509 (bio, cert) != 1
      || !identity_bio_data (bio, &data, &len))
    {
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO,
                   "cannot encode the certificate: %s",
                   identity_ssl_reason (reason, sizeof reason));
      return FALSE;
    }
  g_autofree char *tmp = identity_write_temp (cert_path, data, len, error);
  if (tmp == NULL)
    return FALSE;
  if (g_rename (tmp, cert_path) < 0)
    {
      int e = errno;
      g_unlink (tmp);
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO, "cannot create %s: %s",
                   cert_path, g_strerror (e));
      return FALSE;
    }
  identity_sync_dir (dir);
  return TRUE;
}

/* Creates a new key at @key_path. Returns FALSE without an error when a key
 * appeared there meanwhile (another agent created it): the caller loads it. */
static gboolean
identity_create_key (const char *dir, const char *key_path, GError **error)
{
  g_autoptr (EVP_PKEY) key = EVP_EC_gen ("P-256");
  g_autoptr (BIO) bio = BIO_new (BIO_s_secmem ());
  const char *data;
  size_t len;
  char reason[256];

  if (key == NULL || bio == NULL
      || PEM_write_bio_PrivateKey (bio, key, NULL, NULL, 0, NULL, NULL) != 1
      || !identity_bio_data (bio, &data, &len))
    {
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO, "cannot generate a key: %s",
                   identity_ssl_reason (reason, sizeof reason));
      return FALSE;
    }
  g_autofree char *tmp = identity_write_temp (key_path, data, len, error);
  if (tmp == NULL)
    return FALSE;

  /* link() never replaces an existing key, unlike rename(). */
  int rc = link (tmp, key_path);
  int e = errno;
  g_unlink (tmp);
  if (rc < 0 && e == EEXIST)
    return TRUE;
  if (rc < 0)
    {
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO, "cannot create %s: %s",
                   key_path, g_strerror (e));
      return FALSE;
    }
  identity_sync_dir (dir);
  return TRUE;
}

static EVP_PKEY *
identity_parse_key (GBytes *bytes, const char *path, GError **error)
{
  gsize len;
  const void *data = g_bytes_get_data (bytes, &len);
  g_autoptr (BIO) bio = BIO_new_mem_buf (data, (int)len);
  char reason[256];

  EVP_PKEY *key
      = bio ? PEM_read_bio_PrivateKey (bio, NULL, identity_no_passphrase, NULL) : NULL;
  if (key == NULL)
    {
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID,
                   "%s is not a PEM private key (or is encrypted): %s", path,
                   identity_ssl_reason (reason, sizeof reason));
      return NULL;
    }
  char group[64] = "";
  if (!EVP_PKEY_is_a (key, "EC")
      || EVP_PKEY_get_utf8_string_param (key, "group", group, sizeof group, NULL) != 1
      || strcmp (group, "prime256v1") != 0)
    {
      EVP_PKEY_free (key);
      ERR_clear_error ();
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID,
                   "%s is not an ECDSA P-256 key", path);
      return NULL;
    }
  return key;
}

static X509 *
identity_parse_cert (GBytes *bytes, const char *path, GError **error)
{
  gsize len;
  const void *data = g_bytes_get_data (bytes, &len);
  g_autoptr (BIO) bio = BIO_new_mem_buf (data, (int)len);
  char reason[256];

  X509 *cert = bio ? PEM_read_bio_X509 (bio, NULL, identity_no_passphrase, NULL) : NULL;
  if (cert == NULL)
    {
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID,
                   "%s is not a PEM certificate: %s", path,
                   identity_ssl_reason (reason, sizeof reason));
      return NULL;
    }
  return cert;
}

/* Checks @bytes, the PEM of @path: a certificate for @id's key, then only
 * certificates (the chain libcurl sends after it). */
static gboolean
identity_check_signed (const Identity *id, GBytes *bytes, const char *path, GError **error)
{
  gsize len;
  const void *data = g_bytes_get_data (bytes, &len);
  g_autoptr (BIO) bio = BIO_new_mem_buf (data, (int)len);
  g_autoptr (X509) cert = NULL;
  char theirs[PEERID_SIZE];
  char reason[256];

  if (bio == NULL
      || (cert = PEM_read_bio_X509 (bio, NULL, identity_no_passphrase, NULL)) == NULL)
    {
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID,
                   "%s is not a PEM certificate: %s", path,
                   identity_ssl_reason (reason, sizeof reason));
      return FALSE;
    }
  if (EVP_PKEY_eq (X509_get0_pubkey (cert), id->key) != 1)
    {
      ERR_clear_error ();
      if (!peerid_from_x509 (cert, theirs))
        g_strlcpy (theirs, "unknown", sizeof theirs);
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID,
                   "%s is a certificate for another key (peer-id %s), not for this "
                   "agent's key %s (peer-id %s); have a request from 'p2ptun-agent csr' "
                   "signed for this agent, or remove the file",
                   path, theirs, id->key_path, id->peer_id);
      return FALSE;
    }
  ERR_clear_error ();
  for (guint n = 2;; n++)
    {
      g_autoptr (X509) chain = PEM_read_bio_X509 (bio, NULL, identity_no_passphrase, NULL);
      unsigned long e = ERR_peek_last_error ();

      if (chain != NULL)
        continue;
      if (e == 0
          || (ERR_GET_LIB (e) == ERR_LIB_PEM && ERR_GET_REASON (e) == PEM_R_NO_START_LINE))
        {
          ERR_clear_error (); /* the end of the file */
          return TRUE;
        }
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID,
                   "%s: certificate %u (of the chain after the agent's) is not a PEM "
                   "certificate: %s",
                   path, n, identity_ssl_reason (reason, sizeof reason));
      return FALSE;
    }
}

/* identity_use_cert; a missing file is no error with @missing_ok. */
static gboolean
identity_use_cert_file (Identity *id, const char *path, gboolean missing_ok, GError **error)
{
  gboolean missing;
  g_autoptr (GBytes) pem = identity_read_file (path, FALSE, &missing, error);

  if (pem == NULL && missing && missing_ok)
    return TRUE;
  if (pem == NULL && missing)
    g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO, "cannot open %s: %s", path,
                 g_strerror (ENOENT));
  if (pem == NULL || !identity_check_signed (id, pem, path, error))
    return FALSE;
  g_free (id->cert_path);
  id->cert_path = g_strdup (path);
  g_debug ("presenting %s to the signaling server", path);
  return TRUE;
}

gboolean
identity_use_cert (Identity *id, const char *path, GError **error)
{
  g_return_val_if_fail (id != NULL && path != NULL, FALSE);
  return identity_use_cert_file (id, path, FALSE, error);
}

Identity *
identity_load_or_create (const char *config_dir, GError **error)
{
  g_autoptr (Identity) id = g_new0 (Identity, 1);
  gboolean key_missing, cert_missing;

  g_return_val_if_fail (config_dir != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_mkdir_with_parents (config_dir, 0700) < 0)
    {
      int e = errno;
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO,
                   "cannot create directory %s: %s", config_dir, g_strerror (e));
      return NULL;
    }
  id->key_path = g_build_filename (config_dir, IDENTITY_KEY_FILE, NULL);
  id->cert_path = g_build_filename (config_dir, IDENTITY_CERT_FILE, NULL);

  g_autoptr (GBytes) key_pem
      = identity_read_file (id->key_path, TRUE, &key_missing, error);
  if (key_pem == NULL && !key_missing)
    return NULL;
  g_autoptr (GBytes) cert_pem
      = identity_read_file (id->cert_path, FALSE, &cert_missing, error);
  if (cert_pem == NULL && !cert_missing)
    return NULL;

  if (key_missing && !cert_missing)
    {
      /* Never pair an existing certificate with a new key: the user may have
       * told others this peer-id. */
      g_set_error (
          error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID,
          "%s exists but its key %s is missing; restore the key, or remove %s to "
          "create a new identity (a new peer-id)",
          id->cert_path, id->key_path, id->cert_path);
      return NULL;
    }

  if (key_missing)
    {
      if (!identity_create_key (config_dir, id->key_path, error))
        return NULL;
      key_pem = identity_read_file (id->key_path, TRUE, &key_missing, error);
      if (key_pem == NULL)
        {
          if (key_missing)
            g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO,
                         "%s vanished after creation", id->key_path);
          return NULL;
        }
    }

  id->key = identity_parse_key (key_pem, id->key_path, error);
  if (id->key == NULL)
    return NULL;
  if (!peerid_from_pkey (id->key, id->peer_id))
    {
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID,
                   "cannot encode the public key of %s", id->key_path);
      return NULL;
    }

  if (cert_missing)
    {
      /* A new identity, or a crash between writing the key and the
       * certificate: the peer-id depends on the key alone, so a new
       * certificate keeps it. */
      id->cert = identity_make_cert (id->key, id->peer_id);
      if (id->cert == NULL)
        {
          char reason[256];
          g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO,
                       "cannot make a certificate: %s",
                       identity_ssl_reason (reason, sizeof reason));
          return NULL;
        }
      if (!identity_write_cert (id->cert, config_dir, id->cert_path, error))
        return NULL;
      g_debug ("created identity %s in %s", id->peer_id, config_dir);
    }
  else
    {
      id->cert = identity_parse_cert (cert_pem, id->cert_path, error);
      if (id->cert == NULL)
        return NULL;
    }

  if (X509_check_private_key (id->cert, id->key) != 1)
    {
      ERR_clear_error ();
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID,
                   "%s does not belong to the key %s", id->cert_path, id->key_path);
      return NULL;
    }
  char cert_peer_id[PEERID_SIZE];
  if (!peerid_from_x509 (id->cert, cert_peer_id)
      || strcmp (cert_peer_id, id->peer_id) != 0)
    {
      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID,
                   "cannot compute the peer-id of %s", id->cert_path);
      return NULL;
    }
  g_autofree char *signed_path
      = g_build_filename (config_dir, IDENTITY_SIGNED_CERT_FILE, NULL);
  if (!identity_use_cert_file (id, signed_path, TRUE, error))
    return NULL;
  return g_steal_pointer (&id);
}
