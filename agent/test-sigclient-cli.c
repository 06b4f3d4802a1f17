/* Manual and scripted driver of agent/sigclient.c against a running
 * p2ptun-signal. PIN may be "-" for none.
 *
 *   test-sigclient-cli id DIR
 *   test-sigclient-cli recv DIR URL PIN [SECONDS]      prints messages, or the fatal
 * error test-sigclient-cli send DIR URL PIN PEER-ID        sends one offer
 *   test-sigclient-cli ice DIR URL PIN
 *   test-sigclient-cli nocert DIR URL PIN              polls without a client certificate
 *   test-sigclient-cli other DIR OTHER-DIR URL PIN     polls OTHER's mailbox with DIR's
 * key test-sigclient-cli selftest DIR-A DIR-B URL PIN    two agents, exit status 0 on
 * success test-sigclient-cli integration SERVER-BINARY       starts the server in a
 * temporary directory, enrolls two agents, runs selftest and checks the errors a
 *       user sees (pin mismatch, unreachable, 401, 403), then sigclient_repoll through a
 *       proxy that counts connections; TAP-free, exit status 0 on success
 *
 * Everything runs on a private GMainContext with a 10 ms ticker beside it,
 * whose largest gap is printed at the end ("max-gap-ms N"): a blocking call
 * on the loop would show here. */
#include "sigclient.h"

#include <glib/gstdio.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct
{
  GMainContext *ctx;
  GMainLoop *loop;
  gint64 last_tick;
  gint64 max_gap;
  guint64 ticks;
  int status;

  /* selftest */
  Sigclient *a, *b, *a2;
  Identity *ida, *idb;
  guint got_a, got_b, got_a2;
  gint64 sent_at;
  int step;
  const char *url, *pin;
} Cli;

static gboolean
cli_tick (gpointer data)
{
  Cli *cli = data;
  gint64 now = g_get_monotonic_time ();
  if (cli->last_tick != 0 && now - cli->last_tick > cli->max_gap)
    cli->max_gap = now - cli->last_tick;
  cli->last_tick = now;
  cli->ticks++;
  return G_SOURCE_CONTINUE;
}

static gboolean
cli_quit (gpointer data)
{
  Cli *cli = data;
  g_main_loop_quit (cli->loop);
  return G_SOURCE_REMOVE;
}

static void
cli_after (Cli *cli, guint ms, GSourceFunc fn)
{
  GSource *s = g_timeout_source_new (ms);
  g_source_set_callback (s, fn, cli, NULL);
  g_source_attach (s, cli->ctx);
  g_source_unref (s);
}

static Identity *
cli_identity (const char *dir)
{
  g_autoptr (GError) error = NULL;
  Identity *id = identity_load_or_create (dir, &error);
  if (id == NULL)
    {
      fprintf (stderr, "identity: %s\n", error->message);
      exit (1);
    }
  return id;
}

static Sigclient *
cli_client (Cli *cli, const char *url, const char *pin, const Identity *id)
{
  g_autoptr (GError) error = NULL;
  Sigclient *c
      = sigclient_new (cli->ctx, url, strcmp (pin, "-") == 0 ? NULL : pin, id, &error);
  if (c == NULL)
    {
      fprintf (stderr, "new: %s\n", error->message);
      exit (1);
    }
  return c;
}

static Sigmsg *
cli_offer (const char *ufrag)
{
  Sigmsg *m = sigmsg_new (SIGMSG_OFFER, "0123456789abcdef0123456789abcdef");
  m->ufrag = g_strdup (ufrag);
  m->pwd = g_strdup ("abcdefghijklmnopqrstuvwxyz");
  return m;
}

/* --- single commands ------------------------------------------------------- */

static void
cli_on_message (Sigclient *c, const Sigmsg *msg, gpointer data)
{
  printf ("message from %s type %s session %s ufrag %s\n", msg->from,
          sigmsg_type_to_string (msg->type), msg->session, msg->ufrag ? msg->ufrag : "-");
  fflush (stdout);
}

