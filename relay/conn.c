/* The stream side of the shell: the TCP and TLS listeners and their client
 * connections (RFC 8656 section 3.1: TURN over TCP and TLS). Each
 * connection cuts its input into messages with stream.h and feeds them to
 * the core; what the core sends to it goes through a bounded output queue.
 * An allocation made over a connection ends when the connection closes. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "peerid.h"
#include "shell.h"
#include "stream.h"
#include "tlsio.h"

/* Connections accepted per wakeup of a listener. */
#define RELAY_ACCEPT_BATCH 64
/* Reads per wakeup of a connection before other sources run. */
#define RELAY_CONN_READ_ROUNDS 16
/* RFC 8446 section 5.1: ContentType handshake(22) starts a TLS connection. */
#define RELAY_TLS_HANDSHAKE_RECORD 0x16
/* The deadline in log lines. */
#define RELAY_FIRST_REQUEST_TEXT G_STRINGIFY (RELAY_FIRST_REQUEST_TIMEOUT) " s"
/* Refusals of connections (limits) are logged at most once per this many
 * seconds, with their count, so that a flood does not flood the log. */
#define RELAY_REFUSAL_LOG_INTERVAL 10

struct relay_conn
{
  RelayMain *main;
  enum relay_transport transport;
  GSocket *socket;
  int fd;
  GSource *source;
  gpointer fd_tag;
  GIOCondition cond;
  struct stun_addr client;
  char name[64];  /* "ADDR:PORT over TCP" for the log */
  char *addr_key; /* the IP as text: key of main->per_addr */
  SSL *ssl;       /* TLS only */
  gboolean tls_started;
  gboolean served;           /* a whole message came in */
  gint64 accepted;           /* monotonic seconds */
  gboolean dead;             /* a write failed: closed on the next chance */
  gboolean want_write;       /* TLS asked to wait until the socket is writable */
  gboolean again;            /* TLS holds decrypted bytes not read yet */
  gboolean write_needs_read; /* SSL_write waits for input (TLS 1.3 KeyUpdate) */
  gint64 last_active;        /* monotonic seconds */
  guint64 dropped;           /* bytes dropped (output queue full) since the last log */
  size_t out_start, out_end;
  uint8_t *out; /* RELAY_CONN_OUT_QUEUE bytes */
  struct relay_stream in;
};

/* GSource for one fd whose conditions change (write interest only while the
 * output queue holds bytes). */
static gboolean
fd_source_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  return callback (user_data);
}

static GSourceFuncs fd_source_funcs = {
  .dispatch = fd_source_dispatch,
};

static gint64
now_s (void)
{
  return g_get_monotonic_time () / G_USEC_PER_SEC;
}

static void
log_refusal (RelayMain *m, const char *who, const char *why)
{
  m->refused++;
  m->conns_refused++;
  gint64 now = now_s ();
  if (m->refused_logged != 0 && now - m->refused_logged < RELAY_REFUSAL_LOG_INTERVAL)
    return;
  g_message ("connection from %s refused: %s (%u refused since the last such line)", who,
             why, m->refused);
  m->refused_logged = now;
  m->refused = 0;
}

static void
conn_set_cond (struct relay_conn *c, GIOCondition cond)
{
  if (c->cond == cond)
    return;
  c->cond = cond;
  g_source_modify_unix_fd (c->source, c->fd_tag, cond);
}

static void
conn_free (struct relay_conn *c)
{
  RelayMain *m = c->main;
  /* The allocation made over it goes first (RFC 8656 section 3.1). */
  relay_server_conn_closed (m->server, c);
  relay_udp_flush (m);
  if (c->source != NULL)
    {
      g_source_destroy (c->source);
      g_source_unref (c->source);
    }
  if (c->ssl != NULL)
    SSL_free (c->ssl);
  if (c->socket != NULL)
    {
      g_socket_close (c->socket, NULL);
      g_object_unref (c->socket);
    }
  if (c->addr_key != NULL)
    {
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (m->per_addr, c->addr_key));
      if (n <= 1)
        g_hash_table_remove (m->per_addr, c->addr_key);
      else
        g_hash_table_insert (m->per_addr, g_strdup (c->addr_key),
                             GUINT_TO_POINTER (n - 1));
      g_free (c->addr_key);
    }
  g_free (c->out);
  g_free (c);
}

static void
conn_close (struct relay_conn *c, const char *why)
{
  g_info ("connection %s closed: %s", c->name, why);
  g_hash_table_remove (c->main->conns, c); /* conn_free */
}

