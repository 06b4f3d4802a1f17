/* Signaling messages and ICE server lists (JSON). See sigmsg.h and
 * proto/PROTOCOL.md sections "Signaling messages" and "ICE servers".
 *
 * Input is hostile: it comes from the network through the signaling server.
 * Every parse runs in three steps: size and byte checks (length bound, no NUL,
 * valid UTF-8), a strict RFC 8259 syntax check with a nesting limit (json-glib
 * 1.6 is lax: it accepts comments, single quotes, "var x =" prefixes and
 * leading zeros, and it recurses without bound), then json-glib builds the tree
 * that we validate member by member. */
#include "sigmsg.h"

#include <arpa/inet.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "jsonstrict.h"
#include "peerid.h"


/* RFC 8445 section 5.3: "ice-ufrag" 4 to 256 characters, "ice-pwd" 22 to 256. */
#define SIGMSG_UFRAG_MIN 4
#define SIGMSG_PWD_MIN 22
#define SIGMSG_PWD_MAX 256

/* RFC 1035 section 2.3.4: labels of at most 63 octets, names of at most 255
 * octets on the wire, which is 253 characters in text form. */
#define SIGMSG_DNS_LABEL_MAX 63
#define SIGMSG_DNS_NAME_MAX 253
/* "[" host "]" ":" 5 digits */
#define SIGMSG_HOSTPORT_MAX (SIGMSG_DNS_NAME_MAX + 2 + 1 + 5)
/* "turns:" hostport "?transport=" "udp" */
#define SIGMSG_TURN_URI_MAX (6 + SIGMSG_HOSTPORT_MAX + 11 + 3)
/* RFC 8489 section 14.3 allows usernames up to 512 bytes; ours are
 * "EXPIRY:PEER-ID" (about 63) and base64 HMAC-SHA1 passwords (28). */
#define SIGMSG_TURN_CRED_MAX 256

#define SIGMSG_CANDIDATE_PREFIX "candidate:"

G_DEFINE_QUARK (sigmsg - error - quark, sigmsg_error)

static const char *const sigmsg_type_names[] = {
  [SIGMSG_OFFER] = "offer",
  [SIGMSG_ANSWER] = "answer",
  [SIGMSG_CANDIDATE] = "candidate",
  [SIGMSG_END_OF_CANDIDATES] = "end-of-candidates",
  [SIGMSG_BYE] = "bye",
  [SIGMSG_RESTART] = "restart",
};

const char *
sigmsg_type_to_string (SigmsgType type)
{
  if ((guint)type >= G_N_ELEMENTS (sigmsg_type_names))
    return NULL;
  return sigmsg_type_names[type];
}

static gboolean
sigmsg_type_from_string (const char *s, SigmsgType *type)
{
  for (guint i = 0; i < G_N_ELEMENTS (sigmsg_type_names); i++)
    if (strcmp (s, sigmsg_type_names[i]) == 0)
      {
        *type = (SigmsgType)i;
        return TRUE;
      }
  return FALSE;
}

/* ---- character classes ---- */

static gboolean
sigmsg_is_printable (const char *s, size_t min, size_t max)
{
  size_t n = strnlen (s, max + 1);
  if (n < min || n > max)
    return FALSE;
  for (size_t i = 0; i < n; i++)
    if (s[i] < 0x20 || s[i] > 0x7e)
      return FALSE;
  return TRUE;
}

