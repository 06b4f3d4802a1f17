/* The HTTPS shell of p2ptun-signal. See server.h and signaling/API.md. */
#include "server-private.h"

#include <string.h>

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "accept.h"
#include "cert.h"
#include "mailbox.h"
#include "metrics.h"
#include "peerid.h"
#include "ratelimit.h"
#include "sigmsg.h"
#include "turnuser.h"


void
signal_reply_json (SoupServerMessage *msg, guint status, char *json, gsize len)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  soup_message_headers_replace (headers, "Cache-Control", "no-store");
  /* Each connection serves one request (accept.h says why). */
  soup_message_headers_replace (headers, "Connection", "close");
  soup_server_message_set_status (
      msg, status,
      status == SIGNAL_STATUS_TOO_MANY_REQUESTS ? "Too Many Requests" : NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, json, len);
}

/* {"error":CODE,"message":TEXT}. Codes and texts are our own constants: no
 * input of the client is ever echoed back. */
void
signal_reply_error (SoupServerMessage *msg, guint status, const char *code, const char *text)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  gsize len = 0;
  char *json;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_add_string_value (b, code);
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, text);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json = json_generator_to_data (gen, &len);
  signal_reply_json (msg, status, json, len);
  g_object_set_data (G_OBJECT (msg), ERROR_CODE_KEY, (gpointer)code);
  g_debug ("%s: %u %s", soup_server_message_get_method (msg), status, code);
}

void
signal_reply_literal (SoupServerMessage *msg, guint status, const char *json)
{
  signal_reply_json (msg, status, g_strdup (json), strlen (json));
}

void
signal_reply_too_large (SoupServerMessage *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);

  signal_reply_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "body-too-large",
               "the body is over 16 KiB");
  /* Whatever still arrives is read and thrown away; the connection ends. */
  soup_message_body_set_accumulate (body, FALSE);
  soup_message_body_truncate (body);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Connection", "close");
}

/* --- long-polls --- */

static void waiter_finish (Waiter *w, gboolean deliver);

static gboolean
waiter_on_timeout (gpointer data)
{
  waiter_finish (data, TRUE);
  return G_SOURCE_REMOVE;
}

/* While a long-poll waits the client has nothing to send: readable means it
 * closed the connection (or broke protocol). Answer now, without handing out
 * messages, so they stay queued for its next receive. */
static gboolean
waiter_on_socket (GSocket *socket, GIOCondition cond, gpointer data)
{
  waiter_finish (data, FALSE);
  return G_SOURCE_REMOVE;
}

static void
waiter_free (Waiter *w)
{
  if (w->timeout != NULL)
    {
      g_source_destroy (w->timeout);
      g_source_unref (w->timeout);
    }
  if (w->watch != NULL)
    {
      g_source_destroy (w->watch);
      g_source_unref (w->watch);
    }
  if (w->finished_id != 0)
    g_signal_handler_disconnect (w->msg, w->finished_id);
  g_object_unref (w->msg);
  g_free (w);
}

/* libsoup finished the message while it was paused: the connection is gone. */
static void
waiter_on_finished (SoupServerMessage *msg, gpointer data)
{
  Waiter *w = data;
  SignalServer *self = w->self;

  g_hash_table_remove (self->waiters, w->peer);
  mailbox_store_set_receiving (self->mailboxes, w->peer, FALSE, g_get_monotonic_time ());
  waiter_free (w);
}

static void
reply_messages (SignalServer *self, SoupServerMessage *msg, const char *peer,
                gboolean deliver, gint64 now)
{
  g_autoptr (GPtrArray) items = NULL;
  gsize len = 0;
  char *json;

  if (deliver)
    items = mailbox_store_take (self->mailboxes, peer, SIGMSG_MAX_BATCH, now);
  else
    items = g_ptr_array_new ();
  json = sigmsg_batch_to_json ((Sigmsg *const *)items->pdata, items->len, &len);
  g_debug ("receive by %.8s…: %u message(s)", peer, items->len);
  signal_reply_json (msg, SOUP_STATUS_OK, json, len);
}

