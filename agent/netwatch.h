/* Notices the local network changes that end the tunnel's current ICE path
 * (Wi-Fi to mobile, an address gone, the default route moved) as they happen,
 * and stays quiet on the route churn that does not matter (docker, a VPN's
 * own routes). Linux only: it listens on a NETLINK_ROUTE socket. */
#pragma once

#include <glib.h>

typedef struct _NetWatch NetWatch;

/* Called from the NetWatch's context, debounced (about 200 ms after the last
 * of a burst of kernel notices, at most about 1 s after the first), when the
 * set of local addresses of interfaces that are up or the default routes
 * (IPv4 or IPv6: gateway, interface, preferred source, metric, table, link
 * state) differ from what they were at the previous call or at
 * netwatch_new(). The callback may free the NetWatch. */
typedef void (*NetWatchFunc) (gpointer user_data);

/* A watch whose socket and timers are sources on @context (NULL: the global
 * default context); @changed is called there. Each owner has its own; there
 * is no shared state. Returns NULL, with a debug message, when the netlink
 * socket cannot be opened. Free with netwatch_free() from the thread that
 * runs @context. */
NetWatch *netwatch_new (GMainContext *context, NetWatchFunc changed, gpointer user_data);
void netwatch_free (NetWatch *w); /* NULL is fine */

/* Whether @ip (numeric, IPv4 or IPv6; an IPv6 scope "%eth0" is ignored) is an
 * address of a local interface that is up, now. */
gboolean netwatch_has_address (const char *ip);

/* A string that identifies the default routes now, for instance
 * "v4 via 192.0.2.1 dev eth0 src 192.0.2.10 metric 100; v6 none". Two
 * snapshots that differ mean the default route moved. Never NULL; the caller
 * frees it. Asks the kernel over a netlink socket of its own: quick, but a
 * system call that may wait up to a second if the kernel does not answer. */
char *netwatch_default_route (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NetWatch, netwatch_free)
