/* 'p2ptun-agent status'. See status.h. */
#include "status.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "control.h"
#include "linesock.h"

/* The largest reply taken from one agent: thousands of tunnels. */
#define STATUS_REPLY_MAX (16 * 1024 * 1024)

/* Members of a reply: it comes from an agent of our own user, but is read
 * as if it did not (a wrong type reads as missing). */
static const char *
status_str (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n)
      || json_node_get_value_type (n) != G_TYPE_STRING)
    return "?";
  return json_node_get_string (n);
}

static gint64
status_int (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n)
      || json_node_get_value_type (n) != G_TYPE_INT64)
    return 0;
  return json_node_get_int (n);
}

static JsonObject *
status_obj (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  return n != NULL && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

/* The pid of a socket's name, "<pid>.sock"; 0 if it is not one. */
static pid_t
status_socket_pid (const char *name)
{
  g_autofree char *digits = NULL;
  guint64 pid = 0;

  if (!g_str_has_suffix (name, ".sock"))
    return 0;
  digits = g_strndup (name, strlen (name) - strlen (".sock"));
  if (!g_ascii_string_to_unsigned (digits, 10, 1, G_MAXINT32, &pid, NULL))
    return 0;
  return (pid_t) pid;
}

/* Asks the agent on @path; NULL (said why) if it did not answer. A socket
 * of a dead process is removed. */
static JsonNode *
status_ask (const char *path, pid_t pid)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *reply = NULL;
  JsonNode *root;

  if (kill (pid, 0) != 0 && errno == ESRCH)
    {
      (void) g_unlink (path);
      return NULL;
    }
  reply = line_socket_call (path, "status", STATUS_REPLY_MAX, &error);
  if (reply == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
        (void) g_unlink (path); /* its pid went to another program */
      else
        fprintf (stderr, "p2ptun-agent: agent %ld did not answer: %s\n", (long) pid,
                 error->message);
      return NULL;
    }
  root = json_from_string (reply, &error);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)
      || status_int (json_node_get_object (root), "version") != CONTROL_STATUS_VERSION)
    {
      fprintf (stderr, "p2ptun-agent: agent %ld: not a status reply of version %d\n",
               (long) pid, CONTROL_STATUS_VERSION);
      g_clear_pointer (&root, json_node_unref);
    }
  return root;
}

static gint
status_compare_pids (gconstpointer a, gconstpointer b)
{
  pid_t pa = status_socket_pid (*(const char *const *) a);
  pid_t pb = status_socket_pid (*(const char *const *) b);

  return pa < pb ? -1 : pa > pb;
}

/* The replies of every agent of @config_dir, oldest pid first. */
static JsonArray *
status_collect (const char *config_dir)
{
  JsonArray *agents = json_array_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = control_dir (config_dir, FALSE, &error);
  g_autoptr (GDir) listing = dir ? g_dir_open (dir, 0, NULL) : NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  /* A missing directory: no agent ever ran. Anything else is said. */
  if (dir == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    fprintf (stderr, "p2ptun-agent: %s\n", error->message);

  while (listing != NULL && (name = g_dir_read_name (listing)) != NULL)
    if (status_socket_pid (name) != 0)
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, status_compare_pids);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, names->pdata[i], NULL);
      JsonNode *reply = status_ask (path, status_socket_pid (names->pdata[i]));

      if (reply != NULL)
        json_array_add_element (agents, reply);
    }
  return agents;
}

/* 5d 3h, 3h 12m, 12m 5s, 5s */
static char *
status_duration (gint64 us)
{
  gint64 s = us / G_USEC_PER_SEC;

  if (s >= 86400)
    return g_strdup_printf ("%" G_GINT64_FORMAT "d %" G_GINT64_FORMAT "h", s / 86400,
                            s % 86400 / 3600);
  if (s >= 3600)
    return g_strdup_printf ("%" G_GINT64_FORMAT "h %" G_GINT64_FORMAT "m", s / 3600,
                            s % 3600 / 60);
  if (s >= 60)
    return g_strdup_printf ("%" G_GINT64_FORMAT "m %" G_GINT64_FORMAT "s", s / 60,
                            s % 60);
  return g_strdup_printf ("%" G_GINT64_FORMAT "s", s);
}

