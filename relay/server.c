/* The relay's protocol core; see server.h. */
#include "server.h"

#include "alloc.h"
#include "auth.h"
#include "quota.h"
#include "reach.h"

#include <arpa/inet.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* RFC 8656 section 11.4 / 11.5: channel data header is 4 bytes. */
#define RELAY_CHANNEL_HEADER_LEN 4

/* A port kept for a later Allocate with RESERVATION-TOKEN (EVEN-PORT with
 * the R bit, RFC 8656 section 7.2). */
struct relay_reservation
{
  uint8_t token[RELAY_TOKEN_LEN];
  void *handle;
  struct stun_addr addr;
  gint64 expiry;
};

struct RelayServer
{
  struct relay_config config;
  struct relay_io io;
  uint8_t *secret;
  size_t secret_len;
  uint8_t nonce_key[RELAY_NONCE_KEY_LEN];
  uint8_t txid_prefix[4];
  guint64 txid_counter;
  GHashTable
      *by_tuple; /* struct relay_tuple * (in alloc) -> struct relay_alloc * (owned) */
  GHashTable *by_handle; /* handle -> struct relay_alloc * */
  GHashTable *by_conn;   /* stream connection -> struct relay_alloc * */
  struct relay_quota quota;
  RelayReach *reach;    /* the relayed addresses of the allocations in by_handle */
  GArray *reservations; /* struct relay_reservation */
  struct relay_stats stats;
  uint8_t out[STUN_MAX_MESSAGE_LEN];
};

/* Addresses */

static guint
tuple_hash (gconstpointer p)
{
  const struct relay_tuple *t = p;
  return ((guint)t->transport * 31u + g_direct_hash (t->conn)) * 31u
         + relay_addr_hash (&t->client);
}

static gboolean
tuple_equal (gconstpointer a, gconstpointer b)
{
  const struct relay_tuple *x = a, *y = b;
  return x->transport == y->transport && x->conn == y->conn
         && relay_addr_equal (&x->client, &y->client);
}

static const char *
transport_name (enum relay_transport t)
{
  switch (t)
    {
    case RELAY_TRANSPORT_TCP:
      return " over TCP";
    case RELAY_TRANSPORT_TLS:
      return " over TLS";
    case RELAY_TRANSPORT_UDP:
    default:
      return "";
    }
}

/* Config */

void
relay_config_init (struct relay_config *c)
{
  memset (c, 0, sizeof *c);
  c->max_allocations = 1000;
  c->max_per_user = RELAY_DEFAULT_MAX_PER_NAME;
  c->max_per_address = RELAY_DEFAULT_MAX_PER_ADDRESS;
  c->max_permissions = 32;
  c->max_channels = 32;
  c->default_lifetime = RELAY_DEFAULT_LIFETIME;
  c->max_lifetime = RELAY_DEFAULT_MAX_LIFETIME;
}

void
relay_config_clear (struct relay_config *c)
{
  g_clear_pointer (&c->realm, g_free);
  g_clear_pointer (&c->allow_peers, g_array_unref);
}

/* Allocations */

static void
alloc_remove (RelayServer *s, struct relay_alloc *a, const char *why)
{
  char buf[80];
  g_info ("allocation of %s from %s removed: %s", a->username,
          relay_addr_to_string (&a->tuple.client, buf, sizeof buf), why);
  relay_quota_remove (&s->quota, a->name, &a->tuple.client);
  relay_reach_remove (s->reach, &a->relayed);
  g_hash_table_remove (s->by_handle, a->handle);
  if (a->tuple.conn != NULL)
    g_hash_table_remove (s->by_conn, a->tuple.conn);
  if (s->io.relay_close != NULL)
    s->io.relay_close (s->io.user, a->handle);
  g_hash_table_remove (s->by_tuple, &a->tuple); /* frees a */
}

RelayServer *
relay_server_new (struct relay_config *config, const struct relay_io *io,
                  const uint8_t *secret, size_t secret_len)
{
  RelayServer *s = g_new0 (RelayServer, 1);
  s->config = *config;
  memset (config, 0, sizeof *config);
  if (s->config.realm == NULL)
    s->config.realm = g_strdup ("p2ptun");
  s->io = *io;
  relay_server_set_secret (s, secret, secret_len);
  if (RAND_bytes (s->nonce_key, sizeof s->nonce_key) != 1
      || RAND_bytes (s->txid_prefix, sizeof s->txid_prefix) != 1)
    g_error ("RAND_bytes failed");
  s->by_tuple = g_hash_table_new_full (tuple_hash, tuple_equal, NULL, relay_alloc_free);
  s->by_handle = g_hash_table_new (g_direct_hash, g_direct_equal);
  s->by_conn = g_hash_table_new (g_direct_hash, g_direct_equal);
  relay_quota_init (&s->quota);
  s->reach = relay_reach_new (s->config.allow_peers);
  s->reservations = g_array_new (FALSE, TRUE, sizeof (struct relay_reservation));
  return s;
}