/* Answers the long-poll with the queued messages (or, unless @deliver, with
 * an empty list) and forgets it. */
static void
waiter_finish (Waiter *w, gboolean deliver)
{
  SignalServer *self = w->self;
  gint64 now = g_get_monotonic_time ();

  g_hash_table_remove (self->waiters, w->peer);
  /* Answered here: libsoup's "finished" must not free it a second time. */
  g_signal_handler_disconnect (w->msg, w->finished_id);
  w->finished_id = 0;
  reply_messages (self, w->msg, w->peer, deliver, now);
  soup_server_message_unpause (w->msg);
  mailbox_store_set_receiving (self->mailboxes, w->peer, FALSE, now);
  waiter_free (w);
}

/* Ends the long-poll with an error: its peer was revoked. */
void
signal_waiter_refuse (Waiter *w, const char *code, const char *text)
{
  SignalServer *self = w->self;

  g_hash_table_remove (self->waiters, w->peer);
  g_signal_handler_disconnect (w->msg, w->finished_id);
  w->finished_id = 0;
  signal_reply_error (w->msg, SOUP_STATUS_FORBIDDEN, code, text);
  soup_server_message_unpause (w->msg);
  mailbox_store_set_receiving (self->mailboxes, w->peer, FALSE, g_get_monotonic_time ());
  waiter_free (w);
}

static void
waiter_start (SignalServer *self, SoupServerMessage *msg, const char *peer, guint wait_s)
{
  Waiter *w = g_new0 (Waiter, 1);
  GSocket *socket = signal_accept_socket_of (
      self->accept, soup_server_message_get_remote_address (msg));

  w->self = self;
  w->msg = g_object_ref (msg);
  g_strlcpy (w->peer, peer, sizeof w->peer);

  /* Not _seconds: that one rounds to the next whole second and can fire
   * early, and a client is promised the whole wait. */
  w->timeout = g_timeout_source_new ((guint) wait_s * 1000);
  g_source_set_callback (w->timeout, waiter_on_timeout, w, NULL);
  g_source_attach (w->timeout, self->ctx);
  if (socket != NULL)
    {
      w->watch = g_socket_create_source (socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
      g_source_set_callback (w->watch, G_SOURCE_FUNC (waiter_on_socket), w, NULL);
      g_source_attach (w->watch, self->ctx);
    }
  w->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (waiter_on_finished), w);
  g_hash_table_insert (self->waiters, w->peer, w);
  soup_server_message_pause (msg);
}

/* --- requests --- */

static void
handle_post (SignalServer *self, SoupServerMessage *msg, const char *caller,
             const char *address, const char *to, gint64 now)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (Sigmsg) m = NULL;
  g_autoptr (GError) error = NULL;
  const char *data;
  gsize len = 0;
  gboolean online;
  Waiter *w;

  if (body->length < 0 || (guint64)body->length > SIGNAL_BODY_MAX)
    {
      signal_reply_too_large (msg);
      return;
    }
  bytes = soup_message_body_flatten (body);
  data = g_bytes_get_data (bytes, &len);
  m = sigmsg_parse (data != NULL ? data : "", len, FALSE, &error);
  if (m == NULL)
    {
      g_debug ("message from %.8s… refused: %s", caller, error->message);
      if (g_error_matches (error, SIGMSG_ERROR, SIGMSG_ERROR_TOO_LARGE))
        signal_reply_too_large (msg);
      else
        signal_reply_error (msg, SOUP_STATUS_BAD_REQUEST, "bad-message",
                     "the body is not a valid signaling message");
      return;
    }
  /* The sender is who the TLS handshake proved, never what it claims. */
  g_strlcpy (m->from, caller, sizeof m->from);

  switch (mailbox_store_post (self->mailboxes, to, caller, address, g_steal_pointer (&m),
                              now))
    {
    case MAILBOX_OK:
      break;
    case MAILBOX_FULL:
      signal_reply_error (msg, SIGNAL_STATUS_TOO_MANY_REQUESTS, "mailbox-full",
                   "the recipient already has 1024 queued messages");
      return;
    case MAILBOX_SHARE_FULL:
      signal_reply_error (msg, SIGNAL_STATUS_TOO_MANY_REQUESTS, "mailbox-full",
                   "you (64) or your address (256) already have that many messages "
                   "queued for the recipient");
      return;
    case MAILBOX_OVER_BUDGET:
      signal_reply_error (msg, SIGNAL_STATUS_TOO_MANY_REQUESTS, "over-budget",
                   "you or your address already queued messages for too many peers "
                   "that are not connected, or too many messages in all");
      return;
    case MAILBOX_TOO_MANY_PEERS:
    default:
      signal_reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "too-many-peers",
                   "the server holds mailboxes for its maximum number of peers");
      return;
    }

  online = mailbox_store_is_online (self->mailboxes, to, now);
  w = g_hash_table_lookup (self->waiters, to);
  if (w != NULL)
    waiter_finish (w, TRUE);
  signal_reply_literal (msg, SOUP_STATUS_ACCEPTED,
                 online ? "{\"queued\":true,\"online\":true}"
                        : "{\"queued\":true,\"online\":false}");
  g_debug ("message from %.8s… to %.8s… queued", caller, to);
}

