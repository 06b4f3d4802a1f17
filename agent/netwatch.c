/* See netwatch.h.
 *
 * A NETLINK_ROUTE socket subscribed to link, address and route notices is a
 * source on the owner's context. A notice that may matter (any link or
 * address notice, a route notice for a default route) arms a debounce timer;
 * when it fires, the state is read again (getifaddrs() for the addresses, an
 * RTM_GETROUTE dump for the default routes) and compared with the previous
 * reading, and the owner hears of it only when the two differ. The notices
 * only say "look again": what they carry is never trusted beyond deciding
 * whether to look, so a lost notice (ENOBUFS) or a truncated one also means
 * "look again".
 *
 * The default routes come from an RTM_GETROUTE dump rather than
 * /proc/net/route and /proc/net/ipv6_route: the dump gives both families in
 * one format, with the preferred source, the table (a VPN's default route often
 * lives in a table of its own) and the link state of each next hop, and it is
 * parsed by the same bounded walkers as the notices. */
#include "netwatch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <glib-unix.h>

/* A burst of notices (one `ip addr add` sends an address and two routes) is
 * read once, NETWATCH_QUIET_MS after its last notice, but never later than
 * NETWATCH_MAX_DELAY_MS after its first, so that steady churn (a container
 * host) cannot postpone the check forever. */
#define NETWATCH_QUIET_MS 200
#define NETWATCH_MAX_DELAY_MS 1000

/* The kernel puts at most 32 KiB of netlink messages in one datagram
 * (netlink_dump caps its buffer there); a longer one is reported as
 * truncated (MSG_TRUNC) and treated as an error or a "look again". */
#define NETWATCH_BUF_SIZE 32768

/* Limits on what the kernel may make us read: datagrams read per wake-up of
 * the notice socket (then the loop gets its turn back), messages in one route
 * dump (a full Internet table is not what a tunnel endpoint has; beyond this
 * the routes read as "unknown"), default routes kept per family, attempts at
 * a dump that the kernel marks as interrupted by a concurrent change. */
#define NETWATCH_READS_PER_WAKEUP 64
#define NETWATCH_DUMP_MAX_MESSAGES 100000
#define NETWATCH_MAX_DEFAULTS 64
#define NETWATCH_DUMP_ATTEMPTS 3

#define NETWATCH_RCVBUF (256 * 1024)
#define NETWATCH_DUMP_TIMEOUT_S 1

struct _NetWatch
{
  GMainContext *context;
  NetWatchFunc changed;
  gpointer user_data;
  int fd;              /* NETLINK_ROUTE, subscribed to the notices; -1 if none */
  GSource *fd_source;  /* reads fd */
  GSource *timer;      /* the debounce; ready time -1 when nothing is pending */
  gint64 first_notice; /* monotonic µs of the first notice of a pending burst */
  char *snapshot;      /* addresses and default routes at the last check */
  guint32 buf[NETWATCH_BUF_SIZE / sizeof (guint32)]; /* aligned for nlmsghdr */
};

/* ---- Bounded walkers over netlink bytes ----
 *
 * The kernel macros (NLMSG_NEXT, RTA_NEXT) subtract an aligned length from
 * the remaining one, which with a size_t that is 1 to 3 bytes short wraps
 * around; these check every length against what is left instead. */

/* The whole netlink message at *offset in buf[0, len), or NULL when what is
 * left is not one; moves *offset past it. */
static const struct nlmsghdr *
netwatch_next_msg (const guint8 *buf, size_t len, size_t *offset)
{
  const struct nlmsghdr *h;
  size_t left;

  if (*offset >= len)
    return NULL;
  left = len - *offset;
  if (left < sizeof (struct nlmsghdr))
    return NULL;
  h = (const struct nlmsghdr *)(const void *)(buf + *offset);
  if (h->nlmsg_len < sizeof (struct nlmsghdr) || h->nlmsg_len > left)
    return NULL;
  *offset += MIN ((size_t)NLMSG_ALIGN (h->nlmsg_len), left);
  return h;
}

