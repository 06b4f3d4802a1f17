/* Unit tests for proto/peerid.c. The expected strings were computed outside
 * this code: python3 base64.b32encode(hashlib.sha256(x).digest()).lower()
 * .rstrip('='), and for the certificate
 *   openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER
 *     | openssl dgst -sha256 -binary | base32. */
#include <string.h>

#include <glib.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "peerid.h"

/* A self-signed ECDSA P-256 certificate made once with
 * openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 */
static const char test_cert_pem[]
    = "-----BEGIN CERTIFICATE-----\n"
      "MIIBgzCCASmgAwIBAgIURA3SYeXvndIqVIj8iv0nBsXItWIwCgYIKoZIzj0EAwIw\n"
      "FjEUMBIGA1UEAwwLcDJwdHVuLXRlc3QwIBcNMjYxMTIyMDQwNzAyWhgPMjEyNjEw\n"
      "MjkwNDA3MDJaMBYxFDASBgNVBAMMC3AycHR1bi10ZXN0MFkwEwYHKoZIzj0CAQYI\n"
      "KoZIzj0DAQcDQgAES5lS1VjoLiUEjrz43N4mL+gk/tb1CSN97U52cIPQTqlBrFAo\n"
      "c93pJmGIIG2N+WCg9zZKfi6RxoFXc+OBdbJScaNTMFEwHQYDVR0OBBYEFAyQz9MR\n"
      "YIaHqUxsbG4ai8rBI7eqMB8GA1UdIwQYMBaAFAyQz9MRYIaHqUxsbG4ai8rBI7eq\n"
      "MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgT8BZVhXKW4jOrXcw\n"
      "Oz8dJlAgwNzsarProzZmcdYqSnsCIQCjt6plNFy2FcapXYFp6xjWgvitklQ6QKGB\n"
      "qkbuvf2www==\n"
      "-----END CERTIFICATE-----\n";
#define TEST_CERT_PEERID "v7hgw73wxjh5x4e2yhbzmzbd3ozvxabnxzgkcsusztm34ucax2ma"
/* openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER |
 * openssl dgst -sha256 -binary | base64 */
#define TEST_CERT_PIN "sha256//r85rf3a6T9vwmsHDlmQj27NbgC2+TKFKkszZvlBAvpg="

/* The certificate's SubjectPublicKeyInfo in DER. */
static const uint8_t test_spki_der[] = {
  0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
  0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
  0x04, 0x4b, 0x99, 0x52, 0xd5, 0x58, 0xe8, 0x2e, 0x25, 0x04, 0x8e, 0xbc, 0xf8,
  0xdc, 0xde, 0x26, 0x2f, 0xe8, 0x24, 0xfe, 0xd6, 0xf5, 0x09, 0x23, 0x7d, 0xed,
  0x4e, 0x76, 0x70, 0x83, 0xd0, 0x4e, 0xa9, 0x41, 0xac, 0x50, 0x28, 0x73, 0xdd,
  0xe9, 0x26, 0x61, 0x88, 0x20, 0x6d, 0x8d, 0xf9, 0x60, 0xa0, 0xf7, 0x36, 0x4a,
  0x7e, 0x2e, 0x91, 0xc6, 0x81, 0x57, 0x73, 0xe3, 0x81, 0x75, 0xb2, 0x52, 0x71,
};

