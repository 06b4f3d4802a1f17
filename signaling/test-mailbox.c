/* Unit tests of the sans-IO mailbox store (signaling/mailbox.c). */
#include "mailbox.h"

#define S G_USEC_PER_SEC
#define PEER_A "peer-a"
#define PEER_B "peer-b"
#define PEER_C "peer-c"
#define PEER_D "peer-d"
#define SENDER "sender"
#define ADDRESS "192.0.2.1"
#define TAKE_ALL G_MAXUINT

static MailboxLimits
small_limits (void)
{
  return (MailboxLimits){
    .queue_max = 3,
    .sender_max = 3,
    .address_max = 3,
    .peers_max = 2,
    .unclaimed_per_sender = 2,
    .unclaimed_per_address = 2,
    .queued_per_address = 100,
    .max_age_us = 60 * S,
    .online_us = 30 * S,
  };
}

static void
test_order_and_take (void)
{
  g_autoptr (MailboxStore) store = mailbox_store_new (NULL, g_free);
  g_autoptr (GPtrArray) items = NULL;
  g_autoptr (GPtrArray) again = NULL;

  g_assert_cmpint (
      mailbox_store_post (store, PEER_A, SENDER, ADDRESS, g_strdup ("one"), 1 * S), ==,
      MAILBOX_OK);
  g_assert_cmpint (
      mailbox_store_post (store, PEER_A, SENDER, ADDRESS, g_strdup ("two"), 2 * S), ==,
      MAILBOX_OK);
  g_assert_cmpuint (mailbox_store_queued (store, PEER_A), ==, 2);
  g_assert_cmpuint (mailbox_store_queued (store, PEER_B), ==, 0);

  items = mailbox_store_take (store, PEER_A, TAKE_ALL, 3 * S);
  g_assert_cmpuint (items->len, ==, 2);
  g_assert_cmpstr (items->pdata[0], ==, "one");
  g_assert_cmpstr (items->pdata[1], ==, "two");

  again = mailbox_store_take (store, PEER_A, TAKE_ALL, 3 * S);
  g_assert_cmpuint (again->len, ==, 0);
}

static void
test_queue_full (void)
{
  MailboxLimits limits = small_limits ();
  g_autoptr (MailboxStore) store = mailbox_store_new (&limits, g_free);
  g_autoptr (GPtrArray) items = NULL;

  for (int i = 0; i < 3; i++)
    g_assert_cmpint (
        mailbox_store_post (store, PEER_A, SENDER, ADDRESS, g_strdup ("x"), S), ==,
        MAILBOX_OK);
  /* Refused items are freed by the store (ASan would see a leak otherwise). */
  g_assert_cmpint (mailbox_store_post (store, PEER_A, SENDER, ADDRESS, g_strdup ("y"), S),
                   ==, MAILBOX_FULL);
  g_assert_cmpuint (mailbox_store_queued (store, PEER_A), ==, 3);

  /* Taking makes room again. */
  items = mailbox_store_take (store, PEER_A, TAKE_ALL, 2 * S);
  g_assert_cmpuint (items->len, ==, 3);
  g_assert_cmpint (
      mailbox_store_post (store, PEER_A, SENDER, ADDRESS, g_strdup ("z"), 2 * S), ==,
      MAILBOX_OK);
}

static void
test_default_sender_max (void)
{
  g_autoptr (MailboxStore) store = mailbox_store_new (NULL, g_free);

  for (int i = 0; i < MAILBOX_DEFAULT_SENDER_MAX; i++)
    g_assert_cmpint (
        mailbox_store_post (store, PEER_A, SENDER, ADDRESS, g_strdup ("x"), S), ==,
        MAILBOX_OK);
  g_assert_cmpint (mailbox_store_post (store, PEER_A, SENDER, ADDRESS, g_strdup ("x"), S),
                   ==, MAILBOX_SHARE_FULL);
  g_assert_cmpint (
      mailbox_store_post (store, PEER_A, "other", ADDRESS, g_strdup ("x"), S), ==,
      MAILBOX_OK);
}

