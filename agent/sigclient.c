/* Client of p2ptun-signal (signaling/API.md): the requests, the receive
 * loop and the public API. sigclient-loop.c runs libcurl's multi interface on
 * the client's GMainContext and calls sigclient_process_done after each step.
 *
 * Callbacks to the user run only from our own GSource dispatch functions,
 * never from inside a libcurl callback, so the user may send, or free the
 * client, from any of them. sigclient_free tears everything down at once; if
 * it is called from inside one of our dispatch functions, only the final
 * g_free of the struct waits until that dispatch unwinds. */
#include "sigclient-private.h"

#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <json-glib/json-glib.h>
#include <openssl/crypto.h>

#include "enrolltoken.h"

#define SIGCLIENT_MAX_BODY ((size_t)SIGMSG_MAX_BATCH_JSON) /* 1 MiB */
#define SIGCLIENT_CONNECT_TIMEOUT_MS 10000L
#define SIGCLIENT_POLL_WAIT_S 25 /* API.md: 0..30 */
#define SIGCLIENT_POLL_TIMEOUT_MS 40000L
#define SIGCLIENT_REQUEST_TIMEOUT_MS 15000L
/* A dead connection to the server (a NAT that dropped its mapping, a server
 * gone without a word) is noticed within about 10 s, not when the 40 s poll
 * times out: TCP keepalive probes after 4 s of silence, every 2 s, and 3
 * unanswered end it; data unacknowledged for 10 s ends it too. */
#define SIGCLIENT_KEEPIDLE_S 4L
#define SIGCLIENT_KEEPINTVL_S 2L
#define SIGCLIENT_KEEPCNT 3
#define SIGCLIENT_USER_TIMEOUT_MS 10000u
#define SIGCLIENT_BACKOFF_MIN_MS 250u
#define SIGCLIENT_BACKOFF_MAX_MS 5000u
#define SIGCLIENT_POLL_MIN_EMPTY_MS 1000 /* an empty answer sooner is suspicious */
#define SIGCLIENT_SERVER_TEXT_MAX 300    /* bytes of the server's "message" we show */
#define SIGCLIENT_SMALL_BODY 4096u       /* errors and send receipts */
#define SIGCLIENT_URL_MAX 2048
/* sigclient_repoll: at most one new long-poll per this many ms, and at most
 * this many superseded long-polls kept to collect what they still bring. */
#define SIGCLIENT_REPOLL_MIN_MS 500
#define SIGCLIENT_DRAIN_MAX 4u
/* libcurl reuses no connection idle for longer than this (its default is
 * 118 s), and after a repoll every request opens a new connection for this
 * long (CURLOPT_FRESH_CONNECT): so no connection idle since before the
 * network changed is ever reused, and nothing needs closing by hand (libcurl
 * has no call to empty its cache). p2ptun-signal closes every connection
 * after one request (API.md), so this matters only behind a front end that
 * keeps them open. */
#define SIGCLIENT_REUSE_MAX_IDLE_S 30L
#define SIGCLIENT_PIN_MAX 1024

/* clang-format off */
G_DEFINE_QUARK (p2ptun-sigclient-error-quark, sigclient_error)
/* clang-format on */

typedef enum
{
  REQ_POLL,
  REQ_DRAIN, /* a long-poll superseded by sigclient_repoll */
  REQ_SEND,
  REQ_ICE,
  REQ_ENROLL,
} ReqKind;

struct _SigReq
{
  Sigclient *client;
  ReqKind kind;
  CURL *easy;    /* NULL for a request that failed before starting */
  GSource *idle; /* reports such an early failure */
  GError *early_error;
  struct curl_slist *headers;
  char *body_out; /* POST body, owned */
  GByteArray *body_in;
  gboolean too_large;
  char errbuf[CURL_ERROR_SIZE];
  SigclientSendFunc send_done;
  SigclientIceServersFunc ice_done;
  SigclientEnrollFunc enroll_done;
  gpointer user_data;
};

static void sigclient_poll_launch (Sigclient *c);

/* --- helpers --------------------------------------------------------------- */

static void
sigclient_global_init (void)
{
  static gsize once = 0;
  if (g_once_init_enter (&once))
    {
      CURLcode rc = curl_global_init (CURL_GLOBAL_DEFAULT);
      if (rc != CURLE_OK)
        g_error ("curl_global_init failed: %s", curl_easy_strerror (rc));
      g_once_init_leave (&once, 1);
    }
}

/* Up to @max bytes of untrusted text, with anything outside printable ASCII
 * replaced, so that a server cannot write escape sequences to a terminal. */
static char *
sigclient_printable (const char *s, size_t max)
{
  size_t n = strnlen (s, max);
  char *out = g_malloc (n + 4);
  for (size_t i = 0; i < n; i++)
    out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  if (s[n] != '\0')
    {
      memcpy (out + n, "...", 3);
      n += 3;
    }
  out[n] = '\0';
  return out;
}

/* The JSON object of a small answer (json-glib's parser recurses, so a
 * hostile body must stay short). */
static JsonObject *
sigclient_parse_object (const GByteArray *body, JsonParser *parser)
{
  if (body == NULL || body->len == 0 || body->len > SIGCLIENT_SMALL_BODY)
    return NULL;
  if (!json_parser_load_from_data (parser, (const char *)body->data, (gssize)body->len,
                                   NULL))
    return NULL;
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  return json_node_get_object (root);
}

