/* p2ptun-agent: the command line over libp2ptun. It owns the main loop,
 * the signals, what is printed and the exit code. */
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <glib-unix.h>
#include <p2ptun/p2ptun.h>

#include "control.h"
#include "loglevel.h"
#include "metrics.h"
#include "promhttp.h"
#include "qr.h"
#include "status.h"

#define CONFIG_FILE "agent.conf"
#define CONFIG_GROUP "agent"

static const char usage_summary[] =
  "Commands:\n"
  "  id                 print this agent's peer-id (creates the identity on first use)\n"
  "  serve              expose services to trusted peers\n"
  "  pair PEER-ID       open a tunnel to a peer and forward ports to its services\n"
  "  enroll TOKEN       present an enrollment token to the signaling server, once\n"
  "                     (TOKEN '-': read it from standard input)\n"
  "  csr                print a certificate request for this agent's key, for a CA\n"
  "  status             print the tunnels of the running agents of the config directory\n"
  "\n"
  "Run 'p2ptun-agent COMMAND --help' for the options of a command. The options\n"
  "every command takes may also come before it (p2ptun-agent --config DIR id):\n"
  "  -c, --config DIR     agent directory (default $XDG_CONFIG_HOME/p2ptun)\n"
  "  -v, --verbose        the same as --log-level debug\n"
  "  --log-level LEVEL    error, warning, message (default), info or debug: info and\n"
  "                       debug for p2ptun's own log domains; G_MESSAGES_DEBUG adds\n"
  "                       the domains it names (or all) at any level\n"
  "  --version            print the version and exit\n"
  "\n"
  "Defaults come from the environment (P2PTUN_SIGNAL, P2PTUN_SIGNAL_PIN) and from\n"
  "the [agent] group of agent.conf in the config directory (keys: signal,\n"
  "signal-pin, cert, expose, trust, local-address; lists separated by ';').\n"
  "\n"
  "The data path, for comparisons and for networks that misbehave:\n"
  "  P2PTUN_UDP_BATCH=gso|sendmmsg|off  how a direct pair's records are sent\n"
  "                                     (default gso; off: one by one through libnice)\n"
  "  P2PTUN_MAX_DATAGRAM=BYTES          the largest datagram sent (1200 to 16448;\n"
  "                                     default: what the route to the peer carries)";

/* A certificate signed by a CA, in the agent directory (identity.h). */
#define SIGNED_CERT_FILE "signed-cert.pem"

static const char enroll_description[]
    = "A signaling server admits only the agents its operator enrolled. The operator runs\n"
      "'p2ptun-signal enroll' and hands out the token it prints; this command presents it\n"
      "once, over the agent's own certificate, and the server admits this agent's peer-id\n"
      "from then on. Prints 'enrolled on URL as PEER-ID' (or 'already enrolled ...').\n"
      "\n"
      "TOKEN is p2ptun1- and 32 characters of a-z and 2-7. Give '-' to read it from the\n"
      "first line of standard input (without echo on a terminal), so that it does not\n"
      "show in the process list. The token is never printed or logged.\n"
      "\n"
      "Example:\n"
      "  p2ptun-agent enroll --signal https://signal.example.org:8443 --signal-pin "
      "sha256//... -";

static const char csr_description[]
    = "Prints a PKCS#10 certificate request (PEM) for this agent's key, subject\n"
      "CN=PEER-ID, for an organisation's CA to sign: a signaling server started with\n"
      "--client-ca admits the agents whose certificate that CA signed. Put the signed\n"
      "certificate (then any chain certificates) in the agent directory as\n"
      SIGNED_CERT_FILE ", or give it with --cert FILE: the agent then presents it to\n"
      "the signaling server, after checking that it is for its own key. The peer-id\n"
      "stays the hash of the key; tunnels between agents go on using the self-signed\n"
      "certificate.\n"
      "\n"
      "Example (a CA made with openssl):\n"
      "  p2ptun-agent csr > agent.csr\n"
      "  openssl x509 -req -in agent.csr -CA ca.crt -CAkey ca.key -days 365 \\\n"
      "      -copy_extensions copy -out ~/.config/p2ptun/" SIGNED_CERT_FILE;

static const char status_description[]
    = "Asks every 'serve' and 'pair' of the config directory that runs now, on its\n"
      "control socket, and prints each tunnel: the peer (with the NAME of --trust\n"
      "NAME=PEER-ID), the path (direct or relayed, the candidate types and addresses,\n"
      "udp, tcp or tls), the round-trip time, the packets lost, bytes and packets each\n"
      "way, open streams and UDP flows, uptime, path changes, ICE restarts, outages\n"
      "and reconnects. With no agent running it says so and exits with 1.\n"
      "\n"
      "The control sockets: $XDG_RUNTIME_DIR/p2ptun/HASH/PID.sock (HASH from the config\n"
      "directory's path), or DIR/run/PID.sock without XDG_RUNTIME_DIR; mode 0600 in a\n"
      "0700 directory, for the same user or root only. No keys or secrets are shown.";

