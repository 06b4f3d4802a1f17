/* libp2ptun's plain types: errors, version, identity, configuration, paths,
 * status snapshots and events. */
#include "p2ptun-private.h"

#include <json-glib/json-glib.h>

#include "csr.h"
#include "ctlmsg.h"
#include "peerid.h"
#include "sigclient.h"
#include "sigmsg.h"

/* A UDP flow's default idle time, and the longest allowed. */
#define CONFIG_UDP_TIMEOUT_DEFAULT_S 60
#define CONFIG_UDP_TIMEOUT_MAX_S 86400
#define CONFIG_HOLD_MAX_S 86400

G_DEFINE_QUARK (p2ptun-error-quark, p2ptun_error)

/* G_DEFINE_BOXED_TYPE's type check is not ISO C (-Wpedantic): the same,
 * spelled out. */
#define DEFINE_BOXED(TypeName, type_name, copy, free)                                            \
  GType type_name##_get_type (void)                                                               \
  {                                                                                               \
    static gsize type = 0;                                                                        \
    if (g_once_init_enter (&type))                                                                \
      g_once_init_leave (&type, g_boxed_type_register_static (g_intern_static_string (#TypeName), \
                                                              (GBoxedCopyFunc) (copy),            \
                                                              (GBoxedFreeFunc) (free)));          \
    return type;                                                                                  \
  }

const char *
p2ptun_version_string (void)
{
  return P2PTUN_VERSION_STRING;
}

gboolean
p2ptun_peer_id_is_valid (const char *text)
{
  return text != NULL && peerid_is_valid (text);
}

P2ptunError
error_from_tunnel (const GError *error)
{
  if (error == NULL || error->domain != TUNNEL_ERROR)
    return P2PTUN_ERROR_FAILED;
  switch ((TunnelError) error->code)
    {
    case TUNNEL_ERROR_ICE_FAILED:
      return P2PTUN_ERROR_NO_PATH;
    case TUNNEL_ERROR_DTLS:
      return P2PTUN_ERROR_FAILED;
    case TUNNEL_ERROR_PEER_MISMATCH:
      return P2PTUN_ERROR_PEER_MISMATCH;
    case TUNNEL_ERROR_REFUSED:
      return P2PTUN_ERROR_REFUSED;
    case TUNNEL_ERROR_CLOSED:
      return P2PTUN_ERROR_CLOSED;
    case TUNNEL_ERROR_TIMEOUT:
      return P2PTUN_ERROR_TIMEOUT;
    case TUNNEL_ERROR_INTERNAL:
    default:
      return P2PTUN_ERROR_FAILED;
    }
}

P2ptunError
error_from_sigclient (const GError *error)
{
  if (g_error_matches (error, SIGCLIENT_ERROR, SIGCLIENT_ERROR_NOT_ENROLLED))
    return P2PTUN_ERROR_NOT_ENROLLED;
  if (g_error_matches (error, SIGCLIENT_ERROR, SIGCLIENT_ERROR_REVOKED))
    return P2PTUN_ERROR_REVOKED;
  if (g_error_matches (error, SIGCLIENT_ERROR, SIGCLIENT_ERROR_BAD_TOKEN))
    return P2PTUN_ERROR_BAD_TOKEN;
  if (error != NULL && error->domain == G_IO_ERROR
      && error->code == G_IO_ERROR_INVALID_ARGUMENT)
    return P2PTUN_ERROR_INVALID;
  return P2PTUN_ERROR_SIGNALING;
}

/* ---- identity ---- */

DEFINE_BOXED (P2ptunIdentity, p2ptun_identity, p2ptun_identity_ref, p2ptun_identity_unref)

P2ptunIdentity *
p2ptun_identity_load (const char *config_dir, GError **error)
{
  g_autofree char *dir = config_dir ? g_strdup (config_dir) : identity_default_config_dir ();
  Identity *identity = identity_load_or_create (dir, error);
  P2ptunIdentity *self;

  if (identity == NULL)
    return NULL;
  self = g_new0 (P2ptunIdentity, 1);
  self->refs = 1;
  self->identity = identity;
  return self;
}

char *
p2ptun_identity_default_dir (void)
{
  return identity_default_config_dir ();
}

P2ptunIdentity *
p2ptun_identity_ref (P2ptunIdentity *self)
{
  g_atomic_int_inc (&self->refs);
  return self;
}

void
p2ptun_identity_unref (P2ptunIdentity *self)
{
  if (self == NULL || !g_atomic_int_dec_and_test (&self->refs))
    return;
  identity_free (self->identity);
  g_free (self);
}

const char *
p2ptun_identity_get_peer_id (P2ptunIdentity *self)
{
  return self->identity->peer_id;
}

/* An IDENTITY_ERROR as a P2PTUN_ERROR_INVALID, with its text. */
static void
identity_error_propagate (GError **error, GError *local)
{
  g_set_error_literal (error, P2PTUN_ERROR, P2PTUN_ERROR_INVALID, local->message);
  g_error_free (local);
}

gboolean
p2ptun_identity_use_certificate (P2ptunIdentity *self, const char *path, GError **error)
{
  GError *local = NULL;

  g_return_val_if_fail (self != NULL && path != NULL, FALSE);
  if (identity_use_cert (self->identity, path, &local))
    return TRUE;
  identity_error_propagate (error, local);
  return FALSE;
}

char *
p2ptun_identity_make_csr (P2ptunIdentity *self, GError **error)
{
  GError *local = NULL;
  char *pem;

  g_return_val_if_fail (self != NULL, NULL);
  pem = csr_new_pem (self->identity, &local);
  if (pem == NULL)
    identity_error_propagate (error, local);
  return pem;
}

/* ---- configuration ---- */

DEFINE_BOXED (P2ptunConfig, p2ptun_config, p2ptun_config_ref, p2ptun_config_unref)

P2ptunConfig *
p2ptun_config_new (void)
{
  P2ptunConfig *self = g_new0 (P2ptunConfig, 1);

  self->refs = 1;
  self->trust = g_ptr_array_new_with_free_func (g_free);
  self->exposed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->exposed_udp = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->exposed_rtp = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->udp_timeout_s = CONFIG_UDP_TIMEOUT_DEFAULT_S;
  self->hold_s = SESSION_HOLD_DEFAULT_S;
  return self;
}

P2ptunConfig *
p2ptun_config_ref (P2ptunConfig *self)
{
  g_atomic_int_inc (&self->refs);
  return self;
}

void
p2ptun_config_unref (P2ptunConfig *self)
{
  if (self == NULL || !g_atomic_int_dec_and_test (&self->refs))
    return;
  g_free (self->signal_url);
  g_free (self->signal_pin);
  g_ptr_array_unref (self->trust);
  g_hash_table_unref (self->exposed);
  g_hash_table_unref (self->exposed_udp);
  g_hash_table_unref (self->exposed_rtp);
  g_strfreev (self->local_addresses);
  g_free (self);
}

void
p2ptun_config_set_signal (P2ptunConfig *self, const char *url, const char *pin)
{
  g_free (self->signal_url);
  g_free (self->signal_pin);
  self->signal_url = g_strdup (url);
  self->signal_pin = g_strdup (pin);
}

gboolean
p2ptun_config_add_trust (P2ptunConfig *self, const char *peer_id, GError **error)
{
  if (!p2ptun_peer_id_is_valid (peer_id))
    {
      g_set_error (error, P2PTUN_ERROR, P2PTUN_ERROR_INVALID,
                   "'%s' is not a peer-id (52 characters of a-z and 2-7)", peer_id);
      return FALSE;
    }
  g_ptr_array_add (self->trust, g_strdup (peer_id));
  return TRUE;
}

gboolean
p2ptun_config_add_service (P2ptunConfig *self, const char *name, const char *host_port,
                           P2ptunServiceKind kind, GError **error)
{
  g_autofree char *host = NULL;
  guint16 port;

  if (!ctlmsg_name_is_valid (name))
    {
      g_set_error (error, P2PTUN_ERROR, P2PTUN_ERROR_INVALID,
                   "'%s' is not a service name: letters, digits, '.', '_' or '-' (at most %d)",
                   name, CTLMSG_NAME_MAX);
      return FALSE;
    }
  if (!sigmsg_split_host_port (host_port, &host, &port))
    {
      g_set_error (error, P2PTUN_ERROR, P2PTUN_ERROR_INVALID,
                   "service '%s': '%s' is not HOST:PORT", name, host_port);
      return FALSE;
    }
  if (g_hash_table_contains (self->exposed, name))
    {
      g_set_error (error, P2PTUN_ERROR, P2PTUN_ERROR_INVALID, "service '%s' is exposed twice",
                   name);
      return FALSE;
    }
  if (kind == P2PTUN_SERVICE_UDP)
    g_hash_table_add (self->exposed_udp, g_strdup (name));
  else if (kind == P2PTUN_SERVICE_RTP)
    g_hash_table_add (self->exposed_rtp, g_strdup (name));
  g_hash_table_insert (self->exposed, g_strdup (name), g_strdup (host_port));
  return TRUE;
}

void
p2ptun_config_set_local_addresses (P2ptunConfig *self, const char *const *addresses)
{
  g_strfreev (self->local_addresses);
  self->local_addresses = g_strdupv ((char **) addresses);
}

void
p2ptun_config_set_relay_only (P2ptunConfig *self, gboolean relay_only)
{
  self->relay_only = relay_only;
}

void
p2ptun_config_set_udp_timeout (P2ptunConfig *self, guint seconds)
{
  self->udp_timeout_s = CLAMP (seconds, 1, CONFIG_UDP_TIMEOUT_MAX_S);
}

void
p2ptun_config_set_hold (P2ptunConfig *self, guint seconds)
{
  self->hold_s = CLAMP (seconds, 1, CONFIG_HOLD_MAX_S);
}

void
p2ptun_config_set_give_up_after (P2ptunConfig *self, guint seconds)
{
  self->give_up_after_s = MIN (seconds, CONFIG_HOLD_MAX_S);
}

/* ---- paths ---- */

DEFINE_BOXED (P2ptunPath, p2ptun_path, p2ptun_path_copy, p2ptun_path_free)

P2ptunPath *
path_info_new (const TunnelPath *path)
{
  P2ptunPath *self = g_new0 (P2ptunPath, 1);

  self->path = *path;
  return self;
}

P2ptunPath *
p2ptun_path_copy (const P2ptunPath *self)
{
  return path_info_new (&self->path);
}

void
p2ptun_path_free (P2ptunPath *self)
{
  g_free (self);
}

gboolean
p2ptun_path_is_relayed (const P2ptunPath *self)
{
  return self->path.relayed;
}

const char *
p2ptun_path_get_local_type (const P2ptunPath *self)
{
  return self->path.local_type;
}

const char *
p2ptun_path_get_local_address (const P2ptunPath *self)
{
  return self->path.local_addr;
}

const char *
p2ptun_path_get_remote_type (const P2ptunPath *self)
{
  return self->path.remote_type;
}

const char *
p2ptun_path_get_remote_address (const P2ptunPath *self)
{
  return self->path.remote_addr;
}

const char *
p2ptun_path_get_transport (const P2ptunPath *self)
{
  return self->path.transport;
}

char *
p2ptun_path_to_string (const P2ptunPath *self)
{
  return tunnel_path_to_string (&self->path);
}

/* ---- status ---- */

DEFINE_BOXED (P2ptunStatus, p2ptun_status, p2ptun_status_copy, p2ptun_status_free)

P2ptunStatus *
p2ptun_status_copy (const P2ptunStatus *self)
{
  return g_memdup2 (self, sizeof *self);
}

void
p2ptun_status_free (P2ptunStatus *self)
{
  g_free (self);
}

const char *
p2ptun_status_get_peer_id (const P2ptunStatus *self)
{
  return self->peer_id;
}

gboolean
p2ptun_status_is_up (const P2ptunStatus *self)
{
  return self->up;
}

const P2ptunPath *
p2ptun_status_get_path (const P2ptunStatus *self)
{
  return self->has_path ? &self->path : NULL;
}

gint64
p2ptun_status_get_rtt_us (const P2ptunStatus *self)
{
  return self->rtt_us;
}

guint64
p2ptun_status_get_bytes_sent (const P2ptunStatus *self)
{
  return self->bytes_sent;
}

guint64
p2ptun_status_get_bytes_received (const P2ptunStatus *self)
{
  return self->bytes_received;
}

guint
p2ptun_status_get_streams (const P2ptunStatus *self)
{
  return self->streams;
}

guint
p2ptun_status_get_generation (const P2ptunStatus *self)
{
  return self->generation;
}

guint
p2ptun_status_get_restarts (const P2ptunStatus *self)
{
  return self->restarts;
}

guint
p2ptun_status_get_outages (const P2ptunStatus *self)
{
  return self->outages;
}

guint
p2ptun_status_get_reconnects (const P2ptunStatus *self)
{
  return self->reconnects;
}

guint64
p2ptun_status_get_packets_sent (const P2ptunStatus *self)
{
  return self->packets_sent;
}

guint64
p2ptun_status_get_packets_received (const P2ptunStatus *self)
{
  return self->packets_received;
}

guint64
p2ptun_status_get_packets_lost (const P2ptunStatus *self)
{
  return self->packets_lost;
}

guint
p2ptun_status_get_udp_flows (const P2ptunStatus *self)
{
  return self->udp_flows;
}

gint64
p2ptun_status_get_uptime_us (const P2ptunStatus *self)
{
  return self->uptime_us;
}

guint
p2ptun_status_get_path_changes (const P2ptunStatus *self)
{
  return self->path_changes;
}

char *
p2ptun_status_to_json (const P2ptunStatus *self)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "peer_id");
  json_builder_add_string_value (b, self->peer_id);
  json_builder_set_member_name (b, "up");
  json_builder_add_boolean_value (b, self->up);
  json_builder_set_member_name (b, "path");
  if (self->has_path)
    {
      const TunnelPath *p = &self->path.path;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "kind");
      json_builder_add_string_value (b, p->relayed ? "relayed" : "direct");
      json_builder_set_member_name (b, "local_type");
      json_builder_add_string_value (b, p->local_type);
      json_builder_set_member_name (b, "local_address");
      json_builder_add_string_value (b, p->local_addr);
      json_builder_set_member_name (b, "remote_type");
      json_builder_add_string_value (b, p->remote_type);
      json_builder_set_member_name (b, "remote_address");
      json_builder_add_string_value (b, p->remote_addr);
      json_builder_set_member_name (b, "transport");
      json_builder_add_string_value (b, p->transport);
      json_builder_end_object (b);
    }
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "rtt_us");
  json_builder_add_int_value (b, self->rtt_us);
  json_builder_set_member_name (b, "bytes_sent");
  json_builder_add_int_value (b, (gint64) self->bytes_sent);
  json_builder_set_member_name (b, "bytes_received");
  json_builder_add_int_value (b, (gint64) self->bytes_received);
  json_builder_set_member_name (b, "streams");
  json_builder_add_int_value (b, self->streams);
  json_builder_set_member_name (b, "generation");
  json_builder_add_int_value (b, self->generation);
  json_builder_set_member_name (b, "restarts");
  json_builder_add_int_value (b, self->restarts);
  json_builder_set_member_name (b, "outages");
  json_builder_add_int_value (b, self->outages);
  json_builder_set_member_name (b, "reconnects");
  json_builder_add_int_value (b, self->reconnects);
  json_builder_set_member_name (b, "packets_sent");
  json_builder_add_int_value (b, (gint64) self->packets_sent);
  json_builder_set_member_name (b, "packets_received");
  json_builder_add_int_value (b, (gint64) self->packets_received);
  json_builder_set_member_name (b, "packets_lost");
  json_builder_add_int_value (b, (gint64) self->packets_lost);
  json_builder_set_member_name (b, "udp_flows");
  json_builder_add_int_value (b, self->udp_flows);
  json_builder_set_member_name (b, "uptime_us");
  json_builder_add_int_value (b, self->uptime_us);
  json_builder_set_member_name (b, "path_changes");
  json_builder_add_int_value (b, self->path_changes);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

