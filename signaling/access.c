/* Who may use a p2ptun-signal. See access.h. */
#include "access.h"

#include <string.h>

#include <json-glib/json-glib.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "enrolltoken.h"
#include "jsonstrict.h"

#define ACCESS_FILE_VERSION 1
/* The enroll body is {"token":"..."} and nothing more. */
#define ACCESS_ENROLL_BODY_MAX 256

struct _AccessStore
{
  GHashTable *peers;   /* id (in the AccessPeer) -> AccessPeer*, owned */
  GHashTable *revoked; /* id -> AccessRevoked*, owned */
  GHashTable *seen;    /* id -> AccessSeen*, owned */
  GPtrArray *tokens;   /* AccessToken*, owned, oldest first */
  AccessPolicy default_policy;
};

G_DEFINE_QUARK (p2ptun-access-error-quark, access_error)

static void
peer_free (gpointer data)
{
  AccessPeer *p = data;

  g_free (p->note);
  g_free (p->via);
  g_free (p);
}

static void
token_free (gpointer data)
{
  AccessToken *t = data;

  g_free (t->note);
  g_free (t);
}

AccessStore *
access_store_new (void)
{
  AccessStore *store = g_new0 (AccessStore, 1);

  store->peers = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, peer_free);
  store->revoked = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  store->seen = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  store->tokens = g_ptr_array_new_with_free_func (token_free);
  return store;
}

void
access_store_free (AccessStore *store)
{
  if (store == NULL)
    return;
  g_hash_table_destroy (store->peers);
  g_hash_table_destroy (store->revoked);
  g_hash_table_destroy (store->seen);
  g_ptr_array_unref (store->tokens);
  g_free (store);
}

/* --- tokens --- */

gboolean
access_token_parse (const char *text, gsize len, guint8 raw[static ACCESS_TOKEN_RAW_LEN])
{
  return enrolltoken_decode (text, len, raw);
}

static void
token_hash (const guint8 raw[static ACCESS_TOKEN_RAW_LEN], guint8 hash[static ACCESS_HASH_LEN])
{
  SHA256 (raw, ACCESS_TOKEN_RAW_LEN, hash);
}

static void
hex_encode (const guint8 *in, gsize len, char *out)
{
  static const char digits[] = "0123456789abcdef";

  for (gsize i = 0; i < len; i++)
    {
      out[2 * i] = digits[in[i] >> 4];
      out[2 * i + 1] = digits[in[i] & 15];
    }
  out[2 * len] = '\0';
}

static gboolean
token_expired (const AccessToken *t, gint64 now)
{
  return t->expires != 0 && t->expires <= now;
}

static gboolean
note_is_valid (const char *note)
{
  if (note == NULL)
    return TRUE;
  if (strlen (note) > ACCESS_NOTE_MAX || !g_utf8_validate (note, -1, NULL))
    return FALSE;
  for (const char *c = note; *c != '\0'; c++)
    if ((guchar) *c < 0x20 || *c == 0x7f)
      return FALSE;
  return TRUE;
}

char *
access_store_add_token (AccessStore *store, gboolean reusable, gint64 expires,
                        const char *note, gint64 now, char id[static ACCESS_TOKEN_ID_SIZE],
                        GError **error)
{
  guint8 raw[ACCESS_TOKEN_RAW_LEN];
  char text[ACCESS_TOKEN_LEN + 1];
  AccessToken *t;

  if (!note_is_valid (note))
    {
      g_set_error (error, ACCESS_ERROR, ACCESS_ERROR_INVALID,
                   "a note is at most %d characters of text on one line", ACCESS_NOTE_MAX);
      return NULL;
    }
  if (expires != 0 && expires <= now)
    {
      g_set_error (error, ACCESS_ERROR, ACCESS_ERROR_INVALID, "the expiry is in the past");
      return NULL;
    }
  access_store_prune (store, now);
  if (store->tokens->len >= ACCESS_MAX_TOKENS)
    {
      g_set_error (error, ACCESS_ERROR, ACCESS_ERROR_FULL,
                   "%d tokens are outstanding already; cancel some (tokens --cancel ID)",
                   ACCESS_MAX_TOKENS);
      return NULL;
    }
  if (RAND_bytes (raw, sizeof raw) != 1)
    {
      g_set_error (error, ACCESS_ERROR, ACCESS_ERROR_FULL, "no random bytes to be had");
      return NULL;
    }
  t = g_new0 (AccessToken, 1);
  token_hash (raw, t->hash);
  hex_encode (t->hash, ACCESS_TOKEN_ID_LEN / 2, t->id);
  t->reusable = reusable;
  t->created = now;
  t->expires = expires;
  t->note = g_strdup (note);
  g_ptr_array_add (store->tokens, t);
  memcpy (id, t->id, ACCESS_TOKEN_ID_SIZE);
  enrolltoken_encode (raw, text);
  OPENSSL_cleanse (raw, sizeof raw);
  return g_strdup (text);
}

