/* libp2ptun: a peer-to-peer tunnel to a peer named by the hash of its key.
 *
 * A node finds its peers through a p2ptun-signal server, reaches them over
 * ICE (directly, or through a TURN relay), authenticates them with DTLS
 * against their peer-id, and carries streams and datagrams to the services
 * they expose.
 *
 * The rules of the house:
 * - Everything runs on the GMainContext given to p2ptun_node_new(): call the
 *   library from the thread that runs that context (from another thread, go
 *   through g_main_context_invoke()). Nothing runs on the global default
 *   context unless that is the one given.
 * - The library starts no thread of its own. Threads an embedder will see
 *   all the same: libcurl's resolver (one per name lookup of the signaling
 *   server), GIO's resolver pool (names of exposed services), and GLib's
 *   worker thread.
 * - No callback is ever called from inside a p2ptun_*() call: events,
 *   datagrams and accepted streams are queued and dispatched from the
 *   context. A callback may call back into the library, and may free the
 *   object that called it.
 * - After g_object_unref() drops a node's last reference, no callback of it
 *   runs again.
 * - Errors are GErrors of P2PTUN_ERROR (or G_IO_ERROR for local sockets).
 * - The library logs at debug level at most, in the "p2ptun" domain;
 *   everything else reaches the app as an event.
 */
#pragma once

#include <gio/gio.h>

#include <p2ptun/p2ptun-version.h>

G_BEGIN_DECLS

#define P2PTUN_ERROR (p2ptun_error_quark ())
/**
 * p2ptun_error_quark:
 *
 * The error domain of libp2ptun.
 *
 * Returns: the quark of %P2PTUN_ERROR
 */
GQuark p2ptun_error_quark (void);

/**
 * P2ptunError:
 * @P2PTUN_ERROR_INVALID: an argument or a configuration value is wrong
 * @P2PTUN_ERROR_SIGNALING: the signaling server cannot be used
 * @P2PTUN_ERROR_NO_TUNNEL: there is no tunnel up to that peer
 * @P2PTUN_ERROR_REFUSED: the peer refused (the tunnel, a stream, a flow)
 * @P2PTUN_ERROR_NOT_TRUSTED: the peer-id is not trusted
 * @P2PTUN_ERROR_NO_PATH: ICE found no working path to the peer
 * @P2PTUN_ERROR_PEER_MISMATCH: the peer's key is not the peer-id
 * @P2PTUN_ERROR_CLOSED: the peer ended the tunnel
 * @P2PTUN_ERROR_TIMEOUT: the peer stopped answering
 * @P2PTUN_ERROR_LIMIT: a limit was reached (streams, tunnels)
 * @P2PTUN_ERROR_FAILED: anything else
 * @P2PTUN_ERROR_NOT_ENROLLED: the signaling server does not know this
 *   agent's peer-id (enroll it: p2ptun_enroll_async())
 * @P2PTUN_ERROR_REVOKED: the signaling server's operator revoked this
 *   agent's peer-id
 * @P2PTUN_ERROR_BAD_TOKEN: the signaling server does not accept the
 *   enrollment token (unknown, expired, used or cancelled)
 *
 * The error codes of %P2PTUN_ERROR.
 */
typedef enum
{
  P2PTUN_ERROR_INVALID,
  P2PTUN_ERROR_SIGNALING,
  P2PTUN_ERROR_NO_TUNNEL,
  P2PTUN_ERROR_REFUSED,
  P2PTUN_ERROR_NOT_TRUSTED,
  P2PTUN_ERROR_NO_PATH,
  P2PTUN_ERROR_PEER_MISMATCH,
  P2PTUN_ERROR_CLOSED,
  P2PTUN_ERROR_TIMEOUT,
  P2PTUN_ERROR_LIMIT,
  P2PTUN_ERROR_FAILED,
  P2PTUN_ERROR_NOT_ENROLLED,
  P2PTUN_ERROR_REVOKED,
  P2PTUN_ERROR_BAD_TOKEN,
} P2ptunError;

/**
 * p2ptun_version_string:
 *
 * The version of the library that runs.
 *
 * Returns: (transfer none): the version of the library that runs, such as
 *   "0.1.0" (P2PTUN_VERSION_STRING is the one compiled against)
 */
const char *p2ptun_version_string (void);

/* ---- identity ---- */

/**
 * P2ptunIdentity:
 *
 * An agent's key pair and self-signed certificate (identity.key and
 * identity.crt in a config directory). Its peer-id is the hash of its
 * public key: 52 characters of a-z and 2-7.
 */
typedef struct _P2ptunIdentity P2ptunIdentity;

#define P2PTUN_TYPE_IDENTITY (p2ptun_identity_get_type ())
GType p2ptun_identity_get_type (void);

/**
 * p2ptun_identity_load:
 * @config_dir: (nullable) (type filename): the directory; %NULL for
 *   $XDG_CONFIG_HOME/p2ptun
 * @error: return location for a #GError
 *
 * Loads the identity from @config_dir, creating the directory (mode 0700)
 * and a new identity in it when there is none.
 *
 * Returns: (transfer full) (nullable): the identity
 */
P2ptunIdentity *p2ptun_identity_load (const char *config_dir, GError **error);
/**
 * p2ptun_identity_default_dir:
 *
 * Where an identity lives when no directory is given.
 *
 * Returns: (transfer full) (type filename): $XDG_CONFIG_HOME/p2ptun
 */
char *p2ptun_identity_default_dir (void);
/**
 * p2ptun_identity_ref:
 * @identity: an identity
 *
 * Takes a reference.
 *
 * Returns: (transfer full): @identity
 */