static void
cli_on_fatal (Sigclient *c, const GError *error, gpointer data)
{
  Cli *cli = data;
  printf ("fatal: %s\n", error->message);
  cli->status = 2;
  g_main_loop_quit (cli->loop);
}

static void
cli_on_sent (Sigclient *c, gboolean online, const GError *error, gpointer data)
{
  Cli *cli = data;
  if (error != NULL)
    {
      printf ("send error: %s\n", error->message);
      cli->status = 2;
    }
  else
    printf ("sent online=%s\n", online ? "true" : "false");
  g_main_loop_quit (cli->loop);
}

static void
cli_on_ice (Sigclient *c, SigmsgIceServers *servers, const GError *error, gpointer data)
{
  Cli *cli = data;
  if (error != NULL)
    {
      printf ("ice error: %s\n", error->message);
      cli->status = 2;
    }
  else
    {
      for (guint i = 0; i < servers->stun->len; i++)
        printf ("stun %s\n", (char *)g_ptr_array_index (servers->stun, i));
      for (guint i = 0; i < servers->turn->len; i++)
        printf ("turn %s\n",
                ((SigmsgTurnServer *)g_ptr_array_index (servers->turn, i))->uri);
      sigmsg_ice_servers_free (servers);
    }
  g_main_loop_quit (cli->loop);
}

/* --- selftest ---------------------------------------------------------------- */

static void st_next (Cli *cli);

static void
st_fail (Cli *cli, const char *what)
{
  printf ("FAIL step %d: %s\n", cli->step, what);
  cli->status = 1;
  g_main_loop_quit (cli->loop);
}

static void
st_sent (Sigclient *c, gboolean online, const GError *error, gpointer data)
{
  Cli *cli = data;
  if (error != NULL)
    {
      st_fail (cli, error->message);
      return;
    }
  printf ("step %d: sent, online=%d\n", cli->step, online);
}

static void
st_on_a (Sigclient *c, const Sigmsg *msg, gpointer data)
{
  Cli *cli = data;
  gint64 ms = (g_get_monotonic_time () - cli->sent_at) / 1000;
  cli->got_a++;
  printf ("step %d: A got %s ufrag %s after %" G_GINT64_FORMAT " ms\n", cli->step,
          sigmsg_type_to_string (msg->type), msg->ufrag, ms);
  if (strcmp (msg->from, cli->idb->peer_id) != 0)
    st_fail (cli, "wrong from");
  else if (ms > 1000)
    st_fail (cli, "long-poll did not wake up promptly");
  else
    st_next (cli);
}

static void
st_on_b (Sigclient *c, const Sigmsg *msg, gpointer data)
{
  Cli *cli = data;
  cli->got_b++;
  printf ("step %d: B got %s from A\n", cli->step, sigmsg_type_to_string (msg->type));
  if (strcmp (msg->from, cli->ida->peer_id) != 0)
    st_fail (cli, "wrong from");
  else
    st_next (cli);
}

static void
st_on_a2 (Sigclient *c, const Sigmsg *msg, gpointer data)
{
  Cli *cli = data;
  cli->got_a2++;
  printf ("step %d: A2 got message %u, freeing A2 inside the callback\n", cli->step,
          cli->got_a2);
  g_clear_pointer (&cli->a2, sigclient_free);
}

static void
st_on_fatal (Sigclient *c, const GError *error, gpointer data)
{
  st_fail (data, error->message);
}

static void
st_ice (Sigclient *c, SigmsgIceServers *servers, const GError *error, gpointer data)
{
  Cli *cli = data;
  if (error != NULL)
    {
      st_fail (cli, error->message);
      return;
    }
  printf ("step %d: %u stun, %u turn servers\n", cli->step, servers->stun->len,
          servers->turn->len);
  sigmsg_ice_servers_free (servers);
  st_next (cli);
}

static gboolean
st_next_cb (gpointer data)
{
  st_next (data);
  return G_SOURCE_REMOVE;
}

