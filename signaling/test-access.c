/* Unit tests of who may use the signaling server (signaling/access.c) and
 * the operator's requests (signaling/admin.c). */
#include <string.h>

#include <json-glib/json-glib.h>

#include "access.h"
#include "admin.h"

#define PEER_A "v7hgw73wxjh5x4e2yhbzmzbd3ozvxabnxzgkcsusztm34ucax2ma"
#define PEER_B "ohmqcatfvr3zdy6jz5fkcuyrhh5apluyek3i2gecmnutodhjcm2q"
#define NOW 1800000000

static char *
new_token (AccessStore *s, gboolean reusable, gint64 expires, guint8 raw[ACCESS_TOKEN_RAW_LEN])
{
  char id[ACCESS_TOKEN_ID_SIZE];
  g_autoptr (GError) error = NULL;
  char *text = access_store_add_token (s, reusable, expires, "laptop", NOW, id, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (strlen (text), ==, ACCESS_TOKEN_LEN);
  g_assert_true (g_str_has_prefix (text, ACCESS_TOKEN_PREFIX));
  g_assert_true (access_token_parse (text, strlen (text), raw));
  return text;
}

static void
test_token_shape (void)
{
  guint8 raw[ACCESS_TOKEN_RAW_LEN];
  g_autoptr (AccessStore) s = access_store_new ();
  g_autofree char *a = new_token (s, FALSE, 0, raw);
  g_autofree char *b = NULL;
  char bad[ACCESS_TOKEN_LEN + 1];

  b = new_token (s, FALSE, 0, raw);
  g_assert_cmpstr (a, !=, b);
  /* Each way of being malformed. */
  g_assert_false (access_token_parse (a, strlen (a) - 1, raw));
  g_assert_false (access_token_parse ("", 0, raw));
  memcpy (bad, a, sizeof bad);
  bad[0] = 'P';
  g_assert_false (access_token_parse (bad, ACCESS_TOKEN_LEN, raw));
  memcpy (bad, a, sizeof bad);
  bad[ACCESS_TOKEN_LEN - 1] = '1';
  g_assert_false (access_token_parse (bad, ACCESS_TOKEN_LEN, raw));
  memcpy (bad, a, sizeof bad);
  bad[20] = 'A';
  g_assert_false (access_token_parse (bad, ACCESS_TOKEN_LEN, raw));
}

static void
test_one_time (void)
{
  guint8 raw[ACCESS_TOKEN_RAW_LEN], wrong[ACCESS_TOKEN_RAW_LEN] = { 0 };
  g_autoptr (AccessStore) s = access_store_new ();
  g_autoptr (GPtrArray) peers = NULL;

  g_free (new_token (s, FALSE, NOW + 60, raw));
  g_assert_cmpint (access_store_check (s, PEER_A), ==, ACCESS_NOT_ENROLLED);
  g_assert_cmpint (access_store_redeem (s, wrong, PEER_A, NOW), ==, ACCESS_REDEEM_BAD_TOKEN);
  g_assert_cmpint (access_store_redeem (s, raw, PEER_A, NOW), ==, ACCESS_REDEEM_ENROLLED);
  g_assert_cmpint (access_store_check (s, PEER_A), ==, ACCESS_ADMITTED);
  /* Used up: another peer cannot, and the enrolled one is told "already" only
   * while a token is good (here: none is). */
  g_assert_cmpint (access_store_redeem (s, raw, PEER_B, NOW), ==, ACCESS_REDEEM_BAD_TOKEN);
  g_assert_cmpint (access_store_redeem (s, raw, PEER_A, NOW), ==, ACCESS_REDEEM_BAD_TOKEN);
  peers = access_store_peers (s);
  g_assert_cmpuint (peers->len, ==, 1);
  g_assert_cmpstr (((AccessPeer *) peers->pdata[0])->note, ==, "laptop");
  g_assert_true (g_str_has_prefix (((AccessPeer *) peers->pdata[0])->via, "token "));
}

static void
test_reusable_and_expiry (void)
{
  guint8 raw[ACCESS_TOKEN_RAW_LEN];
  g_autoptr (AccessStore) s = access_store_new ();
  g_autoptr (GPtrArray) tokens = NULL;

  g_free (new_token (s, TRUE, NOW + 60, raw));
  g_assert_cmpint (access_store_redeem (s, raw, PEER_A, NOW), ==, ACCESS_REDEEM_ENROLLED);
  g_assert_cmpint (access_store_redeem (s, raw, PEER_A, NOW), ==, ACCESS_REDEEM_ALREADY);
  g_assert_cmpint (access_store_redeem (s, raw, PEER_B, NOW + 59), ==, ACCESS_REDEEM_ENROLLED);
  tokens = access_store_tokens (s);
  g_assert_cmpuint (((AccessToken *) tokens->pdata[0])->uses, ==, 2);
  g_assert_cmpint (access_store_revoke (s, PEER_B, NOW, NULL), ==, TRUE);
  /* A revoked peer is told so, whatever its token; the operator can admit
   * it again. */
  g_assert_cmpint (access_store_redeem (s, raw, PEER_B, NOW + 60), ==, ACCESS_REDEEM_REVOKED);
  g_assert_cmpint (access_store_enroll (s, PEER_B, "operator", NULL, NOW, NULL), ==, TRUE);
  g_assert_cmpint (access_store_check (s, PEER_B), ==, ACCESS_ADMITTED);
  /* Expired at its second, and then pruned. */
  g_assert_cmpint (access_store_redeem (s, raw, PEER_B, NOW + 60), ==, ACCESS_REDEEM_BAD_TOKEN);
  g_assert_cmpuint (access_store_prune (s, NOW + 59), ==, 0);
  g_assert_cmpuint (access_store_prune (s, NOW + 60), ==, 1);
}

static void
test_expired_token (void)
{
  guint8 raw[ACCESS_TOKEN_RAW_LEN];
  g_autoptr (AccessStore) s = access_store_new ();
  g_autoptr (GError) error = NULL;
  char id[ACCESS_TOKEN_ID_SIZE];

  g_free (new_token (s, FALSE, NOW + 60, raw));
  g_assert_cmpint (access_store_redeem (s, raw, PEER_A, NOW + 60), ==, ACCESS_REDEEM_BAD_TOKEN);
  /* An expiry in the past is refused when made. */
  g_assert_null (access_store_add_token (s, FALSE, NOW, NULL, NOW, id, &error));
  g_assert_error (error, ACCESS_ERROR, ACCESS_ERROR_INVALID);
}

static void
test_cancel (void)
{
  guint8 raw[ACCESS_TOKEN_RAW_LEN];
  g_autoptr (AccessStore) s = access_store_new ();
  g_autoptr (GPtrArray) tokens = NULL;
  char id[ACCESS_TOKEN_ID_SIZE];
  g_autoptr (GError) error = NULL;

  g_free (new_token (s, FALSE, 0, raw));
  tokens = access_store_tokens (s);
  memcpy (id, ((AccessToken *) tokens->pdata[0])->id, sizeof id);
  g_assert_true (access_store_cancel_token (s, id, NULL));
  g_assert_false (access_store_cancel_token (s, id, &error));
  g_assert_error (error, ACCESS_ERROR, ACCESS_ERROR_UNKNOWN);
  g_assert_cmpint (access_store_redeem (s, raw, PEER_A, NOW), ==, ACCESS_REDEEM_BAD_TOKEN);
}

static void
test_revoked_and_seen (void)
{
  g_autoptr (AccessStore) s = access_store_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) seen = NULL;

  /* Unknown peer-ids cannot be revoked; seen ones can. */
  g_assert_false (access_store_revoke (s, PEER_A, NOW, &error));
  g_assert_error (error, ACCESS_ERROR, ACCESS_ERROR_UNKNOWN);
  g_assert_true (access_store_saw (s, PEER_A, NOW));
  g_assert_false (access_store_saw (s, PEER_A, NOW + 1));
  g_assert_true (access_store_saw (s, PEER_B, NOW + 2));
  seen = access_store_seen (s);
  g_assert_cmpuint (seen->len, ==, 2);
  g_assert_true (access_store_revoke (s, PEER_B, NOW, NULL));
  g_assert_cmpint (access_store_check (s, PEER_B), ==, ACCESS_REVOKED);
  /* enroll --seen takes the seen ones, not the revoked. */
  g_assert_cmpuint (access_store_enroll_seen (s, NOW), ==, 1);
  g_assert_cmpint (access_store_check (s, PEER_A), ==, ACCESS_ADMITTED);
  g_assert_cmpint (access_store_check (s, PEER_B), ==, ACCESS_REVOKED);
  g_assert_false (access_store_enroll (s, "nope", "operator", NULL, NOW, NULL));
}

