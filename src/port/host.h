/*
 * host.h - the host port of the embedded tier: runs the fixed-capacity
 * core on a PC for tests, with a virtual clock and threads standing in for
 * interrupt handlers.
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_PORT_HOST_H
#define WEFT_PORT_HOST_H

#include <stdint.h>

/* Runs handler(arg) as an interrupt handler would run: never inside the
 * scheduler's critical sections (they share one lock), and ending any
 * idle wait afterwards. Threads: any (a thread stands in for the
 * interrupt); it may also be called from the scheduler's own thread. */
void weft_port_host_irq(void (*handler)(void *), void *arg);

/* About the clock: virtual milliseconds that start at 0 and move only
 * when the scheduler idles with a deadline (it jumps there at once, so
 * tests never wait on wall-clock time) or when advanced here. An idle
 * wait with no deadline blocks until weft_port_host_irq. Threads: any. */
void weft_port_host_advance(uint32_t ms);
/* Sets the clock back to 0 and forgets pending interrupts, between tests.
 * No other thread may use the port meanwhile. */
void weft_port_host_reset(void);
/* How many idle waits blocked until an interrupt. Threads: any. */
unsigned long weft_port_host_sleeps(void);

#endif /* WEFT_PORT_HOST_H */
