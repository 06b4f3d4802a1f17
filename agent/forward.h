/* Local port forwards (-L [BIND:]PORT:SERVICE): listening sockets whose
 * connections become tunnel streams to the peer's service. The sockets are
 * bound and accepting at once, so that a port in use is an error at start.
 * The streams go over the Transport of the current tunnel, which may come,
 * go (forwards_stop) and come again (forwards_start) while the listeners stay:
 * a connection accepted while there is no tunnel waits for one, for a bounded
 * time and in a bounded number, and then opens its stream as a fresh one. */
#pragma once

#include <gio/gio.h>

#include "transport.h"

typedef struct _Forwards Forwards;

/* A forward that cannot work (the peer does not expose the service). */
typedef void (*ForwardsFatalFunc) (const GError *error, gpointer user_data);
/* A line for the user ("forwarding 127.0.0.1:8000 -> music", a connection
 * that failed, datagrams dropped): the owner decides how to show it. */
typedef void (*ForwardsSayFunc) (const char *line, gpointer user_data);

/* How long a connection waits for a tunnel before it is reset. */
#define FORWARD_WAIT_S 30

/* Parses, binds and listens on every spec, and accepts from then on. A
 * connection accepted while there is no tunnel waits up to @wait_s seconds
 * (0: FORWARD_WAIT_S) for forwards_start(). */
Forwards *forwards_new (GMainContext *context, const char *const *specs, guint wait_s,
                        ForwardsFatalFunc fatal, ForwardsSayFunc say, gpointer user_data,
                        GError **error);
/* A tunnel is up: the waiting connections, in the order they came, and each
 * new one open a stream on @transport, which the caller keeps valid until
 * forwards_stop() or forwards_free(). Again after forwards_stop(), with the
 * next tunnel's transport. */
void forwards_start (Forwards *forwards, Transport *transport);
/* The tunnel is going away (@transport is still valid during the call): every
 * connection over it is reset (RST, never a FIN that would pass a cut stream
 * for a whole one) and its stream freed. The listeners stay; new connections
 * wait for the next forwards_start(). @why ends the line told to the owner. */
void forwards_stop (Forwards *forwards, const char *why);
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
