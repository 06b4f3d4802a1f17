/* libFuzzer target: the relay's protocol core (relay_server_process), its
 * stream framing (stream.h) and the STUN codec.
 *
 * Each input is a sequence of records, each as [source][length: 2 bytes,
 * big-endian][bytes]. Source bit 1 set: the bytes are the next piece of a
 * client's TCP stream, cut into messages by struct relay_stream and fed to
 * the core; broken framing closes the connection (relay_server_conn_closed)
 * and the next piece starts a new one. Otherwise they are one datagram, and
 * bit 0 picks the client on the UDP listener (0) or a relayed socket (1,
 * from the permitted peer; bit 2 picks the TCP allocation's socket instead
 * of the UDP one's, bit 3 another port of the peer, one without a
 * channel). The high nibble advances the clock by that many seconds. Every
 * input starts from a fresh server on which the harness has already made
 * two authenticated allocations, over UDP and over the first TCP
 * connection, each with a permission and channel 0x4001 for the peer
 * 198.51.100.7:9000, so that ChannelData, Send indications and peer data
 * reach the code behind them. Seeds: relay/make-fuzz-corpus.py. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "server.h"
#include "stream.h"
#include "stun.h"

#define FUZZ_NOW 1700000000
#define FUZZ_SECRET "fuzz-secret"
#define FUZZ_REALM "fuzz.realm"
#define FUZZ_USER "1800000000:fuzz"
/* The harness's handles of stream connections. */
#define FUZZ_CONN(n) ((void *)(uintptr_t)(0x10000 + (n)))

struct harness
{
  unsigned n_open, n_close;
  char nonce[800];
  size_t nonce_len;
  unsigned last_code;
};

static void *
h_open (void *user, uint16_t port, struct stun_addr *relayed)
{
  struct harness *h = user;
  h->n_open++;
  relayed->family = 4;
  relayed->port = port != 0 ? port : (uint16_t)(50000 + h->n_open);
  relayed->ip[0] = 203, relayed->ip[1] = 0, relayed->ip[2] = 113, relayed->ip[3] = 1;
  return (void *)(uintptr_t)h->n_open;
}

static void
h_close (void *user, void *handle)
{
  struct harness *h = user;
  h->n_close++;
}

static void
h_reply (struct harness *h, const uint8_t *buf, size_t len)
{
  struct stun_msg m;
  if (stun_parse (buf, len, &m) != STUN_OK)
    return;
  const char *nonce;
  size_t nl;
  unsigned code;
  const char *reason;
  size_t rl;
  h->last_code = stun_msg_get_error_code (&m, &code, &reason, &rl) ? code : 0;
  if (stun_msg_get_string (&m, STUN_ATTR_NONCE, &nonce, &nl) && nl <= sizeof h->nonce)
    {
      memcpy (h->nonce, nonce, nl);
      h->nonce_len = nl;
    }
}

static void
h_send (void *user, void *handle, const struct stun_addr *to, const uint8_t *buf,
        size_t len)
{
  if (handle == NULL)
    h_reply (user, buf, len);
}

static void
h_conn_send (void *user, void *conn, const uint8_t *buf, size_t len)
{
  /* What goes on a stream must be whole, padded messages (a Data
   * indication may be larger than what the relay itself accepts). */
  size_t ml, fl;
  enum relay_frame_status r = relay_frame_check (buf, len, &ml, &fl);
  if ((r != RELAY_FRAME_OK && r != RELAY_FRAME_TOO_BIG) || fl != len)
    abort ();
  if (r == RELAY_FRAME_OK)
    h_reply (user, buf, ml);
}

static const struct stun_addr client
    = { .family = 4, .port = 40000, .ip = { 198, 51, 100, 1 } };
static const struct stun_addr peer
    = { .family = 4, .port = 9000, .ip = { 198, 51, 100, 7 } };
/* Permitted (same IP) but without a channel: its data goes in Data
 * indications. */
static const struct stun_addr peer_other_port
    = { .family = 4, .port = 9001, .ip = { 198, 51, 100, 7 } };

