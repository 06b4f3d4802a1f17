/* The operator's commands of p2ptun-signal. See admincli.h. */
#include "admincli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "access.h"
#include "accessfile.h"
#include "admin.h"
#include "adminsock.h"

#define ADMIN_TOKEN_EXPIRES_DEFAULT_S (24 * 3600)

static const char *const commands[] = { "enroll", "peers", "revoke", "tokens", "policy" };

static const char *const summaries[] = {
  "Enrolls agents. Without --peer or --seen, makes an enrollment token and\n"
  "prints it on stdout: its owner runs\n"
  "  p2ptun-agent enroll --signal URL --signal-pin PIN TOKEN\n"
  "and the server admits that agent's peer-id from then on. A token is used\n"
  "once (--reusable: until it expires) and expires after --expires (default\n"
  "24h). The server keeps only its hash: it is shown this once.\n"
  "--peer PEER-ID admits a peer-id directly (also one that was revoked);\n"
  "--seen admits every peer-id the server has refused or, with --open, served\n"
  "without enrollment (the way to move a server that was open until now).",
  "Lists the enrolled peer-ids (how, when, last seen, online now, relay\n"
  "policy), the peer-ids seen but not enrolled, and the revoked ones.",
  "Revokes a peer-id at once: its long-poll ends, its mailbox is dropped, it\n"
  "is refused from now on and gets no new relay credentials. Relay\n"
  "credentials it holds expire with the server's --turn-ttl.",
  "Lists the outstanding enrollment tokens (by id, never the token), or\n"
  "cancels one with --cancel ID.",
  "Sets the relay quota of a peer-id (or, with --default, of every peer-id\n"
  "without its own): allocations at once and relayed bytes per second per\n"
  "allocation. 0 removes a value. The relay learns it from the TURN username\n"
  "of the credentials handed out from now on.",
};

gboolean
admin_cli_is_command (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (name != NULL && strcmp (name, commands[i]) == 0)
      return TRUE;
  return FALSE;
}

/* "never", or N followed by s, m, h or d. */
static gboolean
parse_duration (const char *text, gint64 *seconds)
{
  guint64 n;
  char *end = NULL;
  gint64 unit;

  if (strcmp (text, "never") == 0)
    {
      *seconds = 0;
      return TRUE;
    }
  if (text[0] < '0' || text[0] > '9')
    return FALSE;
  n = g_ascii_strtoull (text, &end, 10);
  if (end == NULL || end[0] == '\0' || end[1] != '\0' || n == 0 || n > 3650ULL * 24 * 3600)
    return FALSE;
  switch (end[0])
    {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return FALSE;
    }
  if (n > (guint64) (3650LL * 86400 / unit))
    return FALSE;
  *seconds = (gint64) n * unit;
  return TRUE;
}

static gint64
now_s (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

static char *
format_time (gint64 t)
{
  g_autoptr (GDateTime) dt = NULL;

  if (t == 0)
    return g_strdup ("-");
  dt = g_date_time_new_from_unix_utc (t);
  return dt != NULL ? g_date_time_format (dt, "%Y-%m-%d %H:%M:%SZ") : g_strdup ("?");
}

/* Runs @request on the server of @dir, or on the directory itself. */
static JsonObject *
admin_request (const char *dir, const char *request, JsonParser *parser, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autofree char *reply = admin_socket_call (dir, request, &local);
  gsize reply_len = 0;

  if (reply == NULL
      && (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)
          || g_error_matches (local, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED)))
    {
      g_autoptr (AccessStore) store = NULL;
      gboolean changed = FALSE;
      int lock;

      if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                       "%s is not a directory (the server's --state-dir)", dir);
          return NULL;
        }
      lock = access_file_lock (dir, error);
      if (lock < 0)
        {
          if (*error != NULL && (*error)->code == G_IO_ERROR_BUSY)
            g_prefix_error (error, "no answer on %s/%s, yet ", dir, ADMIN_SOCKET_NAME);
          return NULL;
        }
      store = access_file_load (dir, error);
      if (store != NULL)
        reply = admin_run (store, request, strlen (request), now_s (), NULL, &changed,
                           &reply_len);
      if (store != NULL && changed && !access_file_save (dir, store, error))
        g_clear_pointer (&reply, g_free);
      close (lock);
      if (reply == NULL)
        return NULL;
    }
  else if (reply == NULL)
    {
      /* It holds 16 admin connections at once, each for 10 s at most. */
      g_propagate_prefixed_error (error, g_steal_pointer (&local),
                                  "the server on %s did not answer on %s (busy? try again "
                                  "in a few seconds): ",
                                  dir, ADMIN_SOCKET_NAME);
      return NULL;
    }
  if (!json_parser_load_from_data (parser, reply, -1, error))
    return NULL;
  if (json_parser_get_root (parser) == NULL
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "the server's reply is not JSON");
      return NULL;
    }
  return json_node_get_object (json_parser_get_root (parser));
}

