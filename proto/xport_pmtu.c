/* Path MTU discovery of the tunnel transport: see xport_pmtu.h. */
#include "xport_pmtu.h"

#include <string.h>

#include "xport_wire.h"

static void
search_from (struct xport_pmtu *m, uint64_t at)
{
  m->lo = m->base;
  m->hi = m->ceiling;
  m->try_ceiling = true;
  m->try_common = m->base < XPORT_COMMON_PACKET && XPORT_COMMON_PACKET < m->ceiling;
  m->probe_size = 0;
  m->failures = 0;
  m->next_probe = at;
}

void
xport_pmtu_init (struct xport_pmtu *m, size_t base, size_t ceiling, uint64_t now)
{
  memset (m, 0, sizeof *m);
  m->base = base;
  m->ceiling = ceiling > base ? ceiling : base;
  m->current = base;
  search_from (m, now);
  if (m->ceiling == m->base)
    m->next_probe = UINT64_MAX;
}

/* The search narrowed to nothing worth another probe: stay at lo, and look
 * again much later if lo is below the ceiling. */
static void
search_done (struct xport_pmtu *m, uint64_t now)
{
  m->probe_size = 0;
  m->failures = 0;
  m->next_probe = m->lo < m->ceiling ? now + XPORT_PMTU_RAISE_US : UINT64_MAX;
}

size_t
xport_pmtu_probe_due (const struct xport_pmtu *m, uint64_t now)
{
  if (m->probe_size != 0 || m->next_probe == UINT64_MAX || now < m->next_probe)
    return 0;
  /* A raise timer that fired looks at the whole range again. */
  size_t hi = m->hi > m->lo ? m->hi : m->ceiling;
  if (hi <= m->lo)
    return 0;
  if (m->try_common && m->lo < XPORT_COMMON_PACKET && XPORT_COMMON_PACKET < hi)
    return XPORT_COMMON_PACKET;
  if (m->try_ceiling || m->hi <= m->lo)
    return hi;
  return m->lo + (hi - m->lo + 1) / 2;
}

uint64_t
xport_pmtu_next_probe (const struct xport_pmtu *m)
{
  return m->probe_size != 0 ? UINT64_MAX : m->next_probe;
}

void
xport_pmtu_probe_sent (struct xport_pmtu *m, uint64_t pn, size_t size)
{
  if (m->hi <= m->lo)
    {
      /* The raise timer: search the whole range above what works. */
      m->hi = m->ceiling;
      m->try_ceiling = true;
    }
  m->probe_size = size;
  m->probe_pn = pn;
}

bool
xport_pmtu_on_acked (struct xport_pmtu *m, uint64_t pn, uint64_t now)
{
  if (m->probe_size == 0 || pn != m->probe_pn)
    return false;
  size_t size = m->probe_size;
  bool changed = size > m->current;
  m->probe_size = 0;
  m->failures = 0;
  if (size > m->lo)
    m->lo = size;
  if (changed)
    m->current = size;
  if (m->try_common && size == XPORT_COMMON_PACKET)
    {
      /* Then the ceiling. */
      m->try_common = false;
      m->next_probe = now;
      return changed;
    }
  if (m->try_ceiling || m->hi - m->lo < XPORT_PMTU_STEP)
    {
      m->hi = m->lo;
      search_done (m, now);
    }
  else
    m->next_probe = now;
  return changed;
}

bool
xport_pmtu_on_lost (struct xport_pmtu *m, uint64_t pn, uint64_t now)
{
  if (m->probe_size == 0 || pn != m->probe_pn)
    return false;
  size_t size = m->probe_size;
  m->probe_size = 0;
  m->next_probe = now;
  if (++m->failures < XPORT_PMTU_TRIES)
    return false;
  /* The common size passed and the ceiling does not: a jumbo-frame host
   * talking over the Internet. Sizes between are rare; no search for them. */
  if (m->try_ceiling && size == m->ceiling && m->lo == XPORT_COMMON_PACKET)
    {
      m->failures = 0;
      m->try_ceiling = false;
      m->hi = m->lo;
      search_done (m, now);
      return false;
    }
  /* This size does not pass: search below it. */
  m->failures = 0;
  m->try_ceiling = false;
  m->try_common = false;
  m->hi = size - 1;
  if (m->hi <= m->lo || m->hi - m->lo < XPORT_PMTU_STEP)
    {
      m->hi = m->lo;
      search_done (m, now);
    }
  return false;
}

void
xport_pmtu_set_ceiling (struct xport_pmtu *m, size_t ceiling)
{
  m->ceiling = ceiling > m->base ? ceiling : m->base;
}

bool
xport_pmtu_restart (struct xport_pmtu *m, uint64_t now, uint64_t delay)
{
  bool changed = m->current != m->base;
  m->current = m->base;
  if (m->ceiling > m->base)
    search_from (m, now + delay);
  else
    {
      m->lo = m->hi = m->base;
      m->probe_size = 0;
      m->next_probe = UINT64_MAX;
    }
  return changed;
}