void
relay_server_free (RelayServer *s)
{
  if (s == NULL)
    return;
  if (s->by_tuple != NULL)
    {
      GHashTableIter it;
      gpointer v;
      g_hash_table_iter_init (&it, s->by_tuple);
      while (g_hash_table_iter_next (&it, NULL, &v))
        {
          struct relay_alloc *a = v;
          if (s->io.relay_close != NULL)
            s->io.relay_close (s->io.user, a->handle);
        }
    }
  if (s->reservations != NULL)
    {
      for (guint i = 0; i < s->reservations->len; i++)
        if (s->io.relay_close != NULL)
          s->io.relay_close (
              s->io.user,
              g_array_index (s->reservations, struct relay_reservation, i).handle);
      g_clear_pointer (&s->reservations, g_array_unref);
    }
  g_clear_pointer (&s->by_tuple, g_hash_table_unref);
  g_clear_pointer (&s->by_handle, g_hash_table_unref);
  g_clear_pointer (&s->by_conn, g_hash_table_unref);
  relay_quota_clear (&s->quota);
  g_clear_pointer (&s->reach, relay_reach_free);
  relay_server_set_secret (s, NULL, 0);
  OPENSSL_cleanse (s->nonce_key, sizeof s->nonce_key);
  relay_config_clear (&s->config);
  g_free (s);
}

void
relay_server_set_secret (RelayServer *s, const uint8_t *secret, size_t secret_len)
{
  if (s->secret != NULL)
    {
      OPENSSL_cleanse (s->secret, s->secret_len);
      g_free (s->secret);
    }
  s->secret = secret_len > 0 ? g_memdup2 (secret, secret_len) : NULL;
  s->secret_len = secret_len;
}

guint
relay_server_n_allocations (RelayServer *s)
{
  return g_hash_table_size (s->by_tuple);
}

const struct relay_stats *
relay_server_stats (RelayServer *s)
{
  return &s->stats;
}

/* Replies */

static void
txid_next (RelayServer *s, uint8_t txid[static STUN_TXID_LEN])
{
  guint64 c = ++s->txid_counter;
  memcpy (txid, s->txid_prefix, 4);
  for (size_t i = 0; i < 8; i++)
    txid[4 + i] = (uint8_t)(c >> (8 * i));
}

/* Sends s->out[0, len) to a client: on its stream connection, or from the
 * UDP listener. */
static void
send_client (RelayServer *s, const struct relay_tuple *to, size_t len)
{
  if (len == 0)
    return;
  if (to->conn != NULL)
    {
      if (s->io.conn_send != NULL)
        s->io.conn_send (s->io.user, to->conn, s->out, len);
    }
  else
    s->io.send (s->io.user, NULL, &to->client, s->out, len);
}

static void
reply_error (RelayServer *s, gint64 now, const struct relay_tuple *to,
             const struct stun_msg *req, unsigned code, const char *reason,
             const uint8_t *key)
{
  struct stun_builder b;
  relay_stats_error (&s->stats, code, req->integrity_idx >= 0);
  stun_builder_init (&b, s->out, sizeof s->out, req->method, STUN_CLASS_ERROR, req->txid);
  stun_builder_add_error (&b, code, reason);
  if (code == 401 || code == 438)
    {
      char nonce[RELAY_NONCE_LEN + 1];
      relay_nonce_make (s->nonce_key, now, &to->client, nonce);
      stun_builder_add (&b, STUN_ATTR_REALM, s->config.realm, strlen (s->config.realm));
      stun_builder_add (&b, STUN_ATTR_NONCE, nonce, RELAY_NONCE_LEN);
    }
  if (key != NULL)
    stun_builder_add_integrity (&b, key, 16);
  stun_builder_add_fingerprint (&b);
  send_client (s, to, stun_builder_finish (&b));
}

/* Authentication (RFC 8489 section 9.2.4), REST credentials. On success,
 * key holds the long-term key, *cred the parsed username (turnuser.h,
 * pointing into m) and TRUE is returned; otherwise the error was sent.
 *
 * A username whose EXPIRY has come is refused (401) for every request,
 * Refresh, CreatePermission and ChannelBind on its own allocation too, and
 * an allocation never outlives its username (lifetime_for): so the
 * signaling server can revoke a peer by no longer handing it credentials,
 * and the revocation takes effect within one credential lifetime. */
