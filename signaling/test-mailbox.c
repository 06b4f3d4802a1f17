/* Unit tests of the sans-IO mailbox store (signaling/mailbox.c). */
#include "mailbox.h"

#define S G_USEC_PER_SEC
#define PEER_A "peer-a"
#define PEER_B "peer-b"
#define PEER_C "peer-c"

static MailboxLimits
small_limits (void)
{
  return (MailboxLimits){
    .queue_max = 3, .peers_max = 2, .max_age_us = 60 * S, .online_us = 30 * S
  };
}

static void
test_order_and_take (void)
{
  g_autoptr (MailboxStore) store = mailbox_store_new (NULL, g_free);
  g_autoptr (GPtrArray) items = NULL;
  g_autoptr (GPtrArray) again = NULL;

  g_assert_cmpint (mailbox_store_post (store, PEER_A, g_strdup ("one"), 1 * S), ==,
                   MAILBOX_OK);
  g_assert_cmpint (mailbox_store_post (store, PEER_A, g_strdup ("two"), 2 * S), ==,
                   MAILBOX_OK);
  g_assert_cmpuint (mailbox_store_queued (store, PEER_A), ==, 2);
  g_assert_cmpuint (mailbox_store_queued (store, PEER_B), ==, 0);

  items = mailbox_store_take (store, PEER_A, 3 * S);
  g_assert_cmpuint (items->len, ==, 2);
  g_assert_cmpstr (items->pdata[0], ==, "one");
  g_assert_cmpstr (items->pdata[1], ==, "two");

  again = mailbox_store_take (store, PEER_A, 3 * S);
  g_assert_cmpuint (again->len, ==, 0);
}

static void
test_queue_full (void)
{
  MailboxLimits limits = small_limits ();
  g_autoptr (MailboxStore) store = mailbox_store_new (&limits, g_free);
  g_autoptr (GPtrArray) items = NULL;

  for (int i = 0; i < 3; i++)
    g_assert_cmpint (mailbox_store_post (store, PEER_A, g_strdup ("x"), S), ==,
                     MAILBOX_OK);
  /* Refused items are freed by the store (ASan would see a leak otherwise). */
  g_assert_cmpint (mailbox_store_post (store, PEER_A, g_strdup ("y"), S), ==,
                   MAILBOX_FULL);
  g_assert_cmpuint (mailbox_store_queued (store, PEER_A), ==, 3);

  /* Taking makes room again. */
  items = mailbox_store_take (store, PEER_A, 2 * S);
  g_assert_cmpuint (items->len, ==, 3);
  g_assert_cmpint (mailbox_store_post (store, PEER_A, g_strdup ("z"), 2 * S), ==,
                   MAILBOX_OK);
}

static void
test_default_queue_max (void)
{
  g_autoptr (MailboxStore) store = mailbox_store_new (NULL, g_free);

  for (int i = 0; i < MAILBOX_DEFAULT_QUEUE_MAX; i++)
    g_assert_cmpint (mailbox_store_post (store, PEER_A, g_strdup ("x"), S), ==,
                     MAILBOX_OK);
  g_assert_cmpint (mailbox_store_post (store, PEER_A, g_strdup ("x"), S), ==,
                   MAILBOX_FULL);
}

static void
test_expiry (void)
{
  MailboxLimits limits = small_limits ();
  g_autoptr (MailboxStore) store = mailbox_store_new (&limits, g_free);
  g_autoptr (GPtrArray) items = NULL;

  g_assert_cmpint (mailbox_store_post (store, PEER_A, g_strdup ("old"), 0), ==,
                   MAILBOX_OK);
  g_assert_cmpint (mailbox_store_post (store, PEER_A, g_strdup ("new"), 30 * S), ==,
                   MAILBOX_OK);
  /* Exactly 60 s old is still delivered; older is not. */
  items = mailbox_store_take (store, PEER_A, 60 * S + 1);
  g_assert_cmpuint (items->len, ==, 1);
  g_assert_cmpstr (items->pdata[0], ==, "new");

  g_assert_cmpint (mailbox_store_post (store, PEER_B, g_strdup ("b"), 100 * S), ==,
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

  g_assert_cmpint (mailbox_store_post (store, PEER_A, g_strdup ("a"), 0), ==, MAILBOX_OK);
  g_assert_cmpint (mailbox_store_set_receiving (store, PEER_B, TRUE, 0), ==, MAILBOX_OK);
  g_assert_cmpuint (mailbox_store_size (store), ==, 2);
  g_assert_cmpint (mailbox_store_post (store, PEER_C, g_strdup ("c"), S), ==,
                   MAILBOX_TOO_MANY_PEERS);
  g_assert_cmpint (mailbox_store_set_receiving (store, PEER_C, TRUE, S), ==,
                   MAILBOX_TOO_MANY_PEERS);
  /* Existing mailboxes still take messages. */
  g_assert_cmpint (mailbox_store_post (store, PEER_B, g_strdup ("b"), S), ==, MAILBOX_OK);

  /* Once A's mailbox is empty and A is not online, it makes room. */
  items = mailbox_store_take (store, PEER_A, 2 * S);
  g_assert_cmpuint (items->len, ==, 1);
  g_assert_cmpint (mailbox_store_post (store, PEER_C, g_strdup ("c"), 2 * S), ==,
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

  g_assert_cmpint (mailbox_store_post (store, PEER_A, g_strdup ("a"), 0), ==, MAILBOX_OK);
  g_assert_cmpint (mailbox_store_post (store, PEER_B, g_strdup ("b"), 0), ==, MAILBOX_OK);
  mailbox_store_free (store);
  mailbox_store_free (NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/signal/mailbox/order-and-take", test_order_and_take);
  g_test_add_func ("/signal/mailbox/queue-full", test_queue_full);
  g_test_add_func ("/signal/mailbox/default-queue-max", test_default_queue_max);
  g_test_add_func ("/signal/mailbox/expiry", test_expiry);
  g_test_add_func ("/signal/mailbox/too-many-peers", test_too_many_peers);
  g_test_add_func ("/signal/mailbox/online", test_online);
  g_test_add_func ("/signal/mailbox/free-with-items", test_free_with_items);
  return g_test_run ();
}
