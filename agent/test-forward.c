/* Unit tests of forward.c and udpforward.c: local forwards whose tunnel
 * comes, goes and comes again. Real sockets on 127.0.0.1, a real main loop,
 * and real transports, two connected back to back in the process; the
 * accepting side echoes what its "echo" service gets. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "forward.h"
#include "udpforward.h"

/* A packet as a DTLS record over a usual path would carry. */
#define TEST_MAX_PACKET 1200
/* Every wait of the tests is bounded by this. */
#define TEST_TIMEOUT_MS 4000

/* ---- the main loop ---- */

typedef gboolean (*TestCond) (gpointer data);

typedef struct
{
  GMainLoop *loop;
  TestCond cond;
  gpointer data;
  gint64 deadline;
  gboolean met;
} Run;

static gboolean
run_check (gpointer data)
{
  Run *r = data;

  if (r->cond != NULL && r->cond (r->data))
    r->met = TRUE;
  else if (g_get_monotonic_time () < r->deadline)
    return G_SOURCE_CONTINUE;
  g_main_loop_quit (r->loop);
  return G_SOURCE_REMOVE;
}

/* Runs @context until @cond holds (TRUE) or @timeout_ms passed (FALSE); a
 * NULL @cond just runs it that long. */
static gboolean
run_until (GMainContext *context, TestCond cond, gpointer data, guint timeout_ms)
{
  Run r = { .cond = cond, .data = data };
  GSource *check = g_timeout_source_new (5);

  r.loop = g_main_loop_new (context, FALSE);
  r.deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  g_source_set_callback (check, run_check, &r, NULL);
  g_source_attach (check, context);
  g_main_loop_run (r.loop);
  g_source_destroy (check);
  g_source_unref (check);
  g_main_loop_unref (r.loop);
  return r.met;
}

/* ---- a tunnel: two transports back to back ---- */

typedef struct _Side Side;

struct _Side
{
  Transport *t;
  Side *peer;
  gboolean ready;
  GPtrArray *echoes; /* Echo*: the streams our service accepted */
};

typedef struct
{
  Side a; /* the forwards' side: it opens the streams */
  Side b; /* the peer: it exposes "echo" */
} Tunnel;

/* One stream or flow of the echo service. */
typedef struct
{
  TransportStream *stream;
  GByteArray *buf; /* read, not yet written back */
  gboolean eof;
} Echo;

static void
echo_free (Echo *e)
{
  transport_stream_free (e->stream);
  g_byte_array_unref (e->buf);
  g_free (e);
}

/* Writes back what it read, reading again only when all of it went. */
static void
echo_pump (Echo *e)
{
  guint8 tmp[4096];

  for (;;)
    {
      gssize n;

      while (e->buf->len > 0)
        {
          n = transport_stream_write (e->stream, e->buf->data, e->buf->len);
          if (n <= 0)
            return; /* full (wait for writable) or dead */
          g_byte_array_remove_range (e->buf, 0, (guint) n);
        }
      if (e->eof)
        return;
      n = transport_stream_read (e->stream, tmp, sizeof tmp);
      if (n < 0)
        return;
      if (n == 0)
        {
          e->eof = TRUE;
          transport_stream_shutdown_write (e->stream);
          return;
        }
      g_byte_array_append (e->buf, tmp, (guint) n);
    }
}

static void
echo_io (TransportStream *stream, gpointer data)
{
  echo_pump (data);
}

static void
echo_closed (TransportStream *stream, const GError *error, gpointer data)
{
  /* Freed with the side. */
}

static void
echo_datagram (TransportStream *stream, const guint8 *buf, gsize len, gpointer data)
{
  g_assert_cmpint (transport_stream_send_datagram (stream, buf, len), ==,
                   TRANSPORT_DATAGRAM_OK);
}

static void
echo_drain (TransportStream *stream, gpointer data)
{
  (void) transport_stream_drain (stream);
}