static gboolean
authenticate (RelayServer *s, gint64 now, const struct relay_tuple *from,
              const struct stun_msg *m, uint8_t key[static 16], const char **user,
              size_t *user_len, struct turnuser *cred)
{
  const char *realm, *nonce;
  size_t realm_len, nonce_len;
  if (m->integrity_idx < 0)
    {
      reply_error (s, now, from, m, 401, "Unauthorized", NULL);
      return FALSE;
    }
  if (!stun_msg_get_string (m, STUN_ATTR_USERNAME, user, user_len)
      || !stun_msg_get_string (m, STUN_ATTR_REALM, &realm, &realm_len)
      || !stun_msg_get_string (m, STUN_ATTR_NONCE, &nonce, &nonce_len))
    {
      reply_error (s, now, from, m, 400, "Bad Request", NULL);
      return FALSE;
    }
  switch (relay_nonce_check (s->nonce_key, now, &from->client, nonce, nonce_len))
    {
    case RELAY_NONCE_VALID:
      break;
    case RELAY_NONCE_STALE:
      reply_error (s, now, from, m, 438, "Stale Nonce", NULL);
      return FALSE;
    case RELAY_NONCE_BAD:
      reply_error (s, now, from, m, 401, "Unauthorized", NULL);
      return FALSE;
    }
  char password[29];
  if (realm_len != strlen (s->config.realm)
      || memcmp (realm, s->config.realm, realm_len) != 0
      || turnuser_parse (*user, *user_len, cred) != TURNUSER_OK || cred->expiry <= now
      || s->secret == NULL
      || !relay_rest_password (s->secret, s->secret_len, *user, *user_len, password)
      || !stun_long_term_key (*user, *user_len, realm, realm_len, password,
                              strlen (password), key)
      || !stun_msg_check_integrity (m, key, 16))
    {
      OPENSSL_cleanse (password, sizeof password);
      g_debug ("authentication failed");
      reply_error (s, now, from, m, 401, "Unauthorized", NULL);
      return FALSE;
    }
  OPENSSL_cleanse (password, sizeof password);
  return TRUE;
}

/* RFC 8489 section 6.3.1: unknown comprehension-required attributes in a
 * request get 420 with UNKNOWN-ATTRIBUTES. */
static gboolean
check_unknown (RelayServer *s, gint64 now, const struct relay_tuple *from,
               const struct stun_msg *m)
{
  uint8_t unknown[2 * 16];
  size_t n = 0;
  for (size_t i = 0; i < m->n_attrs; i++)
    {
      uint16_t t = m->attrs[i].type;
      if (t >= 0x8000)
        continue;
      switch (t)
        {
        case STUN_ATTR_USERNAME:
        case STUN_ATTR_MESSAGE_INTEGRITY:
        case STUN_ATTR_CHANNEL_NUMBER:
        case STUN_ATTR_LIFETIME:
        case STUN_ATTR_XOR_PEER_ADDRESS:
        case STUN_ATTR_DATA:
        case STUN_ATTR_REALM:
        case STUN_ATTR_NONCE:
        case STUN_ATTR_REQUESTED_ADDRESS_FAMILY:
        case STUN_ATTR_EVEN_PORT:
        case STUN_ATTR_REQUESTED_TRANSPORT:
        case STUN_ATTR_DONT_FRAGMENT:
        case STUN_ATTR_RESERVATION_TOKEN:
          continue;
        default:
          if (n < sizeof unknown)
            {
              unknown[n++] = (uint8_t)(t >> 8);
              unknown[n++] = (uint8_t)t;
            }
        }
    }
  if (n == 0)
    return TRUE;
  struct stun_builder b;
  stun_builder_init (&b, s->out, sizeof s->out, m->method, STUN_CLASS_ERROR, m->txid);
  relay_stats_error (&s->stats, 420, m->integrity_idx >= 0);
  stun_builder_add_error (&b, 420, "Unknown Attribute");
  stun_builder_add (&b, STUN_ATTR_UNKNOWN_ATTRIBUTES, unknown, n);
  stun_builder_add_fingerprint (&b);
  send_client (s, from, stun_builder_finish (&b));
  return FALSE;
}

/* The lifetime to grant to an allocation whose username expires at
 * cred_expiry (> now). */
static guint32
lifetime_for (RelayServer *s, const struct stun_msg *m, gint64 now, gint64 cred_expiry)
{
  /* RFC 8656 section 7.2: the requested lifetime, bounded by the server's
   * maximum, and never below the default. */
  guint32 want = s->config.default_lifetime;
  if (stun_msg_get_u32 (m, STUN_ATTR_LIFETIME, &want))
    {
      if (want > s->config.max_lifetime)
        want = s->config.max_lifetime;
      if (want < s->config.default_lifetime)
        want = s->config.default_lifetime;
    }
  /* Never past the username's expiry (authenticate): the allocation is
   * then removed by the expiry sweep. */
  if (cred_expiry - now < (gint64)want)
    want = (guint32)(cred_expiry - now);
  return want;
}

static void
reply_allocate_success (RelayServer *s, const struct relay_alloc *a,
                        const struct stun_msg *m, gint64 now)
{
  struct stun_builder b;
  stun_builder_init (&b, s->out, sizeof s->out, m->method, STUN_CLASS_SUCCESS, m->txid);
  stun_builder_add_xor_addr (&b, STUN_ATTR_XOR_RELAYED_ADDRESS, &a->relayed);
  stun_builder_add_u32 (&b, STUN_ATTR_LIFETIME, (uint32_t)MAX (a->expiry - now, 0));
  stun_builder_add_xor_addr (&b, STUN_ATTR_XOR_MAPPED_ADDRESS, &a->tuple.client);
  if (a->has_token)
    stun_builder_add (&b, STUN_ATTR_RESERVATION_TOKEN, a->token, RELAY_TOKEN_LEN);
  stun_builder_add_integrity (&b, a->key, sizeof a->key);
  stun_builder_add_fingerprint (&b);
  send_client (s, &a->tuple, stun_builder_finish (&b));
}

