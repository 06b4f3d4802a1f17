/* A bounded set of disjoint half-open ranges [start, end) of u64, sorted
 * ascending: received packet numbers, received or acknowledged stream bytes,
 * bytes to retransmit. The storage is the caller's fixed array; nothing
 * allocates. What happens when it is full is the caller's policy (see the
 * add functions). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct xport_range
{
  uint64_t start;
  uint64_t end;
};

struct xport_ranges
{
  struct xport_range *r;
  size_t n;
  size_t cap;
};

void xport_ranges_init (struct xport_ranges *s, struct xport_range *storage, size_t cap);
/* Adds [start, end). Returns false, changing nothing, if a new range would
 * be needed and the set is full. */
bool xport_ranges_add (struct xport_ranges *s, uint64_t start, uint64_t end);
/* Adds [start, end); when full, merges the two ranges with the smallest gap
 * between them first, so the set grows to a superset (for "to retransmit"). */
void xport_ranges_add_merge (struct xport_ranges *s, uint64_t start, uint64_t end);
/* Adds [start, end); when full, forgets the lowest range first (for
 * received packet numbers: the oldest matter least). */
void xport_ranges_add_drop_low (struct xport_ranges *s, uint64_t start, uint64_t end);
/* Removes [start, end). Splitting a range needs one more slot: when full,
 * the upper part is dropped (a subset remains). */
void xport_ranges_remove (struct xport_ranges *s, uint64_t start, uint64_t end);
bool xport_ranges_contains (const struct xport_ranges *s, uint64_t v);
/* Forgets everything below @v. */
void xport_ranges_trim_below (struct xport_ranges *s, uint64_t v);
