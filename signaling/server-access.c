/* Admission, enrollment and the operator's requests of p2ptun-signal: the
 * access state (access.h) seen from the HTTPS shell. See server-private.h. */
#include "server-private.h"

#include <string.h>

#include <openssl/crypto.h>

#include "accessfile.h"
#include "admin.h"

static gint64
unix_now (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

/* Writes access.json if anything changed; FALSE (said why) when it cannot. */
gboolean
signal_access_save (SignalServer *self)
{
  g_autoptr (GError) error = NULL;

  if (!self->access_dirty || self->state_dir == NULL)
    return TRUE;
  if (!access_file_save (self->state_dir, self->access, &error))
    {
      g_warning ("cannot save the access state (again in %d s): %s", SIGNAL_SAVE_INTERVAL_S,
                 error->message);
      return FALSE;
    }
  self->access_dirty = FALSE;
  return TRUE;
}

void
signal_server_flush (SignalServer *self)
{
  signal_access_save (self);
}

gboolean
signal_access_on_save_timer (gpointer data)
{
  signal_access_save (data);
  return G_SOURCE_CONTINUE;
}

/* Whether @caller may use the server; notes that it was seen. A peer-id
 * whose certificate the client CA signed is enrolled on first sight. */
AccessVerdict
signal_access_admit (SignalServer *self, SoupServerMessage *msg, const char *caller)
{
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);
  gint64 now = unix_now ();
  AccessVerdict verdict = access_store_check (self->access, caller);

  if (verdict == ACCESS_NOT_ENROLLED && remote != NULL
      && g_object_get_data (G_OBJECT (remote), CA_ADMITS_KEY) != NULL
      && access_store_enroll (self->access, caller, "client-ca", NULL, now, NULL))
    {
      g_message ("enrolled %.8s… by its client CA certificate", caller);
      verdict = ACCESS_ADMITTED;
      self->access_dirty = TRUE;
      signal_access_save (self);
    }
  if (verdict != ACCESS_REVOKED && access_store_saw (self->access, caller, now))
    self->access_dirty = TRUE; /* a new peer-id in the seen list */
  if (verdict == ACCESS_ADMITTED)
    self->access_dirty = TRUE; /* its last-seen time */
  if (verdict == ACCESS_NOT_ENROLLED && self->open)
    return ACCESS_ADMITTED;
  return verdict;
}

void
signal_reply_not_admitted (SoupServerMessage *msg, AccessVerdict verdict, const char *caller)
{
  g_autofree char *text = NULL;

  if (verdict == ACCESS_REVOKED)
    {
      text = g_strdup_printf ("the operator of this signaling server revoked this agent "
                              "(peer-id %s)", caller);
      signal_reply_error (msg, SOUP_STATUS_FORBIDDEN, "revoked", text);
      return;
    }
  /* The peer-id is the hash of the caller's key: 52 characters of a-z2-7. */
  text = g_strdup_printf ("this signaling server does not know this agent (peer-id %s); "
                          "ask its operator for an enrollment token, then run "
                          "`p2ptun-agent enroll`", caller);
  signal_reply_error (msg, SOUP_STATUS_FORBIDDEN, "not-enrolled", text);
}

/* POST /v1/enroll {"token":"..."}: the token is never logged. */
void
signal_handle_enroll (SignalServer *self, SoupServerMessage *msg, const char *caller,
               const char *remote)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr (GBytes) bytes = NULL;
  guint8 token[ACCESS_TOKEN_RAW_LEN];
  const char *data;
  gsize len = 0;
  gboolean well_formed;
  g_autofree char *json = NULL;

  if (soup_server_message_get_method (msg) != SOUP_METHOD_POST)
    {
      signal_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method-not-allowed",
                   "this path takes POST");
      return;
    }
  if (!ratelimit_allow (self->enroll_limits, remote, g_get_monotonic_time ()))
    {
      signal_reply_error (msg, SIGNAL_STATUS_TOO_MANY_REQUESTS, "rate-limited",
                   "too many enrollment tries from your address; wait a few seconds");
      return;
    }
  if (body->length < 0 || (guint64) body->length > SIGNAL_BODY_MAX)
    {
      signal_reply_too_large (msg);
      return;
    }
  bytes = soup_message_body_flatten (body);
  data = g_bytes_get_data (bytes, &len);
  well_formed = access_enroll_body_parse (data, len, token);
  if (!well_formed)
    {
      signal_reply_error (msg, SOUP_STATUS_FORBIDDEN, "bad-token",
                   "the enrollment token is not valid: unknown, malformed, expired, used "
                   "up or cancelled");
      return;
    }
  switch (access_store_redeem (self->access, token, caller, unix_now ()))
    {
    case ACCESS_REDEEM_ENROLLED:
      OPENSSL_cleanse (token, sizeof token);
      self->access_dirty = TRUE;
      if (!signal_access_save (self))
        {
          signal_reply_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "internal",
                       "the server cannot store the enrollment now; try again later");
          return;
        }
      g_message ("enrolled %.8s… with a token", caller);
      json = g_strdup_printf ("{\"enrolled\":true,\"peer_id\":\"%s\"}", caller);
      signal_reply_literal (msg, SOUP_STATUS_OK, json);
      return;
    case ACCESS_REDEEM_ALREADY:
      json = g_strdup_printf ("{\"enrolled\":true,\"already\":true,\"peer_id\":\"%s\"}",
                              caller);
      signal_reply_literal (msg, SOUP_STATUS_OK, json);
      break;
    case ACCESS_REDEEM_REVOKED:
      signal_reply_not_admitted (msg, ACCESS_REVOKED, caller);
      break;
    case ACCESS_REDEEM_FULL:
      signal_reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "too-many-peers",
                   "the server holds its maximum number of enrolled peers");
      break;
    case ACCESS_REDEEM_BAD_TOKEN:
    default:
      signal_reply_error (msg, SOUP_STATUS_FORBIDDEN, "bad-token",
                   "the enrollment token is not valid: unknown, malformed, expired, used "
                   "up or cancelled");
      break;
    }
  OPENSSL_cleanse (token, sizeof token);
}

static gboolean
admin_is_online (const char *peer, gpointer data)
{
  SignalServer *self = data;

  return mailbox_store_is_online (self->mailboxes, peer, g_get_monotonic_time ());
}

/* A revoked peer loses at once what it has open here. */
static void
admin_revoked (const char *peer, gpointer data)
{
  SignalServer *self = data;
  Waiter *w = g_hash_table_lookup (self->waiters, peer);
  g_autofree char *text = g_strdup_printf ("the operator of this signaling server revoked "
                                           "this agent (peer-id %s)", peer);

  if (w != NULL)
    signal_waiter_refuse (w, "revoked", text);
  mailbox_store_drop (self->mailboxes, peer);
  g_message ("revoked %.8s…", peer);
}

char *
signal_server_admin (const char *request, gsize len, gsize *reply_len, gpointer data)
{
  SignalServer *self = data;
  AdminHooks hooks = { admin_is_online, admin_revoked, self };
  gboolean changed = FALSE;
  char *reply = admin_run (self->access, request, len, unix_now (), &hooks, &changed,
                           reply_len);

  if (changed)
    {
      self->access_dirty = TRUE;
      if (!signal_access_save (self))
        {
          g_free (reply);
          reply = g_strdup ("{\"ok\":false,\"error\":\"the change is made in the running "
                            "server, but access.json cannot be written (see the server's "
                            "log); it is tried again every minute\"}");
          *reply_len = strlen (reply);
        }
    }
  return reply;
}

