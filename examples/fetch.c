/* fetch: GET one path from a peer's HTTP service through a p2ptun tunnel.
 *   cc fetch.c $(pkg-config --cflags --libs p2ptun) -o fetch
 *   ./fetch SIGNAL-URL SIGNAL-PIN CONFIG-DIR PEER-ID SERVICE PATH [ONLY-LOCAL-IP] */
#include <glib-unix.h>
#include <p2ptun/p2ptun.h>
#include <stdio.h>

static char **args;           /* PEER-ID SERVICE PATH from args[1] */
static guint stream;          /* 0 until the stream is open */
static int code = -1, closed; /* the exit code once known; whether CLOSED came */

static void /* The first outcome wins; NULL is success. CLOSED follows. */
finish (P2ptunNode *node, const char *error)
{
  if (code >= 0)
    return;
  if ((code = error != NULL))
    fprintf (stderr, "fetch: error: %s\n", error);
  p2ptun_node_close (node);
}

static gboolean /* The answer, to its end: closing our end ends the stream. */
on_readable (int fd, GIOCondition condition, gpointer data)
{
  char buf[16384];
  ssize_t n = read (fd, buf, sizeof buf);
  if (n > 0 && fwrite (buf, 1, (size_t) n, stdout) == (size_t) n)
    return G_SOURCE_CONTINUE;
  close (fd);
  return G_SOURCE_REMOVE;
}

static void
on_event (P2ptunNode *node, const P2ptunEvent *event, gpointer data)
{
  P2ptunEventKind kind = p2ptun_event_get_kind (event);
  g_autoptr (GError) error = NULL;

  if (kind == P2PTUN_EVENT_PEER_UP && stream == 0)
    {
      g_autofree char *path = p2ptun_path_to_string (p2ptun_event_get_path (event));
      int fd = p2ptun_node_open_fd (node, args[1], args[2], &stream, &error);
      fprintf (stderr, "fetch: path %s, rtt %.1f ms\n", path,
               p2ptun_event_get_rtt_us (event) / 1e3);
      if (fd < 0 || dprintf (fd, "GET %s HTTP/1.0\r\nHost: p2ptun\r\n\r\n", args[3]) < 0)
        finish (node, error ? error->message : "cannot send the request");
      else
        g_unix_fd_add (fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable, NULL);
    }
  else if (kind == P2PTUN_EVENT_STREAM_ENDED && p2ptun_event_get_stream (event) == stream)
    finish (node, p2ptun_event_get_error (event) ? p2ptun_event_get_message (event) : NULL);
  else if (kind == P2PTUN_EVENT_PEER_OFFLINE || kind == P2PTUN_EVENT_PEER_GONE
           || kind == P2PTUN_EVENT_FATAL) /* a one-shot fetch does not wait */
    finish (node, p2ptun_event_get_message (event));
  closed = closed || kind == P2PTUN_EVENT_CLOSED;
}

int
main (int argc, char **argv)
{
  const char *local[] = { argc > 7 ? argv[7] : NULL, NULL };
  g_autoptr (P2ptunConfig) config = p2ptun_config_new ();
  g_autoptr (P2ptunIdentity) identity = NULL;
  g_autoptr (P2ptunNode) node = NULL;
  g_autoptr (GError) error = NULL;

  if (argc < 7)
    return fprintf (stderr, "usage: fetch URL PIN DIR PEER-ID SERVICE PATH [LOCAL-IP]\n"), 2;
  p2ptun_config_set_signal (config, argv[1], argv[2]);
  p2ptun_config_set_local_addresses (config, local[0] ? local : NULL);
  if (!(identity = p2ptun_identity_load (argv[3], &error))
      || !(node = p2ptun_node_new (NULL, identity, config, &error))
      || !p2ptun_node_pair (node, argv[4], &error))
    return fprintf (stderr, "fetch: error: %s\n", error->message), 1;
  args = argv + 3;
  p2ptun_node_set_event_func (node, on_event, NULL, NULL);
  for (p2ptun_node_start (node); !closed;)
    g_main_context_iteration (NULL, TRUE);
  return code;
}
