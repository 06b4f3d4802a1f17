/* Tests of agent/netwatch.c against the real kernel: links, addresses and
 * routes are changed with ip(8), and the watch must call back for the changes
 * that move the tunnel's path and stay quiet for the others.
 *
 * It changes the network it runs in, so it runs only in a network namespace
 * of its own: tests/integration/test_netwatch.py creates one, runs this
 * program in it through `ip netns exec`, and removes it afterwards. The
 * program refuses to start unless `ip netns identify` names the namespace
 * given in P2PTUN_NETWATCH_NETNS, so that it never touches the addresses or
 * routes of the machine it was started on. */
#include "netwatch.h"

#include <string.h>

/* Every wait is bounded: the watch calls back about 200 ms after a change. */
#define FIRE_TIMEOUT_MS 3000
#define QUIET_MS 1000

typedef struct
{
  GMainContext *context; /* the watch's own context, not the default one */
  NetWatch *watch;
  guint calls;
  gboolean free_in_callback; /* the callback frees the watch */
} Fixture;

static gboolean
try_ip (const char *args)
{
  g_autofree char *line = g_strconcat ("ip ", args, NULL);
  g_auto (GStrv) argv = NULL;
  g_autofree char *err = NULL;
  g_autoptr (GError) error = NULL;
  int status = 0;

  g_assert_true (g_shell_parse_argv (line, NULL, &argv, NULL));
  if (!g_spawn_sync (NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                     NULL, NULL, NULL, &err, &status, &error)
      || !g_spawn_check_wait_status (status, &error))
    {
      g_test_message ("%s: %s %s", line, error != NULL ? error->message : "", err);
      return FALSE;
    }
  return TRUE;
}

static void
ip (const char *args)
{
  if (!try_ip (args))
    g_error ("ip %s failed", args);
}

/* A link that is up, without IPv6 link-local address (which would otherwise
 * appear some time after the link comes up and look like a change). A dummy
 * link where the kernel has them; a veth pair otherwise. */
static void
add_link (const char *name)
{
  g_autofree char *dummy = g_strdup_printf ("link add %s type dummy", name);
  g_autofree char *veth
      = g_strdup_printf ("link add %s type veth peer name %sp", name, name);
  g_autofree char *peer_up = g_strdup_printf ("link set %sp addrgenmode none up", name);
  g_autofree char *up = g_strdup_printf ("link set %s addrgenmode none up", name);

  if (!try_ip (dummy))
    {
      g_test_message ("no dummy links here; %s is a veth pair", name);
      ip (veth);
      ip (peer_up);
    }
  ip (up);
}

static void
on_changed (gpointer user_data)
{
  Fixture *f = user_data;

  g_assert_true (g_main_context_is_owner (f->context));
  f->calls++;
  if (f->free_in_callback)
    g_clear_pointer (&f->watch, netwatch_free);
}

static gboolean
on_deadline (gpointer user_data)
{
  *(gboolean *)user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the watch's context until the callback has been called @calls times
 * in all, or @ms have passed; returns the number of calls. */
static guint
run_until (Fixture *f, guint calls, guint ms)
{
  gboolean expired = FALSE;
  GSource *deadline = g_timeout_source_new (ms);

  g_source_set_callback (deadline, on_deadline, &expired, NULL);
  g_source_attach (deadline, f->context);
  while (!expired && f->calls < calls)
    g_main_context_iteration (f->context, TRUE);
  g_source_destroy (deadline);
  g_source_unref (deadline);
  return f->calls;
}

static void
expect_call (Fixture *f)
{
  guint want = f->calls + 1;
  g_assert_cmpuint (run_until (f, want, FIRE_TIMEOUT_MS), ==, want);
}

static void
expect_quiet (Fixture *f)
{
  guint before = f->calls;
  g_assert_cmpuint (run_until (f, before + 1, QUIET_MS), ==, before);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  add_link ("d0");
  add_link ("d1");
  ip ("addr add 198.51.100.2/24 dev d1");
  f->context = g_main_context_new ();
  g_main_context_push_thread_default (f->context);
}

static void
start_watch (Fixture *f)
{
  f->watch = netwatch_new (f->context, on_changed, f);
  g_assert_nonnull (f->watch);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->watch, netwatch_free);
  g_main_context_pop_thread_default (f->context);
  /* Nothing of the watch may be left on the context. */
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_main_context_unref (f->context);
  try_ip ("link del d0");
  try_ip ("link del d1");
}

/* An address comes and goes: called each time, and has_address follows. */
static void
test_address (Fixture *f, gconstpointer data)
{
  start_watch (f);
  g_assert_false (netwatch_has_address ("192.0.2.7"));
  ip ("addr add 192.0.2.7/24 dev d0");
  expect_call (f);
  g_assert_true (netwatch_has_address ("192.0.2.7"));
  g_assert_true (netwatch_has_address ("::ffff:192.0.2.7"));
  g_assert_false (netwatch_has_address ("192.0.2.8"));
  /* One change, one call: the burst of notices it caused is one. */
  expect_quiet (f);

  ip ("addr del 192.0.2.7/24 dev d0");
  expect_call (f);
  g_assert_false (netwatch_has_address ("192.0.2.7"));

  ip ("-6 addr add 2001:db8::7/64 dev d0 nodad");
  expect_call (f);
  g_assert_true (netwatch_has_address ("2001:db8::7"));
  g_assert_true (netwatch_has_address ("2001:db8::7%d0"));
  g_assert_false (netwatch_has_address ("not an address"));
  g_assert_false (netwatch_has_address (""));
}

