/* The running agent: its identity, its signaling client, its tunnels, the
 * services it exposes and the ports it forwards. serve and pair are the same
 * node; pair also offers a tunnel to one peer and forwards to it. */
#pragma once

#include <glib.h>

#include "identity.h"

typedef struct
{
  char *signal_url;
  char *signal_pin;            /* NULL: verify with the system CAs */
  char **expose;               /* NAME=HOST:PORT, NAME=HOST:PORT/udp */
  char **trust;                /* peer-ids allowed to open our services */
  char **forward;              /* [BIND:]PORT:SERVICE (pair) */
  char **udp_forward;          /* [BIND:]PORT:SERVICE (pair), UDP */
  int udp_timeout_s;           /* a UDP flow idle this long ends */
  char *stdio_service;         /* pair --stdio */
  char **local_addresses;      /* ICE host candidates only on these */
  gboolean relay_only;         /* only relayed candidate pairs (ICE force-relay) */
  char *pair_peer;             /* NULL for serve */
  int timeout_s;               /* pair: give up when not up by then; 0 = never */
} NodeOptions;

/* Runs until the tunnel ends (pair), or SIGINT/SIGTERM. Returns the exit code;
 * every error was printed. */
int node_run (const NodeOptions *options, const Identity *identity);

/* Prints one line to stderr, "p2ptun-agent: ..." */
void node_say (const char *format, ...) G_GNUC_PRINTF (1, 2);