P2ptunIdentity *p2ptun_identity_ref (P2ptunIdentity *identity);
/**
 * p2ptun_identity_unref:
 * @identity: an identity
 *
 * Drops a reference; the last one frees the identity.
 */
void p2ptun_identity_unref (P2ptunIdentity *identity);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (P2ptunIdentity, p2ptun_identity_unref)
/**
 * p2ptun_identity_get_peer_id:
 * @identity: an identity
 *
 * The identity's peer-id: the hash of its public key, what peers trust and
 * pair with.
 *
 * Returns: (transfer none): the peer-id
 */
const char *p2ptun_identity_get_peer_id (P2ptunIdentity *identity);
/**
 * p2ptun_peer_id_is_valid:
 * @text: (nullable): a string
 *
 * Checks the form of a peer-id: 52 characters of a-z and 2-7.
 *
 * Returns: whether @text is a peer-id
 */
gboolean p2ptun_peer_id_is_valid (const char *text);
/**
 * p2ptun_identity_use_certificate:
 * @identity: an identity
 * @path: (type filename): a PEM file: a certificate for the identity's key
 *   (signed by a CA, from the request of p2ptun_identity_make_csr()), then
 *   any chain certificates
 * @error: return location for a #GError
 *
 * Presents the certificate in @path to the signaling server instead of the
 * self-signed one, from the nodes made after this call on (a signaling
 * server with --client-ca admits it). The peer-id stays the hash of the
 * key; tunnels between agents still use the self-signed certificate.
 * p2ptun_identity_load() does this by itself with signed-cert.pem in the
 * config directory, when there is one.
 *
 * Returns: %FALSE (%P2PTUN_ERROR_INVALID) if @path cannot be read, is not
 *   PEM certificates, or its first certificate is for another key
 */
gboolean p2ptun_identity_use_certificate (P2ptunIdentity *identity, const char *path,
                                          GError **error);
/**
 * p2ptun_identity_make_csr:
 * @identity: an identity
 * @error: return location for a #GError
 *
 * A certificate signing request (PKCS#10) for the identity's key, for an
 * organisation's CA to sign: subject CN = the peer-id, signed with the key
 * over SHA-256, asking for a TLS client certificate.
 *
 * Returns: (transfer full) (nullable): the request in PEM
 */
char *p2ptun_identity_make_csr (P2ptunIdentity *identity, GError **error);

/* ---- enrollment ---- */

/**
 * p2ptun_enroll_async:
 * @identity: the identity to enroll
 * @url: the signaling server, https://HOST[:PORT]
 * @pin: (nullable): "sha256//BASE64" of the server's public key; %NULL to
 *   verify its certificate with the system's CAs
 * @token: an enrollment token from the server's operator: "p2ptun1-" and 32
 *   characters of a-z and 2-7 (p2ptun-signal enroll prints one)
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the server has answered
 * @user_data: for @callback
 *
 * Presents @token once to the signaling server over mutual TLS, which then
 * admits @identity's peer-id. Runs on the thread-default main context. The
 * token is checked for its form first, never logged, and the copy the
 * request holds is wiped when it ends; the caller wipes its own.
 */
void p2ptun_enroll_async (P2ptunIdentity *identity, const char *url, const char *pin,
                          const char *token, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data);
/**
 * p2ptun_enroll_finish:
 * @result: the #GAsyncResult given to the callback
 * @already: (out) (optional): set to whether the server had enrolled the
 *   identity before
 * @error: return location for a #GError
 *
 * The end of p2ptun_enroll_async().
 *
 * Returns: %TRUE when the server admits the identity now; else %FALSE with
 *   %P2PTUN_ERROR_INVALID (the token's or an argument's form),
 *   %P2PTUN_ERROR_BAD_TOKEN, %P2PTUN_ERROR_REVOKED, %P2PTUN_ERROR_SIGNALING
 *   (the server unreachable or refusing otherwise, its message said), or
 *   %G_IO_ERROR_CANCELLED
 */
gboolean p2ptun_enroll_finish (GAsyncResult *result, gboolean *already, GError **error);

/* ---- configuration ---- */

/**
 * P2ptunServiceKind:
 * @P2PTUN_SERVICE_TCP: a byte stream service (TCP)
 * @P2PTUN_SERVICE_UDP: a datagram service (UDP)
 * @P2PTUN_SERVICE_RTP: RTP and RTCP, carried as SRTP and SRTCP (the media
 *   leg; RTCP on the port after the RTP port, or muxed with RTP); one per
 *   tunnel
 *
 * What a service carries.
 */
typedef enum
{
  P2PTUN_SERVICE_TCP,
  P2PTUN_SERVICE_UDP,
  P2PTUN_SERVICE_RTP,
} P2ptunServiceKind;

/**
 * P2ptunConfig:
 *
 * How a node reaches the world and what it lets in. It grows by setters;
 * a node copies what it needs when it is made.
 */
typedef struct _P2ptunConfig P2ptunConfig;

#define P2PTUN_TYPE_CONFIG (p2ptun_config_get_type ())
GType p2ptun_config_get_type (void);

/**
 * p2ptun_config_new:
 *
 * Makes a configuration with the defaults: no signaling server yet, nobody
 * trusted, no service, every interface's addresses, direct paths allowed, UDP
 * flows idle for 60 s.
 *
 * Returns: (transfer full): an empty configuration
 */
