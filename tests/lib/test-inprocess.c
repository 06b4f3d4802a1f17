/* Two libp2ptun nodes in one process, over loopback, through a real
 * p2ptun-signal: a stream carries 16 MiB each way, a UDP flow's datagrams
 * come back, an RTP packet goes through the media leg (SRTP) to B's RTP
 * service and comes back decrypted, the events come in order, and the
 * status counts the bytes.
 * Usage: test-inprocess PATH-TO-p2ptun-signal */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <p2ptun/p2ptun.h>

#define SIZE (16 * 1024 * 1024)
#define DEADLINE_S 120
#define CHUNK 65536

typedef struct
{
  const char *name;
  P2ptunNode *node;
  GArray *events; /* P2ptunEventKind, in order */
  gboolean closed;
} Side;

/* One end of the bulk stream: writes SIZE bytes of a pattern, reads SIZE
 * bytes and checks them against the other end's pattern. */
typedef struct
{
  int fd;
  guint8 seed_out, seed_in;
  gsize sent, received;
  gboolean mismatch, eof;
  guint source;
} Bulk;

static GMainLoop *loop;
static const char *signal_bin;
static Bulk bulk_a, bulk_b;
static GSocket *udp_echo;
static P2ptunFlow *flow;
static guint datagrams_back;
static GByteArray *media_back; /* the first RTP packet the media leg delivered */

static guint8
pattern (guint8 seed, gsize i)
{
  return (guint8) (seed + i * 7 + (i >> 12));
}

