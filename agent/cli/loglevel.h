/* How much p2ptun-agent logs: --log-level and -v over GLib's default log
 * writer, with G_MESSAGES_DEBUG still adding the domains it names. */
#pragma once

#include <glib.h>

typedef enum
{
  LOGLEVEL_ERROR,   /* errors and criticals */
  LOGLEVEL_WARNING, /* and warnings */
  LOGLEVEL_MESSAGE, /* and g_message: GLib's default, and ours */
  LOGLEVEL_INFO,    /* and p2ptun's info messages */
  LOGLEVEL_DEBUG,   /* and p2ptun's debug messages */
} LogLevel;

/* Parses error|warning|message|info|debug; FALSE (and @error set) otherwise. */
gboolean loglevel_parse (const char *text, LogLevel *out, GError **error);
/* Installs the log writer that prints what @level lets through, on stderr. */
void loglevel_install (LogLevel level);