/* An address on a link that goes down no longer counts. */
static void
test_link_down (Fixture *f, gconstpointer data)
{
  ip ("addr add 192.0.2.7/24 dev d0");
  start_watch (f);
  g_assert_true (netwatch_has_address ("192.0.2.7"));
  ip ("link set d0 down");
  expect_call (f);
  g_assert_false (netwatch_has_address ("192.0.2.7"));
}

/* The default route appears and moves: the snapshot differs each time, and
 * the callback is called. */
static void
test_default_route (Fixture *f, gconstpointer data)
{
  g_autofree char *none = NULL, *first = NULL, *second = NULL, *v6 = NULL;

  start_watch (f);
  none = netwatch_default_route ();
  g_assert_cmpstr (none, ==, "v4 none; v6 none");

  ip ("route add default via 198.51.100.1 dev d1");
  expect_call (f);
  first = netwatch_default_route ();
  g_test_message ("%s", first);
  g_assert_nonnull (strstr (first, "v4 via 198.51.100.1 dev d1"));

  ip ("route replace default via 198.51.100.254 dev d1 src 198.51.100.2");
  expect_call (f);
  second = netwatch_default_route ();
  g_test_message ("%s", second);
  g_assert_nonnull (strstr (second, "v4 via 198.51.100.254 dev d1 src 198.51.100.2;"));
  g_assert_cmpstr (first, !=, second);

  /* Two gateways at once (RTA_MULTIPATH), then one less. */
  ip ("route replace default nexthop via 198.51.100.1 dev d1 "
      "nexthop via 198.51.100.254 dev d1");
  expect_call (f);
  g_clear_pointer (&second, g_free);
  second = netwatch_default_route ();
  g_test_message ("%s", second);
  g_assert_nonnull (strstr (second, "v4 nexthop via 198.51.100.1 dev d1 "
                                    "nexthop via 198.51.100.254 dev d1;"));
  ip ("route replace default via 198.51.100.254 dev d1");
  expect_call (f);

  ip ("-6 addr add 2001:db8:1::2/64 dev d1 nodad");
  expect_call (f);
  ip ("-6 route add default via 2001:db8:1::1 dev d1");
  expect_call (f);
  v6 = netwatch_default_route ();
  g_test_message ("%s", v6);
  g_assert_nonnull (strstr (v6, "; v6 via 2001:db8:1::1 dev d1"));
}

/* A route that is not a default route, with addresses and default routes as
 * they were: no call. A real change afterwards still is one, so the silence
 * was not deafness. */
static void
test_unrelated (Fixture *f, gconstpointer data)
{
  g_autofree char *before = NULL, *after = NULL;

  ip ("route add default via 198.51.100.1 dev d1");
  start_watch (f);
  before = netwatch_default_route ();
  ip ("route add 203.0.113.0/24 via 198.51.100.1 dev d1");
  expect_quiet (f);
  ip ("route del 203.0.113.0/24 via 198.51.100.1 dev d1");
  expect_quiet (f);
  after = netwatch_default_route ();
  g_assert_cmpstr (before, ==, after);

  ip ("route del default via 198.51.100.1 dev d1");
  expect_call (f);
}

/* Two owners on one context each hear of the change; the callback may free
 * its watch. */
static void
test_two_owners (Fixture *f, gconstpointer data)
{
  Fixture other = { .context = f->context, .free_in_callback = TRUE };

  start_watch (f);
  other.watch = netwatch_new (f->context, on_changed, &other);
  g_assert_nonnull (other.watch);
  ip ("addr add 192.0.2.7/24 dev d0");
  expect_call (f);
  g_assert_cmpuint (run_until (&other, 1, FIRE_TIMEOUT_MS), ==, 1);
  g_assert_null (other.watch);
}

/* Refuses to run anywhere but in the namespace the driver made for it. */
static gboolean
in_own_namespace (void)
{
  const char *want = g_getenv ("P2PTUN_NETWATCH_NETNS");
  const char *argv[] = { "ip", "netns", "identify", NULL };
  g_autofree char *out = NULL;
  int status = 0;

  if (want == NULL || !g_str_has_prefix (want, "p2ptun-nw-"))
    return FALSE;
  if (!g_spawn_sync (NULL, (char **)argv, NULL,
                     G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out,
                     NULL, &status, NULL)
      || !g_spawn_check_wait_status (status, NULL))
    return FALSE;
  return g_strcmp0 (g_strstrip (out), want) == 0;
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (!in_own_namespace ())
    {
      g_printerr ("test-netwatch changes links, addresses and routes; it runs only in "
                  "the network namespace named in P2PTUN_NETWATCH_NETNS (p2ptun-nw-*), "
                  "see tests/integration/test_netwatch.py\n");
      return 2;
    }
  g_test_add ("/netwatch/address", Fixture, NULL, fixture_setup, test_address,
              fixture_teardown);
  g_test_add ("/netwatch/link-down", Fixture, NULL, fixture_setup, test_link_down,
              fixture_teardown);
  g_test_add ("/netwatch/default-route", Fixture, NULL, fixture_setup, test_default_route,
              fixture_teardown);
  g_test_add ("/netwatch/unrelated", Fixture, NULL, fixture_setup, test_unrelated,
              fixture_teardown);
  g_test_add ("/netwatch/two-owners", Fixture, NULL, fixture_setup, test_two_owners,
              fixture_teardown);
  return g_test_run ();
}