/* @obj's member @name when it is a string, else NULL. */
static const char *
sigclient_string_member (JsonObject *obj, const char *name)
{
  JsonNode *n = obj ? json_object_get_member (obj, name) : NULL;

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

/* The 403s whose "error" says why (API.md), each with what we say when the
 * server gives no message. */
static const struct
{
  const char *code;
  SigclientError error;
  const char *before, *after; /* our peer-id goes between */
} sigclient_refusals[] = {
  { "not-enrolled", SIGCLIENT_ERROR_NOT_ENROLLED,
    "this signaling server does not know this agent (peer-id ",
    "); ask its operator for an enrollment token, then run `p2ptun-agent enroll`" },
  { "revoked", SIGCLIENT_ERROR_REVOKED,
    "the operator of this signaling server revoked this agent (peer-id ", ")" },
  { "bad-token", SIGCLIENT_ERROR_BAD_TOKEN,
    "the signaling server does not accept this enrollment token (for peer-id ",
    "): it is unknown, expired, used or cancelled" },
};

void
sigclient_enter (Sigclient *c)
{
  c->busy++;
}

/* Returns FALSE when the client was freed meanwhile: touch nothing after. */
gboolean
sigclient_leave (Sigclient *c)
{
  g_assert (c->busy > 0);
  if (--c->busy == 0 && c->dead)
    {
      g_free (c);
      return FALSE;
    }
  return !c->dead;
}

/* --- requests -------------------------------------------------------------- */

/* The answer as text for the proto parsers (never NULL). */
static const char *
sigreq_body (const SigReq *r)
{
  return r->body_in->len > 0 ? (const char *)r->body_in->data : "";
}

static void
sigreq_free (SigReq *r)
{
  if (r == NULL)
    return;
  if (r->easy != NULL)
    {
      curl_multi_remove_handle (r->client->multi, r->easy);
      curl_easy_cleanup (r->easy);
    }
  if (r->idle != NULL)
    {
      g_source_destroy (r->idle);
      g_source_unref (r->idle);
    }
  g_clear_error (&r->early_error);
  curl_slist_free_all (r->headers);
  if (r->kind == REQ_ENROLL && r->body_out != NULL)
    OPENSSL_cleanse (r->body_out, strlen (r->body_out)); /* the token */
  g_free (r->body_out);
  if (r->body_in != NULL)
    g_byte_array_free (r->body_in, TRUE);
  g_free (r);
}

static size_t
sigreq_write (char *data, size_t size, size_t nmemb, void *userp)
{
  SigReq *r = userp;
  size_t n = size * nmemb;
  if (n > SIGCLIENT_MAX_BODY || r->body_in->len > SIGCLIENT_MAX_BODY - n)
    {
      r->too_large = TRUE;
      return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
  g_byte_array_append (r->body_in, (const guint8 *)data, (guint)n);
  return n;
}

/* Turns a finished transfer into an error, or NULL for a 2xx answer. */
static GError *
sigreq_error (SigReq *r, CURLcode rc, long *status_out)
{
  Sigclient *c = r->client;
  const char *text = r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror (rc);
  long status = 0;

  *status_out = 0;
  switch (rc)
    {
    case CURLE_OK:
      break;
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return g_error_new (
          SIGCLIENT_ERROR, SIGCLIENT_ERROR_PIN_MISMATCH,
          "the signaling server's key does not match the pin %s (server %s); "
          "someone may be intercepting the connection, or the server's key "
          "changed",
          c->pin, c->base_url);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
      return g_error_new (
          SIGCLIENT_ERROR, SIGCLIENT_ERROR_TLS,
          "cannot verify the signaling server at %s: %s; if it uses a "
          "self-signed certificate, give its public-key pin (sha256//...)",
          c->base_url, text);
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CIPHER:
      return g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_TLS,
                          "cannot use our certificate %s for the signaling server: %s",
                          c->cert_path, text);
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
      if (r->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return g_error_new (
            SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
            "the signaling server at %s sent an answer larger than %zu bytes",
            c->base_url, SIGCLIENT_MAX_BODY);
      return g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
                          "reading the answer of the signaling server at %s failed: %s",
                          c->base_url, text);
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_WEIRD_SERVER_REPLY:
      return g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
                          "bad answer from the signaling server at %s: %s", c->base_url,
                          text);
    default:
      /* DNS, connect, timeouts, resets, TLS handshake failures (a server that
       * is restarting, a middlebox): worth retrying. */
      return g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_UNREACHABLE,
                          "cannot reach the signaling server at %s: %s", c->base_url,
                          text);
    }

  curl_easy_getinfo (r->easy, CURLINFO_RESPONSE_CODE, &status);
  *status_out = status;
  if (status >= 200 && status < 300)
    return NULL;

  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  JsonObject *obj = sigclient_parse_object (r->body_in, parser);
  const char *msg = sigclient_string_member (obj, "message");
  const char *code = sigclient_string_member (obj, "error");
  g_autofree char *shown = sigclient_printable (msg ? msg : "no explanation given",
                                                SIGCLIENT_SERVER_TEXT_MAX);
  for (gsize i = 0; status == 403 && code != NULL && i < G_N_ELEMENTS (sigclient_refusals);
       i++)
    if (strcmp (code, sigclient_refusals[i].code) == 0)
      {
        /* The server's own words, for the person who must ask its operator. */
        g_autofree char *ours = g_strconcat (sigclient_refusals[i].before, c->peer_id,
                                             sigclient_refusals[i].after, NULL);
        return g_error_new_literal (SIGCLIENT_ERROR, sigclient_refusals[i].error,
                                    msg != NULL && msg[0] != '\0' ? shown : ours);
      }
  if (status == 404 && code != NULL && strcmp (code, "unknown-peer") == 0)
    return g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_UNKNOWN_PEER,
                        "the signaling server at %s has not enrolled that peer; its "
                        "operator can (p2ptun-signal enroll)",
                        c->base_url);
  if (status < 400)
    return g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
                        "unexpected HTTP status %ld from the signaling server at %s",
                        status, c->base_url);
  return g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_HTTP,
                      "the signaling server at %s refused the request (HTTP %ld): %s",
                      c->base_url, status, shown);
}

