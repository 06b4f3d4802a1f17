/* TURN over TLS through a loopback shim; see tlsshim.h. */
#include "tlsshim.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "peerid.h"
#include "sigmsg.h"

/* libnice opens one TURN connection per local address; a few is plenty. */
#define SHIM_MAX_CONNECTIONS 8
/* Per direction and connection: TURN messages are at most 64 KiB + framing,
 * and the TCP connections on both sides buffer more. */
#define SHIM_BUFFER_SIZE 65536
#define SHIM_CONNECT_TIMEOUT_S 10
/* Progress steps per wakeup, so one busy connection cannot hold the loop. */
#define SHIM_STEPS_MAX 64

typedef struct
{
  guint8 data[SHIM_BUFFER_SIZE];
  gsize start;
  gsize len;
} ShimBuffer;

typedef struct _ShimConn ShimConn;

struct _TlsShim
{
  GMainContext *context;
  char *host;
  guint16 port;
  char *pin;
  SSL_CTX *ctx;
  GSocket *listener;
  GSource *accept_source;
  GPtrArray *conns; /* ShimConn* */
  Warn warn;
};

typedef struct
{
  GSource base;
  ShimConn *conn;
} ShimSource;

struct _ShimConn
{
  TlsShim *shim;
  GSocket *local; /* libnice's connection to us */
  GSocketConnection *remote;
  GCancellable *connecting;
  SSL *ssl;
  GSource *source;
  gpointer local_tag;
  gpointer remote_tag;
  GIOCondition local_events; /* what the tags watch now */
  GIOCondition remote_events;
  gboolean handshaken;
  int handshake_wants; /* G_IO_IN / G_IO_OUT while handshaking */
  int write_wants;     /* what the last blocked SSL_write waits for */
  int read_wants;      /* what the last blocked SSL_read waits for */
  gboolean local_eof;
  gboolean remote_eof;
  ShimBuffer up;   /* libnice -> relay */
  ShimBuffer down; /* relay -> libnice */
};

static void shim_conn_free (ShimConn *conn);

static gsize
buffer_space (const ShimBuffer *b)
{
  return sizeof b->data - b->start - b->len;
}

static guint8 *
buffer_tail (ShimBuffer *b)
{
  if (b->start > 0 && b->len < sizeof b->data / 2)
    {
      memmove (b->data, b->data + b->start, b->len);
      b->start = 0;
    }
  return b->data + b->start + b->len;
}

static void
buffer_consume (ShimBuffer *b, gsize n)
{
  b->start += n;
  b->len -= n;
  if (b->len == 0)
    b->start = 0;
}

/* The OpenSSL error queue as one line (and cleared). */
static const char *
ssl_error_text (char *buf, gsize size)
{
  unsigned long e = ERR_get_error ();

  if (e == 0)
    g_strlcpy (buf, "connection closed", size);
  else
    ERR_error_string_n (e, buf, size);
  ERR_clear_error ();
  return buf;
}

static void
shim_conn_close (ShimConn *conn, const char *why)
{
  TlsShim *shim = conn->shim;

  if (why != NULL)
    warn_say (&shim->warn, "relay turns:%s:%u: %s", shim->host, shim->port, why);
  g_ptr_array_remove_fast (shim->conns, conn); /* frees it */
}

/* "sha256//BASE64" of the peer certificate's SubjectPublicKeyInfo. */
static gboolean
shim_pin_matches (const TlsShim *shim, SSL *ssl)
{
  char pin[PEERID_PIN_SIZE];

  return peerid_pin_from_x509 (SSL_get0_peer_certificate (ssl), pin)
         && strcmp (shim->pin, pin) == 0;
}

/* Returns FALSE when the connection must close (reason in @why). */
static gboolean
shim_conn_handshake (ShimConn *conn, const char **why, char *buf, gsize size)
{
  int r;

  /* Each SSL_* call starts from an empty error queue: SSL_get_error() reads
   * the thread's queue, shared with DTLS and libcurl, and a stale entry
   * would make a WANT_READ look fatal. */
  ERR_clear_error ();
  r = SSL_do_handshake (conn->ssl);
  if (r == 1)
    {
      if (conn->shim->pin != NULL && !shim_pin_matches (conn->shim, conn->ssl))
        {
          *why = "the relay's certificate does not match its pin; not using it";
          return FALSE;
        }
      conn->handshaken = TRUE;
      conn->handshake_wants = 0;
      return TRUE;
    }
  switch (SSL_get_error (conn->ssl, r))
    {
    case SSL_ERROR_WANT_READ:
      conn->handshake_wants = G_IO_IN;
      return TRUE;
    case SSL_ERROR_WANT_WRITE:
      conn->handshake_wants = G_IO_OUT;
      return TRUE;
    default:
      if (SSL_get_verify_result (conn->ssl) != X509_V_OK)
        g_snprintf (buf, size, "certificate rejected: %s",
                    X509_verify_cert_error_string (SSL_get_verify_result (conn->ssl)));
      else
        {
          char ssl_text[256];
          g_snprintf (buf, size, "TLS handshake failed: %s",
                      ssl_error_text (ssl_text, sizeof ssl_text));
        }
      *why = buf;
      return FALSE;
    }
}

