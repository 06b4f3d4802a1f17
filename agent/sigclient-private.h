/* What sigclient.c and sigclient-loop.c share: the client's state, and the
 * glue that runs libcurl's multi interface on the client's GMainContext.
 * Private to those two files. */
#pragma once

#include "sigclient.h"

#include <curl/curl.h>

typedef struct _SigReq SigReq; /* one request (sigclient.c) */

struct _Sigclient
{
  GMainContext *context;
  char *base_url; /* without trailing slash */
  char *pin;      /* NULL: verify with the system CAs */
  char *cert_path;
  char *key_path;
  char peer_id[PEERID_SIZE];

  CURLM *multi;         /* sigclient-loop.c makes it and ends it */
  GSource *timer;       /* libcurl's timeout */
  GHashTable *sockets;  /* fd -> SigSocket*, owned (a ref) */
  GHashTable *requests; /* SigReq* set, owned */

  /* the receive loop */
  gboolean polling;
  SigReq *poll;
  gint64 poll_started; /* monotonic, µs */
  GSource *retry;
  guint backoff_ms;
  int last_failure; /* kind of failure last logged (0: none), each logged once */
  SigclientMessageFunc on_message;
  SigclientFatalFunc on_fatal;
  gpointer user_data;
  SigclientNoticeFunc on_notice;
  gpointer notice_data;

  /* sigclient_repoll */
  gint64 repoll_at;      /* monotonic µs of the last new long-poll it made, 0: none */
  GSource *repoll_later; /* the one more that a burst of calls asks for */
  gint64 fresh_until;    /* requests started before this open a new connection */
  guint draining;        /* superseded long-polls still running (REQ_DRAIN) */

  /* re-entrancy: sigclient_free inside a dispatch defers the final free */
  guint busy;
  gboolean dead;
};

/* sigclient-loop.c */

/* Makes @c->multi and @c->sockets, with libcurl's socket and timer callbacks
 * on @c->context. FALSE when libcurl cannot be initialised. */
gboolean sigclient_loop_init (Sigclient *c);
/* Ends @c->multi (every request must have left it) and then the sources it
 * left behind. Safe on a half-built client, and twice. */
void sigclient_loop_clear (Sigclient *c);

/* sigclient.c */

/* Around every dispatch of ours: sigclient_free inside defers the final free
 * to sigclient_leave, which returns FALSE when the client is gone. */
void sigclient_enter (Sigclient *c);
gboolean sigclient_leave (Sigclient *c);
/* Collects finished transfers and runs their callbacks. Only from our
 * dispatch functions, with the client entered. */
void sigclient_process_done (Sigclient *c);
