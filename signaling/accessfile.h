/* The access state in a state directory: access.json, and the lock that a
 * running p2ptun-signal holds on the directory (access.lock), so that the
 * admin commands edit the file only when no server runs on it. */
#pragma once

#include <glib.h>

#include "access.h"

#define ACCESS_FILE_NAME "access.json"
#define ACCESS_LOCK_NAME "access.lock"

/* @dir's access.json, or an empty store when there is none yet. */
AccessStore *access_file_load (const char *dir, GError **error);
/* Writes access.json atomically and durably (a temporary file, fsync,
 * rename), mode 0600. */
gboolean access_file_save (const char *dir, const AccessStore *store, GError **error);
/* Takes the directory's lock without waiting; returns its descriptor (close
 * it to give the lock back), or -1 with G_IO_ERROR_BUSY when another process
 * holds it. */
int access_file_lock (const char *dir, GError **error);