/* One SSL_read or SSL_write result: > 0 progress, 0 blocked, < 0 closed or failed. */
static int
shim_ssl_result (ShimConn *conn, int r, int *wants)
{
  if (r > 0)
    {
      *wants = 0;
      return r;
    }
  switch (SSL_get_error (conn->ssl, r))
    {
    case SSL_ERROR_WANT_READ:
      *wants = G_IO_IN;
      return 0;
    case SSL_ERROR_WANT_WRITE:
      *wants = G_IO_OUT;
      return 0;
    default:
      return -1;
    }
}

/* Moves bytes as far as they go. Returns FALSE when the connection must close. */
static gboolean
shim_conn_pump (ShimConn *conn, const char **why, char *buf, gsize size)
{
  int fd = g_socket_get_fd (conn->local);
  gboolean progress = TRUE;

  for (int step = 0; progress && step < SHIM_STEPS_MAX; step++)
    {
      gssize n;
      int r;

      progress = FALSE;
      if (!conn->local_eof && buffer_space (&conn->up) > 0)
        {
          n = recv (fd, buffer_tail (&conn->up), buffer_space (&conn->up), MSG_DONTWAIT);
          if (n > 0)
            conn->up.len += (gsize) n, progress = TRUE;
          else if (n == 0)
            conn->local_eof = TRUE;
          else if (errno != EAGAIN && errno != EINTR)
            conn->local_eof = TRUE;
        }
      if (conn->handshaken && conn->up.len > 0)
        {
          ERR_clear_error ();
          r = SSL_write (conn->ssl, conn->up.data + conn->up.start, (int) conn->up.len);
          r = shim_ssl_result (conn, r, &conn->write_wants);
          if (r < 0)
            {
              *why = ssl_error_text (buf, size);
              return FALSE;
            }
          if (r > 0)
            buffer_consume (&conn->up, (gsize) r), progress = TRUE;
        }
      if (conn->handshaken && !conn->remote_eof && buffer_space (&conn->down) > 0)
        {
          ERR_clear_error ();
          r = SSL_read (conn->ssl, buffer_tail (&conn->down), (int) buffer_space (&conn->down));
          r = shim_ssl_result (conn, r, &conn->read_wants);
          if (r < 0)
            {
              ERR_clear_error ();
              conn->remote_eof = TRUE;
            }
          else if (r > 0)
            conn->down.len += (gsize) r, progress = TRUE;
        }
      if (conn->down.len > 0)
        {
          n = send (fd, conn->down.data + conn->down.start, conn->down.len,
                    MSG_DONTWAIT | MSG_NOSIGNAL);
          if (n > 0)
            buffer_consume (&conn->down, (gsize) n), progress = TRUE;
          else if (n < 0 && errno != EAGAIN && errno != EINTR)
            return FALSE; /* libnice went away */
        }
    }
  /* TURN over TCP ends when either side ends: the allocation is gone. */
  if (conn->local_eof && conn->up.len == 0)
    return FALSE;
  if (conn->remote_eof && conn->down.len == 0)
    {
      /* Also how a relay answers an allocation given back: libnice reports
       * a relay lost while in use. */
      g_debug ("relay turns:%s:%u closed the TLS connection", conn->shim->host,
               conn->shim->port);
      return FALSE;
    }
  return TRUE;
}

