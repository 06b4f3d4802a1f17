/* p2ptun-signal's Prometheus metrics (--metrics): the answers it gave, by
 * status and by the error code of API.md, counted here as libsoup finishes
 * each one, and the mailbox store's counters (mailbox.h), written in the
 * text format (promtext.h). No peer-id, token or secret is ever a label:
 * the labels are status numbers and the server's own error codes. */
#pragma once

#include <glib.h>

#include "mailbox.h"

typedef struct _SignalMetrics SignalMetrics;

SignalMetrics *signal_metrics_new (void);
void signal_metrics_free (SignalMetrics *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SignalMetrics, signal_metrics_free)

/* One answer: HTTP @status, @error the API.md error code of an error answer
 * (a static string) or NULL, @enroll whether it answered POST /v1/enroll. */
void signal_metrics_answer (SignalMetrics *self, guint status, const char *error,
                            gboolean enroll);

/* What the server holds now, besides the counters. */
typedef struct
{
  const MailboxStats *mailboxes;
  guint n_mailboxes;
  guint n_receiving; /* peers with a receive (long-poll) open */
} SignalMetricsState;

/* The whole text, in a new GString. */
GString *signal_metrics_render (SignalMetrics *self, const SignalMetricsState *state);
