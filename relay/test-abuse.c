/* Unit tests of the relay core against hostile clients (issue 13, items 3
 * and 4): the relay's own address reachable only at live allocations, for
 * every datagram; allocation quotas per REST name and per client address. */
#include <string.h>

#include <glib.h>

#include "alloc.h"
#include "quota.h"
#include "test-fixture.h"

/* Stub relayed addresses are 203.0.113.1:50000+n for the nth socket. */
#define OWN_IP 203, 0, 113, 1

static void
send_indication (Fixture *f, const struct stun_addr *from, const struct stun_addr *peer)
{
  send_req (f, NOW, from,
            &(struct req){ .method = STUN_METHOD_SEND,
                           .cls = STUN_CLASS_INDICATION,
                           .lifetime = -1,
                           .peer = peer,
                           .data = "probe" });
}

/* Whether the last thing the core did was to relay to peer. */
static gboolean
relayed_to (Fixture *f, guint before, const struct stun_addr *peer)
{
  return f->sent->len == before + 1 && relay_addr_equal (&last_sent (f)->to, peer);
}

/* Two allocations of one client (at 50001 and 50002) and a permission from
 * the second to the first's relayed IP: the lab attack of issue 13. */
static void
two_allocations (Fixture *f, const char *user, const struct stun_addr *other_client)
{
  const struct stun_addr first_relayed = addr4 (OWN_IP, 50001);

  allocate (f, other_client, user, 0);
  allocate (f, &f->client, user, 0);
  g_assert_cmpuint (permission_result (f, user, &first_relayed), ==, 0);
}

/* A permission to another allocation's relayed IP covers its port only:
 * other ports of the relay's host (a DNS or memcached server, the relay's
 * own listener) get nothing; the other allocation gets its data. */
static void
test_own_address_send (Fixture *f, gconstpointer data)
{
  g_autofree char *user = fresh_user (NOW + 3600);
  const struct stun_addr other_client = addr4 (198, 51, 100, 1, 40001);
  const struct stun_addr first_relayed = addr4 (OWN_IP, 50001);
  const struct stun_addr service = addr4 (OWN_IP, 53), listener = addr4 (OWN_IP, 3478),
                         unused = addr4 (OWN_IP, 50003);
  two_allocations (f, user, &other_client);

  const struct stun_addr *refused[] = { &service, &listener, &unused };
  for (size_t i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      guint before = f->sent->len;
      send_indication (f, &f->client, refused[i]);
      g_assert_cmpuint (f->sent->len, ==, before);
    }
  guint before = f->sent->len;
  send_indication (f, &f->client, &first_relayed);
  g_assert_true (relayed_to (f, before, &first_relayed));

  /* Nor does anything from those ports come back over the permission. */
  struct relay_source src = { RELAY_TRANSPORT_UDP, GUINT_TO_POINTER (2), NULL };
  before = f->sent->len;
  process (f, NOW, &src, &service, (const uint8_t *)"answer", 6);
  g_assert_cmpuint (f->sent->len, ==, before);
  process (f, NOW, &src, &first_relayed, (const uint8_t *)"answer", 6);
  g_assert_cmpuint (f->sent->len, ==, before + 1);
}

/* A channel to another allocation: once that allocation is gone, its port
 * may belong to anything on the host; ChannelData to it is dropped. */
static void
test_own_address_channel (Fixture *f, gconstpointer data)
{
  g_autofree char *user = fresh_user (NOW + 3600);
  const struct stun_addr other_client = addr4 (198, 51, 100, 1, 40001);
  const struct stun_addr first_relayed = addr4 (OWN_IP, 50001);
  struct stun_msg m;
  two_allocations (f, user, &other_client);
  send_req (f, NOW, &f->client,
            &(struct req){ .method = STUN_METHOD_CHANNEL_BIND,
                           .user = user,
                           .lifetime = -1,
                           .peer = &first_relayed,
                           .channel = 0x4000 });
  parse_last (f, &m);
  g_assert_cmpint (m.cls, ==, STUN_CLASS_SUCCESS);

  const uint8_t cd[] = { 0x40, 0x00, 0x00, 0x02, 'h', 'i' };
  struct relay_source client = { RELAY_TRANSPORT_UDP, NULL, NULL };
  guint before = f->sent->len;
  process (f, NOW, &client, &f->client, cd, sizeof cd);
  g_assert_true (relayed_to (f, before, &first_relayed));

  nonce_for (f, &other_client);
  send_req (f, NOW, &other_client,
            &(struct req){ .method = STUN_METHOD_REFRESH, .user = user, .lifetime = 0 });
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==, 1);
  before = f->sent->len;
  process (f, NOW, &client, &f->client, cd, sizeof cd);
  g_assert_cmpuint (f->sent->len, ==, before);
}