/* The token whose hash is @hash, looked for in constant time: every stored
 * hash is compared, whatever matched before. */
static AccessToken *
token_find (const AccessStore *store, const guint8 hash[static ACCESS_HASH_LEN])
{
  AccessToken *found = NULL;

  for (guint i = 0; i < store->tokens->len; i++)
    {
      AccessToken *t = store->tokens->pdata[i];
      gboolean same = CRYPTO_memcmp (t->hash, hash, ACCESS_HASH_LEN) == 0;

      if (same)
        found = t;
    }
  return found;
}

static AccessPeer *
peer_add (AccessStore *store, const char *peer, const char *via, const char *note, gint64 now)
{
  AccessPeer *p = g_new0 (AccessPeer, 1);

  g_strlcpy (p->id, peer, sizeof p->id);
  p->via = g_strdup (via);
  p->note = g_strdup (note);
  p->enrolled = now;
  g_hash_table_remove (store->seen, peer);
  g_hash_table_replace (store->peers, p->id, p);
  return p;
}

AccessRedeem
access_store_redeem (AccessStore *store, const guint8 token[static ACCESS_TOKEN_RAW_LEN],
                     const char *peer, gint64 now)
{
  guint8 hash[ACCESS_HASH_LEN];
  g_autofree char *via = NULL;
  AccessToken *t;

  if (g_hash_table_contains (store->revoked, peer))
    return ACCESS_REDEEM_REVOKED;
  token_hash (token, hash);
  t = token_find (store, hash);
  if (t == NULL || token_expired (t, now))
    return ACCESS_REDEEM_BAD_TOKEN;
  if (g_hash_table_contains (store->peers, peer))
    return ACCESS_REDEEM_ALREADY;
  if (g_hash_table_size (store->peers) >= ACCESS_MAX_PEERS)
    return ACCESS_REDEEM_FULL;
  via = g_strdup_printf ("token %s", t->id);
  peer_add (store, peer, via, t->note, now);
  t->uses++;
  if (!t->reusable)
    g_ptr_array_remove (store->tokens, t);
  return ACCESS_REDEEM_ENROLLED;
}

gboolean
access_store_cancel_token (AccessStore *store, const char *id, GError **error)
{
  for (guint i = 0; i < store->tokens->len; i++)
    {
      AccessToken *t = store->tokens->pdata[i];

      if (strcmp (t->id, id) == 0)
        {
          g_ptr_array_remove_index (store->tokens, i);
          return TRUE;
        }
    }
  g_set_error (error, ACCESS_ERROR, ACCESS_ERROR_UNKNOWN, "no outstanding token has id %s",
               strlen (id) == ACCESS_TOKEN_ID_LEN ? id : "(malformed)");
  return FALSE;
}

guint
access_store_prune (AccessStore *store, gint64 now)
{
  guint dropped = 0;

  for (guint i = store->tokens->len; i-- > 0;)
    if (token_expired (store->tokens->pdata[i], now))
      {
        g_ptr_array_remove_index (store->tokens, i);
        dropped++;
      }
  return dropped;
}

/* --- peers --- */

