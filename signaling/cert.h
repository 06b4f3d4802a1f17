/* The signaling server's own TLS identity, and identities of its clients. */
#pragma once

#include <gio/gio.h>

#include "peerid.h"

#define SIGNAL_CERT_ERROR (signal_cert_error_quark ())
GQuark signal_cert_error_quark (void);
typedef enum
{
  SIGNAL_CERT_ERROR_FAILED, /* OpenSSL could not make, write or read a key */
  SIGNAL_CERT_ERROR_UNSAFE, /* a key file others may read */
} SignalCertError;

/* Makes sure @dir holds "key.pem" and "cert.pem": an ECDSA P-256 key and a
 * self-signed certificate, created on first use (directory 0700, files 0600)
 * and reused after. Its subjectAltName holds @listen_host when that is an IP
 * address, and 127.0.0.1, ::1 and localhost. Returns the two paths (owned by
 * the caller) or FALSE with @error set. */
gboolean signal_cert_ensure (const char *dir, const char *listen_host, char **cert_path,
                             char **key_path, GError **error);

/* "sha256//BASE64": SHA-256 of the DER SubjectPublicKeyInfo of @cert, the
 * format of curl's CURLOPT_PINNEDPUBLICKEY. NULL with @error on failure. */
char *signal_cert_pin (GTlsCertificate *cert, GError **error);

/* The peer-id (proto/peerid.h) of @cert's public key. FALSE if it cannot be
 * decoded. */
gboolean signal_cert_peer_id (GTlsCertificate *cert, char out[static PEERID_SIZE]);