/* The whole attribute at *offset in buf[0, len), or NULL; moves *offset past
 * it. *payload and *payload_len describe its value. */
static const struct rtattr *
netwatch_next_attr (const guint8 *buf, size_t len, size_t *offset, const guint8 **payload,
                    size_t *payload_len)
{
  const struct rtattr *a;
  size_t left;

  if (*offset >= len)
    return NULL;
  left = len - *offset;
  if (left < sizeof (struct rtattr))
    return NULL;
  a = (const struct rtattr *)(const void *)(buf + *offset);
  if (a->rta_len < RTA_LENGTH (0) || a->rta_len > left)
    return NULL;
  *payload = buf + *offset + RTA_LENGTH (0);
  *payload_len = a->rta_len - RTA_LENGTH (0);
  *offset += MIN ((size_t)RTA_ALIGN (a->rta_len), left);
  return a;
}

static gboolean
netwatch_read_u32 (const guint8 *payload, size_t len, guint32 *out)
{
  if (len < sizeof (guint32))
    return FALSE;
  memcpy (out, payload, sizeof (guint32));
  return TRUE;
}

/* ---- Default routes from an RTM_GETROUTE dump ---- */

static void
netwatch_append_addr (GString *s, const char *key, int family, const guint8 *payload,
                      size_t len)
{
  char text[INET6_ADDRSTRLEN];
  size_t need = family == AF_INET ? sizeof (struct in_addr) : sizeof (struct in6_addr);

  if ((family != AF_INET && family != AF_INET6) || len < need)
    {
      g_string_append_printf (s, " %s ?", key);
      return;
    }
  if (inet_ntop (family, payload, text, sizeof text) == NULL)
    g_strlcpy (text, "?", sizeof text);
  g_string_append_printf (s, " %s %s", key, text);
}

static void
netwatch_append_dev (GString *s, guint32 ifindex)
{
  char name[IF_NAMESIZE];

  if (if_indextoname (ifindex, name) != NULL)
    g_string_append_printf (s, " dev %s", name);
  else
    g_string_append_printf (s, " dev if%u", ifindex);
}

static void
netwatch_append_flags (GString *s, unsigned flags)
{
  if (flags & RTNH_F_DEAD)
    g_string_append (s, " dead");
  if (flags & RTNH_F_LINKDOWN)
    g_string_append (s, " linkdown");
}

/* A next hop's gateway, if @a is one: RTA_GATEWAY in the route's own family,
 * or RTA_VIA (struct rtvia: a family, then the address) for an IPv4 route
 * through an IPv6 gateway (RFC 5549). */
static void
netwatch_append_gateway (GString *s, int family, const struct rtattr *a,
                         const guint8 *payload, size_t len)
{
  struct rtvia via;

  if (a->rta_type == RTA_GATEWAY)
    netwatch_append_addr (s, "via", family, payload, len);
  else if (a->rta_type == RTA_VIA && len >= sizeof via)
    {
      memcpy (&via, payload, sizeof via);
      netwatch_append_addr (s, "via", via.rtvia_family, payload + sizeof via,
                            len - sizeof via);
    }
}

/* RTA_MULTIPATH: a run of struct rtnexthop, each followed by its own
 * attributes, each rtnh_len long. */
static void
netwatch_append_multipath (GString *s, int family, const guint8 *buf, size_t len)
{
  size_t offset = 0;

  while (len - offset >= sizeof (struct rtnexthop))
    {
      struct rtnexthop nh;
      size_t inner = sizeof (struct rtnexthop);
      const guint8 *payload;
      size_t payload_len;
      const struct rtattr *a;

      memcpy (&nh, buf + offset, sizeof nh);
      if (nh.rtnh_len < sizeof nh || nh.rtnh_len > len - offset)
        break;
      g_string_append (s, " nexthop");
      while ((a = netwatch_next_attr (buf + offset, nh.rtnh_len, &inner, &payload,
                                      &payload_len)))
        netwatch_append_gateway (s, family, a, payload, payload_len);
      netwatch_append_dev (s, (guint32)nh.rtnh_ifindex);
      netwatch_append_flags (s, nh.rtnh_flags);
      offset += MIN ((size_t)RTNH_ALIGN (nh.rtnh_len), len - offset);
    }
}

