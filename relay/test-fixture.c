/* The fixture of the relay core's unit tests; see test-fixture.h. */
#include "test-fixture.h"

#include <string.h>

static void *
stub_open (void *user, uint16_t port, struct stun_addr *relayed)
{
  Fixture *f = user;
  f->n_open++;
  relayed->family = 4;
  relayed->port = port != 0 ? port : (uint16_t)(50000 + f->n_open);
  relayed->ip[0] = 203, relayed->ip[1] = 0, relayed->ip[2] = 113, relayed->ip[3] = 1;
  return GUINT_TO_POINTER (f->n_open);
}

static void
stub_close (void *user, void *handle)
{
  Fixture *f = user;
  f->n_close++;
}

static void
stub_send (void *user, void *handle, const struct stun_addr *to, const uint8_t *buf,
           size_t len)
{
  Fixture *f = user;
  struct sent s = { .handle = handle, .to = *to, .bytes = g_bytes_new (buf, len) };
  g_array_append_val (f->sent, s);
}

/* Stream connections are recorded like datagrams, with conn as the handle
 * and no address. */
static void
stub_conn_send (void *user, void *conn, const uint8_t *buf, size_t len)
{
  Fixture *f = user;
  struct sent s = { .handle = conn, .bytes = g_bytes_new (buf, len) };
  g_array_append_val (f->sent, s);
}

static void
clear_sent (gpointer p)
{
  struct sent *s = p;
  g_bytes_unref (s->bytes);
}

struct stun_addr
addr4 (uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
  struct stun_addr x;
  memset (&x, 0, sizeof x);
  x.family = 4;
  x.port = port;
  x.ip[0] = a, x.ip[1] = b, x.ip[2] = c, x.ip[3] = d;
  return x;
}

void
setup_full (Fixture *f, guint max_total, guint max_user, const char *allow,
            guint64 max_bps)
{
  memset (f, 0, sizeof *f);
  f->sent = g_array_new (FALSE, TRUE, sizeof (struct sent));
  g_array_set_clear_func (f->sent, clear_sent);
  struct relay_config c;
  relay_config_init (&c);
  c.realm = g_strdup (REALM);
  c.max_allocations = max_total;
  c.max_per_user = max_user;
  c.max_permissions = 4;
  c.max_channels = 2;
  c.max_bps = max_bps;
  if (allow != NULL)
    {
      struct relay_cidr cidr;
      g_assert_true (relay_cidr_parse (allow, &cidr));
      c.allow_peers = g_array_new (FALSE, TRUE, sizeof cidr);
      g_array_append_val (c.allow_peers, cidr);
    }
  struct relay_io io = { stub_open, stub_close, stub_send, stub_conn_send, f };
  f->server = relay_server_new (&c, &io, (const uint8_t *)SECRET, strlen (SECRET));
  f->client = addr4 (198, 51, 100, 1, 40000);
}

void
setup_with (Fixture *f, guint max_total, guint max_user, const char *allow)
{
  setup_full (f, max_total, max_user, allow, 0);
}

void
setup (Fixture *f, gconstpointer data)
{
  setup_with (f, 1000, 10, NULL);
}

void
teardown (Fixture *f, gconstpointer data)
{
  relay_server_free (f->server);
  g_assert_cmpuint (f->n_open, ==, f->n_close);
  g_array_unref (f->sent);
}

/* The last datagram sent, parsed; fails the test when there is none. */
const struct sent *
last_sent (Fixture *f)
{
  g_assert_cmpuint (f->sent->len, >, 0);
  return &g_array_index (f->sent, struct sent, f->sent->len - 1);
}

void
parse_last (Fixture *f, struct stun_msg *m)
{
  gsize n;
  const uint8_t *d = g_bytes_get_data (last_sent (f)->bytes, &n);
  g_assert_cmpint (stun_parse (d, n, m), ==, STUN_OK);
  g_assert_true (m->fingerprint_idx < 0 || stun_msg_check_fingerprint (m));
}

unsigned
error_code (const struct stun_msg *m)
{
  unsigned code = 0;
  const char *r;
  size_t rl;
  if (m->cls != STUN_CLASS_ERROR || !stun_msg_get_error_code (m, &code, &r, &rl))
    return 0;
  return code;
}

/* The core takes microseconds; the tests count in seconds. */
void
process (Fixture *f, gint64 now, const struct relay_source *src,
         const struct stun_addr *from, const uint8_t *buf, size_t len)
{
  relay_server_process (f->server, now * G_USEC_PER_SEC, src, from, buf, len);
}

