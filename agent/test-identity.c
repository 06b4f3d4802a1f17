/* Unit tests of agent/identity.c: creation, reload, permissions, and refusal
 * of files that are not a matching key and certificate; and of agent/csr.c
 * with the signed certificate taken back: the request verifies with openssl
 * and names the agent's key; a certificate a CA made from it is presented
 * instead of the self-signed one; a certificate for another key is refused.
 * The CA is made and used with the openssl command, not with our code. */
#include "identity.h"
#include "csr.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_REQ, X509_REQ_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIO, BIO_free)

typedef struct
{
  char *root; /* temporary directory, removed afterwards */
  char *dir;  /* config dir inside it, not yet created */
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  f->root = g_dir_make_tmp ("p2ptun-test-identity-XXXXXX", &error);
  g_assert_no_error (error);
  f->dir = g_build_filename (f->root, "config", "p2ptun", NULL);
}

static void
remove_tree (const char *path)
{
  GDir *d = g_dir_open (path, 0, NULL);
  if (d != NULL)
    {
      const char *name;
      while ((name = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          remove_tree (child);
        }
      g_dir_close (d);
      g_rmdir (path);
    }
  else
    g_unlink (path);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  remove_tree (f->root);
  g_free (f->root);
  g_free (f->dir);
}

static mode_t
file_mode (const char *path)
{
  struct stat st;
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  return st.st_mode & 07777;
}

static Identity *
create (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  Identity *id = identity_load_or_create (f->dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (id);
  return id;
}

static void
test_create_reload (Fixture *f, gconstpointer data)
{
  g_autoptr (Identity) a = create (f);
  g_assert_true (peerid_is_valid (a->peer_id));
  g_assert_cmpuint (strlen (a->peer_id), ==, PEERID_LEN);
  g_assert_true (g_file_test (a->key_path, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (a->cert_path, G_FILE_TEST_IS_REGULAR));

  g_autoptr (Identity) b = create (f);
  g_assert_cmpstr (a->peer_id, ==, b->peer_id);

  /* The certificate names the peer-id and is signed by the key. */
  char cn[128] = "";
  X509_NAME_get_text_by_NID (X509_get_subject_name (b->cert), NID_commonName, cn,
                             sizeof cn);
  g_assert_cmpstr (cn, ==, b->peer_id);
  g_assert_cmpint (X509_get_version (b->cert), ==, X509_VERSION_3);
  g_assert_cmpint (X509_verify (b->cert, b->key), ==, 1);
  int days = 0, secs = 0;
  g_assert_true (ASN1_TIME_diff (&days, &secs, NULL, X509_get0_notAfter (b->cert)));
  g_assert_cmpint (days, >, 99 * 365);

  /* A different directory is a different identity. */
  g_autofree char *other = g_build_filename (f->root, "other", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (Identity) c = identity_load_or_create (other, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (a->peer_id, !=, c->peer_id);
}

static void
test_modes (Fixture *f, gconstpointer data)
{
  /* A umask that would leave files readable by others must not matter. */
  mode_t old = umask (0);
  g_autoptr (Identity) id = create (f);
  umask (old);
  g_assert_cmpint (file_mode (f->dir), ==, 0700);
  g_assert_cmpint (file_mode (id->key_path), ==, 0600);

  /* No temporary files are left behind. */
  g_autoptr (GDir) d = g_dir_open (f->dir, 0, NULL);
  const char *name;
  guint n = 0;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_assert_true (g_str_equal (name, "identity.key")
                     || g_str_equal (name, "identity.crt"));
      n++;
    }
  g_assert_cmpuint (n, ==, 2);
}

static void
test_wrong_perms (Fixture *f, gconstpointer data)
{
  g_autoptr (Identity) id = create (f);
  g_autofree char *key_path = g_strdup (id->key_path);
  static const mode_t bad[] = { 0644, 0640, 0604, 0660, 0601 };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_assert_cmpint (g_chmod (key_path, bad[i]), ==, 0);
      g_autoptr (Identity) again = identity_load_or_create (f->dir, &error);
      g_assert_null (again);
      g_assert_error (error, IDENTITY_ERROR, IDENTITY_ERROR_PERMS);
      g_assert_nonnull (strstr (error->message, "chmod 600"));
      g_assert_nonnull (strstr (error->message, key_path));
    }
  g_assert_cmpint (g_chmod (key_path, 0600), ==, 0);
  g_autoptr (Identity) ok = create (f);
  g_assert_cmpstr (ok->peer_id, ==, id->peer_id);
}

static void
test_mismatch (Fixture *f, gconstpointer data)
{
  g_autoptr (Identity) a = create (f);
  g_autofree char *other = g_build_filename (f->root, "other", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (Identity) b = identity_load_or_create (other, &error);
  g_assert_no_error (error);

  /* Put b's certificate next to a's key. */
  g_autofree char *pem = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (b->cert_path, &pem, &len, NULL));
  g_assert_true (g_file_set_contents (a->cert_path, pem, (gssize)len, NULL));

  g_autoptr (Identity) c = identity_load_or_create (f->dir, &error);
  g_assert_null (c);
  g_assert_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, a->cert_path));
}

static void
write_file (const char *path, const char *text, mode_t mode)
{
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  g_assert_cmpint (g_chmod (path, mode), ==, 0);
}

static void
test_garbage (Fixture *f, gconstpointer data)
{
  g_autoptr (Identity) a = create (f);
  g_autofree char *key_pem = NULL;
  g_autofree char *cert_pem = NULL;
  g_assert_true (g_file_get_contents (a->key_path, &key_pem, NULL, NULL));
  g_assert_true (g_file_get_contents (a->cert_path, &cert_pem, NULL, NULL));

  static const char *const junk[] = {
    "",
    "not a pem file\n",
    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
  };

  for (guint i = 0; i < G_N_ELEMENTS (junk); i++)
    {
      g_autoptr (GError) error = NULL;
      write_file (a->key_path, junk[i], 0600);
      g_autoptr (Identity) id = identity_load_or_create (f->dir, &error);
      g_assert_null (id);
      g_assert_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID);
      g_assert_nonnull (strstr (error->message, a->key_path));
    }
  write_file (a->key_path, key_pem, 0600);

  for (guint i = 0; i < G_N_ELEMENTS (junk); i++)
    {
      g_autoptr (GError) error = NULL;
      write_file (a->cert_path, junk[i], 0644);
      g_autoptr (Identity) id = identity_load_or_create (f->dir, &error);
      g_assert_null (id);
      g_assert_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID);
      g_assert_nonnull (strstr (error->message, a->cert_path));
    }

  /* A huge file is refused without reading it all. */
  {
    g_autoptr (GError) error = NULL;
    g_autofree char *big = g_strnfill (1024 * 1024, 'A');
    write_file (a->cert_path, big, 0644);
    g_autoptr (Identity) id = identity_load_or_create (f->dir, &error);
    g_assert_null (id);
    g_assert_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID);
  }

  write_file (a->cert_path, cert_pem, 0644);

  /* A P-384 key is not ours. */
  {
    g_autoptr (GError) error = NULL;
    EVP_PKEY *k = EVP_EC_gen ("P-384");
    BIO *bio = BIO_new (BIO_s_mem ());
    char *p = NULL;
    g_assert_cmpint (PEM_write_bio_PrivateKey (bio, k, NULL, NULL, 0, NULL, NULL), ==, 1);
    long n = BIO_get_mem_data (bio, &p);
    g_autofree char *text = g_strndup (p, (gsize)n);
    BIO_free (bio);
    EVP_PKEY_free (k);
    write_file (a->key_path, text, 0600);
    g_autoptr (Identity) id = identity_load_or_create (f->dir, &error);
    g_assert_null (id);
    g_assert_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "P-256"));
  }
}

