/* The control socket of a running p2ptun-agent. See control.h. */
#include "control.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "linesock.h"

/* Hex digits of the config directory's hash in the directory's name. */
#define CONTROL_HASH_DIGITS 16

struct _Control
{
  LineSocket *socket;
  P2ptunNode *node;
  char *config_dir;
  char *mode;
  char *peer_id;
  GHashTable *names;
};

/* @path is a directory of ours, not a link, that no one else may enter; made
 * (0700) when missing and @create. */
static gboolean
control_check_dir (const char *path, gboolean create, GError **error)
{
  struct stat st;

  if (create && g_mkdir (path, 0700) != 0 && errno != EEXIST)
    {
      int e = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e), "cannot make %s: %s",
                   path, g_strerror (e));
      return FALSE;
    }
  if (lstat (path, &st) != 0)
    {
      int e = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e), "%s: %s", path,
                   g_strerror (e));
      return FALSE;
    }
  if (!S_ISDIR (st.st_mode) || st.st_uid != geteuid () || (st.st_mode & 0077) != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   "%s is not a directory of this user with mode 0700: not used for the "
                   "control socket",
                   path);
      return FALSE;
    }
  return TRUE;
}

char *
control_dir (const char *config_dir, gboolean create, GError **error)
{
  const char *runtime = g_getenv ("XDG_RUNTIME_DIR");
  char real[PATH_MAX];
  g_autofree char *base = NULL;
  g_autofree char *hash = NULL;
  g_autofree char *dir = NULL;

  if (runtime == NULL || *runtime == '\0')
    {
      dir = g_build_filename (config_dir, "run", NULL);
      return control_check_dir (dir, create, error) ? g_steal_pointer (&dir) : NULL;
    }
  /* The same directory however it is named: through links, relative. */
  if (realpath (config_dir, real) == NULL)
    {
      g_autofree char *canonical = g_canonicalize_filename (config_dir, NULL);

      g_strlcpy (real, canonical, sizeof real);
    }
  hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, real, -1);
  hash[CONTROL_HASH_DIGITS] = '\0';
  base = g_build_filename (runtime, "p2ptun", NULL);
  dir = g_build_filename (base, hash, NULL);
  if (!control_check_dir (base, create, error) || !control_check_dir (dir, create, error))
    return NULL;
  return g_steal_pointer (&dir);
}

static void
control_add_names (JsonBuilder *b, GHashTable *names)
{
  GHashTableIter it;
  gpointer key, value;

  json_builder_begin_object (b);
  if (names != NULL)
    {
      g_hash_table_iter_init (&it, names);
      while (g_hash_table_iter_next (&it, &key, &value))
        {
          json_builder_set_member_name (b, key);
          json_builder_add_string_value (b, value);
        }
    }
  json_builder_end_object (b);
}

/* The envelope, with the library's status JSON of every tunnel. */
static char *
control_status_json (Control *self)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (GPtrArray) statuses = p2ptun_node_get_statuses (self->node);
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, CONTROL_STATUS_VERSION);
  json_builder_set_member_name (b, "pid");
  json_builder_add_int_value (b, getpid ());
  json_builder_set_member_name (b, "mode");
  json_builder_add_string_value (b, self->mode);
  json_builder_set_member_name (b, "config_dir");
  json_builder_add_string_value (b, self->config_dir);
  json_builder_set_member_name (b, "peer_id");
  json_builder_add_string_value (b, self->peer_id);
  json_builder_set_member_name (b, "names");
  control_add_names (b, self->names);
  json_builder_set_member_name (b, "tunnels");
  json_builder_begin_array (b);
  for (guint i = 0; i < statuses->len; i++)
    {
      g_autofree char *text = p2ptun_status_to_json (statuses->pdata[i]);

      /* The library's JSON as it is: parsed back only to nest it. */
      json_builder_add_value (b, json_from_string (text, NULL));
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

static char *
control_run (const char *request, gsize len, gsize *reply_len, gpointer data)
{
  Control *self = data;
  char *reply;

  if (len == strlen ("status") && memcmp (request, "status", len) == 0)
    reply = control_status_json (self);
  else
    reply = g_strdup ("{\"error\":\"unknown request: the one request is 'status'\"}");
  *reply_len = strlen (reply);
  return reply;
}

Control *
control_new (P2ptunNode *node, const char *config_dir, const char *mode,
             const char *peer_id, GHashTable *names, GError **error)
{
  g_autofree char *dir = control_dir (config_dir, TRUE, error);
  g_autofree char *name = NULL;
  g_autofree char *path = NULL;
  Control *self;

  if (dir == NULL)
    return NULL;
  name = g_strdup_printf ("%ld.sock", (long) getpid ());
  path = g_build_filename (dir, name, NULL);
  self = g_new0 (Control, 1);
  self->node = node;
  self->config_dir = g_canonicalize_filename (config_dir, NULL);
  self->mode = g_strdup (mode);
  self->peer_id = g_strdup (peer_id);
  self->names = names ? g_hash_table_ref (names) : NULL;
  /* A file of this name belongs to a dead process of this pid. */
  self->socket = line_socket_new (g_main_context_default (), path, CONTROL_REQUEST_MAX,
                                  control_run, self, error);
  if (self->socket == NULL)
    {
      control_free (self);
      return NULL;
    }
  return self;
}

void
control_free (Control *self)
{
  if (self == NULL)
    return;
  line_socket_free (self->socket);
  g_free (self->config_dir);
  g_free (self->mode);
  g_free (self->peer_id);
  g_clear_pointer (&self->names, g_hash_table_unref);
  g_free (self);
}