/* Output */

/* Writes from the queue until it is empty or the socket is full. FALSE
 * when the connection failed. */
static gboolean
conn_flush (struct relay_conn *c)
{
  while (c->out_end > c->out_start)
    {
      size_t n = c->out_end - c->out_start;
      if (c->ssl != NULL)
        {
          if (!SSL_is_init_finished (c->ssl))
            break; /* the queue goes out after the handshake */
          size_t w;
          char detail[RELAY_TLS_DETAIL_LEN];
          switch (relay_tls_write (c->ssl, c->out + c->out_start, MIN (n, (size_t)16384),
                                   &w, detail))
            {
            case RELAY_TLS_OK:
              c->out_start += w;
              continue;
            case RELAY_TLS_WANT_WRITE:
              break;
            case RELAY_TLS_WANT_READ:
              /* Only input moves it on: no write interest meanwhile, or a
               * writable socket would wake the loop without end. */
              c->write_needs_read = TRUE;
              break;
            case RELAY_TLS_CLOSED:
            case RELAY_TLS_FAILED:
            default:
              return FALSE;
            }
          break;
        }
      ssize_t w = send (c->fd, c->out + c->out_start, n, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w > 0)
        {
          c->out_start += (size_t)w;
          continue;
        }
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      return FALSE;
    }
  if (c->out_start == c->out_end)
    c->out_start = c->out_end = 0;
  return TRUE;
}

/* Read interest always; write interest while bytes wait, TLS wants to
 * write, or TLS holds input (a writable socket wakes the loop at once). */
static void
conn_update_cond (struct relay_conn *c)
{
  gboolean out
      = (c->out_end > c->out_start && !c->write_needs_read) || c->want_write || c->again;
  conn_set_cond (c, G_IO_IN | (out ? G_IO_OUT : 0));
}

void
relay_conn_io_send (void *user, void *conn, const uint8_t *buf, size_t len)
{
  struct relay_conn *c = conn;
  if (c->dead)
    return;
  if (len > RELAY_CONN_OUT_QUEUE - (c->out_end - c->out_start))
    {
      /* A whole message or nothing: a cut one would break the framing. */
      if (c->dropped == 0)
        g_message ("connection %s does not read: dropping what is relayed to it",
                   c->name);
      c->dropped += len;
      return;
    }
  if (c->dropped > 0)
    {
      g_message ("connection %s reads again: %" G_GUINT64_FORMAT " bytes were dropped",
                 c->name, c->dropped);
      c->dropped = 0;
    }
  if (c->out_end + len > RELAY_CONN_OUT_QUEUE)
    {
      /* SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows moving pending bytes. */
      memmove (c->out, c->out + c->out_start, c->out_end - c->out_start);
      c->out_end -= c->out_start;
      c->out_start = 0;
    }
  memcpy (c->out + c->out_end, buf, len);
  c->out_end += len;
  /* Written at once while nothing else waits; otherwise the queue goes
   * out when the socket is writable. */
  if (c->out_end - c->out_start == len && !conn_flush (c))
    c->dead = TRUE;
  conn_update_cond (c);
}

/* Input */

/* Feeds every whole message in the input buffer to the core. FALSE when
 * the framing is broken (the connection is to be closed; logged). */
static gboolean
conn_process_input (struct relay_conn *c)
{
  RelayMain *m = c->main;
  struct relay_source source
      = { .transport = c->transport, .relay_handle = NULL, .conn = c };
  const uint8_t *msg;
  size_t len;
  enum relay_frame_status r;
  gint64 now_us = g_get_real_time ();
  while ((r = relay_stream_next (&c->in, &msg, &len)) == RELAY_FRAME_OK)
    {
      c->served = TRUE;
      relay_server_process (m->server, now_us, &source, &c->client, msg, len);
    }
  switch (r)
    {
    case RELAY_FRAME_INVALID:
      g_message ("connection %s closed: not STUN or ChannelData framing", c->name);
      return FALSE;
    case RELAY_FRAME_TOO_BIG:
      g_message ("connection %s closed: a message of %zu bytes (more than %u)", c->name,
                 len, RELAY_STREAM_MAX_FRAME);
      return FALSE;
    case RELAY_FRAME_OK:
    case RELAY_FRAME_INCOMPLETE:
    default:
      return TRUE;
    }
}