void
send_req (Fixture *f, gint64 now, const struct stun_addr *from, const struct req *r)
{
  uint8_t buf[1024], txid[STUN_TXID_LEN] = { 0x42 };
  txid[11] = ++f->txid_seq;
  struct stun_builder b;
  stun_builder_init (&b, buf, sizeof buf, r->method, r->cls, txid);
  if (r->transport)
    {
      uint8_t t[4] = { RELAY_PROTO_UDP };
      stun_builder_add (&b, STUN_ATTR_REQUESTED_TRANSPORT, t, 4);
    }
  if (r->lifetime >= 0)
    stun_builder_add_u32 (&b, STUN_ATTR_LIFETIME, (uint32_t)r->lifetime);
  if (r->channel)
    stun_builder_add_u32 (&b, STUN_ATTR_CHANNEL_NUMBER, (uint32_t)r->channel << 16);
  if (r->peer)
    stun_builder_add_xor_addr (&b, STUN_ATTR_XOR_PEER_ADDRESS, r->peer);
  if (r->data)
    stun_builder_add (&b, STUN_ATTR_DATA, r->data, strlen (r->data));
  if (r->extra_type)
    stun_builder_add (&b, r->extra_type, r->extra, r->extra_len);
  if (r->user)
    {
      char pw[29];
      const char *secret = r->secret ? r->secret : SECRET;
      g_assert_true (relay_rest_password ((const uint8_t *)secret, strlen (secret),
                                          r->user, strlen (r->user), pw));
      uint8_t key[16];
      g_assert_true (stun_long_term_key (r->user, strlen (r->user), REALM, strlen (REALM),
                                         pw, strlen (pw), key));
      stun_builder_add (&b, STUN_ATTR_USERNAME, r->user, strlen (r->user));
      stun_builder_add (&b, STUN_ATTR_REALM, REALM, strlen (REALM));
      stun_builder_add (&b, STUN_ATTR_NONCE, f->nonce, strlen (f->nonce));
      stun_builder_add_integrity (&b, key, sizeof key);
    }
  stun_builder_add_fingerprint (&b);
  size_t n = stun_builder_finish (&b);
  g_assert_cmpuint (n, >, 0);
  struct relay_source src = { RELAY_TRANSPORT_UDP, NULL, NULL };
  if (f->conn != NULL)
    src = (struct relay_source){ RELAY_TRANSPORT_TCP, NULL, f->conn };
  process (f, now, &src, from, buf, n);
}

char *
fresh_user (gint64 expiry)
{
  return g_strdup_printf ("%" G_GINT64_FORMAT ":alice", expiry);
}

/* Allocate without credentials (401 and a nonce), then with them. */
void
allocate (Fixture *f, const struct stun_addr *from, const char *user, unsigned want)
{
  struct stun_msg m;
  send_req (
      f, NOW, from,
      &(struct req){ .method = STUN_METHOD_ALLOCATE, .lifetime = -1, .transport = TRUE });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 401);
  const char *nonce, *realm;
  size_t nl, rl;
  g_assert_true (stun_msg_get_string (&m, STUN_ATTR_NONCE, &nonce, &nl));
  g_assert_true (stun_msg_get_string (&m, STUN_ATTR_REALM, &realm, &rl));
  g_assert_cmpmem (realm, rl, REALM, strlen (REALM));
  g_assert_cmpuint (nl, <, sizeof f->nonce);
  memcpy (f->nonce, nonce, nl);
  f->nonce[nl] = '\0';

  send_req (f, NOW, from,
            &(struct req){ .method = STUN_METHOD_ALLOCATE,
                           .user = user,
                           .lifetime = -1,
                           .transport = TRUE });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, want);
}

/* CreatePermission for @peer from the fixture's client: 0 on success, else
 * the error code. */
unsigned
permission_result (Fixture *f, const char *user, const struct stun_addr *peer)
{
  struct stun_msg m;

  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_CREATE_PERMISSION,
                           .user = user,
                           .lifetime = -1,
                           .peer = peer });
  parse_last (f, &m);
  return m.cls == STUN_CLASS_SUCCESS ? 0 : error_code (&m);
}

/* Fetches a nonce for from (nonces are bound to the client address). */
void
nonce_for (Fixture *f, const struct stun_addr *from)
{
  struct stun_msg m;
  send_req (f, NOW, from, &(struct req){ .method = STUN_METHOD_REFRESH, .lifetime = -1 });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 401);
  const char *nonce;
  size_t nl;
  g_assert_true (stun_msg_get_string (&m, STUN_ATTR_NONCE, &nonce, &nl));
  g_assert_cmpuint (nl, <, sizeof f->nonce);
  memcpy (f->nonce, nonce, nl);
  f->nonce[nl] = '\0';
}