static gboolean
sigmsg_session_is_valid (const char *s)
{
  if (strnlen (s, SIGMSG_SESSION_LEN + 1) != SIGMSG_SESSION_LEN)
    return FALSE;
  for (size_t i = 0; i < SIGMSG_SESSION_LEN; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return FALSE;
  return TRUE;
}

/* RFC 8445 section 15.4: ice-char = ALPHA / DIGIT / "+" / "/". */
static gboolean
sigmsg_is_ice_chars (const char *s, size_t min, size_t max)
{
  size_t n = strnlen (s, max + 1);
  if (n < min || n > max)
    return FALSE;
  for (size_t i = 0; i < n; i++)
    if (!g_ascii_isalnum (s[i]) && s[i] != '+' && s[i] != '/')
      return FALSE;
  return TRUE;
}

static gboolean
sigmsg_candidate_is_valid (const char *s)
{
  return sigmsg_is_printable (s, sizeof SIGMSG_CANDIDATE_PREFIX, SIGMSG_CANDIDATE_MAX)
         && strncmp (s, SIGMSG_CANDIDATE_PREFIX, strlen (SIGMSG_CANDIDATE_PREFIX)) == 0;
}

/* A reason is a token: [a-z0-9-]{1,64}. */
static gboolean
sigmsg_reason_is_valid (const char *s)
{
  size_t n = strnlen (s, SIGMSG_REASON_MAX + 1);
  if (n == 0 || n > SIGMSG_REASON_MAX)
    return FALSE;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
      return FALSE;
  return TRUE;
}

/* ---- loading ---- */

/* json-glib keeps the last of duplicate members. To refuse duplicates we count
 * the members the parser reports per object and compare with the object's
 * size afterwards: any duplicate leaves its object with fewer members than were
 * reported (an object freed by a duplicate only adds to a count that is
 * already too high). */
static void
sigmsg_on_object_member (JsonParser *parser, JsonObject *object, char *member_name,
                         gpointer user_data)
{
  GHashTable *counts = user_data;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (counts, object));
  g_hash_table_insert (counts, object, GUINT_TO_POINTER (n + 1));
}

static gboolean
sigmsg_counts_match (GHashTable *counts)
{
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, counts);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (json_object_get_size (key) != GPOINTER_TO_UINT (value))
      return FALSE;
  return TRUE;
}

/* Parses @json into a tree whose root is an object. Returns the parser, which
 * owns the tree, and sets *@root. */
static JsonParser *
sigmsg_load (const char *json, gsize len, gsize max, JsonObject **root, GError **error)
{
  if (len > max)
    {
      g_set_error (error, SIGMSG_ERROR, SIGMSG_ERROR_TOO_LARGE,
                   "message of %" G_GSIZE_FORMAT " bytes exceeds %" G_GSIZE_FORMAT, len,
                   max);
      return NULL;
    }
  if (json == NULL || len == 0 || memchr (json, '\0', len) != NULL
      || !g_utf8_validate_len (json, len, NULL) || !jsonstrict_check (json, len))
    {
      g_set_error_literal (error, SIGMSG_ERROR, SIGMSG_ERROR_INVALID, "not valid JSON");
      return NULL;
    }

  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GHashTable) counts = g_hash_table_new (NULL, NULL);
  gulong handler = g_signal_connect (parser, "object-member",
                                     G_CALLBACK (sigmsg_on_object_member), counts);
  g_autoptr (GError) local = NULL;
  gboolean ok = json_parser_load_from_data (parser, json, (gssize)len, &local);
  g_signal_handler_disconnect (parser, handler);
  if (!ok)
    {
      g_set_error (error, SIGMSG_ERROR, SIGMSG_ERROR_INVALID, "not valid JSON: %s",
                   local->message);
      return NULL;
    }
  JsonNode *node = json_parser_get_root (parser);
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error_literal (error, SIGMSG_ERROR, SIGMSG_ERROR_INVALID,
                           "not a JSON object");
      return NULL;
    }
  if (!sigmsg_counts_match (counts))
    {
      g_set_error_literal (error, SIGMSG_ERROR, SIGMSG_ERROR_INVALID, "duplicate member");
      return NULL;
    }
  *root = json_node_get_object (node);
  return g_steal_pointer (&parser);
}

/* Looks up an optional string member. Returns FALSE (with @error) when it is
 * present with another type; sets *@out to NULL when absent. */
static gboolean
sigmsg_get_string (JsonObject *obj, const char *name, const char **out, GError **error)
{
  *out = NULL;
  JsonNode *node = json_object_get_member (obj, name);
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, SIGMSG_ERROR, SIGMSG_ERROR_INVALID, "\"%s\" is not a string",
                   name);
      return FALSE;
    }
  *out = json_node_get_string (node);
  return TRUE;
}

