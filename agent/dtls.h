/* DTLS 1.2 over memory BIOs: the agent feeds records in with dtls_receive()
 * and gets records out through a callback, so the transport underneath (a
 * libnice component) can change without DTLS noticing. Retransmission timers
 * run on the given GMainContext.
 *
 * Both sides present their identity certificate; the peer's certificate is
 * accepted only if the hash of its public key equals the expected peer-id. */
#pragma once

#include <gio/gio.h>

#include "identity.h"

/* A 1200-byte ICE payload fits inside TURN framing on every path: the
 * handshake and the first records use it. */
#define DTLS_LINK_MTU 1200
/* The UDP payload of a 1500-byte IPv4 packet: the largest record the
 * transport probes for on the Internet (its path MTU discovery finds what a
 * path carries). Paths of larger MTU (loopback, jumbo frames) carry records
 * up to DTLS_PLAINTEXT_MAX of plaintext. */
#define DTLS_LINK_MTU_MAX 1472
/* The most plaintext one record holds (RFC 6347, 2^14). */
#define DTLS_PLAINTEXT_MAX 16384

#define DTLS_ERROR (dtls_error_quark ())
GQuark dtls_error_quark (void);
typedef enum
{
  DTLS_ERROR_PEER_MISMATCH, /* the peer's key is not the expected peer-id */
  DTLS_ERROR_HANDSHAKE,     /* the handshake failed or timed out */
  DTLS_ERROR_CLOSED,        /* the peer sent close_notify */
  DTLS_ERROR_INTERNAL,
} DtlsError;

typedef struct _Dtls Dtls;

typedef struct
{
  /* A record to put on the wire. */
  void (*send_record) (const guint8 *buf, gsize len, gpointer user_data);
  /* The handshake finished and the peer is who we expected. */
  void (*connected) (gpointer user_data);
  /* One decrypted record. */
  void (*data) (const guint8 *buf, gsize len, gpointer user_data);
  /* Fatal: the session is over. Called at most once. */
  void (*failed) (const GError *error, gpointer user_data);
} DtlsCallbacks;

/* @identity is borrowed and must outlive the session. */
Dtls *dtls_new (GMainContext *context, const Identity *identity, gboolean is_client,
                const char *expected_peer_id, const DtlsCallbacks *callbacks,
                gpointer user_data, GError **error);
void dtls_free (Dtls *dtls);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Dtls, dtls_free)

/* Starts the handshake (the client sends its ClientHello). */
void dtls_start (Dtls *dtls);
/* One datagram from the wire (first byte 20..63, RFC 7983). */
void dtls_receive (Dtls *dtls, const guint8 *buf, gsize len);
/* Encrypts @len bytes (at most DTLS_PLAINTEXT_MAX) as one record. Returns
 * FALSE if the session is not connected. */
gboolean dtls_send (Dtls *dtls, const guint8 *buf, gsize len);
/* Plaintext bytes that fit in one record of DTLS_LINK_MTU bytes. */
gsize dtls_max_payload (Dtls *dtls);
/* The same for a record of @link_mtu bytes (at most DTLS_PLAINTEXT_MAX). */
gsize dtls_max_payload_for_link (Dtls *dtls, gsize link_mtu);
/* Sends close_notify. */
void dtls_close (Dtls *dtls);

/* SRTP keys from the handshake (RFC 5764): master key and salt for each
 * direction, as the negotiated protection profile sizes them. */
#define DTLS_SRTP_KEY_LEN 16
#define DTLS_SRTP_SALT_MAX 14
typedef enum
{
  DTLS_SRTP_NONE = 0,          /* not negotiated: the peer's agent has no media */
  DTLS_SRTP_AEAD_AES_128_GCM,  /* RFC 7714; salt of 12 bytes */
  DTLS_SRTP_AES128_CM_SHA1_80, /* RFC 3711; salt of 14 bytes */
} DtlsSrtpProfile;

typedef struct
{
  DtlsSrtpProfile profile;
  gsize salt_len;
  guint8 local[DTLS_SRTP_KEY_LEN + DTLS_SRTP_SALT_MAX];  /* what we protect with */
  guint8 remote[DTLS_SRTP_KEY_LEN + DTLS_SRTP_SALT_MAX]; /* what the peer protects with */
} DtlsSrtpKeys;

/* The profile the handshake agreed on, and the keys exported for it. FALSE
 * (profile DTLS_SRTP_NONE) before the handshake or if the peer did not offer
 * use_srtp. Clear the keys with dtls_srtp_keys_clear() after use. */
gboolean dtls_srtp_keys (Dtls *dtls, DtlsSrtpKeys *out);
void dtls_srtp_keys_clear (DtlsSrtpKeys *keys);
const char *dtls_srtp_profile_name (DtlsSrtpProfile profile);