/* curl 7.88 sets the keepalive idle time and interval but not the count. */
static int
sigreq_sockopt (void *data, curl_socket_t fd, curlsocktype purpose)
{
  int count = SIGCLIENT_KEEPCNT;
  unsigned int user_timeout = SIGCLIENT_USER_TIMEOUT_MS;

  if (purpose == CURLSOCKTYPE_IPCXN)
    {
      (void) setsockopt (fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
      (void) setsockopt (fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
                         sizeof user_timeout);
    }
  return CURL_SOCKOPT_OK;
}

/* A request whose answer goes to @r's callbacks. @path starts with '/'. */
static SigReq *
sigreq_new (Sigclient *c, ReqKind kind, const char *path, char *post_body, gsize post_len)
{
  SigReq *r = g_new0 (SigReq, 1);
  r->client = c;
  r->kind = kind;
  r->body_out = post_body;
  r->body_in = g_byte_array_new ();
  g_hash_table_add (c->requests, r);

  g_autofree char *url = g_strconcat (c->base_url, path, NULL);
  CURL *e = curl_easy_init ();
  if (e == NULL)
    return r;

  gboolean ok = TRUE;
#define SETOPT(opt, val) ok = ok && curl_easy_setopt (e, opt, val) == CURLE_OK
  SETOPT (CURLOPT_URL, url);
  SETOPT (CURLOPT_PRIVATE, r);
  SETOPT (CURLOPT_ERRORBUFFER, r->errbuf);
  SETOPT (CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
  SETOPT (CURLOPT_PROTOCOLS_STR, "https");
#else
  SETOPT (CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
  SETOPT (CURLOPT_FOLLOWLOCATION, 0L);
  SETOPT (CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  SETOPT (CURLOPT_TCP_KEEPALIVE, 1L);
  SETOPT (CURLOPT_TCP_KEEPIDLE, SIGCLIENT_KEEPIDLE_S);
  SETOPT (CURLOPT_TCP_KEEPINTVL, SIGCLIENT_KEEPINTVL_S);
  SETOPT (CURLOPT_SOCKOPTFUNCTION, sigreq_sockopt);
  SETOPT (CURLOPT_CONNECTTIMEOUT_MS, SIGCLIENT_CONNECT_TIMEOUT_MS);
  SETOPT (CURLOPT_MAXAGE_CONN, SIGCLIENT_REUSE_MAX_IDLE_S);
  if (g_get_monotonic_time () < c->fresh_until)
    SETOPT (CURLOPT_FRESH_CONNECT, 1L);
  SETOPT (CURLOPT_TIMEOUT_MS,
          kind == REQ_POLL ? SIGCLIENT_POLL_TIMEOUT_MS : SIGCLIENT_REQUEST_TIMEOUT_MS);
  SETOPT (CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)SIGCLIENT_MAX_BODY);
  SETOPT (CURLOPT_WRITEFUNCTION, sigreq_write);
  SETOPT (CURLOPT_WRITEDATA, r);
  SETOPT (CURLOPT_USERAGENT, "p2ptun-agent/"
                             "1");
  SETOPT (CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
  /* Mutual TLS: the server takes our peer-id from this certificate. */
  SETOPT (CURLOPT_SSLCERT, c->cert_path);
  SETOPT (CURLOPT_SSLCERTTYPE, "PEM");
  SETOPT (CURLOPT_SSLKEY, c->key_path);
  SETOPT (CURLOPT_SSLKEYTYPE, "PEM");
  /* No TLS session resumption: the server takes our peer-id from the client
   * certificate, and a resumed session (glib-networking on the server side)
   * comes without it, which the server answers with 401. Connections are
   * kept and reused, so full handshakes stay rare. */
  SETOPT (CURLOPT_SSL_SESSIONID_CACHE, 0L);
  if (c->pin != NULL)
    {
      /* The pin authenticates the server; libcurl checks it even with
       * verification off (DESIGN.md), which a self-signed server needs. */
      SETOPT (CURLOPT_PINNEDPUBLICKEY, c->pin);
      SETOPT (CURLOPT_SSL_VERIFYPEER, 0L);
      SETOPT (CURLOPT_SSL_VERIFYHOST, 0L);
    }
  r->headers = curl_slist_append (r->headers, "Accept: application/json");
  if (post_body != NULL)
    {
      r->headers = curl_slist_append (r->headers, "Content-Type: application/json");
      r->headers = curl_slist_append (r->headers, "Expect:");
      SETOPT (CURLOPT_POST, 1L);
      SETOPT (CURLOPT_POSTFIELDS, post_body);
      SETOPT (CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)post_len);
    }
  SETOPT (CURLOPT_HTTPHEADER, r->headers);
#undef SETOPT

  if (!ok || r->headers == NULL)
    {
      curl_easy_cleanup (e);
      return r;
    }
  r->easy = e;
  if (curl_multi_add_handle (c->multi, e) != CURLM_OK)
    {
      r->easy = NULL;
      curl_easy_cleanup (e);
    }
  return r;
}

/* The token's place in the body that sigclient_enroll makes. */
#define SIGCLIENT_ENROLL_BODY_HEAD "{\"token\":\""
#define SIGCLIENT_ENROLL_TOKEN_AT (sizeof SIGCLIENT_ENROLL_BODY_HEAD - 1)

/* A server that quotes the token back (an unkind one) must not get it onto
 * the terminal or into a log through our messages: its random part is cut
 * out of @error's message. */
static void
sigreq_redact_token (const SigReq *r, GError *error)
{
  char secret[ENROLLTOKEN_BODY_LEN + 1];
  char *at;

  if (error == NULL || r->body_out == NULL
      || strlen (r->body_out) < SIGCLIENT_ENROLL_TOKEN_AT + ENROLLTOKEN_LEN)
    return;
  memcpy (secret, r->body_out + SIGCLIENT_ENROLL_TOKEN_AT + ENROLLTOKEN_PREFIX_LEN,
          ENROLLTOKEN_BODY_LEN);
  secret[ENROLLTOKEN_BODY_LEN] = '\0';
  while ((at = strstr (error->message, secret)) != NULL)
    memset (at, '*', ENROLLTOKEN_BODY_LEN);
  OPENSSL_cleanse (secret, sizeof secret);
}

/* POST /v1/enroll's answer: {"enrolled":true,"peer_id":"OURS"}, with
 * "already":true when we were enrolled before. */
static GError *
sigreq_enroll_answer (SigReq *r, gboolean *already)
{
  Sigclient *c = r->client;
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  JsonObject *obj = sigclient_parse_object (r->body_in, parser);
  JsonNode *enrolled = obj ? json_object_get_member (obj, "enrolled") : NULL;
  JsonNode *again = obj ? json_object_get_member (obj, "already") : NULL;
  const char *peer = sigclient_string_member (obj, "peer_id");

  *already = FALSE;
  if (enrolled == NULL || json_node_get_value_type (enrolled) != G_TYPE_BOOLEAN
      || !json_node_get_boolean (enrolled)
      || (again != NULL && json_node_get_value_type (again) != G_TYPE_BOOLEAN))
    return g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
                        "the signaling server at %s did not confirm the enrollment",
                        c->base_url);
  /* The server names the key it saw in our certificate: anything else means
   * that it enrolled someone else, or a certificate not ours was sent. */
  if (peer != NULL && !peerid_equal (peer, c->peer_id))
    {
      g_autofree char *shown = sigclient_printable (peer, PEERID_LEN + 1);
      return g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
                          "the signaling server at %s enrolled peer-id %s, not this "
                          "agent's %s",
                          c->base_url, shown, c->peer_id);
    }
  *already = again != NULL && json_node_get_boolean (again);
  return NULL;
}

static void
sigreq_finish (SigReq *r, GError *error, long status)
{
  Sigclient *c = r->client;
  switch (r->kind)
    {
    case REQ_SEND:
      {
        gboolean online = FALSE;
        if (error == NULL)
          {
            g_autoptr (JsonParser) parser = json_parser_new_immutable ();
            JsonObject *obj = sigclient_parse_object (r->body_in, parser);
            JsonNode *q = obj ? json_object_get_member (obj, "queued") : NULL;
            JsonNode *o = obj ? json_object_get_member (obj, "online") : NULL;
            if (q == NULL || o == NULL || json_node_get_value_type (q) != G_TYPE_BOOLEAN
                || json_node_get_value_type (o) != G_TYPE_BOOLEAN
                || !json_node_get_boolean (q))
              error = g_error_new (
                  SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
                  "the signaling server at %s did not confirm the message", c->base_url);
            else
              online = json_node_get_boolean (o);
          }
        if (r->send_done != NULL)
          r->send_done (c, online, error, r->user_data);
        break;
      }
    case REQ_ICE:
      {
        SigmsgIceServers *servers = NULL;
        if (error == NULL)
          {
            g_autoptr (GError) perr = NULL;
            servers = sigmsg_ice_servers_parse (sigreq_body (r), r->body_in->len, &perr);
            if (servers == NULL)
              error = g_error_new (
                  SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
                  "bad ICE server list from the signaling server at %s: %s", c->base_url,
                  perr->message);
          }
        r->ice_done (c, servers, error, r->user_data);
        break;
      }
    case REQ_ENROLL:
      {
        gboolean already = FALSE;
        if (error == NULL)
          error = sigreq_enroll_answer (r, &already);
        sigreq_redact_token (r, error);
        r->enroll_done (c, already, error, r->user_data);
        break;
      }
    case REQ_POLL:
    case REQ_DRAIN:
      g_assert_not_reached ();
    }
  g_clear_error (&error);
}

/* --- the receive loop ------------------------------------------------------ */

/* Tells of @error (NULL: success) only when the kind of failure changes: the
 * texts of libcurl vary from one attempt to the next ("after 3 ms"). */
static void
sigclient_note_failure (Sigclient *c, const GError *error, long status)
{
  g_autofree char *text = NULL;
  int kind = error ? 1 + error->code * 1000 + (int)CLAMP (status, 0, 999) : 0;

  if (kind == c->last_failure)
    return;
  c->last_failure = kind;
  if (error == NULL)
    text = g_strdup_printf ("signaling server %s reachable again", c->base_url);
  else if (error->code == SIGCLIENT_ERROR_UNREACHABLE)
    text = g_strdup_printf ("signaling server unreachable, retrying: %s", error->message);
  else
    text = g_strdup_printf ("signaling server failed, retrying: %s", error->message);
  if (c->on_notice)
    c->on_notice (c, error != NULL, text, c->notice_data);
  else
    g_debug ("%s", text);
}

/* Failures that retrying will not cure. */
static gboolean
sigclient_is_fatal (const GError *error, long status)
{
  if (g_error_matches (error, SIGCLIENT_ERROR, SIGCLIENT_ERROR_PIN_MISMATCH)
      || g_error_matches (error, SIGCLIENT_ERROR, SIGCLIENT_ERROR_TLS)
      || g_error_matches (error, SIGCLIENT_ERROR, SIGCLIENT_ERROR_NOT_ENROLLED)
      || g_error_matches (error, SIGCLIENT_ERROR, SIGCLIENT_ERROR_REVOKED))
    return TRUE;
  /* 4xx says that our request is wrong, except 408 and 429 (try later). */
  if (g_error_matches (error, SIGCLIENT_ERROR, SIGCLIENT_ERROR_HTTP))
    return status >= 400 && status < 500 && status != 408 && status != 429;
  return FALSE;
}

static gboolean
sigclient_retry_cb (gpointer data)
{
  Sigclient *c = data;
  g_clear_pointer (&c->retry, g_source_unref);
  sigclient_enter (c);
  sigclient_poll_launch (c);
  sigclient_leave (c);
  return G_SOURCE_REMOVE;
}

/* Schedules the next long-poll after the next backoff step. */
static void
sigclient_poll_later (Sigclient *c)
{
  c->backoff_ms = c->backoff_ms == 0 ? SIGCLIENT_BACKOFF_MIN_MS
                                     : MIN (c->backoff_ms * 2, SIGCLIENT_BACKOFF_MAX_MS);
  /* Jitter of up to a quarter, so that many agents do not retry in step. */
  guint delay
      = c->backoff_ms - (guint)g_random_int_range (0, (gint32)(c->backoff_ms / 4 + 1));
  c->retry = g_timeout_source_new (delay);
  g_source_set_name (c->retry, "p2ptun sigclient retry");
  g_source_set_callback (c->retry, sigclient_retry_cb, c, NULL);
  g_source_attach (c->retry, c->context);
}

static void
sigclient_poll_done (Sigclient *c, SigReq *r, GError *error, long status)
{
  g_autoptr (GPtrArray) msgs = NULL;

  if (error == NULL)
    {
      g_autoptr (GError) perr = NULL;
      msgs = sigmsg_parse_batch (sigreq_body (r), r->body_in->len, &perr);
      if (msgs == NULL)
        error = g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
                             "bad delivery from the signaling server at %s: %s",
                             c->base_url, perr->message);
      else
        g_ptr_array_set_free_func (msgs, (GDestroyNotify)sigmsg_free);
    }

  if (error != NULL && sigclient_is_fatal (error, status))
    {
      c->polling = FALSE;
      if (c->on_fatal != NULL)
        c->on_fatal (c, error, c->user_data);
      g_error_free (error);
      return;
    }
  if (error != NULL)
    {
      sigclient_note_failure (c, error, status);
      g_error_free (error);
      sigclient_poll_later (c);
      return;
    }

  sigclient_note_failure (c, NULL, 0);
  if (msgs->len == 0
      && g_get_monotonic_time () - c->poll_started < SIGCLIENT_POLL_MIN_EMPTY_MS * 1000)
    {
      /* An empty answer long before "wait" ran out: another receive request
       * for our mailbox ended ours (API.md), most likely a second agent
       * with the same identity. Do not let the two chase each other. */
      g_debug ("long-poll ended early without messages; backing off");
      sigclient_poll_later (c);
      return;
    }
  c->backoff_ms = 0;
  for (guint i = 0; i < msgs->len; i++)
    {
      if (c->on_message != NULL)
        c->on_message (c, g_ptr_array_index (msgs, i), c->user_data);
      if (c->dead || !c->polling)
        return;
    }
  sigclient_poll_launch (c);
}

