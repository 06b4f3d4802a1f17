/* Unit tests of the relay's protocol core, driven without sockets: a stub
 * relay_io records every datagram the core sends. */
#include <string.h>

#include <glib.h>

#include "test-fixture.h"

static void
test_unauthenticated (Fixture *f, gconstpointer data)
{
  struct stun_msg m;
  send_req (
      f, NOW, &f->client,
      &(struct req){ .method = STUN_METHOD_ALLOCATE, .lifetime = -1, .transport = TRUE });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 401);
  g_assert_nonnull (stun_msg_find (&m, STUN_ATTR_NONCE));
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==, 0);
}

static void
test_allocate (Fixture *f, gconstpointer data)
{
  g_autofree char *user = fresh_user (NOW + 3600);
  allocate (f, &f->client, user, 0);
  struct stun_msg m;
  parse_last (f, &m);
  g_assert_cmpint (m.cls, ==, STUN_CLASS_SUCCESS);
  struct stun_addr relayed, mapped;
  g_assert_true (stun_msg_get_xor_addr (&m, STUN_ATTR_XOR_RELAYED_ADDRESS, &relayed));
  g_assert_cmpuint (relayed.port, ==, 50001);
  g_assert_true (stun_msg_get_xor_addr (&m, STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped));
  g_assert_cmpuint (mapped.port, ==, 40000);
  uint32_t lifetime;
  g_assert_true (stun_msg_get_u32 (&m, STUN_ATTR_LIFETIME, &lifetime));
  g_assert_cmpuint (lifetime, ==, 600);
  /* The response is signed with the same key. */
  char pw[29];
  uint8_t key[16];
  g_assert_true (relay_rest_password ((const uint8_t *)SECRET, strlen (SECRET), user,
                                      strlen (user), pw));
  g_assert_true (stun_long_term_key (user, strlen (user), REALM, strlen (REALM), pw,
                                     strlen (pw), key));
  g_assert_true (stun_msg_check_integrity (&m, key, sizeof key));
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==, 1);

  /* Refresh with lifetime 0 deletes it (RFC 8656 section 8). */
  send_req (f, NOW + 1, &f->client,
            &(struct req){ .method = STUN_METHOD_REFRESH, .user = user, .lifetime = 0 });
  parse_last (f, &m);
  g_assert_cmpint (m.cls, ==, STUN_CLASS_SUCCESS);
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==, 0);
  g_assert_cmpuint (f->n_close, ==, 1);
}

static void
test_bad_credentials (Fixture *f, gconstpointer data)
{
  g_autofree char *expired = fresh_user (NOW - 1);
  allocate (f, &f->client, expired, 401);
  g_autofree char *user = fresh_user (NOW + 60);
  struct stun_msg m;
  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_ALLOCATE,
                           .user = user,
                           .secret = "other",
                           .lifetime = -1,
                           .transport = TRUE });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 401);
  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_ALLOCATE,
                           .user = "notanumber:bob",
                           .lifetime = -1,
                           .transport = TRUE });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 401);
  /* An old nonce is stale: 438 with a fresh one. */
  g_autofree char *later = fresh_user (NOW + 100000);
  send_req (f, NOW + 3 * RELAY_NONCE_BUCKET, &f->client,
            &(struct req){ .method = STUN_METHOD_ALLOCATE,
                           .user = later,
                           .lifetime = -1,
                           .transport = TRUE });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 438);
  g_assert_nonnull (stun_msg_find (&m, STUN_ATTR_NONCE));
  /* A nonce made for another client address is refused. */
  struct stun_addr other = addr4 (198, 51, 100, 2, 40000);
  send_req (f, NOW, &other,
            &(struct req){ .method = STUN_METHOD_ALLOCATE,
                           .user = user,
                           .lifetime = -1,
                           .transport = TRUE });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 401);
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==, 0);
}

