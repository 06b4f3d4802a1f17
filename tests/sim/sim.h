/* A deterministic, seeded discrete-event link simulator for the tunnel
 * transport (proto/xport.h). Links are one-way: propagation delay, jitter,
 * random loss, Gilbert-Elliott burst loss, reordering, duplication, a
 * bottleneck rate with a bounded drop-tail queue, and blackouts. Nodes are
 * transport endpoints; a link may be shared by several nodes (a common
 * bottleneck). Everything runs in simulated microseconds: the same seed
 * gives the same run, byte for byte. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xport.h"

struct sim_link_params
{
  uint64_t delay_us;  /* one way */
  uint64_t jitter_us; /* uniform extra delay in [0, jitter), order kept */
  double loss;        /* independent random loss */
  /* Gilbert-Elliott: P(good -> bad) and P(bad -> good) per packet (and per
   * packet time the link is idle), and the loss probability in each state. */
  double ge_p, ge_r, ge_loss_bad, ge_loss_good;
  double reorder; /* a packet is held reorder_us longer (overtaken) */
  uint64_t reorder_us;
  double duplicate;                      /* a packet arrives twice */
  uint64_t rate_bps;                     /* 0: no bottleneck */
  size_t queue_bytes;                    /* drop-tail limit of the bottleneck queue */
  uint64_t blackout_start, blackout_end; /* [start, end): every packet lost */
  size_t mtu; /* larger packets are lost (0: no limit) */
};

/* The largest packet the agent probes for on the Internet: a 1500-byte
 * path's (XPORT_MAX_PACKET is for paths of large MTU, such as loopback). */
#define SIM_PACKET_CEILING 1452

struct sim;
struct sim_link;
struct sim_node;

typedef void (*sim_app_fn) (struct sim_node *node, void *ctx);

struct sim *sim_new (uint64_t seed);
void sim_free (struct sim *sim);
uint64_t sim_now (const struct sim *sim);
uint64_t sim_random (struct sim *sim);
double sim_uniform (struct sim *sim);

struct sim_link *sim_link_new (struct sim *sim, const struct sim_link_params *p);
void sim_link_set (struct sim_link *l, const struct sim_link_params *p);
uint64_t sim_link_dropped (const struct sim_link *l);

/* Any endpoint: the simulator calls these; send may be NULL when the
 * endpoint transmits by itself through sim_node_transmit(). */
struct sim_endpoint_ops
{
  void (*receive) (void *impl, uint64_t now, const uint8_t *buf, size_t len);
  size_t (*send) (void *impl, uint64_t now, uint8_t *buf, size_t cap);
  uint64_t (*timeout) (void *impl); /* absolute; UINT64_MAX: none */
  void (*on_timeout) (void *impl, uint64_t now);
};

/* An endpoint of another kind (the benchmark's pseudo-TCP); @impl stays the
 * caller's. */
struct sim_node *sim_node_new_custom (struct sim *sim, const struct sim_endpoint_ops *ops,
                                      void *impl, struct sim_link *out, sim_app_fn app,
                                      void *ctx);
void sim_node_transmit (struct sim_node *n, const uint8_t *buf, size_t len);
void *sim_node_impl (struct sim_node *n);

/* A transport endpoint sending on @out. The app runs after every event of
 * the node (packet, timer) and after sim_node_kick(). */
struct sim_node *sim_node_new (struct sim *sim, const struct xport_config *cfg,
                               struct sim_link *out, sim_app_fn app, void *ctx);
void sim_connect (struct sim_node *a, struct sim_node *b);
struct xport_conn *sim_node_conn (struct sim_node *n);
struct sim *sim_node_sim (struct sim_node *n);
/* Runs the node's app and sends at the current time. */
void sim_node_kick (struct sim_node *n);

/* Called with every packet as it arrives at a node (for capturing). */
typedef void (*sim_tap_fn) (struct sim_node *to, uint64_t now, const uint8_t *buf,
                            size_t len, void *ctx);
void sim_set_tap (struct sim *sim, sim_tap_fn tap, void *ctx);
bool sim_node_is_client (const struct sim_node *n);
/* How often the node's timer fired: a transport whose timeout does not move
 * on makes this explode. */
uint64_t sim_node_timer_fires (const struct sim_node *n);

/* Runs events up to @until; stops early when @done returns true (checked
 * after each event). Returns the time reached. */
uint64_t sim_run (struct sim *sim, uint64_t until, bool (*done) (void *), void *ctx);

/* ---- a bulk transfer application used by the tests and the benchmark ---- */

#define SIM_FLOW_MAX_STREAMS 8

struct sim_flow_stream
{
  uint64_t id;
  bool opened;
  uint64_t total;
  uint64_t written, read;
  uint64_t gen_state; /* data generator */
  uint8_t pending[16384];
  size_t pending_off, pending_len;
  void *tx_hash, *rx_hash; /* EVP_MD_CTX */
  uint8_t tx_digest[32], rx_digest[32];
  bool shut, done;
  bool paused; /* the reader stopped reading */
  uint64_t done_time;
};

struct sim_flow
{
  struct sim_node *tx, *rx;
  unsigned n_streams;
  struct sim_flow_stream s[SIM_FLOW_MAX_STREAMS];
  uint64_t start_time;
  uint64_t last_progress; /* time the receiver last got new bytes */
  uint64_t max_stall;
  uint64_t bytes_read;
  uint64_t done_time; /* all streams complete */
  bool closed;        /* a CLOSED event was seen */
  uint64_t close_code;
  /* Datagrams: sent every datagram_interval_us while streams run. */
  uint64_t datagram_interval_us, next_datagram, dgram_sent, dgram_received, dgram_bad;
};

/* Makes a flow of @n_streams streams of @bytes each, from @tx to @rx, which
 * must be nodes created with sim_flow_app and the flow as ctx. */
void sim_flow_init (struct sim_flow *f, unsigned n_streams, uint64_t bytes,
                    uint64_t seed);
void sim_flow_clear (struct sim_flow *f);
void sim_flow_app (struct sim_node *n, void *ctx);
bool sim_flow_done (void *ctx);
/* True when every stream arrived whole with the same SHA-256. */
bool sim_flow_verify (const struct sim_flow *f, char *why, size_t why_len);