static const char *
netwatch_route_type (unsigned char type)
{
  switch (type)
    {
    case RTN_UNICAST:
      return "";
    case RTN_BLACKHOLE:
      return " blackhole";
    case RTN_UNREACHABLE:
      return " unreachable";
    case RTN_PROHIBIT:
      return " prohibit";
    case RTN_THROW:
      return " throw";
    default: /* local, broadcast, multicast...: not where traffic leaves */
      return NULL;
    }
}

/* One default route of @h (an RTM_NEWROUTE), as text whose parts come in a
 * fixed order whatever the order of the attributes, or NULL when @h is not a
 * default route or not a whole one. */
static char *
netwatch_route_entry (const struct nlmsghdr *h)
{
  const guint8 *msg = (const guint8 *)h;
  size_t offset = NLMSG_ALIGN (NLMSG_LENGTH (sizeof (struct rtmsg)));
  g_autoptr (GString) s = NULL;
  g_autoptr (GString) via = g_string_new (NULL);
  g_autoptr (GString) src = g_string_new (NULL);
  g_autoptr (GString) hops = g_string_new (NULL);
  gboolean has_oif = FALSE, has_metric = FALSE, has_nhid = FALSE;
  guint32 oif = 0, metric = 0, nhid = 0, table;
  const guint8 *payload;
  size_t payload_len;
  const struct rtattr *a;
  const char *type;
  struct rtmsg rt;

  if (h->nlmsg_len < NLMSG_LENGTH (sizeof rt))
    return NULL;
  memcpy (&rt, NLMSG_DATA (h), sizeof rt);
  type = netwatch_route_type (rt.rtm_type);
  if (rt.rtm_dst_len != 0 || (rt.rtm_flags & RTM_F_CLONED) || type == NULL)
    return NULL;
  table = rt.rtm_table;
  while ((a = netwatch_next_attr (msg, h->nlmsg_len, &offset, &payload, &payload_len)))
    {
      switch (a->rta_type)
        {
        case RTA_GATEWAY:
        case RTA_VIA:
          netwatch_append_gateway (via, rt.rtm_family, a, payload, payload_len);
          break;
        case RTA_OIF:
          has_oif = netwatch_read_u32 (payload, payload_len, &oif);
          break;
        case RTA_PREFSRC:
          netwatch_append_addr (src, "src", rt.rtm_family, payload, payload_len);
          break;
        case RTA_PRIORITY:
          has_metric = netwatch_read_u32 (payload, payload_len, &metric);
          break;
        case RTA_TABLE:
          (void)netwatch_read_u32 (payload, payload_len, &table);
          break;
        case RTA_NH_ID:
          has_nhid = netwatch_read_u32 (payload, payload_len, &nhid);
          break;
        case RTA_MULTIPATH:
          netwatch_append_multipath (hops, rt.rtm_family, payload, payload_len);
          break;
        default:
          break;
        }
    }

  s = g_string_new (type);
  g_string_append (s, via->str);
  if (has_oif)
    netwatch_append_dev (s, oif);
  g_string_append (s, src->str);
  if (has_metric)
    g_string_append_printf (s, " metric %u", metric);
  if (has_nhid)
    g_string_append_printf (s, " nhid %u", nhid);
  g_string_append (s, hops->str);
  if (table != RT_TABLE_MAIN)
    g_string_append_printf (s, " table %u", table);
  netwatch_append_flags (s, rt.rtm_flags);
  if (s->len == 0)
    return g_strdup ("dev ?");
  return g_strdup (s->str + 1); /* without the leading space */
}