static void
sigclient_poll_launch (Sigclient *c)
{
  if (c->dead || !c->polling || c->poll != NULL || c->retry != NULL)
    return;
  g_autofree char *path = g_strdup_printf ("/v1/peers/%s/messages?wait=%d", c->peer_id,
                                           SIGCLIENT_POLL_WAIT_S);
  c->poll_started = g_get_monotonic_time ();
  c->poll = sigreq_new (c, REQ_POLL, path, NULL, 0);
  if (c->poll->easy == NULL)
    {
      /* Out of memory in libcurl: retry like a network failure. */
      SigReq *r = g_steal_pointer (&c->poll);
      g_hash_table_remove (c->requests, r);
      sigreq_free (r);
      c->backoff_ms = SIGCLIENT_BACKOFF_MAX_MS;
      sigclient_poll_later (c);
    }
}

/* --- sigclient_repoll ------------------------------------------------------ */

/* What p2ptun-signal does with long-polls (signaling/server.c): a receive that
 * finds messages queued takes them at once; one that waits is answered when a
 * message is posted, with everything queued, which leaves the mailbox then.
 * A second receive by the same peer ends the first with an empty list
 * ("signal-owner-evicts"), and so does the first's connection closing: in both
 * cases the queued messages stay for the next receive. So the newest poll
 * always gets what is queued. What can be lost is a message that the server
 * already wrote into the old poll's answer before the new poll reached it:
 * - if the old connection is dead (the case repoll is for), the server cannot
 *   know and the message is gone whatever we do; only an acknowledged delivery
 *   in the protocol would cure that, and the window is the time from the
 *   network change to the new poll's arrival, which repoll makes short;
 * - if it is alive (a repoll for nothing, or an answer already on its way when
 *   we give up), closing it would throw that answer away. So the old poll is
 *   not closed but kept, as REQ_DRAIN, until it ends: the server ends it as
 *   soon as the new poll arrives, and what it brings is delivered; a failure
 *   is only logged. A dead one ends with TCP keepalive (about 10 s). Its
 *   messages were taken before any that the new poll gets. */