/* Reads what there is; FALSE when the connection is to be closed (why set). */
static gboolean
conn_read (struct relay_conn *c, const char **why)
{
  c->want_write = FALSE;
  c->again = FALSE;
  c->write_needs_read = FALSE;
  for (int round = 0; round < RELAY_CONN_READ_ROUNDS; round++)
    {
      size_t avail;
      uint8_t *space = relay_stream_space (&c->in, &avail);
      ssize_t n;
      if (avail == 0)
        {
          /* Cannot happen: a whole frame always fits (stream.h). */
          *why = "input buffer full";
          return FALSE;
        }
      if (c->ssl != NULL)
        {
          size_t got;
          char detail[RELAY_TLS_DETAIL_LEN];
          switch (relay_tls_read (c->ssl, space, avail, &got, detail))
            {
            case RELAY_TLS_OK:
              break;
            case RELAY_TLS_WANT_READ:
              return TRUE;
            case RELAY_TLS_WANT_WRITE:
              c->want_write = TRUE;
              return TRUE;
            case RELAY_TLS_CLOSED:
              *why = "closed by the client (TLS close_notify)";
              return FALSE;
            case RELAY_TLS_FAILED:
            default:
              if (SSL_is_init_finished (c->ssl))
                *why = "TLS error";
              else
                {
                  *why = "TLS handshake failed";
                  if (detail[0] != '\0')
                    g_info ("connection %s: %s", c->name, detail);
                }
              return FALSE;
            }
          n = (ssize_t)got;
        }
      else
        {
          n = recv (c->fd, space, avail, MSG_DONTWAIT);
          if (n == 0)
            {
              *why = "closed by the client";
              return FALSE;
            }
          if (n < 0)
            {
              if (errno == EINTR)
                continue;
              if (errno == EAGAIN || errno == EWOULDBLOCK)
                return TRUE;
              *why = g_strerror (errno);
              return FALSE;
            }
        }
      relay_stream_commit (&c->in, (size_t)n);
      c->last_active = now_s ();
      if (!conn_process_input (c))
        {
          *why = NULL; /* logged */
          return FALSE;
        }
      if (c->dead)
        break;
    }
  /* Stopped for fairness: TLS may hold decrypted bytes the socket no longer
   * signals; come back at once. */
  c->again = c->ssl != NULL && SSL_has_pending (c->ssl);
  return TRUE;
}

/* TLS: the first byte must start a handshake record, or the client speaks
 * something else (plain STUN on the TLS port): close at once. */
