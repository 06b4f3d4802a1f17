/* The agent's identity: an ECDSA P-256 key and a self-signed certificate in
 * the config directory (identity.key and identity.crt, PEM, mode 0600), created
 * on first use. The peer-id is the hash of the certificate's public key.
 *
 * A certificate for the same key signed by an organisation's CA (from the
 * request that csr.c makes) may sit next to them as signed-cert.pem, or be
 * given with identity_use_cert: the agent then presents it to the signaling
 * server, whose --client-ca admits it. The self-signed one stays for DTLS,
 * where peers check the key's hash and nothing else. */
#pragma once

#include <glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "peerid.h"

#define IDENTITY_ERROR (identity_error_quark ())
GQuark identity_error_quark (void);
typedef enum
{
  IDENTITY_ERROR_IO,      /* cannot create or read the files */
  IDENTITY_ERROR_INVALID, /* the files are not a matching key and certificate */
  IDENTITY_ERROR_PERMS,   /* the key file is readable by others */
} IdentityError;

typedef struct
{
  EVP_PKEY *key;
  X509 *cert;
  char peer_id[PEERID_SIZE];
  char *key_path;  /* PEM files, for libcurl */
  char *cert_path; /* what libcurl presents to the signaling server: the signed
                    * certificate (and its chain) when there is one, else
                    * identity.crt */
} Identity;

/* The file in the config directory that identity_load_or_create takes as the
 * signed certificate when it exists. */
#define IDENTITY_SIGNED_CERT_FILE "signed-cert.pem"

/* Presents @path to the signaling server from now on (to sigclients made
 * after): PEM, a certificate for the agent's own key first, then any chain
 * certificates. Refuses, naming the file, a certificate for another key. */
gboolean identity_use_cert (Identity *id, const char *path, GError **error);

/* Loads the identity from @config_dir, creating the directory (0700) and a new
 * identity there when there is none. */
Identity *identity_load_or_create (const char *config_dir, GError **error);
void identity_free (Identity *id);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Identity, identity_free)

/* The first queued OpenSSL error in @buf, for messages; clears the queue. */
const char *identity_ssl_reason (char *buf, size_t cap);

/* The default config directory: $XDG_CONFIG_HOME/p2ptun (or ~/.config/p2ptun). */
char *identity_default_config_dir (void);