static void
test_missing_halves (Fixture *f, gconstpointer data)
{
  g_autoptr (Identity) a = create (f);

  /* A lost certificate is made again from the key: same peer-id. */
  g_assert_cmpint (g_unlink (a->cert_path), ==, 0);
  g_autoptr (Identity) b = create (f);
  g_assert_cmpstr (a->peer_id, ==, b->peer_id);

  /* A lost key is never replaced silently. */
  g_assert_cmpint (g_unlink (a->key_path), ==, 0);
  g_autoptr (GError) error = NULL;
  g_autoptr (Identity) c = identity_load_or_create (f->dir, &error);
  g_assert_null (c);
  g_assert_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, a->key_path));
}

static void
test_unusable_dir (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  /* A regular file where the directory should be. */
  g_autofree char *file = g_build_filename (f->root, "file", NULL);
  write_file (file, "x", 0600);
  g_autofree char *dir = g_build_filename (file, "p2ptun", NULL);
  g_autoptr (Identity) id = identity_load_or_create (dir, &error);
  g_assert_null (id);
  g_assert_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO);
  g_assert_nonnull (strstr (error->message, dir));
}

static void
test_default_dir (void)
{
  g_autofree char *dir = identity_default_config_dir ();
  g_assert_true (g_str_has_suffix (dir, "/p2ptun"));
  g_assert_true (g_str_has_prefix (dir, g_get_user_config_dir ()));
}