static void
reply_success (RelayServer *s, const struct relay_tuple *to, const struct stun_msg *m,
               const uint8_t *key, gboolean with_lifetime, guint32 lifetime)
{
  struct stun_builder b;
  stun_builder_init (&b, s->out, sizeof s->out, m->method, STUN_CLASS_SUCCESS, m->txid);
  if (with_lifetime)
    stun_builder_add_u32 (&b, STUN_ATTR_LIFETIME, lifetime);
  stun_builder_add_integrity (&b, key, 16);
  stun_builder_add_fingerprint (&b);
  send_client (s, to, stun_builder_finish (&b));
}

static void *
reservation_take (RelayServer *s, gint64 now, const uint8_t *token,
                  struct stun_addr *addr)
{
  for (guint i = 0; i < s->reservations->len; i++)
    {
      struct relay_reservation *r
          = &g_array_index (s->reservations, struct relay_reservation, i);
      if (r->expiry > now && CRYPTO_memcmp (r->token, token, RELAY_TOKEN_LEN) == 0)
        {
          void *h = r->handle;
          *addr = r->addr;
          g_array_remove_index_fast (s->reservations, i);
          return h;
        }
    }
  return NULL;
}

/* Opens the relayed socket; with even, on an even port (RFC 8656 section
 * 7.2), and with reserve also keeps the next port under a new token. */
static void *
open_relayed (RelayServer *s, gint64 now, gboolean even, gboolean reserve,
              struct stun_addr *relayed, uint8_t token[static RELAY_TOKEN_LEN],
              gboolean *reserved)
{
  *reserved = FALSE;
  memset (relayed, 0, sizeof *relayed);
  if (!even)
    return s->io.relay_open (s->io.user, 0, relayed);
  if (reserve && s->reservations->len >= s->config.max_allocations)
    return NULL;
  for (int i = 0; i < RELAY_EVEN_PORT_TRIES; i++)
    {
      void *h = s->io.relay_open (s->io.user, 0, relayed);
      if (h == NULL)
        return NULL;
      if (relayed->port % 2 != 0 || relayed->port == 65534)
        {
          s->io.relay_close (s->io.user, h);
          continue;
        }
      if (!reserve)
        return h;
      struct relay_reservation r;
      memset (&r, 0, sizeof r);
      r.handle = s->io.relay_open (s->io.user, (uint16_t)(relayed->port + 1), &r.addr);
      if (r.handle == NULL)
        {
          s->io.relay_close (s->io.user, h);
          continue;
        }
      if (RAND_bytes (r.token, RELAY_TOKEN_LEN) != 1)
        g_error ("RAND_bytes failed");
      r.expiry = now + RELAY_RESERVATION_LIFETIME;
      memcpy (token, r.token, RELAY_TOKEN_LEN);
      g_array_append_val (s->reservations, r);
      *reserved = TRUE;
      return h;
    }
  return NULL;
}