typedef struct
{
  char *config_dir;
  char *signal_url;
  char *signal_pin;
  char *cert; /* --cert: presented to the signaling server */
  char **expose;
  char **trust;       /* peer-ids, once options_check took the names off */
  GHashTable *trust_names; /* peer-id -> NAME of --trust NAME=PEER-ID */
  char **forward;
  char **udp_forward;
  char **media; /* -M: more than one is refused (one leg per tunnel) */
  int udp_timeout_s;
  char *stdio_service;
  char **local_addresses;
  gboolean relay_only;
  gboolean json; /* status --json */
  int timeout_s;
  int hold_s;
  int give_up_after_s;
  gboolean verbose;
  char *log_level;
  gboolean qr;
  char *metrics; /* --metrics ADDR:PORT */
} Options;

/* A UDP flow's default idle time, and the longest allowed. */
#define UDP_TIMEOUT_DEFAULT_S 60
#define UDP_TIMEOUT_MAX_S 86400
/* How long streams wait for a silent peer (p2ptun_config_set_hold). */
#define HOLD_DEFAULT_S 600
#define HOLD_MAX_S 86400
/* The longest a service name may be (PROTOCOL.md). */
#define SERVICE_NAME_MAX 64
/* The longest name of --trust NAME=PEER-ID. */
#define TRUST_NAME_MAX 64

static void
options_clear (Options *o)
{
  g_free (o->config_dir);
  g_free (o->log_level);
  g_free (o->metrics);
  g_free (o->signal_url);
  g_free (o->signal_pin);
  g_free (o->cert);
  g_strfreev (o->expose);
  g_strfreev (o->trust);
  g_clear_pointer (&o->trust_names, g_hash_table_unref);
  g_strfreev (o->forward);
  g_strfreev (o->udp_forward);
  g_strfreev (o->media);
  g_free (o->stdio_service);
  g_strfreev (o->local_addresses);
}

/* One line on stderr, "p2ptun-agent: PREFIX...". */
static void
say_va (const char *prefix, const char *format, va_list ap) G_GNUC_PRINTF (2, 0);

static void
say_va (const char *prefix, const char *format, va_list ap)
{
  g_autofree char *text = g_strdup_vprintf (format, ap);

  fprintf (stderr, "p2ptun-agent: %s%s\n", prefix, text);
  fflush (stderr);
}

static void
say (const char *format, ...) G_GNUC_PRINTF (1, 2);

static void
say (const char *format, ...)
{
  va_list ap;

  va_start (ap, format);
  say_va ("", format, ap);
  va_end (ap);
}

static int
fail (const char *format, ...) G_GNUC_PRINTF (1, 2);

static int
fail (const char *format, ...)
{
  va_list ap;

  va_start (ap, format);
  say_va ("error: ", format, ap);
  va_end (ap);
  return 1;
}

static char **
strv_concat (char **a, char **b)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

  if (a)
    g_strv_builder_addv (builder, (const char **) a);
  if (b)
    g_strv_builder_addv (builder, (const char **) b);
  return g_strv_builder_end (builder);
}

/* Flags win over the environment, which wins over agent.conf. Lists from the
 * file are added to those given as flags. */
static gboolean
options_apply_defaults (Options *o, GError **error)
{
  g_autofree char *path = g_build_filename (o->config_dir, CONFIG_FILE, NULL);
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) local_error = NULL;

  if (o->signal_url == NULL && g_getenv ("P2PTUN_SIGNAL"))
    o->signal_url = g_strdup (g_getenv ("P2PTUN_SIGNAL"));
  if (o->signal_pin == NULL && g_getenv ("P2PTUN_SIGNAL_PIN"))
    o->signal_pin = g_strdup (g_getenv ("P2PTUN_SIGNAL_PIN"));

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &local_error))
    {
      if (g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return TRUE;
      g_set_error (error, local_error->domain, local_error->code, "%s: %s", path,
                   local_error->message);
      return FALSE;
    }
  if (o->signal_url == NULL)
    o->signal_url = g_key_file_get_string (kf, CONFIG_GROUP, "signal", NULL);
  if (o->signal_pin == NULL)
    o->signal_pin = g_key_file_get_string (kf, CONFIG_GROUP, "signal-pin", NULL);
  if (o->cert == NULL)
    {
      g_autofree char *cert = g_key_file_get_string (kf, CONFIG_GROUP, "cert", NULL);

      /* A relative name in the file is in the config directory. */
      if (cert != NULL)
        o->cert = g_path_is_absolute (cert) ? g_steal_pointer (&cert)
                                            : g_build_filename (o->config_dir, cert, NULL);
    }
  {
    const char *lists[] = { "expose", "trust", "local-address" };
    char ***targets[] = { &o->expose, &o->trust, &o->local_addresses };

    for (gsize i = 0; i < G_N_ELEMENTS (lists); i++)
      {
        g_auto (GStrv) values = g_key_file_get_string_list (kf, CONFIG_GROUP, lists[i], NULL,
                                                           NULL);
        if (values)
          {
            char **merged = strv_concat (*targets[i], values);
            g_strfreev (*targets[i]);
            *targets[i] = merged;
          }
      }
  }
  return TRUE;
}

/* A name of --trust NAME=PEER-ID: letters, digits, '.', '_' and '-'. */
static gboolean
trust_name_is_valid (const char *name, gsize len)
{
  if (len == 0 || len > TRUST_NAME_MAX)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
      return FALSE;
  return TRUE;
}

/* --trust PEER-ID or NAME=PEER-ID (flags and trust= in agent.conf): leaves
 * the peer-ids in o->trust and the names in o->trust_names. */
