/* p2ptun-relay: the I/O shell around the protocol core (server.c). One UDP
 * listener and one UDP socket per allocation, all on one GMainContext.
 * Datagrams are read and written with recvfrom/sendto on the sockets' file
 * descriptors, so the hot path allocates nothing; batching with
 * recvmmsg/sendmmsg is a later step. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <gio/gio.h>
#include <glib-unix.h>
#include <openssl/crypto.h>

#include "server.h"

/* Datagrams read per wakeup of a socket before the loop runs other sources. */
#define RELAY_READ_BATCH 64
/* Largest UDP payload (IPv4: 65535 - 20 - 8). */
#define RELAY_MAX_DATAGRAM 65535

typedef struct RelayMain RelayMain;

struct relayed
{
  RelayMain *main;
  GSocket *socket;
  GSource *source;
};

struct RelayMain
{
  GMainContext *context;
  GMainLoop *loop;
  GSocket *listener;
  GSource *listen_source;
  GInetAddress *relay_ip;
  RelayServer *server;
  char *secret_file;
  GPtrArray *sources; /* signal and timer sources to destroy */
  int exit_code;
  uint8_t buf[RELAY_MAX_DATAGRAM];
};

static void
addr_from_sockaddr (const struct sockaddr_storage *ss, struct stun_addr *out)
{
  memset (out, 0, sizeof *out);
  if (ss->ss_family == AF_INET6)
    {
      const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
      out->family = 6;
      out->port = ntohs (s6->sin6_port);
      memcpy (out->ip, &s6->sin6_addr, 16);
    }
  else
    {
      const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
      out->family = 4;
      out->port = ntohs (s4->sin_port);
      memcpy (out->ip, &s4->sin_addr, 4);
    }
}

static socklen_t
addr_to_sockaddr (const struct stun_addr *a, struct sockaddr_storage *ss)
{
  memset (ss, 0, sizeof *ss);
  if (a->family == 6)
    {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons (a->port);
      memcpy (&s6->sin6_addr, a->ip, 16);
      return sizeof *s6;
    }
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  s4->sin_family = AF_INET;
  s4->sin_port = htons (a->port);
  memcpy (&s4->sin_addr, a->ip, 4);
  return sizeof *s4;
}

/* A tunnel through the relay sends bursts of a window's worth of datagrams;
 * the default socket buffers (208 KiB) overflow whenever the relay is not
 * scheduled for a moment, and each drop costs the tunnel a retransmission
 * timeout. Past net.core.rmem_max/wmem_max only with CAP_NET_ADMIN. */
#define RELAY_SOCKET_BUFFER (8 * 1024 * 1024)