static MailboxLimits
roomy_limits (void)
{
  MailboxLimits l = small_limits ();

  l.queue_max = 10;
  l.peers_max = 100;
  l.queued_per_address = 100;
  return l;
}

/* A stranger, or many from one address, cannot crowd out another sender. */
static void
test_sender_share (void)
{
  MailboxLimits limits = roomy_limits ();
  g_autoptr (MailboxStore) store = NULL;

  limits.sender_max = 2;
  limits.address_max = 3;
  store = mailbox_store_new (&limits, g_free);
  g_assert_cmpint (mailbox_store_set_receiving (store, PEER_B, TRUE, 0), ==, MAILBOX_OK);
  for (int i = 0; i < 2; i++)
    g_assert_cmpint (
        mailbox_store_post (store, PEER_B, "c1", "192.0.2.66", g_strdup ("c"), S), ==,
        MAILBOX_OK);
  g_assert_cmpint (
      mailbox_store_post (store, PEER_B, "c1", "192.0.2.66", g_strdup ("c"), S), ==,
      MAILBOX_SHARE_FULL);
  /* A second certificate from the same address: the address's share ends it. */
  g_assert_cmpint (
      mailbox_store_post (store, PEER_B, "c2", "192.0.2.66", g_strdup ("c"), S), ==,
      MAILBOX_OK);
  g_assert_cmpint (
      mailbox_store_post (store, PEER_B, "c2", "192.0.2.66", g_strdup ("c"), S), ==,
      MAILBOX_SHARE_FULL);
  /* A, elsewhere, still gets through. */
  g_assert_cmpint (mailbox_store_post (store, PEER_B, "a", ADDRESS, g_strdup ("a"), S),
                   ==, MAILBOX_OK);
  g_assert_cmpuint (mailbox_store_queued (store, PEER_B), ==, 4);
}

/* Mailboxes their owners never asked for cost their makers. */
static void
test_unclaimed_budget (void)
{
  MailboxLimits limits = roomy_limits ();
  g_autoptr (MailboxStore) store = NULL;
  const char *bad = "192.0.2.66";

  limits.unclaimed_per_sender = 2;
  limits.unclaimed_per_address = 3;
  store = mailbox_store_new (&limits, g_free);
  g_assert_cmpint (mailbox_store_post (store, "p1", "c1", bad, g_strdup ("x"), 0), ==,
                   MAILBOX_OK);
  g_assert_cmpint (mailbox_store_post (store, "p2", "c1", bad, g_strdup ("x"), 0), ==,
                   MAILBOX_OK);
  g_assert_cmpint (mailbox_store_post (store, "p3", "c1", bad, g_strdup ("x"), 0), ==,
                   MAILBOX_OVER_BUDGET);
  /* Posting to a mailbox that exists costs nothing more. */
  g_assert_cmpint (mailbox_store_post (store, "p1", "c1", bad, g_strdup ("x"), 0), ==,
                   MAILBOX_OK);
  /* A new certificate from the same address: the address's budget ends it. */
  g_assert_cmpint (mailbox_store_post (store, "p3", "c2", bad, g_strdup ("x"), 0), ==,
                   MAILBOX_OK);
  g_assert_cmpint (mailbox_store_post (store, "p4", "c2", bad, g_strdup ("x"), 0), ==,
                   MAILBOX_OVER_BUDGET);
  /* Others are not charged for it. */
  g_assert_cmpint (mailbox_store_post (store, "p4", SENDER, ADDRESS, g_strdup ("x"), 0),
                   ==, MAILBOX_OK);
  /* Once p1's owner asks for its mailbox, it no longer costs c1. */
  g_assert_cmpint (mailbox_store_set_receiving (store, "p1", TRUE, S), ==, MAILBOX_OK);
  g_assert_cmpint (mailbox_store_post (store, "p5", "c1", bad, g_strdup ("x"), S), ==,
                   MAILBOX_OK);
  /* And the charge of a mailbox that expired ends with it. */
  mailbox_store_prune (store, 61 * S + 1);
  g_assert_cmpint (mailbox_store_post (store, "p6", "c2", bad, g_strdup ("x"), 62 * S),
                   ==, MAILBOX_OK);
}

