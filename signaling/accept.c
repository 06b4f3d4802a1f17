/* Accepting the connections of p2ptun-signal. See accept.h. */
#include "accept.h"

#include <errno.h>
#include <sys/socket.h>

#include "tlshello.h"

GQuark
signal_accept_error_quark (void)
{
  return g_quark_from_static_string ("p2ptun-signal-accept-error-quark");
}

#define ACCEPT_LISTEN_BACKLOG 128
/* Connections taken per wakeup of the listening socket, so that a burst of
 * them does not starve the rest of the loop. */
#define ACCEPT_BATCH_MAX 64
/* A ClientHello that came in part is looked at again after this long: the
 * socket stays readable while it is only peeked at. */
#define ACCEPT_HELLO_RETRY_MS 20
/* How often deadlines and closed connections are looked at. */
#define ACCEPT_SWEEP_MS 250

/* Object data on the remote address handed on with a connection. */
#define ACCEPT_ID_KEY "p2ptun-accept-id"

typedef enum
{
  ACCEPT_HELLO,        /* waiting for a whole ClientHello */
  ACCEPT_HANDSHAKE,    /* TLS handshake running */
  ACCEPT_WAIT_REQUEST, /* handed on; its first request not read yet */
  ACCEPT_SERVING,      /* handed on, request read */
  ACCEPT_SHUT,         /* handed on, shut down by a deadline */
} AcceptState;

typedef struct
{
  guint conns;
  guint handshakes;
} AcceptAddress;

typedef struct
{
  SignalAccept *self; /* NULL once the acceptor is gone */
  gsize id;
  char *address; /* the client's IP address, as text */
  AcceptState state;
  gint64 accepted_at;
  GSocketConnection *tcp;
  GIOStream *tls;
  GSocketAddress *local;
  GSocketAddress *remote;
  GSource *hello_source; /* the socket watch, or the retry timer */
  GCancellable *cancel;  /* of the handshake */
} AcceptConn;

struct _SignalAccept
{
  GMainContext *ctx;
  GTlsCertificate *cert;
  SignalAcceptLimits limits;
  SignalAcceptFunc func;
  gpointer data;
  GSocket *listener;
  GSource *listen_source;
  GSource *sweep;
  GHashTable *conns;     /* id -> AcceptConn* (owned by hand) */
  GHashTable *addresses; /* address text -> AcceptAddress* (both owned) */
  gsize next_id;
};

static void accept_conn_hello_wait (AcceptConn *c);
static gboolean accept_on_hello_retry (gpointer data);

static AcceptAddress *
accept_address (SignalAccept *self, const char *address)
{
  AcceptAddress *a = g_hash_table_lookup (self->addresses, address);

  if (a == NULL)
    {
      a = g_new0 (AcceptAddress, 1);
      g_hash_table_insert (self->addresses, g_strdup (address), a);
    }
  return a;
}

static void
accept_source_clear (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

/* Forgets @c: releases its counts and references. A connection not yet
 * handed on is closed; one that HTTP holds is HTTP's to close. */
static void
accept_conn_free (AcceptConn *c)
{
  SignalAccept *self = c->self;

  accept_source_clear (&c->hello_source);
  if (c->state == ACCEPT_HELLO || c->state == ACCEPT_HANDSHAKE)
    g_socket_close (g_socket_connection_get_socket (c->tcp), NULL);
  if (self != NULL)
    {
      AcceptAddress *a = accept_address (self, c->address);

      g_hash_table_remove (self->conns, GSIZE_TO_POINTER (c->id));
      if (--a->conns == 0)
        g_hash_table_remove (self->addresses, c->address);
    }
  g_clear_object (&c->cancel);
  g_clear_object (&c->tls);
  g_clear_object (&c->tcp);
  g_clear_object (&c->local);
  g_clear_object (&c->remote);
  g_free (c->address);
  g_free (c);
}

/* Client certificates are self-signed: who they are is their public key (the
 * peer-id), checked per request, so every certificate is accepted. The
 * handshake itself proves that the client holds the private key. */
static gboolean
accept_on_certificate (GTlsConnection *tls, GTlsCertificate *cert,
                       GTlsCertificateFlags errors, gpointer data)
{
  return TRUE;
}

static void
accept_on_handshake (GObject *source, GAsyncResult *result, gpointer data)
{
  AcceptConn *c = data;
  SignalAccept *self = c->self;
  g_autoptr (GError) error = NULL;
  gboolean ok
      = g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error);

  if (self == NULL)
    {
      accept_conn_free (c);
      return;
    }
  accept_address (self, c->address)->handshakes--;
  if (!ok)
    {
      g_debug ("TLS handshake with %s failed: %s", c->address, error->message);
      accept_conn_free (c);
      return;
    }
  /* RFC 8996: nothing older than TLS 1.2. main() already tells GnuTLS so;
   * this holds with any other TLS backend of GIO too. */
  if (g_tls_connection_get_protocol_version (G_TLS_CONNECTION (c->tls))
      < G_TLS_PROTOCOL_VERSION_TLS_1_2)
    {
      g_debug ("TLS with %s: version below 1.2 refused", c->address);
      accept_conn_free (c);
      return;
    }
  c->state = ACCEPT_WAIT_REQUEST;
  g_object_set_data (G_OBJECT (c->remote), ACCEPT_ID_KEY, GSIZE_TO_POINTER (c->id));
  self->func (c->tls, c->local, c->remote, self->data);
}

