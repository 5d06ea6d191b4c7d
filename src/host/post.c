/*
 * post.c - posting into a loop from any thread: callbacks, future
 * settlements, task starts and channel sends run on the loop thread, and
 * the keep-alive holds for hosts that post (host tier).
 * SPDX-License-Identifier: MIT
 *
 * Posts share the inbox's mutex and async with completed calls: one
 * wake-up for everything other threads send (see weft__loop_drain). The
 * caller owns each post's memory, so nothing here allocates.
 */
#include "host.h"

static void done(weft_post_t *p, int status) {
  if (p->cb) p->cb(p, status);
}

/* Appends p to the queue. Only the first post into an empty queue sends
 * the async: a non-empty queue was sent for after the last drain took
 * it, and that drain is still to come. */
static int enqueue(weft_loop_t *loop, weft_post_t *p) {
  int first;
  uv_mutex_lock(&loop->inbox_mu);
  if (loop->posts_closed) {
    uv_mutex_unlock(&loop->inbox_mu);
    return WEFT_ECLOSED;
  }
  p->loop = loop;
  p->next = NULL;
  first = loop->post_head == NULL;
  if (first)
    loop->post_head = p;
  else
    loop->post_tail->next = p;
  loop->post_tail = p;
  if (first) {
    atomic_store_explicit(&loop->inbox_ready, 1, memory_order_relaxed);
    /* Send before unlocking: once the mutex is free the loop may run
     * this post, end and be freed (see complete in call.c). */
    uv_async_send(&loop->async);
  }
  uv_mutex_unlock(&loop->inbox_mu);
  return 0;
}

static void run_cb(weft_post_t *p) { p->cb(p, 0); }

int weft_loop_post(weft_loop_t *loop, weft_post_t *p, weft_post_cb cb) {
  if (loop == NULL || p == NULL || cb == NULL) return WEFT_EINVAL;
  p->cb = cb;
  p->run = run_cb;
  return enqueue(loop, p);
}

static void run_settle(weft_post_t *p) {
  weft_future_t *f = p->u.settle.f;
  int r;
  if (p->u.settle.state == WEFT_FUTURE_FULFILLED)
    r = weft_future_fulfill(f);
  else if (p->u.settle.state == WEFT_FUTURE_REJECTED)
    r = weft_future_reject(f, p->u.settle.code);
  else
    r = weft_future_settle_cancelled(f);
  done(p, r);
}

int weft_loop_post_settle(weft_loop_t *loop, weft_post_t *p,
                          weft_future_t *f, int state, int code,
                          weft_post_cb cb) {
  if (loop == NULL || p == NULL || f == NULL ||
      state < WEFT_FUTURE_FULFILLED || state > WEFT_FUTURE_CANCELLED)
    return WEFT_EINVAL;
  p->cb = cb;
  p->run = run_settle;
  p->u.settle.f = f;
  p->u.settle.state = state;
  p->u.settle.code = code;
  return enqueue(loop, p);
}

static void run_start(weft_post_t *p) {
  done(p, weft_task_start(&p->loop->sched, p->u.start.t, p->u.start.fn,
                          p->u.start.prio, NULL));
}

int weft_loop_post_start(weft_loop_t *loop, weft_post_t *p, weft_task_t *t,
                         weft_task_fn fn, int prio, weft_post_cb cb) {
  if (loop == NULL || p == NULL || t == NULL || fn == NULL || prio < 0 ||
      prio >= WEFT_NPRIO)
    return WEFT_EINVAL;
  p->cb = cb;
  p->run = run_start;
  p->u.start.t = t;
  p->u.start.fn = fn;
  p->u.start.prio = prio;
  return enqueue(loop, p);
}

/* About parked sends: a post whose channel was full waits in the
 * channel's senders list through its waiter, and in the loop's parked
 * list (next/prev), so that weft_loop_free can cancel it. */
static void unpark(weft_post_t *p) {
  if (p->prev)
    p->prev->next = p->next;
  else
    p->loop->parked = p->next;
  if (p->next) p->next->prev = p->prev;
  p->next = p->prev = NULL;
}

static void on_sent(weft_waiter_t *w, int status) {
  weft_post_t *p = w->data;
  unpark(p);
  done(p, status);
}

static void run_send(weft_post_t *p) {
  weft_loop_t *loop = p->loop;
  int r;
  weft_waiter_init(&p->wait, on_sent, p);
  r = weft_chan_send_waiter(p->u.send.ch, &p->wait, p->u.send.item);
  if (r != WEFT_PENDING) {
    done(p, r);
    return;
  }
  p->prev = NULL;
  p->next = loop->parked;
  if (loop->parked) loop->parked->prev = p;
  loop->parked = p;
}

int weft_loop_post_send(weft_loop_t *loop, weft_post_t *p, weft_chan_t *ch,
                        const void *item, weft_post_cb cb) {
  if (loop == NULL || p == NULL || ch == NULL || item == NULL)
    return WEFT_EINVAL;
  p->cb = cb;
  p->run = run_send;
  p->u.send.ch = ch;
  p->u.send.item = item;
  return enqueue(loop, p);
}

void weft__posts_run(weft_post_t *p) {
  weft_post_t *next;
  for (; p; p = next) {
    next = p->next; /* the callback may free or repost p */
    p->run(p);
  }
}

void weft__posts_close(weft_loop_t *loop) {
  weft_post_t *p, *next;
  uv_mutex_lock(&loop->inbox_mu);
  loop->posts_closed = 1;
  p = loop->post_head;
  loop->post_head = loop->post_tail = NULL;
  uv_mutex_unlock(&loop->inbox_mu);
  for (; p; p = next) {
    next = p->next;
    done(p, WEFT_ECANCELED);
  }
  while ((p = loop->parked) != NULL) {
    weft_waiter_remove(&p->wait); /* harmless if its channel was freed */
    unpark(p);
    done(p, WEFT_ECANCELED);
  }
}

void weft_loop_ref(weft_loop_t *loop) {
  if (loop->keep++ == 0) uv_ref((uv_handle_t *)&loop->async);
}

void weft_loop_unref(weft_loop_t *loop) {
  if (loop->keep == 0) return;
  if (--loop->keep == 0 && loop->inflight == 0)
    uv_unref((uv_handle_t *)&loop->async);
}