static gboolean
options_split_trust (Options *o, GError **error)
{
  o->trust_names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; o->trust && o->trust[i]; i++)
    {
      const char *eq = strchr (o->trust[i], '=');
      const char *id = eq ? eq + 1 : o->trust[i];

      if (eq != NULL && !trust_name_is_valid (o->trust[i], (gsize) (eq - o->trust[i])))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--trust %s: NAME is 1 to %d letters, digits, '.', '_' or '-'",
                       o->trust[i], TRUST_NAME_MAX);
          return FALSE;
        }
      if (!p2ptun_peer_id_is_valid (id))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--trust %s: not a peer-id (52 characters of a-z and 2-7, as "
                       "'p2ptun-agent id' prints it), or NAME=PEER-ID", o->trust[i]);
          return FALSE;
        }
      if (eq != NULL)
        {
          g_hash_table_replace (o->trust_names, g_strdup (id),
                                g_strndup (o->trust[i], (gsize) (eq - o->trust[i])));
          memmove (o->trust[i], id, strlen (id) + 1);
        }
    }
  return TRUE;
}

static gboolean
options_check (Options *o, GError **error)
{
  if (o->signal_url == NULL)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "no signaling server: give --signal URL (or P2PTUN_SIGNAL, or signal= in "
                   "agent.conf)");
      return FALSE;
    }
  if (!g_str_has_prefix (o->signal_url, "https://"))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--signal %s: the signaling server is reached over https:// only",
                   o->signal_url);
      return FALSE;
    }
  if (o->signal_pin && !g_str_has_prefix (o->signal_pin, "sha256//"))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--signal-pin %s: expected sha256//BASE64, as p2ptun-signal prints it",
                   o->signal_pin);
      return FALSE;
    }
  if (!options_split_trust (o, error))
    return FALSE;
  if (o->timeout_s < 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--timeout must be 0 (wait forever) or more seconds");
      return FALSE;
    }
  if (o->hold_s < 1 || o->hold_s > HOLD_MAX_S)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--hold must be 1 to %d seconds", HOLD_MAX_S);
      return FALSE;
    }
  if (o->give_up_after_s < 0 || o->give_up_after_s > HOLD_MAX_S)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--give-up-after must be 0 (never) to %d seconds", HOLD_MAX_S);
      return FALSE;
    }
  if (o->udp_timeout_s < 1 || o->udp_timeout_s > UDP_TIMEOUT_MAX_S)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--udp-timeout must be 1 to %d seconds", UDP_TIMEOUT_MAX_S);
      return FALSE;
    }
  return TRUE;
}

/* ---- running a node ---- */

typedef struct
{
  GMainLoop *loop;
  P2ptunNode *node;
  const char *pair_peer;     /* NULL for serve */
  const Options *options;
  guint stdio_stream;        /* --stdio: its stream, once open */
  guint timeout;              /* --timeout's source */
  gboolean up;
  gboolean closing;
  int exit_code;
} Cli;


/* Ends in order: the peers are told, relay allocations given back, then
 * CLOSED ends the loop. */
static void
cli_quit (Cli *cli, int code)
{
  if (cli->closing)
    return;
  cli->closing = TRUE;
  cli->exit_code = code;
  p2ptun_node_close (cli->node);
}

static void
cli_start_stdio (Cli *cli)
{
  g_autoptr (GError) error = NULL;

  cli->stdio_stream = p2ptun_node_connect_fds (cli->node, cli->pair_peer,
                                               cli->options->stdio_service, STDIN_FILENO,
                                               STDOUT_FILENO, &error);
  if (cli->stdio_stream == 0)
    {
      say ("error: %s", error->message);
      cli_quit (cli, 1);
    }
}

