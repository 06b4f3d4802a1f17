/* Peer-address policy; see policy.h. */
#include "policy.h"

#include <arpa/inet.h>
#include <string.h>

gboolean
relay_cidr_parse (const char *text, struct relay_cidr *out)
{
  memset (out, 0, sizeof *out);
  g_autofree char *copy = g_strdup (text);
  char *slash = strchr (copy, '/');
  if (slash != NULL)
    *slash = '\0';
  size_t size;
  if (inet_pton (AF_INET, copy, out->ip) == 1)
    size = 4;
  else if (inet_pton (AF_INET6, copy, out->ip) == 1)
    size = 16;
  else
    return FALSE;
  out->family = size == 16 ? 6 : 4;
  unsigned max = (unsigned)size * 8;
  out->prefix = max;
  if (slash != NULL)
    {
      const char *p = slash + 1;
      char *end = NULL;
      if (!g_ascii_isdigit (*p))
        return FALSE;
      guint64 v = g_ascii_strtoull (p, &end, 10);
      if (*end != '\0' || v > max)
        return FALSE;
      out->prefix = (unsigned)v;
    }
  return TRUE;
}

static gboolean
prefix_match (const uint8_t *a, const uint8_t *b, unsigned prefix)
{
  unsigned bytes = prefix / 8, bits = prefix % 8;
  if (memcmp (a, b, bytes) != 0)
    return FALSE;
  if (bits == 0)
    return TRUE;
  uint8_t mask = (uint8_t)(0xFF00u >> bits);
  return (a[bytes] & mask) == (b[bytes] & mask);
}

gboolean
relay_cidr_contains (const struct relay_cidr *cidr, const struct stun_addr *addr)
{
  return cidr->family == addr->family && prefix_match (cidr->ip, addr->ip, cidr->prefix);
}

static gboolean
v4_restricted (const uint8_t *ip)
{
  static const struct
  {
    uint8_t net[4];
    unsigned prefix;
  } nets[] = {
    { { 0, 0, 0, 0 }, 8 },      /* "this network", unspecified (RFC 1122) */
    { { 10, 0, 0, 0 }, 8 },     /* private (RFC 1918) */
    { { 100, 64, 0, 0 }, 10 },  /* shared address space (RFC 6598) */
    { { 127, 0, 0, 0 }, 8 },    /* loopback */
    { { 169, 254, 0, 0 }, 16 }, /* link-local (RFC 3927) */
    { { 172, 16, 0, 0 }, 12 },  /* private */
    { { 192, 0, 0, 0 }, 24 },   /* IETF protocol assignments (RFC 6890) */
    { { 192, 168, 0, 0 }, 16 }, /* private */
    { { 198, 18, 0, 0 }, 15 },  /* benchmarking (RFC 2544) */
    { { 224, 0, 0, 0 }, 4 },    /* multicast */
    { { 240, 0, 0, 0 }, 4 },    /* reserved, broadcast */
  };
  for (size_t i = 0; i < G_N_ELEMENTS (nets); i++)
    if (prefix_match (ip, nets[i].net, nets[i].prefix))
      return TRUE;
  return FALSE;
}

gboolean
relay_addr_is_restricted (const struct stun_addr *addr)
{
  if (addr->family == 4)
    return v4_restricted (addr->ip);
  static const uint8_t zero[16],
      v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };
  if (memcmp (addr->ip, zero, 15) == 0 && (addr->ip[15] == 0 || addr->ip[15] == 1))
    return TRUE; /* :: and ::1 */
  if (memcmp (addr->ip, v4mapped, 12) == 0)
    return v4_restricted (addr->ip + 12);
  if (addr->ip[0] == 0xFF) /* multicast ff00::/8 */
    return TRUE;
  if (addr->ip[0] == 0xFE && (addr->ip[1] & 0xC0) == 0x80) /* link-local fe80::/10 */
    return TRUE;
  if ((addr->ip[0] & 0xFE) == 0xFC) /* unique local fc00::/7 */
    return TRUE;
  return FALSE;
}
