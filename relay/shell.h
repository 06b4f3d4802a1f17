/* The I/O shell of p2ptun-relay around the protocol core (server.h): all
 * sockets on one GMainContext. udp.c: the UDP listener and the relayed
 * sockets (watched through one epoll set), read and written in batches
 * (recvmmsg/sendmmsg). conn.c: the TCP and TLS listeners and their client
 * connections (stream.h framing).
 * main.c: options, signals, timers. Nothing here allocates per packet. */
#pragma once

#include <gio/gio.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "addr.h"
#include "server.h"

/* Datagrams per recvmmsg/sendmmsg call, and read calls per wakeup of a
 * socket before the loop runs other sources. */
#define RELAY_BATCH 32
#define RELAY_READ_ROUNDS 4
/* Largest UDP payload (IPv4: 65535 - 20 - 8); the buffers are this big so
 * that no datagram is cut, and only the bytes written are ever touched. */
#define RELAY_MAX_DATAGRAM 65535

/* Defaults of the connection limits (--max-connections,
 * --max-connections-per-address, --idle-timeout). */
#define RELAY_DEFAULT_MAX_CONNS 1000
#define RELAY_DEFAULT_MAX_CONNS_PER_ADDR 100
#define RELAY_DEFAULT_IDLE_TIMEOUT 30
/* Seconds a new TCP or TLS connection has for its TLS handshake and its
 * first whole message (slowloris: idle connections must not hold the
 * connection limits). Agents send their Allocate at once. */
#define RELAY_FIRST_REQUEST_TIMEOUT 5
/* Bytes queued for a client that does not read fast enough; past this,
 * whole messages for it are dropped (relayed data is datagrams: loss is
 * what UDP would do) instead of memory growing. */
#define RELAY_CONN_OUT_QUEUE (256 * 1024)

struct relay_udp_in;  /* udp.c */
struct relay_udp_out; /* udp.c */
struct relay_udp_ready; /* udp.c */
struct relay_conn;    /* conn.c */

typedef struct RelayMain
{
  GMainContext *context;
  GMainLoop *loop;
  RelayServer *server;
  GInetAddress *relay_ip;
  char *secret_file;
  GPtrArray *sources; /* signal and timer sources to destroy */
  int exit_code;

  /* udp.c */
  GSocket *listener;
  GSource *listen_source;
  struct relay_udp_in *udp_in;
  struct relay_udp_out *udp_out;
  struct relay_udp_ready *udp_ready; /* the relayed sockets' epoll set */

  /* conn.c */
  GSocket *tcp_listener;
  GSource *tcp_source;
  GSocket *tls_listener;
  GSource *tls_source;
  SSL_CTX *tls_ctx;
  char *tls_cert, *tls_key;
  GHashTable *conns;    /* struct relay_conn * (owned) -> itself */
  GHashTable *per_addr; /* IP as text (owned) -> count of connections */
  guint max_conns;
  guint max_conns_per_addr;
  guint idle_timeout;
  gint64 refused_logged; /* monotonic seconds of the last refusal logged */
  guint refused;         /* refusals since */
  guint64 conns_accepted[3]; /* by enum relay_transport (TCP and TLS) */
  guint64 conns_refused;     /* by the connection limits */

  /* metrics.c */
  struct _Promhttp *metrics;
} RelayMain;

/* udp.c */
gboolean relay_udp_start (RelayMain *m, GInetSocketAddress *addr, GError **error);
void relay_udp_stop (RelayMain *m);
/* Sends what relay_io_send queued (sendmmsg). Called at the end of every
 * dispatch that fed the core. */
void relay_udp_flush (RelayMain *m);
void *relay_io_relay_open (void *user, uint16_t port, struct stun_addr *relayed);
void relay_io_relay_close (void *user, void *handle);
void relay_io_send (void *user, void *handle, const struct stun_addr *to,
                    const uint8_t *buf, size_t len);

/* conn.c */
/* TCP listener on addr's port (the UDP listener's); FALSE with error set. */
gboolean relay_tcp_start (RelayMain *m, GInetSocketAddress *addr, GError **error);
/* TLS context from m->tls_cert and m->tls_key (also for SIGHUP), and the
 * TLS listener. */
SSL_CTX *relay_tls_context_new (const char *cert, const char *key, GError **error);
/* "sha256//BASE64" of the certificate's public key: what agents pin
 * (p2ptun-signal --relay-pin). */
char *relay_tls_pin (SSL_CTX *ctx);
gboolean relay_tls_start (RelayMain *m, GInetSocketAddress *addr, GError **error);
void relay_conn_io_send (void *user, void *conn, const uint8_t *buf, size_t len);
/* Closes dead connections and idle ones without an allocation. Once a second. */
void relay_conns_tick (RelayMain *m);
void relay_conns_stop (RelayMain *m);

/* metrics.c: Prometheus metrics on addr (--metrics), over plain HTTP. */
gboolean relay_metrics_start (RelayMain *m, GInetSocketAddress *addr, GError **error);
/* The bound address as ADDR:PORT (to free). */
char *relay_metrics_address (RelayMain *m);
void relay_metrics_stop (RelayMain *m);
