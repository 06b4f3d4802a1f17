/* p2ptun-signal: the HTTPS mailbox server of p2ptun. See signaling/API.md. */
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/resource.h>

#include <gio/gio.h>
#include <glib-unix.h>
#include <p2ptun/p2ptun-version.h>

#include "accessfile.h"
#include "admincli.h"
#include "adminsock.h"
#include "cert.h"
#include "mailbox.h"
#include "promhttp.h"
#include "server.h"
#include "sigmsg.h"

#define SIGNAL_RATE_DEFAULT 50
#define SIGNAL_BURST_DEFAULT 100
/* Descriptors besides the clients' connections: stdio, the listening socket,
 * GLib's wakeups, GnuTLS's random device, the loaded modules. */
#define SIGNAL_FDS_RESERVED 64
/* RFC 8996: TLS 1.0 and 1.1 are deprecated. GIO has no call for a minimum
 * version; its GnuTLS backend takes this priority string from the
 * environment when it loads. */
#define SIGNAL_GNUTLS_PRIORITY "NORMAL:%COMPAT"
#define SIGNAL_GNUTLS_NO_OLD_TLS ":-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1"

static const char summary[]
    = "A small HTTPS mailbox through which p2ptun agents reach each other by\n"
      "peer-id (signaling/API.md). Clients authenticate with their own\n"
      "(self-signed) certificate; the server's own key lives in --state-dir.\n"
      "\n"
      "On start it prints, one per line on stdout:\n"
      "  url https://HOST:PORT   (the bound port when PORT is 0)\n"
      "  pin sha256//BASE64      (the server key's pin, for --pin of agents\n"
      "                           and curl --pinnedpubkey)\n"
      "  ready";

static const char description[]
    = "Only enrolled agents may use the server (and get relay credentials).\n"
      "The operator enrolls them with the commands below, which reach the\n"
      "running server through DIR/admin.sock (or edit DIR when none runs):\n"
      "  p2ptun-signal enroll --state-dir DIR [--reusable] [--expires 24h] [--note T]\n"
      "  p2ptun-signal enroll --state-dir DIR --peer PEER-ID | --seen\n"
      "  p2ptun-signal peers --state-dir DIR [--json]\n"
      "  p2ptun-signal revoke --state-dir DIR PEER-ID\n"
      "  p2ptun-signal tokens --state-dir DIR [--cancel ID]\n"
      "  p2ptun-signal policy --state-dir DIR PEER-ID|--default [--max-allocations N]\n"
      "                       [--max-bps B]\n"
      "(p2ptun-signal COMMAND --help says more.) --client-ca admits, besides,\n"
      "agents whose certificate that CA signed; --open admits everyone (a lab).\n"
      "\n"
      "Without --cert and --key, the first run creates an ECDSA P-256 key and a\n"
      "self-signed certificate in DIR (key.pem, cert.pem; mode 0600) and later\n"
      "runs reuse them. SIGINT or SIGTERM stop the server.\n"
      "\n"
      "Example:\n"
      "  p2ptun-signal --listen 0.0.0.0:8443 --state-dir /var/lib/p2ptun-signal \\\n"
      "                --stun stun.example.org:3478\n"
      "\n"
      "With --relay, /v1/ice-servers also hands out each relay with TURN REST\n"
      "credentials (coturn's use-auth-secret): username \"EXPIRY:PEER-ID\" of the\n"
      "caller, password base64(HMAC-SHA1(secret, username)), valid --turn-ttl\n"
      "seconds. The secret is the first line of --turn-secret-file, the same as\n"
      "the relay's (p2ptun-relay --secret-file, or coturn's static-auth-secret).\n"
      "Relays over TLS (turns:) are checked against the system's CAs and their\n"
      "host name, or, with --relay-pin, against that key pin only (for a relay\n"
      "with a self-signed certificate; p2ptun-relay prints its pin).";