static gboolean
on_bulk (int fd, GIOCondition cond, gpointer data)
{
  Bulk *b = data;
  guint8 buf[CHUNK];

  if (b->sent < SIZE)
    {
      gsize n = MIN ((gsize) CHUNK, SIZE - b->sent);
      for (gsize i = 0; i < n; i++)
        buf[i] = pattern (b->seed_out, b->sent + i);
      ssize_t w = write (fd, buf, n);
      if (w > 0)
        b->sent += (gsize) w;
      if (b->sent == SIZE)
        shutdown (fd, SHUT_WR);
    }
  ssize_t r = read (fd, buf, sizeof buf);
  if (r > 0)
    {
      for (ssize_t i = 0; i < r; i++)
        if (buf[i] != pattern (b->seed_in, b->received + (gsize) i))
          b->mismatch = TRUE;
      b->received += (gsize) r;
    }
  else if (r == 0)
    b->eof = TRUE;
  if (b->eof && b->sent == SIZE)
    {
      if (bulk_a.eof && bulk_b.eof)
        g_main_loop_quit (loop);
      b->source = 0;
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static void
bulk_start (Bulk *b, int fd, guint8 seed_out, guint8 seed_in)
{
  b->fd = fd;
  b->seed_out = seed_out;
  b->seed_in = seed_in;
  g_unix_set_fd_nonblocking (fd, TRUE, NULL);
  b->source = g_unix_fd_add (fd, G_IO_IN | G_IO_OUT | G_IO_HUP, on_bulk, b);
}

static void
on_accept (P2ptunNode *node, const char *peer_id, int fd, gpointer data)
{
  bulk_start (&bulk_b, fd, 2, 1);
}

static void
on_event (P2ptunNode *node, const P2ptunEvent *event, gpointer data)
{
  Side *side = data;
  P2ptunEventKind kind = p2ptun_event_get_kind (event);

  g_test_message ("%s: %s", side->name, p2ptun_event_get_message (event));
  g_array_append_val (side->events, kind);
  /* The test looks at what happened each time. */
  g_main_loop_quit (loop);
  if (kind == P2PTUN_EVENT_CLOSED)
    {
      side->closed = TRUE;
      /* Freeing the node from its own callback is allowed. */
      g_clear_object (&side->node);
    }
}

static gboolean
on_udp_echo (GSocket *socket, GIOCondition cond, gpointer data)
{
  guint8 buf[2048];
  g_autoptr (GSocketAddress) from = NULL;
  gssize n = g_socket_receive_from (socket, &from, (char *) buf, sizeof buf, NULL, NULL);

  if (n > 0)
    g_socket_send_to (socket, from, (const char *) buf, (gsize) n, NULL, NULL);
  return G_SOURCE_CONTINUE;
}

static void
on_media_packet (P2ptunMedia *media, GBytes *packet, gpointer data)
{
  gsize len;
  const guint8 *buf = g_bytes_get_data (packet, &len);

  if (media_back == NULL)
    media_back = g_byte_array_new_take (g_memdup2 (buf, len), len);
}

static void
on_datagram (P2ptunFlow *f, GBytes *datagram, gpointer data)
{
  gsize len;
  const char *text = g_bytes_get_data (datagram, &len);

  if (len == 9 && memcmp (text, "datagram!", 9) == 0)
    datagrams_back++;
  /* So is freeing the flow from its own. */
  g_clear_object (&flow);
  g_main_loop_quit (loop);
}

static gboolean
on_deadline (gpointer data)
{
  g_error ("the test took longer than %d s", DEADLINE_S);
  return G_SOURCE_REMOVE;
}

static guint run_timer;

static gboolean
quit_soon (gpointer data)
{
  run_timer = 0;
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

/* Runs the loop until something quits it, or @ms passed (0: no limit). */
static void
run (guint ms)
{
  run_timer = ms ? g_timeout_add (ms, quit_soon, NULL) : 0;
  g_main_loop_run (loop);
  if (run_timer)
    g_source_remove (run_timer);
  run_timer = 0;
}

static gboolean
has_event (Side *side, P2ptunEventKind kind)
{
  for (guint i = 0; i < side->events->len; i++)
    if (g_array_index (side->events, P2ptunEventKind, i) == kind)
      return TRUE;
  return FALSE;
}

/* The signaling server must not outlive a test that crashed. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

/* The test proper runs in a child process, so that the parent removes the
 * signaling server and the files also when it fails. */
static void
test_two_nodes_child (void)
{
  g_autoptr (GError) error = NULL;
  const char *tmp = g_getenv ("P2PTUN_TEST_TMP");
  const char *url = g_getenv ("P2PTUN_TEST_URL");
  const char *pin = g_getenv ("P2PTUN_TEST_PIN");
  g_autofree char *dir_a = g_build_filename (tmp, "a", NULL);
  g_autofree char *dir_b = g_build_filename (tmp, "b", NULL);
  g_autofree char *udp_target = NULL;
  Side a = { .name = "a", .events = g_array_new (FALSE, FALSE, sizeof (P2ptunEventKind)) };
  Side b = { .name = "b", .events = g_array_new (FALSE, FALSE, sizeof (P2ptunEventKind)) };
  guint deadline;

  if (!g_test_subprocess ())
    {
      g_test_skip ("run by /lib/two-nodes in a child process");
      return;
    }
  deadline = g_timeout_add_seconds (DEADLINE_S, on_deadline, NULL);
  /* B's UDP echo service, on this context. */
  udp_echo = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP,
                           &error);
  g_assert_no_error (error);
  {
    g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
    g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
    g_autoptr (GSocketAddress) bound = NULL;
    g_autoptr (GSource) src = NULL;

    g_socket_bind (udp_echo, any, TRUE, &error);
    g_assert_no_error (error);
    bound = g_socket_get_local_address (udp_echo, &error);
    udp_target = g_strdup_printf ("127.0.0.1:%u", g_inet_socket_address_get_port (
                                                      G_INET_SOCKET_ADDRESS (bound)));
    src = g_socket_create_source (udp_echo, G_IO_IN, NULL);
    g_source_set_callback (src, (GSourceFunc) (void (*) (void)) on_udp_echo, NULL, NULL);
    g_source_attach (src, NULL);
  }

  g_autoptr (P2ptunIdentity) id_a = p2ptun_identity_load (dir_a, &error);
  g_assert_no_error (error);
  g_autoptr (P2ptunIdentity) id_b = p2ptun_identity_load (dir_b, &error);
  g_assert_no_error (error);
  g_autoptr (P2ptunConfig) config_a = p2ptun_config_new ();
  g_autoptr (P2ptunConfig) config_b = p2ptun_config_new ();
  /* Loopback only: tests reach no other address. */
  const char *const loopback[] = { "127.0.0.1", NULL };
  p2ptun_config_set_local_addresses (config_a, loopback);
  p2ptun_config_set_local_addresses (config_b, loopback);
  p2ptun_config_set_signal (config_a, url, pin);
  p2ptun_config_set_signal (config_b, url, pin);
  g_assert_true (p2ptun_config_add_trust (config_b, p2ptun_identity_get_peer_id (id_a), NULL));
  g_assert_true (p2ptun_config_add_service (config_b, "udpecho", udp_target,
                                            P2PTUN_SERVICE_UDP, &error));
  g_assert_no_error (error);
  /* The same echo as an RTP service: what the media leg delivers there in
   * the clear comes back from there. */
  g_assert_true (p2ptun_config_add_service (config_b, "rtpecho", udp_target,
                                            P2PTUN_SERVICE_RTP, &error));
  g_assert_no_error (error);

  b.node = p2ptun_node_new (NULL, id_b, config_b, &error);
  g_assert_no_error (error);
  g_assert_true (p2ptun_node_expose (b.node, "bulk", on_accept, NULL, NULL, &error));
  p2ptun_node_set_event_func (b.node, on_event, &b, NULL);
  p2ptun_node_start (b.node);
  while (!has_event (&b, P2PTUN_EVENT_READY))
    {
      run (0);
      g_assert_false (has_event (&b, P2PTUN_EVENT_FATAL));
    }

  a.node = p2ptun_node_new (NULL, id_a, config_a, &error);
  g_assert_no_error (error);
  p2ptun_node_set_event_func (a.node, on_event, &a, NULL);
  /* No tunnel yet: a clear error, no descriptor. */
  g_assert_cmpint (p2ptun_node_open_fd (a.node, p2ptun_identity_get_peer_id (id_b), "bulk", NULL,
                                        &error), ==, -1);
  g_assert_error (error, P2PTUN_ERROR, P2PTUN_ERROR_NO_TUNNEL);
  g_clear_error (&error);
  g_assert_true (p2ptun_node_pair (a.node, p2ptun_identity_get_peer_id (id_b), &error));
  p2ptun_node_start (a.node);
  while (!has_event (&a, P2PTUN_EVENT_PEER_UP))
    {
      run (0);
      g_assert_false (has_event (&a, P2PTUN_EVENT_FATAL) || has_event (&a, P2PTUN_EVENT_PEER_GONE));
    }
  /* Events in order: READY before PEER_UP, on both sides. */
  g_assert_cmpint (g_array_index (a.events, P2ptunEventKind, 0), ==, P2PTUN_EVENT_READY);
  g_assert_cmpint (g_array_index (a.events, P2ptunEventKind, 1), ==, P2PTUN_EVENT_PEER_UP);
  while (!has_event (&b, P2PTUN_EVENT_PEER_UP))
    run (0);

  /* 16 MiB each way through an in-process stream. */
  {
    guint stream = 0;
    int fd = p2ptun_node_open_fd (a.node, p2ptun_identity_get_peer_id (id_b), "bulk", &stream,
                                  &error);

    g_assert_no_error (error);
    g_assert_cmpint (fd, >=, 0);
    g_assert_cmpuint (stream, >, 0);
    bulk_start (&bulk_a, fd, 1, 2);
    while (!(bulk_a.eof && bulk_b.eof))
      run (0);
    g_assert_cmpuint (bulk_a.sent, ==, SIZE);
    g_assert_cmpuint (bulk_a.received, ==, SIZE);
    g_assert_cmpuint (bulk_b.received, ==, SIZE);
    g_assert_false (bulk_a.mismatch || bulk_b.mismatch);
    close (bulk_a.fd);
    close (bulk_b.fd);
  }

  /* The status counts what went through, framing included. */
  {
    g_autoptr (P2ptunStatus) status = p2ptun_node_get_status (a.node,
                                                              p2ptun_identity_get_peer_id (id_b));
    g_autofree char *json = NULL;

    g_assert_nonnull (status);
    g_assert_true (p2ptun_status_is_up (status));
    g_assert_nonnull (p2ptun_status_get_path (status));
    g_assert_cmpint (p2ptun_status_get_rtt_us (status), >, 0);
    g_printerr ("status: %" G_GUINT64_FORMAT " bytes sent, %" G_GUINT64_FORMAT " received\n",
                    p2ptun_status_get_bytes_sent (status),
                    p2ptun_status_get_bytes_received (status));
    g_assert_cmpuint (p2ptun_status_get_bytes_sent (status), >=, SIZE);
    g_assert_cmpuint (p2ptun_status_get_bytes_sent (status), <=, SIZE + SIZE / 10);
    g_assert_cmpuint (p2ptun_status_get_bytes_received (status), >=, SIZE);
    g_assert_cmpuint (p2ptun_status_get_bytes_received (status), <=, SIZE + SIZE / 10);
    /* The first tunnel to the peer (restarts and outages depend on how
     * busy the machine is: printed, not judged). */
    g_assert_cmpuint (p2ptun_status_get_reconnects (status), ==, 0);
    g_printerr ("status: generation %u, %u restarts, %u outages\n",
                p2ptun_status_get_generation (status), p2ptun_status_get_restarts (status),
                p2ptun_status_get_outages (status));
    json = p2ptun_status_to_json (status);
    g_assert_nonnull (strstr (json, "\"bytes_sent\""));
    g_assert_nonnull (strstr (json, "\"reconnects\":0,"));
    /* At most 16 KiB a packet: at least SIZE / 16 KiB of them. */
    g_assert_cmpuint (p2ptun_status_get_packets_sent (status), >=, SIZE / 16448);
    g_assert_cmpuint (p2ptun_status_get_packets_received (status), >=, SIZE / 16448);
    g_assert_cmpint (p2ptun_status_get_uptime_us (status), >, 0);
    g_assert_nonnull (strstr (json, "\"packets_lost\":"));
  }

  /* A datagram's round trip through B's UDP service. */
  flow = p2ptun_node_open_flow (a.node, p2ptun_identity_get_peer_id (id_b), "udpecho",
                                on_datagram, NULL, NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 100 && datagrams_back == 0; i++)
    {
      /* CLOSED until the peer accepted the flow: try again. */
      if (p2ptun_flow_send (flow, (const guint8 *) "datagram!", 9) == P2PTUN_SEND_OK)
        g_assert_cmpuint (p2ptun_flow_get_max_datagram (flow), >=, 1000);
      run (50);
    }
  g_assert_cmpuint (datagrams_back, >, 0);
  g_assert_null (flow);

  /* An RTP packet through the media leg: protected on the way, decrypted by
   * B for its RTP service (the echo), protected again, and delivered back
   * decrypted, equal to what was sent. What is not RTP is refused. */
  {
    static const guint8 rtp[] = { 0x80, 96, 0x12, 0x34, 0, 0, 0, 160, 0xca, 0xfe, 0xba, 0xbe,
                                  'm', 'e', 'd', 'i', 'a', '!' };
    g_autoptr (P2ptunMedia) media = p2ptun_node_open_media (
        a.node, p2ptun_identity_get_peer_id (id_b), "rtpecho", on_media_packet, NULL, NULL,
        &error);
    P2ptunSendResult sent = P2PTUN_SEND_CLOSED;

    g_assert_no_error (error);
    g_assert_cmpint (p2ptun_media_send (media, (const guint8 *) "not RTP", 7), !=,
                     P2PTUN_SEND_OK);
    /* CLOSED until the peer accepted the leg; then one packet, sent once
     * (a second copy would be a replay). */
    for (guint i = 0; i < 100 && sent != P2PTUN_SEND_OK; i++)
      {
        sent = p2ptun_media_send (media, rtp, sizeof rtp);
        g_assert_true (sent == P2PTUN_SEND_OK || sent == P2PTUN_SEND_CLOSED);
        run (50);
      }
    g_assert_cmpint (sent, ==, P2PTUN_SEND_OK);
    for (guint i = 0; i < 100 && media_back == NULL; i++)
      run (50);
    g_assert_nonnull (media_back);
    g_assert_cmpmem (media_back->data, media_back->len, rtp, sizeof rtp);
    g_assert_cmpint (p2ptun_media_send (media, (const guint8 *) "not RTP", 7), ==,
                     P2PTUN_SEND_INVALID);
    g_byte_array_unref (media_back);
  }

  /* A node freed while its offer is on its way to the signaling server:
   * nothing of it may stay behind (the sanitizer build checks). */
  {
    g_autofree char *dir_c = g_build_filename (tmp, "c", NULL);
    g_autoptr (P2ptunIdentity) id_c = p2ptun_identity_load (dir_c, &error);
    Side c = { .name = "c", .events = g_array_new (FALSE, FALSE, sizeof (P2ptunEventKind)) };

    g_assert_no_error (error);
    c.node = p2ptun_node_new (NULL, id_c, config_a, &error);
    g_assert_no_error (error);
    p2ptun_node_set_event_func (c.node, on_event, &c, NULL);
    p2ptun_node_start (c.node);
    while (!has_event (&c, P2PTUN_EVENT_READY))
      run (0);
    g_assert_true (p2ptun_node_pair (c.node, p2ptun_identity_get_peer_id (id_b), &error));
    g_clear_object (&c.node);
    g_array_unref (c.events);
  }

  /* B goes with its tunnel open (no leak), A in order. */
  g_clear_object (&b.node);
  p2ptun_node_close (a.node);
  while (!a.closed)
    run (0);
  g_assert_null (a.node);

  g_source_remove (deadline);
  g_object_unref (udp_echo);
  g_array_unref (a.events);
  g_array_unref (b.events);
}

/* Enrolls the peer-id of the identity in @config_dir (made if there is none)
 * on the signaling server of @state, as its operator does; FALSE (said why)
 * when that fails. */
static gboolean
enroll (const char *state, const char *config_dir)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (P2ptunIdentity) id = p2ptun_identity_load (config_dir, &error);
  g_autofree char *err = NULL;
  int status = 0;

  if (id == NULL)
    {
      g_printerr ("%s: %s\n", config_dir, error->message);
      return FALSE;
    }
  const char *peer = p2ptun_identity_get_peer_id (id);
  const char *argv[]
      = { signal_bin, "enroll", "--state-dir", state, "--peer", peer, NULL };
  if (!g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                     NULL, &err, &status, &error)
      || !g_spawn_check_wait_status (status, &error))
    {
      g_printerr ("p2ptun-signal enroll: %s\n%s", error->message, err != NULL ? err : "");
      return FALSE;
    }
  return TRUE;
}

