/* Client of p2ptun-signal over HTTPS, on libcurl's multi interface driven by a
 * GMainContext: no call blocks the loop. The agent authenticates with its own
 * certificate (mutual TLS); the server is authenticated by a public-key pin
 * (sha256//BASE64), or by the system CAs when no pin is given. */
#pragma once

#include <gio/gio.h>

#include "identity.h"
#include "sigmsg.h"

#define SIGCLIENT_ERROR (sigclient_error_quark ())
GQuark sigclient_error_quark (void);
typedef enum
{
  SIGCLIENT_ERROR_UNREACHABLE,  /* DNS, connect or timeout */
  SIGCLIENT_ERROR_PIN_MISMATCH, /* the server's key is not the pinned one */
  SIGCLIENT_ERROR_TLS,          /* other TLS failure (certificate not trusted...) */
  SIGCLIENT_ERROR_HTTP,         /* the server answered 4xx/5xx; message is its text */
  SIGCLIENT_ERROR_PROTOCOL,     /* the server's answer is not what the protocol says */
  SIGCLIENT_ERROR_CANCELLED,
  /* 403s that name why (API.md); the message is the server's, made
   * printable and short */
  SIGCLIENT_ERROR_NOT_ENROLLED, /* the server does not know our peer-id */
  SIGCLIENT_ERROR_REVOKED,      /* its operator revoked our peer-id */
  SIGCLIENT_ERROR_BAD_TOKEN,    /* POST /v1/enroll: unknown, expired, used or cancelled */
  SIGCLIENT_ERROR_UNKNOWN_PEER, /* a message to a peer-id the server has not enrolled */
} SigclientError;

typedef struct _Sigclient Sigclient;

/* Called for each message delivered to us. @msg is borrowed. */
typedef void (*SigclientMessageFunc) (Sigclient *client, const Sigmsg *msg, gpointer user_data);
/* Called when receiving fails in a way that will not heal by retrying
 * (pin mismatch, authentication refused). Transient failures are retried with
 * backoff and reported once through the notice function. */
typedef void (*SigclientFatalFunc) (Sigclient *client, const GError *error, gpointer user_data);
/* Completion of sigclient_send: @online says whether the peer is connected to
 * the server now. @error is NULL on success. */
typedef void (*SigclientSendFunc) (Sigclient *client, gboolean online, const GError *error,
                                   gpointer user_data);
typedef void (*SigclientIceServersFunc) (Sigclient *client, SigmsgIceServers *servers,
                                         const GError *error, gpointer user_data);

/* @url is the server's base URL (https://host:port). @pin may be NULL.
 * @identity is borrowed and must outlive the client. */
Sigclient *sigclient_new (GMainContext *context, const char *url, const char *pin,
                          const Identity *identity, GError **error);
/* Cancels everything in flight; no callback runs after this. */
void sigclient_free (Sigclient *client);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Sigclient, sigclient_free)

/* Starts the long-poll loop that receives our messages until freed. */
/* The receive loop's troubles and recoveries, for a person ("signaling
 * server unreachable, retrying: ..."), told once per change. */
typedef void (*SigclientNoticeFunc) (Sigclient *client, gboolean trouble, const char *text,
                                     gpointer user_data);
/* Without one, they go to the debug log. */
void sigclient_set_notice_func (Sigclient *client, SigclientNoticeFunc on_notice,
                                gpointer user_data);
void sigclient_start (Sigclient *client, SigclientMessageFunc on_message,
                      SigclientFatalFunc on_fatal, gpointer user_data);

/* The network under the client changed (another network, a NAT that forgot
 * its mappings): the connections it has may be dead without a word. If the
 * receive loop runs, a new long-poll starts at once on a new connection, and
 * the old one is left to end by itself, only to deliver what the server may
 * already have written into it (sigclient.c says when a message can still be
 * lost). Requests started in the next 30 s open new connections too; sends in
 * flight go on. Cheap to call on every change: at most one new long-poll per
 * 500 ms, and calls within that interval make one more at its end. */
void sigclient_repoll (Sigclient *client);

/* POSTs @msg to @peer_id. @done may be NULL. */
void sigclient_send (Sigclient *client, const char *peer_id, const Sigmsg *msg,
                     SigclientSendFunc done, gpointer user_data);

/* Completion of sigclient_enroll: @already when the server knew us before.
 * @error is NULL on success. */
typedef void (*SigclientEnrollFunc) (Sigclient *client, gboolean already, const GError *error,
                                     gpointer user_data);
/* Presents the enrollment token @token (enrolltoken.h: its shape is checked
 * here; a malformed one fails with G_IO_ERROR_INVALID_ARGUMENT) to
 * POST /v1/enroll, once. The token is copied only into the request's body,
 * which is wiped when the request ends, and appears in no message. */
void sigclient_enroll (Sigclient *client, const char *token, SigclientEnrollFunc done,
                       gpointer user_data);

/* Fetches the ICE server list; @servers is owned by the callee (NULL on error). */
void sigclient_get_ice_servers (Sigclient *client, SigclientIceServersFunc done,
                                gpointer user_data);
