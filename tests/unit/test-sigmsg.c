/* Unit tests for proto/sigmsg.c. */
#include <string.h>

#include <glib.h>

#include "peerid.h"
#include "sigmsg.h"

#define SESSION "0123456789abcdef0123456789abcdef"
#define PEER "v7hgw73wxjh5x4e2yhbzmzbd3ozvxabnxzgkcsusztm34ucax2ma"
#define UFRAG "Ab+/"
#define PWD "abcdefghijklmnopqrstuv"
#define CAND "candidate:1 1 UDP 2130706431 192.0.2.1 54321 typ host"

static Sigmsg *
parse_ok (const char *json, gboolean allow_from)
{
  g_autoptr (GError) error = NULL;
  Sigmsg *msg = sigmsg_parse (json, strlen (json), allow_from, &error);
  g_assert_no_error (error);
  g_assert_nonnull (msg);
  return msg;
}

static void
parse_fails (const char *json, gboolean allow_from, SigmsgError code)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *escaped = g_strescape (json, NULL);
  g_test_message ("expect failure: %s", escaped);
  Sigmsg *msg = sigmsg_parse (json, strlen (json), allow_from, &error);
  g_assert_null (msg);
  g_assert_error (error, SIGMSG_ERROR, (gint)code);
}

static void
test_parse_valid (void)
{
  g_autoptr (Sigmsg) offer
      = parse_ok ("{\"v\":1,\"type\":\"offer\",\"session\":\"" SESSION
                  "\",\"ufrag\":\"" UFRAG "\",\"pwd\":\"" PWD "\"}",
                  FALSE);
  g_assert_cmpint (offer->type, ==, SIGMSG_OFFER);
  g_assert_cmpstr (offer->session, ==, SESSION);
  g_assert_cmpstr (offer->from, ==, "");
  g_assert_cmpstr (offer->ufrag, ==, UFRAG);
  g_assert_cmpstr (offer->pwd, ==, PWD);
  g_assert_null (offer->candidate);

  g_autoptr (Sigmsg) answer = parse_ok (
      " {\n \"pwd\" : \"" PWD "\", \"ufrag\":\"" UFRAG "\",\"session\":\"" SESSION
      "\",\"type\":\"answer\",\"v\":1,\"from\":\"" PEER "\"}\r\n",
      TRUE);
  g_assert_cmpint (answer->type, ==, SIGMSG_ANSWER);
  g_assert_cmpstr (answer->from, ==, PEER);

  g_autoptr (Sigmsg) cand
      = parse_ok ("{\"v\":1,\"type\":\"candidate\",\"session\":\"" SESSION
                  "\",\"candidate\":\"" CAND "\"}",
                  FALSE);
  g_assert_cmpstr (cand->candidate, ==, CAND);

  g_autoptr (Sigmsg) eoc = parse_ok (
      "{\"v\":1,\"type\":\"end-of-candidates\",\"session\":\"" SESSION "\"}", FALSE);
  g_assert_cmpint (eoc->type, ==, SIGMSG_END_OF_CANDIDATES);

  g_autoptr (Sigmsg) bye
      = parse_ok ("{\"v\":1,\"type\":\"bye\",\"session\":\"" SESSION
                  "\",\"reason\":\"not-trusted\",\"text\":\"go \\\"away\\\"\"}",
                  FALSE);
  g_assert_cmpstr (bye->reason, ==, "not-trusted");
  g_assert_cmpstr (bye->text, ==, "go \"away\"");

  g_autoptr (Sigmsg) restart = parse_ok (
      "{\"v\":1,\"type\":\"restart\",\"session\":\"" SESSION "\",\"generation\":3}", FALSE);
  g_assert_cmpint (restart->type, ==, SIGMSG_RESTART);
  g_assert_cmpuint (restart->generation, ==, 3);

  /* Unknown members, and known members a type does not use, are ignored. */
  g_autoptr (Sigmsg) fwd = parse_ok (
      "{\"v\":1,\"type\":\"end-of-candidates\",\"session\":\"" SESSION
      "\",\"future\":{\"a\":[1,2.5e3,null,true,false,\"\\u00e9\\ud83d\\ude00\"]},"
      "\"ufrag\":7}",
      FALSE);
  g_assert_null (fwd->ufrag);

  /* Escaped characters that decode to allowed ones. */
  g_autoptr (Sigmsg) esc = parse_ok ("{\"v\":1,\"type\":\"bye\",\"session\":\"" SESSION
                                     "\",\"reason\":\"\\u0061\",\"text\":\"a\\/b\\\\c\"}",
                                     FALSE);
  g_assert_cmpstr (esc->reason, ==, "a");
  g_assert_cmpstr (esc->text, ==, "a/b\\c");
}

static void
test_parse_version (void)
{
  parse_fails ("{\"v\":2,\"type\":\"offer\"}", FALSE, SIGMSG_ERROR_VERSION);
  parse_fails ("{\"v\":0,\"type\":\"bye\",\"session\":\"" SESSION "\",\"reason\":\"x\"}",
               FALSE, SIGMSG_ERROR_VERSION);
  parse_fails ("{\"v\":-1}", FALSE, SIGMSG_ERROR_VERSION);
  parse_fails ("{\"type\":\"end-of-candidates\",\"session\":\"" SESSION "\"}", FALSE,
               SIGMSG_ERROR_INVALID);
  parse_fails ("{\"v\":\"1\",\"type\":\"end-of-candidates\",\"session\":\"" SESSION "\"}",
               FALSE, SIGMSG_ERROR_INVALID);
  parse_fails ("{\"v\":1.0,\"type\":\"end-of-candidates\",\"session\":\"" SESSION "\"}",
               FALSE, SIGMSG_ERROR_INVALID);
  parse_fails ("{\"v\":true,\"type\":\"end-of-candidates\",\"session\":\"" SESSION "\"}",
               FALSE, SIGMSG_ERROR_INVALID);
  parse_fails ("{\"v\":null,\"type\":\"end-of-candidates\",\"session\":\"" SESSION "\"}",
               FALSE, SIGMSG_ERROR_INVALID);
}

