/* The fixture of the relay core's unit tests (test-server.c,
 * test-abuse.c), driven without sockets: a stub relay_io records every
 * datagram the core sends, and helpers build authenticated requests. */
#pragma once

#include <glib.h>

#include "server.h"

#define NOW 1700000000
#define SECRET "s3cret"
#define REALM "test.realm"

struct sent
{
  void *handle;
  struct stun_addr to;
  GBytes *bytes;
};

typedef struct
{
  RelayServer *server;
  GArray *sent; /* struct sent */
  guint n_open, n_close;
  uint8_t txid_seq;
  struct stun_addr client;
  char nonce[128];
  void *conn; /* when set, send_req sends over this TCP connection */
} Fixture;

struct req
{
  uint16_t method;
  const char *user;   /* NULL: no credentials */
  const char *secret; /* for the password; default SECRET */
  gint64 lifetime;    /* -1: none */
  gboolean transport; /* REQUESTED-TRANSPORT UDP */
  const struct stun_addr *peer;
  uint16_t channel;
  const char *data;
  enum stun_class cls;
  uint16_t extra_type; /* one more attribute, when not 0 */
  const void *extra;
  size_t extra_len;
};

struct stun_addr addr4 (uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port);
/* A server with stub I/O, 4 permissions and 2 channels per allocation, the
 * client 198.51.100.1:40000, and the allow list allow (NULL: none). */
void setup_full (Fixture *f, guint max_total, guint max_user, const char *allow,
                 guint64 max_bps);
void setup_with (Fixture *f, guint max_total, guint max_user, const char *allow);
void setup (Fixture *f, gconstpointer data);
/* Frees the server and checks that every relayed socket was closed. */
void teardown (Fixture *f, gconstpointer data);
/* The last datagram sent; fails the test when there is none. */
const struct sent *last_sent (Fixture *f);
void parse_last (Fixture *f, struct stun_msg *m);
/* The error code of an error response, else 0. */
unsigned error_code (const struct stun_msg *m);
/* Feeds buf at now (seconds). */
void process (Fixture *f, gint64 now, const struct relay_source *src,
              const struct stun_addr *from, const uint8_t *buf, size_t len);
void send_req (Fixture *f, gint64 now, const struct stun_addr *from, const struct req *r);
/* "EXPIRY:alice", to free. */
char *fresh_user (gint64 expiry);
/* Allocate without credentials (401 and a nonce), then with them; asserts
 * the second answer's error code (0: success). */
void allocate (Fixture *f, const struct stun_addr *from, const char *user, unsigned want);
/* CreatePermission for peer from the fixture's client: 0 on success, else
 * the error code. */
unsigned permission_result (Fixture *f, const char *user, const struct stun_addr *peer);
/* Fetches a nonce for from (nonces are bound to the client address). */
void nonce_for (Fixture *f, const struct stun_addr *from);