static void
request (RelayServer *s, struct harness *h, void *conn, uint16_t method, uint8_t seq,
         gboolean auth)
{
  uint8_t buf[512], txid[STUN_TXID_LEN] = { 0x66, seq };
  struct stun_builder b;
  stun_builder_init (&b, buf, sizeof buf, method, STUN_CLASS_REQUEST, txid);
  if (method == STUN_METHOD_ALLOCATE)
    {
      uint8_t t[4] = { RELAY_PROTO_UDP };
      stun_builder_add (&b, STUN_ATTR_REQUESTED_TRANSPORT, t, 4);
    }
  if (method == STUN_METHOD_CHANNEL_BIND)
    stun_builder_add_u32 (&b, STUN_ATTR_CHANNEL_NUMBER, 0x40010000u);
  if (method != STUN_METHOD_ALLOCATE)
    stun_builder_add_xor_addr (&b, STUN_ATTR_XOR_PEER_ADDRESS, &peer);
  if (auth)
    {
      char pw[29];
      uint8_t key[16];
      if (!relay_rest_password ((const uint8_t *)FUZZ_SECRET, strlen (FUZZ_SECRET),
                                FUZZ_USER, strlen (FUZZ_USER), pw)
          || !stun_long_term_key (FUZZ_USER, strlen (FUZZ_USER), FUZZ_REALM,
                                  strlen (FUZZ_REALM), pw, strlen (pw), key))
        abort ();
      stun_builder_add (&b, STUN_ATTR_USERNAME, FUZZ_USER, strlen (FUZZ_USER));
      stun_builder_add (&b, STUN_ATTR_REALM, FUZZ_REALM, strlen (FUZZ_REALM));
      stun_builder_add (&b, STUN_ATTR_NONCE, h->nonce, h->nonce_len);
      stun_builder_add_integrity (&b, key, sizeof key);
    }
  stun_builder_add_fingerprint (&b);
  size_t n = stun_builder_finish (&b);
  if (n == 0)
    abort ();
  struct relay_source src
      = { conn != NULL ? RELAY_TRANSPORT_TCP : RELAY_TRANSPORT_UDP, NULL, conn };
  relay_server_process (s, (gint64)FUZZ_NOW * G_USEC_PER_SEC, &src, &client, buf, n);
}

static void
setup_allocation (RelayServer *s, struct harness *h, void *conn, unsigned want)
{
  request (s, h, conn, STUN_METHOD_ALLOCATE, 1, FALSE);
  request (s, h, conn, STUN_METHOD_ALLOCATE, 2, TRUE);
  request (s, h, conn, STUN_METHOD_CREATE_PERMISSION, 3, TRUE);
  request (s, h, conn, STUN_METHOD_CHANNEL_BIND, 4, TRUE);
  if (relay_server_n_allocations (s) != want || h->last_code != 0)
    abort ();
}