static char *
request_text (JsonBuilder *b)
{
  return access_json_finish (b, FALSE, NULL);
}

static JsonBuilder *
request_begin (const char *op)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "op");
  json_builder_add_string_value (b, op);
  return b;
}

static void
request_string (JsonBuilder *b, const char *name, const char *value)
{
  if (value == NULL)
    return;
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value);
}

static void
request_int (JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

static const char *
member_string (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n != NULL && JSON_NODE_HOLDS_VALUE (n)
                 && json_node_get_value_type (n) == G_TYPE_STRING
             ? json_node_get_string (n)
             : NULL;
}

static gint64
member_int (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n != NULL && JSON_NODE_HOLDS_VALUE (n)
                 && json_node_get_value_type (n) == G_TYPE_INT64
             ? json_node_get_int (n)
             : 0;
}

static JsonArray *
member_array (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n != NULL && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
}

static void
print_policy (JsonObject *o)
{
  gint64 alloc = member_int (o, "max_allocations"), bps = member_int (o, "max_bps");
  g_autofree char *a = alloc ? g_strdup_printf ("%" G_GINT64_FORMAT, alloc) : g_strdup ("-");
  g_autofree char *b = bps ? g_strdup_printf ("%" G_GINT64_FORMAT, bps) : g_strdup ("-");

  printf ("  %-10s %-14s", a, b);
}

static void
print_peers (JsonObject *reply)
{
  JsonArray *peers = member_array (reply, "peers");
  JsonArray *seen = member_array (reply, "seen");
  JsonArray *revoked = member_array (reply, "revoked");
  JsonNode *def = json_object_get_member (reply, "default_policy");

  printf ("%-52s  %-20s  %-20s  %-6s  %-10s %-14s  %s\n", "PEER-ID", "ENROLLED", "LAST SEEN",
          "ONLINE", "MAX-ALLOCS", "MAX-BYTES/S", "VIA; NOTE");
  for (guint i = 0; peers != NULL && i < json_array_get_length (peers); i++)
    {
      JsonObject *p = json_array_get_object_element (peers, i);
      JsonNode *online = json_object_get_member (p, "online");
      g_autofree char *enrolled = format_time (member_int (p, "enrolled"));
      g_autofree char *last = format_time (member_int (p, "last_seen"));
      const char *note = member_string (p, "note");

      printf ("%-52s  %-20s  %-20s  %-6s", member_string (p, "id"), enrolled, last,
              online == NULL || JSON_NODE_HOLDS_NULL (online) ? "?"
              : json_node_get_boolean (online)               ? "yes"
                                                             : "no");
      print_policy (p);
      printf ("  %s%s%s\n", member_string (p, "via"), note ? "; " : "", note ? note : "");
    }
  if (def != NULL && JSON_NODE_HOLDS_OBJECT (def))
    {
      printf ("%-52s  %-20s  %-20s  %-6s", "(default)", "", "", "");
      print_policy (json_node_get_object (def));
      printf ("\n");
    }
  if (seen != NULL && json_array_get_length (seen) > 0)
    {
      printf ("\nseen, not enrolled (p2ptun-signal enroll --peer ID, or --seen for all):\n");
      for (guint i = 0; i < json_array_get_length (seen); i++)
        {
          JsonObject *s = json_array_get_object_element (seen, i);
          g_autofree char *first = format_time (member_int (s, "first"));
          g_autofree char *last = format_time (member_int (s, "last"));

          printf ("%-52s  first %s, last %s\n", member_string (s, "id"), first, last);
        }
    }
  if (revoked != NULL && json_array_get_length (revoked) > 0)
    {
      printf ("\nrevoked:\n");
      for (guint i = 0; i < json_array_get_length (revoked); i++)
        {
          JsonObject *r = json_array_get_object_element (revoked, i);
          g_autofree char *when = format_time (member_int (r, "when"));

          printf ("%-52s  %s\n", member_string (r, "id"), when);
        }
    }
}

static void
print_tokens (JsonObject *reply)
{
  JsonArray *tokens = member_array (reply, "tokens");

  printf ("%-8s  %-9s  %-20s  %-20s  %-4s  %s\n", "ID", "KIND", "CREATED", "EXPIRES", "USES",
          "NOTE");
  for (guint i = 0; tokens != NULL && i < json_array_get_length (tokens); i++)
    {
      JsonObject *t = json_array_get_object_element (tokens, i);
      JsonNode *reusable = json_object_get_member (t, "reusable");
      g_autofree char *created = format_time (member_int (t, "created"));
      g_autofree char *expires = member_int (t, "expires") ? format_time (member_int (t, "expires"))
                                                           : g_strdup ("never");
      const char *note = member_string (t, "note");

      printf ("%-8s  %-9s  %-20s  %-20s  %-4" G_GINT64_FORMAT "  %s\n", member_string (t, "id"),
              reusable != NULL && json_node_get_boolean (reusable) ? "reusable" : "one-time",
              created, expires, member_int (t, "uses"), note ? note : "");
    }
}

static void
print_json (JsonObject *reply)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *text = NULL;

  json_node_set_object (root, reply);
  json_object_remove_member (reply, "ok");
  json_generator_set_pretty (gen, TRUE);
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  printf ("%s\n", text);
}