static void
accept_conn_start_handshake (AcceptConn *c)
{
  SignalAccept *self = c->self;
  AcceptAddress *a = accept_address (self, c->address);
  const char *const protocols[] = { "http/1.1", NULL };
  g_autoptr (GError) error = NULL;

  if (a->handshakes >= self->limits.handshakes_per_address)
    {
      g_debug ("%s: too many TLS handshakes at once; connection closed", c->address);
      accept_conn_free (c);
      return;
    }
  /* No CA database: client certificates are self-signed, and loading the
   * system's CAs for each connection would cost milliseconds. */
  c->tls = g_initable_new (
      g_tls_backend_get_server_connection_type (g_tls_backend_get_default ()), NULL,
      &error, "base-io-stream", c->tcp, "certificate", self->cert, "database", NULL,
      "authentication-mode", G_TLS_AUTHENTICATION_REQUESTED, "require-close-notify",
      FALSE, "advertised-protocols", protocols, NULL);
  if (c->tls == NULL)
    {
      g_warning ("cannot start TLS: %s", error->message);
      accept_conn_free (c);
      return;
    }
  g_signal_connect (c->tls, "accept-certificate", G_CALLBACK (accept_on_certificate),
                    NULL);
  c->cancel = g_cancellable_new ();
  c->state = ACCEPT_HANDSHAKE;
  a->handshakes++;
  /* The handshake reports to the thread-default context. */
  g_main_context_push_thread_default (self->ctx);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (c->tls), G_PRIORITY_DEFAULT,
                                    c->cancel, accept_on_handshake, c);
  g_main_context_pop_thread_default (self->ctx);
}

/* Peeks at what the client sent: a whole TLS record of type handshake starts
 * the handshake, a part of one waits for more, anything else ends the
 * connection. */
static void
accept_conn_peek_hello (AcceptConn *c)
{
  uint8_t buf[TLSHELLO_BUFFER_MAX];
  int fd = g_socket_get_fd (g_socket_connection_get_socket (c->tcp));
  ssize_t n = recv (fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);

  accept_source_clear (&c->hello_source);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    {
      accept_conn_hello_wait (c);
      return;
    }
  if (n <= 0)
    {
      accept_conn_free (c); /* closed or failed before its ClientHello */
      return;
    }
  switch (tlshello_check (buf, (size_t)n))
    {
    case TLSHELLO_COMPLETE:
      accept_conn_start_handshake (c);
      return;
    case TLSHELLO_INVALID:
      g_debug ("%s: not a TLS ClientHello; connection closed", c->address);
      accept_conn_free (c);
      return;
    case TLSHELLO_INCOMPLETE:
      break;
    }
  /* Part of a record: look again a little later. */
  c->hello_source = g_timeout_source_new (ACCEPT_HELLO_RETRY_MS);
  g_source_set_callback (c->hello_source, accept_on_hello_retry, c, NULL);
  g_source_attach (c->hello_source, c->self->ctx);
}

static gboolean
accept_on_hello_readable (GSocket *socket, GIOCondition cond, gpointer data)
{
  accept_conn_peek_hello (data);
  return G_SOURCE_REMOVE;
}

static gboolean
accept_on_hello_retry (gpointer data)
{
  accept_conn_peek_hello (data);
  return G_SOURCE_REMOVE;
}