static void
grow_socket_buffers (GSocket *socket)
{
  int fd = g_socket_get_fd (socket);
  int size = RELAY_SOCKET_BUFFER;

  if (setsockopt (fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
    (void)setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (setsockopt (fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
    (void)setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

static void
read_socket (RelayMain *m, GSocket *socket, void *handle)
{
  int fd = g_socket_get_fd (socket);
  struct relay_source source
      = { .transport = RELAY_TRANSPORT_UDP, .relay_handle = handle };
  for (int i = 0; i < RELAY_READ_BATCH; i++)
    {
      struct sockaddr_storage ss;
      socklen_t sl = sizeof ss;
      ssize_t n = recvfrom (fd, m->buf, sizeof m->buf, MSG_DONTWAIT,
                            (struct sockaddr *)&ss, &sl);
      if (n < 0)
        {
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            g_debug ("recvfrom: %s", g_strerror (errno));
          return;
        }
      struct stun_addr from;
      addr_from_sockaddr (&ss, &from);
      /* Peer datagrams never end an allocation, so the socket outlives this. */
      relay_server_process (m->server, g_get_real_time () / G_USEC_PER_SEC, &source,
                            &from, m->buf, (size_t)n);
    }
}

static gboolean
on_listener (GSocket *socket, GIOCondition cond, gpointer user_data)
{
  read_socket (user_data, socket, NULL);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_relayed (GSocket *socket, GIOCondition cond, gpointer user_data)
{
  struct relayed *r = user_data;
  read_socket (r->main, socket, r);
  return G_SOURCE_CONTINUE;
}

static void *
io_relay_open (void *user, uint16_t port, struct stun_addr *relayed_addr)
{
  RelayMain *m = user;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) socket
      = g_socket_new (g_inet_address_get_family (m->relay_ip), G_SOCKET_TYPE_DATAGRAM,
                      G_SOCKET_PROTOCOL_UDP, &error);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (m->relay_ip, port);
  if (socket == NULL || !g_socket_bind (socket, any, FALSE, &error))
    {
      if (port == 0)
        g_warning ("relayed socket: %s", error->message);
      return NULL;
    }
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname (g_socket_get_fd (socket), (struct sockaddr *)&ss, &sl) != 0)
    {
      g_warning ("relayed socket: %s", g_strerror (errno));
      return NULL;
    }
  addr_from_sockaddr (&ss, relayed_addr);
  struct relayed *r = g_new0 (struct relayed, 1);
  r->main = m;
  r->socket = g_steal_pointer (&socket);
  grow_socket_buffers (r->socket);
  r->source = g_socket_create_source (r->socket, G_IO_IN, NULL);
  g_source_set_callback (r->source, G_SOURCE_FUNC (on_relayed), r, NULL);
  g_source_attach (r->source, m->context);
  return r;
}

static void
io_relay_close (void *user, void *handle)
{
  struct relayed *r = handle;
  if (r == NULL)
    return;
  g_source_destroy (r->source);
  g_source_unref (r->source);
  g_socket_close (r->socket, NULL);
  g_object_unref (r->socket);
  g_free (r);
}

static void
io_send (void *user, void *handle, const struct stun_addr *to, const uint8_t *buf,
         size_t len)
{
  RelayMain *m = user;
  struct relayed *r = handle;
  GSocket *socket = r != NULL ? r->socket : m->listener;
  struct sockaddr_storage ss;
  socklen_t sl = addr_to_sockaddr (to, &ss);
  if (sendto (g_socket_get_fd (socket), buf, len, MSG_DONTWAIT, (struct sockaddr *)&ss,
              sl)
      < 0)
    g_debug ("sendto: %s", g_strerror (errno));
}

/* Options */

static gboolean
parse_uint (const char *name, const char *text, guint64 min, guint64 max, guint *out,
            GError **error)
{
  guint64 v;
  g_autoptr (GError) local = NULL;
  if (!g_ascii_string_to_unsigned (text, 10, min, max, &v, &local))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--%s: %s is not a number from %" G_GUINT64_FORMAT
                   " to %" G_GUINT64_FORMAT,
                   name, text, min, max);
      return FALSE;
    }
  *out = (guint)v;
  return TRUE;
}

/* ADDR:PORT or [ADDR6]:PORT, numeric only; NULL when malformed. */
static GInetSocketAddress *
host_port_new (const char *text)
{
  g_autofree char *host = NULL;
  const char *port;
  if (text[0] == '[')
    {
      const char *end = strstr (text, "]:");
      if (end == NULL)
        return NULL;
      host = g_strndup (text + 1, (gsize)(end - text - 1));
      port = end + 2;
    }
  else
    {
      const char *colon = strrchr (text, ':');
      if (colon == NULL || strchr (text, ':') != colon)
        return NULL;
      host = g_strndup (text, (gsize)(colon - text));
      port = colon + 1;
    }
  guint64 p;
  if (!g_ascii_string_to_unsigned (port, 10, 0, 65535, &p, NULL))
    return NULL;
  g_autoptr (GInetAddress) ip = g_inet_address_new_from_string (host);
  if (ip == NULL)
    return NULL;
  return G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (ip, (guint16)p));
}

static GInetSocketAddress *
parse_host_port (const char *text, GError **error)
{
  GInetSocketAddress *addr = host_port_new (text);
  if (addr == NULL)
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 "--listen: %s is not ADDR:PORT (numeric, [ADDR]:PORT for IPv6)", text);
  return addr;
}