static void
st_next (Cli *cli)
{
  g_autoptr (Sigmsg) m = NULL;

  cli->step++;
  switch (cli->step)
    {
    case 1: /* A listens; give its long-poll time to reach the server */
      sigclient_start (cli->a, st_on_a, st_on_fatal, cli);
      cli_after (cli, 1500, st_next_cb);
      break;
    case 2: /* B -> A wakes A's long-poll */
      m = cli_offer ("ufragone");
      cli->sent_at = g_get_monotonic_time ();
      sigclient_send (cli->b, cli->ida->peer_id, m, st_sent, cli);
      break; /* st_on_a goes on */
    case 3:  /* A -> B, B not yet listening: queued */
      m = cli_offer ("ufragtwo");
      sigclient_send (cli->a, cli->idb->peer_id, m, st_sent, cli);
      sigclient_start (cli->b, st_on_b, st_on_fatal, cli);
      break; /* st_on_b goes on */
    case 4:
      sigclient_get_ice_servers (cli->a, st_ice, cli);
      break;
    case 5: /* free A with its poll in flight, queue two, free A2 in its callback */
      g_clear_pointer (&cli->a, sigclient_free);
      m = cli_offer ("ufragthree");
      sigclient_send (cli->b, cli->ida->peer_id, m, st_sent, cli);
      sigmsg_free (g_steal_pointer (&m));
      m = cli_offer ("ufragfour");
      sigclient_send (cli->b, cli->ida->peer_id, m, st_sent, cli);
      cli_after (cli, 1000, st_next_cb);
      break;
    case 6:
      cli->a2 = cli_client (cli, cli->url, cli->pin, cli->ida);
      sigclient_start (cli->a2, st_on_a2, st_on_fatal, cli);
      cli_after (cli, 1500, st_next_cb);
      break;
    case 7:
      if (cli->got_a2 != 1)
        {
          st_fail (cli, "A2 got a callback after it was freed");
          return;
        }
      /* a send whose answer never comes: freed in flight */
      m = cli_offer ("ufragfive");
      sigclient_send (cli->b, cli->ida->peer_id, m, st_sent, cli);
      g_clear_pointer (&cli->b, sigclient_free);
      cli_after (cli, 500, cli_quit);
      printf ("PASS\n");
      break;
    default:
      break;
    }
}

static gboolean
cli_guard (gpointer data)
{
  st_fail (data, "timed out");
  return G_SOURCE_REMOVE;
}

static int
cli_selftest (Cli *cli, const char *dir_a, const char *dir_b, const char *url,
              const char *pin)
{
  cli->ida = cli_identity (dir_a);
  cli->idb = cli_identity (dir_b);
  cli->a = cli_client (cli, url, pin, cli->ida);
  cli->b = cli_client (cli, url, pin, cli->idb);
  cli->url = url;
  cli->pin = pin;
  cli->step = 0;
  st_next (cli);
  GSource *guard = g_timeout_source_new_seconds (30);
  g_source_set_callback (guard, cli_guard, cli, NULL);
  g_source_attach (guard, cli->ctx);
  g_main_loop_run (cli->loop);
  g_source_destroy (guard);
  g_source_unref (guard);
  g_clear_pointer (&cli->a, sigclient_free);
  g_clear_pointer (&cli->a2, sigclient_free);
  g_clear_pointer (&cli->b, sigclient_free);
  identity_free (cli->ida);
  identity_free (cli->idb);
  return cli->status;
}

/* --- integration: the real server, the errors a user sees ------------------ */

typedef struct
{
  Cli *cli;
  GError *error;
} Expect;

static void
expect_fatal (Sigclient *c, const GError *error, gpointer data)
{
  Expect *e = data;
  e->error = g_error_copy (error);
  g_main_loop_quit (e->cli->loop);
}

static void
expect_sent (Sigclient *c, gboolean online, const GError *error, gpointer data)
{
  Expect *e = data;
  e->error = error ? g_error_copy (error) : NULL;
  g_main_loop_quit (e->cli->loop);
}

static gboolean
expect_timeout (gpointer data)
{
  Expect *e = data;
  g_main_loop_quit (e->cli->loop);
  return G_SOURCE_REMOVE;
}