static void
test_send_and_data (Fixture *f, gconstpointer data)
{
  g_autofree char *user = fresh_user (NOW + 3600);
  allocate (f, &f->client, user, 0);
  struct stun_addr peer = addr4 (198, 51, 100, 7, 9000);
  struct stun_msg m;

  /* Without a permission the send indication is dropped. */
  guint before = f->sent->len;
  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_SEND,
                           .cls = STUN_CLASS_INDICATION,
                           .lifetime = -1,
                           .peer = &peer,
                           .data = "hello" });
  g_assert_cmpuint (f->sent->len, ==, before);

  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_CREATE_PERMISSION,
                           .user = user,
                           .lifetime = -1,
                           .peer = &peer });
  parse_last (f, &m);
  g_assert_cmpint (m.cls, ==, STUN_CLASS_SUCCESS);

  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_SEND,
                           .cls = STUN_CLASS_INDICATION,
                           .lifetime = -1,
                           .peer = &peer,
                           .data = "hello" });
  const struct sent *s = last_sent (f);
  g_assert_true (s->handle == GUINT_TO_POINTER (1));
  g_assert_cmpuint (s->to.port, ==, 9000);
  gsize n;
  const void *d = g_bytes_get_data (s->bytes, &n);
  g_assert_cmpmem (d, n, "hello", 5);

  /* The peer answers (any port of a permitted IP): a Data indication. */
  struct stun_addr peer2 = peer;
  peer2.port = 9001;
  struct relay_source src = { RELAY_TRANSPORT_UDP, GUINT_TO_POINTER (1), NULL };
  process (f, NOW, &src, &peer2, (const uint8_t *)"world", 5);
  parse_last (f, &m);
  g_assert_cmpuint (m.method, ==, STUN_METHOD_DATA);
  g_assert_cmpint (m.cls, ==, STUN_CLASS_INDICATION);
  const uint8_t *payload;
  size_t pl;
  g_assert_true (stun_msg_get_data (&m, &payload, &pl));
  g_assert_cmpmem (payload, pl, "world", 5);
  struct stun_addr from;
  g_assert_true (stun_msg_get_xor_addr (&m, STUN_ATTR_XOR_PEER_ADDRESS, &from));
  g_assert_cmpuint (from.port, ==, 9001);
  g_assert_cmpuint (last_sent (f)->to.port, ==, 40000);

  /* Unpermitted peers are dropped; so is everything after expiry. */
  before = f->sent->len;
  struct stun_addr stranger = addr4 (198, 51, 100, 8, 9000);
  process (f, NOW, &src, &stranger, (const uint8_t *)"x", 1);
  process (f, NOW + RELAY_PERMISSION_LIFETIME + 1, &src, &peer, (const uint8_t *)"x", 1);
  g_assert_cmpuint (f->sent->len, ==, before);
}

static void
test_channel (Fixture *f, gconstpointer data)
{
  g_autofree char *user = fresh_user (NOW + 3600);
  allocate (f, &f->client, user, 0);
  struct stun_addr peer = addr4 (198, 51, 100, 7, 9000);
  struct stun_msg m;
  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_CHANNEL_BIND,
                           .user = user,
                           .lifetime = -1,
                           .peer = &peer,
                           .channel = 0x4001 });
  parse_last (f, &m);
  g_assert_cmpint (m.cls, ==, STUN_CLASS_SUCCESS);

  /* Out of range channel numbers are refused. */
  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_CHANNEL_BIND,
                           .user = user,
                           .lifetime = -1,
                           .peer = &peer,
                           .channel = 0x8000 });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 400);
  /* The same peer on another number: 400. */
  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_CHANNEL_BIND,
                           .user = user,
                           .lifetime = -1,
                           .peer = &peer,
                           .channel = 0x4002 });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 400);

  const uint8_t cd[] = { 0x40, 0x01, 0x00, 0x03, 'a', 'b', 'c', 0 };
  struct relay_source client_src = { RELAY_TRANSPORT_UDP, NULL, NULL };
  process (f, NOW, &client_src, &f->client, cd, sizeof cd);
  const struct sent *s = last_sent (f);
  g_assert_true (s->handle == GUINT_TO_POINTER (1));
  gsize n;
  const uint8_t *d = g_bytes_get_data (s->bytes, &n);
  g_assert_cmpmem (d, n, "abc", 3);

  /* Truncated channel data is dropped. */
  guint before = f->sent->len;
  process (f, NOW, &client_src, &f->client, cd, 5);
  process (f, NOW, &client_src, &f->client, cd, 2);
  g_assert_cmpuint (f->sent->len, ==, before);

  struct relay_source src = { RELAY_TRANSPORT_UDP, GUINT_TO_POINTER (1), NULL };
  process (f, NOW, &src, &peer, (const uint8_t *)"xyz", 3);
  s = last_sent (f);
  g_assert_null (s->handle);
  d = g_bytes_get_data (s->bytes, &n);
  const uint8_t want[] = { 0x40, 0x01, 0x00, 0x03, 'x', 'y', 'z' };
  g_assert_cmpmem (d, n, want, sizeof want);

  /* Channel quota (2 in this fixture): the third gets 508. */
  struct stun_addr p2 = addr4 (198, 51, 100, 9, 1), p3 = addr4 (198, 51, 100, 10, 1);
  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_CHANNEL_BIND,
                           .user = user,
                           .lifetime = -1,
                           .peer = &p2,
                           .channel = 0x4002 });
  parse_last (f, &m);
  g_assert_cmpint (m.cls, ==, STUN_CLASS_SUCCESS);
  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_CHANNEL_BIND,
                           .user = user,
                           .lifetime = -1,
                           .peer = &p3,
                           .channel = 0x4003 });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 508);
}