typedef enum
{
  NETWATCH_DUMP_OK,
  NETWATCH_DUMP_INTERRUPTED, /* a change raced the dump: ask again */
  NETWATCH_DUMP_FAILED,
} NetWatchDump;

/* Reads the dump's answer from @fd into @out (default routes as text).
 * @why is set on failure. */
static NetWatchDump
netwatch_dump_read (int fd, guint32 seq, guint8 *buf, GPtrArray *out, char **why)
{
  gboolean interrupted = FALSE;
  guint messages = 0;

  for (;;)
    {
      struct sockaddr_nl from;
      socklen_t fromlen = sizeof from;
      const struct nlmsghdr *h;
      size_t offset = 0, len;
      ssize_t n;

      n = recvfrom (fd, buf, NETWATCH_BUF_SIZE, MSG_TRUNC, (struct sockaddr *)&from,
                    &fromlen);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          *why = g_strdup_printf ("reading the route dump: %s", g_strerror (errno));
          return NETWATCH_DUMP_FAILED;
        }
      if (fromlen < sizeof from || from.nl_pid != 0)
        continue; /* not from the kernel */
      if ((size_t)n > NETWATCH_BUF_SIZE)
        {
          *why = g_strdup ("a route dump message was truncated");
          return NETWATCH_DUMP_FAILED;
        }
      len = (size_t)n;
      while ((h = netwatch_next_msg (buf, len, &offset)))
        {
          if (h->nlmsg_seq != seq)
            continue;
          if (h->nlmsg_flags & NLM_F_DUMP_INTR)
            interrupted = TRUE;
          if (h->nlmsg_type == NLMSG_DONE)
            return interrupted ? NETWATCH_DUMP_INTERRUPTED : NETWATCH_DUMP_OK;
          if (h->nlmsg_type == NLMSG_ERROR)
            {
              struct nlmsgerr e = { 0 };
              if (h->nlmsg_len >= NLMSG_LENGTH (sizeof e))
                memcpy (&e, NLMSG_DATA (h), sizeof e);
              *why = g_strdup_printf ("route dump refused: %s",
                                      e.error < 0 ? g_strerror (-e.error) : "?");
              return NETWATCH_DUMP_FAILED;
            }
          if (++messages > NETWATCH_DUMP_MAX_MESSAGES)
            {
              *why = g_strdup ("too many routes to read");
              return NETWATCH_DUMP_FAILED;
            }
          if (h->nlmsg_type == RTM_NEWROUTE && out->len < NETWATCH_MAX_DEFAULTS)
            {
              char *entry = netwatch_route_entry (h);
              if (entry != NULL)
                g_ptr_array_add (out, entry);
            }
        }
    }
}

/* The default routes of @family, on a netlink socket of their own so that
 * the answer never mixes with the notices. */
static NetWatchDump
netwatch_dump_defaults (int family, GPtrArray *out, char **why)
{
  struct
  {
    struct nlmsghdr h;
    struct rtmsg rt;
  } req;
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  struct timeval timeout = { .tv_sec = NETWATCH_DUMP_TIMEOUT_S };
  g_autofree guint8 *buf = NULL;
  NetWatchDump result;
  int fd;

  fd = socket (AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0)
    {
      *why = g_strdup_printf ("netlink socket: %s", g_strerror (errno));
      return NETWATCH_DUMP_FAILED;
    }
  /* Bounded waits: the kernel answers at once, but the loop must never hang. */
  (void)setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  (void)setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);

  memset (&req, 0, sizeof req);
  req.h.nlmsg_len = NLMSG_LENGTH (sizeof req.rt);
  req.h.nlmsg_type = RTM_GETROUTE;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 1;
  req.rt.rtm_family = (unsigned char)family;
  if (sendto (fd, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel)
      < 0)
    {
      *why = g_strdup_printf ("asking for the routes: %s", g_strerror (errno));
      close (fd);
      return NETWATCH_DUMP_FAILED;
    }
  buf = g_malloc (NETWATCH_BUF_SIZE); /* g_malloc aligns for nlmsghdr */
  result = netwatch_dump_read (fd, req.h.nlmsg_seq, buf, out, why);
  close (fd);
  return result;
}