static void
status_print_tunnel (JsonObject *t, JsonObject *names)
{
  const char *peer = status_str (t, "peer_id");
  JsonNode *name = names ? json_object_get_member (names, peer) : NULL;
  JsonObject *path = status_obj (t, "path");
  gint64 sent = status_int (t, "packets_sent");
  gint64 lost = status_int (t, "packets_lost");
  g_autofree char *uptime = status_duration (status_int (t, "uptime_us"));
  g_autofree char *bytes_out = g_format_size ((guint64) status_int (t, "bytes_sent"));
  g_autofree char *bytes_in = g_format_size ((guint64) status_int (t, "bytes_received"));

  if (name != NULL && JSON_NODE_HOLDS_VALUE (name)
      && json_node_get_value_type (name) == G_TYPE_STRING)
    printf ("  peer %s (%s)\n", json_node_get_string (name), peer);
  else
    printf ("  peer %s\n", peer);
  if (path != NULL)
    printf ("    path:      %s, %s, %s %s -> %s %s\n", status_str (path, "kind"),
            status_str (path, "transport"), status_str (path, "local_type"),
            status_str (path, "local_address"), status_str (path, "remote_type"),
            status_str (path, "remote_address"));
  else
    printf ("    path:      none: the tunnel is not up\n");
  printf ("    rtt:       %.1f ms\n", status_int (t, "rtt_us") / 1000.0);
  printf ("    loss:      %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
          " packets (%.1f %%)\n",
          lost, sent, sent > 0 ? 100.0 * (double) lost / (double) sent : 0.0);
  printf ("    sent:      %" G_GINT64_FORMAT " bytes (%s) in %" G_GINT64_FORMAT
          " packets\n",
          status_int (t, "bytes_sent"), bytes_out, sent);
  printf ("    received:  %" G_GINT64_FORMAT " bytes (%s) in %" G_GINT64_FORMAT
          " packets\n",
          status_int (t, "bytes_received"), bytes_in, status_int (t, "packets_received"));
  printf ("    open:      %" G_GINT64_FORMAT " streams, %" G_GINT64_FORMAT " UDP flows\n",
          status_int (t, "streams") - status_int (t, "udp_flows"),
          status_int (t, "udp_flows"));
  printf ("    uptime:    %s\n", path != NULL ? uptime : "-");
  printf ("    changes:   %" G_GINT64_FORMAT " path changes, %" G_GINT64_FORMAT
          " ICE restarts, %" G_GINT64_FORMAT " outages, %" G_GINT64_FORMAT
          " reconnects\n",
          status_int (t, "path_changes"), status_int (t, "restarts"),
          status_int (t, "outages"), status_int (t, "reconnects"));
}

static void
status_print_agent (JsonObject *a)
{
  JsonNode *tunnels = json_object_get_member (a, "tunnels");
  JsonArray *list
      = tunnels && JSON_NODE_HOLDS_ARRAY (tunnels) ? json_node_get_array (tunnels) : NULL;
  guint n = list ? json_array_get_length (list) : 0;

  printf ("agent %" G_GINT64_FORMAT " (%s) %s, %u tunnel%s\n", status_int (a, "pid"),
          status_str (a, "mode"), status_str (a, "peer_id"), n, n == 1 ? "" : "s");
  for (guint i = 0; i < n; i++)
    {
      JsonNode *t = json_array_get_element (list, i);

      if (JSON_NODE_HOLDS_OBJECT (t))
        status_print_tunnel (json_node_get_object (t), status_obj (a, "names"));
    }
}

int
status_main (const char *config_dir, gboolean json)
{
  g_autoptr (JsonArray) agents = status_collect (config_dir);
  guint n = json_array_get_length (agents);

  if (n == 0)
    {
      fprintf (stderr, "p2ptun-agent: no agent of %s is running\n", config_dir);
      return 1;
    }
  if (json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      g_autoptr (JsonNode) root = NULL;
      g_autofree char *text = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "version");
      json_builder_add_int_value (b, STATUS_JSON_VERSION);
      json_builder_set_member_name (b, "agents");
      json_builder_add_value (b, json_node_init_array (json_node_alloc (), agents));
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      text = json_to_string (root, FALSE);
      printf ("%s\n", text);
    }
  else
    for (guint i = 0; i < n; i++)
      {
        if (i > 0)
          printf ("\n");
        status_print_agent (json_node_get_object (json_array_get_element (agents, i)));
      }
  return fflush (stdout) == 0 ? 0 : 1;
}
