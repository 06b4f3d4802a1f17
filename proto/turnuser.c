/* The TURN REST username grammar; see turnuser.h. */
#include "turnuser.h"

#include <string.h>

/* s[0, len) as a decimal number of 1 to max_digits digits, nothing else;
 * saturates at G_MAXUINT64 (so callers' range checks catch overflow). */
static gboolean
turnuser_digits (const char *s, size_t len, size_t max_digits, guint64 *value)
{
  if (len == 0 || len > max_digits)
    return FALSE;
  guint64 v = 0;
  for (size_t i = 0; i < len; i++)
    {
      if (!g_ascii_isdigit (s[i]))
        return FALSE;
      guint d = (guint)(s[i] - '0');
      v = v > (G_MAXUINT64 - d) / 10 ? G_MAXUINT64 : v * 10 + d;
    }
  *value = v;
  return TRUE;
}

/* One OPT of s[*pos, len): its key and value; *pos moves past it and the
 * ',' after it. */
static enum turnuser_status
turnuser_next_opt (const char *s, size_t len, size_t *pos, const char **key,
                   size_t *key_len, guint64 *value)
{
  const char *opt = s + *pos;
  size_t rest = len - *pos;
  const char *comma = memchr (opt, ',', rest);
  size_t opt_len = comma != NULL ? (size_t)(comma - opt) : rest;
  const char *eq = memchr (opt, '=', opt_len);
  if (eq == NULL)
    return TURNUSER_BAD_OPTION;
  *key = opt;
  *key_len = (size_t)(eq - opt);
  if (*key_len == 0 || *key_len > TURNUSER_MAX_KEY_LEN)
    return TURNUSER_BAD_OPTION;
  for (size_t i = 0; i < *key_len; i++)
    if (opt[i] < 'a' || opt[i] > 'z')
      return TURNUSER_BAD_OPTION;
  if (!turnuser_digits (eq + 1, opt_len - *key_len - 1, TURNUSER_MAX_DIGITS, value))
    return TURNUSER_BAD_OPTION;
  /* A ',' must be followed by another OPT: no empty one at the end. */
  if (comma != NULL && (size_t)(comma - s) + 1 == len)
    return TURNUSER_BAD_OPTION;
  *pos += opt_len + (comma != NULL ? 1 : 0);
  return TURNUSER_OK;
}

/* Whether the OPTs in s[start, end) have the key k. */
static gboolean
turnuser_has_key (const char *s, size_t start, size_t end, const char *k, size_t k_len)
{
  size_t pos = start;
  while (pos < end)
    {
      const char *key;
      size_t key_len;
      guint64 value;
      /* Already parsed once: cannot fail. */
      if (turnuser_next_opt (s, end, &pos, &key, &key_len, &value) != TURNUSER_OK)
        return FALSE;
      if (key_len == k_len && memcmp (key, k, k_len) == 0)
        return TRUE;
    }
  return FALSE;
}

/* The options after "PEERID:", s[start, len), into *out. */
static enum turnuser_status
turnuser_parse_opts (const char *s, size_t start, size_t len, struct turnuser *out)
{
  size_t pos = start;
  if (pos == len)
    return TURNUSER_BAD_OPTION;
  while (pos < len)
    {
      size_t at = pos;
      const char *key;
      size_t key_len;
      guint64 value;
      enum turnuser_status st = turnuser_next_opt (s, len, &pos, &key, &key_len, &value);
      if (st != TURNUSER_OK)
        return st;
      /* The options before this one end with its ',' (at - 1). */
      if (at > start && turnuser_has_key (s, start, at - 1, key, key_len))
        return TURNUSER_DUPLICATE;
      if (key_len == 1 && key[0] == 'a')
        {
          if (value < 1 || value > TURNUSER_MAX_ALLOC)
            return TURNUSER_OUT_OF_RANGE;
          out->max_alloc = (guint)value;
        }
      else if (key_len == 1 && key[0] == 'b')
        {
          if (value < 1 || value > TURNUSER_MAX_BPS)
            return TURNUSER_OUT_OF_RANGE;
          out->max_bps = value;
        }
      /* Unknown keys: skipped (turnuser.h). */
    }
  return TURNUSER_OK;
}