static void
sigclient_drain_done (Sigclient *c, SigReq *r, GError *error)
{
  g_autoptr (GPtrArray) msgs = NULL;

  if (error == NULL)
    {
      g_autoptr (GError) perr = NULL;
      msgs = sigmsg_parse_batch (sigreq_body (r), r->body_in->len, &perr);
      if (msgs == NULL)
        error = g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
                             "bad delivery: %s", perr->message);
      else
        g_ptr_array_set_free_func (msgs, (GDestroyNotify)sigmsg_free);
    }
  if (error != NULL)
    {
      g_debug ("superseded long-poll ended: %s", error->message);
      g_error_free (error);
      return;
    }
  g_debug ("superseded long-poll ended with %u message(s)", msgs->len);
  for (guint i = 0; i < msgs->len; i++)
    {
      if (c->dead || !c->polling)
        return;
      if (c->on_message != NULL)
        c->on_message (c, g_ptr_array_index (msgs, i), c->user_data);
    }
}

/* Replaces the long-poll in flight (if any) with a new one, now. */
static void
sigclient_repoll_now (Sigclient *c)
{
  c->repoll_at = g_get_monotonic_time ();
  c->backoff_ms = 0;
  if (c->retry != NULL)
    {
      g_source_destroy (c->retry);
      g_clear_pointer (&c->retry, g_source_unref);
    }
  if (c->poll != NULL)
    {
      SigReq *old = g_steal_pointer (&c->poll);
      if (c->draining < SIGCLIENT_DRAIN_MAX)
        {
          old->kind = REQ_DRAIN;
          c->draining++;
        }
      else
        {
          /* Repolls every 500 ms with none of the old polls ending: they are
           * dead, or the server has ended them and their answers are late. */
          g_hash_table_remove (c->requests, old);
          sigreq_free (old);
        }
    }
  sigclient_poll_launch (c);
}