P2ptunConfig *p2ptun_config_new (void);
/**
 * p2ptun_config_ref:
 * @config: a configuration
 *
 * Takes a reference.
 *
 * Returns: (transfer full): @config
 */
P2ptunConfig *p2ptun_config_ref (P2ptunConfig *config);
/**
 * p2ptun_config_unref:
 * @config: a configuration
 *
 * Drops a reference; the last one frees the configuration.
 */
void p2ptun_config_unref (P2ptunConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (P2ptunConfig, p2ptun_config_unref)
/**
 * p2ptun_config_set_signal:
 * @config: a configuration
 * @url: the signaling server, https://HOST[:PORT]
 * @pin: (nullable): "sha256//BASE64" of the server's public key; %NULL to
 *   verify its certificate with the system's CAs
 *
 * The signaling server (required).
 */
void p2ptun_config_set_signal (P2ptunConfig *config, const char *url, const char *pin);
/**
 * p2ptun_config_add_trust:
 * @config: a configuration
 * @peer_id: a peer-id
 * @error: return location for a #GError
 *
 * Lets @peer_id open tunnels to the node, and streams to its services.
 *
 * Returns: %FALSE if @peer_id is not a peer-id
 */
gboolean p2ptun_config_add_trust (P2ptunConfig *config, const char *peer_id, GError **error);
/**
 * p2ptun_config_add_service:
 * @config: a configuration
 * @name: the service's name: letters, digits, '.', '_' or '-' (at most 64)
 * @host_port: where it is: HOST:PORT
 * @kind: TCP, UDP or RTP
 * @error: return location for a #GError
 *
 * Exposes a service to trusted peers (see also p2ptun_node_expose()).
 *
 * Returns: %FALSE if the name or address is wrong, or the name is taken
 */
gboolean p2ptun_config_add_service (P2ptunConfig *config, const char *name,
                                    const char *host_port, P2ptunServiceKind kind,
                                    GError **error);
/**
 * p2ptun_config_set_local_addresses:
 * @config: a configuration
 * @addresses: (nullable) (array zero-terminated=1): IP addresses; %NULL for
 *   every interface's
 *
 * Limits ICE host candidates to these addresses (an app that knows better
 * than the interface list, or must hand them in).
 */
void p2ptun_config_set_local_addresses (P2ptunConfig *config, const char *const *addresses);
/**
 * p2ptun_config_set_relay_only:
 * @config: a configuration
 * @relay_only: %TRUE to use relayed paths only
 *
 * Uses only paths through a relay (TURN), never a direct one.
 */
void p2ptun_config_set_relay_only (P2ptunConfig *config, gboolean relay_only);
/**
 * p2ptun_config_set_udp_timeout:
 * @config: a configuration
 * @seconds: 1 to 86400 (default 60)
 *
 * A UDP flow of a local forward ends after @seconds without a datagram.
 */
void p2ptun_config_set_udp_timeout (P2ptunConfig *config, guint seconds);
/**
 * p2ptun_config_set_hold:
 * @config: a configuration
 * @seconds: 1 to 86400 (default 600)
 *
 * How long the streams of a tunnel wait for a peer that stopped answering
 * (an outage, a roam): the tunnel restarts ICE meanwhile and the streams
 * carry on when a path works again. After @seconds the tunnel's streams
 * are reset and the tunnel ends; a tunnel the node paired reconnects.
 */
void p2ptun_config_set_hold (P2ptunConfig *config, guint seconds);
/**
 * p2ptun_config_set_give_up_after:
 * @config: a configuration
 * @seconds: 0 (the default: never) to 86400
 *
 * A peer paired with p2ptun_node_pair() whose tunnel ended is reconnected
 * with backoff; after @seconds without a tunnel the node gives up and says
 * so with %P2PTUN_EVENT_PEER_GONE.
 */
void p2ptun_config_set_give_up_after (P2ptunConfig *config, guint seconds);

/* ---- paths and status ---- */

/**
 * P2ptunPath:
 *
 * The path that a tunnel uses: the ICE candidate pair, whether it goes
 * through a relay, and how.
 */
typedef struct _P2ptunPath P2ptunPath;

#define P2PTUN_TYPE_PATH (p2ptun_path_get_type ())
GType p2ptun_path_get_type (void);
/**
 * p2ptun_path_copy:
 * @path: a path
 *
 * Copies a path.
 *
 * Returns: (transfer full): the copy
 */
P2ptunPath *p2ptun_path_copy (const P2ptunPath *path);
/**
 * p2ptun_path_free:
 * @path: a path
 *
 * Frees a copy of a path.
 */
void p2ptun_path_free (P2ptunPath *path);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (P2ptunPath, p2ptun_path_free)
/**
 * p2ptun_path_is_relayed:
 * @path: a path
 *
 * Whether the path goes through a TURN relay (ours or the peer's).
 *
 * Returns: %TRUE for a relayed path, %FALSE for a direct one
 */
gboolean p2ptun_path_is_relayed (const P2ptunPath *path);
/**
 * p2ptun_path_get_local_type:
 * @path: a path
 *
 * The ICE type of our candidate.
 *
 * Returns: (transfer none): host, srflx, prflx or relay
 */
const char *p2ptun_path_get_local_type (const P2ptunPath *path);
/**
 * p2ptun_path_get_local_address:
 * @path: a path
 *
 * Our candidate's address.
 *
 * Returns: (transfer none): ADDRESS:PORT ([ADDRESS]:PORT for IPv6)
 */
const char *p2ptun_path_get_local_address (const P2ptunPath *path);
/**
 * p2ptun_path_get_remote_type:
 * @path: a path
 *
 * The ICE type of the peer's candidate.
 *
 * Returns: (transfer none): host, srflx, prflx or relay
 */
const char *p2ptun_path_get_remote_type (const P2ptunPath *path);
/**
 * p2ptun_path_get_remote_address:
 * @path: a path
 *
 * The peer's candidate's address.
 *
 * Returns: (transfer none): ADDRESS:PORT ([ADDRESS]:PORT for IPv6)
 */
const char *p2ptun_path_get_remote_address (const P2ptunPath *path);
/**
 * p2ptun_path_get_transport:
 * @path: a path
 *
 * How the packets travel: UDP, or TCP or TLS to a relay.
 *
 * Returns: (transfer none): udp, tcp or tls (TURN over TLS)
 */
const char *p2ptun_path_get_transport (const P2ptunPath *path);
/**
 * p2ptun_path_to_string:
 * @path: a path
 *
 * The path as p2ptun-agent prints it.
 *
 * Returns: (transfer full): "direct (host 192.0.2.1:5000 -> srflx
 *   198.51.100.2:6000, udp)"
 */
char *p2ptun_path_to_string (const P2ptunPath *path);

/**
 * P2ptunStatus:
 *
 * A tunnel's numbers at one moment, copied out of the node.
 */
typedef struct _P2ptunStatus P2ptunStatus;

#define P2PTUN_TYPE_STATUS (p2ptun_status_get_type ())
GType p2ptun_status_get_type (void);
/**
 * p2ptun_status_copy:
 * @status: a status
 *
 * Copies a status.
 *
 * Returns: (transfer full): the copy
 */
P2ptunStatus *p2ptun_status_copy (const P2ptunStatus *status);
/**
 * p2ptun_status_free:
 * @status: a status
 *
 * Frees a status.
 */
void p2ptun_status_free (P2ptunStatus *status);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (P2ptunStatus, p2ptun_status_free)
/**
 * p2ptun_status_get_peer_id:
 * @status: a status
 *
 * The peer at the other end of the tunnel.
 *
 * Returns: (transfer none): the peer's peer-id
 */
const char *p2ptun_status_get_peer_id (const P2ptunStatus *status);
/**
 * p2ptun_status_is_up:
 * @status: a status
 *
 * Whether the tunnel was up: the peer authenticated, streams could open.
 *
 * Returns: %TRUE if it was up
 */
gboolean p2ptun_status_is_up (const P2ptunStatus *status);
/**
 * p2ptun_status_get_path:
 * @status: a status
 *
 * The path the tunnel used.
 *
 * Returns: (transfer none) (nullable): the path; %NULL before one is chosen
 */
const P2ptunPath *p2ptun_status_get_path (const P2ptunStatus *status);
/**
 * p2ptun_status_get_rtt_us:
 * @status: a status
 *
 * The last round-trip time measured through the tunnel.
 *
 * Returns: microseconds; 0 before the first measurement
 */
gint64 p2ptun_status_get_rtt_us (const P2ptunStatus *status);
/**
 * p2ptun_status_get_bytes_sent:
 * @status: a status
 *
 * Bytes of the tunnel's packets sent to the peer: what streams and datagrams
 * carried, with the transport's framing, without DTLS.
 *
 * Returns: the bytes sent
 */
guint64 p2ptun_status_get_bytes_sent (const P2ptunStatus *status);
/**
 * p2ptun_status_get_bytes_received:
 * @status: a status
 *
 * Bytes of the tunnel's packets received from the peer, counted as
 * p2ptun_status_get_bytes_sent() counts them.
 *
 * Returns: the bytes received
 */
guint64 p2ptun_status_get_bytes_received (const P2ptunStatus *status);
/**
 * p2ptun_status_get_streams:
 * @status: a status
 *
 * Streams and UDP flows open in the tunnel.
 *
 * Returns: how many are open
 */
guint p2ptun_status_get_streams (const P2ptunStatus *status);
/**
 * p2ptun_status_get_generation:
 * @status: a status
 *
 * The ICE generation of the path: 0 for the first, one more for each ICE
 * restart.
 *
 * Returns: the generation
 */
guint p2ptun_status_get_generation (const P2ptunStatus *status);
/**
 * p2ptun_status_get_restarts:
 * @status: a status
 *
 * ICE restarts the tunnel made or took part in.
 *
 * Returns: how many
 */
guint p2ptun_status_get_restarts (const P2ptunStatus *status);
/**
 * p2ptun_status_get_outages:
 * @status: a status
 *
 * Times the peer went quiet long enough for the path to be called dead.
 *
 * Returns: how many
 */
guint p2ptun_status_get_outages (const P2ptunStatus *status);
/**
 * p2ptun_status_get_reconnects:
 * @status: a status
 *
 * For a paired peer: how many tunnels came before this one (the peer went
 * away and came back).
 *
 * Returns: how many
 */
guint p2ptun_status_get_reconnects (const P2ptunStatus *status);
/**
 * p2ptun_status_get_packets_sent:
 * @status: a status
 *
 * The tunnel's packets sent to the peer, retransmissions included.
 *
 * Returns: how many
 */
guint64 p2ptun_status_get_packets_sent (const P2ptunStatus *status);
/**
 * p2ptun_status_get_packets_received:
 * @status: a status
 *
 * The tunnel's packets received from the peer.
 *
 * Returns: how many
 */
guint64 p2ptun_status_get_packets_received (const P2ptunStatus *status);
/**
 * p2ptun_status_get_packets_lost:
 * @status: a status
 *
 * The tunnel's packets sent and declared lost (not acknowledged in time):
 * the loss on the path from here to the peer.
 *
 * Returns: how many
 */
guint64 p2ptun_status_get_packets_lost (const P2ptunStatus *status);
/**
 * p2ptun_status_get_udp_flows:
 * @status: a status
 *
 * Of p2ptun_status_get_streams(), the UDP flows.
 *
 * Returns: how many are open
 */
guint p2ptun_status_get_udp_flows (const P2ptunStatus *status);
/**
 * p2ptun_status_get_uptime_us:
 * @status: a status
 *
 * How long the tunnel has been up.
 *
 * Returns: microseconds; 0 before it is up
 */
gint64 p2ptun_status_get_uptime_us (const P2ptunStatus *status);
/**
 * p2ptun_status_get_path_changes:
 * @status: a status
 *
 * Times ICE moved the tunnel to another pair of candidates after it was up.
 *
 * Returns: how many
 */
guint p2ptun_status_get_path_changes (const P2ptunStatus *status);
/**
 * p2ptun_status_to_json:
 * @status: a status
 *
 * The status as JSON, for a program or a log (docs/status.md documents the
 * fields, with a version).
 *
 * Returns: (transfer full): the status as one JSON object (docs/status.md
 *   documents its fields)
 */
char *p2ptun_status_to_json (const P2ptunStatus *status);

/* ---- events ---- */

/**
 * P2ptunEventKind:
 * @P2PTUN_EVENT_READY: the node reached the signaling server; tunnels can
 *   begin
 * @P2PTUN_EVENT_PEER_OFFLINE: the peer asked for is not connected to the
 *   signaling server; the node keeps offering
 * @P2PTUN_EVENT_PEER_UP: a tunnel to the peer is up (the path and the
 *   first round-trip time are known)
 * @P2PTUN_EVENT_PATH_CHANGED: the tunnel moved to another path
 * @P2PTUN_EVENT_PEER_SILENT: the peer has said nothing for a while; the
 *   tunnel waits (the event's seconds)
 * @P2PTUN_EVENT_PEER_ANSWERING: the peer speaks again after a silence
 * @P2PTUN_EVENT_PEER_GONE: the tunnel ended (the event's error says why)
 * @P2PTUN_EVENT_REFUSED: the node refused a peer a tunnel, a stream or a
 *   flow (the message says what and why; the error's code is
 *   %P2PTUN_ERROR_NOT_TRUSTED for a peer-id not trusted)
 * @P2PTUN_EVENT_NOTICE: for a person: where a local forward listens, a
 *   forwarded connection that failed, datagrams dropped, the signaling
 *   server reachable again (the message)
 * @P2PTUN_EVENT_STREAM_ENDED: a stream of p2ptun_node_connect_fds() or
 *   p2ptun_node_open_fd() ended; the error is %NULL for a clean end of
 *   both directions, set for a refusal or a cut
 * @P2PTUN_EVENT_WARNING: something went wrong that the node rides out
 *   (the signaling server unreachable: it retries); with an error of
 *   %P2PTUN_ERROR_NOT_ENROLLED or %P2PTUN_ERROR_REVOKED, the signaling
 *   server refuses this agent: the message is the server's, and the node
 *   asks again every 30 s, silently, until it is admitted (a NOTICE then
 *   says so)
 * @P2PTUN_EVENT_FATAL: the node cannot go on (the signaling server
 *   refuses it, a forward's socket failed); free it
 * @P2PTUN_EVENT_CLOSED: p2ptun_node_close() finished
 * @P2PTUN_EVENT_PATH_LOST: the path stopped working (or the network
 *   changed under it): the tunnel restarts ICE and its streams wait
 * @P2PTUN_EVENT_PEER_LOST: the tunnel to a paired peer ended (the peer
 *   restarted, or did not answer within the hold time); its streams were
 *   reset, the local forwards stay, and the node reconnects (the event's
 *   seconds say when)
 *
 * What happened.
 */
typedef enum
{
  P2PTUN_EVENT_READY,
  P2PTUN_EVENT_PEER_OFFLINE,
  P2PTUN_EVENT_PEER_UP,
  P2PTUN_EVENT_PATH_CHANGED,
  P2PTUN_EVENT_PEER_SILENT,
  P2PTUN_EVENT_PEER_ANSWERING,
  P2PTUN_EVENT_PEER_GONE,
  P2PTUN_EVENT_REFUSED,
  P2PTUN_EVENT_NOTICE,
  P2PTUN_EVENT_STREAM_ENDED,
  P2PTUN_EVENT_WARNING,
  P2PTUN_EVENT_FATAL,
  P2PTUN_EVENT_CLOSED,
  P2PTUN_EVENT_PATH_LOST,
  P2PTUN_EVENT_PEER_LOST,
} P2ptunEventKind;

/**
 * P2ptunEvent:
 *
 * One event, valid during the callback (copy it to keep it).
 */
typedef struct _P2ptunEvent P2ptunEvent;

#define P2PTUN_TYPE_EVENT (p2ptun_event_get_type ())
GType p2ptun_event_get_type (void);
/**
 * p2ptun_event_copy:
 * @event: an event
 *
 * Copies an event, to keep it after the callback.
 *
 * Returns: (transfer full): the copy
 */
P2ptunEvent *p2ptun_event_copy (const P2ptunEvent *event);
/**
 * p2ptun_event_free:
 * @event: an event
 *
 * Frees a copy of an event.
 */
void p2ptun_event_free (P2ptunEvent *event);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (P2ptunEvent, p2ptun_event_free)
/**
 * p2ptun_event_get_kind:
 * @event: an event
 *
 * What happened.
 *
 * Returns: the kind of event
 */
P2ptunEventKind p2ptun_event_get_kind (const P2ptunEvent *event);
/**
 * p2ptun_event_get_peer_id:
 * @event: an event
 *
 * The peer the event is about (none for READY, WARNING, FATAL, CLOSED and most
 * NOTICE events).
 *
 * Returns: (transfer none) (nullable): the peer it is about
 */
const char *p2ptun_event_get_peer_id (const P2ptunEvent *event);
/**
 * p2ptun_event_get_message:
 * @event: an event
 *
 * The event in words.
 *
 * Returns: (transfer none): a sentence for a person, such as "tunnel up: peer
 *   ..., path direct (...), rtt 1.2 ms" or "refused a stream from ...: service
 *   'x' is not exposed" (p2ptun-agent prints these)
 */
const char *p2ptun_event_get_message (const P2ptunEvent *event);
/**
 * p2ptun_event_get_path:
 * @event: an event
 *
 * The path, for PEER_UP and PATH_CHANGED.
 *
 * Returns: (transfer none) (nullable): the path of PEER_UP and PATH_CHANGED
 */
const P2ptunPath *p2ptun_event_get_path (const P2ptunEvent *event);
/**
 * p2ptun_event_get_rtt_us:
 * @event: an event
 *
 * The first round-trip time through the tunnel, for PEER_UP.
 *
 * Returns: microseconds; 0 for other events
 */
gint64 p2ptun_event_get_rtt_us (const P2ptunEvent *event);
/**
 * p2ptun_event_get_seconds:
 * @event: an event
 *
 * How long the peer has been silent, for PEER_SILENT and PEER_ANSWERING.
 *
 * Returns: seconds; 0 for other events
 */
double p2ptun_event_get_seconds (const P2ptunEvent *event);
/**
 * p2ptun_event_is_outgoing:
 * @event: an event
 *
 * Whether the tunnel is one that we asked for with p2ptun_node_pair(), rather
 * than one that the peer opened, for PEER_OFFLINE, PEER_UP, PATH_CHANGED, the
 * silences and PEER_GONE.
 *
 * Returns: %TRUE for our own tunnel
 */
gboolean p2ptun_event_is_outgoing (const P2ptunEvent *event);
/**
 * p2ptun_event_get_stream:
 * @event: an event
 *
 * The stream that ended, for STREAM_ENDED: the number that
 * p2ptun_node_connect_fds() or p2ptun_node_open_fd() gave.
 *
 * Returns: the stream's number; 0 for other events
 */
guint p2ptun_event_get_stream (const P2ptunEvent *event);
/**
 * p2ptun_event_get_error:
 * @event: an event
 *
 * Why, for PEER_GONE, STREAM_ENDED (%NULL for a clean end), REFUSED and FATAL,
 * and for a WARNING that the signaling server refuses this agent.
 *
 * Returns: (transfer none) (nullable): why (PEER_GONE, STREAM_ENDED, REFUSED,
 *   FATAL, some WARNINGs)
 */
const GError *p2ptun_event_get_error (const P2ptunEvent *event);

/* ---- the node ---- */

/**
 * P2ptunNode:
 *
 * A node: one identity reaching its peers through a signaling server, with
 * the tunnels, services and forwards of that identity. Its events reach the
 * function given to p2ptun_node_set_event_func().
 */
#define P2PTUN_TYPE_NODE (p2ptun_node_get_type ())
G_DECLARE_FINAL_TYPE (P2ptunNode, p2ptun_node, P2PTUN, NODE, GObject)

/**
 * P2ptunEventFunc:
 * @node: the node
 * @event: what happened
 * @user_data: the data given with the function
 *
 * Called from the node's context, never from inside a p2ptun_*() call.
 */
typedef void (*P2ptunEventFunc) (P2ptunNode *node, const P2ptunEvent *event,
                                 gpointer user_data);

/**
 * p2ptun_node_new:
 * @context: (nullable): the context everything runs on; %NULL for the
 *   thread-default context
 * @identity: the node's identity
 * @config: its configuration (copied)
 * @error: return location for a #GError
 *
 * Makes a node; p2ptun_node_start() sets it going.
 *
 * Returns: (transfer full) (nullable): the node
 */
P2ptunNode *p2ptun_node_new (GMainContext *context, P2ptunIdentity *identity,
                             P2ptunConfig *config, GError **error);
/**
 * p2ptun_node_set_event_func:
 * @node: a node
 * @func: (scope notified) (closure user_data) (destroy destroy): the function
 * @user_data: its data
 * @destroy: (nullable): frees @user_data when the function is replaced or
 *   the node is finalized
 *
 * Where events go. Events queued before it is set wait for it.
 */
void p2ptun_node_set_event_func (P2ptunNode *node, P2ptunEventFunc func, gpointer user_data,
                                 GDestroyNotify destroy);
/**
 * p2ptun_node_start:
 * @node: a node
 *
 * Connects to the signaling server: READY follows, or FATAL.
 */
void p2ptun_node_start (P2ptunNode *node);
/**
 * p2ptun_node_pair:
 * @node: a node
 * @peer_id: the peer
 * @error: return location for a #GError
 *
 * Opens a tunnel to @peer_id (once the node is READY; before, when it is).
 * PEER_UP follows, or PEER_GONE. The peer is trusted for that tunnel.
 *
 * Returns: %FALSE if @peer_id is not a peer-id or is our own
 */
gboolean p2ptun_node_pair (P2ptunNode *node, const char *peer_id, GError **error);
/**
 * p2ptun_node_forward:
 * @node: a node
 * @peer_id: the peer (p2ptun_node_pair() first)
 * @kind: TCP (what `pair -L` does), UDP (`pair -U`) or RTP (`pair -M`)
 * @spec: [BIND:]PORT:SERVICE
 * @error: return location for a #GError
 *
 * Listens on BIND:PORT (BIND defaults to 127.0.0.1; PORT from 1 to 65535)
 * and carries each connection, or each UDP client's flow, to the peer's
 * SERVICE once the tunnel is up. FORWARDING says where it listens. RTP binds
 * PORT and PORT+1 (RTCP) and carries what arrives there as SRTP, the
 * tunnel's one media leg.
 *
 * Returns: %FALSE if @spec is wrong or the port cannot be bound
 */
gboolean p2ptun_node_forward (P2ptunNode *node, const char *peer_id, P2ptunServiceKind kind,
                              const char *spec, GError **error);
/**
 * p2ptun_node_connect_fds:
 * @node: a node
 * @peer_id: a peer with a tunnel up
 * @service: the name of one of its TCP services
 * @in_fd: bytes to send are read from it (taken: the node closes it)
 * @out_fd: bytes received are written to it (taken; may be @in_fd)
 * @error: return location for a #GError
 *
 * Opens a stream to @service, carried to and from the descriptors. How it
 * ended comes as STREAM_ENDED with the returned number: a descriptor cannot
 * carry a reset.
 *
 * Returns: the stream's number (> 0), 0 on error
 */
guint p2ptun_node_connect_fds (P2ptunNode *node, const char *peer_id, const char *service,
                               int in_fd, int out_fd, GError **error);
/**
 * p2ptun_node_open_fd:
 * @node: a node
 * @peer_id: a peer with a tunnel up
 * @service: the name of one of its TCP services
 * @stream: (out) (optional): the stream's number for STREAM_ENDED
 * @error: return location for a #GError
 *
 * Opens a stream to @service as one end of a socket pair: read, write,
 * poll, shutdown(SHUT_WR) and close it as a socket.
 *
 * Returns: a file descriptor that the caller owns, -1 on error
 */
int p2ptun_node_open_fd (P2ptunNode *node, const char *peer_id, const char *service,
                         guint *stream, GError **error);

/**
 * P2ptunAcceptFunc:
 * @node: the node
 * @peer_id: the peer that opened the stream
 * @fd: one end of a socket pair that carries the stream (the callee owns it)
 * @user_data: the data given with the function
 *
 * A trusted peer opened a stream to an in-process service.
 */
typedef void (*P2ptunAcceptFunc) (P2ptunNode *node, const char *peer_id, int fd,
                                  gpointer user_data);
/**
 * p2ptun_node_expose:
 * @node: a node
 * @name: the service's name
 * @func: (scope notified) (closure user_data) (destroy destroy): called
 *   for each stream
 * @user_data: its data
 * @destroy: (nullable): frees @user_data with the node
 * @error: return location for a #GError
 *
 * Exposes an in-process TCP-like service to trusted peers.
 *
 * Returns: %FALSE if the name is wrong or taken
 */
gboolean p2ptun_node_expose (P2ptunNode *node, const char *name, P2ptunAcceptFunc func,
                             gpointer user_data, GDestroyNotify destroy, GError **error);

/**
 * P2ptunFlow:
 *
 * A UDP flow to a peer's UDP service: datagrams keep their boundaries.
 */
#define P2PTUN_TYPE_FLOW (p2ptun_flow_get_type ())
G_DECLARE_FINAL_TYPE (P2ptunFlow, p2ptun_flow, P2PTUN, FLOW, GObject)

/**
 * P2ptunDatagramFunc:
 * @flow: the flow
 * @datagram: one datagram from the service
 * @user_data: the data given with the function
 *
 * One datagram from the service, called from the node's context.
 */
typedef void (*P2ptunDatagramFunc) (P2ptunFlow *flow, GBytes *datagram, gpointer user_data);

/**
 * P2ptunSendResult:
 * @P2PTUN_SEND_OK: sent (it may still be lost, as UDP may)
 * @P2PTUN_SEND_TOO_BIG: larger than p2ptun_flow_get_max_datagram()
 * @P2PTUN_SEND_QUEUE_FULL: dropped, as a full link would
 * @P2PTUN_SEND_CLOSED: the flow is not open (yet, or any more)
 * @P2PTUN_SEND_INVALID: a media packet that is not RTP or RTCP, or a new SSRC
 *   beyond the 16 a media leg takes each way
 *
 * What became of a datagram given to p2ptun_flow_send(), or of a packet
 * given to p2ptun_media_send() (where %P2PTUN_SEND_QUEUE_FULL means over
 * 5,000 packets a second).
 */
typedef enum
{
  P2PTUN_SEND_OK,
  P2PTUN_SEND_TOO_BIG,
  P2PTUN_SEND_QUEUE_FULL,
  P2PTUN_SEND_CLOSED,
  P2PTUN_SEND_INVALID,
} P2ptunSendResult;

/**
 * p2ptun_node_open_flow:
 * @node: a node
 * @peer_id: a peer with a tunnel up
 * @service: the name of one of its UDP services
 * @func: (scope notified) (closure user_data) (destroy destroy): called for each datagram
 * @user_data: its data
 * @destroy: (nullable): frees @user_data with the flow
 * @error: return location for a #GError
 *
 * Opens a UDP flow to one of the peer's UDP services: each p2ptun_flow_send()
 * is one datagram to the service, and each datagram of the service's answer
 * comes to @func with its boundaries kept. Sends before the peer accepted the
 * flow return %P2PTUN_SEND_CLOSED; try again.
 *
 * Returns: (transfer full) (nullable): the flow; unref it to end it
 */
P2ptunFlow *p2ptun_node_open_flow (P2ptunNode *node, const char *peer_id, const char *service,
                                   P2ptunDatagramFunc func, gpointer user_data,
                                   GDestroyNotify destroy, GError **error);
/**
 * p2ptun_flow_send:
 * @flow: a flow
 * @data: (array length=len): the datagram
 * @len: its length
 *
 * Sends one datagram through the flow. Like UDP, it may be lost; it is never
 * split or merged with another.
 *
 * Returns: what became of it
 */
P2ptunSendResult p2ptun_flow_send (P2ptunFlow *flow, const guint8 *data, gsize len);
/**
 * p2ptun_flow_get_max_datagram:
 * @flow: a flow
 *
 * The largest datagram the flow carries now. It follows the path's MTU, as
 * discovered.
 *
 * Returns: bytes; 0 when the flow is closed
 */
gsize p2ptun_flow_get_max_datagram (P2ptunFlow *flow);

/**
 * P2ptunMedia:
 *
 * A tunnel's media leg to a peer's RTP service: RTP and RTCP packets carried
 * as SRTP and SRTCP, keyed by the tunnel's DTLS handshake (RFC 5764).
 */
#define P2PTUN_TYPE_MEDIA (p2ptun_media_get_type ())
G_DECLARE_FINAL_TYPE (P2ptunMedia, p2ptun_media, P2PTUN, MEDIA, GObject)

/**
 * P2ptunPacketFunc:
 * @media: the media leg
 * @packet: one RTP or RTCP packet from the peer, decrypted and authenticated
 * @user_data: the data given with the function
 *
 * One packet of the leg, called from the node's context.
 */
typedef void (*P2ptunPacketFunc) (P2ptunMedia *media, GBytes *packet, gpointer user_data);

/**
 * p2ptun_node_open_media:
 * @node: a node
 * @peer_id: a peer with a tunnel up
 * @service: the name of one of its RTP services
 * @func: (scope notified) (closure user_data) (destroy destroy): called for each packet
 * @user_data: its data
 * @destroy: (nullable): frees @user_data with the leg
 * @error: return location for a #GError
 *
 * Opens the tunnel's media leg (one per tunnel) to one of the peer's RTP
 * services (p2ptun_config_add_service() with %P2PTUN_SERVICE_RTP there):
 * each p2ptun_media_send() is one RTP or RTCP packet, protected as SRTP or
 * SRTCP, and each packet that comes back reaches @func decrypted. Sends
 * before the peer accepted the leg return %P2PTUN_SEND_CLOSED; try again.
 * The leg ends with the tunnel, and when the peer closes it.
 *
 * Returns: (transfer full) (nullable): the leg; unref it to end it
 */
P2ptunMedia *p2ptun_node_open_media (P2ptunNode *node, const char *peer_id, const char *service,
                                     P2ptunPacketFunc func, gpointer user_data,
                                     GDestroyNotify destroy, GError **error);
/**
 * p2ptun_media_send:
 * @media: a media leg
 * @packet: (array length=len): one RTP or RTCP packet
 * @len: its length
 *
 * Protects one packet and sends it on the tunnel's path. Like RTP over UDP,
 * it may be lost.
 *
 * Returns: what became of it
 */
P2ptunSendResult p2ptun_media_send (P2ptunMedia *media, const guint8 *packet, gsize len);

/**
 * p2ptun_node_get_peer_id:
 * @node: a node
 *
 * The node's own peer-id, which its peers trust and pair with.
 *
 * Returns: (transfer none): the node's own peer-id
 */
const char *p2ptun_node_get_peer_id (P2ptunNode *node);
/**
 * p2ptun_node_get_status:
 * @node: a node
 * @peer_id: a peer
 *
 * Copies the numbers of the tunnel to a peer; an up tunnel is preferred to one
 * on its way.
 *
 * Returns: (transfer full) (nullable): the numbers of the tunnel to @peer_id
 *   (the newest if there are several), %NULL if there is none
 */
P2ptunStatus *p2ptun_node_get_status (P2ptunNode *node, const char *peer_id);
/**
 * p2ptun_node_get_statuses:
 * @node: a node
 *
 * Copies the numbers of every tunnel of the node.
 *
 * Returns: (transfer full) (element-type P2ptunStatus): every tunnel's
 */
GPtrArray *p2ptun_node_get_statuses (P2ptunNode *node);
/**
 * p2ptun_node_network_changed:
 * @node: a node
 *
 * Tells the node that the device's network changed (an app that hears it
 * first, as from Android's ConnectivityManager): every tunnel pings its
 * peer at once, so that a path the change broke shows as PEER_SILENT within
 * seconds. (Moving a tunnel to a new path is not in this version.)
 */
void p2ptun_node_network_changed (P2ptunNode *node);
/**
 * p2ptun_node_close:
 * @node: a node
 *
 * Ends every tunnel in order (the peers are told) and gives back relay
 * allocations; CLOSED follows, within about two seconds. Then unref it.
 */
void p2ptun_node_close (P2ptunNode *node);

G_END_DECLS
