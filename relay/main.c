/* p2ptun-relay: options, signals and timers around the I/O shell (shell.h)
 * and the protocol core (server.h). One UDP listener and a TCP listener on
 * the same address and port, optionally a TLS listener, and one UDP socket
 * per allocation, all on one GMainContext. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <gio/gio.h>
#include <glib-unix.h>
#include <openssl/crypto.h>
#include <p2ptun/p2ptun-version.h>

#include "promhttp.h"
#include "shell.h"

/* With port 0, tries to find a port free for both UDP and TCP. */
#define RELAY_BIND_TRIES 20

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
parse_host_port (const char *option, const char *text, GError **error)
{
  GInetSocketAddress *addr = host_port_new (text);
  if (addr == NULL)
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 "--%s: %s is not ADDR:PORT (numeric, [ADDR]:PORT for IPv6)", option,
                 text);
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
  if (m->tls_ctx != NULL)
    {
      /* Renewed certificates: new connections get the new context;
       * established ones keep theirs (each SSL holds a reference). */
      SSL_CTX *ctx = relay_tls_context_new (m->tls_cert, m->tls_key, &error);
      if (ctx == NULL)
        g_warning ("SIGHUP: keeping the old certificate: %s", error->message);
      else
        {
          SSL_CTX_free (m->tls_ctx);
          m->tls_ctx = ctx;
          g_message ("SIGHUP: TLS certificate and key reloaded");
        }
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_tick (gpointer user_data)
{
  RelayMain *m = user_data;
  relay_server_expire (m->server, g_get_real_time ());
  relay_conns_tick (m);
  relay_udp_flush (m);
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
  /* Connections first (they free their allocations in the core), then the
   * core (closes the relayed sockets), then the UDP listener. */
  relay_metrics_stop (m);
  if (m->server != NULL)
    relay_conns_stop (m);
  g_clear_pointer (&m->server, relay_server_free);
  relay_udp_stop (m);
  if (m->sources != NULL)
    {
      for (guint i = 0; i < m->sources->len; i++)
        g_source_destroy (m->sources->pdata[i]);
      g_ptr_array_unref (m->sources);
    }
  g_clear_pointer (&m->tls_ctx, SSL_CTX_free);
  g_clear_object (&m->relay_ip);
  g_clear_pointer (&m->loop, g_main_loop_unref);
  g_clear_pointer (&m->context, g_main_context_unref);
  g_free (m->secret_file);
  g_free (m->tls_cert);
  g_free (m->tls_key);
  g_free (m);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RelayMain, relay_main_free)

static int
fail (const char *what)
{
  fprintf (stderr, "p2ptun-relay: %s\n", what);
  return 2;
}

/* Descriptors besides relayed sockets and connections: stdio, the UDP, TCP
 * and TLS listeners, GLib's wakeup and signal descriptors, a secret or
 * certificate file being reread, the sockets tried for an even port. */
#define RELAY_FD_RESERVE 32

/* Raises the soft limit of descriptors to the hard one, and checks that it
 * covers the worst case the limits allow: one UDP socket per allocation and
 * per reserved port (EVEN-PORT, up to --max-allocations of each), one per
 * TCP or TLS connection. Without this check, a flood of allocations would
 * make accept() and socket() fail for everyone. NULL when it does, else the
 * one-line reason (to free). */
static char *
check_fd_limit (guint max_allocations, guint max_conns)
{
  struct rlimit rl;
  if (getrlimit (RLIMIT_NOFILE, &rl) != 0)
    return g_strdup_printf ("getrlimit: %s", g_strerror (errno));
  if (rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      (void)setrlimit (RLIMIT_NOFILE, &rl);
      (void)getrlimit (RLIMIT_NOFILE, &rl);
    }
  guint64 need = 2 * (guint64)max_allocations + max_conns + RELAY_FD_RESERVE;
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
    return NULL;
  return g_strdup_printf (
      "too few file descriptors: --max-allocations %u (and as many reserved ports), "
      "--max-connections %u and %u more need %" G_GUINT64_FORMAT
      ", but RLIMIT_NOFILE is %" G_GUINT64_FORMAT
      "; raise it (ulimit -n, systemd's LimitNOFILE=) or lower those options",
      max_allocations, max_conns, (guint)RELAY_FD_RESERVE, need, (guint64)rl.rlim_cur);
}

/* "listen ADDR:PORT" style line for stdout and the log. */
static char *
socket_address_text (GSocket *socket)
{
  g_autoptr (GSocketAddress) local = g_socket_get_local_address (socket, NULL);
  if (local == NULL)
    return g_strdup ("?");
  g_autofree char *ip = g_inet_address_to_string (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (local)));
  guint16 port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  return strchr (ip, ':') != NULL ? g_strdup_printf ("[%s]:%u", ip, port)
                                  : g_strdup_printf ("%s:%u", ip, port);
}