/* The texts of handle_post's errors say these limits. */
G_STATIC_ASSERT (MAILBOX_DEFAULT_QUEUE_MAX == 1024);
G_STATIC_ASSERT (MAILBOX_DEFAULT_SENDER_MAX == 64);
G_STATIC_ASSERT (MAILBOX_DEFAULT_ADDRESS_MAX == 256);

/* "wait=N", N a decimal integer 0..30; absent means the default. */
static gboolean
parse_wait (GHashTable *query, guint *wait_s)
{
  const char *value = query != NULL ? g_hash_table_lookup (query, "wait") : NULL;
  guint64 n;

  if (value == NULL)
    {
      *wait_s = SIGNAL_WAIT_DEFAULT;
      return TRUE;
    }
  if (value[0] < '0' || value[0] > '9'
      || !g_ascii_string_to_unsigned (value, 10, 0, SIGNAL_WAIT_MAX, &n, NULL))
    return FALSE;
  *wait_s = (guint)n;
  return TRUE;
}

static void
handle_get (SignalServer *self, SoupServerMessage *msg, GHashTable *query,
            const char *caller, const char *owner, gint64 now)
{
  guint wait_s;
  Waiter *previous;

  if (!peerid_equal (caller, owner))
    {
      signal_reply_error (msg, SOUP_STATUS_FORBIDDEN, "forbidden",
                   "only the owner of a mailbox may read it");
      return;
    }
  if (!parse_wait (query, &wait_s))
    {
      signal_reply_error (msg, SOUP_STATUS_BAD_REQUEST, "bad-request",
                   "wait must be a whole number of seconds from 0 to 30");
      return;
    }
  /* API.md: a second receive by the same peer ends the first one. */
  previous = g_hash_table_lookup (self->waiters, owner);
  if (previous != NULL)
    waiter_finish (previous, FALSE);

  if (mailbox_store_set_receiving (self->mailboxes, owner, TRUE, now) != MAILBOX_OK)
    {
      signal_reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "too-many-peers",
                   "the server holds mailboxes for its maximum number of peers");
      return;
    }
  if (wait_s == 0 || mailbox_store_queued (self->mailboxes, owner) > 0)
    {
      reply_messages (self, msg, owner, TRUE, now);
      mailbox_store_set_receiving (self->mailboxes, owner, FALSE, now);
      return;
    }
  waiter_start (self, msg, owner, wait_s);
}

/* "/v1/peers/<id>/messages": returns the <id> segment (which may still be
 * invalid), or NULL for any other path. */
static char *
route_peer_messages (const char *path)
{
  const char *id, *slash;

  if (!g_str_has_prefix (path, PEERS_PREFIX))
    return NULL;
  id = path + strlen (PEERS_PREFIX);
  slash = strchr (id, '/');
  if (slash == NULL || strcmp (slash, MESSAGES_SUFFIX) != 0)
    return NULL;
  return g_strndup (id, (gsize)(slash - id));
}