static void
handle_allocate (RelayServer *s, gint64 now, const struct relay_tuple *tuple,
                 struct relay_alloc *existing, const struct stun_msg *m,
                 const uint8_t *key, const char *user, size_t user_len,
                 const struct turnuser *cred)
{
  const struct relay_tuple *from = tuple;
  char buf[80];
  if (existing != NULL)
    {
      /* RFC 8656 section 7.2: a retransmitted Allocate gets the same answer. */
      if (memcmp (existing->txid, m->txid, STUN_TXID_LEN) == 0)
        reply_allocate_success (s, existing, m, now);
      else
        reply_error (s, now, from, m, 437, "Allocation Mismatch", key);
      return;
    }
  uint8_t proto;
  if (!stun_msg_get_requested_transport (m, &proto))
    {
      reply_error (s, now, from, m, 400, "Bad Request", key);
      return;
    }
  if (proto != RELAY_PROTO_UDP)
    {
      reply_error (s, now, from, m, 442, "Unsupported Transport Protocol", key);
      return;
    }
  const struct stun_attr *even = stun_msg_find (m, STUN_ATTR_EVEN_PORT);
  const struct stun_attr *token = stun_msg_find (m, STUN_ATTR_RESERVATION_TOKEN);
  /* RFC 8656 section 7.2: not both; a token is 8 bytes; EVEN-PORT 1 byte. */
  if ((even != NULL && token != NULL) || (token != NULL && token->len != RELAY_TOKEN_LEN)
      || (even != NULL && even->len != 1))
    {
      reply_error (s, now, from, m, 400, "Bad Request", key);
      return;
    }
  uint8_t family = 0;
  const struct stun_attr *raf = stun_msg_find (m, STUN_ATTR_REQUESTED_ADDRESS_FAMILY);
  if (raf != NULL)
    {
      /* RFC 8656 section 18.10: 0x01 IPv4, 0x02 IPv6, then 3 reserved bytes. */
      uint8_t v = raf->len == 4 ? m->buf[raf->offset] : 0;
      if ((v != 0x01 && v != 0x02) || token != NULL)
        {
          reply_error (s, now, from, m, 400, "Bad Request", key);
          return;
        }
      family = v == 0x01 ? 4 : 6;
    }
  /* turnuser_parse refused a NUL in the name; EXPIRY is digits. */
  g_autofree char *username = g_strndup (user, user_len);
  g_autofree char *name = g_strndup (cred->name, cred->name_len);
  /* The username's own limits, signed by the operator's secret, replace
   * the defaults for this peer, both higher and lower. */
  guint max_per_name = cred->max_alloc != 0 ? cred->max_alloc : s->config.max_per_user;
  if (g_hash_table_size (s->by_tuple) >= s->config.max_allocations)
    {
      g_message ("allocation refused for %s: %u allocations in all (limit)",
                 relay_addr_to_string (&from->client, buf, sizeof buf),
                 s->config.max_allocations);
      reply_error (s, now, from, m, 508, "Insufficient Capacity", key);
      return;
    }
  switch (relay_quota_check (&s->quota, name, &from->client, max_per_name,
                             s->config.max_per_address))
    {
    case RELAY_QUOTA_NAME:
      g_message ("allocation refused for %s: %u allocations for name %s (limit)",
                 relay_addr_to_string (&from->client, buf, sizeof buf), max_per_name,
                 name);
      reply_error (s, now, from, m, 486, "Allocation Quota Reached", key);
      return;
    case RELAY_QUOTA_ADDRESS:
      g_message ("allocation refused for %s: %u allocations from this address (limit)",
                 relay_addr_to_string (&from->client, buf, sizeof buf),
                 s->config.max_per_address);
      reply_error (s, now, from, m, 486, "Allocation Quota Reached", key);
      return;
    case RELAY_QUOTA_OK:
    default:
      break;
    }
  struct stun_addr relayed;
  uint8_t new_token[RELAY_TOKEN_LEN];
  gboolean reserved = FALSE;
  void *handle;
  if (token != NULL)
    handle = reservation_take (s, now, m->buf + token->offset, &relayed);
  else
    handle = open_relayed (s, now, even != NULL,
                           even != NULL && (m->buf[even->offset] & 0x80), &relayed,
                           new_token, &reserved);
  if (handle == NULL)
    {
      g_message ("allocation refused for %s: no relayed socket%s",
                 relay_addr_to_string (&from->client, buf, sizeof buf),
                 token != NULL ? " for the token" : "");
      reply_error (s, now, from, m, 508, "Insufficient Capacity", key);
      return;
    }
  /* RFC 8656 section 7.2: REQUESTED-ADDRESS-FAMILY the relay cannot serve
   * gets 440. The relayed family is the one of --relay-address. */
  if (family != 0 && family != relayed.family)
    {
      s->io.relay_close (s->io.user, handle);
      void *next = reserved ? reservation_take (s, now, new_token, &relayed) : NULL;
      if (next != NULL)
        s->io.relay_close (s->io.user, next);
      reply_error (s, now, from, m, 440, "Address Family not Supported", key);
      return;
    }
  struct relay_alloc *a = g_new0 (struct relay_alloc, 1);
  a->tuple = *tuple;
  a->username = g_steal_pointer (&username);
  a->name = g_steal_pointer (&name);
  a->cred_expiry = cred->expiry;
  a->max_bps = cred->max_bps != 0 ? cred->max_bps : s->config.max_bps;
  memcpy (a->key, key, sizeof a->key);
  a->relayed = relayed;
  a->handle = handle;
  a->expiry = now + lifetime_for (s, m, now, a->cred_expiry);
  memcpy (a->txid, m->txid, STUN_TXID_LEN);
  a->perms = g_new0 (struct relay_perm, MAX (s->config.max_permissions, 1));
  a->chans = g_new0 (struct relay_chan, MAX (s->config.max_channels, 1));
  g_hash_table_insert (s->by_tuple, &a->tuple, a);
  g_hash_table_insert (s->by_handle, handle, a);
  if (a->tuple.conn != NULL)
    g_hash_table_insert (s->by_conn, a->tuple.conn, a);
  relay_quota_add (&s->quota, a->name, &a->tuple.client);
  relay_reach_add (s->reach, &a->relayed);
  s->stats.allocations[from->transport]++;
  char rbuf[80];
  g_info ("allocation for %s from %s%s relayed at %s", a->username,
          relay_addr_to_string (&from->client, buf, sizeof buf),
          transport_name (from->transport),
          relay_addr_to_string (&relayed, rbuf, sizeof rbuf));
  if (reserved)
    memcpy (a->token, new_token, RELAY_TOKEN_LEN);
  a->has_token = reserved;
  reply_allocate_success (s, a, m, now);
}

/* A peer in CreatePermission or ChannelBind: of the allocation's address
 * family (RFC 8656 section 9.1: 443) and allowed by the peer policy (403).
 * Answers the error itself and returns FALSE when not. */
static gboolean
peer_acceptable (RelayServer *s, gint64 now, struct relay_alloc *a,
                 const struct stun_msg *m, const uint8_t *key,
                 const struct stun_addr *peer, const char *what)
{
  const struct relay_tuple *from = &a->tuple;
  char buf[80];

  if (peer->family != a->relayed.family)
    {
      reply_error (s, now, from, m, 443, "Peer Address Family Mismatch", key);
      return FALSE;
    }
  if (!relay_reach_peer_allowed (s->reach, &a->relayed, peer))
    {
      g_message ("%s refused for %s: peer %s not allowed", what,
                 relay_addr_to_string (&from->client, buf, sizeof buf),
                 relay_addr_to_string (peer, buf + 40, 40));
      reply_error (s, now, from, m, 403, "Forbidden", key);
      return FALSE;
    }
  return TRUE;
}