AccessVerdict
access_store_check (const AccessStore *store, const char *peer)
{
  if (g_hash_table_contains (store->revoked, peer))
    return ACCESS_REVOKED;
  if (g_hash_table_contains (store->peers, peer))
    return ACCESS_ADMITTED;
  return ACCESS_NOT_ENROLLED;
}

gboolean
access_store_saw (AccessStore *store, const char *peer, gint64 now)
{
  AccessPeer *p = g_hash_table_lookup (store->peers, peer);
  AccessSeen *s;

  if (p != NULL)
    {
      p->last_seen = now;
      return FALSE;
    }
  if (g_hash_table_contains (store->revoked, peer))
    return FALSE;
  s = g_hash_table_lookup (store->seen, peer);
  if (s != NULL)
    {
      s->last = now;
      return FALSE;
    }
  if (g_hash_table_size (store->seen) >= ACCESS_MAX_SEEN)
    {
      GHashTableIter iter;
      AccessSeen *oldest = NULL, *each;

      g_hash_table_iter_init (&iter, store->seen);
      while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &each))
        if (oldest == NULL || each->last < oldest->last)
          oldest = each;
      g_hash_table_remove (store->seen, oldest->id);
    }
  s = g_new0 (AccessSeen, 1);
  g_strlcpy (s->id, peer, sizeof s->id);
  s->first = s->last = now;
  g_hash_table_replace (store->seen, s->id, s);
  return TRUE;
}

static gboolean
peer_arg_is_valid (const char *peer, GError **error)
{
  if (peer != NULL && peerid_is_valid (peer))
    return TRUE;
  g_set_error (error, ACCESS_ERROR, ACCESS_ERROR_INVALID,
               "not a peer-id (52 characters of a-z and 2-7)");
  return FALSE;
}

gboolean
access_store_enroll (AccessStore *store, const char *peer, const char *via, const char *note,
                     gint64 now, GError **error)
{
  AccessPeer *p;

  if (!peer_arg_is_valid (peer, error))
    return FALSE;
  if (!note_is_valid (note))
    {
      g_set_error (error, ACCESS_ERROR, ACCESS_ERROR_INVALID,
                   "a note is at most %d characters of text on one line", ACCESS_NOTE_MAX);
      return FALSE;
    }
  p = g_hash_table_lookup (store->peers, peer);
  if (p != NULL)
    {
      if (note != NULL)
        {
          g_free (p->note);
          p->note = g_strdup (note);
        }
      return TRUE;
    }
  if (g_hash_table_size (store->peers) >= ACCESS_MAX_PEERS)
    {
      g_set_error (error, ACCESS_ERROR, ACCESS_ERROR_FULL, "%d peers are enrolled already",
                   ACCESS_MAX_PEERS);
      return FALSE;
    }
  g_hash_table_remove (store->revoked, peer);
  peer_add (store, peer, via, note, now);
  return TRUE;
}

guint
access_store_enroll_seen (AccessStore *store, gint64 now)
{
  g_autoptr (GPtrArray) seen = access_store_seen (store);
  guint n = 0;

  for (guint i = 0; i < seen->len; i++)
    {
      const AccessSeen *s = seen->pdata[i];
      char id[PEERID_SIZE];

      if (g_hash_table_size (store->peers) >= ACCESS_MAX_PEERS)
        break;
      g_strlcpy (id, s->id, sizeof id); /* peer_add frees s */
      peer_add (store, id, "seen", NULL, now);
      n++;
    }
  return n;
}