/* The peer-id of a connection's client certificate, taken once after its
 * TLS handshake (on_accepted), is kept on the remote address that libsoup
 * hands back with each of its messages. */
#define PEER_ID_KEY "p2ptun-peer-id"

static gboolean
signal_request_peer_id (SoupServerMessage *msg, char caller[static PEERID_SIZE])
{
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);
  const char *known = remote ? g_object_get_data (G_OBJECT (remote), PEER_ID_KEY) : NULL;

  if (known == NULL)
    return FALSE;
  g_strlcpy (caller, known, PEERID_SIZE);
  return TRUE;
}

/* The TURN REST credentials of coturn's use-auth-secret for @caller:
 * username "EXPIRY:PEER-ID" with the caller's relay policy as options
 * (proto/turnuser.h), password base64(HMAC-SHA1(secret, username)). */
static SigmsgTurnServer *
turn_server_for (const SignalServer *self, const char *uri, const char *caller)
{
  SigmsgTurnServer *t = g_new0 (SigmsgTurnServer, 1);
  gint64 expiry = g_get_real_time () / G_USEC_PER_SEC + (gint64) self->turn_ttl;
  g_autoptr (GHmac) hmac = g_hmac_new (G_CHECKSUM_SHA1, (const guchar *) self->turn_secret,
                                       strlen (self->turn_secret));
  guint8 digest[20];
  gsize digest_len = sizeof digest;
  AccessPolicy policy;

  t->uri = g_strdup (uri);
  if (self->turn_pin != NULL && g_str_has_prefix (uri, "turns:"))
    t->pin = g_strdup (self->turn_pin);
  policy = access_store_policy_for (self->access, caller);
  t->username = turnuser_format (expiry, caller, policy.max_allocations, policy.max_bps);
  g_assert (t->username != NULL); /* caller is the peer-id of a checked key */
  g_hmac_update (hmac, (const guchar *) t->username, (gssize) strlen (t->username));
  g_hmac_get_digest (hmac, digest, &digest_len);
  t->password = g_base64_encode (digest, digest_len);
  return t;
}

/* /v1/ice-servers for @caller: the STUN list and, per relay, credentials of
 * the caller's own (computed per request). */
static char *
ice_servers_json (const SignalServer *self, const char *caller, gsize *len)
{
  g_autoptr (SigmsgIceServers) ice = sigmsg_ice_servers_new ();

  for (gsize i = 0; self->stun != NULL && self->stun[i] != NULL; i++)
    g_ptr_array_add (ice->stun, g_strdup (self->stun[i]));
  for (gsize i = 0; self->turn != NULL && self->turn[i] != NULL; i++)
    g_ptr_array_add (ice->turn, turn_server_for (self, self->turn[i], caller));
  return sigmsg_ice_servers_to_json (ice, len);
}

