/* linkem: a userspace link element for the NAT lab (there is no netem here).
 *
 * It runs in a network namespace of its own that holds two veth ends, A and
 * B, opens an AF_PACKET socket on each, and copies every frame (ARP
 * included) that arrives on one end out of the other, in both directions,
 * after this link model:
 *
 *   arrival -> random loss (--loss PERCENT, seeded PRNG)
 *           -> rate limit (--rate BITS/S): a serializer with a drop-tail
 *              queue bounded in bytes (--queue BYTES, default one
 *              bandwidth-delay product of the round trip 2 x --delay)
 *           -> one-way delay (--delay MS) plus jitter (--jitter MS: a
 *              uniform extra delay per frame, never less than the frame
 *              before it got, so jitter does not reorder)
 *           -> sent out of the other end.
 *
 * Each direction is a FIFO: a frame leaves the serializer after the one
 * before it, and no frame is due before the one ahead of it, so departure
 * times never decrease and a ring of preallocated frame slots is the
 * time-ordered queue. Memory
 * is bounded (--frames slots per direction, allocated once); nothing is
 * allocated per frame. The loop is ppoll() with the time of the next
 * departure as its timeout; SIGTERM and SIGINT end it cleanly, and the
 * counters of both directions are printed on stderr.
 *
 * The veths whose frames it copies need checksum offload off (ethtool -K
 * IF tx off, done by natlab.py): a frame that crosses a packet socket keeps
 * no "checksum still to do" mark, so TCP and UDP would arrive with a
 * partial checksum and be dropped.
 *
 * usage: linkem [options] IF_A IF_B        (see usage() below) */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

/* The largest frame copied: an Ethernet frame of a 1500-byte MTU with a VLAN
 * tag fits; anything longer (offloads left on) is counted and dropped. */
#define LINKEM_SLOT_SIZE 2048
#define LINKEM_DEFAULT_FRAMES 4096
#define LINKEM_MAX_FRAMES (1u << 20)
#define LINKEM_MAX_DELAY_MS 60000
/* Frames read or written per socket and loop turn: a bound on how long one
 * direction can keep the other waiting. */
#define LINKEM_BATCH 64
#define LINKEM_SOCKBUF (4 * 1024 * 1024)
#define NSEC_PER_SEC 1000000000ull

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

struct linkem_slot
{
  uint64_t due_ns; /* when it leaves the other end */
  uint32_t len;
  uint8_t data[LINKEM_SLOT_SIZE];
};

struct linkem_dir
{
  const char *name; /* "a->b" */
  int in_fd, out_fd;
  struct linkem_slot *ring;
  uint32_t nslots, head, count;
  uint64_t busy_until_ns; /* the serializer is busy with earlier frames */
  uint64_t last_due_ns;   /* the latest frame's departure: jitter keeps order */
  uint64_t rng;
  uint64_t jitter_rng;    /* its own stream: a seed's losses do not change */
  /* counters */
  uint64_t received, passed, passed_bytes, lost, queue_drops, ring_drops, too_long,
      send_errors;
  int last_send_errno;
};

struct linkem_config
{
  uint64_t delay_ns;
  uint64_t jitter_ns;
  uint32_t loss_ppm; /* parts per million */
  uint64_t rate_bps; /* 0: no limit */
  uint64_t queue_bytes;
  uint64_t seed;
  uint32_t frames;
};

static volatile sig_atomic_t linkem_stop;

static void
linkem_on_signal (int signum)
{
  linkem_stop = signum;
}

static uint64_t
linkem_now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* splitmix64: small, fast and good enough to decide losses; seeded so that a
 * run's loss pattern (per direction, frame by frame) is repeatable. */
static uint64_t
linkem_rand (uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static bool
linkem_parse_u64 (const char *s, uint64_t max, uint64_t *out)
{
  char *end;
  unsigned long long v;

  if (*s < '0' || *s > '9')
    return false;
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno || *end || v > max)
    return false;
  *out = v;
  return true;
}

/* A decimal like "1", "0.5" or "12.25" scaled by 10^digits, exactly (no
 * floating point): percent with 4 digits is parts per million. */