typedef struct
{
  char *listen;
  char *state_dir;
  char *cert;
  char *key;
  char **stun;
  char **relay;
  char *relay_pin;
  char *turn_secret_file;
  char *turn_ttl;
  char *max_peers;
  char *rate;
  char *burst;
  char *max_connections;
  char *max_connections_per_address;
  char *client_ca;
  char *metrics;
  gboolean open;
} Options;

static void
options_clear (Options *o)
{
  g_free (o->listen);
  g_free (o->state_dir);
  g_free (o->cert);
  g_free (o->key);
  g_strfreev (o->stun);
  g_strfreev (o->relay);
  g_free (o->relay_pin);
  g_free (o->turn_secret_file);
  g_free (o->turn_ttl);
  g_free (o->max_peers);
  g_free (o->rate);
  g_free (o->burst);
  g_free (o->max_connections);
  g_free (o->max_connections_per_address);
  g_free (o->metrics);
  g_free (o->client_ca);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Options, options_clear)

static void G_GNUC_PRINTF (1, 2) G_GNUC_NORETURN die_usage (const char *format, ...)
{
  va_list args;
  char *text;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("p2ptun-signal: %s (see --help)\n", text);
  g_free (text); /* exit() runs no g_autofree cleanups */
  exit (2);
}

/* A decimal number in min..max: digits only, no sign, no spaces. */
static guint
parse_count (const char *option, const char *text, guint fallback, guint min, guint max)
{
  guint64 n;

  if (text == NULL)
    return fallback;
  if (text[0] < '0' || text[0] > '9'
      || !g_ascii_string_to_unsigned (text, 10, min, max, &n, NULL))
    die_usage ("%s: expected a whole number from %u to %u, got \"%s\"", option, min, max,
               text);
  return (guint)n;
}

/* "ADDR:PORT" or "[V6ADDR]:PORT"; ADDR an IP address, PORT 0..65535. */
static gboolean
parse_listen (const char *text, GInetAddress **addr, guint16 *port)
{
  g_autofree char *host = NULL;
  const char *port_text;
  guint64 n;

  if (text[0] == '[')
    {
      const char *close = strstr (text, "]:");
      if (close == NULL)
        return FALSE;
      host = g_strndup (text + 1, (gsize)(close - text - 1));
      port_text = close + 2;
      if (strchr (host, ':') == NULL)
        return FALSE;
    }
  else
    {
      const char *colon = strrchr (text, ':');
      if (colon == NULL)
        return FALSE;
      host = g_strndup (text, (gsize)(colon - text));
      port_text = colon + 1;
      if (strchr (host, ':') != NULL)
        return FALSE;
    }
  if (port_text[0] < '0' || port_text[0] > '9'
      || !g_ascii_string_to_unsigned (port_text, 10, 0, 65535, &n, NULL))
    return FALSE;
  *addr = g_inet_address_new_from_string (host);
  *port = (guint16)n;
  return *addr != NULL;
}

/* The first line of @path, trimmed; NULL (said why) on an unreadable or empty one. The
 * secret itself is never printed. */
static char *
read_secret (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0;
  char *nl;

  if (!g_file_get_contents (path, &contents, &len, &error))
    {
      g_printerr ("p2ptun-signal: --turn-secret-file: %s\n", error->message);
      return NULL;
    }
  if (memchr (contents, '\0', len) != NULL)
    {
      g_printerr ("p2ptun-signal: --turn-secret-file: %s holds a NUL byte\n", path);
      return NULL;
    }
  nl = strpbrk (contents, "\r\n");
  if (nl != NULL)
    *nl = '\0';
  g_strstrip (contents);
  if (contents[0] == '\0')
    {
      g_printerr ("p2ptun-signal: --turn-secret-file: the first line of %s is empty\n", path);
      return NULL;
    }
  return g_steal_pointer (&contents);
}

/* Before anything loads GIO's TLS backend: a priority string set by the
 * user is kept, with the old versions taken out of it. */
