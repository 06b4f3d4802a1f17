/* Where the library's parts send what a person should hear of and the node
 * rides out (a relay that did not answer, a skipped STUN server): up to the
 * node, which makes it a WARNING event. The library itself logs at debug
 * level at most. */
#pragma once

#include <glib.h>

typedef struct
{
  void (*func) (const char *text, gpointer user_data); /* NULL: the debug log */
  gpointer user_data;
} Warn;

void warn_say (const Warn *warn, const char *format, ...) G_GNUC_PRINTF (2, 3);
