/* The operator's requests to p2ptun-signal. See admin.h. */
#include "admin.h"

#include <string.h>

#include <json-glib/json-glib.h>
#include <openssl/crypto.h>

#include "jsonstrict.h"

static char *
reply_finish (JsonBuilder *b, gsize *len)
{
  return access_json_finish (b, FALSE, len);
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

static char *
run_peers (const AccessStore *store, const AdminHooks *hooks, gsize *len)
{
  g_autoptr (JsonBuilder) b = reply_begin (TRUE);

  access_store_add_lists (store, b, hooks != NULL ? hooks->is_online : NULL,
                          hooks != NULL ? hooks->data : NULL);
  return reply_finish (b, len);
}

static char *
run_tokens (AccessStore *store, gint64 now, gsize *len)
{
  g_autoptr (JsonBuilder) b = reply_begin (TRUE);

  access_store_prune (store, now);
  access_store_add_tokens (store, b, FALSE);
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