/* Runs @c's receive loop (or a send, with @send_to) and checks the error. */
static gboolean
expect_error (Cli *cli, Sigclient *c, const char *send_to, int code, const char *text)
{
  Expect e = { cli, NULL };
  GSource *t = g_timeout_source_new_seconds (10);
  g_source_set_callback (t, expect_timeout, &e, NULL);
  g_source_attach (t, cli->ctx);
  if (send_to != NULL)
    {
      g_autoptr (Sigmsg) m = cli_offer ("expect");
      sigclient_send (c, send_to, m, expect_sent, &e);
    }
  else
    sigclient_start (c, NULL, expect_fatal, &e);
  g_main_loop_run (cli->loop);
  g_source_destroy (t);
  g_source_unref (t);
  sigclient_free (c);

  gboolean ok = e.error != NULL && g_error_matches (e.error, SIGCLIENT_ERROR, code)
                && strstr (e.error->message, text) != NULL;
  printf ("%s: expected \"%s\", got: %s\n", ok ? "ok" : "FAIL", text,
          e.error ? e.error->message : "(no error)");
  g_clear_error (&e.error);
  return ok;
}

static void
remove_tree (const char *path)
{
  GDir *d = g_dir_open (path, 0, NULL);
  if (d == NULL)
    {
      g_unlink (path);
      return;
    }
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      remove_tree (child);
    }
  g_dir_close (d);
  g_rmdir (path);
}

static gboolean
cli_check_errors (Cli *cli, const char *url, const char *pin, const char *dir_a,
                  const char *dir_b)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (Identity) ida = cli_identity (dir_a);
  g_autoptr (Identity) idb = cli_identity (dir_b);
  gboolean ok = TRUE;

  /* pin mismatch, for receiving and for sending */
  const char *bad_pin = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  ok &= expect_error (cli, cli_client (cli, url, bad_pin, ida), NULL,
                      SIGCLIENT_ERROR_PIN_MISMATCH,
                      "the signaling server's key does not match the pin");
  ok &= expect_error (cli, cli_client (cli, url, bad_pin, ida), idb->peer_id,
                      SIGCLIENT_ERROR_PIN_MISMATCH,
                      "the signaling server's key does not match the pin");
  /* a self-signed server without a pin */
  ok &= expect_error (cli, cli_client (cli, url, "-", ida), NULL, SIGCLIENT_ERROR_TLS,
                      "give its public-key pin");

  /* 401: no client certificate; 403: someone else's mailbox */
  {
    Identity anon = *ida;
    anon.cert_path = anon.key_path = NULL;
    ok &= expect_error (cli, cli_client (cli, url, pin, &anon), NULL,
                        SIGCLIENT_ERROR_HTTP, "(HTTP 401)");
    Identity thief = *ida;
    memcpy (thief.peer_id, idb->peer_id, sizeof thief.peer_id);
    ok &= expect_error (cli, cli_client (cli, url, pin, &thief), NULL,
                        SIGCLIENT_ERROR_HTTP,
                        "(HTTP 403): only the owner of a mailbox may read it");
  }

  /* unreachable: a port that was free a moment ago */
  {
    g_autoptr (GSocket) sock
        = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, 0, &error);
    g_assert_no_error (error);
    g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
    g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
    g_assert_true (g_socket_bind (sock, any, FALSE, &error));
    g_autoptr (GSocketAddress) bound = g_socket_get_local_address (sock, &error);
    guint16 port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
    g_socket_close (sock, NULL);
    g_autofree char *dead_url = g_strdup_printf ("https://127.0.0.1:%u", port);
    g_autofree char *want
        = g_strdup_printf ("cannot reach the signaling server at %s: ", dead_url);
    ok &= expect_error (cli, cli_client (cli, dead_url, pin, ida), idb->peer_id,
                        SIGCLIENT_ERROR_UNREACHABLE, want);
  }
  return ok;
}

/* --- repoll: through a proxy that counts connections ------------------------ */