#define EOC_PREFIX "{\"v\":1,\"type\":\"end-of-candidates\",\"session\":"
#define OFFER(u, p)                                                                      \
  "{\"v\":1,\"type\":\"offer\",\"session\":\"" SESSION "\",\"ufrag\":" u ",\"pwd\":" p "}"
#define CANDIDATE(c)                                                                     \
  "{\"v\":1,\"type\":\"candidate\",\"session\":\"" SESSION "\",\"candidate\":" c "}"
#define BYE(r, t)                                                                        \
  "{\"v\":1,\"type\":\"bye\",\"session\":\"" SESSION "\",\"reason\":" r t "}"

static void
test_parse_invalid_fields (void)
{
  static const char *const bad[] = {
    /* type */
    "{\"v\":1,\"type\":\"Offer\",\"session\":\"" SESSION "\"}",
    "{\"v\":1,\"type\":\"hello\",\"session\":\"" SESSION "\"}",
    "{\"v\":1,\"type\":5,\"session\":\"" SESSION "\"}",
    "{\"v\":1,\"session\":\"" SESSION "\"}",
    /* session */
    EOC_PREFIX "\"0123456789ABCDEF0123456789abcdef\"}",
    EOC_PREFIX "\"0123456789abcdef0123456789abcde\"}",
    EOC_PREFIX "\"0123456789abcdef0123456789abcdef0\"}",
    EOC_PREFIX "\"0123456789abcdef0123456789abcdeg\"}",
    EOC_PREFIX "\"\"}",
    EOC_PREFIX "null}",
    EOC_PREFIX "[\"" SESSION "\"]}",
    "{\"v\":1,\"type\":\"end-of-candidates\"}",
    /* ufrag and pwd: RFC 8445 ice-chars and lengths */
    OFFER ("\"Ab+\"", "\"" PWD "\""),
    OFFER ("\"Ab-d\"", "\"" PWD "\""),
    OFFER ("\"Ab d\"", "\"" PWD "\""),
    OFFER ("\"" UFRAG "\"", "\"abcdefghijklmnopqrstu\""),
    OFFER ("\"" UFRAG "\"", "\"abcdefghijklmnopqrst=v\""),
    OFFER ("\"" UFRAG "\"", "null"),
    OFFER ("1234", "\"" PWD "\""),
    "{\"v\":1,\"type\":\"offer\",\"session\":\"" SESSION "\",\"ufrag\":\"" UFRAG "\"}",
    "{\"v\":1,\"type\":\"answer\",\"session\":\"" SESSION "\",\"pwd\":\"" PWD "\"}",
    /* candidate */
    CANDIDATE ("\"a=candidate:1 1 UDP 1 192.0.2.1 1 typ host\""),
    CANDIDATE ("\"candidate:\""),
    CANDIDATE ("\"Candidate:1\""),
    CANDIDATE ("\"candidate:1\\n\""),
    CANDIDATE ("\"candidate:1\\u00e9\""),
    CANDIDATE ("\"candidate:1\\t\""),
    CANDIDATE ("{}"),
    "{\"v\":1,\"type\":\"candidate\",\"session\":\"" SESSION "\"}",
    /* reason and text */
    BYE ("\"Not-trusted\"", ""),
    BYE ("\"not_trusted\"", ""),
    BYE ("\"\"", ""),
    BYE ("\"not trusted\"", ""),
    BYE ("\"ok\"", ",\"text\":\"line\\nbreak\""),
    BYE ("\"ok\"", ",\"text\":\"caf\\u00e9\""),
    BYE ("\"ok\"", ",\"text\":5"),
    "{\"v\":1,\"type\":\"bye\",\"session\":\"" SESSION "\"}",
    /* from: only with allow_from, here FALSE */
    EOC_PREFIX "\"" SESSION "\",\"from\":\"" PEER "\"}",
    /* duplicates */
    EOC_PREFIX "\"" SESSION "\",\"session\":\"" SESSION "\"}",
    "{\"v\":1,\"v\":1,\"type\":\"end-of-candidates\",\"session\":\"" SESSION "\"}",
    EOC_PREFIX "\"" SESSION "\",\"x\":{\"a\":1,\"a\":2}}",
    EOC_PREFIX "\"" SESSION "\",\"x\":[{\"a\":{},\"a\":{}}]}",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    parse_fails (bad[i], FALSE, SIGMSG_ERROR_INVALID);
}

static void
test_parse_lengths (void)
{
  /* ufrag 4..256, pwd 22..256 (RFC 8445 section 5.3). */
  g_autofree char *u256 = g_strnfill (256, 'u');
  g_autofree char *u257 = g_strnfill (257, 'u');
  g_autofree char *p256 = g_strnfill (256, 'p');
  g_autofree char *p257 = g_strnfill (257, 'p');
  g_autofree char *ok = g_strdup_printf (OFFER ("\"%s\"", "\"%s\""), u256, p256);
  g_autoptr (Sigmsg) msg = parse_ok (ok, FALSE);
  g_assert_cmpuint (strlen (msg->ufrag), ==, 256);
  g_autofree char *bad_u = g_strdup_printf (OFFER ("\"%s\"", "\"%s\""), u257, p256);
  parse_fails (bad_u, FALSE, SIGMSG_ERROR_INVALID);
  g_autofree char *bad_p = g_strdup_printf (OFFER ("\"%s\"", "\"%s\""), u256, p257);
  parse_fails (bad_p, FALSE, SIGMSG_ERROR_INVALID);

  /* candidate <= SIGMSG_CANDIDATE_MAX */
  g_autofree char *tail_ok = g_strnfill (SIGMSG_CANDIDATE_MAX - 10, 'c');
  g_autofree char *tail_bad = g_strnfill (SIGMSG_CANDIDATE_MAX - 9, 'c');
  g_autofree char *c_ok = g_strdup_printf (CANDIDATE ("\"candidate:%s\""), tail_ok);
  g_autoptr (Sigmsg) cmsg = parse_ok (c_ok, FALSE);
  g_assert_cmpuint (strlen (cmsg->candidate), ==, SIGMSG_CANDIDATE_MAX);
  g_autofree char *c_bad = g_strdup_printf (CANDIDATE ("\"candidate:%s\""), tail_bad);
  parse_fails (c_bad, FALSE, SIGMSG_ERROR_INVALID);

  /* reason 1..64, text 0..256 */
  g_autofree char *r64 = g_strnfill (64, 'r');
  g_autofree char *r65 = g_strnfill (65, 'r');
  g_autofree char *t256 = g_strnfill (256, 't');
  g_autofree char *t257 = g_strnfill (257, 't');
  g_autofree char *b_ok = g_strdup_printf (BYE ("\"%s\"", ",\"text\":\"%s\""), r64, t256);
  g_autoptr (Sigmsg) bmsg = parse_ok (b_ok, FALSE);
  g_assert_cmpuint (strlen (bmsg->text), ==, 256);
  g_autofree char *b_r = g_strdup_printf (BYE ("\"%s\"", ""), r65);
  parse_fails (b_r, FALSE, SIGMSG_ERROR_INVALID);
  g_autofree char *b_t = g_strdup_printf (BYE ("\"ok\"", ",\"text\":\"%s\""), t257);
  parse_fails (b_t, FALSE, SIGMSG_ERROR_INVALID);
  g_autoptr (Sigmsg) empty_text = parse_ok (BYE ("\"ok\"", ",\"text\":\"\""), FALSE);
  g_assert_cmpstr (empty_text->text, ==, "");
}

static void
test_parse_from (void)
{
  const char *json = EOC_PREFIX "\"" SESSION "\",\"from\":\"" PEER "\"}";
  g_autoptr (Sigmsg) msg = parse_ok (json, TRUE);
  g_assert_cmpstr (msg->from, ==, PEER);
  parse_fails (json, FALSE, SIGMSG_ERROR_INVALID);

  static const char *const bad[] = {
    EOC_PREFIX "\"" SESSION
               "\",\"from\":\"V7HGW73WXJH5X4E2YHBZMZBD3OZVXABNXZGKCSUSZTM34UCAX2MA\"}",
    EOC_PREFIX "\"" SESSION
               "\",\"from\":\"v7hgw73wxjh5x4e2yhbzmzbd3ozvxabnxzgkcsusztm34ucax2m\"}",
    EOC_PREFIX "\"" SESSION
               "\",\"from\":\"v7hgw73wxjh5x4e2yhbzmzbd3ozvxabnxzgkcsusztm34ucax2mb\"}",
    EOC_PREFIX "\"" SESSION
               "\",\"from\":\"v7hgw73wxjh5x4e2yhbzmzbd3ozvxabnxzgkcsusztm34ucax2maa\"}",
    EOC_PREFIX "\"" SESSION "\",\"from\":\"\"}",
    EOC_PREFIX "\"" SESSION "\",\"from\":null}",
    EOC_PREFIX "\"" SESSION "\",\"from\":\"" PEER "\",\"from\":\"" PEER "\"}",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    parse_fails (bad[i], TRUE, SIGMSG_ERROR_INVALID);
}

/* "generation": optional, 0 when absent, an integer 0..2^32-1, written
 * after "from" and only when not 0 (so that generation 0 is what agents
 * before generations wrote). */
static void
test_generation (void)
{
  g_autoptr (Sigmsg) none = parse_ok (EOC_PREFIX "\"" SESSION "\"}", FALSE);
  g_assert_cmpuint (none->generation, ==, 0);

  g_autoptr (Sigmsg) seven = parse_ok (EOC_PREFIX "\"" SESSION "\",\"generation\":7}", FALSE);
  g_assert_cmpuint (seven->generation, ==, 7);
  g_autoptr (Sigmsg) max
      = parse_ok (EOC_PREFIX "\"" SESSION "\",\"generation\":4294967295}", FALSE);
  g_assert_cmpuint (max->generation, ==, G_MAXUINT32);

  static const char *const bad[] = {
    EOC_PREFIX "\"" SESSION "\",\"generation\":4294967296}",
    EOC_PREFIX "\"" SESSION "\",\"generation\":-1}",
    EOC_PREFIX "\"" SESSION "\",\"generation\":\"1\"}",
    EOC_PREFIX "\"" SESSION "\",\"generation\":1.5}",
    EOC_PREFIX "\"" SESSION "\",\"generation\":null}",
    EOC_PREFIX "\"" SESSION "\",\"generation\":1,\"generation\":1}",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    parse_fails (bad[i], FALSE, SIGMSG_ERROR_INVALID);

  g_autoptr (Sigmsg) m = sigmsg_new (SIGMSG_CANDIDATE, SESSION);
  m->candidate = g_strdup (CAND);
  g_autofree char *zero = sigmsg_to_json (m, NULL);
  g_assert_null (strstr (zero, "generation"));
  m->generation = 3;
  g_autofree char *three = sigmsg_to_json (m, NULL);
  g_assert_cmpstr (three, ==,
                   "{\"v\":1,\"type\":\"candidate\",\"session\":\"" SESSION
                   "\",\"generation\":3,\"candidate\":\"" CAND "\"}");
  g_autoptr (Sigmsg) back = parse_ok (three, FALSE);
  g_assert_cmpuint (back->generation, ==, 3);
}

static void
test_parse_not_json (void)
{
  static const char *const bad[] = {
    "",
    " ",
    "null",
    "[]",
    "\"offer\"",
    "1",
    "{",
    "{\"v\":1",
    "{\"v\":1,}",
    "{\"v\":1} {}",
    "{\"v\":1} x",
    /* json-glib accepts these; RFC 8259 does not */
    "/* c */ " EOC_PREFIX "\"" SESSION "\"}",
    "var x = " EOC_PREFIX "\"" SESSION "\"}",
    "{'v':1,'type':'end-of-candidates','session':'" SESSION "'}",
    "{\"v\":01,\"type\":\"end-of-candidates\",\"session\":\"" SESSION "\"}",
    "{\"v\":+1,\"type\":\"end-of-candidates\",\"session\":\"" SESSION "\"}",
    "{\"v\":1.,\"type\":\"end-of-candidates\",\"session\":\"" SESSION "\"}",
    "{\"v\":1e,\"type\":\"end-of-candidates\",\"session\":\"" SESSION "\"}",
    EOC_PREFIX "\"" SESSION "\",\"x\":tru}",
    EOC_PREFIX "\"" SESSION "\",\"x\":\"\\x41\"}",
    EOC_PREFIX "\"" SESSION "\",\"x\":\"\\u00\"}",
    EOC_PREFIX "\"" SESSION "\",\"x\":\"a\tb\"}",
    /* \u0000 would cut a string short; surrogates must pair */
    EOC_PREFIX "\"" SESSION "\",\"x\":\"a\\u0000b\"}",
    EOC_PREFIX "\"" SESSION "\",\"x\":\"\\ud800\"}",
    EOC_PREFIX "\"" SESSION "\",\"x\":\"\\ud800\\u0041\"}",
    EOC_PREFIX "\"" SESSION "\",\"x\":\"\\udc00\"}",
    /* invalid UTF-8 */
    EOC_PREFIX "\"" SESSION "\",\"x\":\"\xc3\x28\"}",
    EOC_PREFIX "\"" SESSION "\",\"x\":\"\xed\xa0\x80\"}",
    /* nesting deeper than the limit */
    EOC_PREFIX "\"" SESSION "\",\"x\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    parse_fails (bad[i], FALSE, SIGMSG_ERROR_INVALID);

  /* An embedded NUL, within the given length. */
  const char nul[] = EOC_PREFIX "\"" SESSION "\"}\0";
  g_autoptr (GError) error = NULL;
  g_assert_null (sigmsg_parse (nul, sizeof nul - 1, FALSE, &error));
  g_assert_error (error, SIGMSG_ERROR, SIGMSG_ERROR_INVALID);

  /* The length is honoured: a valid prefix, the rest not looked at. */
  const char *prefix = EOC_PREFIX "\"" SESSION "\"}garbage";
  g_autoptr (Sigmsg) msg = sigmsg_parse (prefix, strlen (prefix) - 7, FALSE, NULL);
  g_assert_nonnull (msg);
}

static void
test_parse_deep (void)
{
  /* A megabyte of brackets must not recurse: refused by the size limit for
   * one message, and by the nesting limit for a batch. */
  gsize n = 512 * 1024;
  g_autofree char *deep = g_malloc (2 * n);
  memset (deep, '[', n);
  memset (deep + n, ']', n);
  g_autoptr (GError) error = NULL;
  g_assert_null (sigmsg_parse (deep, 2 * n, FALSE, &error));
  g_assert_error (error, SIGMSG_ERROR, SIGMSG_ERROR_TOO_LARGE);
  g_clear_error (&error);
  g_assert_null (sigmsg_parse_batch (deep, 2 * n, &error));
  g_assert_error (error, SIGMSG_ERROR, SIGMSG_ERROR_INVALID);
}

static void
test_parse_too_large (void)
{
  /* Valid JSON, padded with whitespace past the limit. */
  const char *json = EOC_PREFIX "\"" SESSION "\"}";
  gsize len = strlen (json);
  g_autofree char *big = g_malloc (SIGMSG_MAX_JSON + 1);
  memset (big, ' ', SIGMSG_MAX_JSON + 1);
  memcpy (big, json, len);

  g_autoptr (Sigmsg) fits = sigmsg_parse (big, SIGMSG_MAX_JSON, FALSE, NULL);
  g_assert_nonnull (fits);
  g_autoptr (GError) error = NULL;
  g_assert_null (sigmsg_parse (big, SIGMSG_MAX_JSON + 1, FALSE, &error));
  g_assert_error (error, SIGMSG_ERROR, SIGMSG_ERROR_TOO_LARGE);
  g_clear_error (&error);
  g_assert_null (sigmsg_parse (NULL, G_MAXSIZE, FALSE, &error));
  g_assert_error (error, SIGMSG_ERROR, SIGMSG_ERROR_TOO_LARGE);
}

static void
assert_same (const Sigmsg *a, const Sigmsg *b)
{
  g_assert_cmpint (a->type, ==, b->type);
  g_assert_cmpstr (a->session, ==, b->session);
  g_assert_cmpstr (a->from, ==, b->from);
  g_assert_cmpstr (a->ufrag, ==, b->ufrag);
  g_assert_cmpstr (a->pwd, ==, b->pwd);
  g_assert_cmpstr (a->candidate, ==, b->candidate);
  g_assert_cmpstr (a->reason, ==, b->reason);
  g_assert_cmpstr (a->text, ==, b->text);
}

static GPtrArray *
sample_messages (void)
{
  GPtrArray *msgs = g_ptr_array_new_with_free_func ((GDestroyNotify)sigmsg_free);
  Sigmsg *m;

  m = sigmsg_new (SIGMSG_OFFER, SESSION);
  m->ufrag = g_strdup (UFRAG);
  m->pwd = g_strdup (PWD);
  g_ptr_array_add (msgs, m);
  m = sigmsg_new (SIGMSG_ANSWER, SESSION);
  m->ufrag = g_strdup ("zzzz");
  m->pwd = g_strdup ("+/+/+/+/+/+/+/+/+/+/+/+/");
  g_ptr_array_add (msgs, m);
  m = sigmsg_new (SIGMSG_CANDIDATE, SESSION);
  m->candidate = g_strdup (CAND);
  g_ptr_array_add (msgs, m);
  m = sigmsg_new (SIGMSG_END_OF_CANDIDATES, SESSION);
  g_ptr_array_add (msgs, m);
  m = sigmsg_new (SIGMSG_BYE, SESSION);
  m->reason = g_strdup ("not-trusted");
  g_ptr_array_add (msgs, m);
  m = sigmsg_new (SIGMSG_BYE, SESSION);
  m->reason = g_strdup ("x");
  m->text = g_strdup (" !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~");
  g_ptr_array_add (msgs, m);
  return msgs;
}

static void
test_round_trip (void)
{
  g_autoptr (GPtrArray) msgs = sample_messages ();

  for (guint i = 0; i < msgs->len; i++)
    {
      Sigmsg *m = msgs->pdata[i];
      gsize len = 0;
      g_autofree char *json = sigmsg_to_json (m, &len);
      g_assert_nonnull (json);
      g_assert_cmpuint (len, ==, strlen (json));
      g_assert_null (strstr (json, "\"from\""));
      g_autoptr (Sigmsg) back = parse_ok (json, FALSE);
      assert_same (m, back);

      /* With "from", as the server delivers it. */
      memcpy (m->from, PEER, sizeof m->from);
      g_autofree char *json2 = sigmsg_to_json (m, NULL);
      parse_fails (json2, FALSE, SIGMSG_ERROR_INVALID);
      g_autoptr (Sigmsg) back2 = parse_ok (json2, TRUE);
      assert_same (m, back2);
    }
}

static void
test_to_json_exact (void)
{
  g_autoptr (Sigmsg) m = sigmsg_new (SIGMSG_CANDIDATE, SESSION);
  m->candidate = g_strdup (CAND);
  g_autofree char *json = sigmsg_to_json (m, NULL);
  g_assert_cmpstr (json, ==,
                   "{\"v\":1,\"type\":\"candidate\",\"session\":\"" SESSION
                   "\",\"candidate\":\"" CAND "\"}");
}

static void
test_to_json_invalid (void)
{
  /* Serialising an invalid message is a programming error. */
  g_autoptr (Sigmsg) m = sigmsg_new (SIGMSG_OFFER, SESSION);
  m->ufrag = g_strdup ("bad ufrag");
  m->pwd = g_strdup (PWD);
  g_test_expect_message ("p2ptun-proto", G_LOG_LEVEL_CRITICAL, "*sigmsg_check*");
  g_assert_null (sigmsg_to_json (m, NULL));
  g_test_assert_expected_messages ();

  g_autoptr (Sigmsg) c = sigmsg_new (SIGMSG_CANDIDATE, SESSION);
  g_test_expect_message ("p2ptun-proto", G_LOG_LEVEL_CRITICAL, "*sigmsg_check*");
  g_assert_null (sigmsg_to_json (c, NULL));
  g_test_assert_expected_messages ();

  g_test_expect_message ("p2ptun-proto", G_LOG_LEVEL_CRITICAL, "*session*");
  g_assert_null (sigmsg_new (SIGMSG_OFFER, "ABC"));
  g_test_assert_expected_messages ();
  g_test_expect_message ("p2ptun-proto", G_LOG_LEVEL_CRITICAL, "*type*");
  g_assert_null (sigmsg_new ((SigmsgType)17, SESSION));
  g_test_assert_expected_messages ();
}

static void
test_type_names (void)
{
  g_assert_cmpstr (sigmsg_type_to_string (SIGMSG_OFFER), ==, "offer");
  g_assert_cmpstr (sigmsg_type_to_string (SIGMSG_ANSWER), ==, "answer");
  g_assert_cmpstr (sigmsg_type_to_string (SIGMSG_CANDIDATE), ==, "candidate");
  g_assert_cmpstr (sigmsg_type_to_string (SIGMSG_END_OF_CANDIDATES), ==,
                   "end-of-candidates");
  g_assert_cmpstr (sigmsg_type_to_string (SIGMSG_BYE), ==, "bye");
  g_assert_cmpstr (sigmsg_type_to_string (SIGMSG_RESTART), ==, "restart");
  g_assert_null (sigmsg_type_to_string ((SigmsgType)6));
  g_assert_null (sigmsg_type_to_string ((SigmsgType)-1));
}

static void
test_batch (void)
{
  g_autoptr (GPtrArray) msgs = sample_messages ();
  for (guint i = 0; i < msgs->len; i++)
    memcpy (((Sigmsg *)msgs->pdata[i])->from, PEER, PEERID_SIZE);

  gsize len;
  g_autofree char *json
      = sigmsg_batch_to_json ((Sigmsg *const *)msgs->pdata, msgs->len, &len);
  g_assert_nonnull (json);
  g_assert_cmpuint (len, ==, strlen (json));
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) back = sigmsg_parse_batch (json, len, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (back->len, ==, msgs->len);
  for (guint i = 0; i < msgs->len; i++)
    assert_same (msgs->pdata[i], back->pdata[i]);

  g_autofree char *empty = sigmsg_batch_to_json (NULL, 0, NULL);
  g_assert_cmpstr (empty, ==, "{\"messages\":[]}");
  g_autoptr (GPtrArray) none = sigmsg_parse_batch (empty, strlen (empty), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (none->len, ==, 0);

  /* Unknown top-level members are ignored. */
  const char *extra = "{\"next\":5,\"messages\":[]}";
  g_autoptr (GPtrArray) extra_b = sigmsg_parse_batch (extra, strlen (extra), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (extra_b->len, ==, 0);
}

static void
batch_fails (const char *json, SigmsgError code)
{
  g_autoptr (GError) error = NULL;
  g_test_message ("expect failure: %.200s", json);
  g_assert_null (sigmsg_parse_batch (json, strlen (json), &error));
  g_assert_error (error, SIGMSG_ERROR, (gint)code);
}

#define EOC_FROM                                                                         \
  "{\"v\":1,\"type\":\"end-of-candidates\",\"session\":\"" SESSION "\",\"from\":\"" PEER \
  "\"}"

static void
test_batch_invalid (void)
{
  batch_fails ("{}", SIGMSG_ERROR_INVALID);
  batch_fails ("[]", SIGMSG_ERROR_INVALID);
  batch_fails ("{\"messages\":{}}", SIGMSG_ERROR_INVALID);
  batch_fails ("{\"messages\":null}", SIGMSG_ERROR_INVALID);
  batch_fails ("{\"messages\":[1]}", SIGMSG_ERROR_INVALID);
  batch_fails ("{\"messages\":[],\"messages\":[]}", SIGMSG_ERROR_INVALID);
  /* Every delivered message carries "from". */
  batch_fails ("{\"messages\":[" EOC_FROM ",{\"v\":1,\"type\":\"end-of-candidates\","
               "\"session\":\"" SESSION "\"}]}",
               SIGMSG_ERROR_INVALID);
  batch_fails ("{\"messages\":[{\"v\":2}]}", SIGMSG_ERROR_VERSION);

  /* At most SIGMSG_MAX_BATCH messages. */
  GString *s = g_string_new ("{\"messages\":[");
  for (int i = 0; i < SIGMSG_MAX_BATCH; i++)
    g_string_append (s, i ? "," EOC_FROM : EOC_FROM);
  g_string_append (s, "]}");
  g_autoptr (GPtrArray) full = sigmsg_parse_batch (s->str, s->len, NULL);
  g_assert_nonnull (full);
  g_assert_cmpuint (full->len, ==, SIGMSG_MAX_BATCH);
  g_string_truncate (s, s->len - 2);
  g_string_append (s, "," EOC_FROM "]}");
  batch_fails (s->str, SIGMSG_ERROR_INVALID);
  g_string_free (s, TRUE);

  /* Size limit. */
  g_autofree char *big = g_malloc (SIGMSG_MAX_BATCH_JSON + 1);
  memset (big, ' ', SIGMSG_MAX_BATCH_JSON + 1);
  memcpy (big, "{\"messages\":[]}", 15);
  g_autoptr (GPtrArray) fits = sigmsg_parse_batch (big, SIGMSG_MAX_BATCH_JSON, NULL);
  g_assert_nonnull (fits);
  g_autoptr (GError) error = NULL;
  g_assert_null (sigmsg_parse_batch (big, SIGMSG_MAX_BATCH_JSON + 1, &error));
  g_assert_error (error, SIGMSG_ERROR, SIGMSG_ERROR_TOO_LARGE);
}

static void
test_split_host_port (void)
{
  static const struct
  {
    const char *in, *host;
    guint16 port;
  } good[] = {
    { "stun.example.org:3478", "stun.example.org", 3478 },
    { "localhost:1", "localhost", 1 },
    { "a:65535", "a", 65535 },
    { "192.0.2.1:19302", "192.0.2.1", 19302 },
    { "[2001:db8::1]:443", "2001:db8::1", 443 },
    { "[::1]:5349", "::1", 5349 },
    { "[::ffff:192.0.2.1]:80", "::ffff:192.0.2.1", 80 },
    { "xn--bcher-kva.example:3478", "xn--bcher-kva.example", 3478 },
    { "1st.example:3478", "1st.example", 3478 },
    { "EXAMPLE.com:3478", "EXAMPLE.com", 3478 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autofree char *host = NULL;
      guint16 port = 0;
      g_test_message ("%s", good[i].in);
      g_assert_true (sigmsg_split_host_port (good[i].in, &host, &port));
      g_assert_cmpstr (host, ==, good[i].host);
      g_assert_cmpuint (port, ==, good[i].port);
      g_assert_true (sigmsg_split_host_port (good[i].in, NULL, NULL));
    }

  g_autofree char *label63 = g_strnfill (63, 'l');
  g_autofree char *label64 = g_strnfill (64, 'l');
  g_autofree char *l63 = g_strdup_printf ("%s.example:1", label63);
  g_autofree char *l64 = g_strdup_printf ("%s.example:1", label64);
  g_assert_true (sigmsg_split_host_port (l63, NULL, NULL));
  g_assert_false (sigmsg_split_host_port (l64, NULL, NULL));
  /* 253 characters is the longest name. */
  g_autofree char *label61 = g_strnfill (61, 'z');
  g_autofree char *n253
      = g_strdup_printf ("%s.%s.%s.%s:1", label63, label63, label63, label61);
  g_assert_cmpuint (strlen (n253), ==, 253 + 2);
  g_assert_true (sigmsg_split_host_port (n253, NULL, NULL));
  g_autofree char *n254 = g_strdup_printf ("x%s", n253);
  g_assert_false (sigmsg_split_host_port (n254, NULL, NULL));

  static const char *const bad[] = {
    "",
    ":",
    "host",
    "host:",
    ":3478",
    "host:0",
    "host:65536",
    "host:99999",
    "host:03478",
    "host:+3478",
    "host:-1",
    "host:34 78",
    "host:3478 ",
    " host:3478",
    "host:3478x",
    "host:123456",
    "2001:db8::1:443",
    "[2001:db8::1]",
    "[2001:db8::1]443",
    "[2001:db8::1]:",
    "[]:443",
    "[fe80::1%eth0]:443",
    "[192.0.2.1]:443",
    "[::1:443",
    "-host:1",
    "host-:1",
    "ho_st:1",
    "a..b:1",
    ".a:1",
    "a.:1",
    "a b:1",
    "host\n:1",
    "192.0.2.256:1",
    "192.0.2:1",
    "10.1:1",
    "0x7f.1:1",
    "127.000.000.001:1",
    "1234:1",
    "caf\xc3\xa9.example:1",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      char *host = (char *)"untouched";
      guint16 port = 7;
      g_test_message ("bad: %s", bad[i]);
      g_assert_false (sigmsg_split_host_port (bad[i], &host, &port));
      g_assert_cmpstr (host, ==, "untouched");
      g_assert_cmpuint (port, ==, 7);
    }
  g_assert_false (sigmsg_split_host_port (NULL, NULL, NULL));
}

static void
test_turn_uri_split (void)
{
  static const struct
  {
    const char *uri, *host;
    guint16 port;
    SigmsgTurnTransport transport;
  } good[] = {
    { "turn:relay.example:3478", "relay.example", 3478, SIGMSG_TURN_UDP },
    { "turn:relay.example:3478?transport=udp", "relay.example", 3478, SIGMSG_TURN_UDP },
    { "turn:relay.example:3478?transport=tcp", "relay.example", 3478, SIGMSG_TURN_TCP },
    { "turns:relay.example:443", "relay.example", 443, SIGMSG_TURN_TLS },
    { "turns:[2001:db8::2]:443?transport=tcp", "2001:db8::2", 443, SIGMSG_TURN_TLS },
    { "turn:192.0.2.7:3478", "192.0.2.7", 3478, SIGMSG_TURN_UDP },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autofree char *host = NULL;
      guint16 port = 0;
      SigmsgTurnTransport t = 99;
      g_assert_true (sigmsg_turn_uri_split (good[i].uri, &host, &port, &t));
      g_assert_cmpstr (host, ==, good[i].host);
      g_assert_cmpuint (port, ==, good[i].port);
      g_assert_cmpint (t, ==, good[i].transport);
    }
  static const char *const bad[] = {
    "turn:relay.example",
    "turn:relay.example:3478?transport=sctp",
    "turn:relay.example:3478?transport=UDP",
    "turn:relay.example:3478?",
    "turn:relay.example:3478?transport=udp&x=1",
    "turns:relay.example:443?transport=udp",
    "stun:relay.example:3478",
    "TURN:relay.example:3478",
    "turn://relay.example:3478",
    "turn:user@relay.example:3478",
    "turn:",
    "",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (sigmsg_turn_uri_split (bad[i], NULL, NULL, NULL));
  g_assert_false (sigmsg_turn_uri_split (NULL, NULL, NULL, NULL));
}

#define TURN_OK                                                                          \
  "{\"uri\":\"turn:relay.example:3478?transport=udp\",\"username\":\"1700000000:" PEER   \
  "\",\"password\":\"c2VjcmV0c2VjcmV0c2VjcmV0c2U=\"}"

static void
test_ice_servers (void)
{
  const char *json = "{\"stun\":[\"stun.example:3478\",\"[2001:db8::1]:3478\"],"
                     "\"turn\":[" TURN_OK "],\"future\":1}";
  g_autoptr (GError) error = NULL;
  g_autoptr (SigmsgIceServers) s = sigmsg_ice_servers_parse (json, strlen (json), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (s->stun->len, ==, 2);
  g_assert_cmpstr (s->stun->pdata[1], ==, "[2001:db8::1]:3478");
  g_assert_cmpuint (s->turn->len, ==, 1);
  SigmsgTurnServer *t = s->turn->pdata[0];
  g_assert_cmpstr (t->uri, ==, "turn:relay.example:3478?transport=udp");
  g_assert_cmpstr (t->username, ==, "1700000000:" PEER);
  g_assert_cmpstr (t->password, ==, "c2VjcmV0c2VjcmV0c2VjcmV0c2U=");

  /* Round trip. */
  gsize len;
  g_autofree char *out = sigmsg_ice_servers_to_json (s, &len);
  g_assert_cmpuint (len, ==, strlen (out));
  g_autoptr (SigmsgIceServers) back = sigmsg_ice_servers_parse (out, len, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (back->stun->len, ==, 2);
  g_assert_cmpuint (back->turn->len, ==, 1);
  g_assert_cmpstr (((SigmsgTurnServer *)back->turn->pdata[0])->password, ==, t->password);

  /* Both lists are optional. */
  g_autoptr (SigmsgIceServers) empty = sigmsg_ice_servers_parse ("{}", 2, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (empty->stun->len + empty->turn->len, ==, 0);
  g_autofree char *empty_json = sigmsg_ice_servers_to_json (empty, NULL);
  g_assert_cmpstr (empty_json, ==, "{\"stun\":[],\"turn\":[]}");

  /* Eight of each at most. */
  GString *many = g_string_new ("{\"stun\":[");
  for (int i = 0; i < SIGMSG_MAX_ICE_SERVERS; i++)
    g_string_append_printf (many, "%s\"s%d.example:3478\"", i ? "," : "", i);
  g_string_append (many, "],\"turn\":[");
  for (int i = 0; i < SIGMSG_MAX_ICE_SERVERS; i++)
    g_string_append_printf (many, "%s" TURN_OK, i ? "," : "");
  g_string_append (many, "]}");
  g_autoptr (SigmsgIceServers) eight
      = sigmsg_ice_servers_parse (many->str, many->len, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (eight->turn->len, ==, SIGMSG_MAX_ICE_SERVERS);
  g_string_free (many, TRUE);

  /* Building more than eight is a programming error. */
  g_ptr_array_add (eight->stun, g_strdup ("ninth.example:1"));
  g_test_expect_message ("p2ptun-proto", G_LOG_LEVEL_CRITICAL,
                         "*SIGMSG_MAX_ICE_SERVERS*");
  g_assert_null (sigmsg_ice_servers_to_json (eight, NULL));
  g_test_assert_expected_messages ();
}

#define PIN_OK "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

static void
test_ice_servers_pin (void)
{
  const char *json = "{\"turn\":[{\"uri\":\"turns:relay.example:443\",\"username\":\"u\","
                     "\"password\":\"p\",\"pin\":\"" PIN_OK "\"}," TURN_OK "]}";
  g_autoptr (GError) error = NULL;
  g_autoptr (SigmsgIceServers) s = sigmsg_ice_servers_parse (json, strlen (json), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (((SigmsgTurnServer *) s->turn->pdata[0])->pin, ==, PIN_OK);
  g_assert_null (((SigmsgTurnServer *) s->turn->pdata[1])->pin);

  g_autofree char *out = sigmsg_ice_servers_to_json (s, NULL);
  g_assert_nonnull (strstr (out, "\"pin\":\"" PIN_OK "\""));
  g_assert_cmpuint (strstr (out, "\"pin\"") - out, <, strstr (out, TURN_OK) - out);

  g_assert_true (sigmsg_pin_is_valid (PIN_OK));
  static const char *const bad[] = {
    "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",    /* 43 characters */
    "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU==",  /* 45 */
    "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSu-U=",   /* not base64 */
    "sha1//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    "",
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (sigmsg_pin_is_valid (bad[i]));
  g_assert_false (sigmsg_pin_is_valid (NULL));
}

static void
ice_fails (const char *json, SigmsgError code)
{
  g_autoptr (GError) error = NULL;
  g_test_message ("expect failure: %.200s", json);
  g_assert_null (sigmsg_ice_servers_parse (json, strlen (json), &error));
  g_assert_error (error, SIGMSG_ERROR, (gint)code);
}

static void
test_ice_servers_invalid (void)
{
  static const char *const bad[] = {
    "[]",
    "{\"stun\":\"stun.example:3478\"}",
    "{\"stun\":[1]}",
    "{\"stun\":[\"stun.example\"]}",
    "{\"stun\":[\"stun.example:0\"]}",
    "{\"stun\":[\"stun:stun.example:3478\"]}",
    "{\"stun\":[\"a:1\",\"a:2\",\"a:3\",\"a:4\",\"a:5\",\"a:6\",\"a:7\",\"a:8\",\"a:9\"]"
    "}",
    "{\"stun\":[],\"stun\":[]}",
    "{\"turn\":{}}",
    "{\"turn\":[\"turn:relay.example:3478\"]}",
    "{\"turn\":[{\"uri\":\"turn:relay.example:3478\",\"username\":\"u\"}]}",
    "{\"turn\":[{\"uri\":\"turn:relay.example:3478\",\"password\":\"p\"}]}",
    "{\"turn\":[{\"username\":\"u\",\"password\":\"p\"}]}",
    "{\"turn\":[{\"uri\":\"turns:r.example:443\",\"username\":\"u\",\"password\":\"p\","
    "\"pin\":\"sha256//x\"}]}",
    "{\"turn\":[{\"uri\":\"turns:r.example:443\",\"username\":\"u\",\"password\":\"p\","
    "\"pin\":7}]}",
    "{\"turn\":[{\"uri\":\"turn:relay.example\",\"username\":\"u\",\"password\":\"p\"}]}",
    "{\"turn\":[{\"uri\":\"turn:relay.example:1\",\"username\":\"\",\"password\":\"p\"}]"
    "}",
    "{\"turn\":[{\"uri\":\"turn:relay.example:1\",\"username\":\"u\",\"password\":\"\"}]"
    "}",
    "{\"turn\":[{\"uri\":\"turn:relay.example:1\",\"username\":\"u\\n\",\"password\":"
    "\"p\"}]}",
    "{\"turn\":[{\"uri\":\"turn:relay.example:1\",\"username\":1,\"password\":\"p\"}]}",
    ("{\"turn\":[{\"uri\":\"turn:relay.example:1\",\"username\":\"u\",\"username\":\"u\","
     "\"password\":\"p\"}]}"),
  };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    ice_fails (bad[i], SIGMSG_ERROR_INVALID);

  g_autofree char *big = g_malloc (SIGMSG_MAX_JSON + 1);
  memset (big, ' ', SIGMSG_MAX_JSON + 1);
  memcpy (big, "{}", 2);
  g_autoptr (GError) error = NULL;
  g_assert_null (sigmsg_ice_servers_parse (big, SIGMSG_MAX_JSON + 1, &error));
  g_assert_error (error, SIGMSG_ERROR, SIGMSG_ERROR_TOO_LARGE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sigmsg/parse/valid", test_parse_valid);
  g_test_add_func ("/sigmsg/parse/version", test_parse_version);
  g_test_add_func ("/sigmsg/parse/invalid-fields", test_parse_invalid_fields);
  g_test_add_func ("/sigmsg/parse/lengths", test_parse_lengths);
  g_test_add_func ("/sigmsg/parse/from", test_parse_from);
  g_test_add_func ("/sigmsg/parse/not-json", test_parse_not_json);
  g_test_add_func ("/sigmsg/generation", test_generation);
  g_test_add_func ("/sigmsg/parse/deep", test_parse_deep);
  g_test_add_func ("/sigmsg/parse/too-large", test_parse_too_large);
  g_test_add_func ("/sigmsg/round-trip", test_round_trip);
  g_test_add_func ("/sigmsg/to-json/exact", test_to_json_exact);
  g_test_add_func ("/sigmsg/to-json/invalid", test_to_json_invalid);
  g_test_add_func ("/sigmsg/type-names", test_type_names);
  g_test_add_func ("/sigmsg/batch", test_batch);
  g_test_add_func ("/sigmsg/batch/invalid", test_batch_invalid);
  g_test_add_func ("/sigmsg/split-host-port", test_split_host_port);
  g_test_add_func ("/sigmsg/turn-uri-split", test_turn_uri_split);
  g_test_add_func ("/sigmsg/ice-servers", test_ice_servers);
  g_test_add_func ("/sigmsg/ice-servers/invalid", test_ice_servers_invalid);
  g_test_add_func ("/sigmsg/ice-servers/pin", test_ice_servers_pin);
  return g_test_run ();
}
