/* Allocation quotas per REST name and per client address; see quota.h. */
#include "quota.h"

#include "alloc.h"

void
relay_quota_init (struct relay_quota *q)
{
  q->per_name = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  q->per_addr = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

void
relay_quota_clear (struct relay_quota *q)
{
  g_clear_pointer (&q->per_name, g_hash_table_unref);
  g_clear_pointer (&q->per_addr, g_hash_table_unref);
}

/* The client's IP without its port: the key of per_addr. */
static void
quota_addr_key (const struct stun_addr *client, char key[static 64])
{
  struct stun_addr ip = *client;
  ip.port = 0;
  relay_addr_to_string (&ip, key, 64);
}

static guint
quota_count (GHashTable *table, const char *key)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (table, key));
}

static void
quota_step (GHashTable *table, const char *key, int delta)
{
  guint n = quota_count (table, key);
  if (delta < 0 && n <= 1)
    g_hash_table_remove (table, key);
  else
    g_hash_table_insert (table, g_strdup (key),
                         GUINT_TO_POINTER (delta < 0 ? n - 1 : n + 1));
}

enum relay_quota_status
relay_quota_check (const struct relay_quota *q, const char *name,
                   const struct stun_addr *client, guint max_per_name,
                   guint max_per_address)
{
  char key[64];
  quota_addr_key (client, key);
  if (quota_count (q->per_name, name) >= max_per_name)
    return RELAY_QUOTA_NAME;
  if (quota_count (q->per_addr, key) >= max_per_address)
    return RELAY_QUOTA_ADDRESS;
  return RELAY_QUOTA_OK;
}

void
relay_quota_add (struct relay_quota *q, const char *name, const struct stun_addr *client)
{
  char key[64];
  quota_addr_key (client, key);
  quota_step (q->per_name, name, 1);
  quota_step (q->per_addr, key, 1);
}

void
relay_quota_remove (struct relay_quota *q, const char *name,
                    const struct stun_addr *client)
{
  char key[64];
  quota_addr_key (client, key);
  quota_step (q->per_name, name, -1);
  quota_step (q->per_addr, key, -1);
}
