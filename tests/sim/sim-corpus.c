/* Writes the seed corpus of the transport's fuzz target (tests/fuzz/
 * fuzz-xport.c): packets captured from simulated connections, and hostile
 * ones built by hand, in the target's record format (u8 flags: bit 0 the
 * endpoint, 1 = client, the rest milliseconds to wait; u16 length; packet).
 *
 *   sim-corpus DIR
 *
 * The corpus is checked in; run this again only when the wire changes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "xport.h"
#include "xport_wire.h"

#define MS 1000ull
#define SEC 1000000ull

struct capture
{
  uint8_t *buf;
  size_t len, cap, max_packets, n;
  uint64_t last;
};

static void
cap_put (struct capture *c, bool to_client, uint64_t wait_ms, const uint8_t *p,
         size_t len)
{
  if (c->len + 3 + len > c->cap)
    {
      c->cap = (c->len + 3 + len) * 2;
      c->buf = realloc (c->buf, c->cap);
      if (c->buf == NULL)
        abort ();
    }
  if (wait_ms > 127)
    wait_ms = 127;
  c->buf[c->len++] = (uint8_t)(wait_ms << 1 | (to_client ? 1 : 0));
  c->buf[c->len++] = (uint8_t)(len >> 8);
  c->buf[c->len++] = (uint8_t)len;
  memcpy (c->buf + c->len, p, len);
  c->len += len;
  c->n++;
}

static void
tap (struct sim_node *to, uint64_t now, const uint8_t *buf, size_t len, void *ctx)
{
  struct capture *c = ctx;
  if (c->n >= c->max_packets)
    return;
  cap_put (c, sim_node_is_client (to), (now - c->last) / MS, buf, len);
  c->last = now;
}

static void
write_file (const char *dir, const char *name, const struct capture *c)
{
  char path[4096];
  snprintf (path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen (path, "wb");
  if (f == NULL || fwrite (c->buf, 1, c->len, f) != c->len || fclose (f) != 0)
    {
      fprintf (stderr, "sim-corpus: %s: %s\n", path, strerror (errno));
      exit (1);
    }
}

/* With @probe, path MTU discovery is on (the capture then holds probes and
 * packets larger than 1163 bytes). */
static void
captured_run (const char *dir, const char *name, double loss, size_t max_packets,
              uint64_t bytes, bool probe)
{
  struct capture c = { .max_packets = max_packets };
  struct sim *sim = sim_new (17);
  struct sim_link_params p = {
    .delay_us = 10 * MS, .loss = loss, .rate_bps = 20000000, .queue_bytes = 100000
  };
  struct sim_link *ab = sim_link_new (sim, &p), *ba = sim_link_new (sim, &p);
  size_t ceiling = probe ? SIM_PACKET_CEILING : 0;
  struct xport_config ca = { .is_client = true, .max_packet_probe = ceiling },
                      cb = { .is_client = false, .max_packet_probe = ceiling };
  struct sim_flow f;
  sim_flow_init (&f, 2, bytes, 1);
  f.datagram_interval_us = 5 * MS;
  f.tx = sim_node_new (sim, &ca, ab, sim_flow_app, &f);
  f.rx = sim_node_new (sim, &cb, ba, sim_flow_app, &f);
  sim_connect (f.tx, f.rx);
  sim_set_tap (sim, tap, &c);
  sim_node_kick (f.tx);
  sim_run (sim, 10 * SEC, sim_flow_done, &f);
  write_file (dir, name, &c);
  sim_flow_clear (&f);
  sim_free (sim);
  free (c.buf);
}

/* One hand-made packet to the server. */
static void
one (const char *dir, const char *name, const uint8_t *p, size_t len)
{
  struct capture c = { 0 };
  cap_put (&c, false, 0, p, len);
  write_file (dir, name, &c);
  free (c.buf);
}