static int
netwatch_compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

/* "v4 ENTRY, ENTRY" or "v4 none" or "v4 unknown (WHY)". */
static void
netwatch_append_family (GString *s, const char *label, int family)
{
  NetWatchDump result = NETWATCH_DUMP_FAILED;
  g_autofree char *why = NULL;

  g_string_append (s, label);
  for (guint attempt = 0; attempt < NETWATCH_DUMP_ATTEMPTS; attempt++)
    {
      g_autoptr (GPtrArray) routes = g_ptr_array_new_with_free_func (g_free);

      g_clear_pointer (&why, g_free);
      result = netwatch_dump_defaults (family, routes, &why);
      if (result == NETWATCH_DUMP_FAILED)
        break;
      if (result == NETWATCH_DUMP_INTERRUPTED)
        continue;
      if (routes->len == 0)
        {
          g_string_append (s, " none");
          return;
        }
      /* The dump's order is the kernel's; sorted, equal sets read equal. */
      g_ptr_array_sort (routes, netwatch_compare_strings);
      for (guint i = 0; i < routes->len; i++)
        g_string_append_printf (s, "%s %s", i > 0 ? "," : "",
                                (const char *)g_ptr_array_index (routes, i));
      return;
    }
  if (result == NETWATCH_DUMP_INTERRUPTED)
    g_string_append (s, " unknown (the routes kept changing)");
  else
    g_string_append_printf (s, " unknown (%s)", why != NULL ? why : "?");
}

char *
netwatch_default_route (void)
{
  GString *s = g_string_new (NULL);

  netwatch_append_family (s, "v4", AF_INET);
  g_string_append (s, "; ");
  netwatch_append_family (s, "v6", AF_INET6);
  return g_string_free (s, FALSE);
}

/* ---- Local addresses ---- */

/* Whether @ifa is an IPv4 or IPv6 address of an interface that is up. */
static gboolean
netwatch_ifa_counts (const struct ifaddrs *ifa)
{
  return ifa->ifa_addr != NULL && (ifa->ifa_flags & IFF_UP)
         && (ifa->ifa_addr->sa_family == AF_INET || ifa->ifa_addr->sa_family == AF_INET6);
}

static const void *
netwatch_ifa_bytes (const struct ifaddrs *ifa)
{
  if (ifa->ifa_addr->sa_family == AF_INET)
    return &((const struct sockaddr_in *)(const void *)ifa->ifa_addr)->sin_addr;
  return &((const struct sockaddr_in6 *)(const void *)ifa->ifa_addr)->sin6_addr;
}

/* "IFNAME ADDRESS" for each address that counts, sorted, comma-separated. */
static char *
netwatch_addresses (void)
{
  g_autoptr (GPtrArray) list = g_ptr_array_new_with_free_func (g_free);
  struct ifaddrs *all = NULL;
  GString *s;

  if (getifaddrs (&all) != 0)
    return g_strdup_printf ("addresses unknown (%s)", g_strerror (errno));
  for (const struct ifaddrs *ifa = all; ifa != NULL; ifa = ifa->ifa_next)
    {
      char text[INET6_ADDRSTRLEN];

      if (!netwatch_ifa_counts (ifa)
          || inet_ntop (ifa->ifa_addr->sa_family, netwatch_ifa_bytes (ifa), text,
                        sizeof text)
                 == NULL)
        continue;
      g_ptr_array_add (list, g_strdup_printf ("%s %s", ifa->ifa_name, text));
    }
  freeifaddrs (all);
  g_ptr_array_sort (list, netwatch_compare_strings);
  s = g_string_new ("addresses");
  for (guint i = 0; i < list->len; i++)
    g_string_append_printf (s, "%s %s", i > 0 ? "," : "",
                            (const char *)g_ptr_array_index (list, i));
  return g_string_free (s, FALSE);
}

