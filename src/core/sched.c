/*
 * sched.c - the scheduler: ready queue with five priorities, the dispatch
 * policy, the clock, counters and error names (core tier).
 * SPDX-License-Identifier: MIT
 */
#include "core.h"

/* About the ready queue: one singly-linked FIFO per priority level and a
 * bitmask of the non-empty levels (bit i set iff ready_head[i] != NULL).
 * A queued task has WEFT_TASK_QUEUED set and is in exactly one list.
 *
 * Dispatch policy: normally the most urgent non-empty level is served. To
 * bound starvation, every WEFT_FAIR_PERIOD-th dispatch is a fairness turn
 * that serves the next non-empty level after fair_cursor, round robin over
 * all five. So under any stream of urgent work, a waiting task at any level
 * runs within WEFT_FAIR_PERIOD * WEFT_NPRIO dispatches of reaching the head
 * of its level, and urgent work still gets at least 7/8 of dispatches. */

void weft_sched_init(weft_sched_t *s, weft_alloc_fn alloc, void *ud) {
  memset(s, 0, sizeof *s);
#if WEFT_EMBEDDED
  (void)alloc;
  (void)ud;
  s->heap_cap = WEFT_CONF_TIMERS;
#else
  s->alloc = alloc;
  s->alloc_ud = ud;
#endif
  s->live.live_next = s->live.live_prev = &s->live;
  s->next_id = 1;
}

int weft_sched_close(weft_sched_t *s) {
  int live = s->live.live_next != &s->live;
  weft__timers_free(s);
  return live ? WEFT_ESTATE : 0;
}

#if !WEFT_EMBEDDED
void *weft__sched_alloc(weft_sched_t *s, void *p, size_t osize,
                        size_t nsize) {
  return s->alloc(s->alloc_ud, p, osize, nsize);
}
#endif

void weft_sched_set_time(weft_sched_t *s, uint64_t now_ms) {
  if (now_ms > s->now) s->now = now_ms;
}

uint64_t weft_sched_now(const weft_sched_t *s) { return s->now; }

void weft__sched_push(weft_sched_t *s, weft_task_t *t) {
  unsigned p = t->prio;
  if (t->flags & WEFT_TASK_QUEUED) return;
  t->flags |= WEFT_TASK_QUEUED;
  t->ready_next = NULL;
  if (s->ready_tail[p])
    s->ready_tail[p]->ready_next = t;
  else
    s->ready_head[p] = t;
  s->ready_tail[p] = t;
  s->ready_mask |= 1u << p;
  s->stats.ready++;
}

static unsigned pick_level(weft_sched_t *s) {
  unsigned mask = s->ready_mask, i;
  if (++s->fair_count >= WEFT_FAIR_PERIOD) {
    s->fair_count = 0;
    for (i = 1; i <= WEFT_NPRIO; i++) {
      unsigned lvl = (s->fair_cursor + i) % WEFT_NPRIO;
      if (mask & (1u << lvl)) {
        s->fair_cursor = lvl;
        return lvl;
      }
    }
  }
  for (i = 0; !(mask & (1u << i)); i++) {
  }
  return i;
}

static weft_task_t *pop(weft_sched_t *s) {
  unsigned lvl;
  weft_task_t *t;
  if (s->ready_mask == 0) return NULL;
  lvl = pick_level(s);
  t = s->ready_head[lvl];
  s->ready_head[lvl] = t->ready_next;
  if (s->ready_head[lvl] == NULL) {
    s->ready_tail[lvl] = NULL;
    s->ready_mask &= ~(1u << lvl);
  }
  t->ready_next = NULL;
  t->flags &= (uint8_t)~WEFT_TASK_QUEUED;
  s->stats.ready--;
  return t;
}

/* The next task to run. In the embedded tier, signals raised by
 * interrupts since the last dispatch wake their tasks first, so an urgent
 * task woken by an interrupt runs at the next dispatch. */
static weft_task_t *next(weft_sched_t *s) {
#if WEFT_EMBEDDED
  weft__signals_run(s);
#endif
  return pop(s);
}

static void dispatch(weft_sched_t *s, weft_task_t *t) {
  int status = t->wake, r;
  t->wake = 0;
  t->flags |= WEFT_TASK_STARTED;
  s->current = t;
  s->stats.dispatched++;
  r = t->fn(t, status);
  s->current = NULL;
  /* After WEFT_PENDING the task may be gone (a binding may free a task
   * that finished itself), so only WEFT_READY lets us touch it again. */
  if (r == WEFT_READY) weft_task_finish(t, WEFT_FUTURE_FULFILLED, 0);
}

size_t weft_sched_run(weft_sched_t *s, size_t max) {
  size_t n = 0;
  weft_task_t *t;
  s->stop = 0;
  weft__timers_run(s);
  while (n < max && !s->stop && (t = next(s)) != NULL) {
    dispatch(s, t);
    n++;
  }
  return n;
}

void weft_sched_stop(weft_sched_t *s) { s->stop = 1; }

int weft_sched_has_ready(const weft_sched_t *s) { return s->ready_mask != 0; }

weft_task_t *weft_sched_current(const weft_sched_t *s) { return s->current; }

weft_task_t *weft_sched_next_live(const weft_sched_t *s, weft_task_t *t) {
  weft_task_t *n = t ? t->live_next : s->live.live_next;
  return n == &s->live ? NULL : n;
}

void weft_sched_stats(const weft_sched_t *s, weft_stats_t *out) {
  *out = s->stats;
  out->timers = s->heap_len;
}

const char *weft_strerror(int code) {
  switch (code) {
  case WEFT_OK: return "success";
  case WEFT_ENOMEM: return "not enough memory";
  case WEFT_ECANCELED: return "cancelled";
  case WEFT_ETIMEDOUT: return "timed out";
  case WEFT_ECLOSED: return "closed";
  case WEFT_EINVAL: return "invalid argument";
  case WEFT_EFULL: return "full";
  case WEFT_EEMPTY: return "empty";
  case WEFT_ESTATE: return "invalid state";
  case WEFT_EDEADLK: return "deadlock: nothing can wake the waiting task";
  case WEFT_ESCRIPT: return "script error";
  default: return "unknown error";
  }
}

const char *weft_err_name(int code) {
  switch (code) {
  case WEFT_OK: return "WEFT_OK";
  case WEFT_ENOMEM: return "WEFT_ENOMEM";
  case WEFT_ECANCELED: return "WEFT_ECANCELED";
  case WEFT_ETIMEDOUT: return "WEFT_ETIMEDOUT";
  case WEFT_ECLOSED: return "WEFT_ECLOSED";
  case WEFT_EINVAL: return "WEFT_EINVAL";
  case WEFT_EFULL: return "WEFT_EFULL";
  case WEFT_EEMPTY: return "WEFT_EEMPTY";
  case WEFT_ESTATE: return "WEFT_ESTATE";
  case WEFT_EDEADLK: return "WEFT_EDEADLK";
  case WEFT_ESCRIPT: return "WEFT_ESCRIPT";
  default: return "WEFT_EUNKNOWN";
  }
}

#if !WEFT_EMBEDDED
const char *weft_version(void) { return WEFT_VERSION_STRING; }
#endif