static void
test_quota (Fixture *f, gconstpointer data)
{
  relay_server_free (f->server);
  g_assert_cmpuint (f->n_open, ==, f->n_close);
  g_array_unref (f->sent);
  setup_with (f, 3, 2, NULL);
  g_autofree char *alice = fresh_user (NOW + 3600);
  g_autofree char *bob = g_strdup_printf ("%d:bob", NOW + 3600);
  for (uint16_t i = 0; i < 2; i++)
    {
      struct stun_addr c = addr4 (198, 51, 100, 1, (uint16_t)(40000 + i));
      allocate (f, &c, alice, 0);
    }
  struct stun_addr c3 = addr4 (198, 51, 100, 1, 40002);
  allocate (f, &c3, alice, 486);
  allocate (f, &c3, bob, 0);
  struct stun_addr c4 = addr4 (198, 51, 100, 1, 40003);
  allocate (f, &c4, bob, 508);
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==, 3);
  /* Expiry frees them all. */
  relay_server_expire (f->server, G_USEC_PER_SEC * (gint64)(NOW + 601));
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==, 0);
}

static void
test_denied_peer (Fixture *f, gconstpointer data)
{
  g_autofree char *user = fresh_user (NOW + 3600);
  allocate (f, &f->client, user, 0);
  const struct stun_addr denied[] = {
    addr4 (127, 0, 0, 1, 80),  addr4 (10, 1, 2, 3, 80),    addr4 (192, 168, 1, 1, 80),
    addr4 (172, 20, 0, 1, 80), addr4 (169, 254, 1, 1, 80), addr4 (0, 0, 0, 0, 80),
    addr4 (224, 0, 0, 1, 80),  addr4 (203, 0, 113, 1, 1),
  };
  for (size_t i = 0; i < G_N_ELEMENTS (denied); i++)
    {
      struct stun_msg m;
      g_assert_cmpuint (permission_result (f, user, &denied[i]), ==, 403);
      send_req (f, NOW, &f->client,
                &(struct req){ .method = STUN_METHOD_CHANNEL_BIND,
                               .user = user,
                               .lifetime = -1,
                               .peer = &denied[i],
                               .channel = 0x4000 });
      parse_last (f, &m);
      g_assert_cmpuint (error_code (&m), ==, 403);
    }
  struct stun_addr v6 = { .family = 6, .port = 1, .ip = { [15] = 1 } };
  g_assert_true (relay_addr_is_restricted (&v6));
  v6.ip[0] = 0xfe, v6.ip[1] = 0x80;
  g_assert_true (relay_addr_is_restricted (&v6));
  v6.ip[0] = 0x20, v6.ip[1] = 0x01;
  g_assert_false (relay_addr_is_restricted (&v6));
}

/* Two clients that both reach the relay only over TCP meet relay to relay:
 * another allocation's relayed address is a peer; the relay's own address
 * at any other port is not. */
static void
test_relay_to_relay (Fixture *f, gconstpointer data)
{
  g_autofree char *user = fresh_user (NOW + 3600);
  const struct stun_addr other_client = addr4 (198, 51, 100, 2, 40000);
  const struct stun_addr other_relayed = addr4 (203, 0, 113, 1, 50001);
  const struct stun_addr no_allocation = addr4 (203, 0, 113, 1, 50003);

  /* Nonces are bound to the client's address: the other one first. */
  allocate (f, &other_client, user, 0);
  allocate (f, &f->client, user, 0);
  g_assert_cmpuint (permission_result (f, user, &other_relayed), ==, 0);
  g_assert_cmpuint (permission_result (f, user, &no_allocation), ==, 403);
}

static void
test_allowed_peer (Fixture *f, gconstpointer data)
{
  relay_server_free (f->server);
  g_array_unref (f->sent);
  guint opened = f->n_open, closed = f->n_close;
  setup_with (f, 10, 10, "127.0.0.0/8");
  (void)opened, (void)closed;
  g_autofree char *user = fresh_user (NOW + 3600);
  allocate (f, &f->client, user, 0);
  struct stun_addr lo = addr4 (127, 0, 0, 1, 80), priv = addr4 (10, 0, 0, 1, 80);
  g_assert_cmpuint (permission_result (f, user, &lo), ==, 0);
  g_assert_cmpuint (permission_result (f, user, &priv), ==, 403);
}

static void
test_binding (Fixture *f, gconstpointer data)
{
  struct stun_msg m;
  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_BINDING, .lifetime = -1 });
  parse_last (f, &m);
  g_assert_cmpint (m.cls, ==, STUN_CLASS_SUCCESS);
  struct stun_addr a;
  g_assert_true (stun_msg_get_xor_addr (&m, STUN_ATTR_XOR_MAPPED_ADDRESS, &a));
  g_assert_cmpuint (a.port, ==, f->client.port);
  g_assert_cmpmem (a.ip, 4, f->client.ip, 4);
}

static void
test_cidr (void)
{
  struct relay_cidr c;
  g_assert_true (relay_cidr_parse ("127.0.0.1/32", &c));
  g_assert_cmpuint (c.prefix, ==, 32);
  g_assert_true (relay_cidr_parse ("::1", &c));
  g_assert_cmpuint (c.prefix, ==, 128);
  g_assert_false (relay_cidr_parse ("127.0.0.1/33", &c));
  g_assert_false (relay_cidr_parse ("127.0.0.1/", &c));
  g_assert_false (relay_cidr_parse ("127.0.0.1/8x", &c));
  g_assert_false (relay_cidr_parse ("example.org/8", &c));
  g_assert_true (relay_cidr_parse ("10.0.0.0/8", &c));
  struct stun_addr in = addr4 (10, 200, 1, 1, 0), out = addr4 (11, 0, 0, 1, 0);
  g_assert_true (relay_cidr_contains (&c, &in));
  g_assert_false (relay_cidr_contains (&c, &out));
}

