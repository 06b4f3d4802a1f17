/* Mailboxes of the signaling server, without I/O. See mailbox.h. */
#include "mailbox.h"

#include <string.h>

/* Keys of the counters: who a count is about. */
#define MAILBOX_SENDER_PREFIX "s:"
#define MAILBOX_ADDRESS_PREFIX "a:"
#define MAILBOX_QUEUED_PREFIX "q:" /* items in the store, per address */

/* Buckets of the delivery latency, in seconds: a peer that is receiving gets
 * a message within milliseconds; one that is not, when it next asks (up to
 * max_age_us, 60 s by default). */
static const double mailbox_latency_bounds[]
    = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60 };

typedef struct
{
  gpointer item;
  gint64 queued_at;
  char *sender;  /* MAILBOX_SENDER_PREFIX key */
  char *address; /* MAILBOX_ADDRESS_PREFIX key */
} MailboxEntry;

typedef struct
{
  GQueue entries;          /* MailboxEntry*, oldest at the head */
  GHashTable *shares;      /* sender or address key -> items queued here */
  gboolean receiving;      /* a receive request is open now */
  gint64 last_receive_end; /* G_MININT64 when there never was one */
  /* Set while its owner has not asked for it: who made it (keys, charged
   * in the store's budgets), and when. */
  char *maker_sender;
  char *maker_address;
  gint64 made_at;
} Mailbox;

struct _MailboxStore
{
  MailboxLimits limits;
  GDestroyNotify item_free;
  GHashTable *boxes;   /* char* peer-id (owned) -> Mailbox* (owned) */
  GHashTable *budgets; /* sender/address key -> mailboxes charged; queued key -> items */
  MailboxStats stats;
};

static guint
mailbox_count_get (GHashTable *counts, const char *key)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (counts, key));
}

/* Adds @delta to the count of @key; a count of zero is removed. */
static void
mailbox_count_add (GHashTable *counts, const char *key, int delta)
{
  guint n = mailbox_count_get (counts, key);

  g_assert (delta >= 0 || n >= (guint)-delta);
  n = (guint)((int)n + delta);
  if (n == 0)
    g_hash_table_remove (counts, key);
  else
    g_hash_table_insert (counts, g_strdup (key), GUINT_TO_POINTER (n));
}

static GHashTable *
mailbox_counts_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

/* The "q:" key of an "a:" key. */
static char *
mailbox_queued_key (const char *address_key)
{
  return g_strconcat (MAILBOX_QUEUED_PREFIX,
                      address_key + strlen (MAILBOX_ADDRESS_PREFIX), NULL);
}

/* Unlinks @entry's counts; its item is the caller's. */
static void
mailbox_entry_release (MailboxStore *store, Mailbox *box, MailboxEntry *entry)
{
  g_autofree char *queued = mailbox_queued_key (entry->address);

  mailbox_count_add (box->shares, entry->sender, -1);
  mailbox_count_add (box->shares, entry->address, -1);
  mailbox_count_add (store->budgets, queued, -1);
  store->stats.queued--;
  g_free (entry->sender);
  g_free (entry->address);
  g_free (entry);
}

static void
mailbox_entry_free (MailboxStore *store, Mailbox *box, MailboxEntry *entry)
{
  if (store->item_free != NULL)
    store->item_free (entry->item);
  mailbox_entry_release (store, box, entry);
}

/* Ends the charge of a mailbox to its maker: its owner asked, or it is gone. */
static void
mailbox_unmake (MailboxStore *store, Mailbox *box)
{
  if (box->maker_sender == NULL)
    return;
  mailbox_count_add (store->budgets, box->maker_sender, -1);
  mailbox_count_add (store->budgets, box->maker_address, -1);
  g_clear_pointer (&box->maker_sender, g_free);
  g_clear_pointer (&box->maker_address, g_free);
}