gboolean
netwatch_has_address (const char *ip)
{
  char plain[INET6_ADDRSTRLEN];
  const char *scope;
  size_t len;
  struct in6_addr want6;
  struct in_addr want4;
  int family;
  struct ifaddrs *all = NULL;
  gboolean found = FALSE;

  g_return_val_if_fail (ip != NULL, FALSE);
  scope = strchr (ip, '%');
  len = scope != NULL ? (size_t)(scope - ip) : strlen (ip);
  if (len == 0 || len >= sizeof plain)
    return FALSE;
  memcpy (plain, ip, len);
  plain[len] = '\0';
  if (inet_pton (AF_INET, plain, &want4) == 1)
    family = AF_INET;
  else if (inet_pton (AF_INET6, plain, &want6) == 1)
    {
      family = AF_INET6;
      if (IN6_IS_ADDR_V4MAPPED (&want6)) /* ::ffff:192.0.2.7 is 192.0.2.7 */
        {
          family = AF_INET;
          memcpy (&want4, &want6.s6_addr[12], sizeof want4);
        }
    }
  else
    return FALSE;

  if (getifaddrs (&all) != 0)
    return FALSE;
  for (const struct ifaddrs *ifa = all; ifa != NULL && !found; ifa = ifa->ifa_next)
    {
      if (!netwatch_ifa_counts (ifa) || ifa->ifa_addr->sa_family != family)
        continue;
      if (family == AF_INET)
        found = memcmp (netwatch_ifa_bytes (ifa), &want4, sizeof want4) == 0;
      else
        found = memcmp (netwatch_ifa_bytes (ifa), &want6, sizeof want6) == 0;
    }
  freeifaddrs (all);
  return found;
}

/* ---- The watch ---- */

static char *
netwatch_snapshot (void)
{
  g_autofree char *addresses = netwatch_addresses ();
  g_autofree char *routes = netwatch_default_route ();

  return g_strconcat (addresses, "\n", routes, NULL);
}

/* Whether a notice may change what the snapshot holds. Links (up, down,
 * gone) and addresses always may; of the routes, only default ones. */
static gboolean
netwatch_notice_matters (const struct nlmsghdr *h)
{
  struct rtmsg rt;

  switch (h->nlmsg_type)
    {
    case RTM_NEWLINK:
    case RTM_DELLINK:
    case RTM_NEWADDR:
    case RTM_DELADDR:
      return TRUE;
    case RTM_NEWROUTE:
    case RTM_DELROUTE:
      if (h->nlmsg_len < NLMSG_LENGTH (sizeof rt))
        return TRUE; /* cannot tell: look */
      memcpy (&rt, NLMSG_DATA (h), sizeof rt);
      return rt.rtm_dst_len == 0;
    default:
      return FALSE;
    }
}

static void
netwatch_arm (NetWatch *w)
{
  gint64 now = g_get_monotonic_time ();
  gint64 when;

  if (g_source_get_ready_time (w->timer) == -1)
    w->first_notice = now;
  when = MIN (now + NETWATCH_QUIET_MS * G_TIME_SPAN_MILLISECOND,
              w->first_notice + NETWATCH_MAX_DELAY_MS * G_TIME_SPAN_MILLISECOND);
  g_source_set_ready_time (w->timer, when);
}

