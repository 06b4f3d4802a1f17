/* See warn.h. */
#include "warn.h"

void
warn_say (const Warn *warn, const char *format, ...)
{
  g_autofree char *text = NULL;
  va_list ap;

  va_start (ap, format);
  text = g_strdup_vprintf (format, ap);
  va_end (ap);
  if (warn != NULL && warn->func != NULL)
    warn->func (text, warn->user_data);
  else
    g_debug ("%s", text);
}