static void
handle_create_permission (RelayServer *s, gint64 now, struct relay_alloc *a,
                          const struct stun_msg *m, const uint8_t *key)
{
  const struct relay_tuple *from = &a->tuple;
  char buf[80];
  guint n_peers = 0, n_new = 0;
  /* Check every peer before installing any (RFC 8656 section 10.2). */
  for (size_t i = 0; i < m->n_attrs; i++)
    {
      struct stun_addr peer;
      if (m->attrs[i].type != STUN_ATTR_XOR_PEER_ADDRESS)
        continue;
      if (!stun_attr_get_xor_addr (m, &m->attrs[i], &peer))
        {
          reply_error (s, now, from, m, 400, "Bad Request", key);
          return;
        }
      if (!peer_acceptable (s, now, a, m, key, &peer, "permission"))
        return;
      n_peers++;
      if (relay_alloc_perm_find (a, &peer, now) == NULL)
        n_new++;
    }
  if (n_peers == 0)
    {
      reply_error (s, now, from, m, 400, "Bad Request", key);
      return;
    }
  guint free_slots = s->config.max_permissions - a->n_perms;
  for (guint i = 0; i < a->n_perms; i++)
    if (a->perms[i].expiry <= now)
      free_slots++;
  if (n_new > free_slots)
    {
      g_message ("permission refused for %s: %u permissions (limit)",
                 relay_addr_to_string (&from->client, buf, sizeof buf),
                 s->config.max_permissions);
      reply_error (s, now, from, m, 508, "Insufficient Capacity", key);
      return;
    }
  for (size_t i = 0; i < m->n_attrs; i++)
    {
      struct stun_addr peer;
      if (m->attrs[i].type == STUN_ATTR_XOR_PEER_ADDRESS
          && stun_attr_get_xor_addr (m, &m->attrs[i], &peer))
        (void)relay_alloc_perm_install (s->config.max_permissions, a, &peer, now);
    }
  reply_success (s, from, m, key, FALSE, 0);
}

static void
handle_channel_bind (RelayServer *s, gint64 now, struct relay_alloc *a,
                     const struct stun_msg *m, const uint8_t *key)
{
  const struct relay_tuple *from = &a->tuple;
  char buf[80];
  uint16_t number;
  struct stun_addr peer;
  if (!stun_msg_get_channel_number (m, &number) || number < RELAY_CHANNEL_MIN
      || number > RELAY_CHANNEL_MAX_RFC5766
      || !stun_msg_get_xor_addr (m, STUN_ATTR_XOR_PEER_ADDRESS, &peer))
    {
      g_debug ("channel bind: bad channel number or peer address");
      reply_error (s, now, from, m, 400, "Bad Request", key);
      return;
    }
  if (!peer_acceptable (s, now, a, m, key, &peer, "channel"))
    return;
  /* RFC 8656 section 11.2: a number is bound to one peer and a peer to one
   * number for the channel's life. */
  struct relay_chan *c = relay_alloc_chan_by_number (a, number, now);
  struct relay_chan *by_peer = relay_alloc_chan_by_peer (a, &peer, now);
  if (c != by_peer)
    {
      g_debug ("channel bind: 0x%04x or its peer already bound otherwise", number);
      reply_error (s, now, from, m, 400, "Bad Request", key);
      return;
    }
  if (c == NULL)
    {
      for (guint i = 0; i < a->n_chans && c == NULL; i++)
        if (a->chans[i].expiry <= now)
          c = &a->chans[i];
      if (c == NULL && a->n_chans < s->config.max_channels)
        c = &a->chans[a->n_chans++];
      if (c == NULL)
        {
          g_message ("channel refused for %s: %u channels (limit)",
                     relay_addr_to_string (&from->client, buf, sizeof buf),
                     s->config.max_channels);
          reply_error (s, now, from, m, 508, "Insufficient Capacity", key);
          return;
        }
      c->number = number;
      c->peer = peer;
    }
  if (!relay_alloc_perm_install (s->config.max_permissions, a, &peer, now))
    {
      c->expiry = 0;
      g_message ("channel refused for %s: %u permissions (limit)",
                 relay_addr_to_string (&from->client, buf, sizeof buf),
                 s->config.max_permissions);
      reply_error (s, now, from, m, 508, "Insufficient Capacity", key);
      return;
    }
  c->expiry = now + RELAY_CHANNEL_LIFETIME;
  reply_success (s, from, m, key, FALSE, 0);
}

