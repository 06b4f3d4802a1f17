/* The agent's certificate signing request; see csr.h. */
#include "csr.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_REQ, X509_REQ_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIO, BIO_free)

/* What the agent asks the CA to put into its certificate. The CA decides;
 * these only say what the certificate is for. */
static const struct
{
  int nid;
  const char *value;
} csr_extensions[] = {
  { NID_basic_constraints, "critical,CA:FALSE" },
  { NID_key_usage, "critical,digitalSignature" },
  { NID_ext_key_usage, "clientAuth" },
};

static void
csr_extension_stack_free (STACK_OF (X509_EXTENSION) * exts)
{
  sk_X509_EXTENSION_pop_free (exts, X509_EXTENSION_free);
}

static gboolean
csr_add_extensions (X509_REQ *req)
{
  STACK_OF (X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null ();
  gboolean ok = exts != NULL;

  for (gsize i = 0; ok && i < G_N_ELEMENTS (csr_extensions); i++)
    {
      X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, NULL, csr_extensions[i].nid,
                                                 csr_extensions[i].value);

      ok = ext != NULL && sk_X509_EXTENSION_push (exts, ext) > 0;
      if (!ok)
        X509_EXTENSION_free (ext);
    }
  ok = ok && X509_REQ_add_extensions (req, exts) == 1;
  if (exts != NULL)
    csr_extension_stack_free (exts);
  return ok;
}

static X509_REQ *
csr_make (const Identity *id)
{
  g_autoptr (X509_REQ) req = X509_REQ_new ();

  /* RFC 2986 section 4.1: version 0, the only one. */
  if (req == NULL || X509_REQ_set_version (req, X509_REQ_VERSION_1) != 1)
    return NULL;
  if (X509_NAME_add_entry_by_txt (X509_REQ_get_subject_name (req), "CN", MBSTRING_ASC,
                                  (const unsigned char *)id->peer_id, -1, -1, 0)
      != 1)
    return NULL;
  if (X509_REQ_set_pubkey (req, id->key) != 1 || !csr_add_extensions (req))
    return NULL;
  if (X509_REQ_sign (req, id->key, EVP_sha256 ()) <= 0)
    return NULL;
  return g_steal_pointer (&req);
}

char *
csr_new_pem (const Identity *id, GError **error)
{
  g_autoptr (X509_REQ) req = NULL;
  g_autoptr (BIO) bio = NULL;
  char *data = NULL;
  long len;

  g_return_val_if_fail (id != NULL && id->key != NULL, NULL);
  req = csr_make (id);
  bio = BIO_new (BIO_s_mem ());
  if (req == NULL || bio == NULL || PEM_write_bio_X509_REQ (bio, req) != 1
      || (len = BIO_get_mem_data (bio, &data)) <= 0 || data == NULL)
    {
      char reason[256];

      g_set_error (error, IDENTITY_ERROR, IDENTITY_ERROR_INVALID,
                   "cannot make a certificate request for %s: %s", id->key_path,
                   identity_ssl_reason (reason, sizeof reason));
      return NULL;
    }
  return g_strndup (data, (gsize)len);
}
