/* Bounded range sets; see xport_ranges.h. The sets are small (tens of
 * entries), so plain arrays with memmove beat any tree. */
#include "xport_ranges.h"

#include <string.h>

void
xport_ranges_init (struct xport_ranges *s, struct xport_range *storage, size_t cap)
{
  s->r = storage;
  s->n = 0;
  s->cap = cap;
}

static void
erase (struct xport_ranges *s, size_t i, size_t count)
{
  memmove (&s->r[i], &s->r[i + count], (s->n - i - count) * sizeof s->r[0]);
  s->n -= count;
}

bool
xport_ranges_add (struct xport_ranges *s, uint64_t start, uint64_t end)
{
  if (start >= end)
    return true;
  /* First range whose end reaches start (touching ranges merge): binary
   * search, since the sets of a fast stream hold hundreds of holes. */
  size_t lo = 0, hi = s->n;
  while (lo < hi)
    {
      size_t mid = lo + (hi - lo) / 2;
      if (s->r[mid].end < start)
        lo = mid + 1;
      else
        hi = mid;
    }
  size_t i = lo;
  if (i == s->n || s->r[i].start > end)
    {
      if (s->n == s->cap)
        return false;
      memmove (&s->r[i + 1], &s->r[i], (s->n - i) * sizeof s->r[0]);
      s->r[i].start = start;
      s->r[i].end = end;
      s->n++;
      return true;
    }
  if (start < s->r[i].start)
    s->r[i].start = start;
  if (end > s->r[i].end)
    s->r[i].end = end;
  size_t j = i + 1;
  while (j < s->n && s->r[j].start <= s->r[i].end)
    {
      if (s->r[j].end > s->r[i].end)
        s->r[i].end = s->r[j].end;
      j++;
    }
  erase (s, i + 1, j - i - 1);
  return true;
}

void
xport_ranges_add_merge (struct xport_ranges *s, uint64_t start, uint64_t end)
{
  while (!xport_ranges_add (s, start, end))
    {
      if (s->n < 2)
        {
          /* One slot only: widen it. */
          if (start < s->r[0].start)
            s->r[0].start = start;
          if (end > s->r[0].end)
            s->r[0].end = end;
          return;
        }
      size_t best = 0;
      for (size_t i = 1; i + 1 < s->n; i++)
        if (s->r[i + 1].start - s->r[i].end < s->r[best + 1].start - s->r[best].end)
          best = i;
      s->r[best].end = s->r[best + 1].end;
      erase (s, best + 1, 1);
    }
}

void
xport_ranges_add_drop_low (struct xport_ranges *s, uint64_t start, uint64_t end)
{
  while (!xport_ranges_add (s, start, end))
    {
      if (s->n == 0)
        return;
      if (end <= s->r[0].start)
        return; /* the new range would be the lowest: forget it instead */
      erase (s, 0, 1);
    }
}

void
xport_ranges_remove (struct xport_ranges *s, uint64_t start, uint64_t end)
{
  if (start >= end)
    return;
  size_t i = 0;
  while (i < s->n)
    {
      struct xport_range *r = &s->r[i];
      if (r->end <= start)
        {
          i++;
          continue;
        }
      if (r->start >= end)
        break;
      if (r->start >= start && r->end <= end)
        {
          erase (s, i, 1);
          continue;
        }
      if (r->start < start && r->end > end)
        {
          /* Split. */
          uint64_t hi_end = r->end;
          r->end = start;
          if (s->n < s->cap)
            {
              memmove (&s->r[i + 2], &s->r[i + 1], (s->n - i - 1) * sizeof s->r[0]);
              s->r[i + 1].start = end;
              s->r[i + 1].end = hi_end;
              s->n++;
            }
          return;
        }
      if (r->start < start)
        r->end = start;
      else
        r->start = end;
      i++;
    }
}

bool
xport_ranges_contains (const struct xport_ranges *s, uint64_t v)
{
  for (size_t i = 0; i < s->n; i++)
    {
      if (v < s->r[i].start)
        return false;
      if (v < s->r[i].end)
        return true;
    }
  return false;
}

void
xport_ranges_trim_below (struct xport_ranges *s, uint64_t v)
{
  size_t i = 0;
  while (i < s->n && s->r[i].end <= v)
    i++;
  erase (s, 0, i);
  if (s->n > 0 && s->r[0].start < v)
    s->r[0].start = v;
}