/* A few valid peer-ids (peerid.h): base32, the last character's low bits
 * zero. */
#define PEER_A "v7hgw73wxjh5x4e2yhbzmzbd3ozvxabnxzgkcsusztm34ucax2ma"
#define PEER_B "b7hgw73wxjh5x4e2yhbzmzbd3ozvxabnxzgkcsusztm34ucax2ma"
#define PEER_C "c7hgw73wxjh5x4e2yhbzmzbd3ozvxabnxzgkcsusztm34ucax2ma"
#define PEER_D "d7hgw73wxjh5x4e2yhbzmzbd3ozvxabnxzgkcsusztm34ucax2ma"

/* The answer's error code (0: success) to a request on the fixture's
 * client's allocation at now. */
static unsigned
request_result (Fixture *f, gint64 now, const struct req *r)
{
  struct stun_msg m;
  send_req (f, now, &f->client, r);
  parse_last (f, &m);
  return m.cls == STUN_CLASS_SUCCESS ? 0 : error_code (&m);
}

static unsigned
refresh_result (Fixture *f, gint64 now, const char *user)
{
  return request_result (
      f, now,
      &(struct req){ .method = STUN_METHOD_REFRESH, .user = user, .lifetime = -1 });
}

/* A username whose EXPIRY has come is refused (401) for every request on
 * the allocation, even one of the same NAME; the allocation made with
 * valid credentials is not disturbed by it. */
static void
test_expired_username_refused (Fixture *f, gconstpointer data)
{
  g_autofree char *user = fresh_user (NOW + 3600);
  g_autofree char *expired = fresh_user (NOW);
  struct stun_addr peer = addr4 (198, 51, 100, 7, 9000);
  allocate (f, &f->client, user, 0);

  g_assert_cmpuint (refresh_result (f, NOW, expired), ==, 401);
  g_assert_cmpuint (
      request_result (f, NOW,
                      &(struct req){ .method = STUN_METHOD_CREATE_PERMISSION,
                                     .user = expired,
                                     .lifetime = -1,
                                     .peer = &peer }),
      ==, 401);
  g_assert_cmpuint (request_result (f, NOW,
                                    &(struct req){ .method = STUN_METHOD_CHANNEL_BIND,
                                                   .user = expired,
                                                   .lifetime = -1,
                                                   .peer = &peer,
                                                   .channel = 0x4001 }),
                    ==, 401);
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==, 1);
  g_assert_cmpuint (permission_result (f, user, &peer), ==, 0);
}

/* The lifetime granted on Allocate and Refresh stops at the username's
 * EXPIRY, and the allocation is gone then, whatever was asked. */
static void
test_lifetime_clamped (Fixture *f, gconstpointer data)
{
  g_autofree char *user = fresh_user (NOW + 100);
  g_autofree char *longer = g_strdup_printf ("%d:bob", NOW + 3600);
  const struct stun_addr other_client = addr4 (198, 51, 100, 2, 40000);
  struct stun_addr peer = addr4 (198, 51, 100, 7, 9000);
  struct stun_msg m;
  uint32_t lifetime = 0;

  allocate (f, &other_client, longer, 0);
  allocate (f, &f->client, user, 0);
  parse_last (f, &m);
  g_assert_true (stun_msg_get_u32 (&m, STUN_ATTR_LIFETIME, &lifetime));
  g_assert_cmpuint (lifetime, ==, 100);

  send_req (
      f, NOW + 40, &f->client,
      &(struct req){ .method = STUN_METHOD_REFRESH, .user = user, .lifetime = 3600 });
  parse_last (f, &m);
  g_assert_cmpint (m.cls, ==, STUN_CLASS_SUCCESS);
  g_assert_true (stun_msg_get_u32 (&m, STUN_ATTR_LIFETIME, &lifetime));
  g_assert_cmpuint (lifetime, ==, 60);
  g_assert_cmpuint (permission_result (f, user, &peer), ==, 0);

  /* One second before: still there, and relaying. */
  relay_server_expire (f->server, G_USEC_PER_SEC * (gint64)(NOW + 99));
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==, 2);
  struct relay_source relayed = { RELAY_TRANSPORT_UDP, GUINT_TO_POINTER (2), NULL };
  guint before = f->sent->len;
  process (f, NOW + 99, &relayed, &peer, (const uint8_t *)"x", 1);
  g_assert_cmpuint (f->sent->len, ==, before + 1);

  /* At the EXPIRY: gone, and nothing more is relayed; the other
   * allocation, with longer credentials, stays. */
  relay_server_expire (f->server, G_USEC_PER_SEC * (gint64)(NOW + 100));
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==, 1);
  g_assert_cmpuint (f->n_close, ==, 1);
  before = f->sent->len;
  process (f, NOW + 100, &relayed, &peer, (const uint8_t *)"x", 1);
  g_assert_cmpuint (f->sent->len, ==, before);
  g_assert_cmpuint (refresh_result (f, NOW + 100, user), ==, 401);
}

