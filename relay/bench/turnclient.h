/* One TURN allocation's control exchange as a sans-IO state machine, for the
 * load generator (turnload.c): Allocate with TURN REST long-term credentials
 * (RFC 8656 section 7, RFC 8489 section 9.2), ChannelBind to one peer
 * (RFC 8656 section 11), and Refresh with LIFETIME 0 to release it. It never
 * touches a socket and takes the time as a parameter: the caller sends
 * tc->req when a function returns TURNCLIENT_SEND, feeds every datagram
 * that arrives to turnclient_input() and calls turnclient_tick() on time. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stun.h"

/* RFC 8489 section 6.2.1 retransmits from an RTO of 500 ms, 7 times; on
 * loopback the first answer takes well under a millisecond, so the
 * generator starts lower and gives up sooner (12.6 s in all). */
#define TURNCLIENT_RTO_MS 200
#define TURNCLIENT_MAX_SENDS 6
/* Stale nonces (438) and fresh nonces on 401 answered per transaction
 * before it fails: each costs the server nothing but a round trip. */
#define TURNCLIENT_MAX_NONCE_RETRIES 3
/* Largest request built: USERNAME, REALM and NONCE at their RFC limits
 * plus the fixed attributes. */
#define TURNCLIENT_MAX_REQUEST 2200
#define TURNCLIENT_PASSWORD_LEN 28 /* base64 of HMAC-SHA1 */

enum turnclient_state
{
  TURNCLIENT_IDLE,
  TURNCLIENT_ALLOCATING,
  TURNCLIENT_BINDING,
  TURNCLIENT_BOUND,
  TURNCLIENT_RELEASING,
  TURNCLIENT_RELEASED,
  TURNCLIENT_FAILED,
};

/* What the caller does next. */
enum turnclient_step
{
  TURNCLIENT_SEND, /* send req (req_len bytes) to the server */
  TURNCLIENT_WAIT, /* a request is outstanding; call turnclient_tick() */
  TURNCLIENT_DONE, /* BOUND, RELEASED or FAILED (see error) */
};

struct turnclient
{
  enum turnclient_state state;
  /* Credentials: username "EXPIRY:NAME", password from the REST secret. */
  char username[STUN_MAX_USERNAME_LEN + 1];
  size_t username_len;
  char password[TURNCLIENT_PASSWORD_LEN + 1];
  char realm[STUN_MAX_REALM_LEN + 1];
  size_t realm_len;
  char nonce[STUN_MAX_NONCE_LEN + 1];
  size_t nonce_len;
  uint8_t key[16]; /* long-term key, valid once realm is known */
  bool have_key;
  uint32_t lifetime; /* asked for in Allocate, seconds */
  struct stun_addr peer;
  uint16_t channel;
  struct stun_addr relayed; /* XOR-RELAYED-ADDRESS, once allocated */

  /* The outstanding request. */
  uint8_t txid[STUN_TXID_LEN];
  uint8_t req[TURNCLIENT_MAX_REQUEST];
  size_t req_len;
  int64_t sent_ms;
  unsigned sends;
  unsigned nonce_retries;

  char error[160]; /* why FAILED */
  /* FAILED on a 437 to Allocate: this 5-tuple holds an allocation the
   * client does not know (an earlier client on the same port, RFC 8656
   * section 7.3); a new socket may succeed (turnclient_restart). */
  bool mismatch;
};

/* Sets up tc for one allocation. secret is the REST shared secret; name the
 * NAME part of the username, valid until expiry (Unix seconds). channel is
 * 0x4000 to 0x4FFF (RFC 8656 section 12). False (error set) when the
 * arguments do not fit. */
bool turnclient_init (struct turnclient *tc, const uint8_t *secret, size_t secret_len,
                      const char *name, int64_t expiry, uint32_t lifetime,
                      const struct stun_addr *peer, uint16_t channel);
/* Clears the credentials (OPENSSL_cleanse). */
void turnclient_clear (struct turnclient *tc);

/* Back to IDLE after a mismatch, for an Allocate from a new socket. */
void turnclient_restart (struct turnclient *tc);

/* Starts an exchange: Allocate from IDLE, ChannelBind again from BOUND (it
 * refreshes the channel and its permission, RFC 8656 sections 9 and 11),
 * Refresh with LIFETIME 0 from BOUND (release). */
enum turnclient_step turnclient_allocate (struct turnclient *tc, int64_t now_ms);
enum turnclient_step turnclient_rebind (struct turnclient *tc, int64_t now_ms);
enum turnclient_step turnclient_release (struct turnclient *tc, int64_t now_ms);

/* A datagram from the server. Anything but the answer to the outstanding
 * request is ignored (TURNCLIENT_WAIT). */
enum turnclient_step turnclient_input (struct turnclient *tc, const uint8_t *buf,
                                       size_t len, int64_t now_ms);
/* Retransmits (TURNCLIENT_SEND) or gives up (TURNCLIENT_DONE, FAILED). */
enum turnclient_step turnclient_tick (struct turnclient *tc, int64_t now_ms);
/* Milliseconds from now_ms until turnclient_tick() has something to do. */
int64_t turnclient_next_ms (const struct turnclient *tc, int64_t now_ms);
