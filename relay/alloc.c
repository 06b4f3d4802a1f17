/* An allocation's permission and channel tables, and its bandwidth bucket;
 * see alloc.h. */
#include "alloc.h"

#include <string.h>

gboolean
relay_addr_equal_ip (const struct stun_addr *a, const struct stun_addr *b)
{
  return a->family == b->family && memcmp (a->ip, b->ip, a->family == 6 ? 16 : 4) == 0;
}

gboolean
relay_addr_equal (const struct stun_addr *a, const struct stun_addr *b)
{
  return relay_addr_equal_ip (a, b) && a->port == b->port;
}

guint
relay_addr_hash (const struct stun_addr *a)
{
  guint h = a->family * 31u + a->port;
  for (size_t i = 0; i < (a->family == 6 ? 16u : 4u); i++)
    h = h * 31u + a->ip[i];
  return h;
}

char *
relay_addr_to_string (const struct stun_addr *a, char *buf, size_t cap)
{
  if (a->family == 6)
    {
      char ip[64] = "";
      size_t n = 0;
      for (size_t i = 0; i < 16; i += 2)
        n += (size_t)g_snprintf (ip + n, sizeof ip - n, "%s%x", i ? ":" : "",
                                 (unsigned)((a->ip[i] << 8) | a->ip[i + 1]));
      g_snprintf (buf, cap, "[%s]:%u", ip, a->port);
    }
  else
    g_snprintf (buf, cap, "%u.%u.%u.%u:%u", a->ip[0], a->ip[1], a->ip[2], a->ip[3],
                a->port);
  return buf;
}

void
relay_alloc_free (gpointer p)
{
  struct relay_alloc *a = p;
  g_free (a->username);
  g_free (a->name);
  g_free (a->perms);
  g_free (a->chans);
  g_free (a);
}

struct relay_perm *
relay_alloc_perm_find (struct relay_alloc *a, const struct stun_addr *peer, gint64 now)
{
  for (guint i = 0; i < a->n_perms; i++)
    if (a->perms[i].expiry > now && relay_addr_equal_ip (&a->perms[i].peer, peer))
      return &a->perms[i];
  return NULL;
}

/* Installs or refreshes a permission; FALSE when the table is full. */
gboolean
relay_alloc_perm_install (guint max_permissions, struct relay_alloc *a,
                          const struct stun_addr *peer, gint64 now)
{
  struct relay_perm *p = relay_alloc_perm_find (a, peer, now);
  if (p == NULL)
    {
      for (guint i = 0; i < a->n_perms && p == NULL; i++)
        if (a->perms[i].expiry <= now)
          p = &a->perms[i];
      if (p == NULL)
        {
          if (a->n_perms >= max_permissions)
            return FALSE;
          p = &a->perms[a->n_perms++];
        }
      p->peer = *peer;
      p->peer.port = 0;
    }
  p->expiry = now + RELAY_PERMISSION_LIFETIME;
  return TRUE;
}

struct relay_chan *
relay_alloc_chan_by_number (struct relay_alloc *a, uint16_t number, gint64 now)
{
  for (guint i = 0; i < a->n_chans; i++)
    if (a->chans[i].expiry > now && a->chans[i].number == number)
      return &a->chans[i];
  return NULL;
}

struct relay_chan *
relay_alloc_chan_by_peer (struct relay_alloc *a, const struct stun_addr *peer, gint64 now)
{
  for (guint i = 0; i < a->n_chans; i++)
    if (a->chans[i].expiry > now && relay_addr_equal (&a->chans[i].peer, peer))
      return &a->chans[i];
  return NULL;
}

gboolean
relay_alloc_bw_take (struct relay_alloc *a, guint64 max_bps, gint64 now_us, size_t len)
{
  if (max_bps == 0)
    return TRUE;
  /* Credit in byte-microseconds, so that refills of a few microseconds are
   * not rounded away; depth: one second's worth. max_bps is at most
   * RELAY_MAX_BPS_LIMIT, so max_bps * 10^6 fits. Time going backwards (the
   * clock was set) refills nothing. */
  guint64 cap = max_bps * G_USEC_PER_SEC;
  if (now_us > a->bw_filled_us)
    {
      guint64 dt = (guint64)(now_us - a->bw_filled_us);
      a->bw_tokens = dt >= G_USEC_PER_SEC ? cap : MIN (cap, a->bw_tokens + max_bps * dt);
      a->bw_filled_us = now_us;
    }
  guint64 need = (guint64)len * G_USEC_PER_SEC;
  if (need > a->bw_tokens)
    return FALSE;
  a->bw_tokens -= need;
  return TRUE;
}

gboolean
relay_alloc_bw_allow (struct relay_alloc *a, guint64 max_bps, gint64 now_us, size_t len)
{
  if (relay_alloc_bw_take (a, max_bps, now_us, len))
    return TRUE;
  a->bw_dropped += len;
  gint64 now = now_us / G_USEC_PER_SEC;
  if (a->bw_logged == 0 || now - a->bw_logged >= RELAY_BW_LOG_INTERVAL)
    {
      char buf[80];
      g_message ("allocation of %s from %s over %" G_GUINT64_FORMAT
                 " bytes/s (limit): dropped %" G_GUINT64_FORMAT " bytes",
                 a->username, relay_addr_to_string (&a->tuple.client, buf, sizeof buf),
                 max_bps, a->bw_dropped);
      a->bw_logged = now;
      a->bw_dropped = 0;
    }
  return FALSE;
}