/* An owner always gets its mailbox: the oldest never asked for goes. */
static void
test_owner_evicts_unclaimed (void)
{
  MailboxLimits limits = small_limits ();
  g_autoptr (MailboxStore) store = mailbox_store_new (&limits, g_free);

  g_assert_cmpint (
      mailbox_store_post (store, PEER_A, "c1", "192.0.2.66", g_strdup ("x"), 0), ==,
      MAILBOX_OK);
  g_assert_cmpint (
      mailbox_store_post (store, PEER_B, "c2", "192.0.2.67", g_strdup ("x"), S), ==,
      MAILBOX_OK);
  g_assert_cmpint (
      mailbox_store_post (store, PEER_C, SENDER, ADDRESS, g_strdup ("x"), 2 * S), ==,
      MAILBOX_TOO_MANY_PEERS);
  g_assert_cmpint (mailbox_store_set_receiving (store, PEER_C, TRUE, 2 * S), ==,
                   MAILBOX_OK);
  g_assert_cmpuint (mailbox_store_size (store), ==, 2);
  g_assert_cmpuint (mailbox_store_queued (store, PEER_A), ==, 0); /* the oldest went */
  g_assert_cmpuint (mailbox_store_queued (store, PEER_B), ==, 1);
  g_assert_cmpint (mailbox_store_set_receiving (store, PEER_D, TRUE, 3 * S), ==,
                   MAILBOX_OK);
  g_assert_cmpuint (mailbox_store_queued (store, PEER_B), ==, 0);
  /* Only owners' mailboxes are left: nothing more to evict. */
  g_assert_cmpint (mailbox_store_set_receiving (store, PEER_A, TRUE, 4 * S), ==,
                   MAILBOX_TOO_MANY_PEERS);
}

static void
test_queued_per_address (void)
{
  MailboxLimits limits = roomy_limits ();
  g_autoptr (MailboxStore) store = NULL;
  g_autoptr (GPtrArray) items = NULL;

  limits.queued_per_address = 2;
  store = mailbox_store_new (&limits, g_free);
  g_assert_cmpint (mailbox_store_post (store, PEER_A, "c1", ADDRESS, g_strdup ("x"), 0),
                   ==, MAILBOX_OK);
  g_assert_cmpint (mailbox_store_post (store, PEER_B, "c2", ADDRESS, g_strdup ("x"), 0),
                   ==, MAILBOX_OK);
  g_assert_cmpint (mailbox_store_post (store, PEER_A, "c3", ADDRESS, g_strdup ("x"), 0),
                   ==, MAILBOX_OVER_BUDGET);
  items = mailbox_store_take (store, PEER_A, TAKE_ALL, S);
  g_assert_cmpint (mailbox_store_post (store, PEER_A, "c3", ADDRESS, g_strdup ("x"), S),
                   ==, MAILBOX_OK);
}

/* Senders take turns, each in its own order. */
static void
test_take_in_turns (void)
{
  MailboxLimits limits = roomy_limits ();
  g_autoptr (MailboxStore) store = NULL;
  g_autoptr (GPtrArray) first = NULL;
  g_autoptr (GPtrArray) rest = NULL;
  const char *want_first[] = { "x1", "y1", "x2", "y2" };
  const char *want_rest[] = { "x3", "x4", "x5" };

  limits.sender_max = 10;
  limits.address_max = 10;
  store = mailbox_store_new (&limits, g_free);
  for (int i = 1; i <= 5; i++)
    g_assert_cmpint (mailbox_store_post (store, PEER_A, "x", "192.0.2.66",
                                         g_strdup_printf ("x%d", i), i),
                     ==, MAILBOX_OK);
  for (int i = 1; i <= 2; i++)
    g_assert_cmpint (mailbox_store_post (store, PEER_A, "y", ADDRESS,
                                         g_strdup_printf ("y%d", i), 10 + i),
                     ==, MAILBOX_OK);
  first = mailbox_store_take (store, PEER_A, 4, 20);
  g_assert_cmpuint (first->len, ==, G_N_ELEMENTS (want_first));
  for (guint i = 0; i < first->len; i++)
    g_assert_cmpstr (first->pdata[i], ==, want_first[i]);
  rest = mailbox_store_take (store, PEER_A, TAKE_ALL, 20);
  g_assert_cmpuint (rest->len, ==, G_N_ELEMENTS (want_rest));
  for (guint i = 0; i < rest->len; i++)
    g_assert_cmpstr (rest->pdata[i], ==, want_rest[i]);
}