typedef struct
{
  Cli *cli;
  GSocketAddress *server; /* where the proxy forwards to */
  guint conns;            /* accepted by the proxy */
  guint splices;          /* connections being forwarded */
  GHashTable *got;        /* ufrag -> times received */
  guint got_total;
} Repoll;

static void
rp_spliced (GObject *source, GAsyncResult *res, gpointer data)
{
  Repoll *rp = data;
  g_io_stream_splice_finish (res, NULL);
  rp->splices--;
}

static void
rp_connected (GObject *source, GAsyncResult *res, gpointer data)
{
  g_autoptr (GSocketConnection) in = data;
  g_autoptr (GSocketConnection) out
      = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), res, NULL);
  Repoll *rp = g_object_get_data (G_OBJECT (in), "repoll");
  if (out == NULL)
    {
      rp->splices--;
      return;
    }
  g_io_stream_splice_async (G_IO_STREAM (in), G_IO_STREAM (out),
                            G_IO_STREAM_SPLICE_CLOSE_STREAM1
                                | G_IO_STREAM_SPLICE_CLOSE_STREAM2,
                            G_PRIORITY_DEFAULT, NULL, rp_spliced, rp);
}

static gboolean
rp_incoming (GSocketService *service, GSocketConnection *in, GObject *source,
             gpointer data)
{
  Repoll *rp = data;
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  /* Straight to the server: no proxy lookup (libproxy throws C++
   * exceptions in a thread of its own, which the sanitizer build cannot
   * unwind). */
  g_socket_client_set_enable_proxy (client, FALSE);
  rp->conns++;
  rp->splices++;
  g_object_set_data (G_OBJECT (in), "repoll", rp);
  g_socket_client_connect_async (client, G_SOCKET_CONNECTABLE (rp->server), NULL,
                                 rp_connected, g_object_ref (in));
  return TRUE;
}

static void
rp_on_message (Sigclient *c, const Sigmsg *msg, gpointer data)
{
  Repoll *rp = data;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (rp->got, msg->ufrag));
  g_hash_table_insert (rp->got, g_strdup (msg->ufrag), GUINT_TO_POINTER (n + 1));
  rp->got_total++;
}

static void
rp_on_fatal (Sigclient *c, const GError *error, gpointer data)
{
  Repoll *rp = data;
  printf ("FAIL: repoll: fatal: %s\n", error->message);
  rp->cli->status = 1;
}

static void
rp_on_sent (Sigclient *c, gboolean online, const GError *error, gpointer data)
{
  Repoll *rp = data;
  if (error != NULL)
    {
      printf ("FAIL: repoll: send: %s\n", error->message);
      rp->cli->status = 1;
    }
}

/* Runs the loop for @ms, or until *@counter reaches @want. */
static gboolean
rp_wait (Repoll *rp, guint ms, const guint *counter, guint want)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)ms * 1000;
  /* The ticker wakes the loop every 10 ms. */
  while ((counter == NULL || *counter < want) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (rp->cli->ctx, TRUE);
  return counter == NULL || *counter >= want;
}

static void
rp_send (Repoll *rp, Sigclient *from, const char *to, const char *prefix, guint count)
{
  for (guint i = 0; i < count; i++)
    {
      g_autofree char *ufrag = g_strdup_printf ("%s%u", prefix, i);
      g_autoptr (Sigmsg) m = cli_offer (ufrag);
      sigclient_send (from, to, m, rp_on_sent, rp);
    }
}

static gboolean
rp_check (gboolean ok, const char *what, guint got, guint want)
{
  printf ("%s: repoll: %s: %u (want %u)\n", ok ? "ok" : "FAIL", what, got, want);
  return ok;
}

/* A polls through the proxy; a burst of repolls makes exactly two new
 * long-polls (one at once, one 500 ms later), a lone one makes one, and the
 * messages that B sends meanwhile all arrive, once each. */