/* An optional integer member in 0..G_MAXUINT32; 0 when absent. */
static gboolean
sigmsg_get_u32 (JsonObject *obj, const char *name, guint32 *out, GError **error)
{
  JsonNode *node = json_object_get_member (obj, name);

  *out = 0;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64
      || json_node_get_int (node) < 0 || json_node_get_int (node) > G_MAXUINT32)
    {
      g_set_error (error, SIGMSG_ERROR, SIGMSG_ERROR_INVALID,
                   "\"%s\" is not an integer from 0 to %u", name, G_MAXUINT32);
      return FALSE;
    }
  *out = (guint32) json_node_get_int (node);
  return TRUE;
}

static gboolean
sigmsg_get_required_string (JsonObject *obj, const char *name, const char **out,
                            GError **error)
{
  if (!sigmsg_get_string (obj, name, out, error))
    return FALSE;
  if (*out == NULL)
    {
      g_set_error (error, SIGMSG_ERROR, SIGMSG_ERROR_INVALID, "\"%s\" is missing", name);
      return FALSE;
    }
  return TRUE;
}

static gboolean
sigmsg_invalid (GError **error, const char *what)
{
  g_set_error (error, SIGMSG_ERROR, SIGMSG_ERROR_INVALID, "invalid %s", what);
  return FALSE;
}

/* ---- messages ---- */

Sigmsg *
sigmsg_new (SigmsgType type, const char *session)
{
  g_return_val_if_fail (sigmsg_type_to_string (type) != NULL, NULL);
  g_return_val_if_fail (session != NULL && sigmsg_session_is_valid (session), NULL);

  Sigmsg *msg = g_new0 (Sigmsg, 1);
  msg->type = type;
  memcpy (msg->session, session, SIGMSG_SESSION_LEN);
  return msg;
}

void
sigmsg_free (Sigmsg *msg)
{
  if (msg == NULL)
    return;
  g_free (msg->ufrag);
  g_free (msg->pwd);
  g_free (msg->candidate);
  g_free (msg->reason);
  g_free (msg->text);
  g_free (msg);
}

/* Checks the fields a message of its type needs. Fields a type does not use are
 * not looked at (and not serialised). */
static gboolean
sigmsg_check (const Sigmsg *msg, GError **error)
{
  if (sigmsg_type_to_string (msg->type) == NULL)
    return sigmsg_invalid (error, "type");
  if (!sigmsg_session_is_valid (msg->session))
    return sigmsg_invalid (error, "session");
  if (msg->from[0] != '\0' && !peerid_is_valid (msg->from))
    return sigmsg_invalid (error, "from");

  switch (msg->type)
    {
    case SIGMSG_OFFER:
    case SIGMSG_ANSWER:
      if (msg->ufrag == NULL
          || !sigmsg_is_ice_chars (msg->ufrag, SIGMSG_UFRAG_MIN, SIGMSG_UFRAG_MAX))
        return sigmsg_invalid (error, "ufrag");
      if (msg->pwd == NULL
          || !sigmsg_is_ice_chars (msg->pwd, SIGMSG_PWD_MIN, SIGMSG_PWD_MAX))
        return sigmsg_invalid (error, "pwd");
      break;
    case SIGMSG_CANDIDATE:
      if (msg->candidate == NULL || !sigmsg_candidate_is_valid (msg->candidate))
        return sigmsg_invalid (error, "candidate");
      break;
    case SIGMSG_END_OF_CANDIDATES:
    case SIGMSG_RESTART:
      break;
    case SIGMSG_BYE:
      if (msg->reason == NULL || !sigmsg_reason_is_valid (msg->reason))
        return sigmsg_invalid (error, "reason");
      if (msg->text != NULL && !sigmsg_is_printable (msg->text, 0, SIGMSG_TEXT_MAX))
        return sigmsg_invalid (error, "text");
      break;
    }
  return TRUE;
}

/* Copies a string member used by this message type into *@dst. */
static gboolean
sigmsg_take (JsonObject *obj, const char *name, char **dst, GError **error)
{
  const char *s;
  if (!sigmsg_get_string (obj, name, &s, error))
    return FALSE;
  *dst = g_strdup (s);
  return TRUE;
}