static void
handle_send_indication (RelayServer *s, gint64 now_us, struct relay_alloc *a,
                        const struct stun_msg *m)
{
  gint64 now = now_us / G_USEC_PER_SEC;
  struct stun_addr peer;
  const uint8_t *data;
  size_t len;
  /* RFC 8656 section 11.2: indications that fail checks are dropped silently. */
  if (a == NULL || !stun_msg_get_xor_addr (m, STUN_ATTR_XOR_PEER_ADDRESS, &peer)
      || !stun_msg_get_data (m, &data, &len)
      || relay_alloc_perm_find (a, &peer, now) == NULL
      || !relay_reach_datagram_allowed (s->reach, &a->relayed, &peer)
      || !relay_alloc_bw_allow (a, a->max_bps, now_us, len))
    return;
  s->stats.to_peer_packets++;
  s->stats.to_peer_bytes += len;
  s->io.send (s->io.user, a->handle, &peer, data, len);
}

static void
handle_channel_data (RelayServer *s, gint64 now_us, struct relay_alloc *a,
                     const uint8_t *buf, size_t len)
{
  gint64 now = now_us / G_USEC_PER_SEC;
  if (a == NULL || len < RELAY_CHANNEL_HEADER_LEN)
    return;
  uint16_t number = (uint16_t)((buf[0] << 8) | buf[1]);
  size_t dlen = (size_t)((buf[2] << 8) | buf[3]);
  /* RFC 8656 section 12.5: over UDP the padding may be absent, and a
   * datagram shorter than the length is dropped. Over TCP and TLS the
   * framing (stream.c) has cut the message at its length and padding. */
  if (dlen > len - RELAY_CHANNEL_HEADER_LEN)
    return;
  struct relay_chan *c = relay_alloc_chan_by_number (a, number, now);
  if (c == NULL || relay_alloc_perm_find (a, &c->peer, now) == NULL
      || !relay_reach_datagram_allowed (s->reach, &a->relayed, &c->peer)
      || !relay_alloc_bw_allow (a, a->max_bps, now_us, dlen))
    return;
  s->stats.to_peer_packets++;
  s->stats.to_peer_bytes += dlen;
  s->io.send (s->io.user, a->handle, &c->peer, buf + RELAY_CHANNEL_HEADER_LEN, dlen);
}

static void
process_peer (RelayServer *s, gint64 now_us, void *handle, const struct stun_addr *from,
              const uint8_t *buf, size_t len)
{
  gint64 now = now_us / G_USEC_PER_SEC;
  struct relay_alloc *a = g_hash_table_lookup (s->by_handle, handle);
  if (a == NULL || a->expiry <= now || relay_alloc_perm_find (a, from, now) == NULL
      || !relay_reach_datagram_allowed (s->reach, &a->relayed, from))
    return;
  struct relay_chan *c = relay_alloc_chan_by_peer (a, from, now);
  if (c != NULL)
    {
      /* RFC 8656 section 12.5: padded to a multiple of 4 over TCP and TLS. */
      size_t n = RELAY_CHANNEL_HEADER_LEN + len;
      size_t padded = a->tuple.conn != NULL ? (n + 3) & ~(size_t)3 : n;
      if (len > 0xFFFF || padded > sizeof s->out
          || !relay_alloc_bw_allow (a, a->max_bps, now_us, len))
        return;
      s->out[0] = (uint8_t)(c->number >> 8);
      s->out[1] = (uint8_t)c->number;
      s->out[2] = (uint8_t)(len >> 8);
      s->out[3] = (uint8_t)len;
      memcpy (s->out + RELAY_CHANNEL_HEADER_LEN, buf, len);
      memset (s->out + n, 0, padded - n);
      s->stats.to_client_packets++;
      s->stats.to_client_bytes += len;
      send_client (s, &a->tuple, padded);
      return;
    }
  if (!relay_alloc_bw_allow (a, a->max_bps, now_us, len))
    return;
  uint8_t txid[STUN_TXID_LEN];
  txid_next (s, txid);
  struct stun_builder b;
  stun_builder_init (&b, s->out, sizeof s->out, STUN_METHOD_DATA, STUN_CLASS_INDICATION,
                     txid);
  stun_builder_add_xor_addr (&b, STUN_ATTR_XOR_PEER_ADDRESS, from);
  stun_builder_add (&b, STUN_ATTR_DATA, buf, len);
  size_t n = stun_builder_finish (&b);
  if (n > 0)
    {
      s->stats.to_client_packets++;
      s->stats.to_client_bytes += len;
    }
  send_client (s, &a->tuple, n);
}

static void
handle_binding (RelayServer *s, const struct relay_tuple *from, const struct stun_msg *m)
{
  struct stun_builder b;
  stun_builder_init (&b, s->out, sizeof s->out, STUN_METHOD_BINDING, STUN_CLASS_SUCCESS,
                     m->txid);
  stun_builder_add_xor_addr (&b, STUN_ATTR_XOR_MAPPED_ADDRESS, &from->client);
  stun_builder_add_fingerprint (&b);
  send_client (s, from, stun_builder_finish (&b));
}

