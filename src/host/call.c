/*
 * call.c - host calls: start, completion from any thread, cancellation,
 * and delivery to the loop through its inbox (host tier).
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "host.h"

static size_t call_size(const weft_call_t *c) {
  return sizeof *c + strlen(c->name) + 1;
}

weft_call_t *weft__call_new(weft_loop_t *loop, const char *name,
                            weft_host_fn fn, const weft_fn_opts *opts,
                            weft_pool_t *pool, weft_value_t *args) {
  size_t nlen = strlen(name);
  weft_call_t *c = weft__valloc(NULL, 0, sizeof *c + nlen + 1);
  if (c == NULL) {
    weft_value_free(args);
    return NULL;
  }
  memset(c, 0, sizeof *c);
  atomic_init(&c->refs, 1);
  atomic_init(&c->state, CALL_PENDING);
  c->loop = loop;
  c->pool = pool;
  c->fn = fn;
  c->on_cancel = opts->on_cancel;
  c->ud = opts->ud;
  c->kind = opts->kind;
  c->prio = opts->priority;
  c->timeout_ms = opts->timeout_ms;
  memcpy((char *)(c + 1), name, nlen + 1);
  c->name = (const char *)(c + 1);
  c->args = *args;
  weft_value_nil(args);
  weft_value_nil(&c->result);
  weft_future_init(&c->fut);
  return c;
}

void weft_call_ref(weft_call_t *c) {
  atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

/* The last reference frees; acq_rel so the freeing thread sees every
 * write the other holders made before dropping theirs. */
void weft_call_unref(weft_call_t *c) {
  if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
    return;
  if (c->fini) c->fini(c->ud);
  weft_value_free(&c->args);
  weft_value_free(&c->result);
  if (c->error) weft__valloc(c->error, strlen(c->error) + 1, 0);
  weft__valloc(c, call_size(c), 0);
}

const weft_value_t *weft_call_args(const weft_call_t *c) { return &c->args; }

const char *weft_call_name(const weft_call_t *c) { return c->name; }

int weft_call_cancelled(const weft_call_t *c) {
  return atomic_load(&((weft_call_t *)c)->state) == CALL_CANCELLED;
}

static char *copy_msg(const char *msg) {
  size_t n = strlen(msg);
  char *p = weft__valloc(NULL, 0, n + 1);
  if (p) memcpy(p, msg, n + 1);
  return p;
}

static void settle(weft_call_t *c) {
  if (c->status == 0)
    weft_future_fulfill(&c->fut);
  else
    weft_future_reject(&c->fut, c->status);
}

/* The one completion path. Winning the CAS makes this the completion;
 * the result is written after winning, then published by the inbox mutex
 * (a sync call completes on the loop thread and settles at once). */
static int complete(weft_call_t *c, weft_value_t *result, const char *msg) {
  int expected = CALL_PENDING;
  char *err = msg ? copy_msg(msg) : NULL;
  weft_loop_t *loop = c->loop;
  if (!atomic_compare_exchange_strong(&c->state, &expected, CALL_DONE)) {
    if (err) weft__valloc(err, strlen(err) + 1, 0);
    if (result) weft_value_free(result);
    return WEFT_ESTATE;
  }
  if (result) {
    c->result = *result;
    weft_value_nil(result);
  }
  c->error = err; /* NULL for a message lost to out of memory */
  c->status = msg ? WEFT_ESCRIPT : 0;
  if (c->kind == WEFT_FN_SYNC) {
    settle(c);
    return 0;
  }
  weft_call_ref(c); /* the inbox's reference */
  uv_mutex_lock(&loop->inbox_mu);
  c->inbox_next = NULL;
  if (loop->inbox_tail)
    loop->inbox_tail->inbox_next = c;
  else
    loop->inbox_head = c;
  loop->inbox_tail = c;
  atomic_store_explicit(&loop->inbox_ready, 1, memory_order_relaxed);
  /* Send before unlocking: once the mutex is free the loop may deliver
   * this call, see nothing in flight and be freed. */
  uv_async_send(&loop->async);
  uv_mutex_unlock(&loop->inbox_mu);
  return 0;
}

