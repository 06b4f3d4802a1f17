/* An allocation's permission and channel tables; see alloc.h. */
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

void
relay_alloc_free (gpointer p)
{
  struct relay_alloc *a = p;
  g_free (a->username);
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
relay_alloc_perm_install (guint max_permissions, struct relay_alloc *a, const struct stun_addr *peer,
              gint64 now)
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