static void
test_two_nodes (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = g_dir_make_tmp ("p2ptun-test-lib-XXXXXX", &error);
  g_autofree char *state = g_build_filename (tmp, "signal", NULL);
  g_autofree char *url = NULL, *pin = NULL;
  /* The agents' identities, made here to enroll them; the child loads them. */
  g_autofree char *dir_a = g_build_filename (tmp, "a", NULL);
  g_autofree char *dir_b = g_build_filename (tmp, "b", NULL);
  g_autofree char *dir_c = g_build_filename (tmp, "c", NULL);
  gboolean enrolled = FALSE;

  g_assert_no_error (error);
  g_autoptr (GSubprocessLauncher) launcher
      = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  g_autoptr (GSubprocess) server = g_subprocess_launcher_spawn (
      launcher, &error, signal_bin, "--listen", "127.0.0.1:0", "--state-dir", state, NULL);
  g_assert_no_error (error);
  {
    g_autoptr (GDataInputStream) out
        = g_data_input_stream_new (g_subprocess_get_stdout_pipe (server));
    for (;;)
      {
        g_autofree char *line = g_data_input_stream_read_line (out, NULL, NULL, NULL);
        if (line == NULL || strcmp (line, "ready") == 0)
          break;
        if (g_str_has_prefix (line, "url "))
          url = g_strdup (line + 4);
        else if (g_str_has_prefix (line, "pin "))
          pin = g_strdup (line + 4);
      }
  }
  if (url && pin)
    enrolled = enroll (state, dir_a) && enroll (state, dir_b) && enroll (state, dir_c);
  if (enrolled)
    {
      g_setenv ("P2PTUN_TEST_TMP", tmp, TRUE);
      g_setenv ("P2PTUN_TEST_URL", url, TRUE);
      g_setenv ("P2PTUN_TEST_PIN", pin, TRUE);
      g_test_trap_subprocess ("/lib/two-nodes/subprocess", (guint64) (DEADLINE_S + 10) * G_USEC_PER_SEC,
                              G_TEST_SUBPROCESS_INHERIT_STDERR | G_TEST_SUBPROCESS_INHERIT_STDOUT);
    }
  g_subprocess_send_signal (server, SIGTERM);
  g_subprocess_wait (server, NULL, NULL);
  {
    g_autofree char *rm = g_strdup_printf ("rm -rf -- '%s'", tmp);
    g_assert_cmpint (system (rm), ==, 0);
  }
  g_assert_nonnull (url);
  g_assert_nonnull (pin);
  g_assert_true (enrolled);
  g_test_trap_assert_passed ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc < 2 && !g_test_subprocess ())
    {
      g_printerr ("usage: %s PATH-TO-p2ptun-signal\n", argv[0]);
      return 2;
    }
  signal_bin = argc >= 2 ? argv[1] : NULL; /* the child needs none */
  loop = g_main_loop_new (NULL, FALSE);
  g_test_add_func ("/lib/two-nodes", test_two_nodes);
  g_test_add_func ("/lib/two-nodes/subprocess", test_two_nodes_child);
  int status = g_test_run ();
  g_main_loop_unref (loop);
  return status;
}