/* UDP and TCP on the same address and port (as coturn on 3478). With port
 * 0, the port the kernel gives UDP is tried for TCP, a few times. */
static gboolean
listen_udp_tcp (RelayMain *m, GInetSocketAddress *addr, GError **error)
{
  guint16 want = g_inet_socket_address_get_port (addr);
  GInetAddress *ip = g_inet_socket_address_get_address (addr);
  for (int i = 0; i < RELAY_BIND_TRIES; i++)
    {
      g_clear_error (error);
      if (!relay_udp_start (m, addr, error))
        return FALSE;
      g_autoptr (GSocketAddress) local = g_socket_get_local_address (m->listener, error);
      if (local == NULL)
        return FALSE;
      g_autoptr (GSocketAddress) tcp = g_inet_socket_address_new (
          ip, g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local)));
      if (relay_tcp_start (m, G_INET_SOCKET_ADDRESS (tcp), error))
        return TRUE;
      relay_udp_stop (m);
      if (want != 0)
        return FALSE;
    }
  return FALSE;
}

int
main (int argc, char **argv)
{
  g_autofree char *listen = NULL, *secret_file = NULL, *realm = NULL,
                  *relay_address = NULL;
  g_autofree char *max_alloc = NULL, *max_user = NULL, *max_perm = NULL, *max_chan = NULL;
  g_autofree char *max_addr = NULL;
  g_autofree char *max_life = NULL, *default_life = NULL, *max_bps = NULL;
  g_autofree char *tls_listen = NULL, *tls_cert = NULL, *tls_key = NULL;
  g_autofree char *max_conns = NULL, *max_conns_addr = NULL, *idle = NULL;
  g_autofree char *metrics = NULL;
  g_auto (GStrv) allow = NULL;
  gboolean version = FALSE;
  GOptionEntry entries[] = {
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { "listen", 0, 0, G_OPTION_ARG_STRING, &listen,
      "Address to listen on for TURN and STUN, over UDP and TCP on the same port (port "
      "0: "
      "any; the real one is printed)",
      "ADDR:PORT" },
    { "tls-listen", 0, 0, G_OPTION_ARG_STRING, &tls_listen,
      "Also listen for TURN over TLS (TLS 1.2 or 1.3) here; needs --tls-cert and "
      "--tls-key",
      "ADDR:PORT" },
    { "tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &tls_cert,
      "PEM certificate chain of the TLS listener; SIGHUP rereads it", "FILE" },
    { "tls-key", 0, 0, G_OPTION_ARG_FILENAME, &tls_key,
      "PEM private key of the TLS listener; SIGHUP rereads it", "FILE" },
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
      "Allocations per user: per NAME of the REST username EXPIRY:NAME, whatever its "
      "EXPIRY (default 30: UDP, TCP and TLS allocations for 10 tunnels); a username's "
      "a=N replaces it for that peer",
      "N" },
    { "max-allocations-per-address", 0, 0, G_OPTION_ARG_STRING, &max_addr,
      "Allocations from one client IP address, over UDP, TCP and TLS together (default "
      "100: a carrier-grade NAT puts many phones behind one address, so this is a tenth "
      "of the default --max-allocations, not a handful)",
      "N" },
    { "max-permissions", 0, 0, G_OPTION_ARG_STRING, &max_perm,
      "Permissions per allocation (default 32)", "N" },
    { "max-channels", 0, 0, G_OPTION_ARG_STRING, &max_chan,
      "Channels per allocation (default 32)", "N" },
    { "max-lifetime", 0, 0, G_OPTION_ARG_STRING, &max_life,
      "Longest allocation lifetime in seconds (default 3600)", "SECONDS" },
    { "default-lifetime", 0, 0, G_OPTION_ARG_STRING, &default_life,
      "Allocation lifetime when none is asked, and the least one (default 600)",
      "SECONDS" },
    { "max-bps", 0, 0, G_OPTION_ARG_STRING, &max_bps,
      "Relayed bytes (not bits) per second per allocation, both directions together, as "
      "coturn's max-bps; over it data is dropped and logged (default 0: no limit); a "
      "username's b=N replaces it for the allocations made with it",
      "BYTES" },
    { "max-connections", 0, 0, G_OPTION_ARG_STRING, &max_conns,
      "TCP and TLS connections in all (default 1000)", "N" },
    { "max-connections-per-address", 0, 0, G_OPTION_ARG_STRING, &max_conns_addr,
      "TCP and TLS connections from one IP address (default 100)", "N" },
    { "idle-timeout", 0, 0, G_OPTION_ARG_STRING, &idle,
      "Close a TCP or TLS connection without an allocation after this many seconds "
      "without input (default 30)",
      "SECONDS" },
    { "metrics", 0, 0, G_OPTION_ARG_STRING, &metrics,
      "Serve Prometheus metrics at http://ADDR:PORT/metrics (off by default), e.g. "
      "127.0.0.1:9641; plain HTTP without authentication, so keep it on loopback: another "
      "address is served as given, with a warning",
      "ADDR:PORT" },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  g_autoptr (GOptionContext) octx = g_option_context_new ("- TURN relay for p2ptun");
  g_option_context_set_summary (
      octx,
      "A TURN server (RFC 8656) over UDP, TCP and TLS with TURN REST credentials:\n"
      "usernames are \"EXPIRY:NAME\" (EXPIRY in Unix seconds), passwords\n"
      "base64(HMAC-SHA1(secret, username)), as coturn's use-auth-secret. A NAME that is\n"
      "a peer-id may carry options, \"EXPIRY:PEERID:a=N,b=N\": a= allocations for the\n"
      "peer, b= bytes per second per allocation. A username is refused once its EXPIRY\n"
      "has come, on every request, and an allocation ends at the EXPIRY of the username\n"
      "that made it (RFC 8656 section 5: later requests must use the same username);\n"
      "a client must move to a new allocation, with fresh credentials, before then.\n"
      "Relaying to peers is over UDP. An allocation made over a TCP or TLS connection\n"
      "ends when the connection closes. The TLS listener closes a connection whose\n"
      "first byte does not\n"
      "start a TLS handshake. Prints \"listen ADDR:PORT\" (UDP and TCP), \"tls-listen\n"
      "ADDR:PORT\" and \"tls-pin sha256//BASE64\" (the certificate's key pin, for\n"
      "p2ptun-signal --relay-pin) and \"ready\" on stdout once listening. By default it\n"
      "refuses to relay\n"
      "to loopback, private, link-local, unspecified and multicast addresses;\n"
      "--allow-peer opens ranges for labs. At its own relayed address it relays only to\n"
      "the exact address and port of a live allocation (relay to relay), checked for\n"
      "every datagram, unless --allow-peer covers that address. A TCP or TLS connection\n"
      "that has not finished its TLS handshake and first request within 5 s is closed.\n"
      "It refuses to start when RLIMIT_NOFILE cannot hold the sockets its limits allow.\n"
      "A client that does not read its TCP or TLS\n"
      "connection loses relayed data past a 256 KiB queue. SIGHUP rereads the secret\n"
      "file and the TLS certificate and key; SIGINT and SIGTERM exit.");
  g_option_context_add_main_entries (octx, entries, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    return fail (error->message);
  if (version)
    {
      printf ("p2ptun-relay %s\n", P2PTUN_VERSION_STRING);
      return 0;
    }
  if (argc > 1)
    return fail ("unexpected argument; see --help");
  if (listen == NULL || secret_file == NULL || realm == NULL)
    return fail ("--listen, --secret-file and --realm are required; see --help");
  if (strlen (realm) == 0 || strlen (realm) > STUN_MAX_REALM_LEN)
    return fail ("--realm: must be 1 to 763 bytes");
  if ((tls_listen != NULL) != (tls_cert != NULL)
      || (tls_cert != NULL) != (tls_key != NULL))
    return fail ("--tls-listen, --tls-cert and --tls-key go together; see --help");

  struct relay_config config;
  relay_config_init (&config);
  config.realm = g_strdup (realm);
  guint n_conns = RELAY_DEFAULT_MAX_CONNS,
        n_conns_addr = RELAY_DEFAULT_MAX_CONNS_PER_ADDR;
  guint idle_timeout = RELAY_DEFAULT_IDLE_TIMEOUT;
  guint64 bps = 0;
  if ((max_alloc
       && !parse_uint ("max-allocations", max_alloc, 1, 1000000, &config.max_allocations,
                       &error))
      || (max_user
          && !parse_uint ("max-allocations-per-user", max_user, 1, 1000000,
                          &config.max_per_user, &error))
      || (max_addr
          && !parse_uint ("max-allocations-per-address", max_addr, 1, 1000000,
                          &config.max_per_address, &error))
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
                          &config.default_lifetime, &error))
      || (max_conns
          && !parse_uint ("max-connections", max_conns, 0, 1000000, &n_conns, &error))
      || (max_conns_addr
          && !parse_uint ("max-connections-per-address", max_conns_addr, 1, 1000000,
                          &n_conns_addr, &error))
      || (idle && !parse_uint ("idle-timeout", idle, 1, 86400, &idle_timeout, &error)))
    {
      relay_config_clear (&config);
      return fail (error->message);
    }
  if (max_bps != NULL
      && !g_ascii_string_to_unsigned (max_bps, 10, 0, RELAY_MAX_BPS_LIMIT, &bps, NULL))
    {
      relay_config_clear (&config);
      return fail ("--max-bps: not a number from 0 to 1000000000000");
    }
  config.max_bps = bps;
  g_autofree char *fd_problem = check_fd_limit (config.max_allocations, n_conns);
  if (fd_problem != NULL)
    {
      relay_config_clear (&config);
      return fail (fd_problem);
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

  g_autoptr (GInetSocketAddress) listen_addr = parse_host_port ("listen", listen, &error);
  g_autoptr (GInetSocketAddress) tls_addr = NULL;
  g_autoptr (GInetSocketAddress) metrics_addr = NULL;
  if (listen_addr != NULL && tls_listen != NULL)
    tls_addr = parse_host_port ("tls-listen", tls_listen, &error);
  if (listen_addr != NULL && metrics != NULL && error == NULL)
    metrics_addr = promhttp_parse_address ("metrics", metrics, &error);
  if (listen_addr == NULL || (tls_listen != NULL && tls_addr == NULL)
      || (metrics != NULL && metrics_addr == NULL))
    {
      relay_config_clear (&config);
      return fail (error->message);
    }
  g_autoptr (RelayMain) m = g_new0 (RelayMain, 1);
  m->secret_file = g_strdup (secret_file);
  m->max_conns = n_conns;
  m->max_conns_per_addr = n_conns_addr;
  m->idle_timeout = idle_timeout;
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
  if (tls_cert != NULL)
    {
      m->tls_cert = g_strdup (tls_cert);
      m->tls_key = g_strdup (tls_key);
      m->tls_ctx = relay_tls_context_new (tls_cert, tls_key, &error);
      if (m->tls_ctx == NULL)
        {
          relay_config_clear (&config);
          return fail (error->message);
        }
    }

  size_t secret_len = 0;
  uint8_t *secret = read_secret (secret_file, &secret_len, &error);
  if (secret == NULL)
    {
      relay_config_clear (&config);
      return fail (error->message);
    }

  /* Writes to a connection the client closed must fail, not kill. */
  signal (SIGPIPE, SIG_IGN);
  g_log_writer_default_set_use_stderr (TRUE);
  m->context = g_main_context_new ();
  m->loop = g_main_loop_new (m->context, FALSE);
  m->sources = g_ptr_array_new_with_free_func ((GDestroyNotify)g_source_unref);
  struct relay_io io = {
    .relay_open = relay_io_relay_open,
    .relay_close = relay_io_relay_close,
    .send = relay_io_send,
    .conn_send = relay_conn_io_send,
    .user = m,
  };
  m->server = relay_server_new (&config, &io, secret, secret_len);
  OPENSSL_cleanse (secret, secret_len);
  g_free (secret);

  if (!listen_udp_tcp (m, listen_addr, &error))
    {
      g_autofree char *msg = g_strdup_printf ("--listen %s: %s", listen, error->message);
      return fail (msg);
    }
  if (tls_addr != NULL && !relay_tls_start (m, tls_addr, &error))
    {
      g_autofree char *msg
          = g_strdup_printf ("--tls-listen %s: %s", tls_listen, error->message);
      return fail (msg);
    }
  if (metrics_addr != NULL && !relay_metrics_start (m, metrics_addr, &error))
    {
      g_autofree char *msg = g_strdup_printf ("--metrics %s: %s", metrics, error->message);
      return fail (msg);
    }
  add_source (m, g_unix_signal_source_new (SIGINT), on_quit);
  add_source (m, g_unix_signal_source_new (SIGTERM), on_quit);
  add_source (m, g_unix_signal_source_new (SIGHUP), on_hup);
  add_source (m, g_timeout_source_new_seconds (1), on_tick);

  g_autofree char *where = socket_address_text (m->listener);
  g_autofree char *tls_where
      = m->tls_listener != NULL ? socket_address_text (m->tls_listener) : NULL;
  printf ("listen %s\n", where);
  if (tls_where != NULL)
    {
      g_autofree char *pin = relay_tls_pin (m->tls_ctx);
      printf ("tls-listen %s\n", tls_where);
      if (pin != NULL)
        printf ("tls-pin %s\n", pin);
    }
  if (m->metrics != NULL)
    {
      g_autofree char *metrics_where = relay_metrics_address (m);
      printf ("metrics %s\n", metrics_where);
    }
  printf ("ready\n");
  fflush (stdout);
  g_message ("listening on UDP and TCP %s%s%s, realm %s", where,
             tls_where != NULL ? ", TLS " : "", tls_where != NULL ? tls_where : "",
             realm);

  g_main_loop_run (m->loop);
  return m->exit_code;
}