int
main (int argc, char **argv)
{
  if (argc != 2)
    {
      fprintf (stderr, "usage: %s DIR\n", argv[0]);
      return 2;
    }
  const char *dir = argv[1];
  captured_run (dir, "transfer-start", 0, 40, 100000, false);
  captured_run (dir, "transfer-lossy", 0.05, 60, 30000, false);
  captured_run (dir, "transfer-whole", 0, 400, 20000, false);
  captured_run (dir, "transfer-pmtu", 0, 200, 200000, true);

  uint8_t b[XPORT_MAX_PACKET];
  size_t o;
  struct xport_ack_range r[2] = { { 0, 3 }, { 0, 0 } };

  /* A client stream: data, FIN, a reset beyond it, a stop, credit. */
  o = 0;
  xport_packet_put_header (b, sizeof b, &o, 0);
  xport_frame_put_stream_header (b, sizeof b, &o, 1, 0, 5, true);
  memcpy (b + o, "hello", 5);
  o += 5;
  xport_frame_put_u3 (b, sizeof b, &o, XPORT_FRAME_RESET_STREAM, 3, 7, 100);
  xport_frame_put_u2 (b, sizeof b, &o, XPORT_FRAME_STOP_SENDING, 0, 9);
  xport_frame_put_u2 (b, sizeof b, &o, XPORT_FRAME_MAX_STREAM_DATA, 0, 1 << 20);
  xport_frame_put_u1 (b, sizeof b, &o, XPORT_FRAME_MAX_DATA, 1 << 24);
  xport_frame_put_u1 (b, sizeof b, &o, XPORT_FRAME_MAX_STREAMS, 1000);
  xport_frame_put_simple (b, sizeof b, &o, XPORT_FRAME_PING);
  xport_frame_put_datagram (b, sizeof b, &o, (const uint8_t *)"dgram", 5);
  one (dir, "frames-all", b, o);

  /* An ACK of packets never sent: a protocol violation. */
  o = 0;
  xport_packet_put_header (b, sizeof b, &o, 1);
  xport_frame_put_ack (b, sizeof b, &o, 10, r, 1);
  one (dir, "ack-unsent", b, o);

  /* Data far beyond the stream's credit, and beyond 2^62. */
  o = 0;
  xport_packet_put_header (b, sizeof b, &o, 2);
  xport_frame_put_stream_header (b, sizeof b, &o, 1, (1ull << 40), 1, false);
  b[o++] = 'x';
  one (dir, "stream-beyond-credit", b, o);
  static const uint8_t huge_offset[] = { 0x02, 0x03, 0x08, 0x01, 0xff, 0xff, 0xff,
                                         0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x41 };
  one (dir, "stream-offset-overflow", huge_offset, sizeof huge_offset);

  /* A stream id far beyond the stream limit; one of ours never opened. */
  o = 0;
  xport_packet_put_header (b, sizeof b, &o, 3);
  xport_frame_put_stream_header (b, sizeof b, &o, 1000001, 0, 0, true);
  one (dir, "stream-over-limit", b, o);
  o = 0;
  xport_packet_put_header (b, sizeof b, &o, 4);
  xport_frame_put_stream_header (b, sizeof b, &o, 40, 0, 0, true);
  one (dir, "stream-ours-unopened", b, o);

  /* Final size changed by a reset. */
  o = 0;
  xport_packet_put_header (b, sizeof b, &o, 5);
  xport_frame_put_stream_header (b, sizeof b, &o, 1, 0, 3, true);
  memcpy (b + o, "abc", 3);
  o += 3;
  xport_frame_put_u3 (b, sizeof b, &o, XPORT_FRAME_RESET_STREAM, 1, 0, 2);
  one (dir, "final-size-change", b, o);

  /* ACK ranges: the most a parser takes, and one going below packet 0. */
  o = 0;
  xport_packet_put_header (b, sizeof b, &o, 6);
  b[o++] = XPORT_FRAME_ACK;
  o += xport_varint_put (b + o, sizeof b - o, 1000);
  o += xport_varint_put (b + o, sizeof b - o, 0);
  o += xport_varint_put (b + o, sizeof b - o, 63);
  o += xport_varint_put (b + o, sizeof b - o, 0);
  for (int i = 0; i < 63; i++)
    {
      o += xport_varint_put (b + o, sizeof b - o, 0);
      o += xport_varint_put (b + o, sizeof b - o, 0);
    }
  one (dir, "ack-many-ranges", b, o);
  static const uint8_t ack_below_zero[]
      = { 0x02, 0x07, 0x02, 0x05, 0x00, 0x01, 0x00, 0x04, 0x00 };
  one (dir, "ack-below-zero", ack_below_zero, sizeof ack_below_zero);

  /* Close with a reason; with a reason that is not printable. */
  o = 0;
  xport_packet_put_header (b, sizeof b, &o, 8);
  xport_frame_put_close (b, sizeof b, &o, 300, "going away");
  one (dir, "close", b, o);
  static const uint8_t close_binary[] = { 0x02, 0x09, 0x1c, 0x00, 0x02, 0x00, 0x0a };
  one (dir, "close-binary-reason", close_binary, sizeof close_binary);

  /* Not a transport packet at all; truncated varints; unknown frame. */
  static const uint8_t v1_frame[] = { 0x01, 0x01, 0x00, 0x00, 0x00, 0x01, 'h', 'i' };
  one (dir, "tunnel-frame-v1", v1_frame, sizeof v1_frame);
  static const uint8_t truncated[] = { 0x02, 0xc0, 0x00 };
  one (dir, "truncated-pn", truncated, sizeof truncated);
  static const uint8_t unknown[] = { 0x02, 0x0a, 0x3f, 0x00 };
  one (dir, "unknown-frame", unknown, sizeof unknown);
  printf ("corpus written to %s\n", dir);
  return 0;
}