gboolean
access_store_revoke (AccessStore *store, const char *peer, gint64 now, GError **error)
{
  AccessRevoked *r;

  if (!peer_arg_is_valid (peer, error))
    return FALSE;
  if (g_hash_table_contains (store->revoked, peer))
    return TRUE;
  if (!g_hash_table_contains (store->peers, peer) && !g_hash_table_contains (store->seen, peer))
    {
      g_set_error (error, ACCESS_ERROR, ACCESS_ERROR_UNKNOWN,
                   "this server has neither enrolled nor seen that peer-id");
      return FALSE;
    }
  if (g_hash_table_size (store->revoked) >= ACCESS_MAX_REVOKED)
    {
      g_set_error (error, ACCESS_ERROR, ACCESS_ERROR_FULL, "%d peers are revoked already",
                   ACCESS_MAX_REVOKED);
      return FALSE;
    }
  r = g_new0 (AccessRevoked, 1);
  g_strlcpy (r->id, peer, sizeof r->id);
  r->when = now;
  g_hash_table_remove (store->peers, peer);
  g_hash_table_remove (store->seen, peer);
  g_hash_table_replace (store->revoked, r->id, r);
  return TRUE;
}

static gboolean
policy_is_valid (const AccessPolicy *policy, GError **error)
{
  if (policy->max_allocations > ACCESS_MAX_ALLOCATIONS || policy->max_bps > ACCESS_MAX_BPS)
    {
      g_set_error (error, ACCESS_ERROR, ACCESS_ERROR_INVALID,
                   "allocations run to %d, bytes per second to %" G_GUINT64_FORMAT,
                   ACCESS_MAX_ALLOCATIONS, ACCESS_MAX_BPS);
      return FALSE;
    }
  return TRUE;
}

gboolean
access_store_set_policy (AccessStore *store, const char *peer, const AccessPolicy *policy,
                         GError **error)
{
  AccessPeer *p;

  if (!policy_is_valid (policy, error))
    return FALSE;
  if (peer == NULL)
    {
      store->default_policy = *policy;
      return TRUE;
    }
  if (!peer_arg_is_valid (peer, error))
    return FALSE;
  p = g_hash_table_lookup (store->peers, peer);
  if (p == NULL)
    {
      g_set_error (error, ACCESS_ERROR, ACCESS_ERROR_UNKNOWN, "that peer is not enrolled");
      return FALSE;
    }
  p->policy = *policy;
  return TRUE;
}

AccessPolicy
access_store_policy_for (const AccessStore *store, const char *peer)
{
  const AccessPeer *p = g_hash_table_lookup (store->peers, peer);
  AccessPolicy out = store->default_policy;

  if (p != NULL && p->policy.max_allocations != 0)
    out.max_allocations = p->policy.max_allocations;
  if (p != NULL && p->policy.max_bps != 0)
    out.max_bps = p->policy.max_bps;
  return out;
}

AccessPolicy
access_store_default_policy (const AccessStore *store)
{
  return store->default_policy;
}

/* --- lists --- */

static gint
by_id (gconstpointer a, gconstpointer b)
{
  /* Every element type begins with its peer-id. */
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static GPtrArray *
sorted_values (GHashTable *table)
{
  GPtrArray *out = g_ptr_array_sized_new (g_hash_table_size (table));
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (out, value);
  g_ptr_array_sort (out, by_id);
  return out;
}

GPtrArray *
access_store_peers (const AccessStore *store)
{
  return sorted_values (store->peers);
}

GPtrArray *
access_store_seen (const AccessStore *store)
{
  return sorted_values (store->seen);
}

GPtrArray *
access_store_revoked (const AccessStore *store)
{
  return sorted_values (store->revoked);
}

GPtrArray *
access_store_tokens (const AccessStore *store)
{
  GPtrArray *out = g_ptr_array_sized_new (store->tokens->len);

  for (guint i = 0; i < store->tokens->len; i++)
    g_ptr_array_add (out, store->tokens->pdata[i]);
  return out;
}

/* --- JSON --- */

static void
add_int (JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

static void
add_string (JsonBuilder *b, const char *name, const char *value)
{
  if (value == NULL)
    return;
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value);
}

static void
add_policy (JsonBuilder *b, const AccessPolicy *policy)
{
  if (policy->max_allocations != 0)
    add_int (b, "max_allocations", policy->max_allocations);
  if (policy->max_bps != 0)
    add_int (b, "max_bps", (gint64) policy->max_bps);
}

static void
add_lists_policy (JsonBuilder *b, const char *name, const AccessPolicy *policy)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  add_policy (b, policy);
  json_builder_end_object (b);
}

