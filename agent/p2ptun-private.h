/* The insides of libp2ptun's public types, for the library's own files. */
#pragma once

#include <p2ptun/p2ptun.h>

#include "identity.h"
#include "tunnel.h"

struct _P2ptunIdentity
{
  gint refs;
  Identity *identity;
};

struct _P2ptunConfig
{
  gint refs;
  char *signal_url;
  char *signal_pin;      /* NULL: the system's CAs */
  GPtrArray *trust;      /* char* peer-ids */
  GHashTable *exposed;   /* name -> "host:port" */
  GHashTable *exposed_udp; /* names of the UDP ones */
  GHashTable *exposed_rtp; /* names of the RTP ones (media legs) */
  char **local_addresses;
  gboolean relay_only;
  guint udp_timeout_s;
  guint hold_s;
  guint give_up_after_s; /* 0: never */
};

struct _P2ptunPath
{
  TunnelPath path;
};

struct _P2ptunStatus
{
  char peer_id[PEERID_SIZE];
  gboolean up;
  gboolean has_path;
  P2ptunPath path;
  gint64 rtt_us;
  guint64 bytes_sent;
  guint64 bytes_received;
  guint streams;
  guint generation;
  guint restarts;
  guint outages;
  guint reconnects;
  guint64 packets_sent;
  guint64 packets_received;
  guint64 packets_lost;
  guint udp_flows;
  gint64 uptime_us;
  guint path_changes;
};

struct _P2ptunEvent
{
  P2ptunEventKind kind;
  char *peer_id;
  char *message;
  P2ptunPath *path;
  gint64 rtt_us;
  double seconds;
  gboolean outgoing;
  guint stream;
  GError *error;
};

/* An event with its sentence; the caller fills the rest. */
P2ptunEvent *event_new (P2ptunEventKind kind, const char *peer_id, const char *format,
                               ...) G_GNUC_PRINTF (3, 4);
P2ptunPath *path_info_new (const TunnelPath *path);
/* The P2PTUN_ERROR code for a tunnel's end. */
P2ptunError error_from_tunnel (const GError *error);
/* The P2PTUN_ERROR code for a failure of the signaling client:
 * SIGNALING but for the refusals that have codes of their own. */
P2ptunError error_from_sigclient (const GError *error);