static void
on_request (SoupServer *soup, SoupServerMessage *msg, const char *path, GHashTable *query,
            gpointer data)
{
  SignalServer *self = data;
  const char *method = soup_server_message_get_method (msg);
  const char *remote = soup_server_message_get_remote_host (msg);
  gint64 now = g_get_monotonic_time ();
  char caller[PEERID_SIZE] = "";
  gboolean authenticated;
  g_autofree char *peer = NULL;
  gboolean allowed;

  signal_accept_request_read (self->accept, soup_server_message_get_remote_address (msg));
  authenticated = signal_request_peer_id (msg, caller);
  if (authenticated)
    allowed = ratelimit_allow (self->peer_limits, caller, now);
  else
    allowed = ratelimit_allow (self->addr_limits, remote != NULL ? remote : "", now);
  if (!allowed)
    {
      signal_reply_error (msg, SIGNAL_STATUS_TOO_MANY_REQUESTS, "rate-limited",
                   "too many requests; slow down");
      return;
    }

  if (strcmp (path, "/healthz") == 0)
    {
      if (method == SOUP_METHOD_GET || method == SOUP_METHOD_HEAD)
        signal_reply_literal (msg, SOUP_STATUS_OK, "{\"status\":\"ok\"}");
      else
        signal_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method-not-allowed",
                     "this path takes GET");
      return;
    }
  if (!g_str_has_prefix (path, "/v1/"))
    {
      signal_reply_error (msg, SOUP_STATUS_NOT_FOUND, "not-found", "no such path");
      return;
    }
  if (!authenticated)
    {
      signal_reply_error (msg, SOUP_STATUS_UNAUTHORIZED, "unauthenticated",
                   "present the agent's client certificate");
      return;
    }

  if (strcmp (path, "/v1/enroll") == 0)
    {
      signal_handle_enroll (self, msg, caller, remote != NULL ? remote : "");
      return;
    }
  {
    AccessVerdict verdict = signal_access_admit (self, msg, caller);

    if (verdict != ACCESS_ADMITTED)
      {
        signal_reply_not_admitted (msg, verdict, caller);
        return;
      }
  }

  if (strcmp (path, "/v1/ice-servers") == 0)
    {
      if (method == SOUP_METHOD_GET)
        {
          gsize len = 0;
          char *json = ice_servers_json (self, caller, &len);

          signal_reply_json (msg, SOUP_STATUS_OK, json, len);
        }
      else
        signal_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method-not-allowed",
                     "this path takes GET");
      return;
    }

  peer = route_peer_messages (path);
  if (peer == NULL)
    {
      signal_reply_error (msg, SOUP_STATUS_NOT_FOUND, "not-found", "no such path");
      return;
    }
  if (method != SOUP_METHOD_GET && method != SOUP_METHOD_POST)
    {
      signal_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method-not-allowed",
                   "this path takes GET or POST");
      return;
    }
  if (!peerid_is_valid (peer))
    {
      signal_reply_error (msg, SOUP_STATUS_BAD_REQUEST, "bad-peer-id",
                   "the path does not name a valid peer-id");
      return;
    }
  if (method == SOUP_METHOD_POST && !self->open
      && access_store_check (self->access, peer) != ACCESS_ADMITTED)
    {
      signal_reply_error (msg, SOUP_STATUS_NOT_FOUND, "unknown-peer",
                   "the recipient is not enrolled on this signaling server");
      return;
    }
  if (method == SOUP_METHOD_POST)
    handle_post (self, msg, caller, remote != NULL ? remote : "", peer, now);
  else
    handle_get (self, msg, query, caller, peer, now);
}

/* Runs when the request headers are in, before the body is read: a body
 * announced too large is refused without being stored. */
static void
on_early_request (SoupServer *soup, SoupServerMessage *msg, const char *path,
                  GHashTable *query, gpointer data)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);

  if (soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH
      && soup_message_headers_get_content_length (headers) > SIGNAL_BODY_MAX)
    signal_reply_too_large (msg);
}

/* A chunked body has no announced length: count it as it arrives. */
static void
on_got_chunk (SoupServerMessage *msg, GBytes *chunk, gpointer data)
{
  SignalServer *self = data;
  gsize total = GPOINTER_TO_SIZE (g_object_get_data (G_OBJECT (msg), BODY_SIZE_KEY));

  total += MIN (g_bytes_get_size (chunk), G_MAXSIZE - total);
  g_object_set_data (G_OBJECT (msg), BODY_SIZE_KEY, GSIZE_TO_POINTER (total));
  if (total > SIGNAL_BODY_MAX && soup_server_message_get_status (msg) == 0)
    signal_reply_too_large (msg);
  if (total > SIGNAL_BODY_DISCARD_MAX)
    {
      GSocket *socket = signal_accept_socket_of (
          self->accept, soup_server_message_get_remote_address (msg));

      /* Closing with unread data makes the kernel reset the connection, so
       * the client stops sending at once (RFC 2525 section 2.17); a mere
       * shutdown would leave it writing into a closed window. */
      if (socket != NULL)
        g_socket_close (socket, NULL);
    }
}

static void
on_disconnected (SoupServerMessage *msg, gpointer data)
{
  SignalServer *self = data;

  signal_accept_closed (self->accept, soup_server_message_get_remote_address (msg));
}