static void
on_event (P2ptunNode *node, const P2ptunEvent *event, gpointer data)
{
  Cli *cli = data;
  const char *message = p2ptun_event_get_message (event);
  const GError *error = p2ptun_event_get_error (event);
  gboolean ours = cli->pair_peer && p2ptun_event_is_outgoing (event)
                  && g_strcmp0 (p2ptun_event_get_peer_id (event), cli->pair_peer) == 0;

  switch (p2ptun_event_get_kind (event))
    {
    case P2PTUN_EVENT_READY:
      if (cli->pair_peer == NULL)
        say ("%s", message);
      break;
    case P2PTUN_EVENT_PEER_OFFLINE:
      say ("%s%s", message,
           cli->options->timeout_s ? "" : " (Ctrl-C to stop, --timeout to give up)");
      break;
    case P2PTUN_EVENT_PEER_UP:
      say ("%s", message);
      if (ours && !cli->up)
        {
          cli->up = TRUE;
          if (cli->options->stdio_service && !cli->closing)
            cli_start_stdio (cli);
        }
      break;
    case P2PTUN_EVENT_REFUSED:
      if (g_error_matches (error, P2PTUN_ERROR, P2PTUN_ERROR_NOT_TRUSTED))
        say ("%s (add it with --trust)", message);
      else
        say ("%s", message);
      break;
    case P2PTUN_EVENT_PEER_GONE:
      if (ours)
        {
          say ("error: %s", message);
          cli_quit (cli, 1);
        }
      else
        say ("%s", message);
      break;
    case P2PTUN_EVENT_STREAM_ENDED:
      if (cli->stdio_stream == 0 || p2ptun_event_get_stream (event) != cli->stdio_stream)
        break;
      if (error)
        say ("error: %s", message);
      cli_quit (cli, error ? 1 : 0);
      break;
    case P2PTUN_EVENT_WARNING:
      /* The signaling server refuses this agent: pair, which a person runs
       * and watches, stops; serve waits for the operator, and the node asks
       * again every 30 s (saying so only when that changes). */
      if (g_error_matches (error, P2PTUN_ERROR, P2PTUN_ERROR_NOT_ENROLLED)
          || g_error_matches (error, P2PTUN_ERROR, P2PTUN_ERROR_REVOKED))
        {
          if (cli->pair_peer)
            {
              say ("error: %s", message);
              cli_quit (cli, 1);
            }
          else
            say ("error: %s (asking the server again every 30 s)", message);
          break;
        }
      say ("warning: %s", message);
      break;
    case P2PTUN_EVENT_FATAL:
      say ("error: %s", message);
      cli_quit (cli, 1);
      break;
    case P2PTUN_EVENT_CLOSED:
      g_main_loop_quit (cli->loop);
      break;
    case P2PTUN_EVENT_PATH_CHANGED:
    case P2PTUN_EVENT_PATH_LOST:
    case P2PTUN_EVENT_PEER_LOST:
    case P2PTUN_EVENT_PEER_SILENT:
    case P2PTUN_EVENT_PEER_ANSWERING:
    case P2PTUN_EVENT_NOTICE:
    default:
      say ("%s", message);
      break;
    }
}

static gboolean
on_unix_signal (gpointer data)
{
  Cli *cli = data;

  if (!cli->closing)
    say ("closing");
  cli_quit (cli, 0);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_timeout (gpointer data)
{
  Cli *cli = data;

  cli->timeout = 0;
  if (!cli->up && !cli->closing)
    {
      say ("error: timed out after %d s: no tunnel to peer %s", cli->options->timeout_s,
           cli->pair_peer);
      cli_quit (cli, 1);
    }
  return G_SOURCE_REMOVE;
}

/* NAME=HOST:PORT, NAME=HOST:PORT/udp or NAME=HOST:PORT/rtp */
static gboolean
cli_add_services (P2ptunConfig *config, char **expose, GError **error)
{
  g_autoptr (GHashTable) names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; expose && expose[i]; i++)
    {
      const char *spec = expose[i];
      const char *eq = strchr (spec, '=');
      gboolean udp = g_str_has_suffix (spec, "/udp");
      gboolean rtp = g_str_has_suffix (spec, "/rtp");
      g_autofree char *name = NULL;
      g_autofree char *target = NULL;

      if (eq == NULL || (gsize) (eq - spec) > SERVICE_NAME_MAX)
        goto bad;
      name = g_strndup (spec, (gsize) (eq - spec));
      target = g_strndup (eq + 1, strlen (eq + 1) - (udp || rtp ? 4 : 0));
      if (g_hash_table_contains (names, name))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "--expose %s: service '%s' is exposed twice", spec, name);
          return FALSE;
        }
      if (!p2ptun_config_add_service (config, name, target,
                                      udp   ? P2PTUN_SERVICE_UDP
                                      : rtp ? P2PTUN_SERVICE_RTP
                                            : P2PTUN_SERVICE_TCP,
                                      NULL))
        goto bad;
      g_hash_table_add (names, g_steal_pointer (&name));
      continue;
    bad:
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--expose %s: expected NAME=HOST:PORT (TCP), NAME=HOST:PORT/udp or "
                   "NAME=HOST:PORT/rtp (RTP and RTCP as SRTP), NAME of "
                   "letters, digits, '.', '_' or '-' (at most %d)", spec, SERVICE_NAME_MAX);
      return FALSE;
    }
  return TRUE;
}

static P2ptunConfig *
cli_config (const Options *o, GError **error)
{
  g_autoptr (P2ptunConfig) config = p2ptun_config_new ();

  p2ptun_config_set_signal (config, o->signal_url, o->signal_pin);
  for (guint i = 0; o->trust && o->trust[i]; i++)
    if (!p2ptun_config_add_trust (config, o->trust[i], error))
      return NULL;
  if (!cli_add_services (config, o->expose, error))
    return NULL;
  p2ptun_config_set_local_addresses (config, (const char *const *) o->local_addresses);
  p2ptun_config_set_relay_only (config, o->relay_only);
  p2ptun_config_set_udp_timeout (config, (guint) o->udp_timeout_s);
  p2ptun_config_set_hold (config, (guint) o->hold_s);
  p2ptun_config_set_give_up_after (config, (guint) o->give_up_after_s);
  return g_steal_pointer (&config);
}

static gboolean
cli_forwards (Cli *cli, GError **error)
{
  const Options *o = cli->options;

  for (guint i = 0; o->forward && o->forward[i]; i++)
    if (!p2ptun_node_forward (cli->node, cli->pair_peer, P2PTUN_SERVICE_TCP, o->forward[i],
                              error))
      return FALSE;
  for (guint i = 0; o->udp_forward && o->udp_forward[i]; i++)
    if (!p2ptun_node_forward (cli->node, cli->pair_peer, P2PTUN_SERVICE_UDP,
                              o->udp_forward[i], error))
      return FALSE;
  for (guint i = 0; o->media && o->media[i]; i++)
    if (!p2ptun_node_forward (cli->node, cli->pair_peer, P2PTUN_SERVICE_RTP, o->media[i],
                              error))
      return FALSE;
  return TRUE;
}

