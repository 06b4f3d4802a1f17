/* Local port forwards (-L [BIND:]PORT:SERVICE): listening sockets whose
 * connections become tunnel streams to the peer's service. The sockets are
 * bound at once, so that a port in use is an error at start; connections wait
 * in the kernel's backlog until the tunnel is up. */
#pragma once

#include <gio/gio.h>

#include "transport.h"

typedef struct _Forwards Forwards;

/* A forward that cannot work (the peer does not expose the service). */
typedef void (*ForwardsFatalFunc) (const GError *error, gpointer user_data);

/* Parses and binds every spec. */
Forwards *forwards_new (GMainContext *context, const char *const *specs,
                        ForwardsFatalFunc fatal, gpointer user_data, GError **error);
/* Starts accepting; each connection opens a stream on @transport. */
void forwards_start (Forwards *forwards, Transport *transport);
void forwards_free (Forwards *forwards);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Forwards, forwards_free)

/* Strict parse of "[BIND:]PORT:SERVICE"; BIND defaults to 127.0.0.1 and may
 * be an IPv6 address in brackets. */
gboolean forward_spec_parse (const char *spec, char **bind, guint16 *port, char **service,
                             GError **error);