/* An answer was written (or the client went away: status 0, not counted). */
static void
on_finished (SoupServerMessage *msg, gpointer data)
{
  SignalServer *self = data;
  guint status = soup_server_message_get_status (msg);
  GUri *uri = soup_server_message_get_uri (msg);

  if (status == 0)
    return;
  signal_metrics_answer (self->metrics, status,
                         g_object_get_data (G_OBJECT (msg), ERROR_CODE_KEY),
                         uri != NULL && strcmp (g_uri_get_path (uri), "/v1/enroll") == 0);
}

GString *
signal_server_metrics_text (gpointer data)
{
  SignalServer *self = data;
  SignalMetricsState state = {
    .mailboxes = mailbox_store_stats (self->mailboxes),
    .n_mailboxes = mailbox_store_size (self->mailboxes),
    .n_receiving = g_hash_table_size (self->waiters),
  };

  return signal_metrics_render (self->metrics, &state);
}

static void
on_request_started (SoupServer *soup, SoupServerMessage *msg, gpointer data)
{
  g_signal_connect (msg, "finished", G_CALLBACK (on_finished), data);
  g_signal_connect (msg, "got-chunk", G_CALLBACK (on_got_chunk), data);
  g_signal_connect (msg, "disconnected", G_CALLBACK (on_disconnected), data);
}

/* A connection whose TLS handshake is done: its client's peer-id, if it
 * showed a certificate, goes with it to libsoup. */
static void
on_accepted (GIOStream *stream, GSocketAddress *local, GSocketAddress *remote,
             gpointer data)
{
  SignalServer *self = data;
  GTlsCertificate *cert
      = g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (stream));
  char peer[PEERID_SIZE];

  if (cert != NULL && signal_cert_peer_id (cert, peer))
    {
      g_object_set_data_full (G_OBJECT (remote), PEER_ID_KEY, g_strdup (peer), g_free);
      /* Validity dates and signatures up the chain the client sent, to the CA. */
      if (self->client_ca != NULL && g_tls_certificate_verify (cert, NULL, self->client_ca) == 0)
        g_object_set_data (G_OBJECT (remote), CA_ADMITS_KEY, GINT_TO_POINTER (1));
    }
  /* libsoup attaches the connection's sources to the thread-default context. */
  g_main_context_push_thread_default (self->ctx);
  soup_server_accept_iostream (self->soup, stream, local, remote, NULL);
  g_main_context_pop_thread_default (self->ctx);
}

static gboolean
on_prune (gpointer data)
{
  SignalServer *self = data;
  gint64 now = g_get_monotonic_time ();
  guint dropped = mailbox_store_prune (self->mailboxes, now);

  if (dropped > 0)
    g_debug ("dropped %u expired message(s)", dropped);
  ratelimit_prune (self->peer_limits, now);
  ratelimit_prune (self->addr_limits, now);
  ratelimit_prune (self->enroll_limits, now);
  return G_SOURCE_CONTINUE;
}

