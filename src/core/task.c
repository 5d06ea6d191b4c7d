/*
 * task.c - tasks: start, the waits (future, sleep, yield), cancellation of
 * a task tree and the end of a task (core tier).
 * SPDX-License-Identifier: MIT
 */
#include "core.h"

static void live_link(weft_sched_t *s, weft_task_t *t) {
  t->live_prev = s->live.live_prev;
  t->live_next = &s->live;
  s->live.live_prev->live_next = t;
  s->live.live_prev = t;
  s->stats.live++;
}

static void live_unlink(weft_sched_t *s, weft_task_t *t) {
  t->live_prev->live_next = t->live_next;
  t->live_next->live_prev = t->live_prev;
  t->live_next = t->live_prev = NULL;
  s->stats.live--;
}

static void child_link(weft_task_t *parent, weft_task_t *t) {
  t->parent = parent;
  t->sib_prev = NULL;
  t->sib_next = parent->child;
  if (parent->child) parent->child->sib_prev = t;
  parent->child = t;
}

static void child_unlink(weft_task_t *t) {
  if (t->parent == NULL) return;
  if (t->sib_prev)
    t->sib_prev->sib_next = t->sib_next;
  else
    t->parent->child = t->sib_next;
  if (t->sib_next) t->sib_next->sib_prev = t->sib_prev;
  t->parent = t->sib_next = t->sib_prev = NULL;
}

int weft_task_start(weft_sched_t *s, weft_task_t *t, weft_task_fn fn,
                    int prio, weft_task_t *parent) {
  void *data = t->data;
  if (fn == NULL || prio < 0 || prio >= WEFT_NPRIO) return WEFT_EINVAL;
#if WEFT_EMBEDDED
  if (s->stats.live >= WEFT_CONF_TASKS) return WEFT_EFULL;
#endif
  if (parent && (parent->flags & WEFT_TASK_DONE)) parent = NULL;
  memset(t, 0, sizeof *t);
  weft_future_init(&t->done);
  t->data = data; /* set by the caller before start */
  t->sched = s;
  t->fn = fn;
  t->prio = (uint8_t)prio;
  t->id = s->next_id++;
  t->born = s->now;
  weft_waiter_init(&t->wait, NULL, t);
  weft_timer_init(s, &t->timer);
  live_link(s, t);
  if (parent) {
    child_link(parent, t);
    if (parent->flags & WEFT_TASK_CANCEL) {
      t->flags |= WEFT_TASK_CANCEL;
      t->wake = WEFT_ECANCELED;
    }
  }
  s->stats.spawned++;
  weft__sched_push(s, t);
  return 0;
}

void weft__task_wake(weft_task_t *t, int status) {
  weft_waiter_remove(&t->wait);
  weft_timer_stop(&t->timer);
  t->flags &= (uint8_t)~WEFT_TASK_PARKED;
  t->wake = status;
  weft__sched_push(t->sched, t);
}

/* Future states are positive and mean "it happened": status 0 for the
 * task. Channels and groups pass 0 or a negative code. */
static void wait_cb(weft_waiter_t *w, int status) {
  weft__task_wake(w->data, status > 0 ? 0 : status);
}

static void timer_cb(weft_timer_t *tm) {
  weft_task_t *t = container_of(tm, weft_task_t, timer);
  weft__task_wake(t, weft_waiter_linked(&t->wait) ? WEFT_ETIMEDOUT : 0);
}

int weft__task_park(weft_task_t *t, weft_link_t *list, void *buf,
                    uint64_t timeout_ms) {
  int r;
  WEFT_ASSERT(!(t->flags & (WEFT_TASK_PARKED | WEFT_TASK_DONE)));
  if (timeout_ms != WEFT_FOREVER &&
      (r = weft_timer_start(&t->timer, timer_cb, timeout_ms)) != 0)
    return r;
  if (list) {
    weft_waiter_init(&t->wait, wait_cb, t);
    t->wait.buf = buf;
    weft__wlist_push(list, &t->wait);
  }
  t->flags |= WEFT_TASK_PARKED;
  return WEFT_PENDING;
}

int weft_task_await(weft_task_t *t, weft_future_t *f, uint64_t timeout_ms) {
  if (f->state != WEFT_FUTURE_PENDING) return 0;
  return weft__task_park(t, &f->waiters, NULL, timeout_ms);
}

int weft_task_sleep(weft_task_t *t, uint64_t ms) {
  if (ms == WEFT_FOREVER) ms = WEFT_FOREVER - 1; /* a sleep always ends */
  return weft__task_park(t, NULL, NULL, ms);
}

int weft_task_yield(weft_task_t *t) {
  t->wake = 0;
  weft__sched_push(t->sched, t);
  return WEFT_PENDING;
}

static void mark_cancelled(weft_task_t *t) {
  if (t->flags & WEFT_TASK_DONE) return;
  t->flags |= WEFT_TASK_CANCEL;
  if (t->flags & WEFT_TASK_PARKED)
    weft__task_wake(t, WEFT_ECANCELED);
  else if (!(t->flags & WEFT_TASK_STARTED))
    t->wake = WEFT_ECANCELED; /* it will see the cancel on its first run */
}

/* Walks the subtree in preorder without recursion: a chain of nested
 * spawns may be deep. Marking never changes the tree. */
int weft_task_cancel(weft_task_t *t) {
  weft_task_t *n = t;
  if (t->flags & WEFT_TASK_DONE) return WEFT_ESTATE;
  for (;;) {
    mark_cancelled(n);
    if (n->child) {
      n = n->child;
      continue;
    }
    while (n != t && n->sib_next == NULL) n = n->parent;
    if (n == t) break;
    n = n->sib_next;
  }
  return 0;
}

static void unqueue(weft_sched_t *s, weft_task_t *t) {
  weft_task_t **pp = &s->ready_head[t->prio], *prev = NULL;
  while (*pp != t) {
    prev = *pp;
    pp = &(*pp)->ready_next;
  }
  *pp = t->ready_next;
  if (s->ready_tail[t->prio] == t) s->ready_tail[t->prio] = prev;
  if (s->ready_head[t->prio] == NULL) s->ready_mask &= ~(1u << t->prio);
  t->flags &= (uint8_t)~WEFT_TASK_QUEUED;
  s->stats.ready--;
}

int weft_task_finish(weft_task_t *t, int state, int code) {
  weft_sched_t *s = t->sched;
  if (t->flags & WEFT_TASK_DONE) return WEFT_ESTATE;
  t->flags |= WEFT_TASK_DONE;
  weft_waiter_remove(&t->wait);
  weft_timer_stop(&t->timer);
  t->flags &= (uint8_t)~WEFT_TASK_PARKED;
  if (t->flags & WEFT_TASK_QUEUED) unqueue(s, t);
  live_unlink(s, t);
  while (t->child) child_unlink(t->child); /* children run on, detached */
  child_unlink(t);
  s->stats.finished++;
  if (state == WEFT_FUTURE_FULFILLED)
    s->stats.fulfilled++;
  else if (state == WEFT_FUTURE_REJECTED)
    s->stats.rejected++;
  else
    s->stats.cancelled++;
  if (state == WEFT_FUTURE_FULFILLED)
    weft_future_fulfill(&t->done);
  else if (state == WEFT_FUTURE_REJECTED)
    weft_future_reject(&t->done, code);
  else
    weft_future_settle_cancelled(&t->done);
  if (t->group) weft__group_member_done(t); /* reads the settled state */
  return 0;
}
