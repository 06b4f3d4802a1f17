/* p2ptun-signal's metrics; see metrics.h. */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

#include "promtext.h"

/* Keys "STATUS" and "STATUS ERROR": the statuses and codes are the server's
 * own constants, so the tables stay small. */
struct _SignalMetrics
{
  GHashTable *answers;     /* key (owned) -> guint64 count (owned) */
  GHashTable *errors;      /* key (owned) -> guint64 count (owned) */
  GHashTable *enroll_refusals; /* error code (owned) -> guint64 count (owned) */
};

SignalMetrics *
signal_metrics_new (void)
{
  SignalMetrics *self = g_new0 (SignalMetrics, 1);

  self->answers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->errors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->enroll_refusals = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return self;
}

void
signal_metrics_free (SignalMetrics *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->answers, g_hash_table_unref);
  g_clear_pointer (&self->errors, g_hash_table_unref);
  g_clear_pointer (&self->enroll_refusals, g_hash_table_unref);
  g_free (self);
}

static void
signal_metrics_count (GHashTable *table, const char *key)
{
  guint64 *n = g_hash_table_lookup (table, key);

  if (n == NULL)
    {
      n = g_new0 (guint64, 1);
      g_hash_table_insert (table, g_strdup (key), n);
    }
  (*n)++;
}

void
signal_metrics_answer (SignalMetrics *self, guint status, const char *error,
                       gboolean enroll)
{
  char key[96];

  g_snprintf (key, sizeof key, "%u", status);
  signal_metrics_count (self->answers, key);
  if (error == NULL)
    return;
  g_snprintf (key, sizeof key, "%u %s", status, error);
  signal_metrics_count (self->errors, key);
  if (enroll)
    signal_metrics_count (self->enroll_refusals, error);
}

static int
signal_metrics_compare (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

/* One sample per key of @table, in key order; a key "STATUS ERROR" is split
 * into the labels status and error. */
static void
signal_metrics_table (GString *out, const char *name, GHashTable *table,
                      const char *label)
{
  g_autofree const char **keys
      = (const char **)g_hash_table_get_keys_as_array (table, NULL);
  guint n = g_hash_table_size (table);

  qsort (keys, n, sizeof *keys, signal_metrics_compare);
  for (guint i = 0; i < n; i++)
    {
      const char *space = strchr (keys[i], ' ');
      g_autofree char *status = g_strndup (keys[i], space != NULL ? (gsize)(space - keys[i])
                                                                  : strlen (keys[i]));
      const char *const split[]
          = { "status", status, "error", space != NULL ? space + 1 : "", NULL };
      const char *const one[] = { label, keys[i], NULL };
      guint64 *count = g_hash_table_lookup (table, keys[i]);

      promtext_sample (out, name, space != NULL ? split : one, *count);
    }
}

static void
signal_metrics_family (GString *out, const char *name, PromtextType type,
                       const char *help, guint64 value)
{
  promtext_family (out, name, type, help);
  promtext_sample (out, name, NULL, value);
}

GString *
signal_metrics_render (SignalMetrics *self, const SignalMetricsState *state)
{
  GString *out = g_string_new (NULL);
  const MailboxStats *st = state->mailboxes;

  signal_metrics_family (out, "p2ptun_signal_receiving_peers", PROMTEXT_GAUGE,
                         "Peers with a receive (long-poll) open now: the connected peers.",
                         state->n_receiving);
  signal_metrics_family (out, "p2ptun_signal_mailboxes", PROMTEXT_GAUGE,
                         "Mailboxes held now.", state->n_mailboxes);
  signal_metrics_family (out, "p2ptun_signal_queued_messages", PROMTEXT_GAUGE,
                         "Messages queued now, in all mailboxes.", st->queued);
  signal_metrics_family (out, "p2ptun_signal_posted_messages_total", PROMTEXT_COUNTER,
                         "Messages queued for a recipient.", st->posted);
  signal_metrics_family (out, "p2ptun_signal_delivered_messages_total", PROMTEXT_COUNTER,
                         "Messages handed out to their recipient's receive.",
                         st->delivered);
  signal_metrics_family (out, "p2ptun_signal_expired_messages_total", PROMTEXT_COUNTER,
                         "Messages dropped unread after 60 s.", st->expired);
  signal_metrics_family (out, "p2ptun_signal_dropped_messages_total", PROMTEXT_COUNTER,
                         "Messages dropped with their mailbox (a revoked peer, or a "
                         "mailbox its owner never asked for, evicted).",
                         st->dropped);
  promtext_histogram_write (out, "p2ptun_signal_delivery_latency_seconds",
                            "Time from a message's post to the receive that hands it "
                            "out.",
                            &st->latency);
  promtext_family (out, "p2ptun_signal_responses_total", PROMTEXT_COUNTER,
                   "HTTP answers, by status.");
  signal_metrics_table (out, "p2ptun_signal_responses_total", self->answers, "status");
  promtext_family (out, "p2ptun_signal_errors_total", PROMTEXT_COUNTER,
                   "Error answers (4xx and 5xx), by status and API.md error code.");
  signal_metrics_table (out, "p2ptun_signal_errors_total", self->errors, "status");
  promtext_family (out, "p2ptun_signal_enrollment_refusals_total", PROMTEXT_COUNTER,
                   "Refused enrollments (POST /v1/enroll), by error code.");
  signal_metrics_table (out, "p2ptun_signal_enrollment_refusals_total",
                        self->enroll_refusals, "error");
  return out;
}
