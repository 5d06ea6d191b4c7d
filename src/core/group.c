/*
 * group.c - join sets of tasks for structured concurrency (core tier).
 * SPDX-License-Identifier: MIT
 */
#include "core.h"

void weft_group_init(weft_group_t *g, int flags) {
  memset(g, 0, sizeof *g);
  g->flags = flags;
  weft__wlist_init(&g->joiners);
}

int weft_group_add(weft_group_t *g, weft_task_t *t) {
  if (t->group || (t->flags & WEFT_TASK_DONE)) return WEFT_EINVAL;
  t->group = g;
  t->grp_prev = NULL;
  t->grp_next = g->running;
  if (g->running) g->running->grp_prev = t;
  g->running = t;
  g->nrunning++;
  return 0;
}

static void running_unlink(weft_group_t *g, weft_task_t *t) {
  if (t->grp_prev)
    t->grp_prev->grp_next = t->grp_next;
  else
    g->running = t->grp_next;
  if (t->grp_next) t->grp_next->grp_prev = t->grp_prev;
  t->grp_next = t->grp_prev = NULL;
  g->nrunning--;
}

void weft__group_cancel_except(weft_group_t *g, weft_task_t *keep) {
  weft_task_t *m;
  for (m = g->running; m; m = m->grp_next)
    if (m != keep) weft_task_cancel(m); /* never finishes m synchronously */
}

void weft__group_member_done(weft_task_t *t) {
  weft_group_t *g = t->group;
  weft_waiter_t *w;
  running_unlink(g, t);
  if (t->done.state == WEFT_FUTURE_REJECTED && g->failed == NULL) {
    g->failed = t;
    if (g->flags & WEFT_GROUP_FAIL_FAST) weft__group_cancel_except(g, t);
  }
  if ((w = weft__wlist_first(&g->joiners)) != NULL) {
    t->group = NULL;
    *(weft_task_t **)w->buf = t;
    weft__wlist_wake_one(&g->joiners, 0);
    return;
  }
  t->grp_next = NULL;
  if (g->fin_tail)
    g->fin_tail->grp_next = t;
  else
    g->fin_head = t;
  g->fin_tail = t;
  g->nfinished++;
}

int weft_group_try_join(weft_group_t *g, weft_task_t **out) {
  weft_task_t *m = g->fin_head;
  if (m == NULL) return g->nrunning ? WEFT_EEMPTY : WEFT_ECLOSED;
  g->fin_head = m->grp_next;
  if (g->fin_head == NULL) g->fin_tail = NULL;
  g->nfinished--;
  m->grp_next = NULL;
  m->group = NULL;
  *out = m;
  return 0;
}

/* A finished member never waits while a joiner is parked (member_done
 * hands it over), so trying first serves joiners in order. */
int weft_group_join(weft_group_t *g, weft_task_t *t, weft_task_t **out) {
  int r = weft_group_try_join(g, out);
  if (r != WEFT_EEMPTY) return r;
  return weft__task_park(t, &g->joiners, out, WEFT_FOREVER);
}

void weft_group_cancel(weft_group_t *g) { weft__group_cancel_except(g, NULL); }

void weft_group_clear(weft_group_t *g) {
  weft_task_t *m, *next;
  for (m = g->running; m; m = next) {
    next = m->grp_next;
    m->group = NULL;
    m->grp_next = m->grp_prev = NULL;
  }
  for (m = g->fin_head; m; m = next) {
    next = m->grp_next;
    m->group = NULL;
    m->grp_next = NULL;
  }
  g->running = g->fin_head = g->fin_tail = NULL;
  g->nrunning = g->nfinished = 0;
  weft__wlist_wake_all(&g->joiners, WEFT_ECLOSED);
}

size_t weft_group_size(const weft_group_t *g) {
  return g->nrunning + g->nfinished;
}

weft_task_t *weft_group_failed(const weft_group_t *g) { return g->failed; }
