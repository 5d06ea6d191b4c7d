/*
 * host.h - internal declarations of the host tier (libuv).
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_HOST_H
#define WEFT_HOST_H

#include <uv.h>

#include "weft.h"

/* About weft_loop_t: the scheduler plus the libuv loop that drives it.
 * timer is armed for the scheduler's earliest deadline only while the loop
 * waits; running guards against re-entry. The worker pool and cross-thread
 * completions will add their handles here (uv_async_t), which keep the
 * loop alive while calls are in flight. */
struct weft_loop_s {
  weft_sched_t sched;
  uv_loop_t uv;
  uv_timer_t timer;
  int running;
};

/* The C library's realloc/free with lua_Alloc's contract. */
void *weft__std_alloc(void *ud, void *p, size_t osize, size_t nsize);

#endif /* WEFT_HOST_H */
