/* The relay's protocol core (RFC 8656 TURN over UDP, TCP and TLS, RFC 8489
 * Binding), sans-IO: it never touches a socket and takes the time as a
 * parameter. The shell (main.c) feeds it every datagram from clients on the
 * UDP listener and from peers on relayed sockets, and every whole message
 * that stream framing (stream.h) cut from a client's TCP or TLS connection,
 * and carries out what it asks through struct relay_io. Unit tests and the
 * fuzzer drive it with stubs. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "auth.h"
#include "policy.h"
#include "stats.h"
#include "stun.h"
#include "turnuser.h"

/* RFC 8656 section 9: permissions last 300 s; section 12: channels 600 s. */
#define RELAY_PERMISSION_LIFETIME 300
#define RELAY_CHANNEL_LIFETIME 600
/* RFC 8656 section 12: channel numbers 0x4000 through 0x4FFF. RFC 5766
 * allowed up to 0x7FFF and clients still use that range (coturn's
 * turnutils_uclient picks numbers up to 0x7FFF), so the relay accepts it:
 * its listener carries no DTLS or SRTP to collide with (RFC 7983). */
#define RELAY_CHANNEL_MIN 0x4000
#define RELAY_CHANNEL_MAX 0x4FFF
#define RELAY_CHANNEL_MAX_RFC5766 0x7FFF
/* RFC 8656 section 7.2: the default lifetime is 10 minutes; 3600 s is the
 * usual ceiling. */
#define RELAY_DEFAULT_LIFETIME 600
#define RELAY_DEFAULT_MAX_LIFETIME 3600
/* RFC 8656 section 7.2: a reserved port is kept about 30 seconds. */
#define RELAY_RESERVATION_LIFETIME 30
/* RFC 8656 section 18.9: RESERVATION-TOKEN is 8 bytes. */
#define RELAY_TOKEN_LEN 8
/* Tries to find an even port (pair) before answering 508. */
#define RELAY_EVEN_PORT_TRIES 32
/* Largest --max-bps and username "b=" (1 TB/s): the bucket counts
 * byte-microseconds in 64 bits. */
#define RELAY_MAX_BPS_LIMIT TURNUSER_MAX_BPS
/* A bandwidth limit's drops are logged at most once per this many seconds
 * per allocation. */
#define RELAY_BW_LOG_INTERVAL 10
/* IANA protocol number for UDP (RFC 8656 section 18.13). */
#define RELAY_PROTO_UDP 17

/* How a client reaches the relay. Peers are always reached over UDP. */
enum relay_transport
{
  RELAY_TRANSPORT_UDP,
  RELAY_TRANSPORT_TCP,
  RELAY_TRANSPORT_TLS,
};

struct relay_config
{
  char *realm;
  guint max_allocations;
  guint max_per_user;    /* per NAME of "EXPIRY:NAME" (quota.h), unless the
                            username's "a=" says otherwise */
  guint max_per_address; /* per client IP address, any transport */
  guint max_permissions;
  guint max_channels;
  guint default_lifetime;
  guint max_lifetime;
  /* Relayed payload bytes per second per allocation, both directions
   * together (coturn's max-bps), unless the username's "b=" says otherwise;
   * 0: no limit. Bursts of one second's worth. */
  guint64 max_bps;
  GArray *allow_peers; /* of struct relay_cidr; may be NULL */
};

/* Fills the defaults; the caller sets realm (g_strdup) and may add to
 * allow_peers. relay_config_clear frees both. */
void relay_config_init (struct relay_config *config);
void relay_config_clear (struct relay_config *config);

/* Where a message came from: a client (relay_handle NULL) on the UDP
 * listener (conn NULL) or on a stream connection (conn: the shell's handle
 * of it, for TCP and TLS), or a peer on a relayed socket (the handle
 * relay_open returned). */
struct relay_source
{
  enum relay_transport transport;
  void *relay_handle;
  void *conn;
};

struct relay_io
{
  /* Opens a relayed UDP socket on port (0: any), sets *relayed to its
   * address and returns a non-NULL handle, or returns NULL. */
  void *(*relay_open) (void *user, uint16_t port, struct stun_addr *relayed);
  void (*relay_close) (void *user, void *handle);
  /* Sends one datagram: to a client from the listener (handle NULL), or to
   * a peer from a relayed socket. buf is only valid during the call. */
  void (*send) (void *user, void *handle, const struct stun_addr *to, const uint8_t *buf,
                size_t len);
  /* Queues one whole message (framing and padding included) on a client's
   * stream connection, or drops it when the connection's output queue is
   * full. buf is only valid during the call. May be NULL when no stream
   * connection is ever passed in. */
  void (*conn_send) (void *user, void *conn, const uint8_t *buf, size_t len);
  void *user;
};

typedef struct RelayServer RelayServer;

/* Takes ownership of *config (cleared on return). The secret is copied. */
RelayServer *relay_server_new (struct relay_config *config, const struct relay_io *io,
                               const uint8_t *secret, size_t secret_len);
void relay_server_free (RelayServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RelayServer, relay_server_free)

void relay_server_set_secret (RelayServer *server, const uint8_t *secret,
                              size_t secret_len);

/* One datagram, or one whole message from a stream connection (ChannelData
 * may carry its padding). now_us is Unix time in microseconds
 * (g_get_real_time (): REST usernames carry Unix time; the bandwidth limit
 * needs finer steps than seconds). */
void relay_server_process (RelayServer *server, gint64 now_us,
                           const struct relay_source *source,
                           const struct stun_addr *from, const uint8_t *buf, size_t len);

/* A stream connection closed: frees the allocation made over it (RFC 8656
 * section 3.1: its 5-tuple is gone). The core never uses conn again. */
void relay_server_conn_closed (RelayServer *server, void *conn);
/* Whether an allocation made over conn is alive (the shell closes idle
 * connections without one). */
gboolean relay_server_conn_has_allocation (RelayServer *server, void *conn);

/* Drops expired allocations, permissions and channels. Call about once a second. */
void relay_server_expire (RelayServer *server, gint64 now_us);

guint relay_server_n_allocations (RelayServer *server);
/* The core's counters, owned by the server. */
const struct relay_stats *relay_server_stats (RelayServer *server);