void
access_store_add_lists (const AccessStore *store, JsonBuilder *b, AccessOnlineFunc online,
                        gpointer data)
{
  g_autoptr (GPtrArray) peers = access_store_peers (store);
  g_autoptr (GPtrArray) revoked = access_store_revoked (store);
  g_autoptr (GPtrArray) seen = access_store_seen (store);

  add_lists_policy (b, "default_policy", &store->default_policy);
  json_builder_set_member_name (b, "peers");
  json_builder_begin_array (b);
  for (guint i = 0; i < peers->len; i++)
    {
      const AccessPeer *p = peers->pdata[i];

      json_builder_begin_object (b);
      add_string (b, "id", p->id);
      add_string (b, "via", p->via);
      add_string (b, "note", p->note);
      add_int (b, "enrolled", p->enrolled);
      add_int (b, "last_seen", p->last_seen);
      add_policy (b, &p->policy);
      if (online != NULL)
        {
          json_builder_set_member_name (b, "online");
          json_builder_add_boolean_value (b, online (p->id, data));
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "revoked");
  json_builder_begin_array (b);
  for (guint i = 0; i < revoked->len; i++)
    {
      const AccessRevoked *r = revoked->pdata[i];

      json_builder_begin_object (b);
      add_string (b, "id", r->id);
      add_int (b, "when", r->when);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);

  json_builder_set_member_name (b, "seen");
  json_builder_begin_array (b);
  for (guint i = 0; i < seen->len; i++)
    {
      const AccessSeen *s = seen->pdata[i];

      json_builder_begin_object (b);
      add_string (b, "id", s->id);
      add_int (b, "first", s->first);
      add_int (b, "last", s->last);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

void
access_store_add_tokens (const AccessStore *store, JsonBuilder *b, gboolean hashes)
{
  json_builder_set_member_name (b, "tokens");
  json_builder_begin_array (b);
  for (guint i = 0; i < store->tokens->len; i++)
    {
      const AccessToken *t = store->tokens->pdata[i];

      json_builder_begin_object (b);
      if (hashes)
        {
          char hex[2 * ACCESS_HASH_LEN + 1];

          hex_encode (t->hash, ACCESS_HASH_LEN, hex);
          add_string (b, "sha256", hex);
        }
      else
        add_string (b, "id", t->id);
      json_builder_set_member_name (b, "reusable");
      json_builder_add_boolean_value (b, t->reusable);
      add_int (b, "created", t->created);
      add_int (b, "expires", t->expires);
      add_int (b, "uses", t->uses);
      add_string (b, "note", t->note);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
}

char *
access_json_finish (JsonBuilder *b, gboolean pretty, gsize *len)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_pretty (gen, pretty);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, len);
}

char *
access_store_to_json (const AccessStore *store, gsize *len)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  add_int (b, "version", ACCESS_FILE_VERSION);
  access_store_add_lists (store, b, NULL, NULL);
  access_store_add_tokens (store, b, TRUE);
  return access_json_finish (b, TRUE, len);
}

/* Strict readers: a member that is absent takes @fallback only where the
 * caller allows it (@required FALSE). */
static gboolean
read_int (JsonObject *o, const char *name, gboolean required, gint64 min, gint64 max,
          gint64 *out)
{
  JsonNode *n = json_object_get_member (o, name);

  if (n == NULL)
    {
      *out = 0;
      return !required;
    }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (n);
  return *out >= min && *out <= max;
}

static gboolean
read_string (JsonObject *o, const char *name, gboolean required, const char **out)
{
  JsonNode *n = json_object_get_member (o, name);

  *out = NULL;
  if (n == NULL)
    return !required;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return FALSE;
  *out = json_node_get_string (n);
  return TRUE;
}

static gboolean
read_peer_id (JsonObject *o, const char *name, const char **out)
{
  return read_string (o, name, TRUE, out) && peerid_is_valid (*out);
}

static gboolean
read_policy (JsonObject *o, AccessPolicy *policy)
{
  gint64 alloc, bps;

  if (!read_int (o, "max_allocations", FALSE, 1, ACCESS_MAX_ALLOCATIONS, &alloc)
      || !read_int (o, "max_bps", FALSE, 1, (gint64) ACCESS_MAX_BPS, &bps))
    return FALSE;
  policy->max_allocations = (guint) alloc;
  policy->max_bps = (guint64) bps;
  return TRUE;
}

/* The objects of array member @name, at most @max. */
static JsonArray *
read_array (JsonObject *root, const char *name, guint max)
{
  JsonNode *n = json_object_get_member (root, name);
  JsonArray *a;

  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n))
    return NULL;
  a = json_node_get_array (n);
  if (json_array_get_length (a) > max)
    return NULL;
  for (guint i = 0; i < json_array_get_length (a); i++)
    if (!JSON_NODE_HOLDS_OBJECT (json_array_get_element (a, i)))
      return NULL;
  return a;
}