int weft_call_resolve(weft_call_t *c, weft_value_t *result) {
  weft_value_t nil;
  if (result == NULL) {
    weft_value_nil(&nil);
    result = &nil;
  }
  return complete(c, result, NULL);
}

int weft_call_reject(weft_call_t *c, const char *message) {
  return complete(c, NULL, message ? message : "failed");
}

int weft__call_start(weft_call_t *c) {
  int r;
  switch (c->kind) {
  case WEFT_FN_SYNC:
    c->fn(c, c->ud);
    if (atomic_load(&c->state) == CALL_PENDING)
      weft_call_reject(c, "returned without completing the call");
    return 0;
  case WEFT_FN_LOOP:
    weft__loop_call_started(c->loop, c);
    c->fn(c, c->ud);
    return 0;
  default:
    weft__loop_call_started(c->loop, c);
    if ((r = weft__pool_submit(c->pool, c)) != 0) {
      weft__loop_call_done(c->loop, c);
      if (!c->loop->room_ref) { /* until the room signal: see host.h */
        c->loop->room_ref = 1;
        if (c->loop->inflight++ == 0) uv_ref((uv_handle_t *)&c->loop->async);
      }
    }
    return r;
  }
}

int weft__call_cancel(weft_call_t *c) {
  int expected = CALL_PENDING;
  if (!atomic_compare_exchange_strong(&c->state, &expected, CALL_CANCELLED))
    return 0;
  if (c->started) {
    if (c->kind == WEFT_FN_POOL && weft__pool_remove(c->pool, c)) {
      /* it never ran: the host need not hear of it */
    } else if (c->on_cancel) {
      c->on_cancel(c, c->ud);
    }
    weft__loop_call_done(c->loop, c);
  }
  weft_future_settle_cancelled(&c->fut);
  return 1;
}

void weft__call_release(weft_call_t *c) {
  weft__call_cancel(c);
  weft_call_unref(c);
}

void weft__loop_call_started(weft_loop_t *loop, weft_call_t *c) {
  c->started = 1;
  c->loop_prev = NULL;
  c->loop_next = loop->calls;
  if (loop->calls) loop->calls->loop_prev = c;
  loop->calls = c;
  if (c->kind != WEFT_FN_LOOP) loop->pool_inflight++;
  if (loop->inflight++ == 0) uv_ref((uv_handle_t *)&loop->async);
}

void weft__loop_call_done(weft_loop_t *loop, weft_call_t *c) {
  if (!c->started) return;
  c->started = 0;
  if (c->loop_prev)
    c->loop_prev->loop_next = c->loop_next;
  else
    loop->calls = c->loop_next;
  if (c->loop_next) c->loop_next->loop_prev = c->loop_prev;
  c->loop_next = c->loop_prev = NULL;
  if (c->kind != WEFT_FN_LOOP) loop->pool_inflight--;
  weft__loop_inflight_done(loop);
}

void weft__loop_room_done(weft_loop_t *loop) {
  if (!loop->room_ref) return;
  loop->room_ref = 0;
  weft__loop_inflight_done(loop);
}

/* One wake-up delivers every completion and post that arrived since the
 * last. */
void weft__loop_drain(weft_loop_t *loop) {
  weft_call_t *c, *next;
  weft_post_t *posts;
  uv_mutex_lock(&loop->inbox_mu);
  c = loop->inbox_head;
  loop->inbox_head = loop->inbox_tail = NULL;
  posts = loop->post_head;
  loop->post_head = loop->post_tail = NULL;
  atomic_store_explicit(&loop->inbox_ready, 0, memory_order_relaxed);
  uv_mutex_unlock(&loop->inbox_mu);
  for (; c; c = next) {
    next = c->inbox_next;
    c->delivered = 1;
    weft__loop_call_done(loop, c);
    settle(c);
    weft_call_unref(c);
  }
  if (atomic_exchange(&loop->space_signal, 0)) {
    weft__loop_room_done(loop); /* every waiter wakes and tries again */
    weft_future_fulfill(&loop->space);
    weft_future_init(&loop->space); /* every waiter was woken and unlinked */
  }
  /* The posts were taken whole: one posted again from a callback waits
   * for the next wake-up, so posting cannot keep the drain from ending. */
  if (posts) weft__posts_run(posts);
}