static void
refuse_old_tls (void)
{
  const char *user = g_getenv ("G_TLS_GNUTLS_PRIORITY");
  g_autofree char *priority
      = g_strconcat (user != NULL && user[0] != '\0' ? user : SIGNAL_GNUTLS_PRIORITY,
                     SIGNAL_GNUTLS_NO_OLD_TLS, NULL);

  g_setenv ("G_TLS_GNUTLS_PRIORITY", priority, TRUE);
}

/* Every connection costs a descriptor: the soft limit (often 1024) is raised
 * to the hard one, and a server that could not hold --max-connections does
 * not start. */
static gboolean
fd_limit_covers (guint connections)
{
  struct rlimit rl;
  rlim_t need = (rlim_t)connections + SIGNAL_FDS_RESERVED;

  if (getrlimit (RLIMIT_NOFILE, &rl) != 0)
    return TRUE; /* nothing known: accept() failing is reported then */
  if (rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      (void)setrlimit (RLIMIT_NOFILE, &rl);
      (void)getrlimit (RLIMIT_NOFILE, &rl);
    }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
    {
      g_printerr ("p2ptun-signal: --max-connections %u needs %lu file descriptors, the "
                  "limit is %lu (raise it, e.g. LimitNOFILE= or ulimit -n, or lower "
                  "--max-connections)\n",
                  connections, (unsigned long)need, (unsigned long)rl.rlim_cur);
      return FALSE;
    }
  return TRUE;
}

static gboolean
on_quit_signal (gpointer data)
{
  g_message ("stopping");
  g_main_loop_quit (data);
  return G_SOURCE_CONTINUE;
}

static void
watch_signal (GMainContext *ctx, int signum, GMainLoop *loop, GSource **out)
{
  *out = g_unix_signal_source_new (signum);
  g_source_set_callback (*out, on_quit_signal, loop, NULL);
  g_source_attach (*out, ctx);
}