static bool
linkem_parse_fixed (const char *s, unsigned digits, uint64_t max, uint64_t *out)
{
  uint64_t v = 0;
  unsigned frac = 0;
  bool dot = false, any = false;

  for (; *s; s++)
    {
      if (*s == '.' && !dot)
        {
          dot = true;
          continue;
        }
      if (*s < '0' || *s > '9')
        return false;
      if (dot && frac == digits)
        return false; /* more precision than we keep */
      if (v > (UINT64_MAX - 9) / 10)
        return false;
      v = v * 10 + (uint64_t)(*s - '0');
      frac += dot;
      any = true;
    }
  if (!any)
    return false;
  for (; frac < digits; frac++)
    {
      if (v > UINT64_MAX / 10)
        return false;
      v *= 10;
    }
  if (v > max)
    return false;
  *out = v;
  return true;
}

/* A rate like 100000000, 100M, 1.5M, 64k (bits per second). */
static bool
linkem_parse_rate (const char *s, uint64_t *out)
{
  char buf[32];
  size_t n = strlen (s);
  uint64_t mult = 1, v;

  if (n == 0 || n >= sizeof (buf))
    return false;
  memcpy (buf, s, n + 1);
  switch (buf[n - 1])
    {
    case 'k':
    case 'K':
      mult = 1000;
      break;
    case 'm':
    case 'M':
      mult = 1000000;
      break;
    case 'g':
    case 'G':
      mult = 1000000000;
      break;
    default:
      break;
    }
  if (mult != 1)
    buf[n - 1] = '\0';
  /* three decimals at most: 1.5M */
  if (!linkem_parse_fixed (buf, 3, 100000000000000ull, &v))
    return false;
  v = v * mult / 1000;
  if (v == 0 || v > 100000000000ull) /* 100 Gbit/s */
    return false;
  *out = v;
  return true;
}

static int
linkem_open (const char *ifname)
{
  struct sockaddr_ll sll;
  unsigned idx = if_nametoindex (ifname);
  int fd, one = 1, size = LINKEM_SOCKBUF;

  if (idx == 0)
    {
      fprintf (stderr, "linkem: no interface %s: %s\n", ifname, strerror (errno));
      return -1;
    }
  fd = socket (AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons (ETH_P_ALL));
  if (fd < 0)
    {
      fprintf (stderr, "linkem: packet socket: %s (needs CAP_NET_RAW)\n",
               strerror (errno));
      return -1;
    }
  /* Our own sends on this interface would come back as outgoing frames. The
   * kernel can leave them out (Linux 4.20); the receive path checks the
   * packet type as well. */
  (void)setsockopt (fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof (one));
  /* Large buffers so that a burst is queued by us (and counted), not lost
   * in the socket; FORCE works as root, the plain call is the fallback. */
  if (setsockopt (fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof (size)) < 0)
    (void)setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof (size));
  if (setsockopt (fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof (size)) < 0)
    (void)setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof (size));
  memset (&sll, 0, sizeof (sll));
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons (ETH_P_ALL);
  sll.sll_ifindex = (int)idx;
  if (bind (fd, (struct sockaddr *)&sll, sizeof (sll)) < 0)
    {
      fprintf (stderr, "linkem: bind to %s: %s\n", ifname, strerror (errno));
      close (fd);
      return -1;
    }
  return fd;
}

static uint64_t
linkem_tx_ns (const struct linkem_config *cfg, uint32_t len)
{
  /* The wire carries preamble, FCS and gap too (24 bytes); a link's rate
   * is about those bits, as on a real Ethernet. */
  return ((uint64_t)len + 24) * 8 * NSEC_PER_SEC / cfg->rate_bps;
}

/* Reads what is waiting on d->in_fd (LINKEM_BATCH frames at most) into the
 * ring, or drops it by the link model. */