static void
test_expiry (void)
{
  MailboxLimits limits = small_limits ();
  g_autoptr (MailboxStore) store = mailbox_store_new (&limits, g_free);
  g_autoptr (GPtrArray) items = NULL;

  g_assert_cmpint (
      mailbox_store_post (store, PEER_A, SENDER, ADDRESS, g_strdup ("old"), 0), ==,
      MAILBOX_OK);
  g_assert_cmpint (
      mailbox_store_post (store, PEER_A, SENDER, ADDRESS, g_strdup ("new"), 30 * S), ==,
      MAILBOX_OK);
  /* Exactly 60 s old is still delivered; older is not. */
  items = mailbox_store_take (store, PEER_A, TAKE_ALL, 60 * S + 1);
  g_assert_cmpuint (items->len, ==, 1);
  g_assert_cmpstr (items->pdata[0], ==, "new");

  g_assert_cmpint (
      mailbox_store_post (store, PEER_B, SENDER, ADDRESS, g_strdup ("b"), 100 * S), ==,
      MAILBOX_OK);
  g_assert_cmpuint (mailbox_store_prune (store, 160 * S), ==, 0);
  g_assert_cmpuint (mailbox_store_prune (store, 160 * S + 1), ==, 1);
  /* Empty and never online: the mailboxes themselves are gone. */
  g_assert_cmpuint (mailbox_store_size (store), ==, 0);
}

static void
test_too_many_peers (void)
{
  MailboxLimits limits = small_limits ();
  g_autoptr (MailboxStore) store = mailbox_store_new (&limits, g_free);
  g_autoptr (GPtrArray) items = NULL;

  g_assert_cmpint (mailbox_store_post (store, PEER_A, SENDER, ADDRESS, g_strdup ("a"), 0),
                   ==, MAILBOX_OK);
  g_assert_cmpint (mailbox_store_set_receiving (store, PEER_B, TRUE, 0), ==, MAILBOX_OK);
  g_assert_cmpuint (mailbox_store_size (store), ==, 2);
  g_assert_cmpint (mailbox_store_post (store, PEER_C, SENDER, ADDRESS, g_strdup ("c"), S),
                   ==, MAILBOX_TOO_MANY_PEERS);
  /* Existing mailboxes still take messages. */
  g_assert_cmpint (mailbox_store_post (store, PEER_B, SENDER, ADDRESS, g_strdup ("b"), S),
                   ==, MAILBOX_OK);

  /* Once A's mailbox is empty and A is not online, it makes room. */
  items = mailbox_store_take (store, PEER_A, TAKE_ALL, 2 * S);
  g_assert_cmpuint (items->len, ==, 1);
  g_assert_cmpint (
      mailbox_store_post (store, PEER_C, SENDER, ADDRESS, g_strdup ("c"), 2 * S), ==,
      MAILBOX_OK);
  g_assert_cmpuint (mailbox_store_size (store), ==, 2);
}

static void
test_online (void)
{
  g_autoptr (MailboxStore) store = mailbox_store_new (NULL, g_free);

  g_assert_false (mailbox_store_is_online (store, PEER_A, 0));
  g_assert_cmpint (mailbox_store_set_receiving (store, PEER_A, TRUE, 10 * S), ==,
                   MAILBOX_OK);
  /* Online for as long as the receive is open... */
  g_assert_true (mailbox_store_is_online (store, PEER_A, 1000 * S));
  g_assert_cmpint (mailbox_store_set_receiving (store, PEER_A, FALSE, 20 * S), ==,
                   MAILBOX_OK);
  /* ...and for 30 s after it ended. */
  g_assert_true (mailbox_store_is_online (store, PEER_A, 50 * S));
  g_assert_false (mailbox_store_is_online (store, PEER_A, 50 * S + 1));

  /* An online peer's empty mailbox is kept; it goes once the peer is offline. */
  mailbox_store_prune (store, 40 * S);
  g_assert_cmpuint (mailbox_store_size (store), ==, 1);
  mailbox_store_prune (store, 51 * S);
  g_assert_cmpuint (mailbox_store_size (store), ==, 0);

  /* Ending a receive that never started is harmless. */
  g_assert_cmpint (mailbox_store_set_receiving (store, PEER_B, FALSE, 60 * S), ==,
                   MAILBOX_OK);
  g_assert_cmpuint (mailbox_store_size (store), ==, 0);
}

