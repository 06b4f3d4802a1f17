/* The access state in a state directory. See accessfile.h. */
#include "accessfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

AccessStore *
access_file_load (const char *dir, GError **error)
{
  g_autofree char *path = g_build_filename (dir, ACCESS_FILE_NAME, NULL);
  g_autofree char *data = NULL;
  g_autoptr (GError) local = NULL;
  AccessStore *store;
  GStatBuf st;
  gsize len = 0;

  if (g_stat (path, &st) != 0 && errno == ENOENT)
    return access_store_new ();
  if (g_stat (path, &st) == 0 && (guint64) st.st_size > ACCESS_FILE_MAX)
    {
      g_set_error (error, ACCESS_ERROR, ACCESS_ERROR_BAD_FILE, "%s is over %d MiB", path,
                   ACCESS_FILE_MAX >> 20);
      return NULL;
    }
  if (!g_file_get_contents (path, &data, &len, error))
    return NULL;
  store = access_store_from_json (data, len, &local);
  if (store == NULL)
    g_set_error (error, ACCESS_ERROR, ACCESS_ERROR_BAD_FILE, "%s: %s", path, local->message);
  return store;
}

gboolean
access_file_save (const char *dir, const AccessStore *store, GError **error)
{
  g_autofree char *path = g_build_filename (dir, ACCESS_FILE_NAME, NULL);
  g_autofree char *json = NULL;
  gsize len = 0;

  json = access_store_to_json (store, &len);
  return g_file_set_contents_full (path, json, (gssize) len,
                                   G_FILE_SET_CONTENTS_CONSISTENT
                                       | G_FILE_SET_CONTENTS_DURABLE,
                                   0600, error);
}

int
access_file_lock (const char *dir, GError **error)
{
  g_autofree char *path = g_build_filename (dir, ACCESS_LOCK_NAME, NULL);
  int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  int saved;

  if (fd < 0)
    {
      saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s: %s", path,
                   g_strerror (saved));
      return -1;
    }
  if (flock (fd, LOCK_EX | LOCK_NB) != 0)
    {
      saved = errno;
      close (fd);
      if (saved == EWOULDBLOCK)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY,
                     "another p2ptun-signal holds %s", path);
      else
        g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s: %s", path,
                     g_strerror (saved));
      return -1;
    }
  return fd;
}