static void
linkem_receive (struct linkem_dir *d, const struct linkem_config *cfg)
{
  static uint8_t scratch[LINKEM_SLOT_SIZE];

  for (int i = 0; i < LINKEM_BATCH; i++)
    {
      struct sockaddr_ll from;
      socklen_t fromlen = sizeof (from);
      bool full = d->count == d->nslots;
      struct linkem_slot *s = full ? NULL : &d->ring[(d->head + d->count) % d->nslots];
      uint8_t *buf = s ? s->data : scratch;
      ssize_t n = recvfrom (d->in_fd, buf, LINKEM_SLOT_SIZE, MSG_TRUNC,
                            (struct sockaddr *)&from, &fromlen);
      uint64_t now;

      if (n < 0)
        {
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            fprintf (stderr, "linkem: %s: receive: %s\n", d->name, strerror (errno));
          return;
        }
      if (from.sll_pkttype == PACKET_OUTGOING)
        continue;
      d->received++;
      if ((size_t)n > LINKEM_SLOT_SIZE)
        {
          d->too_long++;
          continue;
        }
      if (cfg->loss_ppm && linkem_rand (&d->rng) % 1000000 < cfg->loss_ppm)
        {
          d->lost++;
          continue;
        }
      if (full)
        {
          d->ring_drops++;
          continue;
        }
      now = linkem_now_ns ();
      if (cfg->rate_bps)
        {
          uint64_t start = d->busy_until_ns > now ? d->busy_until_ns : now;
          /* bytes still to serialize; a double, as the product of a long
           * backlog and a high rate would not fit 64 bits */
          double backlog = (double)(start - now) * (double)cfg->rate_bps / 8e9;

          if (backlog + (double)n > (double)cfg->queue_bytes)
            {
              d->queue_drops++;
              continue;
            }
          d->busy_until_ns = start + linkem_tx_ns (cfg, (uint32_t)n);
          s->due_ns = d->busy_until_ns + cfg->delay_ns;
        }
      else
        {
          s->due_ns = now + cfg->delay_ns;
        }
      if (cfg->jitter_ns)
        s->due_ns += linkem_rand (&d->jitter_rng) % (cfg->jitter_ns + 1);
      if (s->due_ns < d->last_due_ns)
        s->due_ns = d->last_due_ns;
      d->last_due_ns = s->due_ns;
      s->len = (uint32_t)n;
      d->count++;
    }
}

/* Sends the frames whose time has come (LINKEM_BATCH at most). */
static void
linkem_send_due (struct linkem_dir *d, uint64_t now)
{
  for (int i = 0; i < LINKEM_BATCH && d->count; i++)
    {
      struct linkem_slot *s = &d->ring[d->head];

      if (s->due_ns > now)
        return;
      if (send (d->out_fd, s->data, s->len, MSG_DONTWAIT) < 0)
        {
          /* A full queue at the far end is a loss, as on a wire. */
          d->send_errors++;
          d->last_send_errno = errno;
        }
      else
        {
          d->passed++;
          d->passed_bytes += s->len;
        }
      d->head = (d->head + 1) % d->nslots;
      d->count--;
    }
}

static void
linkem_report (const struct linkem_dir *d)
{
  fprintf (stderr,
           "linkem: %s: received %" PRIu64 " passed %" PRIu64 " (%" PRIu64
           " bytes) lost %" PRIu64 " queue-drops %" PRIu64 " ring-drops %" PRIu64
           " too-long %" PRIu64 " send-errors %" PRIu64 "%s%s\n",
           d->name, d->received, d->passed, d->passed_bytes, d->lost, d->queue_drops,
           d->ring_drops, d->too_long, d->send_errors, d->send_errors ? " last: " : "",
           d->send_errors ? strerror (d->last_send_errno) : "");
}

static void
usage (FILE *f)
{
  fprintf (
      f,
      "usage: linkem [--delay MS] [--jitter MS] [--loss PERCENT] [--rate BITS_PER_S]\n"
      "              [--queue BYTES] [--seed N] [--frames N] IF_A IF_B\n"
      "Copies every frame between the interfaces IF_A and IF_B, both ways, after\n"
      "random loss, a rate limit with a drop-tail queue and a one-way delay.\n"
      "  --delay MS        one-way delay, each direction (0..%d, default 0)\n"
      "  --jitter MS       up to this much more delay per frame, uniform, order kept\n"
      "                    (0..%d, default 0)\n"
      "  --loss PERCENT    random loss, each direction (0..100, e.g. 0.5; default 0)\n"
      "  --rate R          rate limit in bit/s, suffixes k M G (default: none)\n"
      "  --queue BYTES     drop-tail queue of the rate limit (default: one BDP of\n"
      "                    rate x 2 x delay, at least 32 full frames)\n"
      "  --seed N          seed of the loss PRNG (default 1)\n"
      "  --frames N        frame slots per direction (default %d)\n"
      "Prints \"linkem: ready\" on stderr when it runs; on SIGTERM or SIGINT the\n"
      "counters of both directions, and exits 0.\n",
      LINKEM_MAX_DELAY_MS, LINKEM_MAX_DELAY_MS, LINKEM_DEFAULT_FRAMES);
}

