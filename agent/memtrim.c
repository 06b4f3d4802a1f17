/* Freed memory back to the system after load; see memtrim.h. */
#include "memtrim.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

static gint memtrim_due;

static gboolean
memtrim_run (gpointer unused)
{
#ifdef __GLIBC__
  (void) malloc_trim (0);
#endif
  return G_SOURCE_REMOVE;
}

/* Also when the context goes before the trim ran. */
static void
memtrim_done (gpointer unused)
{
  g_atomic_int_set (&memtrim_due, 0);
}

void
memtrim_soon (GMainContext *context)
{
  GSource *source;

  if (!g_atomic_int_compare_and_exchange (&memtrim_due, 0, 1))
    return;
  source = g_timeout_source_new (MEMTRIM_DELAY_MS);
  g_source_set_name (source, "p2ptun-memtrim");
  g_source_set_callback (source, memtrim_run, NULL, memtrim_done);
  g_source_attach (source, context);
  g_source_unref (source);
}