/* ---- events ---- */

DEFINE_BOXED (P2ptunEvent, p2ptun_event, p2ptun_event_copy, p2ptun_event_free)

P2ptunEvent *
event_new (P2ptunEventKind kind, const char *peer_id, const char *format, ...)
{
  P2ptunEvent *self = g_new0 (P2ptunEvent, 1);
  va_list ap;

  self->kind = kind;
  self->peer_id = g_strdup (peer_id);
  va_start (ap, format);
  self->message = g_strdup_vprintf (format, ap);
  va_end (ap);
  return self;
}

P2ptunEvent *
p2ptun_event_copy (const P2ptunEvent *self)
{
  P2ptunEvent *copy = g_memdup2 (self, sizeof *self);

  copy->peer_id = g_strdup (self->peer_id);
  copy->message = g_strdup (self->message);
  copy->path = self->path ? p2ptun_path_copy (self->path) : NULL;
  copy->error = self->error ? g_error_copy (self->error) : NULL;
  return copy;
}

void
p2ptun_event_free (P2ptunEvent *self)
{
  if (self == NULL)
    return;
  g_free (self->peer_id);
  g_free (self->message);
  p2ptun_path_free (self->path);
  g_clear_error (&self->error);
  g_free (self);
}

P2ptunEventKind
p2ptun_event_get_kind (const P2ptunEvent *self)
{
  return self->kind;
}

const char *
p2ptun_event_get_peer_id (const P2ptunEvent *self)
{
  return self->peer_id;
}

const char *
p2ptun_event_get_message (const P2ptunEvent *self)
{
  return self->message;
}

const P2ptunPath *
p2ptun_event_get_path (const P2ptunEvent *self)
{
  return self->path;
}

gint64
p2ptun_event_get_rtt_us (const P2ptunEvent *self)
{
  return self->rtt_us;
}

double
p2ptun_event_get_seconds (const P2ptunEvent *self)
{
  return self->seconds;
}

gboolean
p2ptun_event_is_outgoing (const P2ptunEvent *self)
{
  return self->outgoing;
}

guint
p2ptun_event_get_stream (const P2ptunEvent *self)
{
  return self->stream;
}

const GError *
p2ptun_event_get_error (const P2ptunEvent *self)
{
  return self->error;
}