/* Runs until the tunnel ends (pair), or SIGINT/SIGTERM; every error is
 * printed. Returns the exit code. */
static int
cli_run (const Options *o, P2ptunIdentity *identity, const char *pair_peer)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (P2ptunConfig) config = NULL;
  Cli cli = { .options = o, .pair_peer = pair_peer };
  Control *control;
  g_autoptr (GInetSocketAddress) metrics_addr = NULL;
  Metrics *metrics = NULL;
  guint sigint, sigterm;

  config = cli_config (o, &error);
  if (config == NULL)
    return fail ("%s", error->message);
  if (o->metrics != NULL)
    {
      metrics_addr = promhttp_parse_address ("metrics", o->metrics, &error);
      if (metrics_addr == NULL)
        return fail ("%s", error->message);
    }
  cli.node = p2ptun_node_new (NULL, identity, config, &error);
  if (cli.node == NULL)
    return fail ("%s", error->message);
  if (pair_peer && (!cli_forwards (&cli, &error) || !p2ptun_node_pair (cli.node, pair_peer,
                                                                      &error)))
    {
      g_object_unref (cli.node);
      return fail ("%s", error->message);
    }
  if (metrics_addr != NULL)
    {
      g_autofree char *where = NULL;

      metrics = metrics_serve (NULL, cli.node, o->trust_names, metrics_addr, &error);
      if (metrics == NULL)
        {
          g_object_unref (cli.node);
          return fail ("--metrics %s: %s", o->metrics, error->message);
        }
      where = metrics_address (metrics);
      say ("metrics at http://%s/metrics", where);
    }
  /* Without it the tunnels work; only status does not see them. */
  control = control_new (cli.node, o->config_dir, pair_peer ? "pair" : "serve",
                         p2ptun_identity_get_peer_id (identity), o->trust_names, &error);
  if (control == NULL)
    {
      say ("warning: no control socket, 'p2ptun-agent status' will not see this agent: %s",
           error->message);
      g_clear_error (&error);
    }
  cli.loop = g_main_loop_new (NULL, FALSE);
  p2ptun_node_set_event_func (cli.node, on_event, &cli, NULL);
  sigint = g_unix_signal_add (SIGINT, on_unix_signal, &cli);
  sigterm = g_unix_signal_add (SIGTERM, on_unix_signal, &cli);
  if (pair_peer && o->timeout_s > 0)
    cli.timeout = g_timeout_add_seconds ((guint) o->timeout_s, on_timeout, &cli);
  p2ptun_node_start (cli.node);
  g_main_loop_run (cli.loop);

  if (cli.timeout)
    g_source_remove (cli.timeout);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  control_free (control);
  metrics_free (metrics);
  g_object_unref (cli.node);
  g_main_loop_unref (cli.loop);
  return cli.exit_code;
}

/* ---- enroll and csr ---- */

/* Room for a token's line on standard input: a token is 40 characters. */
#define TOKEN_LINE_MAX 256

/* Reads the first line of standard input into @buf, without echo on a
 * terminal, and strips the line end and blanks around it. */
static gboolean
read_token_line (char *buf, size_t cap, GError **error)
{
  struct termios saved, quiet;
  gboolean tty = isatty (STDIN_FILENO) && tcgetattr (STDIN_FILENO, &saved) == 0;
  gboolean got;
  size_t len;

  if (tty)
    {
      fprintf (stderr, "enrollment token: ");
      fflush (stderr);
      quiet = saved;
      quiet.c_lflag &= ~(tcflag_t) ECHO;
      (void) tcsetattr (STDIN_FILENO, TCSAFLUSH, &quiet);
    }
  got = fgets (buf, (int) cap, stdin) != NULL;
  if (tty)
    {
      (void) tcsetattr (STDIN_FILENO, TCSAFLUSH, &saved);
      fprintf (stderr, "\n");
    }
  len = got ? strlen (buf) : 0;
  if (!got || (len == cap - 1 && buf[len - 1] != '\n' && !feof (stdin)))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s",
                   got ? "the first line of standard input is too long for a token"
                       : "no token on standard input");
      return FALSE;
    }
  g_strstrip (buf);
  return TRUE;
}

typedef struct
{
  GMainLoop *loop;
  gboolean ok;
  gboolean already;
  GError *error;
} Enrolling;

static void
on_enrolled (GObject *source, GAsyncResult *result, gpointer data)
{
  Enrolling *e = data;

  e->ok = p2ptun_enroll_finish (result, &e->already, &e->error);
  g_main_loop_quit (e->loop);
}

/* Presents @token (wiped by the caller) and says how it went. */
static int
cli_enroll (const Options *o, P2ptunIdentity *identity, const char *token)
{
  Enrolling e = { .loop = g_main_loop_new (NULL, FALSE) };
  int code = 0;

  p2ptun_enroll_async (identity, o->signal_url, o->signal_pin, token, NULL, on_enrolled, &e);
  g_main_loop_run (e.loop);
  g_main_loop_unref (e.loop);
  if (!e.ok)
    code = fail ("%s", e.error->message);
  else
    printf ("%s on %s as %s\n", e.already ? "already enrolled" : "enrolled", o->signal_url,
            p2ptun_identity_get_peer_id (identity));
  g_clear_error (&e.error);
  return code;
}