static gboolean
sigclient_repoll_later_cb (gpointer data)
{
  Sigclient *c = data;
  g_clear_pointer (&c->repoll_later, g_source_unref);
  sigclient_enter (c);
  if (c->polling)
    sigclient_repoll_now (c);
  sigclient_leave (c);
  return G_SOURCE_REMOVE;
}

/* --- finished transfers ---------------------------------------------------- */

void
sigclient_process_done (Sigclient *c)
{
  CURLMsg *m;
  int left;

  while (!c->dead && (m = curl_multi_info_read (c->multi, &left)) != NULL)
    {
      if (m->msg != CURLMSG_DONE)
        continue;
      CURL *e = m->easy_handle;
      CURLcode rc = m->data.result;
      SigReq *r = NULL;
      curl_easy_getinfo (e, CURLINFO_PRIVATE, (char **)&r);
      if (r == NULL || !g_hash_table_contains (c->requests, r))
        continue;
      g_hash_table_steal (c->requests, r);

      long status = 0;
      GError *error = sigreq_error (r, rc, &status);
      /* Done with libcurl before any user callback runs. */
      curl_multi_remove_handle (c->multi, e);
      curl_easy_cleanup (e);
      r->easy = NULL;
      if (r->kind == REQ_POLL)
        {
          g_assert (r == c->poll);
          c->poll = NULL;
          sigclient_poll_done (c, r, error, status);
        }
      else if (r->kind == REQ_DRAIN)
        {
          g_assert (c->draining > 0);
          c->draining--;
          sigclient_drain_done (c, r, error);
        }
      else
        sigreq_finish (r, error, status);
      sigreq_free (r);
    }
}

