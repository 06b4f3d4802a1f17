/* p2ptun-agent's Prometheus metrics (serve and pair --metrics ADDR:PORT):
 * the node's tunnels (p2ptun_node_get_statuses) in the text format
 * (promtext.h) on a plain-HTTP endpoint (promhttp.h). The endpoint lives in
 * the program, never in libp2ptun (an app that embeds the library may use
 * another libsoup).
 *
 * The per-peer series are labelled peer=NAME when --trust NAME=PEER-ID gave
 * one, else peer=PEER-ID: an agent has tunnels only to the peers it trusts
 * or pairs with, so the label's values are bounded by its own
 * configuration; a prefix of the peer-id could merge two peers. Peer-ids
 * are public; no key, token or secret is ever in the text.
 *
 * The library's counters are per tunnel and go when the tunnel ends; the
 * counters here keep the totals of ended tunnels so that they only grow.
 * The tunnels are sampled at each scrape and every second
 * (METRICS_SAMPLE_S), so the traffic of a tunnel's last second before it
 * ended may be missing; a counter never goes down. */
#pragma once

#include <gio/gio.h>
#include <p2ptun/p2ptun.h>

#define METRICS_SAMPLE_S 1

typedef struct _Metrics Metrics;

/* ---- the core: statuses in, text out; no I/O ---- */

/* @names maps peer-ids to the NAMEs of --trust NAME=PEER-ID (referenced;
 * NULL for none). */
Metrics *metrics_new (GHashTable *names);
void metrics_free (Metrics *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Metrics, metrics_free)

/* Takes the numbers of the tunnels alive now (P2ptunStatus): what grew is
 * added; the numbers of a tunnel that went are kept. */
void metrics_observe (Metrics *self, GPtrArray *statuses);

/* metrics_observe(), then the whole text, in a new GString. */
GString *metrics_render (Metrics *self, GPtrArray *statuses);

/* ---- the shell: the node, the timer, the endpoint ---- */

/* Serves @node's metrics on @address (port 0: any) on @ctx (NULL: the
 * default context); NULL with @error set when it cannot be bound. Free it
 * before @node. */
Metrics *metrics_serve (GMainContext *ctx, P2ptunNode *node, GHashTable *names,
                        GInetSocketAddress *address, GError **error);
/* The bound address, "ADDR:PORT" (to free). */
char *metrics_address (Metrics *self);