static int
cli_csr (P2ptunIdentity *identity)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *pem = p2ptun_identity_make_csr (identity, &error);

  if (pem == NULL)
    return fail ("%s", error->message);
  fputs (pem, stdout);
  return fflush (stdout) == 0 ? 0 : fail ("cannot write the request: %s", g_strerror (errno));
}

static int
run (int argc, char **argv, const char *command)
{
  Options o = { .udp_timeout_s = UDP_TIMEOUT_DEFAULT_S, .hold_s = HOLD_DEFAULT_S };
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) ctx = NULL;
  g_autoptr (P2ptunIdentity) identity = NULL;
  gboolean is_pair = g_str_equal (command, "pair");
  gboolean is_id = g_str_equal (command, "id");
  gboolean is_enroll = g_str_equal (command, "enroll");
  gboolean is_csr = g_str_equal (command, "csr");
  gboolean is_status = g_str_equal (command, "status");
  gboolean takes_arg = is_pair || is_enroll;
  char token[TOKEN_LINE_MAX] = "";
  int code;
  GOptionEntry common[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &o.config_dir,
      "Agent directory: identity and agent.conf (default $XDG_CONFIG_HOME/p2ptun)", "DIR" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &o.verbose, "The same as --log-level debug",
      NULL },
    { "log-level", 0, 0, G_OPTION_ARG_STRING, &o.log_level,
      "Print log messages down to LEVEL: error, warning, message (default), info or debug "
      "(info and debug of p2ptun's own domains; G_MESSAGES_DEBUG adds the domains it names)",
      "LEVEL" },
    G_OPTION_ENTRY_NULL
  };
  GOptionEntry id_entries[] = {
    { "qr", 0, 0, G_OPTION_ARG_NONE, &o.qr,
      "Also draw the peer-id as a QR code, for a phone's camera", NULL },
    G_OPTION_ENTRY_NULL
  };
  GOptionEntry signal[] = {
    { "signal", 's', 0, G_OPTION_ARG_STRING, &o.signal_url,
      "Signaling server, https://HOST:PORT", "URL" },
    { "signal-pin", 0, 0, G_OPTION_ARG_STRING, &o.signal_pin,
      "The signaling server's public key pin, sha256//BASE64 (printed by p2ptun-signal); "
      "without it the server's certificate must be trusted by the system", "PIN" },
    { "cert", 0, 0, G_OPTION_ARG_FILENAME, &o.cert,
      "Present this certificate to the signaling server instead of the self-signed one: "
      "PEM, a certificate for this agent's key signed by a CA (from 'p2ptun-agent csr'), "
      "then any chain certificates (default: " SIGNED_CERT_FILE " in the agent directory, "
      "when it is there; or cert= in agent.conf)", "FILE" },
    G_OPTION_ENTRY_NULL
  };
  GOptionEntry net[] = {
    { "expose", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &o.expose,
      "Let trusted peers open SERVICE NAME, which is the TCP service HOST:PORT here, "
      "with /udp the UDP service HOST:PORT, with /rtp an RTP application at HOST:PORT "
      "(RTCP to PORT+1, or to PORT once it sends RTCP there) reached by the peer's -M "
      "(repeatable)", "NAME=HOST:PORT[/udp|/rtp]" },
    { "trust", 't', 0, G_OPTION_ARG_STRING_ARRAY, &o.trust,
      "Accept tunnels from this peer; NAME (letters, digits, '.', '_', '-') is what "
      "'p2ptun-agent status' calls it (repeatable)", "[NAME=]PEER-ID" },
    { "local-address", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.local_addresses,
      "Offer only this local address as a host candidate (repeatable; default: all)",
      "ADDRESS" },
    { "relay-only", 0, 0, G_OPTION_ARG_NONE, &o.relay_only,
      "Force the tunnel through the relay (a TURN server the signaling server hands out), "
      "for networks where direct paths are not wanted or to test the relay", NULL },
    { "hold", 0, 0, G_OPTION_ARG_INT, &o.hold_s,
      "When the peer stops answering (an outage, a roam), restart ICE and keep the streams "
      "for this many seconds; after that they are reset (default "
      G_STRINGIFY (HOLD_DEFAULT_S) ")", "SECONDS" },
    { "metrics", 0, 0, G_OPTION_ARG_STRING, &o.metrics,
      "Serve Prometheus metrics of the tunnels at http://ADDR:PORT/metrics (off by "
      "default), e.g. 127.0.0.1:9643; plain HTTP without authentication, so keep it on "
      "loopback: another address is served as given, with a warning",
      "ADDR:PORT" },
    G_OPTION_ENTRY_NULL
  };
  GOptionEntry status[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &o.json,
      "Print JSON (docs/status.md): the library's status of every tunnel, per agent", NULL },
    G_OPTION_ENTRY_NULL
  };
  GOptionEntry pair[] = {
    { "local", 'L', 0, G_OPTION_ARG_STRING_ARRAY, &o.forward,
      "Listen on [BIND:]PORT (BIND defaults to 127.0.0.1) and forward each connection to "
      "the peer's SERVICE (repeatable)", "[BIND:]PORT:SERVICE" },
    { "udp", 'U', 0, G_OPTION_ARG_STRING_ARRAY, &o.udp_forward,
      "Receive UDP on [BIND:]PORT (BIND defaults to 127.0.0.1) and forward the datagrams of "
      "each client to the peer's UDP SERVICE, answers back to the client (repeatable)",
      "[BIND:]PORT:SERVICE" },
    { "media", 'M', 0, G_OPTION_ARG_STRING_ARRAY, &o.media,
      "The tunnel's media leg: RTP on [BIND:]PORT and RTCP on PORT+1 (or muxed on PORT) go "
      "to the peer's RTP SERVICE as SRTP (keys from the tunnel's DTLS handshake, RFC 5764), "
      "and what comes back goes to the last local sender; one per tunnel. "
      "P2PTUN_SRTP_KEYLOG=FILE appends the SRTP keys to FILE, for debugging only",
      "[BIND:]PORT:SERVICE" },
    { "udp-timeout", 0, 0, G_OPTION_ARG_INT, &o.udp_timeout_s,
      "A UDP client's flow ends after this many seconds without a datagram either way "
      "(default " G_STRINGIFY (UDP_TIMEOUT_DEFAULT_S) ")", "SECONDS" },
    { "stdio", 0, 0, G_OPTION_ARG_STRING, &o.stdio_service,
      "Carry standard input and output to the peer's SERVICE, then exit (like ssh -W; "
      "works as an ssh ProxyCommand)", "SERVICE" },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &o.timeout_s,
      "Give up if the first tunnel is not up after this many seconds (default: wait)",
      "SECONDS" },
    { "give-up-after", 0, 0, G_OPTION_ARG_INT, &o.give_up_after_s,
      "When a tunnel that was up ends (the peer restarted, or --hold ran out), reconnect, and "
      "give up after this many seconds without one (default 0: never)", "SECONDS" },
    G_OPTION_ENTRY_NULL
  };

  if (is_pair)
    ctx = g_option_context_new ("PEER-ID - open a tunnel to a peer");
  else if (is_id)
    ctx = g_option_context_new ("- print this agent's peer-id");
  else if (is_enroll)
    ctx = g_option_context_new ("TOKEN - enroll this agent on a signaling server");
  else if (is_csr)
    ctx = g_option_context_new ("- print a certificate request for this agent's key");
  else if (is_status)
    ctx = g_option_context_new ("- print the tunnels of the running agents");
  else
    ctx = g_option_context_new ("- expose services to trusted peers");
  g_option_context_add_main_entries (ctx, common, NULL);
  if (is_id)
    g_option_context_add_main_entries (ctx, id_entries, NULL);
  if (!is_id && !is_csr && !is_status)
    g_option_context_add_main_entries (ctx, signal, NULL);
  if (!is_id && !is_csr && !is_enroll && !is_status)
    g_option_context_add_main_entries (ctx, net, NULL);
  if (is_status)
    {
      g_option_context_add_main_entries (ctx, status, NULL);
      g_option_context_set_description (ctx, status_description);
    }
  if (is_pair)
    g_option_context_add_main_entries (ctx, pair, NULL);
  if (is_pair)
    g_option_context_set_description (
        ctx, "Prints 'tunnel up' with the path and round-trip time, then forwards until "
             "Ctrl-C.\nThe peer must trust this agent (its 'serve --trust', or its own "
             "'pair' with our peer-id).\n\nStaying connected: when the peer stops answering, "
             "the tunnel restarts ICE and the streams wait (--hold); when the tunnel ends\n"
             "after it was up, pair keeps its -L/-U ports and reconnects: first after 1 s, then "
             "after twice as long each time\nup to 30 s (each +-25 %), back to 1 s once a tunnel "
             "is up; connections made meanwhile wait up to 30 s.\n\nExample:\n  p2ptun-agent pair PEER-ID --signal "
             "https://signal.example.org:8443 --signal-pin sha256//... -L 8000:music\n"
             "  (and on the peer: p2ptun-agent serve --expose music=127.0.0.1:8000 ...;\n"
             "  UDP: -U 5004:rtp here, --expose rtp=127.0.0.1:5004/udp there;\n"
             "  RTP as SRTP: -M 5004:music here, --expose music=127.0.0.1:5004/rtp there)");
  if (is_enroll)
    g_option_context_set_description (ctx, enroll_description);
  if (is_csr)
    g_option_context_set_description (ctx, csr_description);

  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      options_clear (&o);
      return fail ("%s (see --help)", error->message);
    }
  {
    LogLevel level = o.verbose ? LOGLEVEL_DEBUG : LOGLEVEL_MESSAGE;

    if (o.log_level != NULL && !loglevel_parse (o.log_level, &level, &error))
      {
        options_clear (&o);
        return fail ("%s", error->message);
      }
    loglevel_install (level);
  }
  if (o.config_dir == NULL)
    o.config_dir = p2ptun_identity_default_dir ();

  if (takes_arg && argc != 2)
    {
      options_clear (&o);
      return fail ("%s takes exactly one %s (see --help)", command,
                   is_pair ? "PEER-ID" : "TOKEN ('-' to read it from standard input)");
    }
  if (!takes_arg && argc != 1)
    {
      options_clear (&o);
      return fail ("unexpected argument '%s' (see --help)", argv[1]);
    }
  if (is_pair && !p2ptun_peer_id_is_valid (argv[1]))
    {
      code = fail ("'%s' is not a peer-id (52 characters of a-z and 2-7, as 'p2ptun-agent id' "
                   "prints it)", argv[1]);
      options_clear (&o);
      return code;
    }
  if (is_pair && o.forward == NULL && o.udp_forward == NULL && o.stdio_service == NULL
      && o.expose == NULL && o.media == NULL)
    {
      options_clear (&o);
      return fail ("pair needs something to do: -L PORT:SERVICE, -U PORT:SERVICE, "
                   "-M PORT:SERVICE, --stdio SERVICE or --expose");
    }

  if (is_status)
    {
      code = status_main (o.config_dir, o.json);
      options_clear (&o);
      return code;
    }
  if (is_enroll)
    {
      /* The token leaves the command line at once (others can read it in
       * /proc while it is there: '-' avoids that). */
      if (g_str_equal (argv[1], "-") ? !read_token_line (token, sizeof token, &error)
                                     : g_strlcpy (token, argv[1], sizeof token) >= sizeof token)
        {
          explicit_bzero (token, sizeof token);
          options_clear (&o);
          return fail ("%s", error ? error->message : "TOKEN is too long for a token");
        }
      explicit_bzero (argv[1], strlen (argv[1]));
    }

  identity = p2ptun_identity_load (o.config_dir, &error);
  if (identity == NULL)
    {
      explicit_bzero (token, sizeof token);
      options_clear (&o);
      return fail ("%s", error->message);
    }
  if (is_id || is_csr)
    {
      code = 0;
      if (is_id)
        {
          printf ("%s\n", p2ptun_identity_get_peer_id (identity));
          if (o.qr && !qr_print (stdout, p2ptun_identity_get_peer_id (identity), &error))
            code = fail ("%s", error->message);
        }
      if (is_csr)
        code = cli_csr (identity);
      options_clear (&o);
      return code;
    }
  if (!options_apply_defaults (&o, &error) || !options_check (&o, &error)
      || (o.cert != NULL && !p2ptun_identity_use_certificate (identity, o.cert, &error)))
    {
      explicit_bzero (token, sizeof token);
      options_clear (&o);
      return fail ("%s", error->message);
    }
  if (is_enroll)
    code = cli_enroll (&o, identity, token);
  else
    code = cli_run (&o, identity, is_pair ? argv[1] : NULL);
  explicit_bzero (token, sizeof token);
  options_clear (&o);
  return code;
}