static void
fuzz_codec (const uint8_t *data, size_t size)
{
  struct stun_msg m;
  if (stun_parse (data, size, &m) != STUN_OK)
    return;
  struct stun_addr a;
  uint32_t u;
  uint8_t proto;
  uint16_t ch;
  const char *str;
  size_t len;
  unsigned code;
  const uint8_t *d;
  for (size_t i = 0; i < m.n_attrs; i++)
    (void)stun_attr_get_xor_addr (&m, &m.attrs[i], &a);
  (void)stun_msg_get_u32 (&m, STUN_ATTR_LIFETIME, &u);
  (void)stun_msg_get_requested_transport (&m, &proto);
  (void)stun_msg_get_channel_number (&m, &ch);
  (void)stun_msg_get_string (&m, STUN_ATTR_USERNAME, &str, &len);
  (void)stun_msg_get_string (&m, STUN_ATTR_REALM, &str, &len);
  (void)stun_msg_get_string (&m, STUN_ATTR_NONCE, &str, &len);
  (void)stun_msg_get_error_code (&m, &code, &str, &len);
  (void)stun_msg_get_data (&m, &d, &len);
  (void)stun_msg_check_fingerprint (&m);
  (void)stun_msg_check_integrity (&m, (const uint8_t *)"key", 3);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_codec (data, size);

  struct harness h;
  memset (&h, 0, sizeof h);
  struct relay_config c;
  relay_config_init (&c);
  c.realm = g_strdup (FUZZ_REALM);
  c.max_permissions = 4;
  c.max_channels = 4;
  c.max_bps = 100000;
  struct relay_io io = { h_open, h_close, h_send, h_conn_send, &h };
  RelayServer *s
      = relay_server_new (&c, &io, (const uint8_t *)FUZZ_SECRET, strlen (FUZZ_SECRET));

  setup_allocation (s, &h, NULL, 1);
  unsigned n_conn = 1;
  setup_allocation (s, &h, FUZZ_CONN (n_conn), 2);
  struct relay_stream *stream = malloc (sizeof *stream);
  if (stream == NULL)
    abort ();
  relay_stream_init (stream);

  gint64 now = FUZZ_NOW;
  size_t off = 0;
  while (size - off >= 3)
    {
      uint8_t which = data[off];
      size_t len = ((size_t)data[off + 1] << 8) | data[off + 2];
      off += 3;
      if (len > size - off)
        len = size - off;
      now += which >> 4;
      gint64 now_us = now * G_USEC_PER_SEC + (gint64)(off % G_USEC_PER_SEC);
      if (which & 2)
        {
          /* A piece of the current TCP stream. */
          struct relay_source src = { RELAY_TRANSPORT_TCP, NULL, FUZZ_CONN (n_conn) };
          size_t done = 0;
          gboolean broken = FALSE;
          while (done < len && !broken)
            {
              size_t avail;
              uint8_t *space = relay_stream_space (stream, &avail);
              size_t n = MIN (avail, len - done);
              memcpy (space, data + off + done, n);
              relay_stream_commit (stream, n);
              done += n;
              const uint8_t *msg;
              size_t ml;
              enum relay_frame_status r;
              while ((r = relay_stream_next (stream, &msg, &ml)) == RELAY_FRAME_OK)
                {
                  /* Each message in a buffer of its own size, so ASan sees
                   * overreads. */
                  uint8_t *copy = malloc (ml > 0 ? ml : 1);
                  if (copy == NULL)
                    abort ();
                  memcpy (copy, msg, ml);
                  relay_server_process (s, now_us, &src, &client, copy, ml);
                  free (copy);
                }
              broken = r != RELAY_FRAME_INCOMPLETE;
              if (!broken && n == 0)
                abort (); /* a whole frame must always fit */
            }
          if (broken)
            {
              relay_server_conn_closed (s, FUZZ_CONN (n_conn));
              if (relay_server_conn_has_allocation (s, FUZZ_CONN (n_conn)))
                abort ();
              n_conn++;
              relay_stream_init (stream);
            }
        }
      else
        {
          /* Each datagram in a buffer of its own size, so ASan sees overreads. */
          uint8_t *dgram = malloc (len > 0 ? len : 1);
          if (dgram == NULL)
            abort ();
          memcpy (dgram, data + off, len);
          void *handle = (which & 4) ? (void *)(uintptr_t)2 : (void *)(uintptr_t)1;
          struct relay_source src
              = { RELAY_TRANSPORT_UDP, (which & 1) ? handle : NULL, NULL };
          const struct stun_addr *from = !(which & 1)  ? &client
                                         : (which & 8) ? &peer_other_port
                                                       : &peer;
          relay_server_process (s, now_us, &src, from, dgram, len);
          free (dgram);
        }
      off += len;
    }
  free (stream);
  relay_server_conn_closed (s, FUZZ_CONN (n_conn));
  relay_server_expire (s, (gint64)(now + 100000) * G_USEC_PER_SEC);
  if (relay_server_n_allocations (s) != 0)
    abort ();
  relay_server_free (s);
  if (h.n_open != h.n_close)
    abort ();
  return 0;
}
