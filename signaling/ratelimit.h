/* Token-bucket request limits per key (a peer-id, or a remote address), without
 * I/O. Each key may make @burst requests at once and @rate per second after
 * that. Time is passed in, in microseconds of a monotonic clock.
 *
 * The number of keys is bounded: a key whose bucket has refilled is forgotten
 * (it would be created full again), and a new key is refused while
 * @max_keys buckets are still refilling. */
#pragma once

#include <glib.h>

typedef struct _RateLimiter RateLimiter;

/* @rate and @burst at least 1, @max_keys at least 1. */
RateLimiter *ratelimit_new (guint rate, guint burst, guint max_keys);
void ratelimit_free (RateLimiter *rl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RateLimiter, ratelimit_free)

/* Takes one token from @key's bucket. FALSE when it is empty (or when a new
 * bucket cannot be made): the request must be refused. */
gboolean ratelimit_allow (RateLimiter *rl, const char *key, gint64 now);

/* Forgets every bucket that has refilled. Returns how many are left. */
guint ratelimit_prune (RateLimiter *rl, gint64 now);
