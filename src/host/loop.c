/*
 * loop.c - the host loop: a core scheduler driven by libuv (host tier).
 * SPDX-License-Identifier: MIT
 */
#include <stdlib.h>
#include <string.h>

#include "host.h"

/* Ready tasks resumed per step before libuv gets to poll for I/O: large
 * enough to amortise the poll, small enough that I/O is not starved by a
 * storm of yields. */
#define STEP_BUDGET 4096

void *weft__std_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(p);
    return NULL;
  }
  return realloc(p, nsize);
}

int weft_loop_new(weft_loop_t **out, weft_alloc_fn alloc, void *ud) {
  weft_loop_t *loop;
  int r;
  if (out == NULL) return WEFT_EINVAL;
  *out = NULL;
  if (alloc == NULL) alloc = weft__std_alloc;
  loop = alloc(ud, NULL, 0, sizeof *loop);
  if (loop == NULL) return WEFT_ENOMEM;
  memset(loop, 0, sizeof *loop);
  weft_sched_init(&loop->sched, alloc, ud);
  if ((r = uv_loop_init(&loop->uv)) != 0) {
    alloc(ud, loop, sizeof *loop, 0);
    return r;
  }
  uv_timer_init(&loop->uv, &loop->timer);
  weft_loop_update_time(loop);
  *out = loop;
  return 0;
}

int weft_loop_free(weft_loop_t *loop) {
  weft_alloc_fn alloc;
  void *ud;
  if (loop == NULL) return WEFT_EINVAL;
  if (loop->running) return WEFT_ESTATE;
  uv_close((uv_handle_t *)&loop->timer, NULL);
  uv_run(&loop->uv, UV_RUN_DEFAULT); /* runs the close callbacks */
  uv_loop_close(&loop->uv);
  weft_sched_close(&loop->sched);
  alloc = loop->sched.alloc;
  ud = loop->sched.alloc_ud;
  alloc(ud, loop, sizeof *loop, 0);
  return 0;
}

weft_sched_t *weft_loop_sched(weft_loop_t *loop) { return &loop->sched; }

void *weft_loop_uv(weft_loop_t *loop) { return &loop->uv; }

void weft_loop_update_time(weft_loop_t *loop) {
  uv_update_time(&loop->uv);
  weft_sched_set_time(&loop->sched, uv_now(&loop->uv));
}

static void on_timer(uv_timer_t *h) {
  (void)h; /* the run loop fires the due core timers after uv_run returns */
}

/* One wait for I/O or the next deadline. Returns 0 when nothing at all can
 * happen any more. */
static int wait_step(weft_loop_t *loop) {
  uint64_t due, now;
  if (weft_sched_has_ready(&loop->sched)) {
    uv_run(&loop->uv, UV_RUN_NOWAIT);
    return 1;
  }
  if (weft_sched_next_due(&loop->sched, &due) == 0) {
    weft_loop_update_time(loop);
    now = weft_sched_now(&loop->sched);
    uv_timer_start(&loop->timer, on_timer, due > now ? due - now : 0, 0);
    uv_run(&loop->uv, UV_RUN_ONCE);
    uv_timer_stop(&loop->timer);
    return 1;
  }
  if (!uv_loop_alive(&loop->uv)) return 0;
  uv_run(&loop->uv, UV_RUN_ONCE);
  return 1;
}

int weft_loop_run(weft_loop_t *loop) {
  weft_stats_t st;
  if (loop == NULL) return WEFT_EINVAL;
  if (loop->running) return WEFT_ESTATE;
  loop->running = 1;
  do {
    weft_loop_update_time(loop);
    weft_sched_run(&loop->sched, STEP_BUDGET);
  } while (wait_step(loop));
  loop->running = 0;
  weft_sched_stats(&loop->sched, &st);
  return (int)st.live;
}