static void
shim_conn_watch (ShimConn *conn)
{
  GIOCondition local = 0, remote = 0;

  if (!conn->local_eof && buffer_space (&conn->up) > 0)
    local |= G_IO_IN;
  if (conn->down.len > 0)
    local |= G_IO_OUT;
  /* Each change costs the loop a wakeup: change only what changed. */
  if (local != conn->local_events)
    g_source_modify_unix_fd (conn->source, conn->local_tag, conn->local_events = local);
  if (conn->remote_tag == NULL)
    return;
  if (!conn->handshaken)
    remote = conn->handshake_wants;
  else
    {
      if (!conn->remote_eof && buffer_space (&conn->down) > 0)
        remote |= conn->read_wants ? conn->read_wants : G_IO_IN;
      if (conn->up.len > 0)
        remote |= conn->write_wants;
    }
  if (remote != conn->remote_events)
    g_source_modify_unix_fd (conn->source, conn->remote_tag, conn->remote_events = remote);
}

/* Returns FALSE when @conn is gone. */
static gboolean
shim_conn_step (ShimConn *conn)
{
  const char *why = NULL;
  char buf[320];

  if (conn->ssl != NULL && !conn->handshaken
      && !shim_conn_handshake (conn, &why, buf, sizeof buf))
    {
      shim_conn_close (conn, why);
      return FALSE;
    }
  if (!shim_conn_pump (conn, &why, buf, sizeof buf))
    {
      shim_conn_close (conn, why);
      return FALSE;
    }
  shim_conn_watch (conn);
  return TRUE;
}

static gboolean
shim_source_dispatch (GSource *source, GSourceFunc callback, gpointer data)
{
  return shim_conn_step (((ShimSource *) source)->conn) ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static GSourceFuncs shim_source_funcs = {
  .dispatch = shim_source_dispatch,
};

static void
shim_on_connected (GObject *client, GAsyncResult *result, gpointer data)
{
  g_autoptr (GError) error = NULL;
  GSocketConnection *remote
      = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (client), result, &error);
  ShimConn *conn;
  TlsShim *shim;
  GSocket *socket;

  if (remote == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          conn = data;
          g_autofree char *why = g_strdup_printf ("cannot connect: %s", error->message);
          shim_conn_close (conn, why);
        }
      return;
    }
  conn = data;
  shim = conn->shim;
  g_clear_object (&conn->connecting);
  conn->remote = remote;
  socket = g_socket_connection_get_socket (remote);
  g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  conn->ssl = SSL_new (shim->ctx);
  if (conn->ssl == NULL || !SSL_set_fd (conn->ssl, g_socket_get_fd (socket)))
    {
      shim_conn_close (conn, "out of memory");
      return;
    }
  SSL_set_connect_state (conn->ssl);
  if (!g_hostname_is_ip_address (shim->host))
    SSL_set_tlsext_host_name (conn->ssl, shim->host);
  if (shim->pin == NULL)
    {
      X509_VERIFY_PARAM *param = SSL_get0_param (conn->ssl);

      if (g_hostname_is_ip_address (shim->host))
        X509_VERIFY_PARAM_set1_ip_asc (param, shim->host);
      else
        SSL_set1_host (conn->ssl, shim->host);
    }
  conn->remote_tag = g_source_add_unix_fd (conn->source, g_socket_get_fd (socket), 0);
  shim_conn_step (conn);
}

static void
shim_conn_free (ShimConn *conn)
{
  if (conn->connecting != NULL)
    {
      g_cancellable_cancel (conn->connecting);
      g_object_unref (conn->connecting);
    }
  if (conn->source != NULL)
    {
      g_source_destroy (conn->source);
      g_source_unref (conn->source);
    }
  if (conn->ssl != NULL)
    {
      if (conn->handshaken)
        {
          ERR_clear_error ();
          SSL_shutdown (conn->ssl); /* best effort close_notify; we do not wait */
        }
      SSL_free (conn->ssl);
    }
  if (conn->remote != NULL)
    {
      g_io_stream_close (G_IO_STREAM (conn->remote), NULL, NULL);
      g_object_unref (conn->remote);
    }
  if (conn->local != NULL)
    {
      g_socket_close (conn->local, NULL);
      g_object_unref (conn->local);
    }
  g_free (conn);
}

