/*
 * weft_conf.h - compile-time configuration: assert hook and scheduler knobs.
 * Shared by every tier. Override any macro with -D on the command line.
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

#endif /* WEFT_CONF_H */