static void
test_free_with_items (void)
{
  MailboxStore *store = mailbox_store_new (NULL, g_free);

  g_assert_cmpint (mailbox_store_post (store, PEER_A, SENDER, ADDRESS, g_strdup ("a"), 0),
                   ==, MAILBOX_OK);
  g_assert_cmpint (mailbox_store_post (store, PEER_B, SENDER, ADDRESS, g_strdup ("b"), 0),
                   ==, MAILBOX_OK);
  mailbox_store_free (store);
  mailbox_store_free (NULL);
}

/* The counters for the metrics: posted, delivered with their latency,
 * expired, dropped with a revoked peer's mailbox, queued now. */
static void
test_stats (void)
{
  g_autoptr (MailboxStore) store = mailbox_store_new (NULL, g_free);
  g_autoptr (GPtrArray) items = NULL;
  const MailboxStats *st = mailbox_store_stats (store);

  mailbox_store_post (store, PEER_A, SENDER, ADDRESS, g_strdup ("one"), 1 * S);
  mailbox_store_post (store, PEER_A, SENDER, ADDRESS, g_strdup ("two"), 1 * S);
  mailbox_store_post (store, PEER_B, SENDER, ADDRESS, g_strdup ("old"), 1 * S);
  mailbox_store_post (store, PEER_C, SENDER, ADDRESS, g_strdup ("gone"), 1 * S);
  g_assert_cmpuint (st->posted, ==, 4);
  g_assert_cmpuint (st->queued, ==, 4);

  items = mailbox_store_take (store, PEER_A, TAKE_ALL, 1 * S + S / 100);
  g_assert_cmpuint (st->delivered, ==, 2);
  g_assert_cmpuint (st->latency.count, ==, 2);
  g_assert_cmpfloat_with_epsilon (st->latency.sum, 0.02, 1e-9);
  g_assert_cmpuint (st->latency.buckets[2], ==, 2); /* <= 0.01 s */

  g_assert_cmpuint (mailbox_store_prune (store, 62 * S), ==, 2);
  g_assert_cmpuint (st->expired, ==, 2);
  mailbox_store_post (store, PEER_D, SENDER, ADDRESS, g_strdup ("revoked"), 62 * S);
  g_assert_cmpuint (mailbox_store_drop (store, PEER_D), ==, 1);
  g_assert_cmpuint (st->dropped, ==, 1);
  g_assert_cmpuint (st->queued, ==, 0);
  g_assert_cmpuint (st->posted, ==, 5);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/signal/mailbox/order-and-take", test_order_and_take);
  g_test_add_func ("/signal/mailbox/queue-full", test_queue_full);
  g_test_add_func ("/signal/mailbox/default-sender-max", test_default_sender_max);
  g_test_add_func ("/signal/mailbox/sender-share", test_sender_share);
  g_test_add_func ("/signal/mailbox/unclaimed-budget", test_unclaimed_budget);
  g_test_add_func ("/signal/mailbox/owner-evicts-unclaimed", test_owner_evicts_unclaimed);
  g_test_add_func ("/signal/mailbox/queued-per-address", test_queued_per_address);
  g_test_add_func ("/signal/mailbox/take-in-turns", test_take_in_turns);
  g_test_add_func ("/signal/mailbox/expiry", test_expiry);
  g_test_add_func ("/signal/mailbox/too-many-peers", test_too_many_peers);
  g_test_add_func ("/signal/mailbox/online", test_online);
  g_test_add_func ("/signal/mailbox/free-with-items", test_free_with_items);
  g_test_add_func ("/signal/mailbox/stats", test_stats);
  return g_test_run ();
}
