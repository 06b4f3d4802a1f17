/* The pump of the tunnel transport: the GLib source that drives the
 * connection (see transport.c), and the sends it makes. */
#include "transport.h"

#include "transport_private.h"
#include "xport.h"

/* Packets sent in one burst before the loop gets to others, and rounds of
 * a pump dispatch. */
#define PUMP_PACKETS_MAX 64
#define PUMP_ROUNDS_MAX 8

/* The pump is due when kicked or at the connection's next timeout, which
 * its prepare() tells GLib. (A ready time would do the same, but GLib
 * writes to the context's wakeup descriptor on every change of one: three
 * system calls per burst.) Called on the context's thread, like the rest. */
void
transport_kick (Transport *t)
{
  t->kicked = TRUE;
}

/* The packets due now, up to PUMP_PACKETS_MAX, then the flush that lets
 * them leave together. Returns how many. */
guint
transport_send_burst (Transport *t, guint64 now)
{
  guint sent = 0;

  while (t->conn && sent < PUMP_PACKETS_MAX)
    {
      gsize n = xport_conn_send (t->conn, now, t->packet, t->packet_cap);
      if (n == 0)
        break;
      t->cb.send_packet (t->packet, n, t->user_data);
      t->bytes_sent += n;
      sent++;
    }
  if (sent > 0)
    t->cb.flush (t->user_data);
  return sent;
}

typedef struct
{
  GSource source;
  Transport *t;
} PumpSource;

/* Whether the pump has work now; else, in *@timeout_ms, when it will. */
static gboolean
pump_due (Transport *t, gint *timeout_ms)
{
  guint64 due, now;

  *timeout_ms = -1;
  if (t->conn == NULL)
    return FALSE;
  if (t->kicked || t->noted->len > 0)
    return TRUE;
  due = xport_conn_timeout (t->conn);
  if (due == UINT64_MAX)
    return FALSE;
  now = transport_now_us ();
  if (due <= now)
    return TRUE;
  *timeout_ms = (gint) MIN ((due - now + 999) / 1000, (guint64) G_MAXINT);
  return FALSE;
}

static gboolean
pump_prepare (GSource *source, gint *timeout_ms)
{
  return pump_due (((PumpSource *) source)->t, timeout_ms);
}

static gboolean
pump_check (GSource *source)
{
  gint unused;

  return pump_due (((PumpSource *) source)->t, &unused);
}

static gboolean
pump_dispatch (GSource *source, GSourceFunc unused, gpointer data)
{
  Transport *t = ((PumpSource *) source)->t;
  guint64 now = transport_now_us ();
  gboolean busy = TRUE;

  t->kicked = FALSE;
  if (t->conn == NULL)
    return G_SOURCE_CONTINUE;
  if (xport_conn_timeout (t->conn) <= now)
    xport_conn_on_timeout (t->conn, now);
  for (int round = 0; busy && round < PUMP_ROUNDS_MAX; round++)
    busy = transport_pump_round (t, now);
  if (t->closed && !t->closed_notified)
    {
      t->closed_notified = TRUE;
      /* Last: the user may free the transport from here. */
      t->cb.closed (t->close_code, t->close_text, t->user_data);
      return G_SOURCE_CONTINUE;
    }
  /* Rounds left over: the next iteration goes on, after the others ran. */
  if (busy)
    t->kicked = TRUE;
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs pump_funcs = {
  .prepare = pump_prepare,
  .check = pump_check,
  .dispatch = pump_dispatch,
};

GSource *
transport_pump_new (Transport *t)
{
  GSource *pump = g_source_new (&pump_funcs, sizeof (PumpSource));

  ((PumpSource *) pump)->t = t;
  return pump;
}

void
transport_flush (Transport *t)
{
  /* Nothing but packets: no callback runs from here. */
  if (t->conn != NULL && !t->closed && t->kicked)
    (void) transport_send_burst (t, transport_now_us ());
}

void
transport_stream_flush (TransportStream *s)
{
  if (s->transport != NULL)
    transport_flush (s->transport);
}