static gboolean
shim_on_accept (GSocket *listener, GIOCondition condition, gpointer data)
{
  TlsShim *shim = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketClient) client = NULL;
  GSocket *local = g_socket_accept (listener, NULL, &error);
  ShimConn *conn;

  if (local == NULL)
    return G_SOURCE_CONTINUE;
  if (shim->conns->len >= SHIM_MAX_CONNECTIONS)
    {
      warn_say (&shim->warn, "relay turns:%s:%u: more than %d connections; refusing one", shim->host,
                 shim->port, SHIM_MAX_CONNECTIONS);
      g_socket_close (local, NULL);
      g_object_unref (local);
      return G_SOURCE_CONTINUE;
    }
  conn = g_new0 (ShimConn, 1);
  conn->shim = shim;
  conn->local = local;
  g_socket_set_blocking (local, FALSE);
  conn->source = g_source_new (&shim_source_funcs, sizeof (ShimSource));
  ((ShimSource *) conn->source)->conn = conn;
  conn->local_events = G_IO_IN;
  conn->local_tag = g_source_add_unix_fd (conn->source, g_socket_get_fd (local), G_IO_IN);
  /* See bridge_new(): no wakeups for each dispatch. */
  g_source_set_can_recurse (conn->source, TRUE);
  /* TURN messages are small and latency matters: no Nagle on either leg. */
  g_socket_set_option (local, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  g_source_attach (conn->source, shim->context);
  g_ptr_array_add (shim->conns, conn);

  conn->connecting = g_cancellable_new ();
  client = g_socket_client_new ();
  g_socket_client_set_timeout (client, SHIM_CONNECT_TIMEOUT_S);
  /* Straight to the relay, like libnice's own TURN connections. */
  g_socket_client_set_enable_proxy (client, FALSE);
  /* The callback runs in the thread-default context, which is the tunnel's. */
  g_main_context_push_thread_default (shim->context);
  g_socket_client_connect_to_host_async (client, shim->host, shim->port, conn->connecting,
                                         shim_on_connected, conn);
  g_main_context_pop_thread_default (shim->context);
  return G_SOURCE_CONTINUE;
}

TlsShim *
tls_shim_new (GMainContext *context, const char *host, guint16 port, const char *pin,
              const Warn *warn, GError **error)
{
  g_autoptr (TlsShim) shim = g_new0 (TlsShim, 1);

  if (warn)
    shim->warn = *warn;
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);

  if (pin != NULL && !sigmsg_pin_is_valid (pin))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "relay pin must be sha256//BASE64 of 32 bytes, got \"%s\"", pin);
      return NULL;
    }
  shim->context = g_main_context_ref (context);
  shim->host = g_strdup (host);
  shim->port = port;
  shim->pin = g_strdup (pin);
  shim->conns = g_ptr_array_new_with_free_func ((GDestroyNotify) shim_conn_free);

  shim->ctx = SSL_CTX_new (TLS_client_method ());
  if (shim->ctx == NULL || !SSL_CTX_set_min_proto_version (shim->ctx, TLS1_2_VERSION))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot set up TLS");
      return NULL;
    }
  SSL_CTX_set_mode (shim->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                                   | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (pin == NULL)
    {
      if (!SSL_CTX_set_default_verify_paths (shim->ctx))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "cannot load the system's CA certificates");
          return NULL;
        }
      SSL_CTX_set_verify (shim->ctx, SSL_VERIFY_PEER, NULL);
    }
  else
    SSL_CTX_set_verify (shim->ctx, SSL_VERIFY_NONE, NULL); /* the pin decides */

  shim->listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, error);
  if (shim->listener == NULL || !g_socket_bind (shim->listener, any, FALSE, error))
    return NULL;
  g_socket_set_listen_backlog (shim->listener, SHIM_MAX_CONNECTIONS);
  if (!g_socket_listen (shim->listener, error))
    return NULL;
  g_socket_set_blocking (shim->listener, FALSE);
  shim->accept_source = g_socket_create_source (shim->listener, G_IO_IN, NULL);
  g_source_set_callback (shim->accept_source, (GSourceFunc) (void (*) (void)) shim_on_accept,
                         shim, NULL);
  g_source_attach (shim->accept_source, context);
  return g_steal_pointer (&shim);
}

guint16
tls_shim_port (const TlsShim *shim)
{
  g_autoptr (GSocketAddress) addr = g_socket_get_local_address (shim->listener, NULL);

  return addr ? g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (addr)) : 0;
}

void
tls_shim_free (TlsShim *shim)
{
  if (shim == NULL)
    return;
  if (shim->accept_source != NULL)
    {
      g_source_destroy (shim->accept_source);
      g_source_unref (shim->accept_source);
    }
  if (shim->conns != NULL)
    g_ptr_array_unref (shim->conns);
  if (shim->listener != NULL)
    {
      g_socket_close (shim->listener, NULL);
      g_object_unref (shim->listener);
    }
  if (shim->ctx != NULL)
    SSL_CTX_free (shim->ctx);
  g_main_context_unref (shim->context);
  g_free (shim->host);
  g_free (shim->pin);
  g_free (shim);
}