/* --- early failures -------------------------------------------------------- */

static gboolean
sigreq_early_cb (gpointer data)
{
  SigReq *r = data;
  Sigclient *c = r->client;

  g_clear_pointer (&r->idle, g_source_unref);
  g_hash_table_steal (c->requests, r);
  sigclient_enter (c);
  sigreq_finish (r, g_steal_pointer (&r->early_error), 0);
  sigreq_free (r);
  sigclient_leave (c);
  return G_SOURCE_REMOVE;
}

/* Reports @error for @r from the loop, never from inside the caller's call. */
static void
sigreq_fail_later (SigReq *r, GError *error)
{
  if (r->easy != NULL)
    {
      curl_multi_remove_handle (r->client->multi, r->easy);
      curl_easy_cleanup (r->easy);
      r->easy = NULL;
    }
  r->early_error = error;
  r->idle = g_idle_source_new ();
  g_source_set_callback (r->idle, sigreq_early_cb, r, NULL);
  g_source_attach (r->idle, r->client->context);
}

/* --- public API ------------------------------------------------------------ */

static gboolean
sigclient_pin_is_valid (const char *pin)
{
  /* One or more "sha256//BASE64" separated by ';'. Anything else would make
   * libcurl read a file of that name. */
  g_auto (GStrv) parts = g_strsplit (pin, ";", 0);
  if (parts[0] == NULL || strlen (pin) > SIGCLIENT_PIN_MAX)
    return FALSE;
  for (guint i = 0; parts[i] != NULL; i++)
    {
      const char *b64 = parts[i];
      if (!g_str_has_prefix (b64, "sha256//"))
        return FALSE;
      b64 += strlen ("sha256//");
      /* 32 bytes in base64: 43 characters and one '='. */
      if (strlen (b64) != 44 || b64[43] != '=')
        return FALSE;
      for (guint j = 0; j < 43; j++)
        if (!g_ascii_isalnum (b64[j]) && b64[j] != '+' && b64[j] != '/')
          return FALSE;
    }
  return TRUE;
}

static gboolean
sigclient_url_is_valid (const char *url)
{
  if (strlen (url) > SIGCLIENT_URL_MAX || g_ascii_strncasecmp (url, "https://", 8) != 0
      || url[8] == '\0')
    return FALSE;
  for (const char *p = url; *p != '\0'; p++)
    if (*p <= 0x20 || *p >= 0x7f || *p == '?' || *p == '#')
      return FALSE;
  return TRUE;
}

Sigclient *
sigclient_new (GMainContext *context, const char *url, const char *pin,
               const Identity *identity, GError **error)
{
  g_return_val_if_fail (url != NULL, NULL);
  g_return_val_if_fail (identity != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!sigclient_url_is_valid (url))
    {
      g_autofree char *shown = sigclient_printable (url, 200);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "signaling server URL %s is not an https:// URL", shown);
      return NULL;
    }
  if (pin != NULL && !sigclient_pin_is_valid (pin))
    {
      g_autofree char *shown = sigclient_printable (pin, 200);
      g_set_error (
          error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
          "signaling server pin %s is not of the form sha256//BASE64 (44 characters)",
          shown);
      return NULL;
    }

  sigclient_global_init ();

  Sigclient *c = g_new0 (Sigclient, 1);
  c->context = g_main_context_ref (context ? context : g_main_context_default ());
  c->base_url = g_strdup (url);
  gsize n = strlen (c->base_url);
  while (n > 8 && c->base_url[n - 1] == '/')
    c->base_url[--n] = '\0';
  c->pin = g_strdup (pin);
  c->cert_path = g_strdup (identity->cert_path);
  c->key_path = g_strdup (identity->key_path);
  g_strlcpy (c->peer_id, identity->peer_id, sizeof c->peer_id);
  c->requests = g_hash_table_new (NULL, NULL);

  if (!sigclient_loop_init (c))
    {
      g_set_error (error, SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
                   "cannot initialise libcurl");
      sigclient_free (c);
      return NULL;
    }
  return c;
}

void
sigclient_free (Sigclient *c)
{
  if (c == NULL || c->dead)
    return;
  c->dead = TRUE;
  c->polling = FALSE;
  c->poll = NULL;

  /* Each request leaves the multi handle before it is cleaned up, and the
   * multi handle goes before the socket sources it may still report. */
  if (c->requests != NULL)
    {
      GHashTableIter it;
      gpointer r;
      g_hash_table_iter_init (&it, c->requests);
      while (g_hash_table_iter_next (&it, &r, NULL))
        {
          g_hash_table_iter_steal (&it);
          sigreq_free (r);
        }
      g_hash_table_unref (c->requests);
      c->requests = NULL;
    }
  sigclient_loop_clear (c);
  if (c->retry != NULL)
    {
      g_source_destroy (c->retry);
      g_clear_pointer (&c->retry, g_source_unref);
    }
  if (c->repoll_later != NULL)
    {
      g_source_destroy (c->repoll_later);
      g_clear_pointer (&c->repoll_later, g_source_unref);
    }
  g_clear_pointer (&c->base_url, g_free);
  g_clear_pointer (&c->pin, g_free);
  g_clear_pointer (&c->cert_path, g_free);
  g_clear_pointer (&c->key_path, g_free);
  g_clear_pointer (&c->context, g_main_context_unref);
  if (c->busy == 0)
    g_free (c);
}