/* Without the sweep, the next request on an allocation whose credentials
 * expired finds it gone: refused (401), and then no allocation (437) for
 * fresh credentials of the same NAME, which cannot take it over. */
static void
test_gone_after_credential_expiry (Fixture *f, gconstpointer data)
{
  g_autofree char *user = fresh_user (NOW + 10);
  g_autofree char *fresh = fresh_user (NOW + 3600);
  allocate (f, &f->client, user, 0);
  g_assert_cmpuint (refresh_result (f, NOW + 10, user), ==, 401);
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==, 0);
  g_assert_cmpuint (refresh_result (f, NOW + 10, fresh), ==, 437);
}

/* A username's "a=" replaces --max-allocations-per-user (3 here) for its
 * peer, higher or lower; the count is per peer-id whatever the EXPIRY and
 * options, and --max-allocations (10 here) still caps them all. */
static void
test_quota_per_peer_option (Fixture *f, gconstpointer data)
{
  teardown (f, NULL);
  setup_with (f, 10, 3, NULL);
  static const char *const a_users[] = {
    PEER_A ":a=5", PEER_A ":a=5,b=1000", PEER_A ":zz=1,a=5",
    PEER_A ":a=5", PEER_A ":a=5",        PEER_A ":a=5", /* the sixth: over 5 */
    PEER_A, /* the default (3) is below the 5 held */
  };
  uint16_t port = 40000;
  for (size_t i = 0; i < G_N_ELEMENTS (a_users); i++)
    {
      g_autofree char *user = g_strdup_printf ("%d:%s", NOW + 100 + (int)i, a_users[i]);
      struct stun_addr c = addr4 (198, 51, 100, 1, port++);
      allocate (f, &c, user, i < 5 ? 0 : 486);
    }
  /* Lower than the default. */
  for (int i = 0; i < 2; i++)
    {
      g_autofree char *user = g_strdup_printf ("%d:%s:a=1", NOW + 200 + i, PEER_B);
      struct stun_addr c = addr4 (198, 51, 100, 1, port++);
      allocate (f, &c, user, i < 1 ? 0 : 486);
    }
  /* No option: the default. */
  for (int i = 0; i < 4; i++)
    {
      g_autofree char *user = g_strdup_printf ("%d:%s", NOW + 300 + i, PEER_C);
      struct stun_addr c = addr4 (198, 51, 100, 1, port++);
      allocate (f, &c, user, i < 3 ? 0 : 486);
    }
  /* 9 held: the total cap of 10 beats a= 10000. */
  for (int i = 0; i < 2; i++)
    {
      g_autofree char *user = g_strdup_printf ("%d:%s:a=10000", NOW + 400, PEER_D);
      struct stun_addr c = addr4 (198, 51, 100, 1, port++);
      allocate (f, &c, user, i < 1 ? 0 : 508);
    }
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==, 10);
  /* A malformed or out of range option is not a valid username. */
  g_autofree char *bad = g_strdup_printf ("%d:%s:a=0", NOW + 100, PEER_D);
  struct stun_addr c = addr4 (198, 51, 100, 1, port++);
  allocate (f, &c, bad, 401);
}

/* ChannelData of len bytes, n times, from the fixture's client on channel
 * 0x4001 (bound first) at NOW: how many were relayed. */
static guint
bound_and_relayed (Fixture *f, const char *user, guint n, size_t len)
{
  struct stun_addr peer = addr4 (198, 51, 100, 7, 9000);
  g_assert_cmpuint (request_result (f, NOW,
                                    &(struct req){ .method = STUN_METHOD_CHANNEL_BIND,
                                                   .user = user,
                                                   .lifetime = -1,
                                                   .peer = &peer,
                                                   .channel = 0x4001 }),
                    ==, 0);
  uint8_t cd[4 + 300];
  g_assert_cmpuint (len, <=, sizeof cd - 4);
  memset (cd, 'a', sizeof cd);
  cd[0] = 0x40, cd[1] = 0x01, cd[2] = (uint8_t)(len >> 8), cd[3] = (uint8_t)len;
  struct relay_source client = { RELAY_TRANSPORT_UDP, NULL, NULL };
  guint before = f->sent->len;
  for (guint i = 0; i < n; i++)
    process (f, NOW, &client, &f->client, cd, 4 + len);
  return f->sent->len - before;
}

/* A username's "b=" replaces --max-bps (1000 here) for the allocations made
 * with it, higher or lower. */
