/*
 * weft_conf.h - compile-time configuration: assert hook, scheduler knobs and
 * the capacities of the embedded tier. Shared by every tier. Override any
 * macro with -D on the command line.
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_CONF_H
#define WEFT_CONF_H

/* WEFT_ASSERT guards internal invariants only; a failure is a weft bug.
 * The default needs no libc: it traps. Hosts may route it to their own
 * handler (the host tier's tests use abort() through __builtin_trap). */
#ifndef WEFT_ASSERT
#ifdef NDEBUG
#define WEFT_ASSERT(c) ((void)0)
#else
#define WEFT_ASSERT(c) ((c) ? (void)0 : __builtin_trap())
#endif
#endif

/* WEFT_API marks a declaration that is part of the public API: the only
 * symbols the shared library exports. weft's own objects are compiled
 * with -fvisibility=hidden and WEFT_BUILDING defined (CMakeLists.txt), so
 * everything else, the weft__ and binding internals, stays inside the
 * library. A program that includes this header needs no mark: on ELF an
 * undefined reference binds to the default-visibility definition. */
#ifndef WEFT_API
#if defined(WEFT_BUILDING) && (defined(__GNUC__) || defined(__clang__))
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif
#endif

/* Every WEFT_FAIR_PERIOD-th dispatch is a fairness turn: it serves the next
 * non-empty priority level in round-robin order instead of the highest one,
 * so a level below a steady stream of higher work still gets at least one
 * dispatch in WEFT_FAIR_PERIOD * WEFT_NPRIO. */
#ifndef WEFT_FAIR_PERIOD
#define WEFT_FAIR_PERIOD 8
#endif

/* Initial number of slots in the timer heap; it doubles as needed. */
#ifndef WEFT_TIMER_HEAP_MIN
#define WEFT_TIMER_HEAP_MIN 64
#endif

/* WEFT_EMBEDDED=1 selects the embedded profile of the core: capacities
 * fixed at compile time, no allocator, no threads, a port layer
 * (src/core/port.h) for the clock, the idle wait and critical sections,
 * and ISR-safe signals. Undefined or 0: the host tier's core. */
#ifndef WEFT_EMBEDDED
#define WEFT_EMBEDDED 0
#endif

#if WEFT_EMBEDDED
/* About the capacities: each bounds one fixed pool. The call that would
 * exceed one returns WEFT_EFULL and changes nothing.
 * - WEFT_CONF_TASKS: tasks live at once (started, not finished); checked
 *   by weft_task_start. Task memory is the caller's; this bounds the work
 *   the scheduler may hold.
 * - WEFT_CONF_TIMERS: timers armed at once, a task's sleep or wait
 *   deadline included; the timer heap is an array of this many pointers
 *   inside the scheduler. Checked by weft_timer_start and every wait with
 *   a deadline.
 * - WEFT_CONF_SIGNALS: ISR-safe signals registered at once, at most 32
 *   (one bit each in the scheduler's pending word); checked by
 *   weft_signal_init.
 * Futures, channels, semaphores and groups take no slot: they are the
 * application's own objects, and channel buffers are given by it. */
#ifndef WEFT_CONF_TASKS
#define WEFT_CONF_TASKS 16
#endif
#ifndef WEFT_CONF_TIMERS
#define WEFT_CONF_TIMERS 16
#endif
#ifndef WEFT_CONF_SIGNALS
#define WEFT_CONF_SIGNALS 8
#endif
#if WEFT_CONF_SIGNALS < 1 || WEFT_CONF_SIGNALS > 32
#error "WEFT_CONF_SIGNALS must be between 1 and 32"
#endif
#if WEFT_CONF_TASKS < 1 || WEFT_CONF_TIMERS < 1
#error "WEFT_CONF_TASKS and WEFT_CONF_TIMERS must be at least 1"
#endif

/* How a signal's bits are set and taken. 1: one atomic read-modify-write
 * (GCC's __atomic builtins; lock-free on ARMv7-M and up through
 * LDREX/STREX). 0: plain reads and writes inside the port's critical
 * section, for cores without such instructions (ARMv6-M, Cortex-M0). */
#ifndef WEFT_CONF_ATOMIC
#define WEFT_CONF_ATOMIC 1
#endif

/* weft_sched_loop resumes at most this many tasks between two readings
 * of the port's clock, so a storm of yields cannot delay timers. */
#ifndef WEFT_CONF_LOOP_BUDGET
#define WEFT_CONF_LOOP_BUDGET 32
#endif
#endif /* WEFT_EMBEDDED */

#endif /* WEFT_CONF_H */
