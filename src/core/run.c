/*
 * run.c - the run loop of the embedded tier: the scheduler driven by the
 * port's clock and idle wait, as uv_run drives it in the host tier.
 * SPDX-License-Identifier: MIT
 */
#include "core.h"
#include "port.h"

#if WEFT_EMBEDDED

/* How long the idle wait may last: until the earliest deadline, capped at
 * 2^31 ms so the wrapping clock is read often enough to stay exact. */
static uint32_t idle_ms(const weft_sched_t *s) {
  uint64_t due;
  if (weft_sched_next_due(s, &due) != 0) return WEFT_PORT_FOREVER;
  if (due <= s->now) return 0;
  return due - s->now < 0x80000000u ? (uint32_t)(due - s->now) : 0x80000000u;
}

/* The pending word is read inside the critical section, where no handler
 * can raise a signal, and the port's wait ends on any interrupt pending
 * since: a raise is never missed between the check and the wait. */
static void idle(weft_sched_t *s) {
  uint32_t ms = idle_ms(s), key;
  if (ms == 0) return;
  key = weft_port_enter();
  if (__atomic_load_n(&s->sig_pending, __ATOMIC_SEQ_CST) == 0)
    weft_port_idle(ms);
  weft_port_leave(key);
}

/* The phases: read the clock; fire due timers, deliver signals and resume
 * ready tasks within the budget; stop when no task is live; otherwise,
 * with nothing ready, wait for the next deadline or an interrupt. */
void weft_sched_loop(weft_sched_t *s) {
  uint32_t last = weft_port_now(), t;
  for (;;) {
    t = weft_port_now();
    weft_sched_set_time(s, s->now + (uint32_t)(t - last));
    last = t;
    weft_sched_run(s, WEFT_CONF_LOOP_BUDGET);
    if (weft_sched_has_ready(s)) continue;
    if (s->stats.live == 0) return;
    idle(s);
  }
}

#endif /* WEFT_EMBEDDED */