/* Whether s[0, len) begins with a valid peer-id that ends it or is
 * followed by ':'. */
static gboolean
turnuser_starts_with_peer (const char *s, size_t len)
{
  if (len < PEERID_LEN || (len > PEERID_LEN && s[PEERID_LEN] != ':'))
    return FALSE;
  char id[PEERID_SIZE];
  memcpy (id, s, PEERID_LEN);
  id[PEERID_LEN] = '\0';
  return peerid_is_valid (id);
}

static enum turnuser_status
turnuser_parse_inner (const char *s, size_t len, struct turnuser *out)
{
  if (len > TURNUSER_MAX_LEN)
    return TURNUSER_TOO_LONG;
  if (len == 0) /* s may then be NULL, which memchr must not get */
    return TURNUSER_BAD_EXPIRY;
  const char *colon = memchr (s, ':', len);
  size_t expiry_len = colon != NULL ? (size_t)(colon - s) : len;
  guint64 expiry;
  if (!turnuser_digits (s, expiry_len, TURNUSER_MAX_EXPIRY_DIGITS, &expiry)
      || expiry > (guint64)G_MAXINT64)
    return TURNUSER_BAD_EXPIRY;
  out->expiry = (gint64)expiry;
  if (colon == NULL)
    {
      out->name = s + len; /* empty, but not NULL */
      return TURNUSER_OK;
    }
  const char *name = colon + 1;
  size_t name_len = len - expiry_len - 1;
  if (memchr (name, '\0', name_len) != NULL)
    return TURNUSER_BAD_NAME;
  out->name = name;
  if (!turnuser_starts_with_peer (name, name_len))
    {
      out->name_len = name_len;
      return TURNUSER_OK;
    }
  out->name_len = PEERID_LEN;
  out->is_peer = TRUE;
  if (name_len == PEERID_LEN)
    return TURNUSER_OK;
  size_t opts = (size_t)(name - s) + PEERID_LEN + 1;
  return turnuser_parse_opts (s, opts, len, out);
}

enum turnuser_status
turnuser_parse (const char *s, size_t len, struct turnuser *out)
{
  memset (out, 0, sizeof *out);
  enum turnuser_status st = turnuser_parse_inner (s, len, out);
  if (st != TURNUSER_OK)
    memset (out, 0, sizeof *out);
  return st;
}

const char *
turnuser_status_to_string (enum turnuser_status status)
{
  switch (status)
    {
    case TURNUSER_OK:
      return "valid";
    case TURNUSER_TOO_LONG:
      return "too long";
    case TURNUSER_BAD_EXPIRY:
      return "bad expiry";
    case TURNUSER_BAD_NAME:
      return "NUL in the name";
    case TURNUSER_BAD_OPTION:
      return "malformed option";
    case TURNUSER_DUPLICATE:
      return "option given twice";
    case TURNUSER_OUT_OF_RANGE:
      return "option out of range";
    default:
      return "unknown status";
    }
}

char *
turnuser_format (gint64 expiry, const char *peer_id, guint max_alloc, guint64 max_bps)
{
  g_return_val_if_fail (expiry >= 0, NULL);
  g_return_val_if_fail (peerid_is_valid (peer_id), NULL);
  g_return_val_if_fail (max_alloc <= TURNUSER_MAX_ALLOC, NULL);
  g_return_val_if_fail (max_bps <= TURNUSER_MAX_BPS, NULL);
  GString *u = g_string_sized_new (TURNUSER_MAX_LEN);
  g_string_append_printf (u, "%" G_GINT64_FORMAT ":%s", expiry, peer_id);
  char sep = ':';
  if (max_alloc != 0)
    {
      g_string_append_printf (u, "%ca=%u", sep, max_alloc);
      sep = ',';
    }
  if (max_bps != 0)
    g_string_append_printf (u, "%cb=%" G_GUINT64_FORMAT, sep, max_bps);
  return g_string_free (u, FALSE);
}