static void
test_base32_rfc4648 (void)
{
  /* RFC 4648 section 10 test vectors, lowercased and without padding. */
  static const struct
  {
    const char *in, *out;
  } v[] = {
    { "", "" },
    { "f", "my" },
    { "fo", "mzxq" },
    { "foo", "mzxw6" },
    { "foob", "mzxw6yq" },
    { "fooba", "mzxw6ytb" },
    { "foobar", "mzxw6ytboi" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (v); i++)
    {
      char out[32];
      memset (out, 'X', sizeof out);
      size_t n = peerid_base32_encode ((const uint8_t *)v[i].in, strlen (v[i].in), out,
                                       sizeof out);
      g_assert_cmpuint (n, ==, strlen (v[i].out));
      g_assert_cmpstr (out, ==, v[i].out);
    }
}

static void
test_base32_capacity (void)
{
  const uint8_t in[] = "foobar";
  char out[16];

  /* "foobar" needs 10 characters and the NUL. */
  g_assert_cmpuint (peerid_base32_encode (in, 6, out, 11), ==, 10);
  g_assert_cmpstr (out, ==, "mzxw6ytboi");
  memset (out, 'X', sizeof out);
  g_assert_cmpuint (peerid_base32_encode (in, 6, out, 10), ==, 0);
  g_assert_cmpint (out[0], ==, '\0');
  g_assert_cmpuint (peerid_base32_encode (in, 6, out, 0), ==, 0);
  g_assert_cmpuint (peerid_base32_encode (in, 6, NULL, 16), ==, 0);
  g_assert_cmpuint (peerid_base32_encode (NULL, 6, out, 16), ==, 0);
  g_assert_cmpuint (peerid_base32_encode (in, SIZE_MAX, out, 16), ==, 0);

  uint8_t hash[PEERID_HASH_LEN] = { 0 };
  char id[PEERID_SIZE];
  g_assert_cmpuint (peerid_base32_encode (hash, sizeof hash, id, sizeof id), ==,
                    PEERID_LEN);
  g_assert_cmpuint (peerid_base32_encode (hash, sizeof hash, id, PEERID_LEN), ==, 0);
}

static void
test_from_spki_der (void)
{
  char id[PEERID_SIZE];

  peerid_from_spki_der (test_spki_der, sizeof test_spki_der, id);
  g_assert_cmpstr (id, ==, TEST_CERT_PEERID);
  g_assert_true (peerid_is_valid (id));

  /* SHA-256 of the empty string and of "p2ptun". */
  peerid_from_spki_der ((const uint8_t *)"", 0, id);
  g_assert_cmpstr (id, ==, "4oymiquy7qobjgx36tejs35zeqt24qpemsnzgtfeswmrw6csxbkq");
  peerid_from_spki_der ((const uint8_t *)"p2ptun", 6, id);
  g_assert_cmpstr (id, ==, "su2z526vpykjjvgsiftl2poclgxzljxyp6bgqlmws6z5qj6lo4rq");
}

static X509 *
load_test_cert (void)
{
  BIO *bio = BIO_new_mem_buf (test_cert_pem, (int)strlen (test_cert_pem));
  g_assert_nonnull (bio);
  X509 *cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
  BIO_free (bio);
  g_assert_nonnull (cert);
  return cert;
}

static void
test_from_x509 (void)
{
  X509 *cert = load_test_cert ();
  char id[PEERID_SIZE];

  g_assert_true (peerid_from_x509 (cert, id));
  g_assert_cmpstr (id, ==, TEST_CERT_PEERID);

  /* The same key, reached through EVP_PKEY. */
  EVP_PKEY *pkey = X509_get0_pubkey (cert);
  g_assert_nonnull (pkey);
  g_assert_true (peerid_from_pkey (pkey, id));
  g_assert_cmpstr (id, ==, TEST_CERT_PEERID);

  char pin[PEERID_PIN_SIZE];
  g_assert_true (peerid_pin_from_x509 (cert, pin));
  g_assert_cmpstr (pin, ==, TEST_CERT_PIN);

  X509_free (cert);

  g_assert_false (peerid_pin_from_x509 (NULL, pin));
  g_assert_cmpstr (pin, ==, "");
  g_assert_false (peerid_from_x509 (NULL, id));
  g_assert_cmpstr (id, ==, "");
  g_assert_false (peerid_from_pkey (NULL, id));
  g_assert_cmpstr (id, ==, "");
}

static void
test_from_generated_key (void)
{
  /* A fresh key: its peer-id must be valid and stable. */
  EVP_PKEY *pkey = EVP_EC_gen ("P-256");
  g_assert_nonnull (pkey);
  char a[PEERID_SIZE], b[PEERID_SIZE];
  g_assert_true (peerid_from_pkey (pkey, a));
  g_assert_true (peerid_from_pkey (pkey, b));
  g_assert_true (peerid_is_valid (a));
  g_assert_true (peerid_equal (a, b));
  g_assert_false (peerid_equal (a, TEST_CERT_PEERID));
  EVP_PKEY_free (pkey);
}

static void
test_is_valid (void)
{
  const char *good = TEST_CERT_PEERID;
  char s[64];

  g_assert_true (peerid_is_valid (good));
  g_assert_true (
      peerid_is_valid ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
  g_assert_true (
      peerid_is_valid ("777777777777777777777777777777777777777777777777777q"));
  g_assert_false (peerid_is_valid (NULL));
  g_assert_false (peerid_is_valid (""));

  /* Uppercase. */
  g_assert_false (
      peerid_is_valid ("V7HGW73WXJH5X4E2YHBZMZBD3OZVXABNXZGKCSUSZTM34UCAX2MA"));
  strcpy (s, good);
  s[0] = 'V';
  g_assert_false (peerid_is_valid (s));

  /* 51 and 53 characters. */
  strcpy (s, good);
  s[51] = '\0';
  g_assert_false (peerid_is_valid (s));
  strcpy (s, good);
  strcat (s, "a");
  g_assert_false (peerid_is_valid (s));

  /* Padding and characters outside the alphabet. */
  const char bad[] = { '=', '1', '8', '0', '9', ' ', '-', 0x7f, (char)0xc3 };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      strcpy (s, good);
      s[10] = bad[i];
      g_assert_false (peerid_is_valid (s));
    }
  strcpy (s, good);
  s[51] = '=';
  g_assert_false (peerid_is_valid (s));

  /* The last character carries 1 bit of hash and 4 zero bits: only 'a' (0)
   * and 'q' (16) are valid there. */
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  for (gsize i = 0; i < 32; i++)
    {
      strcpy (s, good);
      s[51] = alphabet[i];
      g_assert_cmpint (peerid_is_valid (s), ==, alphabet[i] == 'a' || alphabet[i] == 'q');
    }
}

static void
test_equal (void)
{
  char s[PEERID_SIZE];
  strcpy (s, TEST_CERT_PEERID);

  g_assert_true (peerid_equal (s, TEST_CERT_PEERID));
  s[5] = s[5] == 'a' ? 'b' : 'a';
  g_assert_false (peerid_equal (s, TEST_CERT_PEERID));
  g_assert_false (peerid_equal (NULL, TEST_CERT_PEERID));
  g_assert_false (peerid_equal (TEST_CERT_PEERID, NULL));
  /* Not valid, even if identical. */
  g_assert_false (peerid_equal ("abc", "abc"));
  g_assert_false (peerid_equal ("V7HGW73WXJH5X4E2YHBZMZBD3OZVXABNXZGKCSUSZTM34UCAX2MA",
                                "V7HGW73WXJH5X4E2YHBZMZBD3OZVXABNXZGKCSUSZTM34UCAX2MA"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/peerid/base32/rfc4648", test_base32_rfc4648);
  g_test_add_func ("/peerid/base32/capacity", test_base32_capacity);
  g_test_add_func ("/peerid/from-spki-der", test_from_spki_der);
  g_test_add_func ("/peerid/from-x509", test_from_x509);
  g_test_add_func ("/peerid/from-generated-key", test_from_generated_key);
  g_test_add_func ("/peerid/is-valid", test_is_valid);
  g_test_add_func ("/peerid/equal", test_equal);
  return g_test_run ();
}
