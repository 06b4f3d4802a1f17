/* libFuzzer target: the tunnel transport's connection input (proto/xport.h),
 * which parses every packet with xport_wire.c.
 *
 * The input is a sequence of records, each one packet from the peer:
 *
 *   u8 flags | u16 length (big-endian) | packet
 *
 * flags bit 0 picks the endpoint (0: the server, 1: the client), the other
 * bits advance the clock by that many milliseconds first. After every packet
 * both endpoints run as an application would: events drained, readable
 * streams read, writable streams written, packets sent (and dropped), timers
 * fired. Nothing may crash, leak or grow without bound. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "xport.h"

static void
run_app (struct xport_conn *c, uint64_t now)
{
  struct xport_event ev;
  uint8_t buf[4096];
  unsigned budget = 256;

  while (budget-- > 0 && xport_conn_poll_event (c, &ev))
    {
      bool fin;
      uint64_t code;
      switch (ev.type)
        {
        case XPORT_EVENT_STREAM_OPENED:
        case XPORT_EVENT_READABLE:
          for (int i = 0;
               i < 8
               && xport_stream_read (c, ev.stream_id, buf, sizeof buf, &fin, &code) > 0;
               i++)
            ;
          if (ev.stream_id % 3 == 0)
            xport_stream_write (c, ev.stream_id, buf, 100);
          if (ev.stream_id % 5 == 0)
            xport_stream_release (c, ev.stream_id);
          break;
        case XPORT_EVENT_WRITABLE:
          xport_stream_write (c, ev.stream_id, buf, sizeof buf);
          break;
        case XPORT_EVENT_DATAGRAM:
          while (xport_datagram_recv (c, buf, sizeof buf) >= 0)
            ;
          break;
        case XPORT_EVENT_CLOSED:
          break;
        }
    }
  for (int i = 0; i < 64 && xport_conn_send (c, now, buf, sizeof buf) > 0; i++)
    ;
  if (xport_conn_timeout (c) <= now)
    xport_conn_on_timeout (c, now);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct xport_config cs = { .is_client = false, .sent_packets = 256 };
  struct xport_config cc = { .is_client = true, .sent_packets = 256 };
  uint64_t now = 1000000;
  struct xport_conn *c[2] = { xport_conn_new (&cs, now), xport_conn_new (&cc, now) };
  if (c[0] == NULL || c[1] == NULL)
    abort ();

  /* Our own side has something going too, so that ACKs and credit from the
   * peer have something to act on. */
  uint64_t id;
  uint8_t junk[3000];
  memset (junk, 0x5a, sizeof junk);
  for (int k = 0; k < 2; k++)
    if (xport_stream_open (c[k], &id) == XPORT_OK)
      {
        xport_stream_write (c[k], id, junk, sizeof junk);
        xport_datagram_send (c[k], junk, 100);
        run_app (c[k], now);
      }

  size_t off = 0;
  while (size - off >= 3)
    {
      uint8_t flags = data[off];
      size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
      off += 3;
      if (len > size - off)
        len = size - off;
      now += (uint64_t)(flags >> 1) * 1000;
      struct xport_conn *x = c[flags & 1];
      xport_conn_receive (x, now, data + off, len);
      off += len;
      run_app (x, now);

      struct xport_stats st;
      xport_conn_stats (x, &st);
      /* Stream state stays within the limits the configuration gives. */
      if (st.streams > 2 * 128)
        abort ();
    }
  xport_conn_free (c[0]);
  xport_conn_free (c[1]);
  return 0;
}
