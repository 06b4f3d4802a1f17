/* Unit tests of agent/identity.c: creation, reload, permissions, and refusal
 * of files that are not a matching key and certificate. */
#include "identity.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <openssl/pem.h>

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
#undef ADD
  g_test_add_func ("/identity/default-dir", test_default_dir);
  return g_test_run ();
}
