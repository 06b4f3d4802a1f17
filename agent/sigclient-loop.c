/* libcurl's multi interface on the client's GMainContext.
 *
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when
 * to call it back (CURLMOPT_TIMERFUNCTION); we keep one GSource per socket and
 * one timeout source, all on the client's GMainContext, and hand events back
 * with curl_multi_socket_action. Finished transfers are collected with
 * sigclient_process_done after each call. Nothing here waits on the network. */
#include "sigclient-private.h"

typedef struct
{
  GSource source;
  Sigclient *client;
  curl_socket_t fd;
  gpointer tag;
} SigSocket;

static gboolean
sigclient_loop_socket_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  SigSocket *s = (SigSocket *)source;
  Sigclient *c = s->client;
  GIOCondition rev = g_source_query_unix_fd (source, s->tag);
  int flags = 0;
  int running = 0;

  if (rev & (G_IO_IN | G_IO_HUP))
    flags |= CURL_CSELECT_IN;
  if (rev & G_IO_OUT)
    flags |= CURL_CSELECT_OUT;
  if (rev & (G_IO_ERR | G_IO_NVAL))
    flags |= CURL_CSELECT_ERR;

  sigclient_enter (c);
  /* May remove this very source (CURL_POLL_REMOVE): do not touch @s after. */
  curl_multi_socket_action (c->multi, s->fd, flags, &running);
  sigclient_process_done (c);
  sigclient_leave (c);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs sigclient_loop_socket_funcs = {
  .dispatch = sigclient_loop_socket_dispatch,
};

static void
sigclient_loop_socket_destroy (gpointer data)
{
  GSource *source = data;
  g_source_destroy (source);
  g_source_unref (source);
}

static int
sigclient_loop_socket_cb (CURL *easy, curl_socket_t fd, int what, void *userp,
                          void *socketp)
{
  Sigclient *c = userp;
  GIOCondition cond = 0;

  if (what == CURL_POLL_REMOVE)
    {
      g_hash_table_remove (c->sockets, GINT_TO_POINTER (fd));
      return 0;
    }
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
    cond |= G_IO_IN;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
    cond |= G_IO_OUT;

  SigSocket *s = g_hash_table_lookup (c->sockets, GINT_TO_POINTER (fd));
  if (s != NULL)
    {
      g_source_modify_unix_fd (&s->source, s->tag, cond);
      return 0;
    }
  s = (SigSocket *)g_source_new (&sigclient_loop_socket_funcs, sizeof (SigSocket));
  s->client = c;
  s->fd = fd;
  s->tag = g_source_add_unix_fd (&s->source, fd, cond);
  g_source_set_name (&s->source, "p2ptun sigclient socket");
  g_source_attach (&s->source, c->context);
  g_hash_table_insert (c->sockets, GINT_TO_POINTER (fd), s);
  return 0;
}

static gboolean
sigclient_loop_timer_fired (gpointer data)
{
  Sigclient *c = data;
  int running = 0;

  /* Forget this source first: libcurl may set a new timer from inside
   * curl_multi_socket_action. */
  if (c->timer == g_main_current_source ())
    g_clear_pointer (&c->timer, g_source_unref);
  sigclient_enter (c);
  curl_multi_socket_action (c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  sigclient_process_done (c);
  sigclient_leave (c);
  return G_SOURCE_REMOVE;
}

static int
sigclient_loop_timer_cb (CURLM *multi, long timeout_ms, void *userp)
{
  Sigclient *c = userp;

  if (c->timer != NULL)
    {
      g_source_destroy (c->timer);
      g_clear_pointer (&c->timer, g_source_unref);
    }
  if (timeout_ms < 0)
    return 0;
  /* libcurl forbids calling it back from here, even for 0: go through the
   * loop. */
  c->timer = g_timeout_source_new ((guint)MIN (timeout_ms, (long)G_MAXINT));
  g_source_set_name (c->timer, "p2ptun sigclient timer");
  g_source_set_callback (c->timer, sigclient_loop_timer_fired, c, NULL);
  g_source_attach (c->timer, c->context);
  return 0;
}

gboolean
sigclient_loop_init (Sigclient *c)
{
  c->sockets = g_hash_table_new_full (NULL, NULL, NULL, sigclient_loop_socket_destroy);
  c->multi = curl_multi_init ();
  return c->multi != NULL
         && curl_multi_setopt (c->multi, CURLMOPT_SOCKETFUNCTION,
                               sigclient_loop_socket_cb)
                == CURLM_OK
         && curl_multi_setopt (c->multi, CURLMOPT_SOCKETDATA, c) == CURLM_OK
         && curl_multi_setopt (c->multi, CURLMOPT_TIMERFUNCTION, sigclient_loop_timer_cb)
                == CURLM_OK
         && curl_multi_setopt (c->multi, CURLMOPT_TIMERDATA, c) == CURLM_OK;
}

void
sigclient_loop_clear (Sigclient *c)
{
  /* The multi handle goes before the socket sources it may still report. */
  if (c->multi != NULL)
    curl_multi_cleanup (c->multi);
  c->multi = NULL;
  g_clear_pointer (&c->sockets, g_hash_table_unref);
  if (c->timer != NULL)
    {
      g_source_destroy (c->timer);
      g_clear_pointer (&c->timer, g_source_unref);
    }
}
