/* The Prometheus text exposition format; see promtext.h. */
#include "promtext.h"

#include <math.h>
#include <string.h>

gboolean
promtext_name_is_valid (const char *name)
{
  if (name == NULL || name[0] == '\0' || g_ascii_isdigit (name[0]))
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && *p != ':')
      return FALSE;
  return TRUE;
}

/* The format's escapes: backslash and newline everywhere, the double quote
 * in label values only. */
static void
promtext_escape (GString *out, const char *text, gboolean quote)
{
  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == '\\')
        g_string_append (out, "\\\\");
      else if (*p == '\n')
        g_string_append (out, "\\n");
      else if (quote && *p == '"')
        g_string_append (out, "\\\"");
      else
        g_string_append_c (out, *p);
    }
}

static const char *
promtext_type_name (PromtextType type)
{
  switch (type)
    {
    case PROMTEXT_COUNTER:
      return "counter";
    case PROMTEXT_HISTOGRAM:
      return "histogram";
    case PROMTEXT_GAUGE:
    default:
      return "gauge";
    }
}

void
promtext_family (GString *out, const char *name, PromtextType type, const char *help)
{
  g_return_if_fail (promtext_name_is_valid (name));
  g_string_append_printf (out, "# HELP %s ", name);
  promtext_escape (out, help, FALSE);
  g_string_append_printf (out, "\n# TYPE %s %s\n", name, promtext_type_name (type));
}

static void
promtext_name_labels (GString *out, const char *name, const char *const *labels,
                      const char *le)
{
  gboolean any = FALSE;

  g_string_append (out, name);
  for (gsize i = 0; labels != NULL && labels[i] != NULL && labels[i + 1] != NULL; i += 2)
    {
      g_return_if_fail (promtext_name_is_valid (labels[i]) && strchr (labels[i], ':') == NULL);
      g_string_append_printf (out, "%s%s=\"", any ? "," : "{", labels[i]);
      promtext_escape (out, labels[i + 1], TRUE);
      g_string_append_c (out, '"');
      any = TRUE;
    }
  if (le != NULL)
    {
      g_string_append_printf (out, "%sle=\"%s\"", any ? "," : "{", le);
      any = TRUE;
    }
  if (any)
    g_string_append_c (out, '}');
}

void
promtext_sample (GString *out, const char *name, const char *const *labels,
                 guint64 value)
{
  g_return_if_fail (promtext_name_is_valid (name));
  promtext_name_labels (out, name, labels, NULL);
  g_string_append_printf (out, " %" G_GUINT64_FORMAT "\n", value);
}

/* Go's ParseFloat reads what %g writes, and "+Inf", "-Inf", "NaN". The
 * shorter %.15g when it reads back the same, so that a bucket bound 0.005
 * stays "0.005". */
static void
promtext_double (GString *out, double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (isnan (value))
    g_string_append (out, "NaN");
  else if (isinf (value))
    g_string_append (out, value > 0 ? "+Inf" : "-Inf");
  else
    {
      g_ascii_formatd (buf, sizeof buf, "%.15g", value);
      if (g_ascii_strtod (buf, NULL) != value)
        g_ascii_formatd (buf, sizeof buf, "%.17g", value);
      g_string_append (out, buf);
    }
}

void
promtext_sample_double (GString *out, const char *name, const char *const *labels,
                        double value)
{
  g_return_if_fail (promtext_name_is_valid (name));
  promtext_name_labels (out, name, labels, NULL);
  g_string_append_c (out, ' ');
  promtext_double (out, value);
  g_string_append_c (out, '\n');
}

void
promtext_histogram_init (PromtextHistogram *h, const double *bounds, gsize n_bounds)
{
  g_return_if_fail (n_bounds <= PROMTEXT_MAX_BUCKETS);
  memset (h, 0, sizeof *h);
  h->bounds = bounds;
  h->n_bounds = n_bounds;
}

void
promtext_histogram_observe (PromtextHistogram *h, double value)
{
  for (gsize i = 0; i < h->n_bounds; i++)
    if (value <= h->bounds[i])
      {
        h->buckets[i]++;
        break;
      }
  h->count++;
  h->sum += value;
}

void
promtext_histogram_write (GString *out, const char *name, const char *help,
                          const PromtextHistogram *h)
{
  g_autofree char *bucket = g_strconcat (name, "_bucket", NULL);
  g_autofree char *sum = g_strconcat (name, "_sum", NULL);
  g_autofree char *count = g_strconcat (name, "_count", NULL);
  guint64 cumulative = 0;

  promtext_family (out, name, PROMTEXT_HISTOGRAM, help);
  for (gsize i = 0; i < h->n_bounds; i++)
    {
      GString *le = g_string_new (NULL);

      promtext_double (le, h->bounds[i]);
      cumulative += h->buckets[i];
      promtext_name_labels (out, bucket, NULL, le->str);
      g_string_append_printf (out, " %" G_GUINT64_FORMAT "\n", cumulative);
      g_string_free (le, TRUE);
    }
  promtext_name_labels (out, bucket, NULL, "+Inf");
  g_string_append_printf (out, " %" G_GUINT64_FORMAT "\n", h->count);
  promtext_sample_double (out, sum, NULL, h->sum);
  promtext_sample (out, count, NULL, h->count);
}