static guint64
parse_number (const char *option, const char *text, guint64 max)
{
  guint64 n;

  if (text == NULL)
    return 0;
  if (text[0] < '0' || text[0] > '9'
      || !g_ascii_string_to_unsigned (text, 10, 0, max, &n, NULL))
    {
      g_printerr ("p2ptun-signal: %s: expected a whole number from 0 to %" G_GUINT64_FORMAT
                  ", got \"%s\"\n",
                  option, max, text);
      exit (2);
    }
  return n;
}

/* enroll --peer A --peer B ...: one request each; stops at the first error. */
static int
enroll_peers (const char *state_dir, const char *const *peers, const char *note,
              gboolean misused)
{
  if (misused)
    {
      g_printerr ("p2ptun-signal enroll: give --peer, --seen, or token options (see --help)\n");
      return 2;
    }
  for (gsize i = 0; peers[i] != NULL; i++)
    {
      g_autoptr (JsonBuilder) b = request_begin ("enroll");
      g_autoptr (JsonParser) parser = json_parser_new ();
      g_autoptr (GError) error = NULL;
      g_autofree char *request = NULL;
      JsonObject *reply;

      request_string (b, "peer", peers[i]);
      request_string (b, "note", note);
      request = request_text (b);
      reply = admin_request (state_dir, request, parser, &error);
      if (reply == NULL || !json_object_get_boolean_member_with_default (reply, "ok", FALSE))
        {
          g_printerr ("p2ptun-signal enroll: %s: %s\n", peers[i],
                      reply == NULL ? error->message
                      : member_string (reply, "error") != NULL ? member_string (reply, "error")
                                                               : "refused");
          return 1;
        }
      g_printerr ("enrolled %s\n", peers[i]);
    }
  return 0;
}

gboolean
admin_cli_command_first (int argc, char **argv)
{
  int i = 1;
  char *command;

  while (i < argc && argv[i][0] == '-')
    {
      if (strcmp (argv[i], "--state-dir") == 0 || strcmp (argv[i], "-d") == 0)
        i += 2;
      else if (g_str_has_prefix (argv[i], "--state-dir="))
        i++;
      else
        return FALSE;
    }
  if (i >= argc || !admin_cli_is_command (argv[i]))
    return FALSE;
  command = argv[i];
  memmove (argv + 2, argv + 1, (size_t) (i - 1) * sizeof *argv);
  argv[1] = command;
  return TRUE;
}