static gboolean
load_peers (AccessStore *store, JsonArray *a)
{
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonObject *o = json_array_get_object_element (a, i);
      const char *id, *via, *note;
      gint64 enrolled, last_seen;
      AccessPolicy policy;
      AccessPeer *p;

      if (!read_peer_id (o, "id", &id) || !read_string (o, "via", TRUE, &via)
          || !note_is_valid (via) || !read_string (o, "note", FALSE, &note)
          || !note_is_valid (note) || !read_int (o, "enrolled", TRUE, 0, G_MAXINT64, &enrolled)
          || !read_int (o, "last_seen", FALSE, 0, G_MAXINT64, &last_seen)
          || !read_policy (o, &policy) || g_hash_table_contains (store->peers, id))
        return FALSE;
      p = peer_add (store, id, via, note, enrolled);
      p->last_seen = last_seen;
      p->policy = policy;
    }
  return TRUE;
}

static gboolean
load_revoked (AccessStore *store, JsonArray *a)
{
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonObject *o = json_array_get_object_element (a, i);
      const char *id;
      gint64 when;
      AccessRevoked *r;

      if (!read_peer_id (o, "id", &id) || !read_int (o, "when", TRUE, 0, G_MAXINT64, &when)
          || g_hash_table_contains (store->revoked, id)
          || g_hash_table_contains (store->peers, id))
        return FALSE;
      r = g_new0 (AccessRevoked, 1);
      g_strlcpy (r->id, id, sizeof r->id);
      r->when = when;
      g_hash_table_replace (store->revoked, r->id, r);
    }
  return TRUE;
}

static gboolean
hex_decode (const char *text, guint8 *out, gsize len)
{
  if (strlen (text) != 2 * len)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      int hi = g_ascii_xdigit_value (text[2 * i]), lo = g_ascii_xdigit_value (text[2 * i + 1]);

      if (hi < 0 || lo < 0 || g_ascii_isupper (text[2 * i]) || g_ascii_isupper (text[2 * i + 1]))
        return FALSE;
      out[i] = (guint8) (hi << 4 | lo);
    }
  return TRUE;
}

static gboolean
load_tokens (AccessStore *store, JsonArray *a)
{
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonObject *o = json_array_get_object_element (a, i);
      JsonNode *reusable = json_object_get_member (o, "reusable");
      const char *hex, *note;
      gint64 created, expires, uses;
      AccessToken *t;

      if (!read_string (o, "sha256", TRUE, &hex) || reusable == NULL
          || !JSON_NODE_HOLDS_VALUE (reusable)
          || json_node_get_value_type (reusable) != G_TYPE_BOOLEAN
          || !read_int (o, "created", TRUE, 0, G_MAXINT64, &created)
          || !read_int (o, "expires", TRUE, 0, G_MAXINT64, &expires)
          || !read_int (o, "uses", TRUE, 0, G_MAXUINT, &uses)
          || !read_string (o, "note", FALSE, &note) || !note_is_valid (note))
        return FALSE;
      t = g_new0 (AccessToken, 1);
      g_ptr_array_add (store->tokens, t);
      if (!hex_decode (hex, t->hash, ACCESS_HASH_LEN))
        return FALSE;
      hex_encode (t->hash, ACCESS_TOKEN_ID_LEN / 2, t->id);
      t->reusable = json_node_get_boolean (reusable);
      t->created = created;
      t->expires = expires;
      t->uses = (guint) uses;
      t->note = g_strdup (note);
      for (guint j = 0; j + 1 < store->tokens->len; j++)
        if (memcmp (((AccessToken *) store->tokens->pdata[j])->hash, t->hash, ACCESS_HASH_LEN)
            == 0)
          return FALSE;
    }
  return TRUE;
}