static void
source_clear (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

int
main (int argc, char **argv)
{
  g_auto (Options) o = { 0 };
  gboolean version = FALSE;
  GOptionEntry entries[] = {
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { "listen", 'l', 0, G_OPTION_ARG_STRING, &o.listen,
      "Address and port to serve HTTPS on (port 0: any free port)", "ADDR:PORT" },
    { "state-dir", 'd', 0, G_OPTION_ARG_FILENAME, &o.state_dir,
      "Directory for the server's own key and certificate", "DIR" },
    { "cert", 0, 0, G_OPTION_ARG_FILENAME, &o.cert,
      "Certificate (PEM) to use instead of the one in DIR", "FILE" },
    { "key", 0, 0, G_OPTION_ARG_FILENAME, &o.key, "Private key (PEM) of --cert", "FILE" },
    { "stun", 's', 0, G_OPTION_ARG_STRING_ARRAY, &o.stun,
      "STUN server to hand out to agents; repeat for more (at most 8)", "HOST:PORT" },
    { "relay", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.relay,
      "TURN relay to hand out to agents: turn:HOST:PORT (UDP), "
      "turn:HOST:PORT?transport=tcp (TCP) or turns:HOST:PORT (TLS); repeat for more "
      "(at most 8). UDP and TCP relays must be given by IP address",
      "URI" },
    { "relay-pin", 0, 0, G_OPTION_ARG_STRING, &o.relay_pin,
      "Key pin of the turns: relays' certificate, sha256//BASE64 of its "
      "SubjectPublicKeyInfo", "PIN" },
    { "turn-secret-file", 0, 0, G_OPTION_ARG_FILENAME, &o.turn_secret_file,
      "File whose first line is the relays' shared secret (required with --relay)", "FILE" },
    { "turn-ttl", 0, 0, G_OPTION_ARG_STRING, &o.turn_ttl,
      "Seconds the handed-out relay credentials are valid (default 600: a revoked agent loses the relay within that time)", "SECONDS" },
    { "max-peers", 0, 0, G_OPTION_ARG_STRING, &o.max_peers,
      "Mailboxes held at most (default 10000)", "N" },
    { "rate", 0, 0, G_OPTION_ARG_STRING, &o.rate,
      "Requests per second per client (default 50)", "N" },
    { "burst", 0, 0, G_OPTION_ARG_STRING, &o.burst,
      "Requests at once per client (default 100)", "N" },
    { "max-connections", 0, 0, G_OPTION_ARG_STRING, &o.max_connections,
      "Connections held at most (default 1000)", "N" },
    { "max-connections-per-address", 0, 0, G_OPTION_ARG_STRING,
      &o.max_connections_per_address,
      "Connections held at most per client address (default 100)", "N" },
    { "client-ca", 0, 0, G_OPTION_ARG_FILENAME, &o.client_ca,
      "Admit agents whose client certificate this CA (PEM) signed, besides the "
      "enrolled ones", "FILE" },
    { "open", 0, 0, G_OPTION_ARG_NONE, &o.open,
      "Admit every agent that is not revoked, enrolled or not (for a lab)", NULL },
    { "metrics", 0, 0, G_OPTION_ARG_STRING, &o.metrics,
      "Serve Prometheus metrics at http://ADDR:PORT/metrics (off by default), e.g. "
      "127.0.0.1:9642; plain HTTP without authentication, so keep it on loopback: another "
      "address is served as given, with a warning",
      "ADDR:PORT" },
    G_OPTION_ENTRY_NULL,
  };
  g_autoptr (GOptionContext) octx = g_option_context_new ("- p2ptun signaling server");
  g_autoptr (GError) error = NULL;
  g_autoptr (GInetAddress) listen_addr = NULL;
  g_autoptr (GSocketAddress) sockaddr = NULL;
  g_autoptr (GTlsCertificate) cert = NULL;
  g_autoptr (SignalServer) server = NULL;
  g_autoptr (GInetSocketAddress) metrics_addr = NULL;
  g_autoptr (Promhttp) metrics = NULL; /* freed before the server it reads */
  g_autoptr (GMainLoop) loop = NULL;
  g_autofree char *cert_path = NULL;
  g_autofree char *key_path = NULL;
  g_autofree char *pin = NULL;
  g_autofree char *host_text = NULL;
  g_autofree char *turn_secret = NULL;
  GSource *sigint = NULL, *sigterm = NULL;
  g_autoptr (GTlsCertificate) client_ca = NULL;
  AdminSocket *admin = NULL;
  g_autoptr (AccessStore) access = NULL;
  int lock = -1;
  GMainContext *ctx = g_main_context_default ();
  SignalServerConfig config = { 0 };
  guint16 port = 0, bound_port = 0;

  if (admin_cli_command_first (argc, argv))
    return admin_cli_main (argc, argv);

  refuse_old_tls ();
  /* stdout carries the url/pin/ready lines that scripts read; logs go to stderr. */
  g_log_writer_default_set_use_stderr (TRUE);

  g_option_context_set_summary (octx, summary);
  g_option_context_set_description (octx, description);
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    die_usage ("%s", error->message);
  if (version)
    {
      printf ("p2ptun-signal %s\n", P2PTUN_VERSION_STRING);
      return 0;
    }
  if (argc > 1)
    die_usage ("unexpected argument \"%s\"", argv[1]);
  if (o.listen == NULL)
    die_usage ("--listen is required");
  if (o.state_dir == NULL && (o.cert == NULL || o.key == NULL))
    die_usage ("--state-dir is required unless --cert and --key are given");
  if (o.state_dir == NULL && !o.open)
    die_usage ("--state-dir is required: it keeps the enrolled peer-ids (or --open, for a "
               "lab)");
  if ((o.cert == NULL) != (o.key == NULL))
    die_usage ("--cert and --key go together");
  if (!parse_listen (o.listen, &listen_addr, &port))
    die_usage (
        "--listen: expected ADDR:PORT or [ADDR]:PORT with an IP address, got \"%s\"",
        o.listen);
  if (o.metrics != NULL)
    {
      metrics_addr = promhttp_parse_address ("metrics", o.metrics, &error);
      if (metrics_addr == NULL)
        die_usage ("%s", error->message);
    }
  for (gsize i = 0; o.stun != NULL && o.stun[i] != NULL; i++)
    {
      g_autofree char *h = NULL;
      guint16 p;

      if (i >= SIGMSG_MAX_ICE_SERVERS)
        die_usage ("--stun: at most %d servers", SIGMSG_MAX_ICE_SERVERS);
      if (!sigmsg_split_host_port (o.stun[i], &h, &p))
        die_usage ("--stun: expected HOST:PORT, got \"%s\"", o.stun[i]);
    }
  for (gsize i = 0; o.relay != NULL && o.relay[i] != NULL; i++)
    {
      SigmsgTurnTransport transport;
      g_autofree char *host = NULL;

      if (i >= SIGMSG_MAX_ICE_SERVERS)
        die_usage ("--relay: at most %d relays", SIGMSG_MAX_ICE_SERVERS);
      if (!sigmsg_turn_uri_split (o.relay[i], &host, NULL, &transport))
        die_usage ("--relay: expected turn:HOST:PORT, turn:HOST:PORT?transport=tcp or "
                   "turns:HOST:PORT, got \"%s\"", o.relay[i]);
      /* libnice takes relays by address; only our TLS shim resolves names. */
      if (transport != SIGMSG_TURN_TLS && !g_hostname_is_ip_address (host))
        die_usage ("--relay: a TURN relay over UDP or TCP must be given by IP address, "
                   "got \"%s\"", o.relay[i]);
    }
  if (o.relay_pin != NULL && !sigmsg_pin_is_valid (o.relay_pin))
    die_usage ("--relay-pin: expected sha256//BASE64 (44 characters), got \"%s\"",
               o.relay_pin);
  if (o.relay != NULL && o.relay[0] != NULL)
    {
      if (o.turn_secret_file == NULL)
        die_usage ("--relay needs --turn-secret-file");
      turn_secret = read_secret (o.turn_secret_file);
      if (turn_secret == NULL)
        return 1;
      config.turn = (const char *const *)o.relay;
      config.turn_secret = turn_secret;
      config.turn_pin = o.relay_pin;
    }
  else if (o.turn_secret_file != NULL || o.turn_ttl != NULL || o.relay_pin != NULL)
    die_usage ("--turn-secret-file, --turn-ttl and --relay-pin go with --relay");
  config.turn_ttl = parse_count ("--turn-ttl", o.turn_ttl, 600, 10, 31536000);
  config.max_peers
      = parse_count ("--max-peers", o.max_peers, MAILBOX_DEFAULT_PEERS_MAX, 1, 10000000);
  config.rate = parse_count ("--rate", o.rate, SIGNAL_RATE_DEFAULT, 1, 1000000);
  config.burst = parse_count ("--burst", o.burst, SIGNAL_BURST_DEFAULT, 1, 1000000);
  config.stun = (const char *const *)o.stun;
  config.connections = (SignalAcceptLimits){
    .max_total = parse_count ("--max-connections", o.max_connections,
                              SIGNAL_ACCEPT_DEFAULT_MAX_TOTAL, 1, 1000000),
    .max_per_address
    = parse_count ("--max-connections-per-address", o.max_connections_per_address,
                   SIGNAL_ACCEPT_DEFAULT_MAX_PER_ADDRESS, 1, 1000000),
    .handshakes_per_address = SIGNAL_ACCEPT_DEFAULT_HANDSHAKES_PER_ADDRESS,
    .handshake_ms = SIGNAL_ACCEPT_DEFAULT_HANDSHAKE_MS,
    .request_ms = SIGNAL_ACCEPT_DEFAULT_REQUEST_MS,
  };
  if (!fd_limit_covers (config.connections.max_total))
    return 1;

  if (o.client_ca != NULL)
    {
      client_ca = g_tls_certificate_new_from_file (o.client_ca, &error);
      if (client_ca == NULL)
        {
          g_printerr ("p2ptun-signal: --client-ca: %s\n", error->message);
          return 1;
        }
    }
  if (o.state_dir != NULL)
    {
      if (g_mkdir_with_parents (o.state_dir, 0700) != 0)
        {
          g_printerr ("p2ptun-signal: --state-dir %s: %s\n", o.state_dir, g_strerror (errno));
          return 1;
        }
      lock = access_file_lock (o.state_dir, &error);
      if (lock < 0)
        {
          g_printerr ("p2ptun-signal: %s\n", error->message);
          return 1;
        }
      access = access_file_load (o.state_dir, &error);
      if (access == NULL)
        {
          g_printerr ("p2ptun-signal: %s\n", error->message);
          return 1;
        }
      config.state_dir = o.state_dir;
    }
  config.open = o.open;
  config.client_ca = client_ca;
  if (o.open)
    g_printerr ("p2ptun-signal: WARNING: --open: every agent may use this server and get "
                "relay credentials, enrolled or not; for a lab only\n");

  host_text = g_inet_address_to_string (listen_addr);
  if (o.cert != NULL)
    {
      cert_path = g_strdup (o.cert);
      key_path = g_strdup (o.key);
    }
  else if (!signal_cert_ensure (o.state_dir, host_text, &cert_path, &key_path, &error))
    {
      g_printerr ("p2ptun-signal: %s\n", error->message);
      return 1;
    }
  cert = g_tls_certificate_new_from_files (cert_path, key_path, &error);
  if (cert == NULL)
    {
      g_printerr ("p2ptun-signal: cannot load %s and %s: %s\n", cert_path, key_path,
                  error->message);
      return 1;
    }
  pin = signal_cert_pin (cert, &error);
  if (pin == NULL)
    {
      g_printerr ("p2ptun-signal: %s\n", error->message);
      return 1;
    }

  config.access = g_steal_pointer (&access);
  server = signal_server_new (ctx, &config, cert);
  if (o.state_dir != NULL)
    {
      admin = admin_socket_new (ctx, o.state_dir, signal_server_admin, server, &error);
      if (admin == NULL)
        {
          g_printerr ("p2ptun-signal: %s\n", error->message);
          return 1;
        }
    }
  sockaddr = g_inet_socket_address_new (listen_addr, port);
  if (!signal_server_listen (server, sockaddr, &bound_port, &error))
    {
      g_printerr ("p2ptun-signal: %s: %s\n", o.listen, error->message);
      return 1;
    }

  if (g_inet_address_get_family (listen_addr) == G_SOCKET_FAMILY_IPV6)
    printf ("url https://[%s]:%u\n", host_text, (unsigned)bound_port);
  else
    printf ("url https://%s:%u\n", host_text, (unsigned)bound_port);
  printf ("pin %s\n", pin);
  if (metrics_addr != NULL)
    {
      g_autofree char *where = NULL;

      metrics = promhttp_new (ctx, metrics_addr, signal_server_metrics_text, server, &error);
      if (metrics == NULL)
        {
          g_printerr ("p2ptun-signal: --metrics %s: %s\n", o.metrics, error->message);
          return 1;
        }
      where = promhttp_address (metrics);
      printf ("metrics %s\n", where);
    }
  printf ("ready\n");
  fflush (stdout);

  loop = g_main_loop_new (ctx, FALSE);
  watch_signal (ctx, SIGINT, loop, &sigint);
  watch_signal (ctx, SIGTERM, loop, &sigterm);
  g_message ("serving on port %u", (unsigned)bound_port);
  g_main_loop_run (loop);

  source_clear (&sigint);
  source_clear (&sigterm);
  admin_socket_free (admin);
  g_clear_pointer (&metrics, promhttp_free);
  signal_server_flush (server);
  g_clear_pointer (&server, signal_server_free);
  if (lock >= 0)
    close (lock);
  return 0;
}