/* The options every command takes, which may come before the command. */
static gboolean
is_common_option (const char *arg, gboolean *takes_value)
{
  *takes_value = g_str_equal (arg, "--config") || g_str_equal (arg, "-c")
                 || g_str_equal (arg, "--log-level");
  return *takes_value || g_str_equal (arg, "-v") || g_str_equal (arg, "--verbose")
         || g_str_has_prefix (arg, "--config=") || g_str_has_prefix (arg, "--log-level=");
}

/* Moves the command in front of the common options that precede it, as git
 * and wg accept them: "--config DIR id" becomes "id --config DIR". Returns
 * FALSE (and says why) on another option before the command. */
static gboolean
command_first (int argc, char **argv)
{
  int i = 1;
  gboolean takes_value;
  char *command;

  while (i < argc && argv[i][0] == '-' && !g_str_equal (argv[i], "--version")
         && !g_str_equal (argv[i], "--help") && !g_str_equal (argv[i], "-h"))
    {
      if (!is_common_option (argv[i], &takes_value))
        {
          fail ("unknown option '%s' before the command; try 'p2ptun-agent --help'", argv[i]);
          return FALSE;
        }
      i += takes_value ? 2 : 1;
    }
  if (i == 1)
    return TRUE;
  if (i >= argc)
    {
      fail ("no command after the options; try 'p2ptun-agent --help'");
      return FALSE;
    }
  command = argv[i];
  memmove (argv + 2, argv + 1, (size_t) (i - 1) * sizeof *argv);
  argv[1] = command;
  return TRUE;
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  /* stdout carries data (--stdio) and the peer-id (id): logs go to stderr. */
  g_log_writer_default_set_use_stderr (TRUE);
  if (!command_first (argc, argv))
    return 1;
  if (argc < 2 || g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h")
      || g_str_equal (argv[1], "help"))
    {
      printf ("Usage: p2ptun-agent COMMAND [OPTION...]\n\n%s\n", usage_summary);
      return argc < 2 ? 1 : 0;
    }
  if (g_str_equal (argv[1], "--version"))
    {
      printf ("p2ptun-agent %s\n", p2ptun_version_string ());
      return 0;
    }
  if (!g_str_equal (argv[1], "id") && !g_str_equal (argv[1], "serve")
      && !g_str_equal (argv[1], "pair") && !g_str_equal (argv[1], "enroll")
      && !g_str_equal (argv[1], "csr") && !g_str_equal (argv[1], "status"))
    return fail ("unknown command '%s'; try 'p2ptun-agent --help'", argv[1]);
  /* The command takes the place of the program name for option parsing. */
  return run (argc - 1, argv + 1, argv[1]);
}
