/*
 * core.h - internal declarations shared by the files of the core tier.
 * Freestanding: includes only weft.h (stddef, stdint) and string.h for
 * memcpy/memset.
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_CORE_H
#define WEFT_CORE_H

#include <string.h>

#include "weft.h"

#define container_of(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))

/* Circular doubly-linked waiter lists with a sentinel head. */
void weft__wlist_init(weft_link_t *head);
int weft__wlist_empty(const weft_link_t *head);
void weft__wlist_push(weft_link_t *head, weft_waiter_t *w);
weft_waiter_t *weft__wlist_first(const weft_link_t *head);
/* Unlinks the first waiter and calls it with status; 0 if there was one. */
int weft__wlist_wake_one(weft_link_t *head, int status);
/* Wakes every waiter (each unlinked before its callback runs). */
void weft__wlist_wake_all(weft_link_t *head, int status);

/* Puts t at the back of its priority's ready queue (no-op when queued). */
void weft__sched_push(weft_sched_t *s, weft_task_t *t);
/* Fires due timers; used by weft_sched_run. */
void weft__timers_run(weft_sched_t *s);
void weft__timers_free(weft_sched_t *s);
#if !WEFT_EMBEDDED
/* The scheduler's allocator, for code that shares it (the timer heap,
 * channel buffers, the binding's preemption record). Host tier only. */
void *weft__sched_alloc(weft_sched_t *s, void *p, size_t osize, size_t nsize);
#endif

/* Parks t in list (NULL for none) with buf for a hand-off and an optional
 * deadline. Returns WEFT_PENDING, or weft_timer_start's error (WEFT_ENOMEM,
 * WEFT_EFULL) when the deadline cannot be armed: t is then not parked. */
int weft__task_park(weft_task_t *t, weft_link_t *list, void *buf,
                    uint64_t timeout_ms);
/* Unparks a parked task with a status and queues it. */
void weft__task_wake(weft_task_t *t, int status);
/* Group hook: t (a member of its group) has finished. */
void weft__group_member_done(weft_task_t *t);
void weft__group_cancel_except(weft_group_t *g, weft_task_t *keep);

#if WEFT_EMBEDDED
/* Hands the bits of every raised signal to its waiting task; cheap when
 * none was raised. Called by the scheduler before each dispatch. */
void weft__signals_run(weft_sched_t *s);
#endif

#endif /* WEFT_CORE_H */