static gboolean
load_seen (AccessStore *store, JsonArray *a)
{
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      JsonObject *o = json_array_get_object_element (a, i);
      const char *id;
      gint64 first, last;
      AccessSeen *s;

      if (!read_peer_id (o, "id", &id) || !read_int (o, "first", TRUE, 0, G_MAXINT64, &first)
          || !read_int (o, "last", TRUE, first, G_MAXINT64, &last)
          || g_hash_table_contains (store->seen, id)
          || g_hash_table_contains (store->peers, id)
          || g_hash_table_contains (store->revoked, id))
        return FALSE;
      s = g_new0 (AccessSeen, 1);
      g_strlcpy (s->id, id, sizeof s->id);
      s->first = first;
      s->last = last;
      g_hash_table_replace (store->seen, s->id, s);
    }
  return TRUE;
}

AccessStore *
access_store_from_json (const char *data, gsize len, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (AccessStore) store = access_store_new ();
  JsonArray *peers, *revoked, *tokens, *seen;
  JsonObject *root, *policy;
  JsonNode *policy_node;
  gint64 version;

  if (len > ACCESS_FILE_MAX || !g_utf8_validate (data, (gssize) len, NULL)
      || !jsonstrict_check (data, len) || !json_parser_load_from_data (parser, data, (gssize) len, NULL)
      || json_parser_get_root (parser) == NULL
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    goto bad;
  root = json_node_get_object (json_parser_get_root (parser));
  if (!read_int (root, "version", TRUE, ACCESS_FILE_VERSION, ACCESS_FILE_VERSION, &version))
    goto bad;
  policy_node = json_object_get_member (root, "default_policy");
  if (policy_node == NULL || !JSON_NODE_HOLDS_OBJECT (policy_node))
    goto bad;
  policy = json_node_get_object (policy_node);
  if (!read_policy (policy, &store->default_policy))
    goto bad;
  peers = read_array (root, "peers", ACCESS_MAX_PEERS);
  revoked = read_array (root, "revoked", ACCESS_MAX_REVOKED);
  tokens = read_array (root, "tokens", ACCESS_MAX_TOKENS);
  seen = read_array (root, "seen", ACCESS_MAX_SEEN);
  if (peers == NULL || revoked == NULL || tokens == NULL || seen == NULL
      || !load_peers (store, peers) || !load_revoked (store, revoked)
      || !load_tokens (store, tokens) || !load_seen (store, seen))
    goto bad;
  return g_steal_pointer (&store);

bad:
  g_set_error (error, ACCESS_ERROR, ACCESS_ERROR_BAD_FILE,
               "not a valid access file of version %d", ACCESS_FILE_VERSION);
  return NULL;
}

gboolean
access_enroll_body_parse (const char *data, gsize len, guint8 raw[static ACCESS_TOKEN_RAW_LEN])
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  JsonObject *root;
  const char *token;

  if (data == NULL || len > ACCESS_ENROLL_BODY_MAX || !g_utf8_validate (data, (gssize) len, NULL)
      || !jsonstrict_check (data, len) || !json_parser_load_from_data (parser, data, (gssize) len, NULL)
      || json_parser_get_root (parser) == NULL
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return FALSE;
  root = json_node_get_object (json_parser_get_root (parser));
  if (json_object_get_size (root) != 1 || !read_string (root, "token", TRUE, &token))
    return FALSE;
  return access_token_parse (token, strlen (token), raw);
}