static void
accept_conn_hello_wait (AcceptConn *c)
{
  c->hello_source = g_socket_create_source (g_socket_connection_get_socket (c->tcp),
                                            G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback (c->hello_source, G_SOURCE_FUNC (accept_on_hello_readable), c,
                         NULL);
  g_source_attach (c->hello_source, c->self->ctx);
}

static void
accept_one (SignalAccept *self, GSocket *client)
{
  g_autoptr (GSocketAddress) remote = g_socket_get_remote_address (client, NULL);
  g_autofree char *address = NULL;
  AcceptAddress *a;
  AcceptConn *c;

  if (!G_IS_INET_SOCKET_ADDRESS (remote))
    {
      g_socket_close (client, NULL);
      return;
    }
  address = g_inet_address_to_string (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
  a = accept_address (self, address);
  if (g_hash_table_size (self->conns) >= self->limits.max_total
      || a->conns >= self->limits.max_per_address)
    {
      g_debug ("%s: connection limit reached; connection closed", address);
      if (a->conns == 0)
        g_hash_table_remove (self->addresses, address);
      g_socket_close (client, NULL);
      return;
    }
  c = g_new0 (AcceptConn, 1);
  c->self = self;
  c->id = ++self->next_id;
  c->address = g_steal_pointer (&address);
  c->state = ACCEPT_HELLO;
  c->accepted_at = g_get_monotonic_time ();
  c->tcp = g_socket_connection_factory_create_connection (client);
  c->local = g_socket_get_local_address (client, NULL);
  c->remote = g_steal_pointer (&remote);
  a->conns++;
  g_hash_table_insert (self->conns, GSIZE_TO_POINTER (c->id), c);
  if (c->local == NULL)
    {
      accept_conn_free (c);
      return;
    }
  accept_conn_hello_wait (c);
}

static gboolean
accept_on_listener (GSocket *listener, GIOCondition cond, gpointer data)
{
  SignalAccept *self = data;

  for (guint i = 0; i < ACCEPT_BATCH_MAX; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GSocket) client = g_socket_accept (listener, NULL, &error);

      if (client == NULL)
        {
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            g_debug ("accept: %s", error->message);
          break;
        }
      accept_one (self, client);
    }
  return G_SOURCE_CONTINUE;
}

/* Deadlines, and connections that HTTP has closed. */
static gboolean
accept_on_sweep (gpointer data)
{
  SignalAccept *self = data;
  gint64 now = g_get_monotonic_time ();
  gint64 handshake_us = (gint64)self->limits.handshake_ms * 1000;
  gint64 request_us = (gint64)self->limits.request_ms * 1000;
  g_autoptr (GPtrArray) done = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->conns);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      AcceptConn *c = value;
      GSocket *socket = g_socket_connection_get_socket (c->tcp);
      gint64 age = now - c->accepted_at;

      switch (c->state)
        {
        case ACCEPT_HELLO:
          if (age > handshake_us)
            g_ptr_array_add (done, c);
          break;
        case ACCEPT_HANDSHAKE:
          if (age > handshake_us)
            g_cancellable_cancel (c->cancel); /* accept_on_handshake frees it */
          break;
        case ACCEPT_WAIT_REQUEST:
          if (!g_socket_is_closed (socket) && age > request_us)
            {
              /* HTTP reads an end of stream and closes the connection. */
              g_debug ("%s: no request within %u ms; connection shut", c->address,
                       self->limits.request_ms);
              g_socket_shutdown (socket, TRUE, TRUE, NULL);
              c->state = ACCEPT_SHUT;
            }
          G_GNUC_FALLTHROUGH;
        case ACCEPT_SERVING:
        case ACCEPT_SHUT:
          if (g_socket_is_closed (socket))
            g_ptr_array_add (done, c);
          break;
        }
    }
  for (guint i = 0; i < done->len; i++)
    accept_conn_free (done->pdata[i]);
  return G_SOURCE_CONTINUE;
}

SignalAccept *
signal_accept_new (GMainContext *ctx, GTlsCertificate *cert,
                   const SignalAcceptLimits *limits, SignalAcceptFunc func, gpointer data)
{
  SignalAccept *self;

  g_return_val_if_fail (G_IS_TLS_CERTIFICATE (cert) && func != NULL, NULL);

  self = g_new0 (SignalAccept, 1);
  self->ctx
      = ctx != NULL ? g_main_context_ref (ctx) : g_main_context_ref_thread_default ();
  self->cert = g_object_ref (cert);
  if (limits != NULL)
    self->limits = *limits;
  else
    self->limits = (SignalAcceptLimits){
      .max_total = SIGNAL_ACCEPT_DEFAULT_MAX_TOTAL,
      .max_per_address = SIGNAL_ACCEPT_DEFAULT_MAX_PER_ADDRESS,
      .handshakes_per_address = SIGNAL_ACCEPT_DEFAULT_HANDSHAKES_PER_ADDRESS,
      .handshake_ms = SIGNAL_ACCEPT_DEFAULT_HANDSHAKE_MS,
      .request_ms = SIGNAL_ACCEPT_DEFAULT_REQUEST_MS,
    };
  self->func = func;
  self->data = data;
  self->conns = g_hash_table_new (g_direct_hash, g_direct_equal);
  self->addresses = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->sweep = g_timeout_source_new (ACCEPT_SWEEP_MS);
  g_source_set_callback (self->sweep, accept_on_sweep, self, NULL);
  g_source_attach (self->sweep, self->ctx);
  return self;
}

