/*
 * timer.c - one-shot timers on a binary min-heap (core tier).
 * Start and stop are O(log n); each timer knows its heap slot, so stopping
 * needs no search. The only allocation is the heap array, which doubles;
 * a million armed timers cost 8 MB of pointers and nothing per timer. In
 * the embedded tier the array is fixed (WEFT_CONF_TIMERS slots in the
 * scheduler) and a full heap is WEFT_EFULL.
 * SPDX-License-Identifier: MIT
 */
#include "core.h"

static int before(const weft_timer_t *a, const weft_timer_t *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void put(weft_sched_t *s, size_t i, weft_timer_t *t) {
  s->heap[i] = t;
  t->slot = i + 1;
}

static void sift_up(weft_sched_t *s, size_t i) {
  weft_timer_t *t = s->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(t, s->heap[parent])) break;
    put(s, i, s->heap[parent]);
    i = parent;
  }
  put(s, i, t);
}

static void sift_down(weft_sched_t *s, size_t i) {
  weft_timer_t *t = s->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= s->heap_len) break;
    if (c + 1 < s->heap_len && before(s->heap[c + 1], s->heap[c])) c++;
    if (!before(s->heap[c], t)) break;
    put(s, i, s->heap[c]);
    i = c;
  }
  put(s, i, t);
}

#if WEFT_EMBEDDED
static int grow(weft_sched_t *s) {
  (void)s;
  return WEFT_EFULL;
}
#else
static int grow(weft_sched_t *s) {
  size_t cap = s->heap_cap ? s->heap_cap * 2 : WEFT_TIMER_HEAP_MIN;
  size_t esz = sizeof(weft_timer_t *);
  void *p;
  if (cap > (size_t)-1 / esz) return WEFT_ENOMEM;
  p = weft__sched_alloc(s, s->heap, s->heap_cap * esz, cap * esz);
  if (p == NULL) return WEFT_ENOMEM;
  s->heap = p;
  s->heap_cap = cap;
  return 0;
}
#endif

void weft_timer_init(weft_sched_t *s, weft_timer_t *t) {
  t->due = t->seq = 0;
  t->slot = 0;
  t->cb = NULL;
  t->sched = s;
  t->data = NULL;
}

int weft_timer_start(weft_timer_t *t, weft_timer_cb cb, uint64_t delay_ms) {
  weft_sched_t *s = t->sched;
  int r;
  weft_timer_stop(t);
  if (s->heap_len == s->heap_cap && (r = grow(s)) != 0) return r;
  t->cb = cb;
  /* Saturate: a huge delay means "practically never", not a wrapped past. */
  t->due = delay_ms > UINT64_MAX - s->now ? UINT64_MAX : s->now + delay_ms;
  t->seq = s->timer_seq++;
  s->heap[s->heap_len] = t;
  sift_up(s, s->heap_len++);
  return 0;
}

void weft_timer_stop(weft_timer_t *t) {
  weft_sched_t *s = t->sched;
  size_t i;
  if (t->slot == 0) return;
  i = t->slot - 1;
  t->slot = 0;
  if (--s->heap_len == i) return; /* it was the last slot */
  put(s, i, s->heap[s->heap_len]);
  if (i > 0 && before(s->heap[i], s->heap[(i - 1) / 2]))
    sift_up(s, i);
  else
    sift_down(s, i);
}

int weft_timer_active(const weft_timer_t *t) { return t->slot != 0; }

/* A callback may start or stop timers, this one included; each round
 * re-reads the top, so the heap may change under us safely. Timers started
 * by a callback with delay 0 are due now and fire in this same pass, in
 * order; a callback that re-arms itself for 0 ms forever would spin, as a
 * setImmediate loop does in Node. */
void weft__timers_run(weft_sched_t *s) {
  while (s->heap_len > 0 && s->heap[0]->due <= s->now) {
    weft_timer_t *t = s->heap[0];
    weft_timer_stop(t);
    t->cb(t);
  }
}

void weft__timers_free(weft_sched_t *s) {
#if WEFT_EMBEDDED
  s->heap_len = 0;
#else
  weft__sched_alloc(s, s->heap, s->heap_cap * sizeof(weft_timer_t *), 0);
  s->heap = NULL;
  s->heap_len = s->heap_cap = 0;
#endif
}

int weft_sched_next_due(const weft_sched_t *s, uint64_t *due) {
  if (s->heap_len == 0) return WEFT_EEMPTY;
  *due = s->heap[0]->due;
  return 0;
}