static void
test_bps_option (Fixture *f, gconstpointer data)
{
  g_autofree char *low = g_strdup_printf ("%d:%s:b=500", NOW + 3600, PEER_A);
  g_autofree char *high = g_strdup_printf ("%d:%s:a=2,b=2000", NOW + 3600, PEER_B);
  g_autofree char *plain = g_strdup_printf ("%d:%s", NOW + 3600, PEER_C);
  allocate (f, &f->client, low, 0);
  g_assert_cmpuint (bound_and_relayed (f, low, 10, 300), ==, 1);
  f->client.port++;
  allocate (f, &f->client, high, 0);
  g_assert_cmpuint (bound_and_relayed (f, high, 10, 300), ==, 6);
  f->client.port++;
  allocate (f, &f->client, plain, 0);
  g_assert_cmpuint (bound_and_relayed (f, plain, 10, 300), ==, 3);
}

static void
test_even_port (Fixture *f, gconstpointer data)
{
  g_autofree char *user = fresh_user (NOW + 3600);
  struct stun_msg m;
  allocate (f, &f->client, user, 0);
  /* A second client asks for an even port and reserves the next one. */
  struct stun_addr c2 = addr4 (198, 51, 100, 1, 40001);
  const uint8_t r_bit = 0x80;
  nonce_for (f, &c2);
  send_req (f, NOW, &c2,
            &(struct req){ .method = STUN_METHOD_ALLOCATE,
                           .user = user,
                           .lifetime = -1,
                           .transport = TRUE,
                           .extra_type = STUN_ATTR_EVEN_PORT,
                           .extra = &r_bit,
                           .extra_len = 1 });
  parse_last (f, &m);
  g_assert_cmpint (m.cls, ==, STUN_CLASS_SUCCESS);
  struct stun_addr relayed;
  g_assert_true (stun_msg_get_xor_addr (&m, STUN_ATTR_XOR_RELAYED_ADDRESS, &relayed));
  g_assert_cmpuint (relayed.port % 2, ==, 0);
  const struct stun_attr *tok = stun_msg_find (&m, STUN_ATTR_RESERVATION_TOKEN);
  g_assert_nonnull (tok);
  g_assert_cmpuint (tok->len, ==, RELAY_TOKEN_LEN);
  uint8_t token[RELAY_TOKEN_LEN];
  memcpy (token, m.buf + tok->offset, RELAY_TOKEN_LEN);

  /* A third takes the reserved port with the token. */
  struct stun_addr c3 = addr4 (198, 51, 100, 1, 40002);
  nonce_for (f, &c3);
  send_req (f, NOW, &c3,
            &(struct req){ .method = STUN_METHOD_ALLOCATE,
                           .user = user,
                           .lifetime = -1,
                           .transport = TRUE,
                           .extra_type = STUN_ATTR_RESERVATION_TOKEN,
                           .extra = token,
                           .extra_len = sizeof token });
  parse_last (f, &m);
  g_assert_cmpint (m.cls, ==, STUN_CLASS_SUCCESS);
  struct stun_addr second;
  g_assert_true (stun_msg_get_xor_addr (&m, STUN_ATTR_XOR_RELAYED_ADDRESS, &second));
  g_assert_cmpuint (second.port, ==, relayed.port + 1);
  /* The token is used up. */
  struct stun_addr c4 = addr4 (198, 51, 100, 1, 40003);
  nonce_for (f, &c4);
  send_req (f, NOW, &c4,
            &(struct req){ .method = STUN_METHOD_ALLOCATE,
                           .user = user,
                           .lifetime = -1,
                           .transport = TRUE,
                           .extra_type = STUN_ATTR_RESERVATION_TOKEN,
                           .extra = token,
                           .extra_len = sizeof token });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 508);
  /* IPv6 relaying is not offered by an IPv4 relay: 440. */
  const uint8_t v6[4] = { 0x02 };
  send_req (f, NOW, &c4,
            &(struct req){ .method = STUN_METHOD_ALLOCATE,
                           .user = user,
                           .lifetime = -1,
                           .transport = TRUE,
                           .extra_type = STUN_ATTR_REQUESTED_ADDRESS_FAMILY,
                           .extra = v6,
                           .extra_len = 4 });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 440);
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==, 3);
}

