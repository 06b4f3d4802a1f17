/* Mailboxes of the signaling server, without I/O. See mailbox.h. */
#include "mailbox.h"

typedef struct
{
  gpointer item;
  gint64 queued_at;
} MailboxEntry;

typedef struct
{
  GQueue entries;          /* MailboxEntry*, oldest at the head */
  gboolean receiving;      /* a receive request is open now */
  gint64 last_receive_end; /* G_MININT64 when there never was one */
} Mailbox;

struct _MailboxStore
{
  MailboxLimits limits;
  GDestroyNotify item_free;
  GHashTable *boxes; /* char* peer-id (owned) -> Mailbox* (owned) */
};

static void
mailbox_entry_free (MailboxStore *store, MailboxEntry *entry)
{
  if (store->item_free != NULL)
    store->item_free (entry->item);
  g_free (entry);
}

static void
mailbox_free (gpointer data, gpointer user_data)
{
  MailboxStore *store = user_data;
  Mailbox *box = data;
  MailboxEntry *entry;

  while ((entry = g_queue_pop_head (&box->entries)) != NULL)
    mailbox_entry_free (store, entry);
  g_free (box);
}

MailboxStore *
mailbox_store_new (const MailboxLimits *limits, GDestroyNotify item_free)
{
  MailboxStore *store = g_new0 (MailboxStore, 1);

  if (limits != NULL)
    store->limits = *limits;
  else
    store->limits = (MailboxLimits){
      .queue_max = MAILBOX_DEFAULT_QUEUE_MAX,
      .peers_max = MAILBOX_DEFAULT_PEERS_MAX,
      .max_age_us = MAILBOX_DEFAULT_MAX_AGE_US,
      .online_us = MAILBOX_DEFAULT_ONLINE_US,
    };
  store->item_free = item_free;
  /* Values are freed by hand: a GHashTable value destructor gets no user data. */
  store->boxes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return store;
}

void
mailbox_store_free (MailboxStore *store)
{
  GHashTableIter iter;
  gpointer value;

  if (store == NULL)
    return;
  g_hash_table_iter_init (&iter, store->boxes);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    mailbox_free (value, store);
  g_hash_table_destroy (store->boxes);
  g_free (store);
}

static gboolean
mailbox_is_expired (MailboxStore *store, const MailboxEntry *entry, gint64 now)
{
  return now - entry->queued_at > store->limits.max_age_us;
}

/* Drops expired entries from the head; entries are queued in time order. */
static guint
mailbox_drop_expired (MailboxStore *store, Mailbox *box, gint64 now)
{
  MailboxEntry *entry;
  guint dropped = 0;

  while ((entry = g_queue_peek_head (&box->entries)) != NULL
         && mailbox_is_expired (store, entry, now))
    {
      g_queue_pop_head (&box->entries);
      mailbox_entry_free (store, entry);
      dropped++;
    }
  return dropped;
}

static gboolean
mailbox_is_online (MailboxStore *store, const Mailbox *box, gint64 now)
{
  if (box->receiving)
    return TRUE;
  if (box->last_receive_end == G_MININT64)
    return FALSE;
  return now - box->last_receive_end <= store->limits.online_us;
}

/* Finds or creates the mailbox of @peer; NULL when the store is full. */
static Mailbox *
mailbox_store_lookup_or_create (MailboxStore *store, const char *peer, gint64 now)
{
  Mailbox *box = g_hash_table_lookup (store->boxes, peer);

  if (box != NULL)
    return box;
  if (g_hash_table_size (store->boxes) >= store->limits.peers_max)
    {
      /* Make room from stale mailboxes before refusing. */
      mailbox_store_prune (store, now);
      if (g_hash_table_size (store->boxes) >= store->limits.peers_max)
        return NULL;
    }
  box = g_new0 (Mailbox, 1);
  g_queue_init (&box->entries);
  box->last_receive_end = G_MININT64;
  g_hash_table_insert (store->boxes, g_strdup (peer), box);
  return box;
}

MailboxStatus
mailbox_store_post (MailboxStore *store, const char *peer, gpointer item, gint64 now)
{
  Mailbox *box;
  MailboxEntry *entry;

  g_return_val_if_fail (store != NULL && peer != NULL, MAILBOX_FULL);

  box = mailbox_store_lookup_or_create (store, peer, now);
  if (box == NULL)
    {
      if (store->item_free != NULL)
        store->item_free (item);
      return MAILBOX_TOO_MANY_PEERS;
    }
  mailbox_drop_expired (store, box, now);
  if (g_queue_get_length (&box->entries) >= store->limits.queue_max)
    {
      if (store->item_free != NULL)
        store->item_free (item);
      return MAILBOX_FULL;
    }
  entry = g_new0 (MailboxEntry, 1);
  entry->item = item;
  entry->queued_at = now;
  g_queue_push_tail (&box->entries, entry);
  return MAILBOX_OK;
}

GPtrArray *
mailbox_store_take (MailboxStore *store, const char *peer, gint64 now)
{
  GPtrArray *items;
  Mailbox *box;
  MailboxEntry *entry;

  g_return_val_if_fail (store != NULL && peer != NULL, NULL);

  items = g_ptr_array_new_with_free_func (store->item_free);
  box = g_hash_table_lookup (store->boxes, peer);
  if (box == NULL)
    return items;
  mailbox_drop_expired (store, box, now);
  while ((entry = g_queue_pop_head (&box->entries)) != NULL)
    {
      g_ptr_array_add (items, entry->item);
      g_free (entry);
    }
  return items;
}

guint
mailbox_store_queued (MailboxStore *store, const char *peer)
{
  Mailbox *box = g_hash_table_lookup (store->boxes, peer);

  return box != NULL ? g_queue_get_length (&box->entries) : 0;
}

MailboxStatus
mailbox_store_set_receiving (MailboxStore *store, const char *peer, gboolean receiving,
                             gint64 now)
{
  Mailbox *box;

  g_return_val_if_fail (store != NULL && peer != NULL, MAILBOX_TOO_MANY_PEERS);

  if (receiving)
    {
      box = mailbox_store_lookup_or_create (store, peer, now);
      if (box == NULL)
        return MAILBOX_TOO_MANY_PEERS;
      box->receiving = TRUE;
      return MAILBOX_OK;
    }
  box = g_hash_table_lookup (store->boxes, peer);
  if (box != NULL)
    {
      box->receiving = FALSE;
      box->last_receive_end = now;
    }
  return MAILBOX_OK;
}

gboolean
mailbox_store_is_online (MailboxStore *store, const char *peer, gint64 now)
{
  Mailbox *box = g_hash_table_lookup (store->boxes, peer);

  return box != NULL && mailbox_is_online (store, box, now);
}

guint
mailbox_store_prune (MailboxStore *store, gint64 now)
{
  GHashTableIter iter;
  gpointer value;
  guint dropped = 0;

  g_hash_table_iter_init (&iter, store->boxes);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Mailbox *box = value;

      dropped += mailbox_drop_expired (store, box, now);
      if (g_queue_is_empty (&box->entries) && !mailbox_is_online (store, box, now))
        {
          mailbox_free (box, store);
          g_hash_table_iter_remove (&iter);
        }
    }
  return dropped;
}

guint
mailbox_store_size (MailboxStore *store)
{
  return g_hash_table_size (store->boxes);
}
