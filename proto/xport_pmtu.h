/* Path MTU discovery of the tunnel transport, in the manner of DPLPMTUD
 * (RFC 8899) as QUIC uses it (RFC 9000 section 14.3): packets start at a
 * base size that every path carries (1163 bytes: a 1200-byte ICE payload,
 * which fits inside TURN framing); probes of PING and PADDING try larger
 * sizes up to a ceiling, and a size is used once a probe of it was
 * acknowledged. A lost probe is not a congestion signal. The search tries
 * the size of a 1500-byte path first when the ceiling is larger (a host on
 * a network of jumbo frames mostly talks to the Internet), then the
 * ceiling, then halves the interval; a size fails after XPORT_PMTU_TRIES
 * lost probes. When the common size passes and the ceiling fails, the
 * search stops there: sizes between are rare, and each costs three lost
 * probes.
 *
 * Sans-IO and no allocation: the connection asks for the size of the probe
 * due, reports what became of it, and falls back to the base size when the
 * path changes or a black hole swallows full-size packets. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XPORT_PMTU_TRIES 3
/* The search stops when the interval is narrower than this. */
#define XPORT_PMTU_STEP 8
/* RFC 8899 section 5.1.1: a search that stopped below the ceiling starts
 * again after this long (the path may have grown). */
#define XPORT_PMTU_RAISE_US (600ull * 1000000)

struct xport_pmtu
{
  size_t base, ceiling;
  size_t current;  /* packets are built up to this size */
  size_t lo, hi;   /* lo is known to pass; sizes above hi failed */
  bool try_ceiling; /* the next probe tries hi itself */
  bool try_common;  /* the next probe tries XPORT_COMMON_PACKET */
  size_t probe_size; /* a probe of this size is in flight; 0: none */
  uint64_t probe_pn;
  unsigned failures;   /* probes of probe_size lost so far */
  uint64_t next_probe; /* a probe may go from this time; UINT64_MAX: never */
};

/* Discovery is off when @ceiling <= @base. */
void xport_pmtu_init (struct xport_pmtu *m, size_t base, size_t ceiling, uint64_t now);
/* The size of the probe to send at @now, or 0 when none is due. */
size_t xport_pmtu_probe_due (const struct xport_pmtu *m, uint64_t now);
/* When the next probe will be due (UINT64_MAX: none is planned). */
uint64_t xport_pmtu_next_probe (const struct xport_pmtu *m);
void xport_pmtu_probe_sent (struct xport_pmtu *m, uint64_t pn, size_t size);
/* What became of the packet @pn; other packet numbers are ignored. Return
 * true when the current size changed. */
bool xport_pmtu_on_acked (struct xport_pmtu *m, uint64_t pn, uint64_t now);
bool xport_pmtu_on_lost (struct xport_pmtu *m, uint64_t pn, uint64_t now);
/* The largest size to probe for from the next restart on. */
void xport_pmtu_set_ceiling (struct xport_pmtu *m, size_t ceiling);
/* Back to the base size and search again from @now + @delay: the path
 * changed, or full-size packets vanish. Returns true when the size changed. */
bool xport_pmtu_restart (struct xport_pmtu *m, uint64_t now, uint64_t delay);