int
admin_cli_main (int argc, char **argv)
{
  const char *command = argv[1];
  g_autofree char *state_dir = NULL, *note = NULL, *expires = NULL;
  g_auto (GStrv) peers = NULL;
  const char *peer = NULL;
  g_autofree char *cancel = NULL, *max_alloc = NULL, *max_bps = NULL;
  gboolean reusable = FALSE, seen = FALSE, json = FALSE, def = FALSE;
  GOptionEntry common[] = {
    { "state-dir", 'd', 0, G_OPTION_ARG_FILENAME, &state_dir,
      "The server's state directory (required)", "DIR" },
    G_OPTION_ENTRY_NULL,
  };
  GOptionEntry enroll_entries[] = {
    { "reusable", 0, 0, G_OPTION_ARG_NONE, &reusable,
      "The token admits any number of agents until it expires", NULL },
    { "expires", 0, 0, G_OPTION_ARG_STRING, &expires,
      "The token expires after N s, m, h or d, or never (default 24h)", "DURATION" },
    { "note", 0, 0, G_OPTION_ARG_STRING, &note,
      "A note kept with the token and the peers it enrolls (at most 200 characters)",
      "TEXT" },
    { "peer", 0, 0, G_OPTION_ARG_STRING_ARRAY, &peers,
      "Admit this peer-id directly (repeat for more)", "PEER-ID" },
    { "seen", 0, 0, G_OPTION_ARG_NONE, &seen, "Admit every peer-id seen but not enrolled",
      NULL },
    G_OPTION_ENTRY_NULL,
  };
  GOptionEntry list_entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { "cancel", 0, 0, G_OPTION_ARG_STRING, &cancel, "Cancel the token with this id (tokens)",
      "ID" },
    G_OPTION_ENTRY_NULL,
  };
  GOptionEntry policy_entries[] = {
    { "default", 0, 0, G_OPTION_ARG_NONE, &def, "Set the default of all peer-ids", NULL },
    { "max-allocations", 0, 0, G_OPTION_ARG_STRING, &max_alloc,
      "Relay allocations at once (0: the relay's default)", "N" },
    { "max-bps", 0, 0, G_OPTION_ARG_STRING, &max_bps,
      "Relayed bytes per second per allocation (0: the relay's default)", "B" },
    G_OPTION_ENTRY_NULL,
  };
  g_autofree char *param = NULL;
  g_autoptr (GOptionContext) octx = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *request = NULL;
  JsonObject *reply;
  gsize which = 0;

  while (strcmp (commands[which], command) != 0)
    which++;
  param = g_strdup_printf ("%s%s", command,
                           strcmp (command, "revoke") == 0   ? " PEER-ID"
                           : strcmp (command, "policy") == 0 ? " [PEER-ID]"
                                                             : "");
  octx = g_option_context_new (param);
  g_option_context_set_summary (octx, summaries[which]);
  g_option_context_add_main_entries (octx, common, NULL);
  if (strcmp (command, "enroll") == 0)
    g_option_context_add_main_entries (octx, enroll_entries, NULL);
  else if (strcmp (command, "peers") == 0 || strcmp (command, "tokens") == 0)
    g_option_context_add_main_entries (octx, list_entries, NULL);
  else if (strcmp (command, "policy") == 0)
    g_option_context_add_main_entries (octx, policy_entries, NULL);
  /* argv[1] is the command: GOption sees it as the program name. */
  argc--;
  argv++;
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    {
      g_printerr ("p2ptun-signal %s: %s (see --help)\n", command, error->message);
      return 2;
    }
  if (state_dir == NULL)
    {
      g_printerr ("p2ptun-signal %s: --state-dir is required (see --help)\n", command);
      return 2;
    }

  if (strcmp (command, "enroll") == 0 && peers != NULL && peers[0] != NULL && peers[1] != NULL)
    return enroll_peers (state_dir, (const char *const *) peers, note,
                         seen || reusable || expires != NULL || argc > 1);
  if (peers != NULL)
    peer = peers[0];
  if (strcmp (command, "enroll") == 0)
    {
      gint64 lifetime = ADMIN_TOKEN_EXPIRES_DEFAULT_S;

      if (argc > 1 || (peer != NULL && seen)
          || ((peer != NULL || seen) && (reusable || expires != NULL)))
        {
          g_printerr ("p2ptun-signal enroll: give --peer, --seen, or token options "
                      "(see --help)\n");
          return 2;
        }
      if (expires != NULL && !parse_duration (expires, &lifetime))
        {
          g_printerr ("p2ptun-signal enroll: --expires: expected N followed by s, m, h or d, "
                      "or never; got \"%s\"\n", expires);
          return 2;
        }
      b = request_begin (peer != NULL ? "enroll" : seen ? "enroll-seen" : "token");
      request_string (b, "peer", peer);
      request_string (b, "note", note);
      if (peer == NULL && !seen)
        {
          json_builder_set_member_name (b, "reusable");
          json_builder_add_boolean_value (b, reusable);
          request_int (b, "expires", lifetime == 0 ? 0 : now_s () + lifetime);
        }
    }
  else if (strcmp (command, "revoke") == 0)
    {
      if (argc != 2)
        {
          g_printerr ("p2ptun-signal revoke: name one PEER-ID (see --help)\n");
          return 2;
        }
      b = request_begin ("revoke");
      request_string (b, "peer", argv[1]);
    }
  else if (strcmp (command, "policy") == 0)
    {
      if ((argc == 2) == def || argc > 2)
        {
          g_printerr ("p2ptun-signal policy: name one PEER-ID, or --default (see --help)\n");
          return 2;
        }
      b = request_begin ("policy");
      request_string (b, "peer", def ? NULL : argv[1]);
      request_int (b, "max_allocations",
                   (gint64) parse_number ("--max-allocations", max_alloc, ACCESS_MAX_ALLOCATIONS));
      request_int (b, "max_bps", (gint64) parse_number ("--max-bps", max_bps, ACCESS_MAX_BPS));
    }
  else
    {
      if (argc > 1 || (cancel != NULL && strcmp (command, "tokens") != 0))
        {
          g_printerr ("p2ptun-signal %s: takes no argument (see --help)\n", command);
          return 2;
        }
      b = request_begin (cancel != NULL ? "cancel" : command);
      request_string (b, "id", cancel);
    }

  request = request_text (b);
  reply = admin_request (state_dir, request, parser, &error);
  if (reply == NULL)
    {
      g_printerr ("p2ptun-signal %s: %s\n", command, error->message);
      return 1;
    }
  if (!json_object_get_boolean_member_with_default (reply, "ok", FALSE))
    {
      const char *text = member_string (reply, "error");

      g_printerr ("p2ptun-signal %s: %s\n", command, text != NULL ? text : "refused");
      return 1;
    }

  if (json && (strcmp (command, "peers") == 0 || strcmp (command, "tokens") == 0))
    print_json (reply);
  else if (strcmp (command, "peers") == 0)
    print_peers (reply);
  else if (strcmp (command, "tokens") == 0 && cancel == NULL)
    print_tokens (reply);
  else if (strcmp (command, "tokens") == 0)
    g_printerr ("token %s cancelled\n", cancel);
  else if (strcmp (command, "enroll") == 0 && peer != NULL)
    g_printerr ("enrolled %s\n", peer);
  else if (strcmp (command, "enroll") == 0 && seen)
    g_printerr ("enrolled %" G_GINT64_FORMAT " peer-id(s) seen so far\n",
                member_int (reply, "count"));
  else if (strcmp (command, "enroll") == 0)
    {
      gint64 until = member_int (reply, "expires");
      g_autofree char *when = until ? format_time (until) : g_strdup ("never");

      /* The token alone on stdout, for scripts; the rest on stderr. */
      printf ("%s\n", member_string (reply, "token"));
      fflush (stdout);
      g_printerr ("token %s (%s, expires %s); it is shown only now. On the agent:\n"
                  "  p2ptun-agent enroll --signal URL --signal-pin PIN TOKEN\n",
                  member_string (reply, "id"), reusable ? "reusable" : "one-time", when);
    }
  else if (strcmp (command, "revoke") == 0)
    g_printerr ("revoked %s\n", argv[1]);
  else
    g_printerr ("policy set\n");
  return 0;
}