static Sigmsg *
sigmsg_from_object (JsonObject *obj, gboolean allow_from, GError **error)
{
  JsonNode *v = json_object_get_member (obj, "v");
  if (v == NULL || !JSON_NODE_HOLDS_VALUE (v)
      || json_node_get_value_type (v) != G_TYPE_INT64)
    {
      sigmsg_invalid (error, "or missing \"v\"");
      return NULL;
    }
  /* Checked before anything else, so that a newer peer gets a version error
   * rather than a complaint about members it may have redefined. */
  if (json_node_get_int (v) != SIGMSG_VERSION)
    {
      g_set_error (error, SIGMSG_ERROR, SIGMSG_ERROR_VERSION,
                   "protocol version %" G_GINT64_FORMAT " is not %d",
                   json_node_get_int (v), SIGMSG_VERSION);
      return NULL;
    }

  const char *type_str, *session, *from;
  SigmsgType type;
  if (!sigmsg_get_required_string (obj, "type", &type_str, error)
      || !sigmsg_get_required_string (obj, "session", &session, error)
      || !sigmsg_get_string (obj, "from", &from, error))
    return NULL;
  if (!sigmsg_type_from_string (type_str, &type))
    {
      sigmsg_invalid (error, "type");
      return NULL;
    }
  if (!sigmsg_session_is_valid (session))
    {
      sigmsg_invalid (error, "session");
      return NULL;
    }
  if (from != NULL && (!allow_from || !peerid_is_valid (from)))
    {
      sigmsg_invalid (error, "from");
      return NULL;
    }

  g_autoptr (Sigmsg) msg = sigmsg_new (type, session);
  if (from != NULL)
    memcpy (msg->from, from, PEERID_SIZE);
  if (!sigmsg_get_u32 (obj, "generation", &msg->generation, error))
    return NULL;

  gboolean ok = TRUE;
  switch (type)
    {
    case SIGMSG_OFFER:
    case SIGMSG_ANSWER:
      ok = sigmsg_take (obj, "ufrag", &msg->ufrag, error)
           && sigmsg_take (obj, "pwd", &msg->pwd, error);
      break;
    case SIGMSG_CANDIDATE:
      ok = sigmsg_take (obj, "candidate", &msg->candidate, error);
      break;
    case SIGMSG_END_OF_CANDIDATES:
    case SIGMSG_RESTART:
      break;
    case SIGMSG_BYE:
      ok = sigmsg_take (obj, "reason", &msg->reason, error)
           && sigmsg_take (obj, "text", &msg->text, error);
      break;
    }
  if (!ok || !sigmsg_check (msg, error))
    return NULL;
  return g_steal_pointer (&msg);
}

Sigmsg *
sigmsg_parse (const char *json, gsize len, gboolean allow_from, GError **error)
{
  JsonObject *root = NULL;
  g_autoptr (JsonParser) parser = sigmsg_load (json, len, SIGMSG_MAX_JSON, &root, error);
  if (parser == NULL)
    return NULL;
  return sigmsg_from_object (root, allow_from, error);
}

static void
sigmsg_add_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value);
}

static void
sigmsg_build_object (JsonBuilder *b, const Sigmsg *msg)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "v");
  json_builder_add_int_value (b, SIGMSG_VERSION);
  sigmsg_add_string (b, "type", sigmsg_type_to_string (msg->type));
  sigmsg_add_string (b, "session", msg->session);
  if (msg->from[0] != '\0')
    sigmsg_add_string (b, "from", msg->from);
  /* Absent means 0, which is all that agents before generations spoke. */
  if (msg->generation != 0)
    {
      json_builder_set_member_name (b, "generation");
      json_builder_add_int_value (b, msg->generation);
    }
  switch (msg->type)
    {
    case SIGMSG_OFFER:
    case SIGMSG_ANSWER:
      sigmsg_add_string (b, "ufrag", msg->ufrag);
      sigmsg_add_string (b, "pwd", msg->pwd);
      break;
    case SIGMSG_CANDIDATE:
      sigmsg_add_string (b, "candidate", msg->candidate);
      break;
    case SIGMSG_END_OF_CANDIDATES:
    case SIGMSG_RESTART:
      break;
    case SIGMSG_BYE:
      sigmsg_add_string (b, "reason", msg->reason);
      if (msg->text != NULL)
        sigmsg_add_string (b, "text", msg->text);
      break;
    }
  json_builder_end_object (b);
}