static void
test_errors (Fixture *f, gconstpointer data)
{
  g_autofree char *user = fresh_user (NOW + 3600);
  g_autofree char *other = g_strdup_printf ("%d:mallory", NOW + 3600);
  struct stun_msg m;
  /* Refresh without an allocation: 437. */
  struct stun_addr c2 = addr4 (198, 51, 100, 1, 40001);
  nonce_for (f, &c2);
  send_req (f, NOW, &c2,
            &(struct req){ .method = STUN_METHOD_REFRESH, .user = user, .lifetime = -1 });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 437);
  /* TCP relaying is not offered: 442. */
  const uint8_t tcp[4] = { 6 };
  send_req (f, NOW, &c2,
            &(struct req){ .method = STUN_METHOD_ALLOCATE,
                           .user = user,
                           .lifetime = -1,
                           .extra_type = STUN_ATTR_REQUESTED_TRANSPORT,
                           .extra = tcp,
                           .extra_len = 4 });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 442);
  allocate (f, &f->client, user, 0);
  /* Another username on an existing allocation: 441. */
  send_req (
      f, NOW, &f->client,
      &(struct req){ .method = STUN_METHOD_REFRESH, .user = other, .lifetime = -1 });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 441);
  /* A second Allocate (new transaction) on the same 5-tuple: 437. */
  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_ALLOCATE,
                           .user = user,
                           .lifetime = -1,
                           .transport = TRUE });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 437);
  /* Unknown comprehension-required attribute: 420 listing it. */
  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_REFRESH,
                           .user = user,
                           .lifetime = -1,
                           .extra_type = 0x0777,
                           .extra = "x",
                           .extra_len = 1 });
  parse_last (f, &m);
  g_assert_cmpuint (error_code (&m), ==, 420);
  g_assert_nonnull (stun_msg_find (&m, STUN_ATTR_UNKNOWN_ATTRIBUTES));
  /* Refresh clamps the lifetime to the maximum. */
  send_req (
      f, NOW, &f->client,
      &(struct req){ .method = STUN_METHOD_REFRESH, .user = user, .lifetime = 100000 });
  parse_last (f, &m);
  uint32_t lifetime = 0;
  g_assert_true (stun_msg_get_u32 (&m, STUN_ATTR_LIFETIME, &lifetime));
  g_assert_cmpuint (lifetime, ==, RELAY_DEFAULT_MAX_LIFETIME);
  /* Garbage, truncated and oversized datagrams are dropped without reply,
   * and the allocation keeps working. */
  guint before = f->sent->len;
  struct relay_source src = { RELAY_TRANSPORT_UDP, NULL, NULL };
  uint8_t junk[2048];
  memset (junk, 0x41, sizeof junk);
  process (f, NOW, &src, &f->client, junk, sizeof junk);
  memset (junk, 0, sizeof junk);
  junk[4] = 0x21, junk[5] = 0x12, junk[6] = 0xa4, junk[7] = 0x42, junk[2] = 0x07,
  junk[3] = 0xec;
  process (f, NOW, &src, &f->client, junk, 20 + 0x7ec - 4);
  process (f, NOW, &src, &f->client, junk, sizeof junk);
  process (f, NOW, &src, &f->client, junk, 3);
  g_assert_cmpuint (f->sent->len, ==, before);
  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_REFRESH, .user = user, .lifetime = -1 });
  parse_last (f, &m);
  g_assert_cmpint (m.cls, ==, STUN_CLASS_SUCCESS);
}

/* An allocation over a TCP connection: replies and relayed data go on the
 * connection, ChannelData padded; closing the connection frees it. */
static void
test_tcp_allocation (Fixture *f, gconstpointer data)
{
  g_autofree char *user = fresh_user (NOW + 3600);
  void *conn = GUINT_TO_POINTER (0x777);
  f->conn = conn;
  allocate (f, &f->client, user, 0);
  g_assert_true (last_sent (f)->handle == conn);
  g_assert_true (relay_server_conn_has_allocation (f->server, conn));
  g_assert_false (relay_server_conn_has_allocation (f->server, GUINT_TO_POINTER (0x778)));

  struct stun_addr peer = addr4 (198, 51, 100, 7, 9000);
  struct stun_msg m;
  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_CHANNEL_BIND,
                           .user = user,
                           .lifetime = -1,
                           .peer = &peer,
                           .channel = 0x4001 });
  parse_last (f, &m);
  g_assert_cmpint (m.cls, ==, STUN_CLASS_SUCCESS);
  g_assert_true (last_sent (f)->handle == conn);

  /* Padded ChannelData from the client goes to the peer without padding. */
  const uint8_t cd[] = { 0x40, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0, 0, 0 };
  struct relay_source tcp = { RELAY_TRANSPORT_TCP, NULL, conn };
  process (f, NOW, &tcp, &f->client, cd, sizeof cd);
  gsize n;
  const uint8_t *d = g_bytes_get_data (last_sent (f)->bytes, &n);
  g_assert_true (last_sent (f)->handle == GUINT_TO_POINTER (1));
  g_assert_cmpmem (d, n, "hello", 5);

  /* The peer's answer comes back on the connection, padded to 4. */
  struct relay_source relayed = { RELAY_TRANSPORT_UDP, GUINT_TO_POINTER (1), NULL };
  process (f, NOW, &relayed, &peer, (const uint8_t *)"xyz", 3);
  g_assert_true (last_sent (f)->handle == conn);
  d = g_bytes_get_data (last_sent (f)->bytes, &n);
  const uint8_t want[] = { 0x40, 0x01, 0x00, 0x03, 'x', 'y', 'z', 0 };
  g_assert_cmpmem (d, n, want, sizeof want);

  /* The same address over UDP (or another connection) is another 5-tuple. */
  guint before = f->sent->len;
  struct relay_source udp = { RELAY_TRANSPORT_UDP, NULL, NULL };
  process (f, NOW, &udp, &f->client, cd, sizeof cd);
  struct relay_source other = { RELAY_TRANSPORT_TCP, NULL, GUINT_TO_POINTER (0x778) };
  process (f, NOW, &other, &f->client, cd, sizeof cd);
  g_assert_cmpuint (f->sent->len, ==, before);

  relay_server_conn_closed (f->server, conn);
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==, 0);
  g_assert_cmpuint (f->n_close, ==, f->n_open);
  g_assert_false (relay_server_conn_has_allocation (f->server, conn));
  process (f, NOW, &relayed, &peer, (const uint8_t *)"xyz", 3);
  g_assert_cmpuint (f->sent->len, ==, before);
  relay_server_conn_closed (f->server, conn); /* twice: nothing */
}