static void
test_seen_bounded (void)
{
  g_autoptr (AccessStore) s = access_store_new ();
  g_autoptr (GPtrArray) seen = NULL;
  guint8 hash[32] = { 0 };
  char first[PEERID_SIZE];

  for (guint i = 0; i < ACCESS_MAX_SEEN + 10; i++)
    {
      char id[PEERID_SIZE];

      hash[0] = (guint8) i;
      hash[1] = (guint8) (i >> 8);
      peerid_base32_encode (hash, sizeof hash, id, sizeof id);
      if (i == 0)
        memcpy (first, id, sizeof first);
      access_store_saw (s, id, NOW + i);
    }
  seen = access_store_seen (s);
  g_assert_cmpuint (seen->len, ==, ACCESS_MAX_SEEN);
  for (guint i = 0; i < seen->len; i++)
    g_assert_cmpstr (((AccessSeen *) seen->pdata[i])->id, !=, first);
}

static void
test_policy (void)
{
  g_autoptr (AccessStore) s = access_store_new ();
  AccessPolicy def = { 4, 0 }, own = { 0, 1000000 }, got;
  AccessPolicy too_big = { ACCESS_MAX_ALLOCATIONS + 1, 0 };

  g_assert_false (access_store_set_policy (s, PEER_A, &own, NULL)); /* not enrolled */
  g_assert_true (access_store_enroll (s, PEER_A, "operator", NULL, NOW, NULL));
  g_assert_true (access_store_set_policy (s, NULL, &def, NULL));
  g_assert_true (access_store_set_policy (s, PEER_A, &own, NULL));
  g_assert_false (access_store_set_policy (s, PEER_A, &too_big, NULL));
  got = access_store_policy_for (s, PEER_A);
  g_assert_cmpuint (got.max_allocations, ==, 4);
  g_assert_cmpuint (got.max_bps, ==, 1000000);
  got = access_store_policy_for (s, PEER_B);
  g_assert_cmpuint (got.max_allocations, ==, 4);
  g_assert_cmpuint (got.max_bps, ==, 0);
}