static void
mailbox_free (MailboxStore *store, Mailbox *box)
{
  MailboxEntry *entry;

  store->stats.dropped += g_queue_get_length (&box->entries);
  while ((entry = g_queue_pop_head (&box->entries)) != NULL)
    mailbox_entry_free (store, box, entry);
  mailbox_unmake (store, box);
  g_hash_table_destroy (box->shares);
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
      .sender_max = MAILBOX_DEFAULT_SENDER_MAX,
      .address_max = MAILBOX_DEFAULT_ADDRESS_MAX,
      .peers_max = MAILBOX_DEFAULT_PEERS_MAX,
      .unclaimed_per_sender = MAILBOX_DEFAULT_UNCLAIMED_PER_SENDER,
      .unclaimed_per_address = MAILBOX_DEFAULT_UNCLAIMED_PER_ADDRESS,
      .queued_per_address = MAILBOX_DEFAULT_QUEUED_PER_ADDRESS,
      .max_age_us = MAILBOX_DEFAULT_MAX_AGE_US,
      .online_us = MAILBOX_DEFAULT_ONLINE_US,
    };
  store->item_free = item_free;
  /* Values are freed by hand: a GHashTable value destructor gets no user data. */
  store->boxes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  store->budgets = mailbox_counts_new ();
  promtext_histogram_init (&store->stats.latency, mailbox_latency_bounds,
                           G_N_ELEMENTS (mailbox_latency_bounds));
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
    mailbox_free (store, value);
  g_hash_table_destroy (store->boxes);
  g_hash_table_destroy (store->budgets);
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
      mailbox_entry_free (store, box, entry);
      dropped++;
    }
  store->stats.expired += dropped;
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

/* Evicts the oldest mailbox whose owner never asked for it; FALSE if none. */
static gboolean
mailbox_store_evict_unclaimed (MailboxStore *store)
{
  GHashTableIter iter;
  gpointer key, value;
  const char *oldest = NULL;
  Mailbox *oldest_box = NULL;

  g_hash_table_iter_init (&iter, store->boxes);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      Mailbox *box = value;

      if (box->maker_sender != NULL
          && (oldest_box == NULL || box->made_at < oldest_box->made_at))
        {
          oldest = key;
          oldest_box = box;
        }
    }
  if (oldest_box == NULL)
    return FALSE;
  g_debug ("mailbox of %.8s… evicted for a peer that asked for its own", oldest);
  g_hash_table_remove (store->boxes, oldest);
  mailbox_free (store, oldest_box);
  return TRUE;
}

/* Creates the mailbox of @peer; NULL when the store is full. An owner asking
 * (@for_owner) evicts a mailbox that nobody asked for rather than fail. */
static Mailbox *
mailbox_store_create (MailboxStore *store, const char *peer, gboolean for_owner,
                      gint64 now)
{
  Mailbox *box;

  if (g_hash_table_size (store->boxes) >= store->limits.peers_max)
    {
      /* Make room from stale mailboxes before refusing. */
      mailbox_store_prune (store, now);
      if (g_hash_table_size (store->boxes) >= store->limits.peers_max
          && !(for_owner && mailbox_store_evict_unclaimed (store)))
        return NULL;
    }
  box = g_new0 (Mailbox, 1);
  g_queue_init (&box->entries);
  box->shares = mailbox_counts_new ();
  box->last_receive_end = G_MININT64;
  box->made_at = now;
  g_hash_table_insert (store->boxes, g_strdup (peer), box);
  return box;
}

static MailboxStatus
mailbox_store_refuse (MailboxStore *store, gpointer item, MailboxStatus status)
{
  if (store->item_free != NULL)
    store->item_free (item);
  return status;
}

MailboxStatus
mailbox_store_post (MailboxStore *store, const char *peer, const char *sender,
                    const char *address, gpointer item, gint64 now)
{
  g_autofree char *sender_key = NULL;
  g_autofree char *address_key = NULL;
  g_autofree char *queued_key = NULL;
  const MailboxLimits *l;
  Mailbox *box;
  MailboxEntry *entry;

  g_return_val_if_fail (
      store != NULL && peer != NULL && sender != NULL && address != NULL, MAILBOX_FULL);

  l = &store->limits;
  sender_key = g_strconcat (MAILBOX_SENDER_PREFIX, sender, NULL);
  address_key = g_strconcat (MAILBOX_ADDRESS_PREFIX, address, NULL);
  queued_key = mailbox_queued_key (address_key);
  if (mailbox_count_get (store->budgets, queued_key) >= l->queued_per_address)
    return mailbox_store_refuse (store, item, MAILBOX_OVER_BUDGET);

  box = g_hash_table_lookup (store->boxes, peer);
  if (box == NULL)
    {
      /* A mailbox its owner has not asked for costs whoever makes it. */
      if (mailbox_count_get (store->budgets, sender_key) >= l->unclaimed_per_sender
          || mailbox_count_get (store->budgets, address_key) >= l->unclaimed_per_address)
        return mailbox_store_refuse (store, item, MAILBOX_OVER_BUDGET);
      box = mailbox_store_create (store, peer, FALSE, now);
      if (box == NULL)
        return mailbox_store_refuse (store, item, MAILBOX_TOO_MANY_PEERS);
      box->maker_sender = g_strdup (sender_key);
      box->maker_address = g_strdup (address_key);
      mailbox_count_add (store->budgets, sender_key, 1);
      mailbox_count_add (store->budgets, address_key, 1);
    }
  mailbox_drop_expired (store, box, now);
  if (g_queue_get_length (&box->entries) >= l->queue_max)
    return mailbox_store_refuse (store, item, MAILBOX_FULL);
  if (mailbox_count_get (box->shares, sender_key) >= l->sender_max
      || mailbox_count_get (box->shares, address_key) >= l->address_max)
    return mailbox_store_refuse (store, item, MAILBOX_SHARE_FULL);

  entry = g_new0 (MailboxEntry, 1);
  entry->item = item;
  entry->queued_at = now;
  entry->sender = g_steal_pointer (&sender_key);
  entry->address = g_steal_pointer (&address_key);
  mailbox_count_add (box->shares, entry->sender, 1);
  mailbox_count_add (box->shares, entry->address, 1);
  mailbox_count_add (store->budgets, queued_key, 1);
  g_queue_push_tail (&box->entries, entry);
  store->stats.posted++;
  store->stats.queued++;
  return MAILBOX_OK;
}

