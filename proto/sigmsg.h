/* Signaling messages (JSON), exchanged through p2ptun-signal. See proto/PROTOCOL.md.
 *
 *   {"v":1,"type":"offer","session":"<32 hex>","ufrag":"...","pwd":"..."}
 *   {"v":1,"type":"answer","session":"...","ufrag":"...","pwd":"..."}
 *   {"v":1,"type":"candidate","session":"...","candidate":"candidate:1 1 UDP ..."}
 *   {"v":1,"type":"end-of-candidates","session":"..."}
 *   {"v":1,"type":"bye","session":"...","reason":"not-trusted","text":"..."}
 *   {"v":1,"type":"restart","session":"...","generation":2}
 *
 * "from" (a peer-id) is set by the server on delivery, never trusted from a
 * sender. "generation" (optional, 0 when absent) numbers the ICE path the
 * message belongs to, so that a message of another path is told apart. Every
 * parser validates strictly and bounds every string. */
#pragma once

#include <glib.h>

#define SIGMSG_VERSION 1
#define SIGMSG_SESSION_LEN 32
#define SIGMSG_MAX_JSON (16 * 1024)    /* one message */
#define SIGMSG_MAX_BATCH_JSON (1024 * 1024) /* a delivery of many */
#define SIGMSG_MAX_BATCH 64
#define SIGMSG_UFRAG_MAX 256 /* RFC 8445 section 5.3: ufrag 4..256, pwd 22..256 */
#define SIGMSG_CANDIDATE_MAX 512
#define SIGMSG_REASON_MAX 64
#define SIGMSG_TEXT_MAX 256

#define SIGMSG_ERROR (sigmsg_error_quark ())
GQuark sigmsg_error_quark (void);
typedef enum
{
  SIGMSG_ERROR_INVALID, /* not JSON, wrong shape, bad or missing field */
  SIGMSG_ERROR_VERSION, /* a version we do not speak */
  SIGMSG_ERROR_TOO_LARGE,
} SigmsgError;

typedef enum
{
  SIGMSG_OFFER,
  SIGMSG_ANSWER,
  SIGMSG_CANDIDATE,
  SIGMSG_END_OF_CANDIDATES,
  SIGMSG_BYE,
  SIGMSG_RESTART,
} SigmsgType;

typedef struct
{
  SigmsgType type;
  char session[SIGMSG_SESSION_LEN + 1]; /* lowercase hex */
  char from[53];                        /* "" unless set by the server */
  guint32 generation;                   /* the path (ICE generation); 0: the first */
  char *ufrag;                          /* offer, answer */
  char *pwd;                            /* offer, answer */
  char *candidate;                      /* candidate: "candidate:..." SDP attribute value */
  char *reason;                         /* bye: a token such as "not-trusted" */
  char *text;                           /* bye: optional human-readable text */
} Sigmsg;

Sigmsg *sigmsg_new (SigmsgType type, const char *session);
void sigmsg_free (Sigmsg *msg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Sigmsg, sigmsg_free)

const char *sigmsg_type_to_string (SigmsgType type);

/* One message, as POSTed by an agent. A "from" member is accepted only when
 * @allow_from (messages delivered by the server); it must be a valid peer-id. */
Sigmsg *sigmsg_parse (const char *json, gsize len, gboolean allow_from, GError **error);

/* Serialises @msg (with "from" only when set). Returns a NUL-terminated string. */
char *sigmsg_to_json (const Sigmsg *msg, gsize *len);

/* A delivery from the server: {"messages":[...]} with at most SIGMSG_MAX_BATCH
 * messages, each with "from". Returns an array of Sigmsg (owned). */
GPtrArray *sigmsg_parse_batch (const char *json, gsize len, GError **error);

/* Builds {"messages":[...]} from Sigmsg pointers. */
char *sigmsg_batch_to_json (Sigmsg *const *msgs, guint n, gsize *len);

/* ICE servers, as the signaling server hands them out:
 *   {"stun":["host:port", ...],
 *    "turn":[{"uri":"turn:host:port?transport=udp","username":"...","password":"..."},
 *            {"uri":"turns:host:port","username":"...","password":"...","pin":"sha256//..."}]}
 * At most 8 of each. Hosts are names or addresses ([v6]:port for IPv6). */
#define SIGMSG_MAX_ICE_SERVERS 8

typedef struct
{
  char *uri;
  char *username;
  char *password;
  char *pin; /* NULL, or for turns: the relay certificate's key pin (below) */
} SigmsgTurnServer;

/* A relay's TLS key pin: "sha256//" and the base64 of the SHA-256 of its
 * certificate's SubjectPublicKeyInfo (curl's format). */
#define SIGMSG_PIN_PREFIX "sha256//"
gboolean sigmsg_pin_is_valid (const char *pin);

typedef struct
{
  GPtrArray *stun; /* char* "host:port" */
  GPtrArray *turn; /* SigmsgTurnServer* */
} SigmsgIceServers;

SigmsgIceServers *sigmsg_ice_servers_parse (const char *json, gsize len, GError **error);
char *sigmsg_ice_servers_to_json (const SigmsgIceServers *servers, gsize *len);
SigmsgIceServers *sigmsg_ice_servers_new (void);
void sigmsg_ice_servers_free (SigmsgIceServers *servers);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SigmsgIceServers, sigmsg_ice_servers_free)

/* Strict "host:port" split; port 1..65535; host a DNS name or an IPv4/IPv6
 * address (IPv6 in brackets). Returns FALSE on anything else. */
gboolean sigmsg_split_host_port (const char *s, char **host, guint16 *port);

/* Added by the proto owner: a strict split of a TURN URI (RFC 7065) as found in
 * SigmsgTurnServer.uri: "turn:HOST:PORT" (UDP), "turn:HOST:PORT?transport=udp",
 * "turn:HOST:PORT?transport=tcp", "turns:HOST:PORT" or
 * "turns:HOST:PORT?transport=tcp" (TLS). HOST:PORT as for
 * sigmsg_split_host_port(); the port is required. Any out parameter may be NULL;
 * *host is newly allocated. Returns FALSE on anything else. */
typedef enum
{
  SIGMSG_TURN_UDP,
  SIGMSG_TURN_TCP,
  SIGMSG_TURN_TLS,
} SigmsgTurnTransport;

gboolean sigmsg_turn_uri_split (const char *uri, char **host, guint16 *port,
                                SigmsgTurnTransport *transport);