static void
test_json_round_trip (void)
{
  guint8 raw[ACCESS_TOKEN_RAW_LEN];
  g_autoptr (AccessStore) s = access_store_new ();
  g_autoptr (AccessStore) back = NULL;
  g_autofree char *text = new_token (s, FALSE, NOW + 3600, raw);
  g_autofree char *json = NULL, *json2 = NULL;
  g_autoptr (GError) error = NULL;
  AccessPolicy policy = { 7, 5000 };
  gsize len = 0, len2 = 0;

  g_assert_true (access_store_enroll (s, PEER_A, "operator", "nas \"home\"", NOW, NULL));
  g_assert_true (access_store_set_policy (s, PEER_A, &policy, NULL));
  g_assert_true (access_store_set_policy (s, NULL, &policy, NULL));
  g_assert_true (access_store_saw (s, PEER_B, NOW));
  json = access_store_to_json (s, &len);
  g_assert_null (strstr (json, text)); /* only the hash is kept */
  back = access_store_from_json (json, len, &error);
  g_assert_no_error (error);
  json2 = access_store_to_json (back, &len2);
  g_assert_cmpstr (json, ==, json2);
  /* The token still works after the reload. */
  g_assert_cmpint (access_store_redeem (back, raw, PEER_B, NOW), ==, ACCESS_REDEEM_ENROLLED);
}

static void
test_json_refused (void)
{
  static const char *const bad[] = {
    "",
    "[]",
    "{}",
    "{\"version\":2,\"default_policy\":{},\"peers\":[],\"revoked\":[],\"tokens\":[],\"seen\":[]}",
    "{\"version\":1,\"default_policy\":{},\"peers\":[{\"id\":\"x\",\"via\":\"operator\","
    "\"enrolled\":1}],\"revoked\":[],\"tokens\":[],\"seen\":[]}",
    /* duplicates */
    "{\"version\":1,\"default_policy\":{},\"peers\":[{\"id\":\"" PEER_A "\",\"via\":\"o\","
    "\"enrolled\":1},{\"id\":\"" PEER_A "\",\"via\":\"o\",\"enrolled\":1}],\"revoked\":[],"
    "\"tokens\":[],\"seen\":[]}",
    /* enrolled and revoked at once */
    "{\"version\":1,\"default_policy\":{},\"peers\":[{\"id\":\"" PEER_A "\",\"via\":\"o\","
    "\"enrolled\":1}],\"revoked\":[{\"id\":\"" PEER_A "\",\"when\":1}],\"tokens\":[],"
    "\"seen\":[]}",
    /* a short hash, a policy out of range, a negative time */
    "{\"version\":1,\"default_policy\":{},\"peers\":[],\"revoked\":[],\"tokens\":[{\"sha256\":"
    "\"00\",\"reusable\":false,\"created\":1,\"expires\":0,\"uses\":0}],\"seen\":[]}",
    "{\"version\":1,\"default_policy\":{\"max_allocations\":0},\"peers\":[],\"revoked\":[],"
    "\"tokens\":[],\"seen\":[]}",
    "{\"version\":1,\"default_policy\":{},\"peers\":[],\"revoked\":[{\"id\":\"" PEER_A "\","
    "\"when\":-1}],\"tokens\":[],\"seen\":[]}",
    "{\"version\":1,\"default_policy\":{},\"peers\":[],\"revoked\":[],\"tokens\":[],"
    "\"seen\":[], /* comment */ \"x\":1}",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (AccessStore) s = access_store_from_json (bad[i], strlen (bad[i]), &error);

      g_assert_null (s);
      g_assert_error (error, ACCESS_ERROR, ACCESS_ERROR_BAD_FILE);
    }
}