void
sigclient_set_notice_func (Sigclient *client, SigclientNoticeFunc on_notice, gpointer user_data)
{
  client->on_notice = on_notice;
  client->notice_data = user_data;
}

void
sigclient_start (Sigclient *client, SigclientMessageFunc on_message,
                 SigclientFatalFunc on_fatal, gpointer user_data)
{
  g_return_if_fail (client != NULL && !client->dead);
  client->on_message = on_message;
  client->on_fatal = on_fatal;
  client->user_data = user_data;
  if (client->polling)
    return;
  client->polling = TRUE;
  client->backoff_ms = 0;
  sigclient_poll_launch (client);
}

void
sigclient_repoll (Sigclient *client)
{
  g_return_if_fail (client != NULL && !client->dead);
  gint64 now = g_get_monotonic_time ();
  gint64 since = now - client->repoll_at;

  client->fresh_until = now + SIGCLIENT_REUSE_MAX_IDLE_S * G_USEC_PER_SEC;
  if (!client->polling || client->repoll_later != NULL)
    return;
  if (client->repoll_at == 0 || since >= SIGCLIENT_REPOLL_MIN_MS * 1000)
    {
      sigclient_repoll_now (client);
      return;
    }
  /* Too soon after the last one. A burst of calls (link down, address gone,
   * address up, route...) ends with the network as it is now, which the poll
   * made at the first call may not have used: one more at the end of the
   * interval, however many calls come before it. */
  guint delay = (guint)((SIGCLIENT_REPOLL_MIN_MS * 1000 - since + 999) / 1000);
  client->repoll_later = g_timeout_source_new (delay);
  g_source_set_name (client->repoll_later, "p2ptun sigclient repoll");
  g_source_set_callback (client->repoll_later, sigclient_repoll_later_cb, client, NULL);
  g_source_attach (client->repoll_later, client->context);
}

void
sigclient_send (Sigclient *client, const char *peer_id, const Sigmsg *msg,
                SigclientSendFunc done, gpointer user_data)
{
  g_return_if_fail (client != NULL && !client->dead);
  g_return_if_fail (peer_id != NULL && msg != NULL);

  gboolean valid = peerid_is_valid (peer_id);
  gsize len = 0;
  char *json = sigmsg_to_json (msg, &len);
  gboolean encoded = json != NULL;
  g_autofree char *path
      = g_strdup_printf ("/v1/peers/%s/messages", valid ? peer_id : "invalid");
  /* Never a NULL body: libcurl would then read the POST data from stdin. */
  SigReq *r = sigreq_new (client, REQ_SEND, path, encoded ? json : g_strdup (""), len);
  r->send_done = done;
  r->user_data = user_data;
  if (!valid)
    {
      g_autofree char *shown = sigclient_printable (peer_id, PEERID_LEN + 1);
      sigreq_fail_later (r, g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                                         "%s is not a valid peer-id", shown));
    }
  else if (!encoded)
    sigreq_fail_later (r, g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
                                       "cannot encode the signaling message"));
  else if (len > SIGMSG_MAX_JSON)
    sigreq_fail_later (
        r, g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
                        "signaling message of %zu bytes is over the limit of %d",
                        (size_t)len, SIGMSG_MAX_JSON));
  else if (r->easy == NULL)
    sigreq_fail_later (r, g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
                                       "cannot start a request (libcurl)"));
}

void
sigclient_get_ice_servers (Sigclient *client, SigclientIceServersFunc done,
                           gpointer user_data)
{
  g_return_if_fail (client != NULL && !client->dead);
  g_return_if_fail (done != NULL);

  SigReq *r = sigreq_new (client, REQ_ICE, "/v1/ice-servers", NULL, 0);
  r->ice_done = done;
  r->user_data = user_data;
  if (r->easy == NULL)
    sigreq_fail_later (r, g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
                                       "cannot start a request (libcurl)"));
}

void
sigclient_enroll (Sigclient *client, const char *token, SigclientEnrollFunc done,
                  gpointer user_data)
{
  g_return_if_fail (client != NULL && !client->dead);
  g_return_if_fail (token != NULL && done != NULL);

  /* Checked before it goes into JSON: the grammar has nothing to escape. */
  gboolean valid = enrolltoken_is_valid (token, strnlen (token, ENROLLTOKEN_LEN + 1));
  char *body = valid ? g_strconcat (SIGCLIENT_ENROLL_BODY_HEAD, token, "\"}", NULL)
                     : g_strdup ("");
  SigReq *r = sigreq_new (client, REQ_ENROLL, "/v1/enroll", body, strlen (body));
  r->enroll_done = done;
  r->user_data = user_data;
  if (!valid)
    sigreq_fail_later (r, g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                                       "not an enrollment token: expected " ENROLLTOKEN_PREFIX
                                       " and 32 characters of a-z and 2-7, as "
                                       "'p2ptun-signal enroll' prints it"));
  else if (r->easy == NULL)
    sigreq_fail_later (r, g_error_new (SIGCLIENT_ERROR, SIGCLIENT_ERROR_PROTOCOL,
                                       "cannot start a request (libcurl)"));
}