SignalServer *
signal_server_new (GMainContext *ctx, const SignalServerConfig *config,
                   GTlsCertificate *cert)
{
  SignalServer *self;
  MailboxLimits limits = {
    .queue_max = MAILBOX_DEFAULT_QUEUE_MAX,
    .sender_max = MAILBOX_DEFAULT_SENDER_MAX,
    .address_max = MAILBOX_DEFAULT_ADDRESS_MAX,
    .peers_max = config->max_peers,
    .unclaimed_per_sender = MAILBOX_DEFAULT_UNCLAIMED_PER_SENDER,
    .unclaimed_per_address = MAILBOX_DEFAULT_UNCLAIMED_PER_ADDRESS,
    .queued_per_address = MAILBOX_DEFAULT_QUEUED_PER_ADDRESS,
    .max_age_us = MAILBOX_DEFAULT_MAX_AGE_US,
    .online_us = MAILBOX_DEFAULT_ONLINE_US,
  };

  g_return_val_if_fail (config != NULL && G_IS_TLS_CERTIFICATE (cert), NULL);

  self = g_new0 (SignalServer, 1);
  self->ctx
      = ctx != NULL ? g_main_context_ref (ctx) : g_main_context_ref_thread_default ();
  self->mailboxes = mailbox_store_new (&limits, (GDestroyNotify)sigmsg_free);
  self->metrics = signal_metrics_new ();
  self->peer_limits = ratelimit_new (config->rate, config->burst, SIGNAL_RATE_KEYS_MAX);
  self->addr_limits = ratelimit_new (config->rate, config->burst, SIGNAL_RATE_KEYS_MAX);
  self->stun = g_strdupv ((char **) config->stun);
  self->turn = g_strdupv ((char **) config->turn);
  g_return_val_if_fail (self->turn == NULL || config->turn_secret != NULL, NULL);
  self->turn_secret = g_strdup (config->turn_secret);
  self->turn_ttl = config->turn_ttl;
  self->turn_pin = g_strdup (config->turn_pin);
  self->waiters = g_hash_table_new (g_str_hash, g_str_equal);
  self->access = config->access != NULL ? config->access : access_store_new ();
  self->state_dir = g_strdup (config->state_dir);
  self->open = config->open;
  self->client_ca = config->client_ca != NULL ? g_object_ref (config->client_ca) : NULL;
  self->enroll_limits
      = ratelimit_new (SIGNAL_ENROLL_RATE, SIGNAL_ENROLL_BURST, SIGNAL_RATE_KEYS_MAX);
  self->save_timer = g_timeout_source_new_seconds (SIGNAL_SAVE_INTERVAL_S);
  g_source_set_callback (self->save_timer, signal_access_on_save_timer, self, NULL);
  g_source_attach (self->save_timer, self->ctx);

  /* libsoup does HTTP only: accept.c owns the socket and the TLS. */
  self->soup = soup_server_new (NULL, NULL);
  g_signal_connect (self->soup, "request-started", G_CALLBACK (on_request_started), self);
  soup_server_add_early_handler (self->soup, NULL, on_early_request, self, NULL);
  soup_server_add_handler (self->soup, NULL, on_request, self, NULL);

  self->prune_timer = g_timeout_source_new_seconds (SIGNAL_PRUNE_INTERVAL_S);
  g_source_set_callback (self->prune_timer, on_prune, self, NULL);
  g_source_attach (self->prune_timer, self->ctx);
  self->accept
      = signal_accept_new (self->ctx, cert, &config->connections, on_accepted, self);
  return self;
}

gboolean
signal_server_listen (SignalServer *self, GSocketAddress *address, guint16 *bound_port,
                      GError **error)
{
  return signal_accept_listen (self->accept, address, bound_port, error);
}

void
signal_server_free (SignalServer *self)
{
  GHashTableIter iter;
  gpointer value;

  if (self == NULL)
    return;
  if (self->waiters != NULL)
    {
      g_hash_table_iter_init (&iter, self->waiters);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        {
          g_hash_table_iter_steal (&iter);
          waiter_free (value);
        }
      g_hash_table_destroy (self->waiters);
    }
  signal_accept_free (self->accept);
  if (self->soup != NULL)
    {
      soup_server_disconnect (self->soup);
      g_object_unref (self->soup);
    }
  if (self->prune_timer != NULL)
    {
      g_source_destroy (self->prune_timer);
      g_source_unref (self->prune_timer);
    }
  if (self->save_timer != NULL)
    {
      g_source_destroy (self->save_timer);
      g_source_unref (self->save_timer);
    }
  if (self->access != NULL)
    signal_access_save (self);
  access_store_free (self->access);
  g_free (self->state_dir);
  g_clear_object (&self->client_ca);
  ratelimit_free (self->enroll_limits);
  mailbox_store_free (self->mailboxes);
  signal_metrics_free (self->metrics);
  ratelimit_free (self->peer_limits);
  ratelimit_free (self->addr_limits);
  g_strfreev (self->stun);
  g_strfreev (self->turn);
  g_free (self->turn_pin);
  if (self->turn_secret != NULL)
    {
      memset (self->turn_secret, 0, strlen (self->turn_secret));
      g_free (self->turn_secret);
    }
  if (self->ctx != NULL)
    g_main_context_unref (self->ctx);
  g_free (self);
}