/* An entry with its turn: the how-manieth of its sender's entries it is. */
typedef struct
{
  GList *link;
  guint turn;
  guint position;
} MailboxTurn;

static int
mailbox_turn_compare (gconstpointer a, gconstpointer b)
{
  const MailboxTurn *x = a, *y = b;

  if (x->turn != y->turn)
    return x->turn < y->turn ? -1 : 1;
  return x->position < y->position ? -1 : x->position > y->position;
}

GPtrArray *
mailbox_store_take (MailboxStore *store, const char *peer, guint max, gint64 now)
{
  g_autoptr (GHashTable) seen = NULL;
  g_autoptr (GArray) turns = NULL;
  GPtrArray *items;
  Mailbox *box;
  guint position = 0;

  g_return_val_if_fail (store != NULL && peer != NULL, NULL);

  items = g_ptr_array_new_with_free_func (store->item_free);
  box = g_hash_table_lookup (store->boxes, peer);
  if (box == NULL)
    return items;
  mailbox_drop_expired (store, box, now);

  seen = g_hash_table_new (g_str_hash, g_str_equal); /* sender key -> entries so far */
  turns = g_array_sized_new (FALSE, FALSE, sizeof (MailboxTurn), box->entries.length);
  for (GList *l = box->entries.head; l != NULL; l = l->next)
    {
      MailboxEntry *entry = l->data;
      guint turn = GPOINTER_TO_UINT (g_hash_table_lookup (seen, entry->sender));
      MailboxTurn t = { .link = l, .turn = turn, .position = position++ };

      g_hash_table_insert (seen, entry->sender, GUINT_TO_POINTER (turn + 1));
      g_array_append_val (turns, t);
    }
  g_array_sort (turns, mailbox_turn_compare);
  for (guint i = 0; i < turns->len && i < max; i++)
    {
      GList *link = g_array_index (turns, MailboxTurn, i).link;
      MailboxEntry *entry = link->data;

      g_ptr_array_add (items, entry->item);
      store->stats.delivered++;
      promtext_histogram_observe (&store->stats.latency,
                                  (double)MAX (now - entry->queued_at, 0) / G_USEC_PER_SEC);
      g_queue_delete_link (&box->entries, link);
      mailbox_entry_release (store, box, entry);
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

  box = g_hash_table_lookup (store->boxes, peer);
  if (receiving)
    {
      if (box == NULL)
        box = mailbox_store_create (store, peer, TRUE, now);
      if (box == NULL)
        return MAILBOX_TOO_MANY_PEERS;
      mailbox_unmake (store, box);
      box->receiving = TRUE;
      return MAILBOX_OK;
    }
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
          mailbox_free (store, box);
          g_hash_table_iter_remove (&iter);
        }
    }
  return dropped;
}

guint
mailbox_store_drop (MailboxStore *store, const char *peer)
{
  Mailbox *box = g_hash_table_lookup (store->boxes, peer);
  guint dropped;

  if (box == NULL)
    return 0;
  dropped = g_queue_get_length (&box->entries);
  mailbox_free (store, box);
  g_hash_table_remove (store->boxes, peer);
  return dropped;
}

guint
mailbox_store_size (MailboxStore *store)
{
  return g_hash_table_size (store->boxes);
}

const MailboxStats *
mailbox_store_stats (MailboxStore *store)
{
  return &store->stats;
}
