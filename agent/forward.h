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
/* A line for the user ("forwarding 127.0.0.1:8000 -> music", a connection
 * that failed, datagrams dropped): the owner decides how to show it. */
typedef void (*ForwardsSayFunc) (const char *line, gpointer user_data);

/* Parses and binds every spec. */
Forwards *forwards_new (GMainContext *context, const char *const *specs,
                        ForwardsFatalFunc fatal, ForwardsSayFunc say, gpointer user_data,
                        GError **error);
/* Starts accepting; each connection opens a stream on @transport. */
void forwards_start (Forwards *forwards, Transport *transport);
void forwards_free (Forwards *forwards);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Forwards, forwards_free)

/* Strict parse of "[BIND:]PORT:SERVICE" given to @option (-L, -U); BIND
 * defaults to 127.0.0.1 and may be an IPv6 address in brackets. */
gboolean forward_spec_parse (const char *option, const char *spec, char **bind,
                             guint16 *port, char **service, GError **error);
/* Parses @spec (given to @option) and binds a socket of @type to it (TCP:
 * not yet listening). Sets the peer's *@service and *@display ("127.0.0.1:
 * 8000" or "[::1]:8000"), also on a bind error, for the message. */
GSocket *forward_bind (const char *option, const char *spec, GSocketType type,
                       char **service, char **display, GError **error);

/* What forwards tell their owner: lines for the user, and a fatal error,
 * told once and from the main loop (the forward may be inside a callback
 * of the stream that failed). */
typedef struct
{
  GMainContext *context;
  ForwardsFatalFunc fatal;
  ForwardsSayFunc say;
  gpointer user_data;
  GSource *idle;
  GError *error;
} ForwardReport;

void forward_report_init (ForwardReport *report, GMainContext *context,
                          ForwardsFatalFunc fatal, ForwardsSayFunc say, gpointer user_data);
/* Takes @error; only the first one is told. */
void forward_report_fatal (ForwardReport *report, GError *error);
void forward_report_say (ForwardReport *report, const char *format, ...) G_GNUC_PRINTF (2, 3);
void forward_report_clear (ForwardReport *report);
