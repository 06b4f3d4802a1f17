/* Freed memory back to the system after load.
 *
 * glibc's heap only shrinks from its top: after 200 streams close, their
 * freed buffers stay in the process (35-49 MiB against 19 MiB idle) until
 * malloc_trim() gives the free pages in the middle back. The transport asks
 * for a trim when its last stream goes; it runs once, MEMTRIM_DELAY_MS
 * later, so that a burst of closes costs one trim. */
#pragma once

#include <glib.h>

#define MEMTRIM_DELAY_MS 1000

/* A trim in @context after MEMTRIM_DELAY_MS, unless one is already due. */
void memtrim_soon (GMainContext *context);
