/* Mailboxes of the signaling server, without I/O.
 *
 * One mailbox per peer-id: a bounded queue of opaque items (the server stores
 * parsed signaling messages), each stamped with the time it was queued and
 * with who queued it (the sender's peer-id and its source address), plus the
 * receive state that API.md calls "online". Time is always passed in, in
 * microseconds of a monotonic clock, so that tests drive it by hand.
 *
 * Against a client that would lock others out (certificates cost nothing, so
 * every budget holds per sender and per source address):
 * - each sender, and each source address, has its own share of a mailbox, so
 *   strangers cannot crowd out a peer's other senders;
 * - a mailbox made by a post, for a peer that has not asked for it (never
 *   connected), is charged to its sender and its address until the owner asks;
 * - a source address has a budget of messages queued in the whole store;
 * - the owner asking for its mailbox always gets it: when the store is full,
 *   the oldest mailbox that its owner never asked for is evicted;
 * - a receive takes the senders' messages in turn, so a flood from strangers
 *   does not delay the others' messages.
 *
 * The store owns every queued item and frees it with the GDestroyNotify given
 * to mailbox_store_new(): when it expires, when the store is freed, and when
 * mailbox_store_post() refuses it. mailbox_store_take() hands items on to the
 * caller. */
#pragma once

#include <glib.h>

#include "promtext.h"

/* API.md's defaults, and README.md's security section says why. */
#define MAILBOX_DEFAULT_QUEUE_MAX 1024
#define MAILBOX_DEFAULT_SENDER_MAX 64
#define MAILBOX_DEFAULT_ADDRESS_MAX 256
#define MAILBOX_DEFAULT_PEERS_MAX 10000
#define MAILBOX_DEFAULT_UNCLAIMED_PER_SENDER 16
#define MAILBOX_DEFAULT_UNCLAIMED_PER_ADDRESS 128
#define MAILBOX_DEFAULT_QUEUED_PER_ADDRESS 4096
#define MAILBOX_DEFAULT_MAX_AGE_US (60 * G_USEC_PER_SEC)
#define MAILBOX_DEFAULT_ONLINE_US (30 * G_USEC_PER_SEC)

typedef struct
{
  guint queue_max;             /* items per mailbox, from all senders */
  guint sender_max;            /* items per mailbox from one sender */
  guint address_max;           /* items per mailbox from one source address */
  guint peers_max;             /* mailboxes in the store */
  guint unclaimed_per_sender;  /* mailboxes not asked for by their owner, per sender */
  guint unclaimed_per_address; /* the same, per source address */
  guint queued_per_address;    /* items in the whole store from one source address */
  gint64 max_age_us;           /* an item older than this is dropped unread */
  gint64 online_us;            /* "online" lasts this long after a receive ended */
} MailboxLimits;

typedef enum
{
  MAILBOX_OK,
  MAILBOX_FULL,           /* the recipient's queue holds queue_max items */
  MAILBOX_SHARE_FULL,     /* the sender, or its address, holds its share of the queue */
  MAILBOX_OVER_BUDGET,    /* the sender, or its address, holds its mailboxes not asked
                           * for, or its address its items in the store */
  MAILBOX_TOO_MANY_PEERS, /* a new mailbox would exceed peers_max */
} MailboxStatus;

/* What a store counted since it was made, for the metrics; the counters
 * only grow. */
typedef struct
{
  guint64 posted;    /* items mailbox_store_post() queued */
  guint64 delivered; /* items mailbox_store_take() handed out */
  guint64 expired;   /* items dropped unread past max_age_us */
  guint64 dropped;   /* items dropped with their mailbox (revoked, evicted) */
  guint queued;      /* items queued now */
  PromtextHistogram latency; /* seconds from post to take, per delivered item */
} MailboxStats;

typedef struct _MailboxStore MailboxStore;

/* @limits NULL means the defaults above. */
MailboxStore *mailbox_store_new (const MailboxLimits *limits, GDestroyNotify item_free);
void mailbox_store_free (MailboxStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MailboxStore, mailbox_store_free)

/* Queues @item for @peer from @sender (its peer-id) at source @address. On
 * MAILBOX_OK the store owns @item; on any other status @item has been freed. */
MailboxStatus mailbox_store_post (MailboxStore *store, const char *peer,
                                  const char *sender, const char *address, gpointer item,
                                  gint64 now);

/* Removes and returns up to @max unexpired items queued for @peer, as a new
 * array that frees its items with the store's item_free (never NULL; empty
 * when there is nothing). The senders take turns: first each sender's oldest
 * item, then each one's second, and so on; one sender's items stay in the
 * order they were queued. */
GPtrArray *mailbox_store_take (MailboxStore *store, const char *peer, guint max,
                               gint64 now);

/* Items queued for @peer (expired ones included until the next prune). */
guint mailbox_store_queued (MailboxStore *store, const char *peer);

/* A receive request of @peer starts (@receiving TRUE) or ends (FALSE). The
 * mailbox is created when needed, if need be in place of the oldest one that
 * its owner never asked for; MAILBOX_TOO_MANY_PEERS when there is none. Its
 * charge to whoever made it ends. Ending a receive never fails. */
MailboxStatus mailbox_store_set_receiving (MailboxStore *store, const char *peer,
                                           gboolean receiving, gint64 now);

/* API.md: a peer is online while a receive is open, and for online_us after. */
gboolean mailbox_store_is_online (MailboxStore *store, const char *peer, gint64 now);

/* Drops expired items, and mailboxes that are empty and no longer online.
 * Returns the number of items dropped. */
guint mailbox_store_prune (MailboxStore *store, gint64 now);

/* Drops @peer's mailbox with everything queued in it (a revoked peer).
 * Returns the number of items dropped. */
guint mailbox_store_drop (MailboxStore *store, const char *peer);

/* Mailboxes held now. */
guint mailbox_store_size (MailboxStore *store);

/* The store's counters, owned by the store. */
const MailboxStats *mailbox_store_stats (MailboxStore *store);
