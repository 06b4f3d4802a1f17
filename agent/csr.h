/* A certificate signing request (PKCS#10, RFC 2986) for the agent's own key,
 * for an organisation's CA to sign: p2ptun-signal --client-ca admits the
 * agents whose certificate it signed (identity.h: signed-cert.pem). */
#pragma once

#include <glib.h>

#include "identity.h"

/* The request in PEM: subject CN = the peer-id, the agent's public key, the
 * extensions an agent's client certificate wants (not a CA, digital
 * signatures, TLS client), signed with @id's key over SHA-256. Free with
 * g_free; NULL with an IDENTITY_ERROR when OpenSSL fails. */
char *csr_new_pem (const Identity *id, GError **error);