/* --allow-peer over the relay's own address is the operator's choice (a
 * lab on loopback): then every port there is a peer. */
static void
test_own_address_allowed (Fixture *f, gconstpointer data)
{
  teardown (f, NULL);
  setup_with (f, 10, 10, "203.0.113.0/24");
  g_autofree char *user = fresh_user (NOW + 3600);
  const struct stun_addr service = addr4 (OWN_IP, 53);
  allocate (f, &f->client, user, 0);
  g_assert_cmpuint (permission_result (f, user, &service), ==, 0);
  guint before = f->sent->len;
  send_indication (f, &f->client, &service);
  g_assert_true (relayed_to (f, before, &service));
}

/* The signaling server hands out "EXPIRY:NAME" with a new EXPIRY every
 * second: the quota counts NAME. */
static void
test_quota_per_name (Fixture *f, gconstpointer data)
{
  teardown (f, NULL);
  setup_with (f, 100, 3, NULL);
  for (uint16_t i = 0; i < 6; i++)
    {
      g_autofree char *user = g_strdup_printf ("%d:peer-a", NOW + 100 + i);
      struct stun_addr c = addr4 (198, 51, 100, 1, (uint16_t)(40000 + i));
      allocate (f, &c, user, i < 3 ? 0 : 486);
    }
  g_autofree char *bare = g_strdup_printf ("%d", NOW + 100);
  g_autofree char *other = g_strdup_printf ("%d:peer-b", NOW + 100);
  struct stun_addr c = addr4 (198, 51, 100, 1, 41000);
  allocate (f, &c, other, 0);
  c.port++;
  allocate (f, &c, bare, 0);
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==, 5);
}

/* One client address gets at most RELAY_DEFAULT_MAX_PER_ADDRESS, whatever
 * the names; another address is still served, and a freed one is free. */
static void
test_quota_per_address (Fixture *f, gconstpointer data)
{
  struct stun_addr attacker = addr4 (198, 51, 100, 66, 1024);
  for (guint i = 0; i <= RELAY_DEFAULT_MAX_PER_ADDRESS; i++)
    {
      g_autofree char *user = g_strdup_printf ("%d:flood-%u", NOW + 3600, i);
      attacker.port = (uint16_t)(1024 + i);
      allocate (f, &attacker, user, i < RELAY_DEFAULT_MAX_PER_ADDRESS ? 0 : 486);
    }
  g_autofree char *user = fresh_user (NOW + 3600);
  allocate (f, &f->client, user, 0);
  g_assert_cmpuint (relay_server_n_allocations (f->server), ==,
                    RELAY_DEFAULT_MAX_PER_ADDRESS + 1);

  g_autofree char *first = g_strdup_printf ("%d:flood-0", NOW + 3600);
  attacker.port = 1024;
  nonce_for (f, &attacker);
  send_req (f, NOW, &attacker,
            &(struct req){ .method = STUN_METHOD_REFRESH, .user = first, .lifetime = 0 });
  attacker.port = 2000;
  allocate (f, &attacker, first, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define T(path, fn) g_test_add ("/relay/abuse/" path, Fixture, NULL, setup, fn, teardown)
  T ("own-address-send", test_own_address_send);
  T ("own-address-channel", test_own_address_channel);
  T ("own-address-allowed", test_own_address_allowed);
  T ("quota-per-name", test_quota_per_name);
  T ("quota-per-address", test_quota_per_address);
#undef T
  return g_test_run ();
}