int
main (int argc, char **argv)
{
  struct linkem_config cfg = { .seed = 1, .frames = LINKEM_DEFAULT_FRAMES };
  struct linkem_dir dirs[2];
  const char *ifs[2] = { NULL, NULL };
  bool queue_set = false;
  struct sigaction sa;
  sigset_t block, empty;
  int nifs = 0, fds[2] = { -1, -1 }, rc = 1;

  memset (dirs, 0, sizeof (dirs));
  for (int i = 1; i < argc; i++)
    {
      const char *opt = argv[i];
      const char *val = i + 1 < argc ? argv[i + 1] : NULL;
      uint64_t v;

      if (!strcmp (opt, "-h") || !strcmp (opt, "--help"))
        {
          usage (stdout);
          return 0;
        }
      if (opt[0] != '-')
        {
          if (nifs == 2)
            {
              fprintf (stderr, "linkem: more than two interfaces: %s\n", opt);
              return 2;
            }
          if (strlen (opt) >= IF_NAMESIZE)
            {
              fprintf (stderr, "linkem: interface name too long: %s\n", opt);
              return 2;
            }
          ifs[nifs++] = opt;
          continue;
        }
      if (!val)
        {
          fprintf (stderr, "linkem: %s needs a value\n", opt);
          return 2;
        }
      i++;
      if (!strcmp (opt, "--delay"))
        {
          if (!linkem_parse_fixed (val, 3, (uint64_t)LINKEM_MAX_DELAY_MS * 1000, &v))
            {
              fprintf (stderr, "linkem: bad --delay %s (milliseconds, 0..%d)\n", val,
                       LINKEM_MAX_DELAY_MS);
              return 2;
            }
          cfg.delay_ns = v * 1000; /* v is in microseconds */
        }
      else if (!strcmp (opt, "--jitter"))
        {
          if (!linkem_parse_fixed (val, 3, (uint64_t)LINKEM_MAX_DELAY_MS * 1000, &v))
            {
              fprintf (stderr, "linkem: bad --jitter %s (milliseconds, 0..%d)\n", val,
                       LINKEM_MAX_DELAY_MS);
              return 2;
            }
          cfg.jitter_ns = v * 1000;
        }
      else if (!strcmp (opt, "--loss"))
        {
          if (!linkem_parse_fixed (val, 4, 1000000, &v))
            {
              fprintf (stderr, "linkem: bad --loss %s (percent, 0..100)\n", val);
              return 2;
            }
          cfg.loss_ppm = (uint32_t)v;
        }
      else if (!strcmp (opt, "--rate"))
        {
          if (!linkem_parse_rate (val, &cfg.rate_bps))
            {
              fprintf (stderr, "linkem: bad --rate %s (bit/s, e.g. 100M)\n", val);
              return 2;
            }
        }
      else if (!strcmp (opt, "--queue"))
        {
          if (!linkem_parse_u64 (val, 1ull << 32, &cfg.queue_bytes)
              || cfg.queue_bytes < LINKEM_SLOT_SIZE)
            {
              fprintf (stderr, "linkem: bad --queue %s (bytes, %d..4294967296)\n", val,
                       LINKEM_SLOT_SIZE);
              return 2;
            }
          queue_set = true;
        }
      else if (!strcmp (opt, "--seed"))
        {
          if (!linkem_parse_u64 (val, UINT64_MAX, &cfg.seed))
            {
              fprintf (stderr, "linkem: bad --seed %s\n", val);
              return 2;
            }
        }
      else if (!strcmp (opt, "--frames"))
        {
          if (!linkem_parse_u64 (val, LINKEM_MAX_FRAMES, &v) || v < 16)
            {
              fprintf (stderr, "linkem: bad --frames %s (16..%u)\n", val,
                       LINKEM_MAX_FRAMES);
              return 2;
            }
          cfg.frames = (uint32_t)v;
        }
      else
        {
          fprintf (stderr, "linkem: unknown option %s\n", opt);
          usage (stderr);
          return 2;
        }
    }
  if (nifs != 2)
    {
      usage (stderr);
      return 2;
    }
  if (cfg.rate_bps && !queue_set)
    {
      double bdp = (double)cfg.rate_bps / 8 * (2 * (double)cfg.delay_ns) / 1e9;

      if (bdp < 32 * 1514)
        cfg.queue_bytes = 32 * 1514;
      else if (bdp > 4294967296.0)
        cfg.queue_bytes = 4294967296ull;
      else
        cfg.queue_bytes = (uint64_t)bdp;
    }

  /* Signals arrive only inside ppoll(), so a stop is never missed between
   * the check of the flag and the wait. */
  sigemptyset (&block);
  sigaddset (&block, SIGTERM);
  sigaddset (&block, SIGINT);
  sigprocmask (SIG_BLOCK, &block, NULL);
  sigemptyset (&empty);
  memset (&sa, 0, sizeof (sa));
  sa.sa_handler = linkem_on_signal;
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  /* Wake-ups to the microsecond: the default slack is 50 us. */
  (void)prctl (PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

  for (int i = 0; i < 2; i++)
    {
      fds[i] = linkem_open (ifs[i]);
      if (fds[i] < 0)
        goto out;
    }
  for (int i = 0; i < 2; i++)
    {
      struct linkem_dir *d = &dirs[i];

      d->name = i == 0 ? "a->b" : "b->a";
      d->in_fd = fds[i];
      d->out_fd = fds[1 - i];
      d->nslots = cfg.frames;
      /* Independent streams per direction, both from the one seed. */
      d->rng = cfg.seed ^ (i ? 0x5bd1e9955bd1e995ull : 0);
      d->jitter_rng = cfg.seed ^ (i ? 0x9e3779b97f4a7c15ull : 0x2545f4914f6cdd1dull);
      d->ring = calloc (cfg.frames, sizeof (*d->ring));
      if (!d->ring)
        {
          fprintf (stderr, "linkem: cannot allocate %u frame slots\n", cfg.frames);
          goto out;
        }
    }
  fprintf (stderr,
           "linkem: ready: %s <-> %s delay %" PRIu64 " us jitter %" PRIu64
           " us loss %u ppm rate %" PRIu64
           " bit/s queue %" PRIu64 " bytes seed %" PRIu64 " frames %u\n",
           ifs[0], ifs[1], cfg.delay_ns / 1000, cfg.jitter_ns / 1000, cfg.loss_ppm, cfg.rate_bps,
           cfg.queue_bytes, cfg.seed, cfg.frames);

  while (!linkem_stop)
    {
      struct pollfd pfd[2]
          = { { .fd = fds[0], .events = POLLIN }, { .fd = fds[1], .events = POLLIN } };
      struct timespec ts, *tsp = NULL;
      uint64_t now = linkem_now_ns (), next = UINT64_MAX;
      int n;

      for (int i = 0; i < 2; i++)
        {
          linkem_send_due (&dirs[i], now);
          if (dirs[i].count && dirs[i].ring[dirs[i].head].due_ns < next)
            next = dirs[i].ring[dirs[i].head].due_ns;
        }
      if (next != UINT64_MAX)
        {
          uint64_t wait = next > now ? next - now : 0;

          ts.tv_sec = (time_t)(wait / NSEC_PER_SEC);
          ts.tv_nsec = (long)(wait % NSEC_PER_SEC);
          tsp = &ts;
        }
      n = ppoll (pfd, 2, tsp, &empty);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          fprintf (stderr, "linkem: poll: %s\n", strerror (errno));
          goto out;
        }
      for (int i = 0; i < 2; i++)
        {
          if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL))
            {
              fprintf (stderr, "linkem: %s: socket error (interface gone?)\n", ifs[i]);
              goto out;
            }
          if (pfd[i].revents & POLLIN)
            linkem_receive (&dirs[i], &cfg);
        }
    }
  rc = 0;
out:
  for (int i = 0; i < 2; i++)
    {
      if (dirs[i].name)
        linkem_report (&dirs[i]);
      free (dirs[i].ring);
      if (fds[i] >= 0)
        close (fds[i]);
    }
  return rc;
}