static void
test_enroll_body (void)
{
  guint8 raw[ACCESS_TOKEN_RAW_LEN];
  g_autoptr (AccessStore) s = access_store_new ();
  g_autofree char *text = new_token (s, FALSE, 0, raw);
  g_autofree char *good = g_strdup_printf ("{\"token\":\"%s\"}", text);
  g_autofree char *extra = g_strdup_printf ("{\"token\":\"%s\",\"x\":1}", text);
  guint8 got[ACCESS_TOKEN_RAW_LEN];

  g_assert_true (access_enroll_body_parse (good, strlen (good), got));
  g_assert_cmpmem (got, sizeof got, raw, sizeof raw);
  g_assert_false (access_enroll_body_parse (extra, strlen (extra), got));
  g_assert_false (access_enroll_body_parse ("{\"token\":1}", 11, got));
  g_assert_false (access_enroll_body_parse ("null", 4, got));
  g_assert_false (access_enroll_body_parse (good, strlen (good) - 1, got));
}

static JsonObject *
admin (AccessStore *s, const char *request, gboolean *changed, JsonParser *parser)
{
  gsize len = 0;
  g_autofree char *reply = admin_run (s, request, strlen (request), NOW, NULL, changed, &len);

  g_assert_true (json_parser_load_from_data (parser, reply, (gssize) len, NULL));
  return json_node_get_object (json_parser_get_root (parser));
}

static void
test_admin (void)
{
  g_autoptr (AccessStore) s = access_store_new ();
  g_autoptr (JsonParser) p = json_parser_new ();
  gboolean changed;
  JsonObject *r;

  r = admin (s, "{\"op\":\"token\",\"reusable\":true,\"expires\":0,\"note\":\"n\"}", &changed, p);
  g_assert_true (json_object_get_boolean_member (r, "ok"));
  g_assert_true (changed);
  g_assert_true (g_str_has_prefix (json_object_get_string_member (r, "token"), "p2ptun1-"));
  r = admin (s, "{\"op\":\"tokens\"}", &changed, p);
  g_assert_false (changed);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (r, "tokens")), ==, 1);
  {
    g_autofree char *listing = json_to_string (json_parser_get_root (p), FALSE);

    g_assert_null (strstr (listing, "p2ptun1-")); /* never the token itself */
  }
  r = admin (s, "{\"op\":\"enroll\",\"peer\":\"" PEER_A "\"}", &changed, p);
  g_assert_true (json_object_get_boolean_member (r, "ok"));
  r = admin (s, "{\"op\":\"revoke\",\"peer\":\"" PEER_B "\"}", &changed, p);
  g_assert_false (json_object_get_boolean_member (r, "ok"));
  g_assert_false (changed);
  r = admin (s, "{\"op\":\"policy\",\"max_allocations\":3}", &changed, p);
  g_assert_true (json_object_get_boolean_member (r, "ok"));
  r = admin (s, "{\"op\":\"peers\"}", &changed, p);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (r, "peers")), ==, 1);
  r = admin (s, "{\"op\":\"fly\"}", &changed, p);
  g_assert_false (json_object_get_boolean_member (r, "ok"));
  r = admin (s, "{\"op\":\"token\",\"reusable\":\"yes\"}", &changed, p);
  g_assert_false (json_object_get_boolean_member (r, "ok"));
  r = admin (s, "not json", &changed, p);
  g_assert_false (json_object_get_boolean_member (r, "ok"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/access/token-shape", test_token_shape);
  g_test_add_func ("/access/one-time", test_one_time);
  g_test_add_func ("/access/reusable-and-expiry", test_reusable_and_expiry);
  g_test_add_func ("/access/expired-token", test_expired_token);
  g_test_add_func ("/access/cancel", test_cancel);
  g_test_add_func ("/access/revoked-and-seen", test_revoked_and_seen);
  g_test_add_func ("/access/seen-bounded", test_seen_bounded);
  g_test_add_func ("/access/policy", test_policy);
  g_test_add_func ("/access/json-round-trip", test_json_round_trip);
  g_test_add_func ("/access/json-refused", test_json_refused);
  g_test_add_func ("/access/enroll-body", test_enroll_body);
  g_test_add_func ("/access/admin", test_admin);
  return g_test_run ();
}
