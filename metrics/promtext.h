/* The Prometheus text exposition format (version 0.0.4), written into a
 * GString; no I/O. https://prometheus.io/docs/instrumenting/exposition_formats/
 *
 * A family is written as its HELP and TYPE lines, then its samples:
 *
 *   promtext_family (out, "p2ptun_relay_allocations", PROMTEXT_GAUGE, "...");
 *   promtext_sample (out, "p2ptun_relay_allocations", NULL, n);
 *
 * Names and label names are the program's constants: an invalid one is a
 * programming error. Label values and HELP texts are escaped as the format
 * says (backslash, double quote in label values, newline). */
#pragma once

#include <glib.h>

typedef enum
{
  PROMTEXT_COUNTER,
  PROMTEXT_GAUGE,
  PROMTEXT_HISTOGRAM,
} PromtextType;

/* A histogram's buckets: upper bounds, increasing; +Inf is implied. */
#define PROMTEXT_MAX_BUCKETS 16

typedef struct
{
  const double *bounds; /* static, n_bounds values */
  gsize n_bounds;
  guint64 buckets[PROMTEXT_MAX_BUCKETS]; /* observations <= bounds[i], not cumulative */
  guint64 count;
  double sum;
} PromtextHistogram;

/* Whether @name matches [a-zA-Z_:][a-zA-Z0-9_:]*. */
gboolean promtext_name_is_valid (const char *name);

/* "# HELP name help" and "# TYPE name type". */
void promtext_family (GString *out, const char *name, PromtextType type, const char *help);

/* One sample line. @labels: NULL, or label names and values alternating,
 * NULL-terminated ({"code", "401", NULL}). */
void promtext_sample (GString *out, const char *name, const char *const *labels,
                      guint64 value);
void promtext_sample_double (GString *out, const char *name, const char *const *labels,
                             double value);

/* @bounds must outlive @h; at most PROMTEXT_MAX_BUCKETS of them. */
void promtext_histogram_init (PromtextHistogram *h, const double *bounds, gsize n_bounds);
void promtext_histogram_observe (PromtextHistogram *h, double value);
/* The whole family: HELP, TYPE, name_bucket{le=...} (cumulative), name_sum,
 * name_count. */
void promtext_histogram_write (GString *out, const char *name, const char *help,
                               const PromtextHistogram *h);
