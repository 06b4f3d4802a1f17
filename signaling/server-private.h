/* What the HTTPS shell of p2ptun-signal (server.c) shares with its
 * admission and enrollment part (server-access.c). Not a public interface. */
#pragma once

#include <libsoup/soup.h>

#include "accept.h"
#include "access.h"
#include "mailbox.h"
#include "metrics.h"
#include "peerid.h"
#include "ratelimit.h"
#include "server.h"
#include "sigmsg.h"

/* API.md: bodies over 16 KiB are refused; receives wait 0..30 s, 25 by default. */
#define SIGNAL_BODY_MAX SIGMSG_MAX_JSON
#define SIGNAL_WAIT_MAX 30
#define SIGNAL_WAIT_DEFAULT 25
/* Rate-limit buckets held at most per kind of key; a new client beyond this is
 * refused until old buckets have refilled. */
#define SIGNAL_RATE_KEYS_MAX 65536
#define SIGNAL_PRUNE_INTERVAL_S 1
/* Last-seen times reach access.json at most this late. */
#define SIGNAL_SAVE_INTERVAL_S 60
/* Enrollment tries per client address: a burst of 10, then two a second
 * (a token has 160 random bits; this keeps logs and disks calm). */
#define SIGNAL_ENROLL_RATE 2
#define SIGNAL_ENROLL_BURST 10
/* RFC 6585 section 4; libsoup 3.2 has no name for it. */
#define SIGNAL_STATUS_TOO_MANY_REQUESTS 429

#define PEERS_PREFIX "/v1/peers/"
#define MESSAGES_SUFFIX "/messages"

/* The API.md error code of an error answer (a static string), on its
 * message, for the metrics. */
#define ERROR_CODE_KEY "p2ptun-error-code"

/* Bytes of body received so far, on each message. */
#define BODY_SIZE_KEY "p2ptun-body-size"
/* A refused body is read and thrown away up to this much, so that the client
 * can read the 413; past it the connection is reset. */
#define SIGNAL_BODY_DISCARD_MAX (1024 * 1024)

/* One open long-poll: a paused GET of @peer's messages. */
typedef struct
{
  SignalServer *self;
  SoupServerMessage *msg; /* owned reference */
  char peer[PEERID_SIZE];
  GSource *timeout; /* owned: answers when the wait is over */
  GSource *watch;   /* owned: answers when the client goes away */
  gulong finished_id;
} Waiter;

struct _SignalServer
{
  GMainContext *ctx;
  SignalAccept *accept; /* the listening socket and TLS handshakes */
  SoupServer *soup;
  MailboxStore *mailboxes;
  RateLimiter *peer_limits; /* by the caller's peer-id */
  RateLimiter *addr_limits; /* by remote address, for requests without a certificate */
  char **stun;        /* "host:port" */
  char **turn;        /* TURN URIs */
  char *turn_secret;  /* never logged */
  guint turn_ttl;
  char *turn_pin;     /* for turns: relays */
  GHashTable *waiters; /* peer-id (in the Waiter) -> Waiter*, owned by hand */
  GSource *prune_timer;
  AccessStore *access;
  char *state_dir;      /* NULL: the access state is not saved */
  gboolean open;
  GTlsCertificate *client_ca;
  RateLimiter *enroll_limits; /* enrollment tries by remote address */
  gboolean access_dirty;      /* something not yet in access.json */
  GSource *save_timer;
  SignalMetrics *metrics;
};

/* A client CA signed the certificate of a connection (on its remote address). */
#define CA_ADMITS_KEY "p2ptun-ca-admits"

/* Answers, always JSON (API.md); codes and texts are our own constants. */
void signal_reply_json (SoupServerMessage *msg, guint status, char *json, gsize len);
void signal_reply_error (SoupServerMessage *msg, guint status, const char *code,
                         const char *text);
void signal_reply_literal (SoupServerMessage *msg, guint status, const char *json);
void signal_reply_too_large (SoupServerMessage *msg);
/* Ends a long-poll with a 403 @code (its peer was revoked). */
void signal_waiter_refuse (Waiter *w, const char *code, const char *text);

/* server-access.c. Whether @caller may use the server; notes it as seen. */
AccessVerdict signal_access_admit (SignalServer *self, SoupServerMessage *msg,
                                   const char *caller);
void signal_reply_not_admitted (SoupServerMessage *msg, AccessVerdict verdict,
                                const char *caller);
/* POST /v1/enroll. */
void signal_handle_enroll (SignalServer *self, SoupServerMessage *msg, const char *caller,
                           const char *remote);
/* Writes access.json if anything changed; FALSE (logged) when it cannot. */
gboolean signal_access_save (SignalServer *self);
/* The timer that saves last-seen times once a minute. */
gboolean signal_access_on_save_timer (gpointer data);