static gboolean
cli_check_repoll (Cli *cli, const char *url, const char *pin, const char *dir_a,
                  const char *dir_b)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (Identity) ida = cli_identity (dir_a);
  g_autoptr (Identity) idb = cli_identity (dir_b);
  Repoll rp = { cli, NULL, 0, 0, NULL, 0 };
  gboolean ok = TRUE;

  g_autoptr (GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, &error);
  g_assert_no_error (error);
  rp.server
      = g_inet_socket_address_new_from_string ("127.0.0.1", (guint)g_uri_get_port (uri));
  rp.got = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  /* The proxy's sources and async calls go to the test's context. */
  g_main_context_push_thread_default (cli->ctx);
  GSocketService *service = g_socket_service_new ();
  g_autoptr (GSocketAddress) want
      = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_socket_listener_add_address (G_SOCKET_LISTENER (service), want, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error);
  g_assert_no_error (error);
  g_signal_connect (service, "incoming", G_CALLBACK (rp_incoming), &rp);
  g_socket_service_start (service);
  g_autofree char *proxy_url
      = g_strdup_printf ("https://127.0.0.1:%u",
                         g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));

  Sigclient *a = cli_client (cli, proxy_url, pin, ida);
  Sigclient *b = cli_client (cli, url, pin, idb);
  sigclient_start (a, rp_on_message, rp_on_fatal, &rp);
  gboolean polled = rp_wait (&rp, 5000, &rp.conns, 1);
  ok &= rp_check (polled, "first long-poll", rp.conns, 1);
  rp_wait (&rp, 500, NULL, 0); /* let it reach the server */

  /* a burst: one new long-poll now, one more at the end of the 500 ms */
  guint before = rp.conns;
  for (guint i = 0; i < 5; i++)
    sigclient_repoll (a);
  gboolean quick = rp_wait (&rp, 400, &rp.conns, before + 1);
  ok &= rp_check (quick, "new connection within 400 ms of a burst", rp.conns - before, 1);
  rp_wait (&rp, 900, NULL, 0);
  ok &= rp_check (rp.conns == before + 2, "new connections 1.3 s after a burst",
                  rp.conns - before, 2);

  /* messages to A, queued while it polls on its newest connection */
  rp_send (&rp, b, ida->peer_id, "quiet", 5);
  rp_wait (&rp, 5000, &rp.got_total, 5);

  /* a lone call long after: one new long-poll at once */
  rp_wait (&rp, 600, NULL, 0);
  before = rp.conns;
  sigclient_repoll (a);
  quick = rp_wait (&rp, 400, &rp.conns, before + 1);
  ok &= rp_check (quick, "new connection within 400 ms of a lone call", rp.conns - before,
                  1);
  rp_wait (&rp, 700, NULL, 0);
  ok &= rp_check (rp.conns == before + 1, "new connections 1.1 s after a lone call",
                  rp.conns - before, 1);

  /* messages sent while A repolls, in bursts */
  for (guint round = 0; round < 3; round++)
    {
      /* a ufrag is made of [A-Za-z0-9+/] */
      g_autofree char *prefix = g_strdup_printf ("busy%ux", round);
      rp_send (&rp, b, ida->peer_id, prefix, 5);
      for (guint i = 0; i < 3; i++)
        sigclient_repoll (a);
      rp_wait (&rp, 200, NULL, 0);
    }
  rp_wait (&rp, 10000, &rp.got_total, 20);
  rp_wait (&rp, 1000, NULL, 0); /* a duplicate would come now */

  guint once = 0;
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init (&it, rp.got);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (GPOINTER_TO_UINT (value) == 1)
      once++;
  ok &= rp_check (once == 20 && rp.got_total == 20 && g_hash_table_size (rp.got) == 20,
                  "messages received once each", once, 20);
  ok &= rp_check (rp.got_total == 20, "messages received in all", rp.got_total, 20);

  sigclient_free (a);
  sigclient_free (b);
  g_socket_service_stop (service);
  g_socket_listener_close (G_SOCKET_LISTENER (service));
  /* The forwarded connections end with the clients' (bounded: poll timeout). */
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (rp.splices > 0 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (cli->ctx, TRUE);
  ok &= rp_check (rp.splices == 0, "forwarded connections left", rp.splices, 0);
  g_object_unref (service);
  g_main_context_pop_thread_default (cli->ctx);
  g_hash_table_unref (rp.got);
  g_object_unref (rp.server);
  return ok && cli->status == 0;
}