static const TransportStreamCallbacks echo_callbacks = {
  .readable = echo_io,
  .writable = echo_io,
  .closed = echo_closed,
};

static const TransportStreamCallbacks echo_flow_callbacks = {
  .readable = echo_drain,
  .closed = echo_closed,
  .datagram = echo_datagram,
};

static void
side_send_packet (const guint8 *buf, gsize len, gpointer data)
{
  Side *side = data;

  if (side->peer != NULL)
    transport_receive_packet (side->peer->t, buf, len);
}

static void
side_ready (gpointer data)
{
  ((Side *) data)->ready = TRUE;
}

static void
side_open_request (TransportStream *stream, const char *service, gpointer data)
{
  Side *side = data;
  Echo *e;

  if (strcmp (service, "echo") != 0)
    {
      transport_stream_refuse (stream, CTLMSG_REFUSE_NOT_EXPOSED, "no such service");
      return;
    }
  e = g_new0 (Echo, 1);
  e->stream = stream;
  e->buf = g_byte_array_new ();
  g_ptr_array_add (side->echoes, e);
  transport_stream_accept (stream,
                           transport_stream_is_datagram (stream) ? &echo_flow_callbacks
                                                                 : &echo_callbacks,
                           e);
}

static void
side_closed (guint8 code, const char *text, gpointer data)
{
  g_test_message ("transport closed: %u %s", code, text);
}

/* Packets go at once: there is nothing to flush. */
static void
side_flush (gpointer data)
{
}

static const TransportCallbacks side_callbacks = {
  .send_packet = side_send_packet,
  .flush = side_flush,
  .ready = side_ready,
  .open_request = side_open_request,
  .closed = side_closed,
};

static gboolean
tunnel_is_ready (gpointer data)
{
  Tunnel *tun = data;

  return tun->a.ready && tun->b.ready;
}

static Tunnel *
tunnel_up (GMainContext *context)
{
  Tunnel *tun = g_new0 (Tunnel, 1);

  tun->a.t = transport_new (context, TRUE, &side_callbacks, &tun->a);
  tun->b.t = transport_new (context, FALSE, &side_callbacks, &tun->b);
  tun->a.echoes = g_ptr_array_new_with_free_func ((GDestroyNotify) echo_free);
  tun->b.echoes = g_ptr_array_new_with_free_func ((GDestroyNotify) echo_free);
  tun->a.peer = &tun->b;
  tun->b.peer = &tun->a;
  /* No packet leaves before the loop runs: both are started by then. */
  transport_start (tun->a.t, TEST_MAX_PACKET, TEST_MAX_PACKET);
  transport_start (tun->b.t, TEST_MAX_PACKET, TEST_MAX_PACKET);
  g_assert_true (run_until (context, tunnel_is_ready, tun, TEST_TIMEOUT_MS));
  return tun;
}

static void
tunnel_free (Tunnel *tun)
{
  tun->a.peer = NULL;
  tun->b.peer = NULL;
  g_ptr_array_unref (tun->a.echoes);
  g_ptr_array_unref (tun->b.echoes);
  transport_free (tun->a.t);
  transport_free (tun->b.t);
  g_free (tun);
}

/* ---- what the forwards tell ---- */

typedef struct
{
  GMainContext *context;
  GPtrArray *said; /* char* */
} Fixture;

static void
on_say (const char *line, gpointer data)
{
  Fixture *fx = data;

  g_test_message ("said: %s", line);
  g_ptr_array_add (fx->said, g_strdup (line));
}

static void
on_fatal (const GError *error, gpointer data)
{
  g_error ("a forward failed: %s", error->message);
}

static void
assert_said (Fixture *fx, const char *line)
{
  for (guint i = 0; i < fx->said->len; i++)
    if (strcmp (fx->said->pdata[i], line) == 0)
      return;
  g_error ("never said: %s", line);
}