/* ---- the certificate request, and the signed certificate ---- */

static char *
path_in (Fixture *f, const char *name)
{
  return g_build_filename (f->root, name, NULL);
}

static Identity *
make_identity (Fixture *f, const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = path_in (f, name);
  Identity *id = identity_load_or_create (dir, &error);

  g_assert_no_error (error);
  return id;
}

/* Runs openssl with @argv (NULL-terminated, without "openssl"); asserts
 * that it succeeds. */
static void
run_openssl (const char *const *args)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *err = NULL;
  int status = -1;

  g_ptr_array_add (argv, (gpointer) "openssl");
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL,
                               NULL, NULL, &err, &status, &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("openssl %s failed: %s", args[0], err);
}

/* Writes @id's request to @name and returns its path. */
static char *
write_csr (Fixture *f, const Identity *id, const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *pem = csr_new_pem (id, &error);
  char *path = path_in (f, name);

  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (path, pem, -1, &error));
  g_assert_no_error (error);
  return path;
}

/* A CA (ca.crt, ca.key) and the certificate it signs for @id's request, in
 * @out. */
static void
sign_for (Fixture *f, const Identity *id, const char *out)
{
  g_autofree char *csr = write_csr (f, id, "agent.csr");
  g_autofree char *ca_crt = path_in (f, "ca.crt");
  g_autofree char *ca_key = path_in (f, "ca.key");

  if (!g_file_test (ca_crt, G_FILE_TEST_EXISTS))
    {
      const char *const make_ca[]
          = { "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-keyout", ca_key, "-out", ca_crt, "-subj", "/CN=test-ca",
              "-days", "2", NULL };
      run_openssl (make_ca);
    }
  const char *const sign[] = { "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
                               "-days", "1", "-out", out, NULL };
  run_openssl (sign);
}

static void
test_csr_verifies (Fixture *f, gconstpointer data)
{
  g_autoptr (Identity) id = make_identity (f, "a");
  g_autoptr (GError) error = NULL;
  g_autofree char *pem = csr_new_pem (id, &error);
  g_autofree char *path = write_csr (f, id, "a.csr");
  const char *const verify[] = { "req", "-verify", "-noout", "-in", path, NULL };
  char peer[PEERID_SIZE];
  char cn[PEERID_SIZE + 8] = "";

  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (pem, "-----BEGIN CERTIFICATE REQUEST-----\n"));
  /* The self-signature, checked by openssl. */
  run_openssl (verify);

  g_autoptr (BIO) bio = BIO_new_mem_buf (pem, -1);
  g_autoptr (X509_REQ) req = PEM_read_bio_X509_REQ (bio, NULL, NULL, NULL);
  g_assert_nonnull (req);
  /* Its key is the agent's: the same peer-id. */
  g_assert_true (peerid_from_pkey (X509_REQ_get0_pubkey (req), peer));
  g_assert_cmpstr (peer, ==, id->peer_id);
  g_assert_cmpint (X509_REQ_get_signature_nid (req), ==, NID_ecdsa_with_SHA256);
  g_assert_cmpint (X509_NAME_get_text_by_NID (X509_REQ_get_subject_name (req), NID_commonName,
                                              cn, sizeof cn),
                   ==, PEERID_LEN);
  g_assert_cmpstr (cn, ==, id->peer_id);
  g_assert_cmpint (X509_NAME_entry_count (X509_REQ_get_subject_name (req)), ==, 1);
}

static void
test_signed_in_dir (Fixture *f, gconstpointer data)
{
  g_autoptr (Identity) first = make_identity (f, "a");
  g_autofree char *dir = path_in (f, "a");
  g_autofree char *signed_path = g_build_filename (dir, IDENTITY_SIGNED_CERT_FILE, NULL);
  g_autofree char *self_path = g_strdup (first->cert_path);
  g_autoptr (GError) error = NULL;

  g_assert_true (g_str_has_suffix (first->cert_path, "identity.crt"));
  sign_for (f, first, signed_path);
  g_autoptr (Identity) again = identity_load_or_create (dir, &error);
  g_assert_no_error (error);
  /* Presented to the signaling server; the peer-id and the DTLS
   * certificate stay. */
  g_assert_cmpstr (again->cert_path, ==, signed_path);
  g_assert_cmpstr (again->peer_id, ==, first->peer_id);
  g_assert_cmpint (X509_cmp (again->cert, first->cert), ==, 0);
  g_assert_true (g_file_test (self_path, G_FILE_TEST_IS_REGULAR));
}

