/*
 * port.h - the port layer of the embedded tier: the few functions a board
 * provides to weft (a clock, critical sections, an idle wait). Ports:
 * src/port/host.c (tests on a PC) and src/port/cortex_m.c (SysTick, WFI).
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_PORT_H
#define WEFT_PORT_H

#include <stdint.h>

/* No deadline, for weft_port_idle. */
#define WEFT_PORT_FOREVER UINT32_MAX

/* The monotonic clock in milliseconds. It may wrap around at 2^32: weft
 * only uses differences between readings, and reads it at least every
 * 2^31 ms. Threads: the scheduler's. */
uint32_t weft_port_now(void);

/* Enters a critical section: no interrupt handler runs until the matching
 * leave. Returns a key for weft_port_leave, so sections nest (on Cortex-M
 * the key is the previous PRIMASK). */
uint32_t weft_port_enter(void);
void weft_port_leave(uint32_t key);

/* Called inside a critical section when no task is ready and no signal is
 * pending: waits until an interrupt is pending or ms milliseconds have
 * passed (WEFT_PORT_FOREVER: no deadline), and returns still inside the
 * section; pending interrupts run when the caller leaves it. An interrupt
 * that became pending after enter must end the wait (WFI does this even
 * with interrupts masked), or its wake-up would be lost. The wait may end
 * early: the caller checks again. */
void weft_port_idle(uint32_t ms);

#endif /* WEFT_PORT_H */
