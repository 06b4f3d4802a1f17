/* The link simulator; see sim.h. */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

enum ev_type
{
  EV_PACKET,
  EV_TIMER,
};

struct pkt
{
  struct sim_node *to;
  size_t len;
  uint8_t data[XPORT_MAX_PACKET];
};

struct event
{
  uint64_t time;
  uint64_t seq;
  enum ev_type type;
  struct sim_node *node;
  uint64_t gen;
  struct pkt *pkt;
};

struct sim
{
  uint64_t now;
  uint64_t seq;
  uint64_t rng;
  struct event *heap;
  size_t n, cap;
  struct sim_link **links;
  size_t n_links;
  struct sim_node **nodes;
  size_t n_nodes;
  sim_tap_fn tap;
  void *tap_ctx;
};

/* Idle packet times after which a Gilbert-Elliott chain is as good as
 * stationary (its memory decays like (1 - p - r)^n). */
#define SIM_GE_MIX_STEPS 64

struct sim_link
{
  struct sim *sim;
  struct sim_link_params p;
  bool ge_bad;
  uint64_t ge_time;      /* the Gilbert-Elliott chain's last step */
  uint64_t busy_until;   /* the bottleneck transmits until then */
  uint64_t last_arrival; /* jitter keeps order */
  uint64_t dropped;
};

struct sim_node
{
  struct sim *sim;
  const struct sim_endpoint_ops *ops;
  void *impl;
  struct xport_conn *conn; /* owned, when the endpoint is a transport */
  bool is_client;
  struct sim_link *out;
  struct sim_node *peer;
  sim_app_fn app;
  void *ctx;
  uint64_t timer_gen;
  uint64_t timer_at;
  uint64_t timer_fires;
};