static char *
sigmsg_generate (JsonBuilder *b, gsize *len)
{
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, len);
}

char *
sigmsg_to_json (const Sigmsg *msg, gsize *len)
{
  if (len != NULL)
    *len = 0;
  /* Serialising an invalid message is a programming error. */
  g_return_val_if_fail (msg != NULL && sigmsg_check (msg, NULL), NULL);

  g_autoptr (JsonBuilder) b = json_builder_new ();
  sigmsg_build_object (b, msg);
  return sigmsg_generate (b, len);
}

GPtrArray *
sigmsg_parse_batch (const char *json, gsize len, GError **error)
{
  JsonObject *root = NULL;
  g_autoptr (JsonParser) parser
      = sigmsg_load (json, len, SIGMSG_MAX_BATCH_JSON, &root, error);
  if (parser == NULL)
    return NULL;

  JsonNode *node = json_object_get_member (root, "messages");
  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    {
      sigmsg_invalid (error, "or missing \"messages\"");
      return NULL;
    }
  JsonArray *array = json_node_get_array (node);
  guint n = json_array_get_length (array);
  if (n > SIGMSG_MAX_BATCH)
    {
      g_set_error (error, SIGMSG_ERROR, SIGMSG_ERROR_INVALID, "%u messages exceed %d", n,
                   SIGMSG_MAX_BATCH);
      return NULL;
    }

  g_autoptr (GPtrArray) msgs = g_ptr_array_new_full (n, (GDestroyNotify)sigmsg_free);
  for (guint i = 0; i < n; i++)
    {
      JsonNode *elem = json_array_get_element (array, i);
      if (!JSON_NODE_HOLDS_OBJECT (elem))
        {
          sigmsg_invalid (error, "message");
          return NULL;
        }
      Sigmsg *msg = sigmsg_from_object (json_node_get_object (elem), TRUE, error);
      if (msg == NULL)
        return NULL;
      g_ptr_array_add (msgs, msg);
      /* The server stamps every delivered message with its sender. */
      if (msg->from[0] == '\0')
        {
          sigmsg_invalid (error, "or missing \"from\"");
          return NULL;
        }
    }
  return g_steal_pointer (&msgs);
}

char *
sigmsg_batch_to_json (Sigmsg *const *msgs, guint n, gsize *len)
{
  if (len != NULL)
    *len = 0;
  g_return_val_if_fail (n <= SIGMSG_MAX_BATCH, NULL);
  g_return_val_if_fail (n == 0 || msgs != NULL, NULL);
  for (guint i = 0; i < n; i++)
    g_return_val_if_fail (msgs[i] != NULL && msgs[i]->from[0] != '\0'
                              && sigmsg_check (msgs[i], NULL),
                          NULL);

  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "messages");
  json_builder_begin_array (b);
  for (guint i = 0; i < n; i++)
    sigmsg_build_object (b, msgs[i]);
  json_builder_end_array (b);
  json_builder_end_object (b);
  return sigmsg_generate (b, len);
}

/* ---- host:port ---- */

static gboolean
sigmsg_parse_port (const char *s, guint16 *port)
{
  size_t n = strnlen (s, 6);
  guint v = 0;

  /* 1..65535 in plain decimal: no sign, no leading zero, at most 5 digits. */
  if (n == 0 || n > 5 || s[0] == '0')
    return FALSE;
  for (size_t i = 0; i < n; i++)
    {
      if (!g_ascii_isdigit (s[i]))
        return FALSE;
      v = v * 10 + (guint)(s[i] - '0');
    }
  if (v > 65535)
    return FALSE;
  *port = (guint16)v;
  return TRUE;
}