static gboolean
tls_first_byte (struct relay_conn *c, const char **why, gboolean *wait)
{
  uint8_t b;
  ssize_t n = recv (c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  *wait = FALSE;
  if (n == 0)
    {
      *why = "closed by the client";
      return FALSE;
    }
  if (n < 0)
    {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        {
          *wait = TRUE;
          return TRUE;
        }
      *why = g_strerror (errno);
      return FALSE;
    }
  if (b != RELAY_TLS_HANDSHAKE_RECORD)
    {
      g_message ("connection %s closed: first byte 0x%02x is not a TLS handshake",
                 c->name, b);
      *why = NULL;
      return FALSE;
    }
  c->tls_started = TRUE;
  return TRUE;
}

static gboolean
on_conn (gpointer user_data)
{
  struct relay_conn *c = user_data;
  RelayMain *m = c->main;
  GIOCondition rev = g_source_query_unix_fd (c->source, c->fd_tag);
  const char *why = "closed by the client";
  gboolean ok = TRUE;

  if (c->transport == RELAY_TRANSPORT_TLS && !c->tls_started)
    {
      gboolean wait;
      ok = tls_first_byte (c, &why, &wait);
      if (ok && wait)
        return G_SOURCE_CONTINUE;
    }
  /* TLS reads on every wakeup: SSL_read also moves the handshake on. */
  if (ok && ((rev & (G_IO_IN | G_IO_HUP | G_IO_ERR)) || c->ssl != NULL))
    ok = conn_read (c, &why);
  if (ok && !c->dead && c->out_end > c->out_start && !conn_flush (c))
    c->dead = TRUE;
  if (ok && c->dead)
    {
      ok = FALSE;
      why = "write failed";
    }
  relay_udp_flush (m);
  if (!ok)
    {
      if (why != NULL)
        conn_close (c, why);
      else
        g_hash_table_remove (m->conns, c);
      /* The source was destroyed with the connection; returning CONTINUE
       * keeps GLib from destroying it twice. */
      return G_SOURCE_CONTINUE;
    }
  conn_update_cond (c);
  return G_SOURCE_CONTINUE;
}

/* Listeners */

/* FALSE when there is nothing more to accept for now. */
static gboolean
accept_one (RelayMain *m, GSocket *listener, enum relay_transport transport)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) socket = g_socket_accept (listener, NULL, &error);
  if (socket == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        g_debug ("accept: %s", error->message);
      return FALSE;
    }
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int fd = g_socket_get_fd (socket);
  if (getpeername (fd, (struct sockaddr *)&ss, &sl) != 0)
    return TRUE;
  struct stun_addr client;
  relay_addr_from_sockaddr (&ss, &client);
  char ip[64];
  if (client.family == 6)
    inet_ntop (AF_INET6, client.ip, ip, sizeof ip);
  else
    inet_ntop (AF_INET, client.ip, ip, sizeof ip);
  char who[96];
  g_snprintf (who, sizeof who, client.family == 6 ? "[%s]:%u over %s" : "%s:%u over %s",
              ip, client.port, transport == RELAY_TRANSPORT_TLS ? "TLS" : "TCP");
  if (g_hash_table_size (m->conns) >= m->max_conns)
    {
      log_refusal (m, who, "connections in all (--max-connections)");
      return TRUE;
    }
  guint n_addr = GPOINTER_TO_UINT (g_hash_table_lookup (m->per_addr, ip));
  if (n_addr >= m->max_conns_per_addr)
    {
      log_refusal (m, who,
                   "connections from this address (--max-connections-per-address)");
      return TRUE;
    }

  g_socket_set_blocking (socket, FALSE);
  int one = 1;
  (void)setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct relay_conn *c = g_new0 (struct relay_conn, 1);
  c->main = m;
  c->transport = transport;
  c->socket = g_steal_pointer (&socket);
  c->fd = fd;
  c->client = client;
  g_strlcpy (c->name, who, sizeof c->name);
  c->addr_key = g_strdup (ip);
  g_hash_table_insert (m->per_addr, g_strdup (ip), GUINT_TO_POINTER (n_addr + 1));
  c->last_active = c->accepted = now_s ();
  c->out = g_malloc (RELAY_CONN_OUT_QUEUE);
  relay_stream_init (&c->in);
  g_hash_table_add (m->conns, c);
  m->conns_accepted[transport]++;
  if (transport == RELAY_TRANSPORT_TLS)
    {
      c->ssl = SSL_new (m->tls_ctx);
      if (c->ssl == NULL || SSL_set_fd (c->ssl, fd) != 1)
        {
          ERR_clear_error ();
          conn_close (c, "SSL_new failed");
          return TRUE;
        }
      SSL_set_accept_state (c->ssl);
    }
  c->source = g_source_new (&fd_source_funcs, sizeof (GSource));
  c->cond = G_IO_IN;
  c->fd_tag = g_source_add_unix_fd (c->source, fd, c->cond);
  g_source_set_callback (c->source, on_conn, c, NULL);
  g_source_attach (c->source, m->context);
  g_info ("connection %s accepted", c->name);
  return TRUE;
}

static gboolean
on_tcp_listener (GSocket *socket, GIOCondition cond, gpointer user_data)
{
  for (int i = 0; i < RELAY_ACCEPT_BATCH; i++)
    if (!accept_one (user_data, socket, RELAY_TRANSPORT_TCP))
      break;
  return G_SOURCE_CONTINUE;
}

static gboolean
on_tls_listener (GSocket *socket, GIOCondition cond, gpointer user_data)
{
  for (int i = 0; i < RELAY_ACCEPT_BATCH; i++)
    if (!accept_one (user_data, socket, RELAY_TRANSPORT_TLS))
      break;
  return G_SOURCE_CONTINUE;
}