/* Enrolls the agent of @dir on the server of @state, as its operator does:
 * p2ptun-signal enroll --peer. FALSE (said why) when that fails. */
static gboolean
cli_enroll (const char *server_bin, const char *state, const char *dir)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (Identity) id = cli_identity (dir);
  g_autofree char *err = NULL;
  int wait_status = 0;
  const char *argv[]
      = { server_bin, "enroll", "--state-dir", state, "--peer", id->peer_id, NULL };

  if (!g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                     NULL, &err, &wait_status, &error)
      || !g_spawn_check_wait_status (wait_status, &error))
    {
      printf ("FAIL: p2ptun-signal enroll: %s\n%s", error->message,
              err != NULL ? err : "");
      return FALSE;
    }
  return TRUE;
}

static int
cli_integration (Cli *cli, const char *server_bin)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = g_dir_make_tmp ("p2ptun-test-sigclient-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *state = g_build_filename (tmp, "server", NULL);
  g_autofree char *dir_a = g_build_filename (tmp, "a", NULL);
  g_autofree char *dir_b = g_build_filename (tmp, "b", NULL);
  int status = 1;

  /* Under AddressSanitizer, LeakSanitizer crashes at the server's exit
   * ("Tracer caught signal 11") on the dynamic TLS of its GnuTLS worker
   * threads; tests/integration/test_signal.py says more. No effect otherwise. */
  g_autoptr (GSubprocessLauncher) launcher
      = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  const char *asan = g_getenv ("ASAN_OPTIONS");
  if (asan == NULL || strstr (asan, "intercept_tls_get_addr") == NULL)
    {
      g_autofree char *opts = g_strconcat (asan ? asan : "", asan ? ":" : "",
                                           "intercept_tls_get_addr=0", NULL);
      g_subprocess_launcher_setenv (launcher, "ASAN_OPTIONS", opts, TRUE);
    }
  g_autoptr (GSubprocess) server = g_subprocess_launcher_spawn (
      launcher, &error, server_bin, "--listen", "127.0.0.1:0", "--state-dir", state,
      "--stun", "127.0.0.1:3478", NULL);
  if (server == NULL)
    {
      printf ("FAIL: cannot start %s: %s\n", server_bin, error->message);
      return 1;
    }
  /* A test driver may block here: the loop does not run yet. */
  g_autoptr (GDataInputStream) out
      = g_data_input_stream_new (g_subprocess_get_stdout_pipe (server));
  g_autofree char *url = NULL;
  g_autofree char *pin = NULL;
  for (;;)
    {
      g_autofree char *line = g_data_input_stream_read_line (out, NULL, NULL, NULL);
      if (line == NULL)
        break;
      if (g_str_has_prefix (line, "url "))
        url = g_strdup (line + 4);
      else if (g_str_has_prefix (line, "pin "))
        pin = g_strdup (line + 4);
      else if (strcmp (line, "ready") == 0)
        break;
    }
  if (url == NULL || pin == NULL)
    {
      printf ("FAIL: the server did not print url, pin and ready\n");
      goto out;
    }

  /* The server admits only enrolled agents. */
  if (cli_enroll (server_bin, state, dir_a) && cli_enroll (server_bin, state, dir_b)
      && cli_selftest (cli, dir_a, dir_b, url, pin) == 0
      && cli_check_errors (cli, url, pin, dir_a, dir_b)
      && cli_check_repoll (cli, url, pin, dir_a, dir_b))
    status = 0;

out:
  g_subprocess_send_signal (server, SIGTERM);
  g_subprocess_wait (server, NULL, NULL);
  /* A sanitizer's report also ends the server with an error. */
  if (!g_subprocess_get_if_exited (server) || g_subprocess_get_exit_status (server) != 0)
    {
      printf ("FAIL: the server did not exit cleanly on SIGTERM\n");
      status = 1;
    }
  remove_tree (tmp);
  return status;
}

