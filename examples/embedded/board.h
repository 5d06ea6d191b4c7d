/*
 * board.h - the little of the board the example needs: semihosting
 * output and exit, and the "sensor" (a CMSDK APB timer of the MPS2 AN385,
 * Cortex-M3, as qemu-system-arm -M mps2-an385 emulates it).
 * SPDX-License-Identifier: MIT
 */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

#define BOARD_CPU_HZ 25000000u

/* Prints a string, or a string and an unsigned number, to the debugger's
 * console (semihosting SYS_WRITE0). */
void board_puts(const char *s);
void board_putu(const char *s, uint32_t n);
/* Ends the program: semihosting SYS_EXIT, code 0 or 1. */
void board_exit(int failed);

/* Starts a one-shot conversion that completes, with an interrupt, after
 * about ms milliseconds; board_sensor_isr is then called from it. */
void board_sensor_start(uint32_t ms);
extern void (*board_sensor_isr)(void);

#endif