static void
conns_init (RelayMain *m)
{
  if (m->conns != NULL)
    return;
  m->conns = g_hash_table_new_full (g_direct_hash, g_direct_equal,
                                    (GDestroyNotify)conn_free, NULL);
  m->per_addr = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

static GSocket *
listen_on (RelayMain *m, GInetSocketAddress *addr, GSocketSourceFunc func,
           GSource **source, GError **error)
{
  g_autoptr (GSocket) s = g_socket_new (
      g_inet_address_get_family (g_inet_socket_address_get_address (addr)),
      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
  if (s == NULL || !g_socket_bind (s, G_SOCKET_ADDRESS (addr), TRUE, error))
    return NULL;
  g_socket_set_listen_backlog (s, 128);
  if (!g_socket_listen (s, error))
    return NULL;
  g_socket_set_blocking (s, FALSE);
  *source = g_socket_create_source (s, G_IO_IN, NULL);
  g_source_set_callback (*source, G_SOURCE_FUNC (func), m, NULL);
  g_source_attach (*source, m->context);
  return g_steal_pointer (&s);
}

gboolean
relay_tcp_start (RelayMain *m, GInetSocketAddress *addr, GError **error)
{
  conns_init (m);
  m->tcp_listener = listen_on (m, addr, on_tcp_listener, &m->tcp_source, error);
  return m->tcp_listener != NULL;
}

SSL_CTX *
relay_tls_context_new (const char *cert, const char *key, GError **error)
{
  ERR_clear_error (); /* the reasons below must be this call's */
  SSL_CTX *ctx = SSL_CTX_new (TLS_server_method ());
  char buf[256] = "";
  if (ctx == NULL)
    goto fail;
  /* TLS 1.2 and 1.3 only; no renegotiation (a client could make the relay
   * do handshakes forever on one connection). */
  if (SSL_CTX_set_min_proto_version (ctx, TLS1_2_VERSION) != 1)
    goto fail;
  SSL_CTX_set_options (ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode (ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                             | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                             | SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file (ctx, cert) != 1)
    {
      ERR_error_string_n (ERR_peek_last_error (), buf, sizeof buf);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "--tls-cert %s: %s", cert, buf);
      goto out;
    }
  if (SSL_CTX_use_PrivateKey_file (ctx, key, SSL_FILETYPE_PEM) != 1
      || SSL_CTX_check_private_key (ctx) != 1)
    {
      ERR_error_string_n (ERR_peek_last_error (), buf, sizeof buf);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "--tls-key %s: %s", key, buf);
      goto out;
    }
  ERR_clear_error ();
  return ctx;
fail:
  ERR_error_string_n (ERR_peek_last_error (), buf, sizeof buf);
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "TLS: %s", buf);
out:
  ERR_clear_error ();
  SSL_CTX_free (ctx);
  return NULL;
}

char *
relay_tls_pin (SSL_CTX *ctx)
{
  char pin[PEERID_PIN_SIZE];

  return peerid_pin_from_x509 (SSL_CTX_get0_certificate (ctx), pin) ? g_strdup (pin) : NULL;
}

gboolean
relay_tls_start (RelayMain *m, GInetSocketAddress *addr, GError **error)
{
  conns_init (m);
  m->tls_listener = listen_on (m, addr, on_tls_listener, &m->tls_source, error);
  return m->tls_listener != NULL;
}

/* Why c is to be closed now, or NULL. */
static const char *
conn_expired (RelayMain *m, struct relay_conn *c, gint64 now)
{
  if (c->dead)
    return "write failed";
  /* Slowloris: a client that never finishes its TLS handshake or its first
   * message holds a connection (of --max-connections) for nothing. */
  if (!c->served && now - c->accepted >= RELAY_FIRST_REQUEST_TIMEOUT)
    return c->ssl != NULL && !SSL_is_init_finished (c->ssl)
               ? "no TLS handshake within " RELAY_FIRST_REQUEST_TEXT
               : "no whole request within " RELAY_FIRST_REQUEST_TEXT;
  if (now - c->last_active >= (gint64)m->idle_timeout
      && !relay_server_conn_has_allocation (m->server, c))
    return "idle without an allocation (--idle-timeout)";
  return NULL;
}

void
relay_conns_tick (RelayMain *m)
{
  if (m->conns == NULL)
    return;
  gint64 now = now_s ();
  GHashTableIter it;
  gpointer k;
  GPtrArray *close = NULL;
  g_hash_table_iter_init (&it, m->conns);
  while (g_hash_table_iter_next (&it, &k, NULL))
    if (conn_expired (m, k, now) != NULL)
      {
        if (close == NULL)
          close = g_ptr_array_new ();
        g_ptr_array_add (close, k);
      }
  for (guint i = 0; close != NULL && i < close->len; i++)
    {
      struct relay_conn *c = close->pdata[i];
      conn_close (c, conn_expired (m, c, now));
    }
  if (close != NULL)
    g_ptr_array_unref (close);
}

static void
listener_stop (GSocket **listener, GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
  g_clear_object (listener);
}

void
relay_conns_stop (RelayMain *m)
{
  listener_stop (&m->tcp_listener, &m->tcp_source);
  listener_stop (&m->tls_listener, &m->tls_source);
  g_clear_pointer (&m->conns, g_hash_table_unref); /* closes every connection */
  g_clear_pointer (&m->per_addr, g_hash_table_unref);
  g_clear_pointer (&m->tls_ctx, SSL_CTX_free);
}