int
main (int argc, char **argv)
{
  Cli cli = { 0 };
  const char *cmd = argc > 1 ? argv[1] : "";

  cli.ctx = g_main_context_new ();
  cli.loop = g_main_loop_new (cli.ctx, FALSE);
  GSource *ticker = g_timeout_source_new (10);
  g_source_set_callback (ticker, cli_tick, &cli, NULL);
  g_source_attach (ticker, cli.ctx);

  if (strcmp (cmd, "id") == 0 && argc == 3)
    {
      g_autoptr (Identity) id = cli_identity (argv[2]);
      printf ("%s\n", id->peer_id);
    }
  else if (strcmp (cmd, "recv") == 0 && (argc == 5 || argc == 6))
    {
      g_autoptr (Identity) id = cli_identity (argv[2]);
      g_autoptr (Sigclient) c = cli_client (&cli, argv[3], argv[4], id);
      sigclient_start (c, cli_on_message, cli_on_fatal, &cli);
      cli_after (&cli, argc == 6 ? (guint)atoi (argv[5]) * 1000 : 30000, cli_quit);
      g_main_loop_run (cli.loop);
    }
  else if (strcmp (cmd, "send") == 0 && argc == 6)
    {
      g_autoptr (Identity) id = cli_identity (argv[2]);
      g_autoptr (Sigclient) c = cli_client (&cli, argv[3], argv[4], id);
      g_autoptr (Sigmsg) m = cli_offer ("manual");
      sigclient_send (c, argv[5], m, cli_on_sent, &cli);
      g_main_loop_run (cli.loop);
    }
  else if (strcmp (cmd, "ice") == 0 && argc == 5)
    {
      g_autoptr (Identity) id = cli_identity (argv[2]);
      g_autoptr (Sigclient) c = cli_client (&cli, argv[3], argv[4], id);
      sigclient_get_ice_servers (c, cli_on_ice, &cli);
      g_main_loop_run (cli.loop);
    }
  else if (strcmp (cmd, "nocert") == 0 && argc == 5)
    {
      g_autoptr (Identity) id = cli_identity (argv[2]);
      g_clear_pointer (&id->cert_path, g_free);
      g_clear_pointer (&id->key_path, g_free);
      g_autoptr (Sigclient) c = cli_client (&cli, argv[3], argv[4], id);
      sigclient_start (c, cli_on_message, cli_on_fatal, &cli);
      cli_after (&cli, 10000, cli_quit);
      g_main_loop_run (cli.loop);
    }
  else if (strcmp (cmd, "other") == 0 && argc == 6)
    {
      g_autoptr (Identity) id = cli_identity (argv[2]);
      g_autoptr (Identity) other = cli_identity (argv[3]);
      memcpy (id->peer_id, other->peer_id, sizeof id->peer_id);
      g_autoptr (Sigclient) c = cli_client (&cli, argv[4], argv[5], id);
      sigclient_start (c, cli_on_message, cli_on_fatal, &cli);
      cli_after (&cli, 10000, cli_quit);
      g_main_loop_run (cli.loop);
    }
  else if (strcmp (cmd, "integration") == 0 && argc == 3)
    {
      cli.status = cli_integration (&cli, argv[2]);
    }
  else if (strcmp (cmd, "selftest") == 0 && argc == 6)
    {
      cli_selftest (&cli, argv[2], argv[3], argv[4], argv[5]);
    }
  else
    {
      fprintf (stderr, "usage: see the comment at the top of %s\n", __FILE__);
      cli.status = 64;
    }

  printf ("max-gap-ms %" G_GINT64_FORMAT " ticks %" G_GUINT64_FORMAT "\n",
          cli.max_gap / 1000, cli.ticks);
  g_source_destroy (ticker);
  g_source_unref (ticker);
  /* Nothing of ours may have landed on the global default context. */
  if (g_main_context_pending (g_main_context_default ()))
    {
      printf ("FAIL: a source was attached to the default main context\n");
      cli.status = 1;
    }
  g_main_loop_unref (cli.loop);
  g_main_context_unref (cli.ctx);
  return cli.status;
}