/* RFC 1123 section 2.1 host names: dot-separated labels of letters, digits
 * and hyphens, neither starting nor ending with a hyphen. A name whose last
 * label is all digits must be a dotted-quad IPv4 address: resolvers would read
 * "10.1" or "0x7f.1" as addresses (RFC 3696 section 2). */
static gboolean
sigmsg_host_is_valid (const char *host, size_t n)
{
  char buf[SIGMSG_DNS_NAME_MAX + 1];
  struct in_addr a4;

  if (n == 0 || n > SIGMSG_DNS_NAME_MAX)
    return FALSE;
  memcpy (buf, host, n);
  buf[n] = '\0';
  if (inet_pton (AF_INET, buf, &a4) == 1)
    return TRUE;

  size_t label_start = 0;
  gboolean all_digits = TRUE;
  for (size_t i = 0; i <= n; i++)
    {
      if (i == n || buf[i] == '.')
        {
          size_t label_len = i - label_start;
          if (label_len == 0 || label_len > SIGMSG_DNS_LABEL_MAX
              || buf[label_start] == '-' || buf[i - 1] == '-')
            return FALSE;
          if (i == n && all_digits)
            return FALSE;
          label_start = i + 1;
          all_digits = TRUE;
          continue;
        }
      if (!g_ascii_isalnum (buf[i]) && buf[i] != '-')
        return FALSE;
      if (!g_ascii_isdigit (buf[i]))
        all_digits = FALSE;
    }
  return TRUE;
}

gboolean
sigmsg_split_host_port (const char *s, char **host, guint16 *port)
{
  const char *host_start, *host_end, *port_str;
  guint16 p;

  if (s == NULL)
    return FALSE;
  size_t n = strnlen (s, SIGMSG_HOSTPORT_MAX + 1);
  if (n == 0 || n > SIGMSG_HOSTPORT_MAX)
    return FALSE;

  if (s[0] == '[')
    {
      /* RFC 3986 section 3.2.2: IP-literal = "[" IPv6address "]"; no zone. */
      char buf[INET6_ADDRSTRLEN];
      struct in6_addr a6;
      const char *close = memchr (s, ']', n);
      if (close == NULL || close[1] != ':')
        return FALSE;
      host_start = s + 1;
      host_end = close;
      size_t hn = (size_t)(host_end - host_start);
      if (hn == 0 || hn >= sizeof buf)
        return FALSE;
      memcpy (buf, host_start, hn);
      buf[hn] = '\0';
      if (inet_pton (AF_INET6, buf, &a6) != 1)
        return FALSE;
      port_str = close + 2;
    }
  else
    {
      const char *colon = memchr (s, ':', n);
      /* One colon only: an unbracketed IPv6 address is ambiguous. */
      if (colon == NULL || memchr (colon + 1, ':', n - (size_t)(colon + 1 - s)) != NULL)
        return FALSE;
      host_start = s;
      host_end = colon;
      if (!sigmsg_host_is_valid (host_start, (size_t)(host_end - host_start)))
        return FALSE;
      port_str = colon + 1;
    }
  if (!sigmsg_parse_port (port_str, &p))
    return FALSE;

  if (host != NULL)
    *host = g_strndup (host_start, (gsize)(host_end - host_start));
  if (port != NULL)
    *port = p;
  return TRUE;
}

/* ---- ICE servers ---- */