static gboolean
netwatch_on_notice (gint fd, GIOCondition condition, gpointer user_data)
{
  NetWatch *w = user_data;
  gboolean matters = FALSE;
  const guint8 *buf = (const guint8 *)w->buf;

  for (guint i = 0; i < NETWATCH_READS_PER_WAKEUP; i++)
    {
      struct sockaddr_nl from;
      socklen_t fromlen = sizeof from;
      const struct nlmsghdr *h;
      size_t offset = 0;
      ssize_t n;

      n = recvfrom (fd, w->buf, sizeof w->buf, MSG_DONTWAIT | MSG_TRUNC,
                    (struct sockaddr *)&from, &fromlen);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
          if (errno == ENOBUFS) /* the kernel dropped notices: look */
            {
              matters = TRUE;
              continue;
            }
          /* Nothing else is expected; rather deaf than spinning the loop. */
          g_debug ("netwatch: reading notices: %s; no longer watching",
                   g_strerror (errno));
          g_clear_pointer (&w->fd_source, g_source_unref);
          if (matters)
            netwatch_arm (w);
          return G_SOURCE_REMOVE;
        }
      if (fromlen < sizeof from || from.nl_pid != 0)
        continue; /* only the kernel speaks here */
      if ((size_t)n > sizeof w->buf)
        {
          matters = TRUE; /* truncated: look */
          continue;
        }
      while (!matters && (h = netwatch_next_msg (buf, (size_t)n, &offset)))
        matters = netwatch_notice_matters (h);
    }
  if (matters)
    netwatch_arm (w);
  return G_SOURCE_CONTINUE;
}

static gboolean
netwatch_on_timer (gpointer user_data)
{
  NetWatch *w = user_data;
  g_autofree char *now = netwatch_snapshot ();

  if (g_strcmp0 (now, w->snapshot) != 0)
    {
      g_debug ("netwatch: now %s", now);
      g_free (w->snapshot);
      w->snapshot = g_steal_pointer (&now);
      w->changed (w->user_data); /* last: it may free w */
    }
  return G_SOURCE_CONTINUE;
}

/* The debounce timer: a source that is ready at its ready time, once. */
static gboolean
netwatch_timer_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  g_source_set_ready_time (source, -1);
  return callback (user_data);
}

static GSourceFuncs netwatch_timer_funcs = { .dispatch = netwatch_timer_dispatch };

NetWatch *
netwatch_new (GMainContext *context, NetWatchFunc changed, gpointer user_data)
{
  g_autoptr (NetWatch) w = NULL;
  struct sockaddr_nl local = {
    .nl_family = AF_NETLINK,
    .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE
                 | RTMGRP_IPV6_ROUTE,
  };
  int rcvbuf = NETWATCH_RCVBUF;

  g_return_val_if_fail (changed != NULL, NULL);

  w = g_new0 (NetWatch, 1);
  w->fd = -1;
  w->context = g_main_context_ref (context != NULL ? context : g_main_context_default ());
  w->changed = changed;
  w->user_data = user_data;

  w->fd = socket (AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (w->fd < 0)
    {
      g_debug ("netwatch: netlink socket: %s", g_strerror (errno));
      return NULL;
    }
  /* A bigger queue makes lost notices (ENOBUFS) rarer; they are survived
   * anyway, so a refusal does not matter. */
  (void)setsockopt (w->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (bind (w->fd, (struct sockaddr *)&local, sizeof local) < 0)
    {
      g_debug ("netwatch: subscribing to route notices: %s", g_strerror (errno));
      return NULL;
    }
  /* Subscribed before the first reading: a change in between is noticed. */
  w->snapshot = netwatch_snapshot ();

  w->fd_source = g_unix_fd_source_new (w->fd, G_IO_IN);
  g_source_set_callback (w->fd_source, G_SOURCE_FUNC (netwatch_on_notice), w, NULL);
  g_source_set_static_name (w->fd_source, "netwatch notices");
  g_source_attach (w->fd_source, w->context);

  w->timer = g_source_new (&netwatch_timer_funcs, sizeof (GSource));
  g_source_set_callback (w->timer, netwatch_on_timer, w, NULL);
  g_source_set_static_name (w->timer, "netwatch debounce");
  g_source_set_ready_time (w->timer, -1);
  g_source_attach (w->timer, w->context);
  return g_steal_pointer (&w);
}

static void
netwatch_drop_source (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

void
netwatch_free (NetWatch *w)
{
  if (w == NULL)
    return;
  netwatch_drop_source (&w->fd_source);
  netwatch_drop_source (&w->timer);
  if (w->fd >= 0)
    close (w->fd);
  g_clear_pointer (&w->context, g_main_context_unref);
  g_free (w->snapshot);
  g_free (w);
}
