/* A tiny plain-HTTP server for Prometheus scrapes (--metrics ADDR:PORT of
 * p2ptun-relay and p2ptun-signal), with libsoup-3: GET /metrics answers the
 * text that the program renders at that moment; every other path is 404 and
 * every other method 405. It lives in the programs, never in libp2ptun.
 *
 * Bounded: at most PROMHTTP_MAX_CONNECTIONS connections at once (more are
 * closed at accept), each closed PROMHTTP_CONNECTION_MS after its accept
 * whatever it is doing, one request per connection. The server reads no
 * body. It has no authentication: it is meant for loopback (the programs'
 * --help says so), and it logs a warning when bound elsewhere. */
#pragma once

#include <gio/gio.h>

#define PROMHTTP_MAX_CONNECTIONS 16
#define PROMHTTP_CONNECTION_MS 5000

/* The metrics text, in a new GString that the server frees. */
typedef GString *(*PromhttpRenderFunc) (gpointer data);

typedef struct _Promhttp Promhttp;

/* "ADDR:PORT" or "[ADDR6]:PORT", numeric; NULL with @error set (naming
 * --@option) when malformed. */
GInetSocketAddress *promhttp_parse_address (const char *option, const char *text,
                                            GError **error);

/* Listens on @address (port 0: any) on @ctx and serves @render (called on
 * @ctx with @data). NULL with @error set when the address cannot be bound. */
Promhttp *promhttp_new (GMainContext *ctx, GInetSocketAddress *address,
                        PromhttpRenderFunc render, gpointer data, GError **error);
/* The bound address as "ADDR:PORT" or "[ADDR]:PORT" (to free). */
char *promhttp_address (Promhttp *self);
void promhttp_free (Promhttp *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Promhttp, promhttp_free)
