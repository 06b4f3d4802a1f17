/* The operator's requests to p2ptun-signal. See admin.h. */
#include "admin.h"

#include <string.h>

#include <json-glib/json-glib.h>
#include <openssl/crypto.h>

#include "jsonstrict.h"

static char *
reply_finish (JsonBuilder *b, gsize *len)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, len);
}

static JsonBuilder *
reply_begin (gboolean ok)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "ok");
  json_builder_add_boolean_value (b, ok);
  return b;
}

static char *
reply_error (const char *text, gsize *len)
{
  g_autoptr (JsonBuilder) b = reply_begin (FALSE);

  json_builder_set_member_name (b, "error");
  json_builder_add_string_value (b, text);
  return reply_finish (b, len);
}

static void
add_int (JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

static void
add_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  if (value != NULL)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

/* Optional members; a member of the wrong type makes the request invalid. */
static gboolean
get_string (JsonObject *o, const char *name, const char **out)
{
  JsonNode *n = json_object_get_member (o, name);

  *out = NULL;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return FALSE;
  *out = json_node_get_string (n);
  return TRUE;
}

static gboolean
get_int (JsonObject *o, const char *name, gint64 min, gint64 max, gint64 *out)
{
  JsonNode *n = json_object_get_member (o, name);

  *out = 0;
  if (n == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (n);
  return *out >= min && *out <= max;
}

static gboolean
get_bool (JsonObject *o, const char *name, gboolean *out)
{
  JsonNode *n = json_object_get_member (o, name);

  *out = FALSE;
  if (n == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
    return FALSE;
  *out = json_node_get_boolean (n);
  return TRUE;
}

static void
add_policy (JsonBuilder *b, const AccessPolicy *policy)
{
  add_int (b, "max_allocations", policy->max_allocations);
  add_int (b, "max_bps", (gint64) policy->max_bps);
}

static char *
run_peers (const AccessStore *store, const AdminHooks *hooks, gsize *len)
{
  g_autoptr (JsonBuilder) b = reply_begin (TRUE);
  g_autoptr (GPtrArray) peers = access_store_peers (store);
  g_autoptr (GPtrArray) seen = access_store_seen (store);
  g_autoptr (GPtrArray) revoked = access_store_revoked (store);
  AccessPolicy def = access_store_default_policy (store);

  json_builder_set_member_name (b, "default_policy");
  json_builder_begin_object (b);
  add_policy (b, &def);
  json_builder_end_object (b);
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
      json_builder_set_member_name (b, "online");
      if (hooks != NULL && hooks->is_online != NULL)
        json_builder_add_boolean_value (b, hooks->is_online (p->id, hooks->data));
      else
        json_builder_add_null_value (b);
      add_policy (b, &p->policy);
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
  return reply_finish (b, len);
}

static char *
run_tokens (AccessStore *store, gint64 now, gsize *len)
{
  g_autoptr (JsonBuilder) b = reply_begin (TRUE);
  g_autoptr (GPtrArray) tokens = NULL;

  access_store_prune (store, now);
  tokens = access_store_tokens (store);
  json_builder_set_member_name (b, "tokens");
  json_builder_begin_array (b);
  for (guint i = 0; i < tokens->len; i++)
    {
      const AccessToken *t = tokens->pdata[i];

      json_builder_begin_object (b);
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
  return reply_finish (b, len);
}

static char *
run_token (AccessStore *store, JsonObject *req, gint64 now, gboolean *changed, gsize *len)
{
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (GError) error = NULL;
  char id[ACCESS_TOKEN_ID_SIZE];
  const char *note;
  gboolean reusable;
  gint64 expires;
  char *token;
  char *reply;

  if (!get_bool (req, "reusable", &reusable) || !get_int (req, "expires", 0, G_MAXINT64, &expires)
      || !get_string (req, "note", &note))
    return reply_error ("token takes reusable, expires and note", len);
  token = access_store_add_token (store, reusable, expires, note, now, id, &error);
  if (token == NULL)
    return reply_error (error->message, len);
  *changed = TRUE;
  b = reply_begin (TRUE);
  add_string (b, "token", token);
  add_string (b, "id", id);
  add_int (b, "expires", expires);
  reply = reply_finish (b, len);
  OPENSSL_cleanse (token, strlen (token));
  g_free (token);
  return reply;
}

static char *
run_policy (AccessStore *store, JsonObject *req, gboolean *changed, gsize *len)
{
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (GError) error = NULL;
  AccessPolicy policy;
  const char *peer;
  gint64 alloc, bps;

  if (!get_string (req, "peer", &peer)
      || !get_int (req, "max_allocations", 0, ACCESS_MAX_ALLOCATIONS, &alloc)
      || !get_int (req, "max_bps", 0, (gint64) ACCESS_MAX_BPS, &bps))
    return reply_error ("policy takes peer, max_allocations and max_bps", len);
  policy.max_allocations = (guint) alloc;
  policy.max_bps = (guint64) bps;
  if (!access_store_set_policy (store, peer, &policy, &error))
    return reply_error (error->message, len);
  *changed = TRUE;
  b = reply_begin (TRUE);
  return reply_finish (b, len);
}

char *
admin_run (AccessStore *store, const char *request, gsize len, gint64 now,
           const AdminHooks *hooks, gboolean *changed, gsize *reply_len)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) error = NULL;
  JsonObject *req;
  const char *op, *peer, *note, *id;

  *changed = FALSE;
  if (request == NULL || len > ADMIN_REQUEST_MAX
      || !g_utf8_validate (request, (gssize) len, NULL) || !jsonstrict_check (request, len)
      || !json_parser_load_from_data (parser, request, (gssize) len, NULL)
      || json_parser_get_root (parser) == NULL
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return reply_error ("the request is not a JSON object", reply_len);
  req = json_node_get_object (json_parser_get_root (parser));
  if (!get_string (req, "op", &op) || op == NULL || !get_string (req, "peer", &peer)
      || !get_string (req, "note", &note) || !get_string (req, "id", &id))
    return reply_error ("the request names no op", reply_len);

  if (strcmp (op, "peers") == 0)
    return run_peers (store, hooks, reply_len);
  if (strcmp (op, "tokens") == 0)
    return run_tokens (store, now, reply_len);
  if (strcmp (op, "token") == 0)
    return run_token (store, req, now, changed, reply_len);
  if (strcmp (op, "policy") == 0)
    return run_policy (store, req, changed, reply_len);
  if (strcmp (op, "enroll-seen") == 0)
    {
      g_autoptr (JsonBuilder) b = reply_begin (TRUE);
      guint n = access_store_enroll_seen (store, now);

      *changed = n > 0;
      add_int (b, "count", n);
      return reply_finish (b, reply_len);
    }
  if (strcmp (op, "enroll") == 0)
    {
      if (!access_store_enroll (store, peer, "operator", note, now, &error))
        return reply_error (error->message, reply_len);
    }
  else if (strcmp (op, "revoke") == 0)
    {
      if (!access_store_revoke (store, peer, now, &error))
        return reply_error (error->message, reply_len);
      if (hooks != NULL && hooks->revoked != NULL)
        hooks->revoked (peer, hooks->data);
    }
  else if (strcmp (op, "cancel") == 0)
    {
      if (id == NULL || !access_store_cancel_token (store, id, &error))
        return reply_error (error != NULL ? error->message : "cancel takes id", reply_len);
    }
  else
    return reply_error ("unknown op", reply_len);
  *changed = TRUE;
  {
    g_autoptr (JsonBuilder) b = reply_begin (TRUE);
    return reply_finish (b, reply_len);
  }
}
