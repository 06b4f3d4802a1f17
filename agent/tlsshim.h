/* TURN over TLS for libnice. libnice 0.1.21's TURN-TLS relay type sends plain
 * TCP (DESIGN.md), so for a "turns:" relay the tunnel points libnice's TURN
 * over TCP at a listener of ours on 127.0.0.1, and this shim carries each
 * connection to the relay inside TLS (OpenSSL), checking the relay's
 * certificate: against a pin when the signaling server gave one, else against
 * the system's CAs and the relay's host name. */
#pragma once

#include <gio/gio.h>

#include "warn.h"

typedef struct _TlsShim TlsShim;

/* Listens on 127.0.0.1 (an ephemeral port) for connections to carry to
 * @host:@port. @pin: NULL, or "sha256//BASE64" of the relay's
 * SubjectPublicKeyInfo. */
TlsShim *tls_shim_new (GMainContext *context, const char *host, guint16 port, const char *pin,
                       const Warn *warn, GError **error);
void tls_shim_free (TlsShim *shim);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TlsShim, tls_shim_free)

/* The loopback port that libnice connects to. */
guint16 tls_shim_port (const TlsShim *shim);