/* splitmix64: small, fast, and the same everywhere. */
uint64_t
sim_random (struct sim *sim)
{
  uint64_t z = (sim->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double
sim_uniform (struct sim *sim)
{
  return (double)(sim_random (sim) >> 11) / 9007199254740992.0;
}

struct sim *
sim_new (uint64_t seed)
{
  struct sim *sim = calloc (1, sizeof *sim);
  if (sim == NULL)
    abort ();
  sim->rng = seed;
  return sim;
}

void
sim_free (struct sim *sim)
{
  if (sim == NULL)
    return;
  for (size_t i = 0; i < sim->n; i++)
    free (sim->heap[i].pkt);
  free (sim->heap);
  for (size_t i = 0; i < sim->n_links; i++)
    free (sim->links[i]);
  free (sim->links);
  for (size_t i = 0; i < sim->n_nodes; i++)
    {
      xport_conn_free (sim->nodes[i]->conn);
      free (sim->nodes[i]);
    }
  free (sim->nodes);
  free (sim);
}

uint64_t
sim_now (const struct sim *sim)
{
  return sim->now;
}

static bool
ev_less (const struct event *a, const struct event *b)
{
  return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void
push (struct sim *sim, struct event e)
{
  if (sim->n == sim->cap)
    {
      sim->cap = sim->cap ? sim->cap * 2 : 1024;
      sim->heap = realloc (sim->heap, sim->cap * sizeof sim->heap[0]);
      if (sim->heap == NULL)
        abort ();
    }
  e.seq = sim->seq++;
  size_t i = sim->n++;
  while (i > 0 && ev_less (&e, &sim->heap[(i - 1) / 2]))
    {
      sim->heap[i] = sim->heap[(i - 1) / 2];
      i = (i - 1) / 2;
    }
  sim->heap[i] = e;
}

static struct event
pop (struct sim *sim)
{
  struct event top = sim->heap[0];
  struct event last = sim->heap[--sim->n];
  size_t i = 0;
  for (;;)
    {
      size_t l = 2 * i + 1, r = l + 1, m = i;
      const struct event *best = &last;
      if (l < sim->n && ev_less (&sim->heap[l], best))
        {
          m = l;
          best = &sim->heap[l];
        }
      if (r < sim->n && ev_less (&sim->heap[r], best))
        m = r;
      if (m == i)
        break;
      sim->heap[i] = sim->heap[m];
      i = m;
    }
  if (sim->n > 0)
    sim->heap[i] = last;
  return top;
}

struct sim_link *
sim_link_new (struct sim *sim, const struct sim_link_params *p)
{
  struct sim_link *l = calloc (1, sizeof *l);
  if (l == NULL)
    abort ();
  l->sim = sim;
  l->p = *p;
  sim->links = realloc (sim->links, (sim->n_links + 1) * sizeof sim->links[0]);
  if (sim->links == NULL)
    abort ();
  sim->links[sim->n_links++] = l;
  return l;
}

void
sim_link_set (struct sim_link *l, const struct sim_link_params *p)
{
  l->p = *p;
}

uint64_t
sim_link_dropped (const struct sim_link *l)
{
  return l->dropped;
}

static void
deliver_at (struct sim *sim, struct sim_node *to, const uint8_t *buf, size_t len,
            uint64_t t)
{
  struct pkt *k = malloc (sizeof *k);
  if (k == NULL)
    abort ();
  k->to = to;
  k->len = len;
  memcpy (k->data, buf, len);
  push (sim, (struct event){ .time = t, .type = EV_PACKET, .node = to, .pkt = k });
}

static void
link_send (struct sim_link *l, struct sim_node *to, const uint8_t *buf, size_t len)
{
  struct sim *sim = l->sim;
  const struct sim_link_params *p = &l->p;
  uint64_t now = sim->now;

  if ((now >= p->blackout_start && now < p->blackout_end) || (p->mtu && len > p->mtu))
    {
      l->dropped++;
      return;
    }
  /* Gilbert-Elliott: the state moves once per packet, and once per packet
   * time the link stayed idle: a burst is a stretch of the link's time, so
   * a sender that goes quiet (a probe timeout) does not stay inside one
   * until it sends again. After many idle steps the chain has forgotten
   * where it was: its state is drawn from the stationary distribution. */
  if (p->ge_p > 0)
    {
      uint64_t slot = p->rate_bps > 0 ? (uint64_t)len * 8 * 1000000 / p->rate_bps : 100;
      uint64_t idle = (now - l->ge_time) / (slot > 0 ? slot : 1);
      l->ge_time = now;
      if (idle > SIM_GE_MIX_STEPS)
        l->ge_bad = sim_uniform (sim) < p->ge_p / (p->ge_p + p->ge_r);
      else
        for (uint64_t i = 0; i < idle; i++)
          l->ge_bad = l->ge_bad ? sim_uniform (sim) >= p->ge_r : sim_uniform (sim) < p->ge_p;
      if (l->ge_bad)
        l->ge_bad = sim_uniform (sim) >= p->ge_r;
      else
        l->ge_bad = sim_uniform (sim) < p->ge_p;
      double ge_loss = l->ge_bad ? p->ge_loss_bad : p->ge_loss_good;
      if (sim_uniform (sim) < ge_loss)
        {
          l->dropped++;
          return;
        }
    }
  if (p->loss > 0 && sim_uniform (sim) < p->loss)
    {
      l->dropped++;
      return;
    }
  uint64_t depart = now;
  if (p->rate_bps > 0)
    {
      /* Bytes still queued ahead of this packet. */
      uint64_t backlog_us = l->busy_until > now ? l->busy_until - now : 0;
      uint64_t backlog = backlog_us * p->rate_bps / 8 / 1000000;
      if (backlog + len > p->queue_bytes)
        {
          l->dropped++;
          return;
        }
      uint64_t start = l->busy_until > now ? l->busy_until : now;
      l->busy_until = start + (uint64_t)len * 8 * 1000000 / p->rate_bps;
      depart = l->busy_until;
    }
  uint64_t arrive = depart + p->delay_us;
  if (p->jitter_us > 0)
    {
      arrive += sim_random (sim) % p->jitter_us;
      if (arrive < l->last_arrival)
        arrive = l->last_arrival;
    }
  if (arrive > l->last_arrival)
    l->last_arrival = arrive;
  if (p->reorder > 0 && sim_uniform (sim) < p->reorder)
    arrive += p->reorder_us;
  deliver_at (sim, to, buf, len, arrive);
  if (p->duplicate > 0 && sim_uniform (sim) < p->duplicate)
    deliver_at (sim, to, buf, len, arrive + 1 + sim_random (sim) % 1000);
}

static void
xp_receive (void *impl, uint64_t now, const uint8_t *buf, size_t len)
{
  xport_conn_receive (impl, now, buf, len);
}

static size_t
xp_send (void *impl, uint64_t now, uint8_t *buf, size_t cap)
{
  return xport_conn_send (impl, now, buf, cap);
}

static uint64_t
xp_timeout (void *impl)
{
  return xport_conn_timeout (impl);
}

static void
xp_on_timeout (void *impl, uint64_t now)
{
  xport_conn_on_timeout (impl, now);
}

static const struct sim_endpoint_ops xport_ops = {
  xp_receive,
  xp_send,
  xp_timeout,
  xp_on_timeout,
};

struct sim_node *
sim_node_new (struct sim *sim, const struct xport_config *cfg, struct sim_link *out,
              sim_app_fn app, void *ctx)
{
  struct xport_conn *c = xport_conn_new (cfg, sim->now);
  if (c == NULL)
    abort ();
  struct sim_node *n = sim_node_new_custom (sim, &xport_ops, c, out, app, ctx);
  n->conn = c;
  n->is_client = cfg->is_client;
  return n;
}

void
sim_node_transmit (struct sim_node *n, const uint8_t *buf, size_t len)
{
  link_send (n->out, n->peer, buf, len);
}

void *
sim_node_impl (struct sim_node *n)
{
  return n->impl;
}

struct sim_node *
sim_node_new_custom (struct sim *sim, const struct sim_endpoint_ops *ops, void *impl,
                     struct sim_link *out, sim_app_fn app, void *ctx)
{
  struct sim_node *n = calloc (1, sizeof *n);
  if (n == NULL)
    abort ();
  n->sim = sim;
  n->ops = ops;
  n->impl = impl;
  n->out = out;
  n->app = app;
  n->ctx = ctx;
  n->timer_at = UINT64_MAX;
  sim->nodes = realloc (sim->nodes, (sim->n_nodes + 1) * sizeof sim->nodes[0]);
  if (sim->nodes == NULL)
    abort ();
  sim->nodes[sim->n_nodes++] = n;
  return n;
}

void
sim_connect (struct sim_node *a, struct sim_node *b)
{
  a->peer = b;
  b->peer = a;
}

struct xport_conn *
sim_node_conn (struct sim_node *n)
{
  return n->conn;
}

struct sim *
sim_node_sim (struct sim_node *n)
{
  return n->sim;
}

void
sim_node_kick (struct sim_node *n)
{
  struct sim *sim = n->sim;
  uint8_t buf[XPORT_MAX_PACKET];
  size_t len;

  if (n->app != NULL)
    n->app (n, n->ctx);
  while (n->ops->send != NULL
         && (len = n->ops->send (n->impl, sim->now, buf, sizeof buf)) > 0)
    link_send (n->out, n->peer, buf, len);
  if (n->app != NULL)
    n->app (n, n->ctx);
  uint64_t t = n->ops->timeout (n->impl);
  if (t == UINT64_MAX)
    {
      n->timer_at = UINT64_MAX;
      n->timer_gen++;
      return;
    }
  if (t <= sim->now)
    t = sim->now + 1;
  if (t != n->timer_at)
    {
      n->timer_at = t;
      n->timer_gen++;
      push (sim, (struct event){
                     .time = t, .type = EV_TIMER, .node = n, .gen = n->timer_gen });
    }
}

void
sim_set_tap (struct sim *sim, sim_tap_fn tap, void *ctx)
{
  sim->tap = tap;
  sim->tap_ctx = ctx;
}

uint64_t
sim_node_timer_fires (const struct sim_node *n)
{
  return n->timer_fires;
}

bool
sim_node_is_client (const struct sim_node *n)
{
  return n->is_client;
}

uint64_t
sim_run (struct sim *sim, uint64_t until, bool (*done) (void *), void *ctx)
{
  while (sim->n > 0 && sim->heap[0].time <= until)
    {
      struct event e = pop (sim);
      sim->now = e.time;
      if (e.type == EV_PACKET)
        {
          if (sim->tap != NULL)
            sim->tap (e.node, sim->now, e.pkt->data, e.pkt->len, sim->tap_ctx);
          e.node->ops->receive (e.node->impl, sim->now, e.pkt->data, e.pkt->len);
          free (e.pkt);
          sim_node_kick (e.node);
        }
      else if (e.gen == e.node->timer_gen)
        {
          e.node->timer_at = UINT64_MAX;
          e.node->timer_fires++;
          e.node->ops->on_timeout (e.node->impl, sim->now);
          sim_node_kick (e.node);
        }
      if (done != NULL && done (ctx))
        return sim->now;
    }
  if (sim->now < until)
    sim->now = until;
  return sim->now;
}

/* ---- bulk flow ---- */

static void
gen_fill (struct sim_flow_stream *s)
{
  uint64_t left = s->total - s->written;
  size_t n = left < sizeof s->pending ? (size_t)left : sizeof s->pending;
  for (size_t i = 0; i < n; i += 8)
    {
      /* xorshift64: cheap bytes that a hash can tell apart. */
      uint64_t x = s->gen_state;
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      s->gen_state = x;
      for (size_t j = 0; j < 8 && i + j < n; j++)
        s->pending[i + j] = (uint8_t)(x >> (8 * j));
    }
  s->pending_off = 0;
  s->pending_len = n;
  EVP_DigestUpdate (s->tx_hash, s->pending, n);
}

void
sim_flow_init (struct sim_flow *f, unsigned n_streams, uint64_t bytes, uint64_t seed)
{
  memset (f, 0, sizeof *f);
  f->n_streams = n_streams < SIM_FLOW_MAX_STREAMS ? n_streams : SIM_FLOW_MAX_STREAMS;
  for (unsigned i = 0; i < f->n_streams; i++)
    {
      struct sim_flow_stream *s = &f->s[i];
      s->total = bytes;
      s->gen_state = seed * 1000003 + i + 1;
      s->tx_hash = EVP_MD_CTX_new ();
      s->rx_hash = EVP_MD_CTX_new ();
      if (s->tx_hash == NULL || s->rx_hash == NULL)
        abort ();
      EVP_DigestInit_ex (s->tx_hash, EVP_sha256 (), NULL);
      EVP_DigestInit_ex (s->rx_hash, EVP_sha256 (), NULL);
    }
}

void
sim_flow_clear (struct sim_flow *f)
{
  for (unsigned i = 0; i < f->n_streams; i++)
    {
      EVP_MD_CTX_free (f->s[i].tx_hash);
      EVP_MD_CTX_free (f->s[i].rx_hash);
      f->s[i].tx_hash = f->s[i].rx_hash = NULL;
    }
}

static struct sim_flow_stream *
flow_stream (struct sim_flow *f, uint64_t id)
{
  for (unsigned i = 0; i < f->n_streams; i++)
    if (f->s[i].opened && f->s[i].id == id)
      return &f->s[i];
  return NULL;
}

static void
flow_write (struct sim_flow *f, struct xport_conn *c, struct sim_flow_stream *s)
{
  while (!s->shut)
    {
      if (s->pending_off == s->pending_len)
        {
          if (s->written == s->total)
            {
              xport_stream_shutdown (c, s->id);
              s->shut = true;
              unsigned int l;
              EVP_DigestFinal_ex (s->tx_hash, s->tx_digest, &l);
              break;
            }
          gen_fill (s);
        }
      ssize_t n = xport_stream_write (c, s->id, s->pending + s->pending_off,
                                      s->pending_len - s->pending_off);
      if (n <= 0)
        break;
      s->pending_off += (size_t)n;
      s->written += (uint64_t)n;
    }
}

static void
flow_read (struct sim_flow *f, struct xport_conn *c, struct sim_flow_stream *s,
           uint64_t now)
{
  uint8_t buf[65536];
  while (!s->done && !s->paused)
    {
      bool fin = false;
      ssize_t n = xport_stream_read (c, s->id, buf, sizeof buf, &fin, NULL);
      if (n < 0)
        break;
      if (n > 0)
        {
          EVP_DigestUpdate (s->rx_hash, buf, (size_t)n);
          s->read += (uint64_t)n;
          f->bytes_read += (uint64_t)n;
          if (now - f->last_progress > f->max_stall)
            f->max_stall = now - f->last_progress;
          f->last_progress = now;
        }
      if (fin)
        {
          unsigned int l;
          EVP_DigestFinal_ex (s->rx_hash, s->rx_digest, &l);
          s->done = true;
          s->done_time = now;
          xport_stream_release (c, s->id);
          bool all = true;
          for (unsigned i = 0; i < f->n_streams; i++)
            all = all && f->s[i].done;
          if (all)
            f->done_time = now;
        }
      if (n == 0 && !fin)
        break;
    }
}

void
sim_flow_app (struct sim_node *n, void *ctx)
{
  struct sim_flow *f = ctx;
  struct xport_conn *c = sim_node_conn (n);
  uint64_t now = sim_now (sim_node_sim (n));
  struct xport_event ev;

  if (n == f->tx)
    {
      if (f->start_time == 0 && !f->s[0].opened)
        {
          f->start_time = now;
          f->last_progress = now;
          f->next_datagram = now;
        }
      for (unsigned i = 0; i < f->n_streams; i++)
        if (!f->s[i].opened && xport_stream_open (c, &f->s[i].id) == XPORT_OK)
          f->s[i].opened = true;
      while (f->datagram_interval_us > 0 && f->done_time == 0 && now >= f->next_datagram)
        {
          uint8_t d[600];
          uint64_t seq = f->dgram_sent;
          for (size_t i = 0; i < sizeof d; i++)
            d[i] = (uint8_t)(seq * 31 + i);
          if (xport_datagram_send (c, d, sizeof d) == XPORT_OK)
            f->dgram_sent++;
          f->next_datagram += f->datagram_interval_us;
        }
    }
  while (xport_conn_poll_event (c, &ev))
    {
      if (ev.type == XPORT_EVENT_CLOSED)
        {
          f->closed = true;
          f->close_code = ev.code;
          continue;
        }
      if (ev.type == XPORT_EVENT_DATAGRAM && n == f->rx)
        {
          uint8_t d[XPORT_MAX_PACKET];
          ssize_t len;
          while ((len = xport_datagram_recv (c, d, sizeof d)) >= 0)
            {
              bool ok = len == 600;
              for (size_t i = 0; ok && i < (size_t)len; i++)
                ok = d[i] == (uint8_t)(d[0] + i);
              if (ok)
                f->dgram_received++;
              else
                f->dgram_bad++;
            }
          continue;
        }
      if (ev.type == XPORT_EVENT_STREAM_OPENED && n == f->rx)
        {
          /* The receiver learns the ids in the order the sender opened them. */
          for (unsigned i = 0; i < f->n_streams; i++)
            if (!f->s[i].opened || f->s[i].id == ev.stream_id)
              {
                f->s[i].id = ev.stream_id;
                f->s[i].opened = true;
                break;
              }
        }
    }
  if (n == f->tx)
    {
      for (unsigned i = 0; i < f->n_streams; i++)
        if (f->s[i].opened)
          flow_write (f, c, &f->s[i]);
    }
  else
    {
      for (unsigned i = 0; i < f->n_streams; i++)
        if (flow_stream (f, f->s[i].id) != NULL)
          flow_read (f, c, &f->s[i], now);
    }
}

bool
sim_flow_done (void *ctx)
{
  const struct sim_flow *f = ctx;
  return f->done_time != 0 || f->closed;
}

bool
sim_flow_verify (const struct sim_flow *f, char *why, size_t why_len)
{
  for (unsigned i = 0; i < f->n_streams; i++)
    {
      const struct sim_flow_stream *s = &f->s[i];
      if (!s->done)
        {
          snprintf (why, why_len, "stream %u: %llu of %llu bytes arrived", i,
                    (unsigned long long)s->read, (unsigned long long)s->total);
          return false;
        }
      if (s->read != s->total || memcmp (s->tx_digest, s->rx_digest, 32) != 0)
        {
          snprintf (why, why_len, "stream %u: SHA-256 differs (%llu bytes read)", i,
                    (unsigned long long)s->read);
          return false;
        }
    }
  return true;
}
