/* A strict RFC 8259 syntax check with a nesting limit, no allocation.
 * json-glib 1.6 is lax (comments, single quotes, "var x =" prefixes, leading
 * zeros) and recurses without bound; hostile input passes this first. */
#include "jsonstrict.h"

typedef struct
{
  const char *s;
  size_t len;
  size_t pos;
} JsonCursor;

static void
jsonstrict_skip_ws (JsonCursor *c)
{
  /* RFC 8259 section 2: ws = space, tab, line feed, carriage return. */
  while (c->pos < c->len
         && (c->s[c->pos] == ' ' || c->s[c->pos] == '\t' || c->s[c->pos] == '\n'
             || c->s[c->pos] == '\r'))
    c->pos++;
}

static gboolean
jsonstrict_hex4 (JsonCursor *c, guint *out)
{
  guint v = 0;
  if (c->len - c->pos < 4)
    return FALSE;
  for (int i = 0; i < 4; i++)
    {
      int d = g_ascii_xdigit_value (c->s[c->pos + (size_t)i]);
      if (d < 0)
        return FALSE;
      v = (v << 4) | (guint)d;
    }
  c->pos += 4;
  *out = v;
  return TRUE;
}

static gboolean
jsonstrict_string (JsonCursor *c)
{
  if (c->pos >= c->len || c->s[c->pos] != '"')
    return FALSE;
  c->pos++;
  while (c->pos < c->len)
    {
      guchar ch = (guchar)c->s[c->pos++];
      guint cp;

      if (ch == '"')
        return TRUE;
      if (ch < 0x20) /* RFC 8259 section 7: control characters must be escaped */
        return FALSE;
      if (ch != '\\')
        continue;
      if (c->pos >= c->len)
        return FALSE;
      ch = (guchar)c->s[c->pos++];
      if (strchr ("\"\\/bfnrt", ch) != NULL && ch != '\0')
        continue;
      if (ch != 'u' || !jsonstrict_hex4 (c, &cp))
        return FALSE;
      /* A NUL would silently cut the string short in json-glib. */
      if (cp == 0)
        return FALSE;
      if (cp >= 0xdc00 && cp <= 0xdfff) /* a lone low surrogate */
        return FALSE;
      if (cp >= 0xd800 && cp <= 0xdbff)
        {
          /* A high surrogate must be followed by an escaped low surrogate. */
          if (c->len - c->pos < 2 || c->s[c->pos] != '\\' || c->s[c->pos + 1] != 'u')
            return FALSE;
          c->pos += 2;
          if (!jsonstrict_hex4 (c, &cp) || cp < 0xdc00 || cp > 0xdfff)
            return FALSE;
        }
    }
  return FALSE;
}

static gboolean
jsonstrict_digits (JsonCursor *c)
{
  size_t start = c->pos;
  while (c->pos < c->len && g_ascii_isdigit (c->s[c->pos]))
    c->pos++;
  return c->pos > start;
}

/* RFC 8259 section 6: -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)? */
static gboolean
jsonstrict_number (JsonCursor *c)
{
  if (c->pos < c->len && c->s[c->pos] == '-')
    c->pos++;
  if (c->pos < c->len && c->s[c->pos] == '0')
    c->pos++;
  else if (!jsonstrict_digits (c))
    return FALSE;
  if (c->pos < c->len && c->s[c->pos] == '.')
    {
      c->pos++;
      if (!jsonstrict_digits (c))
        return FALSE;
    }
  if (c->pos < c->len && (c->s[c->pos] == 'e' || c->s[c->pos] == 'E'))
    {
      c->pos++;
      if (c->pos < c->len && (c->s[c->pos] == '+' || c->s[c->pos] == '-'))
        c->pos++;
      if (!jsonstrict_digits (c))
        return FALSE;
    }
  return TRUE;
}

static gboolean
jsonstrict_literal (JsonCursor *c, const char *word)
{
  size_t n = strlen (word);
  if (c->len - c->pos < n || memcmp (c->s + c->pos, word, n) != 0)
    return FALSE;
  c->pos += n;
  return TRUE;
}

/* Recursion is bounded by JSONSTRICT_MAX_DEPTH. */
static gboolean
jsonstrict_value (JsonCursor *c, guint depth)
{
  jsonstrict_skip_ws (c);
  if (c->pos >= c->len)
    return FALSE;

  char ch = c->s[c->pos];
  if (ch == '{' || ch == '[')
    {
      char close = ch == '{' ? '}' : ']';
      if (depth >= JSONSTRICT_MAX_DEPTH)
        return FALSE;
      c->pos++;
      jsonstrict_skip_ws (c);
      if (c->pos < c->len && c->s[c->pos] == close)
        {
          c->pos++;
          return TRUE;
        }
      for (;;)
        {
          if (ch == '{')
            {
              jsonstrict_skip_ws (c);
              if (!jsonstrict_string (c))
                return FALSE;
              jsonstrict_skip_ws (c);
              if (c->pos >= c->len || c->s[c->pos] != ':')
                return FALSE;
              c->pos++;
            }
          if (!jsonstrict_value (c, depth + 1))
            return FALSE;
          jsonstrict_skip_ws (c);
          if (c->pos >= c->len)
            return FALSE;
          if (c->s[c->pos] == ',')
            {
              c->pos++;
              continue;
            }
          if (c->s[c->pos] != close)
            return FALSE;
          c->pos++;
          return TRUE;
        }
    }
  if (ch == '"')
    return jsonstrict_string (c);
  if (ch == '-' || g_ascii_isdigit (ch))
    return jsonstrict_number (c);
  return jsonstrict_literal (c, "true") || jsonstrict_literal (c, "false")
         || jsonstrict_literal (c, "null");
}

gboolean
jsonstrict_check (const char *s, size_t len)
{
  JsonCursor c = { s, len, 0 };
  if (!jsonstrict_value (&c, 0))
    return FALSE;
  jsonstrict_skip_ws (&c);
  return c.pos == c.len;
}