void
relay_server_process (RelayServer *s, gint64 now_us, const struct relay_source *source,
                      const struct stun_addr *from_addr, const uint8_t *buf, size_t len)
{
  gint64 now = now_us / G_USEC_PER_SEC;
  if (source->relay_handle != NULL)
    {
      process_peer (s, now_us, source->relay_handle, from_addr, buf, len);
      return;
    }
  struct relay_tuple tuple;
  memset (&tuple, 0, sizeof tuple);
  tuple.transport = source->transport;
  tuple.client = *from_addr;
  tuple.conn = source->conn;
  const struct relay_tuple *from = &tuple;
  struct relay_alloc *a = g_hash_table_lookup (s->by_tuple, &tuple);
  if (a != NULL && a->expiry <= now)
    {
      alloc_remove (s, a, "expired");
      a = NULL;
    }

  /* RFC 7983 / RFC 8656 section 12: 0b01 in the first two bits is ChannelData. */
  if (len >= 1 && (buf[0] & 0xC0) == 0x40)
    {
      handle_channel_data (s, now_us, a, buf, len);
      return;
    }
  struct stun_msg m;
  if (stun_parse (buf, len, &m) != STUN_OK)
    return;
  if (m.fingerprint_idx >= 0 && !stun_msg_check_fingerprint (&m))
    return;

  if (m.cls == STUN_CLASS_INDICATION)
    {
      if (m.method == STUN_METHOD_SEND)
        handle_send_indication (s, now_us, a, &m);
      return;
    }
  if (m.cls != STUN_CLASS_REQUEST)
    return;
  if (m.method == STUN_METHOD_BINDING)
    {
      handle_binding (s, from, &m);
      return;
    }
  if (m.method != STUN_METHOD_ALLOCATE && m.method != STUN_METHOD_REFRESH
      && m.method != STUN_METHOD_CREATE_PERMISSION
      && m.method != STUN_METHOD_CHANNEL_BIND)
    {
      reply_error (s, now, from, &m, 400, "Bad Request", NULL);
      return;
    }
  if (!check_unknown (s, now, from, &m))
    return;
  uint8_t key[16];
  const char *user;
  size_t user_len;
  struct turnuser cred;
  if (!authenticate (s, now, from, &m, key, &user, &user_len, &cred))
    return;
  /* RFC 8656 section 5: every request after the Allocate must use the same
   * username as the Allocate did (441 otherwise), lest another user take
   * the allocation over. So newer credentials cannot extend an allocation
   * past the expiry of those that made it: an agent moves its relayed path
   * to a new allocation made with fresh credentials before then. */
  if (a != NULL
      && (strlen (a->username) != user_len || memcmp (a->username, user, user_len) != 0))
    {
      reply_error (s, now, from, &m, 441, "Wrong Credentials", key);
      OPENSSL_cleanse (key, sizeof key);
      return;
    }

  if (m.method == STUN_METHOD_ALLOCATE)
    handle_allocate (s, now, &tuple, a, &m, key, user, user_len, &cred);
  else if (a == NULL)
    reply_error (s, now, from, &m, 437, "Allocation Mismatch", key);
  else if (m.method == STUN_METHOD_REFRESH)
    {
      uint32_t want = 1;
      if (stun_msg_get_u32 (&m, STUN_ATTR_LIFETIME, &want) && want == 0)
        {
          reply_success (s, from, &m, key, TRUE, 0);
          alloc_remove (s, a, "refreshed with lifetime 0");
        }
      else
        {
          guint32 lifetime = lifetime_for (s, &m, now, a->cred_expiry);
          a->expiry = now + lifetime;
          reply_success (s, from, &m, key, TRUE, lifetime);
        }
    }
  else if (m.method == STUN_METHOD_CREATE_PERMISSION)
    handle_create_permission (s, now, a, &m, key);
  else
    handle_channel_bind (s, now, a, &m, key);
  OPENSSL_cleanse (key, sizeof key);
}

void
relay_server_conn_closed (RelayServer *s, void *conn)
{
  struct relay_alloc *a = g_hash_table_lookup (s->by_conn, conn);
  if (a != NULL)
    alloc_remove (s, a, "connection closed");
}

gboolean
relay_server_conn_has_allocation (RelayServer *s, void *conn)
{
  return g_hash_table_lookup (s->by_conn, conn) != NULL;
}

void
relay_server_expire (RelayServer *s, gint64 now_us)
{
  gint64 now = now_us / G_USEC_PER_SEC;
  for (guint i = s->reservations->len; i > 0; i--)
    {
      struct relay_reservation *r
          = &g_array_index (s->reservations, struct relay_reservation, i - 1);
      if (r->expiry <= now)
        {
          s->io.relay_close (s->io.user, r->handle);
          g_array_remove_index_fast (s->reservations, i - 1);
        }
    }
  GHashTableIter it;
  gpointer v;
  GPtrArray *dead = NULL;
  g_hash_table_iter_init (&it, s->by_tuple);
  while (g_hash_table_iter_next (&it, NULL, &v))
    {
      struct relay_alloc *a = v;
      if (a->expiry <= now)
        {
          if (dead == NULL)
            dead = g_ptr_array_new ();
          g_ptr_array_add (dead, a);
        }
    }
  if (dead == NULL)
    return;
  for (guint i = 0; i < dead->len; i++)
    alloc_remove (s, dead->pdata[i], "expired");
  g_ptr_array_unref (dead);
}