/* The shared secret is the file's content without trailing whitespace. */
static uint8_t *
read_secret (const char *path, size_t *len, GError **error)
{
  char *text = NULL;
  gsize n = 0;
  if (!g_file_get_contents (path, &text, &n, error))
    return NULL;
  while (n > 0 && g_ascii_isspace (text[n - 1]))
    n--;
  if (n == 0)
    {
      OPENSSL_cleanse (text, strlen (text));
      g_free (text);
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "%s: the secret file is empty", path);
      return NULL;
    }
  *len = n;
  return (uint8_t *)text;
}

static gboolean
on_quit (gpointer user_data)
{
  RelayMain *m = user_data;
  g_message ("exiting on signal");
  g_main_loop_quit (m->loop);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_hup (gpointer user_data)
{
  RelayMain *m = user_data;
  g_autoptr (GError) error = NULL;
  size_t len = 0;
  uint8_t *secret = read_secret (m->secret_file, &len, &error);
  if (secret == NULL)
    {
      g_warning ("SIGHUP: keeping the old secret: %s", error->message);
      return G_SOURCE_CONTINUE;
    }
  relay_server_set_secret (m->server, secret, len);
  OPENSSL_cleanse (secret, len);
  g_free (secret);
  g_message ("SIGHUP: secret file reloaded");
  return G_SOURCE_CONTINUE;
}

static gboolean
on_tick (gpointer user_data)
{
  RelayMain *m = user_data;
  relay_server_expire (m->server, g_get_real_time () / G_USEC_PER_SEC);
  return G_SOURCE_CONTINUE;
}

static void
add_source (RelayMain *m, GSource *source, GSourceFunc func)
{
  g_source_set_callback (source, func, m, NULL);
  g_source_attach (source, m->context);
  g_ptr_array_add (m->sources, source);
}

static void
relay_main_free (RelayMain *m)
{
  if (m == NULL)
    return;
  g_clear_pointer (&m->server, relay_server_free); /* closes relayed sockets */
  if (m->sources != NULL)
    {
      for (guint i = 0; i < m->sources->len; i++)
        g_source_destroy (m->sources->pdata[i]);
      g_ptr_array_unref (m->sources);
    }
  if (m->listen_source != NULL)
    {
      g_source_destroy (m->listen_source);
      g_source_unref (m->listen_source);
    }
  g_clear_object (&m->listener);
  g_clear_object (&m->relay_ip);
  g_clear_pointer (&m->loop, g_main_loop_unref);
  g_clear_pointer (&m->context, g_main_context_unref);
  g_free (m->secret_file);
  g_free (m);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RelayMain, relay_main_free)

static int
fail (const char *what)
{
  fprintf (stderr, "p2ptun-relay: %s\n", what);
  return 2;
}

int
main (int argc, char **argv)
{
  g_autofree char *listen = NULL, *secret_file = NULL, *realm = NULL,
                  *relay_address = NULL;
  g_autofree char *max_alloc = NULL, *max_user = NULL, *max_perm = NULL, *max_chan = NULL;
  g_autofree char *max_life = NULL, *default_life = NULL;
  g_auto (GStrv) allow = NULL;
  GOptionEntry entries[] = {
    { "listen", 0, 0, G_OPTION_ARG_STRING, &listen,
      "UDP address to listen on for TURN and STUN (port 0: any; the real one is printed)",
      "ADDR:PORT" },
    { "secret-file", 0, 0, G_OPTION_ARG_FILENAME, &secret_file,
      "File holding the TURN REST shared secret (coturn's static-auth-secret); SIGHUP "
      "rereads it",
      "FILE" },
    { "realm", 0, 0, G_OPTION_ARG_STRING, &realm, "Authentication realm", "REALM" },
    { "relay-address", 0, 0, G_OPTION_ARG_STRING, &relay_address,
      "Address of the relayed sockets (default: the listen address)", "ADDR" },
    { "allow-peer", 0, 0, G_OPTION_ARG_STRING_ARRAY, &allow,
      "Allow relaying to peers in this range, even loopback or private ones (repeatable)",
      "CIDR" },
    { "max-allocations", 0, 0, G_OPTION_ARG_STRING, &max_alloc,
      "Allocations in all (default 1000)", "N" },
    { "max-allocations-per-user", 0, 0, G_OPTION_ARG_STRING, &max_user,
      "Allocations per username (default 10)", "N" },
    { "max-permissions", 0, 0, G_OPTION_ARG_STRING, &max_perm,
      "Permissions per allocation (default 32)", "N" },
    { "max-channels", 0, 0, G_OPTION_ARG_STRING, &max_chan,
      "Channels per allocation (default 32)", "N" },
    { "max-lifetime", 0, 0, G_OPTION_ARG_STRING, &max_life,
      "Longest allocation lifetime in seconds (default 3600)", "SECONDS" },
    { "default-lifetime", 0, 0, G_OPTION_ARG_STRING, &default_life,
      "Allocation lifetime when none is asked, and the least one (default 600)",
      "SECONDS" },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  g_autoptr (GOptionContext) octx = g_option_context_new ("- TURN relay for p2ptun");
  g_option_context_set_summary (
      octx,
      "A TURN server (RFC 8656) over UDP with TURN REST credentials: usernames are\n"
      "\"EXPIRY:NAME\" (EXPIRY in Unix seconds), passwords base64(HMAC-SHA1(secret, "
      "username)),\n"
      "as coturn's use-auth-secret. Prints \"listen ADDR:PORT\" and \"ready\" on stdout "
      "once\n"
      "listening. By default it refuses to relay to loopback, private, link-local,\n"
      "unspecified and multicast addresses; --allow-peer opens ranges for labs.\n"
      "SIGHUP rereads the secret file; SIGINT and SIGTERM exit.");
  g_option_context_add_main_entries (octx, entries, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    return fail (error->message);
  if (argc > 1)
    return fail ("unexpected argument; see --help");
  if (listen == NULL || secret_file == NULL || realm == NULL)
    return fail ("--listen, --secret-file and --realm are required; see --help");
  if (strlen (realm) == 0 || strlen (realm) > STUN_MAX_REALM_LEN)
    return fail ("--realm: must be 1 to 763 bytes");

  struct relay_config config;
  relay_config_init (&config);
  config.realm = g_strdup (realm);
  if ((max_alloc
       && !parse_uint ("max-allocations", max_alloc, 1, 1000000, &config.max_allocations,
                       &error))
      || (max_user
          && !parse_uint ("max-allocations-per-user", max_user, 1, 1000000,
                          &config.max_per_user, &error))
      || (max_perm
          && !parse_uint ("max-permissions", max_perm, 1, 10000, &config.max_permissions,
                          &error))
      || (max_chan
          && !parse_uint ("max-channels", max_chan, 1, 4096, &config.max_channels,
                          &error))
      || (max_life
          && !parse_uint ("max-lifetime", max_life, 60, 86400, &config.max_lifetime,
                          &error))
      || (default_life
          && !parse_uint ("default-lifetime", default_life, 60, 86400,
                          &config.default_lifetime, &error)))
    {
      relay_config_clear (&config);
      return fail (error->message);
    }
  if (config.default_lifetime > config.max_lifetime)
    {
      relay_config_clear (&config);
      return fail ("--default-lifetime must not exceed --max-lifetime");
    }
  for (size_t i = 0; allow != NULL && allow[i] != NULL; i++)
    {
      struct relay_cidr cidr;
      if (!relay_cidr_parse (allow[i], &cidr))
        {
          relay_config_clear (&config);
          g_autofree char *msg
              = g_strdup_printf ("--allow-peer: %s is not ADDR/PREFIX", allow[i]);
          return fail (msg);
        }
      if (config.allow_peers == NULL)
        config.allow_peers = g_array_new (FALSE, TRUE, sizeof (struct relay_cidr));
      g_array_append_val (config.allow_peers, cidr);
    }

  g_autoptr (GInetSocketAddress) listen_addr = parse_host_port (listen, &error);
  if (listen_addr == NULL)
    {
      relay_config_clear (&config);
      return fail (error->message);
    }
  g_autoptr (RelayMain) m = g_new0 (RelayMain, 1);
  m->secret_file = g_strdup (secret_file);
  if (relay_address != NULL)
    {
      m->relay_ip = g_inet_address_new_from_string (relay_address);
      if (m->relay_ip == NULL)
        {
          relay_config_clear (&config);
          return fail ("--relay-address: not a numeric address");
        }
    }
  else
    m->relay_ip = g_object_ref (g_inet_socket_address_get_address (listen_addr));
  /* Clients are told the relayed address: a wildcard says nothing. */
  if (g_inet_address_get_is_any (m->relay_ip))
    {
      relay_config_clear (&config);
      return fail ("--relay-address is required (a specific address) when --listen or "
                   "--relay-address is a wildcard address");
    }

  size_t secret_len = 0;
  uint8_t *secret = read_secret (secret_file, &secret_len, &error);
  if (secret == NULL)
    {
      relay_config_clear (&config);
      return fail (error->message);
    }

  g_log_writer_default_set_use_stderr (TRUE);
  m->context = g_main_context_new ();
  m->loop = g_main_loop_new (m->context, FALSE);
  m->sources = g_ptr_array_new_with_free_func ((GDestroyNotify)g_source_unref);
  struct relay_io io = {
    .relay_open = io_relay_open,
    .relay_close = io_relay_close,
    .send = io_send,
    .user = m,
  };
  m->server = relay_server_new (&config, &io, secret, secret_len);
  OPENSSL_cleanse (secret, secret_len);
  g_free (secret);

  m->listener = g_socket_new (
      g_inet_address_get_family (g_inet_socket_address_get_address (listen_addr)),
      G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, &error);
  if (m->listener == NULL
      || !g_socket_bind (m->listener, G_SOCKET_ADDRESS (listen_addr), FALSE, &error))
    {
      g_autofree char *msg = g_strdup_printf ("--listen %s: %s", listen, error->message);
      return fail (msg);
    }
  g_autoptr (GSocketAddress) local = g_socket_get_local_address (m->listener, &error);
  if (local == NULL)
    return fail (error->message);
  grow_socket_buffers (m->listener);
  m->listen_source = g_socket_create_source (m->listener, G_IO_IN, NULL);
  g_source_set_callback (m->listen_source, G_SOURCE_FUNC (on_listener), m, NULL);
  g_source_attach (m->listen_source, m->context);
  add_source (m, g_unix_signal_source_new (SIGINT), on_quit);
  add_source (m, g_unix_signal_source_new (SIGTERM), on_quit);
  add_source (m, g_unix_signal_source_new (SIGHUP), on_hup);
  add_source (m, g_timeout_source_new_seconds (1), on_tick);

  g_autofree char *ip = g_inet_address_to_string (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (local)));
  guint16 port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  if (strchr (ip, ':') != NULL)
    printf ("listen [%s]:%u\nready\n", ip, port);
  else
    printf ("listen %s:%u\nready\n", ip, port);
  fflush (stdout);
  g_message ("listening on UDP %s port %u, realm %s", ip, port, realm);

  g_main_loop_run (m->loop);
  return m->exit_code;
}