gboolean
sigmsg_turn_uri_split (const char *uri, char **host, guint16 *port,
                       SigmsgTurnTransport *transport)
{
  SigmsgTurnTransport t;
  const char *rest;

  if (uri == NULL || strnlen (uri, SIGMSG_TURN_URI_MAX + 1) > SIGMSG_TURN_URI_MAX)
    return FALSE;
  /* RFC 7065 section 3.1: turnURI = scheme ":" host [ ":" port ]
   * [ "?transport=" transport ]; we require the port. */
  if (g_str_has_prefix (uri, "turn:"))
    {
      t = SIGMSG_TURN_UDP;
      rest = uri + 5;
    }
  else if (g_str_has_prefix (uri, "turns:"))
    {
      t = SIGMSG_TURN_TLS;
      rest = uri + 6;
    }
  else
    return FALSE;

  char hostport[SIGMSG_HOSTPORT_MAX + 1];
  const char *query = strchr (rest, '?');
  size_t hp_len = query != NULL ? (size_t)(query - rest) : strlen (rest);
  if (hp_len > SIGMSG_HOSTPORT_MAX)
    return FALSE;
  memcpy (hostport, rest, hp_len);
  hostport[hp_len] = '\0';

  if (query != NULL)
    {
      if (strcmp (query, "?transport=tcp") == 0)
        t = t == SIGMSG_TURN_TLS ? SIGMSG_TURN_TLS : SIGMSG_TURN_TCP;
      else if (strcmp (query, "?transport=udp") == 0 && t == SIGMSG_TURN_UDP)
        t = SIGMSG_TURN_UDP;
      else
        return FALSE; /* "turns" over UDP would be DTLS, which nobody speaks */
    }

  g_autofree char *h = NULL;
  guint16 p;
  if (!sigmsg_split_host_port (hostport, &h, &p))
    return FALSE;
  if (host != NULL)
    *host = g_steal_pointer (&h);
  if (port != NULL)
    *port = p;
  if (transport != NULL)
    *transport = t;
  return TRUE;
}

gboolean
sigmsg_pin_is_valid (const char *pin)
{
  const char *b64;
  gsize len = 0;
  g_autofree guchar *raw = NULL;

  if (pin == NULL || !g_str_has_prefix (pin, SIGMSG_PIN_PREFIX))
    return FALSE;
  b64 = pin + strlen (SIGMSG_PIN_PREFIX);
  /* 32 bytes are 44 base64 characters, the last one "=". */
  if (strnlen (b64, 45) != 44 || b64[43] != '=')
    return FALSE;
  for (int i = 0; i < 43; i++)
    if (!g_ascii_isalnum (b64[i]) && b64[i] != '+' && b64[i] != '/')
      return FALSE;
  raw = g_base64_decode (b64, &len);
  return len == 32;
}

static void
sigmsg_turn_server_free (SigmsgTurnServer *turn)
{
  if (turn == NULL)
    return;
  g_free (turn->uri);
  g_free (turn->username);
  g_free (turn->pin);
  if (turn->password != NULL)
    {
      /* A relay credential, valid for hours: wipe it. */
      explicit_bzero (turn->password, strlen (turn->password));
      g_free (turn->password);
    }
  g_free (turn);
}

SigmsgIceServers *
sigmsg_ice_servers_new (void)
{
  SigmsgIceServers *servers = g_new0 (SigmsgIceServers, 1);
  servers->stun = g_ptr_array_new_with_free_func (g_free);
  servers->turn
      = g_ptr_array_new_with_free_func ((GDestroyNotify)sigmsg_turn_server_free);
  return servers;
}

void
sigmsg_ice_servers_free (SigmsgIceServers *servers)
{
  if (servers == NULL)
    return;
  g_clear_pointer (&servers->stun, g_ptr_array_unref);
  g_clear_pointer (&servers->turn, g_ptr_array_unref);
  g_free (servers);
}

static gboolean
sigmsg_turn_server_is_valid (const SigmsgTurnServer *turn)
{
  return turn != NULL && sigmsg_turn_uri_split (turn->uri, NULL, NULL, NULL)
         && turn->username != NULL
         && sigmsg_is_printable (turn->username, 1, SIGMSG_TURN_CRED_MAX)
         && turn->password != NULL
         && sigmsg_is_printable (turn->password, 1, SIGMSG_TURN_CRED_MAX)
         && (turn->pin == NULL || sigmsg_pin_is_valid (turn->pin));
}

static JsonArray *
sigmsg_get_array (JsonObject *obj, const char *name, GError **error)
{
  JsonNode *node = json_object_get_member (obj, name);
  if (node == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      sigmsg_invalid (error, name);
      return NULL;
    }
  JsonArray *array = json_node_get_array (node);
  if (json_array_get_length (array) > SIGMSG_MAX_ICE_SERVERS)
    {
      g_set_error (error, SIGMSG_ERROR, SIGMSG_ERROR_INVALID,
                   "more than %d \"%s\" servers", SIGMSG_MAX_ICE_SERVERS, name);
      return NULL;
    }
  return array;
}

