/* The agent's log filter. GLib's default writer prints errors, criticals,
 * warnings and messages, and info and debug only for the domains named in
 * G_MESSAGES_DEBUG. --log-level moves that threshold: down to errors only, or
 * up to info or debug for p2ptun's own domains ("p2ptun", "p2ptun-*"); other
 * libraries' info and debug (libnice's are many) still need G_MESSAGES_DEBUG,
 * which only ever adds: a domain it names (or "all") prints its info and debug
 * at every level. */
#include "loglevel.h"

#include <string.h>

static LogLevel threshold = LOGLEVEL_MESSAGE;

static const char *const names[] = { "error", "warning", "message", "info", "debug" };

gboolean
loglevel_parse (const char *text, LogLevel *out, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_ascii_strcasecmp (text, names[i]) == 0)
      {
        *out = (LogLevel)i;
        return TRUE;
      }
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
               "--log-level %s: expected error, warning, message, info or debug", text);
  return FALSE;
}

static LogLevel
loglevel_of (GLogLevelFlags flags)
{
  if (flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    return LOGLEVEL_ERROR;
  if (flags & G_LOG_LEVEL_WARNING)
    return LOGLEVEL_WARNING;
  if (flags & G_LOG_LEVEL_MESSAGE)
    return LOGLEVEL_MESSAGE;
  if (flags & G_LOG_LEVEL_INFO)
    return LOGLEVEL_INFO;
  return LOGLEVEL_DEBUG;
}

static gboolean
loglevel_is_ours (const char *domain)
{
  return domain != NULL
         && (strcmp (domain, "p2ptun") == 0 || g_str_has_prefix (domain, "p2ptun-"));
}

/* G_MESSAGES_DEBUG: a space- or comma-separated list of domains, or "all". */
static gboolean
loglevel_env_names (const char *domain)
{
  const char *env = g_getenv ("G_MESSAGES_DEBUG");
  g_auto (GStrv) words = NULL;

  if (env == NULL || env[0] == '\0')
    return FALSE;
  words = g_strsplit_set (env, " ,", -1);
  for (guint i = 0; words[i] != NULL; i++)
    if (strcmp (words[i], "all") == 0 || g_strcmp0 (words[i], domain) == 0)
      return TRUE;
  return FALSE;
}

static const char *
loglevel_domain (const GLogField *fields, gsize n_fields)
{
  for (gsize i = 0; i < n_fields; i++)
    if (strcmp (fields[i].key, "GLIB_DOMAIN") == 0)
      return fields[i].value;
  return NULL;
}

static GLogWriterOutput
loglevel_writer (GLogLevelFlags flags, const GLogField *fields, gsize n_fields,
                 gpointer data)
{
  LogLevel level = loglevel_of (flags);
  const char *domain = loglevel_domain (fields, n_fields);
  gboolean print;

  if (level <= LOGLEVEL_MESSAGE)
    print = level <= threshold;
  else
    print = (loglevel_is_ours (domain) && level <= threshold)
            || loglevel_env_names (domain);
  if (!print)
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (flags, fields, n_fields, data);
}

void
loglevel_install (LogLevel level)
{
  threshold = level;
  /* The default writer then prints every info and debug message it is given:
   * loglevel_writer has chosen them. */
  g_log_set_debug_enabled (TRUE);
  g_log_set_writer_func (loglevel_writer, NULL, NULL);
}