/* ------------------------------------------------------- calls from C */

int weft_call_new(weft_loop_t *loop, const char *name, weft_host_fn fn,
                  const weft_fn_opts *opts, weft_pool_t *pool,
                  weft_value_t *args, weft_call_t **out) {
  weft_value_t none;
  if (args == NULL) {
    weft_value_nil(&none);
    args = &none;
  }
  if (out) *out = NULL;
  if (opts && opts->kind == WEFT_FN_POOL && pool == NULL && loop)
    pool = loop->pool;
  if (loop == NULL || name == NULL || fn == NULL || opts == NULL ||
      out == NULL || opts->kind < WEFT_FN_SYNC ||
      opts->kind > WEFT_FN_LOOP || opts->priority < 0 ||
      opts->priority >= WEFT_NPRIO ||
      (opts->kind == WEFT_FN_POOL && pool == NULL) ||
      (args->type != WEFT_VNIL && args->type != WEFT_VARRAY)) {
    weft_value_free(args);
    return WEFT_EINVAL;
  }
  if (args->type == WEFT_VNIL && weft_value_array(args, 0) != 0)
    return WEFT_ENOMEM;
  *out = weft__call_new(loop, name, fn, opts, pool, args);
  return *out ? 0 : WEFT_ENOMEM;
}

int weft_call_start(weft_call_t *c) {
  if (c == NULL) return WEFT_EINVAL;
  if (c->started || c->delivered ||
      atomic_load(&c->state) != CALL_PENDING)
    return WEFT_ESTATE;
  return weft__call_start(c);
}

weft_future_t *weft_call_future(weft_call_t *c) {
  return c ? &c->fut : NULL;
}

const weft_value_t *weft_call_result(const weft_call_t *c) {
  return c && c->fut.state == WEFT_FUTURE_FULFILLED ? &c->result : NULL;
}

int weft_call_error(const weft_call_t *c, weft_error_t *out) {
  weft_error_t none;
  if (out == NULL) out = &none;
  memset(out, 0, sizeof *out);
  if (c == NULL) return WEFT_EINVAL;
  if (c->fut.state != WEFT_FUTURE_REJECTED) return 0;
  out->code = c->err ? c->err : WEFT_ESCRIPT;
  out->where = c->name;
  out->message = c->error ? c->error : "failed (message lost: no memory)";
  return out->code;
}

int weft_call_cancel(weft_call_t *c) { return weft__call_cancel(c); }

void weft_call_release(weft_call_t *c) {
  if (c) weft__call_release(c);
}

weft_future_t *weft_loop_room(weft_loop_t *loop) { return &loop->space; }

void weft_loop_set_pool(weft_loop_t *loop, weft_pool_t *pool) {
  loop->pool = pool;
}

weft_pool_t *weft_loop_pool(const weft_loop_t *loop) { return loop->pool; }

size_t weft_loop_calls(const weft_loop_t *loop) { return loop->inflight; }

/* ---------------------------------------------------- tracked objects */

void weft__loop_track(weft_loop_t *loop, weft__closer *c) {
  c->next = loop->tracked;
  if (c->next) c->next->pprev = &c->next;
  loop->tracked = c;
  c->pprev = &loop->tracked;
}

void weft__loop_untrack(weft__closer *c) {
  if (c->pprev == NULL) return;
  *c->pprev = c->next;
  if (c->next) c->next->pprev = c->pprev;
  c->next = NULL;
  c->pprev = NULL;
}

void weft__loop_close_tracked(weft_loop_t *loop) {
  while (loop->tracked) {
    weft__closer *c = loop->tracked;
    weft__loop_untrack(c);
    c->close(c);
  }
}