SigmsgIceServers *
sigmsg_ice_servers_parse (const char *json, gsize len, GError **error)
{
  JsonObject *root = NULL;
  g_autoptr (JsonParser) parser = sigmsg_load (json, len, SIGMSG_MAX_JSON, &root, error);
  if (parser == NULL)
    return NULL;

  g_autoptr (SigmsgIceServers) servers = sigmsg_ice_servers_new ();
  g_autoptr (GError) local = NULL;

  JsonArray *stun = sigmsg_get_array (root, "stun", &local);
  if (local != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
  for (guint i = 0; stun != NULL && i < json_array_get_length (stun); i++)
    {
      JsonNode *elem = json_array_get_element (stun, i);
      if (!JSON_NODE_HOLDS_VALUE (elem)
          || json_node_get_value_type (elem) != G_TYPE_STRING
          || !sigmsg_split_host_port (json_node_get_string (elem), NULL, NULL))
        {
          sigmsg_invalid (error, "stun server");
          return NULL;
        }
      g_ptr_array_add (servers->stun, g_strdup (json_node_get_string (elem)));
    }

  JsonArray *turn = sigmsg_get_array (root, "turn", &local);
  if (local != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
  for (guint i = 0; turn != NULL && i < json_array_get_length (turn); i++)
    {
      JsonNode *elem = json_array_get_element (turn, i);
      const char *uri, *username, *password, *pin;
      if (!JSON_NODE_HOLDS_OBJECT (elem))
        {
          sigmsg_invalid (error, "turn server");
          return NULL;
        }
      JsonObject *obj = json_node_get_object (elem);
      if (!sigmsg_get_required_string (obj, "uri", &uri, error)
          || !sigmsg_get_required_string (obj, "username", &username, error)
          || !sigmsg_get_required_string (obj, "password", &password, error)
          || !sigmsg_get_string (obj, "pin", &pin, error))
        return NULL;
      SigmsgTurnServer *t = g_new0 (SigmsgTurnServer, 1);
      t->uri = g_strdup (uri);
      t->username = g_strdup (username);
      t->password = g_strdup (password);
      t->pin = g_strdup (pin);
      g_ptr_array_add (servers->turn, t);
      if (!sigmsg_turn_server_is_valid (t))
        {
          sigmsg_invalid (error, "turn server");
          return NULL;
        }
    }
  return g_steal_pointer (&servers);
}

char *
sigmsg_ice_servers_to_json (const SigmsgIceServers *servers, gsize *len)
{
  if (len != NULL)
    *len = 0;
  g_return_val_if_fail (servers != NULL && servers->stun != NULL && servers->turn != NULL,
                        NULL);
  g_return_val_if_fail (servers->stun->len <= SIGMSG_MAX_ICE_SERVERS
                            && servers->turn->len <= SIGMSG_MAX_ICE_SERVERS,
                        NULL);
  for (guint i = 0; i < servers->stun->len; i++)
    g_return_val_if_fail (sigmsg_split_host_port (servers->stun->pdata[i], NULL, NULL),
                          NULL);
  for (guint i = 0; i < servers->turn->len; i++)
    g_return_val_if_fail (sigmsg_turn_server_is_valid (servers->turn->pdata[i]), NULL);

  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "stun");
  json_builder_begin_array (b);
  for (guint i = 0; i < servers->stun->len; i++)
    json_builder_add_string_value (b, servers->stun->pdata[i]);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "turn");
  json_builder_begin_array (b);
  for (guint i = 0; i < servers->turn->len; i++)
    {
      const SigmsgTurnServer *t = servers->turn->pdata[i];
      json_builder_begin_object (b);
      sigmsg_add_string (b, "uri", t->uri);
      sigmsg_add_string (b, "username", t->username);
      sigmsg_add_string (b, "password", t->password);
      if (t->pin != NULL)
        sigmsg_add_string (b, "pin", t->pin);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  return sigmsg_generate (b, len);
}