static void
fixture_setup (Fixture *fx, gconstpointer unused)
{
  fx->context = g_main_context_new ();
  fx->said = g_ptr_array_new_with_free_func (g_free);
}

static void
fixture_teardown (Fixture *fx, gconstpointer unused)
{
  /* Whatever is still attached (idle sources of freed objects must not be). */
  while (g_main_context_iteration (fx->context, FALSE))
    ;
  g_ptr_array_unref (fx->said);
  g_main_context_unref (fx->context);
}

/* ---- local clients ---- */

/* A port free now on 127.0.0.1 for @type. */
static guint16
free_port (int type)
{
  struct sockaddr_in sin = { .sin_family = AF_INET,
                             .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof sin;
  int fd = socket (AF_INET, type, 0);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &sin, sizeof sin), ==, 0);
  g_assert_cmpint (getsockname (fd, (struct sockaddr *) &sin, &len), ==, 0);
  close (fd);
  return ntohs (sin.sin_port);
}

static int
client_socket (int type, guint16 port)
{
  struct sockaddr_in sin = { .sin_family = AF_INET,
                             .sin_port = htons (port),
                             .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  int fd = socket (AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int r;

  g_assert_cmpint (fd, >=, 0);
  r = connect (fd, (struct sockaddr *) &sin, sizeof sin);
  /* Loopback completes it in the kernel, accepted or not. */
  g_assert_true (r == 0 || errno == EINPROGRESS);
  return fd;
}

static guint16
local_port (int fd)
{
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;

  g_assert_cmpint (getsockname (fd, (struct sockaddr *) &sin, &len), ==, 0);
  return ntohs (sin.sin_port);
}

/* A TCP client that sends @out and reads until it got as much back, or the
 * connection ended. */
typedef struct
{
  int fd;
  GBytes *out;
  gsize out_off;
  GByteArray *in;
  gboolean eof;
  int error; /* errno of a failed recv */
} Client;

static Client *
client_new (guint16 port, gsize n_bytes)
{
  Client *c = g_new0 (Client, 1);
  guint8 *data = g_malloc (n_bytes);

  for (gsize i = 0; i < n_bytes; i++)
    data[i] = (guint8) g_test_rand_int ();
  c->fd = client_socket (SOCK_STREAM, port);
  c->out = g_bytes_new_take (data, n_bytes);
  c->in = g_byte_array_new ();
  return c;
}

static void
client_free (Client *c)
{
  close (c->fd);
  g_bytes_unref (c->out);
  g_byte_array_unref (c->in);
  g_free (c);
}

/* Moves what it can; TRUE once all came back or the connection ended. */
static gboolean
client_pump (gpointer data)
{
  Client *c = data;
  gsize out_len;
  const guint8 *out = g_bytes_get_data (c->out, &out_len);
  guint8 tmp[16384];

  while (c->out_off < out_len)
    {
      gssize n = send (c->fd, out + c->out_off, out_len - c->out_off, MSG_NOSIGNAL);

      if (n <= 0)
        break;
      c->out_off += (gsize) n;
    }
  for (;;)
    {
      gssize n = recv (c->fd, tmp, sizeof tmp, 0);

      if (n > 0)
        {
          g_byte_array_append (c->in, tmp, (guint) n);
          continue;
        }
      if (n == 0)
        c->eof = TRUE;
      else if (errno != EAGAIN && errno != EINTR)
        c->error = errno;
      break;
    }
  return c->eof || c->error != 0 || c->in->len >= out_len;
}

/* Its bytes went through the tunnel and came back whole. */
static void
client_assert_echoed (Fixture *fx, Client *c)
{
  gsize out_len;
  const guint8 *out = g_bytes_get_data (c->out, &out_len);

  g_assert_true (run_until (fx->context, client_pump, c, TEST_TIMEOUT_MS));
  g_assert_cmpint (c->error, ==, 0);
  g_assert_false (c->eof);
  g_assert_cmpmem (c->in->data, c->in->len, out, out_len);
}

/* Its connection was reset: recv failed with ECONNRESET, never a clean end. */
static void
client_assert_reset (Fixture *fx, Client *c)
{
  g_byte_array_set_size (c->in, 0);
  c->out_off = g_bytes_get_size (c->out); /* nothing more to send */
  g_assert_true (run_until (fx->context, client_pump, c, TEST_TIMEOUT_MS));
  g_assert_false (c->eof);
  g_assert_cmpint (c->error, ==, ECONNRESET);
}

/* ---- TCP ---- */

static Forwards *
tcp_forwards (Fixture *fx, guint16 port, guint wait_s)
{
  g_autofree char *spec = g_strdup_printf ("127.0.0.1:%u:echo", port);
  const char *specs[] = { spec, NULL };
  g_autoptr (GError) error = NULL;
  Forwards *f = forwards_new (fx->context, specs, wait_s, on_fatal, on_say, fx, &error);

  g_assert_no_error (error);
  return f;
}

/* A connection made before the first tunnel goes through once it is up. */
static void
test_tcp_before_start (Fixture *fx, gconstpointer unused)
{
  guint16 port = free_port (SOCK_STREAM);
  g_autoptr (Forwards) f = tcp_forwards (fx, port, 5);
  g_autofree char *forwarding = g_strdup_printf ("forwarding 127.0.0.1:%u -> echo", port);
  Client *c = client_new (port, 10000);
  Tunnel *tun;

  /* Accepted and sent while there is no tunnel: it waits. */
  (void) client_pump (c);
  run_until (fx->context, NULL, NULL, 200);
  g_assert_cmpuint (fx->said->len, ==, 0);
  tun = tunnel_up (fx->context);
  forwards_start (f, tun->a.t);
  assert_said (fx, forwarding);
  client_assert_echoed (fx, c);
  g_assert_cmpuint (tun->b.echoes->len, ==, 1);

  client_free (c);
  g_clear_pointer (&f, forwards_free);
  tunnel_free (tun);
}

/* A connection that waits longer than the forward's wait is reset, and
 * the owner hears why. */
static void
test_tcp_wait_expires (Fixture *fx, gconstpointer unused)
{
  guint16 port = free_port (SOCK_STREAM);
  Forwards *f = tcp_forwards (fx, port, 1);
  Client *c = client_new (port, 100);
  g_autofree char *refused = g_strdup_printf (
      "127.0.0.1:%u -> echo: connection from 127.0.0.1:%u refused: "
      "no tunnel to the peer for 1 s", port, local_port (c->fd));
  gint64 start = g_get_monotonic_time ();

  client_assert_reset (fx, c);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 900 * 1000);
  assert_said (fx, refused);
  g_assert_cmpuint (fx->said->len, ==, 1);
  client_free (c);
  forwards_free (f);
}

/* The tunnel goes: its connections are reset, the listener stays, and the
 * next tunnel carries new connections and the ones that waited for it. */
static void
test_tcp_stop_start (Fixture *fx, gconstpointer unused)
{
  guint16 port = free_port (SOCK_STREAM);
  g_autoptr (Forwards) f = tcp_forwards (fx, port, 5);
  g_autofree char *reset = g_strdup_printf (
      "127.0.0.1:%u -> echo: 1 connection reset (the peer went away)", port);
  Tunnel *tun = tunnel_up (fx->context);
  Client *c1, *c2, *c3;

  forwards_start (f, tun->a.t);
  c1 = client_new (port, 5000);
  client_assert_echoed (fx, c1);

  forwards_stop (f, "the peer went away");
  assert_said (fx, reset);
  tunnel_free (tun);
  client_assert_reset (fx, c1);

  /* Made while there is no tunnel: it waits for the next. */
  c2 = client_new (port, 3000);
  (void) client_pump (c2);
  run_until (fx->context, NULL, NULL, 100);

  tun = tunnel_up (fx->context);
  forwards_start (f, tun->a.t);
  c3 = client_new (port, 300 * 1000);
  client_assert_echoed (fx, c2);
  client_assert_echoed (fx, c3);
  g_assert_cmpuint (tun->b.echoes->len, ==, 2);

  client_free (c1);
  client_free (c2);
  client_free (c3);
  g_clear_pointer (&f, forwards_free);
  tunnel_free (tun);
}

/* ---- UDP ---- */

typedef struct
{
  int fd;
  const char *want;
  gboolean got;
} UdpClient;

static gboolean
udp_client_got (gpointer data)
{
  UdpClient *c = data;
  char buf[256];
  gssize n;

  while ((n = recv (c->fd, buf, sizeof buf, 0)) >= 0)
    if ((gsize) n == strlen (c->want) && memcmp (buf, c->want, (gsize) n) == 0)
      c->got = TRUE;
  return c->got;
}

static void
udp_client_assert_echoed (Fixture *fx, UdpClient *c, const char *what)
{
  c->want = what;
  c->got = FALSE;
  g_assert_cmpint (send (c->fd, what, strlen (what), 0), ==, (gssize) strlen (what));
  g_assert_true (run_until (fx->context, udp_client_got, c, TEST_TIMEOUT_MS));
}

/* The tunnel goes: flows end, datagrams meanwhile are dropped and counted,
 * and the next tunnel carries new flows. */
static void
test_udp_stop_start (Fixture *fx, gconstpointer unused)
{
  guint16 port = free_port (SOCK_DGRAM);
  g_autofree char *spec = g_strdup_printf ("127.0.0.1:%u:echo", port);
  const char *specs[] = { spec, NULL };
  g_autofree char *ended = g_strdup_printf (
      "udp 127.0.0.1:%u -> echo: 1 flow ended (the peer went away)", port);
  g_autofree char *dropped = g_strdup_printf (
      "udp 127.0.0.1:%u -> echo: 3 datagrams dropped: no tunnel to the peer", port);
  g_autoptr (GError) error = NULL;
  g_autoptr (UdpForwards) f = udp_forwards_new (fx->context, specs, 30, on_fatal, on_say, fx,
                                                &error);
  UdpClient c = { .fd = client_socket (SOCK_DGRAM, port) };
  Tunnel *tun;

  g_assert_no_error (error);
  tun = tunnel_up (fx->context);
  udp_forwards_start (f, tun->a.t);
  udp_client_assert_echoed (fx, &c, "one");

  udp_forwards_stop (f, "the peer went away");
  assert_said (fx, ended);
  tunnel_free (tun);
  for (int i = 0; i < 3; i++)
    g_assert_cmpint (send (c.fd, "lost", 4, 0), ==, 4);
  run_until (fx->context, NULL, NULL, 200);

  tun = tunnel_up (fx->context);
  udp_forwards_start (f, tun->a.t);
  assert_said (fx, dropped);
  udp_client_assert_echoed (fx, &c, "two");
  g_assert_cmpuint (tun->b.echoes->len, ==, 1);

  close (c.fd);
  g_clear_pointer (&f, udp_forwards_free);
  tunnel_free (tun);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/forward/tcp/before-start", Fixture, NULL, fixture_setup, test_tcp_before_start,
              fixture_teardown);
  g_test_add ("/forward/tcp/wait-expires", Fixture, NULL, fixture_setup, test_tcp_wait_expires,
              fixture_teardown);
  g_test_add ("/forward/tcp/stop-start", Fixture, NULL, fixture_setup, test_tcp_stop_start,
              fixture_teardown);
  g_test_add ("/forward/udp/stop-start", Fixture, NULL, fixture_setup, test_udp_stop_start,
              fixture_teardown);
  return g_test_run ();
}