static void
setup_bw (Fixture *f, gconstpointer data)
{
  setup_full (f, 1000, 10, NULL, 1000);
}

/* --max-bps: a token bucket of one second's worth on the bytes relayed in
 * both directions; over it, data is dropped. */
static void
test_bandwidth (Fixture *f, gconstpointer data)
{
  g_autofree char *user = fresh_user (NOW + 3600);
  allocate (f, &f->client, user, 0);
  struct stun_addr peer = addr4 (198, 51, 100, 7, 9000);
  struct stun_msg m;
  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_CHANNEL_BIND,
                           .user = user,
                           .lifetime = -1,
                           .peer = &peer,
                           .channel = 0x4001 });
  parse_last (f, &m);
  g_assert_cmpint (m.cls, ==, STUN_CLASS_SUCCESS);

  uint8_t cd[4 + 300];
  memset (cd, 'a', sizeof cd);
  cd[0] = 0x40, cd[1] = 0x01, cd[2] = 300 >> 8, cd[3] = 300 & 0xff;
  struct relay_source client = { RELAY_TRANSPORT_UDP, NULL, NULL };
  struct relay_source relayed = { RELAY_TRANSPORT_UDP, GUINT_TO_POINTER (1), NULL };
  gint64 t = (gint64)NOW * G_USEC_PER_SEC;
  /* 1000 bytes in the bucket: three messages of 300 pass, the fourth not. */
  guint before = f->sent->len;
  for (int i = 0; i < 4; i++)
    relay_server_process (f->server, t, &client, &f->client, cd, sizeof cd);
  g_assert_cmpuint (f->sent->len, ==, before + 3);
  /* Peer data draws on the same bucket: 100 left. */
  relay_server_process (f->server, t, &relayed, &peer, cd, 101);
  g_assert_cmpuint (f->sent->len, ==, before + 3);
  relay_server_process (f->server, t, &relayed, &peer, cd, 100);
  g_assert_cmpuint (f->sent->len, ==, before + 4);
  /* 0.3 s later: 300 bytes more, one message. */
  t += 300000;
  relay_server_process (f->server, t, &client, &f->client, cd, sizeof cd);
  relay_server_process (f->server, t, &client, &f->client, cd, sizeof cd);
  g_assert_cmpuint (f->sent->len, ==, before + 5);
  /* Many small steps add up (no rounding away): 300 steps of 1 ms. */
  for (int i = 0; i < 300; i++)
    {
      t += 1000;
      relay_server_process (f->server, t, &relayed, &peer, cd, 0);
    }
  relay_server_process (f->server, t, &client, &f->client, cd, sizeof cd);
  g_assert_cmpuint (f->sent->len, ==, before + 5 + 300 + 1);
  /* After a long pause the bucket holds one second's worth, not more. */
  t += 100 * G_USEC_PER_SEC;
  before = f->sent->len;
  for (int i = 0; i < 5; i++)
    relay_server_process (f->server, t, &client, &f->client, cd, sizeof cd);
  g_assert_cmpuint (f->sent->len, ==, before + 3);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/relay/cidr", test_cidr);
#define T(path, fn) g_test_add ("/relay/" path, Fixture, NULL, setup, fn, teardown)
  T ("unauthenticated", test_unauthenticated);
  T ("allocate", test_allocate);
  T ("bad-credentials", test_bad_credentials);
  T ("expired-username-refused", test_expired_username_refused);
  T ("lifetime-clamped", test_lifetime_clamped);
  T ("gone-after-credential-expiry", test_gone_after_credential_expiry);
  T ("quota-per-peer-option", test_quota_per_peer_option);
  T ("send-and-data", test_send_and_data);
  T ("channel", test_channel);
  T ("quota", test_quota);
  T ("denied-peer", test_denied_peer);
  T ("relay-to-relay", test_relay_to_relay);
  T ("allowed-peer", test_allowed_peer);
  T ("binding", test_binding);
  T ("even-port", test_even_port);
  T ("errors", test_errors);
  T ("tcp-allocation", test_tcp_allocation);
  g_test_add ("/relay/bandwidth", Fixture, NULL, setup_bw, test_bandwidth, teardown);
  g_test_add ("/relay/bps-option", Fixture, NULL, setup_bw, test_bps_option, teardown);
#undef T
  return g_test_run ();
}