gboolean
signal_accept_listen (SignalAccept *self, GSocketAddress *address, guint16 *bound_port,
                      GError **error)
{
  g_autoptr (GSocket) listener = NULL;
  g_autoptr (GSocketAddress) local = NULL;
  g_autoptr (GError) local_error = NULL;

  g_return_val_if_fail (self->listener == NULL, FALSE);

  listener = g_socket_new (g_socket_address_get_family (address), G_SOCKET_TYPE_STREAM,
                           G_SOCKET_PROTOCOL_TCP, &local_error);
  if (listener != NULL)
    {
      g_socket_set_blocking (listener, FALSE);
      g_socket_set_listen_backlog (listener, ACCEPT_LISTEN_BACKLOG);
    }
  if (listener == NULL || !g_socket_bind (listener, address, TRUE, &local_error)
      || !g_socket_listen (listener, &local_error))
    {
      g_set_error (error, SIGNAL_ACCEPT_ERROR, SIGNAL_ACCEPT_ERROR_LISTEN,
                   "cannot listen: %s", local_error->message);
      return FALSE;
    }
  local = g_socket_get_local_address (listener, &local_error);
  if (!G_IS_INET_SOCKET_ADDRESS (local))
    {
      g_set_error_literal (error, SIGNAL_ACCEPT_ERROR, SIGNAL_ACCEPT_ERROR_LISTEN,
                           "cannot find the bound port");
      return FALSE;
    }
  *bound_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  self->listener = g_steal_pointer (&listener);
  self->listen_source = g_socket_create_source (self->listener, G_IO_IN, NULL);
  g_source_set_callback (self->listen_source, G_SOURCE_FUNC (accept_on_listener), self,
                         NULL);
  g_source_attach (self->listen_source, self->ctx);
  return TRUE;
}

static AcceptConn *
accept_conn_of (SignalAccept *self, GSocketAddress *remote)
{
  gpointer id
      = remote != NULL ? g_object_get_data (G_OBJECT (remote), ACCEPT_ID_KEY) : NULL;

  return id != NULL ? g_hash_table_lookup (self->conns, id) : NULL;
}

void
signal_accept_request_read (SignalAccept *self, GSocketAddress *remote)
{
  AcceptConn *c = accept_conn_of (self, remote);

  if (c != NULL && c->state == ACCEPT_WAIT_REQUEST)
    c->state = ACCEPT_SERVING;
}

void
signal_accept_closed (SignalAccept *self, GSocketAddress *remote)
{
  AcceptConn *c = accept_conn_of (self, remote);

  if (c != NULL && c->state >= ACCEPT_WAIT_REQUEST)
    accept_conn_free (c);
}

GSocket *
signal_accept_socket_of (SignalAccept *self, GSocketAddress *remote)
{
  AcceptConn *c = accept_conn_of (self, remote);

  return c != NULL ? g_socket_connection_get_socket (c->tcp) : NULL;
}

void
signal_accept_free (SignalAccept *self)
{
  GHashTableIter iter;
  gpointer value;

  if (self == NULL)
    return;
  accept_source_clear (&self->listen_source);
  accept_source_clear (&self->sweep);
  if (self->listener != NULL)
    {
      g_socket_close (self->listener, NULL);
      g_object_unref (self->listener);
    }
  g_hash_table_iter_init (&iter, self->conns);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      AcceptConn *c = value;

      g_hash_table_iter_steal (&iter);
      c->self = NULL;
      if (c->state == ACCEPT_HANDSHAKE)
        g_cancellable_cancel (c->cancel); /* accept_on_handshake frees it */
      else
        accept_conn_free (c);
    }
  g_hash_table_destroy (self->conns);
  g_hash_table_destroy (self->addresses);
  g_object_unref (self->cert);
  g_main_context_unref (self->ctx);
  g_free (self);
}
