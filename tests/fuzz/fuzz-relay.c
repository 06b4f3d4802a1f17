/* libFuzzer target: the relay's protocol core (relay_server_process) and the
 * STUN codec.
 *
 * Each input is a sequence of datagrams, each as [source][length: 2 bytes,
 * big-endian][bytes]; source bit 0 picks the client listener (0) or the
 * relayed socket of the allocation (1, from the permitted peer). Every
 * input starts from a fresh server on which the harness has already made an
 * authenticated allocation, a permission and channel 0x4001 for the peer
 * 198.51.100.7:9000, so that ChannelData, Send indications and peer data
 * reach the code behind them. Seeds: relay/make-fuzz-corpus.py. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "server.h"
#include "stun.h"

#define FUZZ_NOW 1700000000
#define FUZZ_SECRET "fuzz-secret"
#define FUZZ_REALM "fuzz.realm"
#define FUZZ_USER "1800000000:fuzz"

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
h_send (void *user, void *handle, const struct stun_addr *to, const uint8_t *buf,
        size_t len)
{
  struct harness *h = user;
  struct stun_msg m;
  if (handle != NULL || stun_parse (buf, len, &m) != STUN_OK)
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

static const struct stun_addr client
    = { .family = 4, .port = 40000, .ip = { 198, 51, 100, 1 } };
static const struct stun_addr peer
    = { .family = 4, .port = 9000, .ip = { 198, 51, 100, 7 } };

static void
request (RelayServer *s, struct harness *h, uint16_t method, uint8_t seq, gboolean auth)
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
  struct relay_source src = { RELAY_TRANSPORT_UDP, NULL };
  relay_server_process (s, FUZZ_NOW, &src, &client, buf, n);
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
  struct relay_io io = { h_open, h_close, h_send, &h };
  RelayServer *s
      = relay_server_new (&c, &io, (const uint8_t *)FUZZ_SECRET, strlen (FUZZ_SECRET));

  request (s, &h, STUN_METHOD_ALLOCATE, 1, FALSE);
  request (s, &h, STUN_METHOD_ALLOCATE, 2, TRUE);
  request (s, &h, STUN_METHOD_CREATE_PERMISSION, 3, TRUE);
  request (s, &h, STUN_METHOD_CHANNEL_BIND, 4, TRUE);
  if (relay_server_n_allocations (s) != 1 || h.last_code != 0)
    abort ();

  size_t off = 0;
  while (size - off >= 3)
    {
      uint8_t which = data[off];
      size_t len = ((size_t)data[off + 1] << 8) | data[off + 2];
      off += 3;
      if (len > size - off)
        len = size - off;
      /* Each datagram in a buffer of its own size, so ASan sees overreads. */
      uint8_t *dgram = malloc (len > 0 ? len : 1);
      if (dgram == NULL)
        abort ();
      memcpy (dgram, data + off, len);
      struct relay_source src
          = { RELAY_TRANSPORT_UDP, (which & 1) ? (void *)(uintptr_t)1 : NULL };
      relay_server_process (s, FUZZ_NOW + (which >> 4), &src,
                            (which & 1) ? &peer : &client, dgram, len);
      free (dgram);
      off += len;
    }
  relay_server_expire (s, FUZZ_NOW + 100000);
  if (relay_server_n_allocations (s) != 0)
    abort ();
  relay_server_free (s);
  if (h.n_open != h.n_close)
    abort ();
  return 0;
}
