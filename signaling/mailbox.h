/* Mailboxes of the signaling server, without I/O.
 *
 * One mailbox per peer-id: a bounded queue of opaque items (the server stores
 * parsed signaling messages), each stamped with the time it was queued, plus
 * the receive state that API.md calls "online". Time is always passed in, in
 * microseconds of a monotonic clock, so that tests drive it by hand.
 *
 * The store owns every queued item and frees it with the GDestroyNotify given
 * to mailbox_store_new(): when it expires, when the store is freed, and when
 * mailbox_store_post() refuses it. mailbox_store_take() hands items on to the
 * caller. */
#pragma once

#include <glib.h>

/* API.md: 64 queued messages, 60 seconds of age, 30 seconds of "online",
 * 10000 peers by default. */
#define MAILBOX_DEFAULT_QUEUE_MAX 64
#define MAILBOX_DEFAULT_PEERS_MAX 10000
#define MAILBOX_DEFAULT_MAX_AGE_US (60 * G_USEC_PER_SEC)
#define MAILBOX_DEFAULT_ONLINE_US (30 * G_USEC_PER_SEC)

typedef struct
{
  guint queue_max;   /* items per mailbox */
  guint peers_max;   /* mailboxes in the store */
  gint64 max_age_us; /* an item older than this is dropped unread */
  gint64 online_us;  /* "online" lasts this long after a receive ended */
} MailboxLimits;

typedef enum
{
  MAILBOX_OK,
  MAILBOX_FULL,           /* the recipient's queue holds queue_max items */
  MAILBOX_TOO_MANY_PEERS, /* a new mailbox would exceed peers_max */
} MailboxStatus;

typedef struct _MailboxStore MailboxStore;

/* @limits NULL means the defaults above. */
MailboxStore *mailbox_store_new (const MailboxLimits *limits, GDestroyNotify item_free);
void mailbox_store_free (MailboxStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MailboxStore, mailbox_store_free)

/* Queues @item for @peer. On MAILBOX_OK the store owns @item; on any other
 * status @item has been freed. */
MailboxStatus mailbox_store_post (MailboxStore *store, const char *peer, gpointer item,
                                  gint64 now);

/* Removes and returns every unexpired item queued for @peer, oldest first, as
 * a new array that frees its items with the store's item_free (never NULL;
 * empty when there is nothing). */
GPtrArray *mailbox_store_take (MailboxStore *store, const char *peer, gint64 now);

/* Items queued for @peer (expired ones included until the next prune). */
guint mailbox_store_queued (MailboxStore *store, const char *peer);

/* A receive request of @peer starts (@receiving TRUE) or ends (FALSE). The
 * mailbox is created when needed: MAILBOX_TOO_MANY_PEERS when it cannot be.
 * Ending a receive never fails. */
MailboxStatus mailbox_store_set_receiving (MailboxStore *store, const char *peer,
                                           gboolean receiving, gint64 now);

/* API.md: a peer is online while a receive is open, and for online_us after. */
gboolean mailbox_store_is_online (MailboxStore *store, const char *peer, gint64 now);

/* Drops expired items, and mailboxes that are empty and no longer online.
 * Returns the number of items dropped. */
guint mailbox_store_prune (MailboxStore *store, gint64 now);

/* Mailboxes held now. */
guint mailbox_store_size (MailboxStore *store);
