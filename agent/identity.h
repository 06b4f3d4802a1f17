/* The agent's identity: an ECDSA P-256 key and a self-signed certificate in
 * the config directory (identity.key and identity.crt, PEM, mode 0600), created
 * on first use. The peer-id is the hash of the certificate's public key. */
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
  char *cert_path;
} Identity;

/* Loads the identity from @config_dir, creating the directory (0700) and a new
 * identity there when there is none. */
Identity *identity_load_or_create (const char *config_dir, GError **error);
void identity_free (Identity *id);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Identity, identity_free)

/* The default config directory: $XDG_CONFIG_HOME/p2ptun (or ~/.config/p2ptun). */
char *identity_default_config_dir (void);
