/* turnload: a TURN load generator for the relay benchmark (scripts/bench
 * --only relay-load). It makes N allocations on a TURN server over UDP, one
 * client socket each, with TURN REST credentials from the shared secret,
 * binds a channel on each to one peer socket of its own (the sink), and then
 * sends ChannelData at a fixed rate when told to:
 *
 *   stdin:  run RATE MILLISECONDS     (packets per second, all allocations)
 *           quit                      (or end of input)
 *   stdout: ready allocations=N ...   (once all are bound)
 *           result run=K sent=S received=R ...   (one line per run)
 *
 * Every payload carries the run, the allocation and a sequence number, so
 * the sink counts per allocation and ignores stragglers of earlier runs.
 * One thread: the paced sender and the sink's recvmmsg take turns. Every
 * wait has a deadline; on quit the allocations are released (Refresh with
 * LIFETIME 0). Loopback only is the intent, not a check. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <openssl/crypto.h>

#include "addr.h"
#include "turnclient.h"

#define TURNLOAD_MAX_ALLOCATIONS 10000
/* ChannelData payload: magic, run, allocation, sequence (4 bytes each). */
#define TURNLOAD_MAGIC 0x544c4431u /* "TLD1" */
#define TURNLOAD_HEADER 16
#define TURNLOAD_MIN_SIZE TURNLOAD_HEADER
#define TURNLOAD_MAX_SIZE 1400
#define TURNLOAD_CHANNEL 0x4000
#define TURNLOAD_LIFETIME 3600u
/* Valid for a day: the REST username's EXPIRY. */
#define TURNLOAD_USER_VALID_S 86400
/* Control transactions in flight at once while setting up. */
#define TURNLOAD_WINDOW 64
/* Allocations started again from a new socket after a 437, per exchange. */
#define TURNLOAD_MAX_RESTARTS 100
#define TURNLOAD_SETUP_TIMEOUT_MS 60000
#define TURNLOAD_RELEASE_TIMEOUT_MS 10000
/* Permissions last 300 s and channels 600 s (RFC 8656 sections 9 and 12):
 * bind again before a run when the last bind is older than this. */
#define TURNLOAD_REBIND_MS 120000
/* Datagrams per sendmmsg (one allocation's socket) and per recvmmsg. */
#define TURNLOAD_SEND_BATCH 32
#define TURNLOAD_RECV_BATCH 64
/* Batches span at least 1/TURNLOAD_MIN_BATCH_HZ s of the rate. */
#define TURNLOAD_MIN_BATCH_HZ 10000
#define TURNLOAD_RECV_ROUNDS 8
/* A sender that falls behind (descheduled) catches up by at most this much
 * of its rate in a burst; slots further behind are skipped and counted. */
#define TURNLOAD_MAX_BACKLOG_MS 50
/* After the last send: wait until the sink has been quiet this long, but no
 * longer than the cap. */
#define TURNLOAD_DRAIN_QUIET_MS 200
#define TURNLOAD_DRAIN_MAX_MS 2000
#define TURNLOAD_MAX_RUN_MS 60000
#define TURNLOAD_MAX_RATE 10000000
#define TURNLOAD_SOCKET_BUFFER (8 * 1024 * 1024)
#define TURNLOAD_SECRET_MAX 4096

struct turnload_sink
{
  struct mmsghdr msgs[TURNLOAD_RECV_BATCH];
  struct iovec iov[TURNLOAD_RECV_BATCH];
  uint8_t buf[TURNLOAD_RECV_BATCH][TURNLOAD_MAX_SIZE + 64];
  /* SO_RXQ_OVFL: the socket's drop counter rides along each datagram. */
  uint8_t control[TURNLOAD_RECV_BATCH][CMSG_SPACE (sizeof (uint32_t))];
};

struct turnload_out
{
  struct mmsghdr msgs[TURNLOAD_SEND_BATCH];
  struct iovec iov[TURNLOAD_SEND_BATCH];
  uint8_t buf[TURNLOAD_SEND_BATCH][4 + TURNLOAD_MAX_SIZE];
};

