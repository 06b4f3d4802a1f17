/* Token-bucket request limits per key. See ratelimit.h.
 *
 * Tokens are counted in millionths so that refill is exact integer
 * arithmetic: one microsecond at @rate requests per second refills @rate
 * micro-tokens. */
#include "ratelimit.h"

#define RATELIMIT_UNIT G_GINT64_CONSTANT (1000000)

typedef struct
{
  gint64 tokens; /* micro-tokens, 0..burst * RATELIMIT_UNIT */
  gint64 updated;
} Bucket;

struct _RateLimiter
{
  gint64 rate;     /* micro-tokens per microsecond, = requests per second */
  gint64 capacity; /* burst * RATELIMIT_UNIT */
  guint max_keys;
  GHashTable *buckets; /* char* key (owned) -> Bucket* (owned) */
};

RateLimiter *
ratelimit_new (guint rate, guint burst, guint max_keys)
{
  RateLimiter *rl;

  g_return_val_if_fail (rate >= 1 && burst >= 1 && max_keys >= 1, NULL);

  rl = g_new0 (RateLimiter, 1);
  rl->rate = rate;
  rl->capacity = (gint64)burst * RATELIMIT_UNIT;
  rl->max_keys = max_keys;
  rl->buckets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return rl;
}

void
ratelimit_free (RateLimiter *rl)
{
  if (rl == NULL)
    return;
  g_hash_table_destroy (rl->buckets);
  g_free (rl);
}

static void
bucket_refill (const RateLimiter *rl, Bucket *b, gint64 now)
{
  gint64 elapsed = now - b->updated;

  if (elapsed <= 0)
    return;
  /* Saturate before multiplying: a long idle time must not overflow. */
  if (elapsed >= rl->capacity / rl->rate + 1)
    b->tokens = rl->capacity;
  else
    b->tokens = MIN (rl->capacity, b->tokens + elapsed * rl->rate);
  b->updated = now;
}

gboolean
ratelimit_allow (RateLimiter *rl, const char *key, gint64 now)
{
  Bucket *b;

  g_return_val_if_fail (rl != NULL && key != NULL, FALSE);

  b = g_hash_table_lookup (rl->buckets, key);
  if (b == NULL)
    {
      if (g_hash_table_size (rl->buckets) >= rl->max_keys
          && ratelimit_prune (rl, now) >= rl->max_keys)
        return FALSE;
      b = g_new0 (Bucket, 1);
      b->tokens = rl->capacity;
      b->updated = now;
      g_hash_table_insert (rl->buckets, g_strdup (key), b);
    }
  bucket_refill (rl, b, now);
  if (b->tokens < RATELIMIT_UNIT)
    return FALSE;
  b->tokens -= RATELIMIT_UNIT;
  return TRUE;
}

guint
ratelimit_prune (RateLimiter *rl, gint64 now)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, rl->buckets);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Bucket *b = value;

      bucket_refill (rl, b, now);
      if (b->tokens >= rl->capacity)
        g_hash_table_iter_remove (&iter);
    }
  return g_hash_table_size (rl->buckets);
}
