/* Replays a corpus through one fuzz target without libFuzzer, so that every
 * seed and every past crash input runs as an ordinary `meson test`.
 *
 *   replay DIR-OR-FILE...
 *
 * Exits non-zero when an argument cannot be read or holds no input at all; a
 * crash in the target aborts as it would under libFuzzer. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* libFuzzer's default -max_len is 4096, but the signaling parsers take up to
 * 1 MiB; anything larger is not a corpus file. */
#define REPLAY_MAX_INPUT (4u * 1024 * 1024)

static int
replay_file (const char *path)
{
  FILE *f = fopen (path, "rb");
  if (f == NULL)
    {
      fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
      return -1;
    }
  /* A fresh buffer of exactly the file's size, so that ASan sees every read
   * past the end of the input. */
  uint8_t *data = malloc (REPLAY_MAX_INPUT);
  if (data == NULL)
    {
      fclose (f);
      return -1;
    }
  size_t len = fread (data, 1, REPLAY_MAX_INPUT, f);
  int err = ferror (f) || !feof (f);
  fclose (f);
  if (err)
    {
      fprintf (stderr, "replay: %s: read error or larger than %u bytes\n", path,
               REPLAY_MAX_INPUT);
      free (data);
      return -1;
    }
  uint8_t *exact = malloc (len > 0 ? len : 1);
  if (exact == NULL)
    {
      free (data);
      return -1;
    }
  if (len > 0)
    memcpy (exact, data, len);
  free (data);
  LLVMFuzzerTestOneInput (exact, len);
  free (exact);
  return 0;
}

static int
replay_path (const char *path, unsigned *count)
{
  struct stat st;
  if (stat (path, &st) != 0)
    {
      fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
      return -1;
    }
  if (!S_ISDIR (st.st_mode))
    {
      if (replay_file (path) != 0)
        return -1;
      (*count)++;
      return 0;
    }

  DIR *dir = opendir (path);
  if (dir == NULL)
    {
      fprintf (stderr, "replay: %s: %s\n", path, strerror (errno));
      return -1;
    }
  int ret = 0;
  struct dirent *ent;
  while ((ent = readdir (dir)) != NULL)
    {
      if (ent->d_name[0] == '.')
        continue;
      size_t n = strlen (path) + 1 + strlen (ent->d_name) + 1;
      char *child = malloc (n);
      if (child == NULL)
        {
          ret = -1;
          break;
        }
      snprintf (child, n, "%s/%s", path, ent->d_name);
      if (stat (child, &st) == 0 && S_ISREG (st.st_mode))
        {
          if (replay_file (child) != 0)
            ret = -1;
          else
            (*count)++;
        }
      free (child);
    }
  closedir (dir);
  return ret;
}

int
main (int argc, char **argv)
{
  unsigned count = 0;
  int ret = 0;

  if (argc < 2)
    {
      fprintf (stderr, "usage: %s DIR-OR-FILE...\n", argv[0]);
      return 2;
    }
  for (int i = 1; i < argc; i++)
    if (replay_path (argv[i], &count) != 0)
      ret = 1;
  printf ("replayed %u inputs\n", count);
  if (count == 0)
    {
      fprintf (stderr, "replay: no inputs found\n");
      return 1;
    }
  return ret;
}