struct turnload
{
  struct sockaddr_storage server;
  socklen_t server_len;
  size_t n;
  size_t size; /* payload bytes */
  int *fds;    /* client sockets, connected to the server */
  struct turnclient *tcs;
  uint64_t *sent;     /* per allocation, this run */
  uint64_t *received; /* per allocation, this run */
  uint32_t *seq;
  int sink;
  uint32_t sink_drops; /* last SO_RXQ_OVFL value seen */
  uint32_t run;
  int64_t bound_ms;
  /* Of the current run, at the sink. */
  uint64_t late, bogus;
  int64_t last_rx_ns;
  struct turnload_sink *in;
  struct turnload_out *out;
};

struct turnload_result
{
  uint64_t slots, sent, received, skipped, send_errors, dup, min_alloc;
  uint64_t send_ns;
  uint32_t sink_drops;
};

static int64_t
turnload_now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t
turnload_now_ms (void)
{
  return turnload_now_ns () / 1000000;
}

static void
turnload_put32 (uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t
turnload_get32 (const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ADDR:PORT or [ADDR6]:PORT, numeric. */
static bool
turnload_parse_addr (const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
  char host[64];
  const char *port;
  size_t hlen;
  if (text[0] == '[')
    {
      const char *end = strstr (text, "]:");
      if (end == NULL)
        return false;
      hlen = (size_t)(end - text - 1);
      if (hlen >= sizeof host)
        return false;
      memcpy (host, text + 1, hlen);
      port = end + 2;
    }
  else
    {
      const char *colon = strrchr (text, ':');
      if (colon == NULL || strchr (text, ':') != colon)
        return false;
      hlen = (size_t)(colon - text);
      if (hlen >= sizeof host)
        return false;
      memcpy (host, text, hlen);
      port = colon + 1;
    }
  host[hlen] = '\0';
  guint64 p;
  if (!g_ascii_string_to_unsigned (port, 10, 1, 65535, &p, NULL))
    return false;
  struct addrinfo hints
      = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_DGRAM };
  struct addrinfo *ai = NULL;
  if (getaddrinfo (host, port, &hints, &ai) != 0 || ai == NULL)
    return false;
  bool ok = ai->ai_addrlen <= sizeof *ss;
  if (ok)
    {
      memset (ss, 0, sizeof *ss);
      memcpy (ss, ai->ai_addr, ai->ai_addrlen);
      *len = ai->ai_addrlen;
    }
  freeaddrinfo (ai);
  return ok;
}

static void
turnload_grow_buffers (int fd)
{
  int size = TURNLOAD_SOCKET_BUFFER;
  if (setsockopt (fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
    (void)setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (setsockopt (fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
    (void)setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

/* The shared secret: the file's content without trailing whitespace. */
static uint8_t *
turnload_read_secret (const char *path, size_t *len)
{
  char *text = NULL;
  gsize n = 0;
  g_autoptr (GError) error = NULL;
  if (!g_file_get_contents (path, &text, &n, &error))
    {
      fprintf (stderr, "turnload: %s\n", error->message);
      return NULL;
    }
  size_t all = n;
  while (n > 0 && g_ascii_isspace (text[n - 1]))
    n--;
  if (n == 0 || n > TURNLOAD_SECRET_MAX)
    {
      fprintf (stderr, "turnload: %s: the secret must be 1 to %d bytes\n", path,
               TURNLOAD_SECRET_MAX);
      OPENSSL_cleanse (text, all);
      g_free (text);
      return NULL;
    }
  *len = n;
  return (uint8_t *)text;
}

static void
turnload_free (struct turnload *tl)
{
  if (tl->tcs != NULL)
    for (size_t i = 0; i < tl->n; i++)
      turnclient_clear (&tl->tcs[i]);
  if (tl->fds != NULL)
    for (size_t i = 0; i < tl->n; i++)
      if (tl->fds[i] >= 0)
        close (tl->fds[i]);
  if (tl->sink >= 0)
    close (tl->sink);
  g_free (tl->fds);
  g_free (tl->tcs);
  g_free (tl->sent);
  g_free (tl->received);
  g_free (tl->seq);
  g_free (tl->in);
  g_free (tl->out);
}

/* A client socket connected to the server, or -1 (said why). */
static int
turnload_client_socket (const struct turnload *tl, size_t i)
{
  int fd = socket (tl->server.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    {
      fprintf (stderr, "turnload: socket %zu of %zu: %s (raise ulimit -n?)\n", i + 1,
               tl->n, strerror (errno));
      return -1;
    }
  if (connect (fd, (const struct sockaddr *)&tl->server, tl->server_len) != 0)
    {
      fprintf (stderr, "turnload: connect: %s\n", strerror (errno));
      close (fd);
      return -1;
    }
  return fd;
}

/* The sink (peer) socket and one connected client socket per allocation. */
static bool
turnload_open (struct turnload *tl, const struct sockaddr_storage *peer,
               socklen_t peer_len)
{
  tl->sink = socket (peer->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (tl->sink < 0 || bind (tl->sink, (const struct sockaddr *)peer, peer_len) != 0)
    {
      fprintf (stderr, "turnload: peer socket: %s\n", strerror (errno));
      return false;
    }
  int one = 1;
  (void)setsockopt (tl->sink, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
  turnload_grow_buffers (tl->sink);
  for (size_t i = 0; i < tl->n; i++)
    {
      tl->fds[i] = turnload_client_socket (tl, i);
      if (tl->fds[i] < 0)
        return false;
    }
  return true;
}

static void
turnload_refused (struct turnclient *tc)
{
  snprintf (tc->error, sizeof tc->error,
            "the server refused the datagram (not running?)");
  tc->state = TURNCLIENT_FAILED;
}

/* Sends tc's request on fd. A refused datagram (ICMP port unreachable on a
 * connected socket: nothing listens there) fails tc at once. */
static void
turnload_send_request (struct turnclient *tc, int fd)
{
  if (send (fd, tc->req, tc->req_len, 0) < 0 && errno == ECONNREFUSED)
    turnload_refused (tc);
}

typedef enum turnclient_step (*turnload_begin_fn) (struct turnclient *, int64_t);

/* Runs one exchange (begin) on every allocation, TURNLOAD_WINDOW at a time,
 * until each is done or the timeout. Returns how many failed; prints the
 * first few reasons. */
static size_t
turnload_exchange (struct turnload *tl, turnload_begin_fn begin, int64_t timeout_ms,
                   const char *what)
{
  size_t active[TURNLOAD_WINDOW];
  struct pollfd pfd[TURNLOAD_WINDOW];
  size_t n_active = 0, next = 0, failed = 0, restarts = 0;
  int64_t deadline = turnload_now_ms () + timeout_ms;
  uint8_t buf[2048];
  while ((next < tl->n || n_active > 0) && turnload_now_ms () < deadline)
    {
      while (n_active < TURNLOAD_WINDOW && next < tl->n)
        {
          struct turnclient *tc = &tl->tcs[next];
          /* One that failed before (and said why) is left alone, and only
           * bound ones are bound again or released. */
          if (tc->state == TURNCLIENT_FAILED
              || (begin != turnclient_allocate && tc->state != TURNCLIENT_BOUND))
            {
              next++;
              continue;
            }
          if (begin (tc, turnload_now_ms ()) == TURNCLIENT_SEND)
            turnload_send_request (tc, tl->fds[next]);
          active[n_active++] = next++;
        }
      int64_t wait = 50;
      for (size_t k = 0; k < n_active; k++)
        {
          pfd[k] = (struct pollfd){ .fd = tl->fds[active[k]], .events = POLLIN };
          int64_t w = turnclient_next_ms (&tl->tcs[active[k]], turnload_now_ms ());
          wait = w < wait ? w : wait;
        }
      if (poll (pfd, n_active, (int)wait) < 0 && errno != EINTR)
        {
          fprintf (stderr, "turnload: poll: %s\n", strerror (errno));
          break;
        }
      for (size_t k = 0; k < n_active;)
        {
          size_t i = active[k];
          struct turnclient *tc = &tl->tcs[i];
          enum turnclient_step step = TURNCLIENT_WAIT;
          /* A few datagrams per socket per round: bounded. */
          for (int r = 0; r < 8 && tc->state != TURNCLIENT_FAILED; r++)
            {
              ssize_t got = recv (tl->fds[i], buf, sizeof buf, MSG_DONTWAIT);
              if (got < 0)
                {
                  if (errno == ECONNREFUSED)
                    turnload_refused (tc);
                  break;
                }
              step = turnclient_input (tc, buf, (size_t)got, turnload_now_ms ());
              if (step == TURNCLIENT_SEND)
                turnload_send_request (tc, tl->fds[i]);
              if (step == TURNCLIENT_DONE)
                break;
            }
          if (step != TURNCLIENT_DONE && tc->state != TURNCLIENT_FAILED)
            {
              step = turnclient_tick (tc, turnload_now_ms ());
              if (step == TURNCLIENT_SEND)
                turnload_send_request (tc, tl->fds[i]);
            }
          /* A 5-tuple the server still holds for someone else: the same
           * allocation from a new socket (a new port), a few times in all. */
          if (tc->state == TURNCLIENT_FAILED && tc->mismatch
              && restarts < TURNLOAD_MAX_RESTARTS)
            {
              int fd = turnload_client_socket (tl, i);
              if (fd >= 0)
                {
                  restarts++;
                  close (tl->fds[i]);
                  tl->fds[i] = fd;
                  turnclient_restart (tc);
                  if (turnclient_allocate (tc, turnload_now_ms ()) == TURNCLIENT_SEND)
                    turnload_send_request (tc, fd);
                  continue; /* poll it again next round */
                }
            }
          if (step == TURNCLIENT_DONE || tc->state == TURNCLIENT_FAILED)
            {
              if (tc->state == TURNCLIENT_FAILED && failed++ < 3)
                fprintf (stderr, "turnload: %s of allocation %zu: %s\n", what, i + 1,
                         tc->error);
              active[k] = active[--n_active];
            }
          else
            k++;
        }
    }
  size_t unfinished = (tl->n - next) + n_active;
  if (unfinished > 0)
    {
      fprintf (stderr, "turnload: %s: %zu allocations unfinished after %lld ms\n", what,
               unfinished, (long long)timeout_ms);
      for (size_t k = 0; k < n_active; k++)
        tl->tcs[active[k]].state = TURNCLIENT_FAILED;
      for (size_t i = next; i < tl->n; i++)
        tl->tcs[i].state = TURNCLIENT_FAILED;
    }
  return failed + unfinished;
}

/* Reads what the sink has, up to TURNLOAD_RECV_ROUNDS batches. */
static void
turnload_sink_read (struct turnload *tl)
{
  struct turnload_sink *in = tl->in;
  for (int round = 0; round < TURNLOAD_RECV_ROUNDS; round++)
    {
      for (unsigned i = 0; i < TURNLOAD_RECV_BATCH; i++)
        {
          in->iov[i]
              = (struct iovec){ .iov_base = in->buf[i], .iov_len = sizeof in->buf[i] };
          memset (&in->msgs[i], 0, sizeof in->msgs[i]);
          in->msgs[i].msg_hdr.msg_iov = &in->iov[i];
          in->msgs[i].msg_hdr.msg_iovlen = 1;
          in->msgs[i].msg_hdr.msg_control = in->control[i];
          in->msgs[i].msg_hdr.msg_controllen = sizeof in->control[i];
        }
      int n = recvmmsg (tl->sink, in->msgs, TURNLOAD_RECV_BATCH, MSG_DONTWAIT, NULL);
      if (n <= 0)
        return;
      tl->last_rx_ns = turnload_now_ns ();
      for (int i = 0; i < n; i++)
        {
          const uint8_t *p = in->buf[i];
          size_t len = in->msgs[i].msg_len;
          struct msghdr *h = &in->msgs[i].msg_hdr;
          for (struct cmsghdr *c = CMSG_FIRSTHDR (h); c != NULL; c = CMSG_NXTHDR (h, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL
                && c->cmsg_len >= CMSG_LEN (sizeof (uint32_t)))
              memcpy (&tl->sink_drops, CMSG_DATA (c), sizeof tl->sink_drops);
          if (len < TURNLOAD_HEADER || (h->msg_flags & MSG_TRUNC)
              || turnload_get32 (p) != TURNLOAD_MAGIC)
            {
              tl->bogus++;
              continue;
            }
          uint32_t run = turnload_get32 (p + 4), idx = turnload_get32 (p + 8);
          if (run != tl->run)
            tl->late++;
          else if (idx >= tl->n)
            tl->bogus++;
          else
            tl->received[idx]++;
        }
      if (n < TURNLOAD_RECV_BATCH)
        return;
    }
}

/* Sends one batch of up to k ChannelData to allocation i; returns how many
 * the kernel took. */
static uint64_t
turnload_send_batch (struct turnload *tl, size_t i, unsigned k)
{
  struct turnload_out *o = tl->out;
  size_t len = 4 + tl->size;
  for (unsigned j = 0; j < k; j++)
    {
      uint8_t *b = o->buf[j];
      /* RFC 8656 section 12.4: channel number, then the length of the data;
       * over UDP no padding is needed. */
      b[0] = (uint8_t)(TURNLOAD_CHANNEL >> 8);
      b[1] = (uint8_t)(TURNLOAD_CHANNEL & 0xff);
      b[2] = (uint8_t)(tl->size >> 8);
      b[3] = (uint8_t)(tl->size & 0xff);
      turnload_put32 (b + 4, TURNLOAD_MAGIC);
      turnload_put32 (b + 8, tl->run);
      turnload_put32 (b + 12, (uint32_t)i);
      turnload_put32 (b + 16, tl->seq[i] + j);
      o->iov[j] = (struct iovec){ .iov_base = b, .iov_len = len };
      memset (&o->msgs[j], 0, sizeof o->msgs[j]);
      o->msgs[j].msg_hdr.msg_iov = &o->iov[j];
      o->msgs[j].msg_hdr.msg_iovlen = 1;
    }
  int r = sendmmsg (tl->fds[i], o->msgs, k, MSG_DONTWAIT);
  if (r <= 0)
    return 0;
  tl->seq[i] += (uint32_t)r;
  tl->sent[i] += (uint64_t)r;
  return (uint64_t)r;
}

/* One run: rate packets per second over all allocations in turn for ms
 * milliseconds, then the drain. */
static void
turnload_run (struct turnload *tl, uint64_t rate, uint64_t ms,
              struct turnload_result *res)
{
  memset (res, 0, sizeof *res);
  tl->run++;
  tl->late = tl->bogus = 0;
  memset (tl->sent, 0, tl->n * sizeof *tl->sent);
  memset (tl->received, 0, tl->n * sizeof *tl->received);
  turnload_sink_read (tl); /* stragglers of earlier runs, before the count */
  uint32_t drops0 = tl->sink_drops;
  /* The filler after the header stays zero. */
  memset (tl->out->buf, 0, sizeof tl->out->buf);
  const int64_t dur_ns = (int64_t)ms * 1000000;
  const uint64_t max_backlog
      = rate * TURNLOAD_MAX_BACKLOG_MS / 1000 + TURNLOAD_SEND_BATCH;
  /* A syscall per packet would cost the generator more than the relay's
   * batched reads cost it: send 100 us worth of the rate at once (up to a
   * batch), to one allocation. */
  uint64_t min_batch = rate / TURNLOAD_MIN_BATCH_HZ;
  if (min_batch < 1)
    min_batch = 1;
  if (min_batch > TURNLOAD_SEND_BATCH)
    min_batch = TURNLOAD_SEND_BATCH;
  size_t rr = 0;
  int64_t t0 = turnload_now_ns ();
  for (;;)
    {
      int64_t el = turnload_now_ns () - t0;
      if (el >= dur_ns)
        break;
      /* Slots due by now; the first goes at once. el * rate < 2^63 since
       * el <= 60 s and rate <= 10^7. */
      uint64_t due = (uint64_t)el * rate / 1000000000u + 1;
      if (due > res->slots + max_backlog)
        {
          res->skipped += due - max_backlog - res->slots;
          res->slots = due - max_backlog;
        }
      if (due >= res->slots + min_batch)
        {
          uint64_t k = due - res->slots;
          if (k > TURNLOAD_SEND_BATCH)
            k = TURNLOAD_SEND_BATCH;
          uint64_t took = turnload_send_batch (tl, rr, (unsigned)k);
          res->sent += took;
          res->send_errors += k - took;
          res->slots += k;
          rr = rr + 1 == tl->n ? 0 : rr + 1;
        }
      turnload_sink_read (tl);
      if (due < res->slots + min_batch)
        {
          /* Until the next batch is due, in ppoll on the sink: no spinning,
           * the cores are shared with the relay. A late wakeup is caught up
           * by the next batches (due counts from t0). */
          int64_t next_ns = (int64_t)((res->slots + min_batch - 1) * 1000000000u / rate);
          int64_t wait = next_ns - (turnload_now_ns () - t0);
          if (wait > 0)
            {
              if (wait > 1000000)
                wait = 1000000;
              struct pollfd p = { .fd = tl->sink, .events = POLLIN };
              struct timespec ts = { .tv_sec = 0, .tv_nsec = wait };
              (void)ppoll (&p, 1, &ts, NULL);
            }
        }
    }
  res->send_ns = (uint64_t)(turnload_now_ns () - t0);
  /* Drain: until quiet, within the cap. */
  int64_t end = turnload_now_ns ();
  tl->last_rx_ns = end;
  for (;;)
    {
      int64_t t = turnload_now_ns ();
      if (t - tl->last_rx_ns >= (int64_t)TURNLOAD_DRAIN_QUIET_MS * 1000000
          || t - end >= (int64_t)TURNLOAD_DRAIN_MAX_MS * 1000000)
        break;
      struct pollfd p = { .fd = tl->sink, .events = POLLIN };
      (void)poll (&p, 1, 20);
      turnload_sink_read (tl);
    }
  res->min_alloc = UINT64_MAX;
  for (size_t i = 0; i < tl->n; i++)
    {
      res->received += tl->received[i];
      if (tl->received[i] > tl->sent[i])
        res->dup += tl->received[i] - tl->sent[i];
      if (tl->sent[i] > 0 && tl->received[i] < res->min_alloc)
        res->min_alloc = tl->received[i];
    }
  if (res->min_alloc == UINT64_MAX)
    res->min_alloc = 0;
  res->sink_drops = tl->sink_drops - drops0;
}

/* "run RATE MILLISECONDS": false when malformed. */
static bool
turnload_parse_run (char *line, uint64_t *rate, uint64_t *ms)
{
  char *save = NULL;
  char *cmd = strtok_r (line, " \t\r\n", &save);
  char *r = strtok_r (NULL, " \t\r\n", &save);
  char *m = strtok_r (NULL, " \t\r\n", &save);
  guint64 v1, v2;
  if (cmd == NULL || strcmp (cmd, "run") != 0 || r == NULL || m == NULL
      || strtok_r (NULL, " \t\r\n", &save) != NULL
      || !g_ascii_string_to_unsigned (r, 10, 1, TURNLOAD_MAX_RATE, &v1, NULL)
      || !g_ascii_string_to_unsigned (m, 10, 1, TURNLOAD_MAX_RUN_MS, &v2, NULL))
    return false;
  *rate = v1;
  *ms = v2;
  return true;
}

static int
turnload_commands (struct turnload *tl)
{
  char line[256];
  while (fgets (line, sizeof line, stdin) != NULL)
    {
      if (strchr (line, '\n') == NULL && !feof (stdin))
        {
          fprintf (stderr, "turnload: command line too long\n");
          return 1;
        }
      if (strncmp (line, "quit", 4) == 0)
        break;
      uint64_t rate, ms;
      if (!turnload_parse_run (line, &rate, &ms))
        {
          fprintf (stderr,
                   "turnload: expected \"run RATE MILLISECONDS\" (rate 1 to %d, "
                   "1 to %d ms) or \"quit\"\n",
                   TURNLOAD_MAX_RATE, TURNLOAD_MAX_RUN_MS);
          return 1;
        }
      if (turnload_now_ms () - tl->bound_ms > TURNLOAD_REBIND_MS)
        {
          if (turnload_exchange (tl, turnclient_rebind, TURNLOAD_SETUP_TIMEOUT_MS,
                                 "ChannelBind again")
              > 0)
            return 1;
          tl->bound_ms = turnload_now_ms ();
        }
      struct turnload_result r;
      turnload_run (tl, rate, ms, &r);
      printf ("result run=%u rate=%llu ms=%llu slots=%llu sent=%llu received=%llu "
              "lost=%lld late=%llu dup=%llu bogus=%llu skipped=%llu send_errors=%llu "
              "sink_drops=%u send_ns=%llu min_alloc_received=%llu\n",
              tl->run, (unsigned long long)rate, (unsigned long long)ms,
              (unsigned long long)r.slots, (unsigned long long)r.sent,
              (unsigned long long)r.received, (long long)r.sent - (long long)r.received,
              (unsigned long long)tl->late, (unsigned long long)r.dup,
              (unsigned long long)tl->bogus, (unsigned long long)r.skipped,
              (unsigned long long)r.send_errors, r.sink_drops,
              (unsigned long long)r.send_ns, (unsigned long long)r.min_alloc);
      if (fflush (stdout) != 0)
        return 1;
    }
  return 0;
}

int
main (int argc, char **argv)
{
  g_autofree char *server = NULL, *secret_file = NULL, *name = NULL, *peer = NULL;
  int n_alloc = 1, size = 100;
  GOptionEntry entries[] = {
    { "server", 0, 0, G_OPTION_ARG_STRING, &server, "TURN server, UDP", "ADDR:PORT" },
    { "secret-file", 0, 0, G_OPTION_ARG_FILENAME, &secret_file,
      "File holding the TURN REST shared secret", "FILE" },
    { "allocations", 0, 0, G_OPTION_ARG_INT, &n_alloc, "Allocations (default 1)", "N" },
    { "size", 0, 0, G_OPTION_ARG_INT, &size,
      "ChannelData payload bytes (16 to 1400, default 100)", "BYTES" },
    { "name", 0, 0, G_OPTION_ARG_STRING, &name,
      "NAME of the REST usernames EXPIRY:NAME-I (default turnload)", "NAME" },
    { "peer", 0, 0, G_OPTION_ARG_STRING, &peer,
      "Address of the peer socket that receives the relayed data (default: port 0 on "
      "the server's address)",
      "ADDR:PORT" },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  g_autoptr (GOptionContext) octx = g_option_context_new ("- TURN load generator");
  g_option_context_set_summary (
      octx, "Makes N TURN allocations over UDP, binds a channel on each to its own\n"
            "peer socket, then reads commands on stdin:\n"
            "  run RATE MILLISECONDS   ChannelData at RATE packets/s over all\n"
            "                          allocations; prints one \"result ...\" line\n"
            "  quit                    releases the allocations and exits\n"
            "Prints \"ready allocations=N\" once all are bound.");
  g_option_context_add_main_entries (octx, entries, NULL);
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (octx, &argc, &argv, &error))
    {
      fprintf (stderr, "turnload: %s\n", error->message);
      return 2;
    }
  if (argc > 1 || server == NULL || secret_file == NULL)
    {
      fprintf (stderr, "turnload: --server and --secret-file are required; see --help\n");
      return 2;
    }
  if (n_alloc < 1 || n_alloc > TURNLOAD_MAX_ALLOCATIONS)
    {
      fprintf (stderr, "turnload: --allocations: 1 to %d\n", TURNLOAD_MAX_ALLOCATIONS);
      return 2;
    }
  if (size < TURNLOAD_MIN_SIZE || size > TURNLOAD_MAX_SIZE)
    {
      fprintf (stderr, "turnload: --size: %d to %d\n", TURNLOAD_MIN_SIZE,
               TURNLOAD_MAX_SIZE);
      return 2;
    }
  struct sockaddr_storage server_ss, peer_ss;
  socklen_t server_len, peer_len;
  if (!turnload_parse_addr (server, &server_ss, &server_len))
    {
      fprintf (stderr, "turnload: --server %s: not ADDR:PORT\n", server);
      return 2;
    }
  if (peer != NULL)
    {
      if (!turnload_parse_addr (peer, &peer_ss, &peer_len)
          || peer_ss.ss_family != server_ss.ss_family)
        {
          fprintf (stderr, "turnload: --peer %s: not ADDR:PORT of the server's family\n",
                   peer);
          return 2;
        }
    }
  else
    {
      peer_ss = server_ss;
      peer_len = server_len;
      if (peer_ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&peer_ss)->sin6_port = 0;
      else
        ((struct sockaddr_in *)&peer_ss)->sin_port = 0;
    }
  size_t secret_len = 0;
  uint8_t *secret = turnload_read_secret (secret_file, &secret_len);
  if (secret == NULL)
    return 2;
  /* Reports go to a pipe: a reader that went away is an error, not a kill. */
  signal (SIGPIPE, SIG_IGN);

  struct turnload tl = { .n = (size_t)n_alloc, .size = (size_t)size, .sink = -1 };
  tl.fds = g_new (int, tl.n);
  for (size_t i = 0; i < tl.n; i++)
    tl.fds[i] = -1;
  tl.tcs = g_new0 (struct turnclient, tl.n);
  tl.sent = g_new0 (uint64_t, tl.n);
  tl.received = g_new0 (uint64_t, tl.n);
  tl.seq = g_new0 (uint32_t, tl.n);
  tl.in = g_new0 (struct turnload_sink, 1);
  tl.out = g_new0 (struct turnload_out, 1);
  int status = 1;
  tl.server = server_ss;
  tl.server_len = server_len;
  if (!turnload_open (&tl, &peer_ss, peer_len))
    goto out;
  struct sockaddr_storage sink_ss;
  socklen_t sink_len = sizeof sink_ss;
  if (getsockname (tl.sink, (struct sockaddr *)&sink_ss, &sink_len) != 0)
    {
      fprintf (stderr, "turnload: getsockname: %s\n", strerror (errno));
      goto out;
    }
  struct stun_addr sink_addr;
  relay_addr_from_sockaddr (&sink_ss, &sink_addr);
  int64_t expiry = (int64_t)time (NULL) + TURNLOAD_USER_VALID_S;
  for (size_t i = 0; i < tl.n; i++)
    {
      char user[64];
      snprintf (user, sizeof user, "%s-%zu", name != NULL ? name : "turnload", i + 1);
      if (!turnclient_init (&tl.tcs[i], secret, secret_len, user, expiry,
                            TURNLOAD_LIFETIME, &sink_addr, TURNLOAD_CHANNEL))
        {
          fprintf (stderr, "turnload: %s\n", tl.tcs[i].error);
          goto out;
        }
    }
  int64_t t0 = turnload_now_ms ();
  if (turnload_exchange (&tl, turnclient_allocate, TURNLOAD_SETUP_TIMEOUT_MS,
                         "Allocate and ChannelBind")
      == 0)
    {
      tl.bound_ms = turnload_now_ms ();
      printf ("ready allocations=%zu setup_ms=%lld peer_port=%u\n", tl.n,
              (long long)(tl.bound_ms - t0), sink_addr.port);
      fflush (stdout);
      status = turnload_commands (&tl);
    }
  /* Also after a failed setup: the ones that were made go. */
  size_t not_released = turnload_exchange (&tl, turnclient_release,
                                           TURNLOAD_RELEASE_TIMEOUT_MS, "Refresh");
  if (not_released > 0)
    fprintf (stderr, "turnload: %zu allocations not released (they expire)\n",
             not_released);
out:
  OPENSSL_cleanse (secret, secret_len);
  g_free (secret);
  turnload_free (&tl);
  return status;
}