static void
test_signed_with_chain (Fixture *f, gconstpointer data)
{
  g_autoptr (Identity) id = make_identity (f, "a");
  g_autofree char *leaf = path_in (f, "leaf.pem");
  g_autofree char *ca = path_in (f, "ca.crt");
  g_autofree char *chain = path_in (f, "chain.pem");
  g_autofree char *leaf_pem = NULL, *ca_pem = NULL, *both = NULL;
  g_autoptr (GError) error = NULL;

  sign_for (f, id, leaf);
  g_assert_true (g_file_get_contents (leaf, &leaf_pem, NULL, NULL));
  g_assert_true (g_file_get_contents (ca, &ca_pem, NULL, NULL));
  both = g_strconcat (leaf_pem, ca_pem, NULL);
  g_assert_true (g_file_set_contents (chain, both, -1, NULL));
  g_assert_true (identity_use_cert (id, chain, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (id->cert_path, ==, chain);

  /* The CA first: not the agent's certificate. */
  g_autofree char *reversed = path_in (f, "reversed.pem");
  g_autofree char *rev = g_strconcat (ca_pem, leaf_pem, NULL);
  g_assert_true (g_file_set_contents (reversed, rev, -1, NULL));
  g_assert_false (identity_use_cert (id, reversed, &error));
  g_assert_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID);
  g_assert_cmpstr (id->cert_path, ==, chain);
}

/* Another agent's signed certificate: refused, naming the file, both at
 * load (signed-cert.pem) and by identity_use_cert. */
static void
test_signed_mismatch (Fixture *f, gconstpointer data)
{
  g_autoptr (Identity) a = make_identity (f, "a");
  g_autoptr (Identity) b = make_identity (f, "b");
  g_autofree char *dir_b = path_in (f, "b");
  g_autofree char *other = path_in (f, "other.pem");
  g_autofree char *in_b = g_build_filename (dir_b, IDENTITY_SIGNED_CERT_FILE, NULL);
  g_autofree char *b_cert = g_strdup (b->cert_path);
  g_autoptr (GError) error = NULL;

  sign_for (f, a, other);
  g_assert_false (identity_use_cert (b, other, &error));
  g_assert_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, other));
  g_assert_nonnull (strstr (error->message, "another key"));
  g_assert_nonnull (strstr (error->message, a->peer_id));
  g_assert_cmpstr (b->cert_path, ==, b_cert);
  g_clear_error (&error);

  g_autofree char *pem = NULL;
  g_assert_true (g_file_get_contents (other, &pem, NULL, NULL));
  g_assert_true (g_file_set_contents (in_b, pem, -1, NULL));
  g_assert_null (identity_load_or_create (dir_b, &error));
  g_assert_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, in_b));
}

static void
test_signed_unusable (Fixture *f, gconstpointer data)
{
  g_autoptr (Identity) id = make_identity (f, "a");
  g_autofree char *missing = path_in (f, "missing.pem");
  g_autofree char *junk = path_in (f, "junk.pem");
  g_autoptr (GError) error = NULL;

  g_assert_false (identity_use_cert (id, missing, &error));
  g_assert_error (error, IDENTITY_ERROR, IDENTITY_ERROR_IO);
  g_assert_nonnull (strstr (error->message, missing));
  g_clear_error (&error);

  g_assert_true (g_file_set_contents (junk, "not a certificate\n", -1, NULL));
  g_assert_false (identity_use_cert (id, junk, &error));
  g_assert_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, junk));
  g_assert_true (g_str_has_suffix (id->cert_path, "identity.crt"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn)                                                                    \
  g_test_add (name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/identity/create-reload", test_create_reload);
  ADD ("/identity/modes", test_modes);
  ADD ("/identity/wrong-perms", test_wrong_perms);
  ADD ("/identity/mismatch", test_mismatch);
  ADD ("/identity/garbage", test_garbage);
  ADD ("/identity/missing-halves", test_missing_halves);
  ADD ("/identity/unusable-dir", test_unusable_dir);
  ADD ("/identity/csr-verifies", test_csr_verifies);
  ADD ("/identity/signed-in-dir", test_signed_in_dir);
  ADD ("/identity/signed-with-chain", test_signed_with_chain);
  ADD ("/identity/signed-mismatch", test_signed_mismatch);
  ADD ("/identity/signed-unusable", test_signed_unusable);
#undef ADD
  g_test_add_func ("/identity/default-dir", test_default_dir);
  return g_test_run ();
}
