/*
 * cortex_m.h - the ARM Cortex-M port of the embedded tier: SysTick is the
 * millisecond clock, PRIMASK the critical section, WFI the idle wait.
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_PORT_CORTEX_M_H
#define WEFT_PORT_CORTEX_M_H

#include <stdint.h>

/* Starts SysTick at 1 kHz from the processor clock of cpu_hz. Put
 * SysTick_Handler (defined by the port) in the vector table. */
void weft_port_cm_init(uint32_t cpu_hz);
void SysTick_Handler(void);

#endif /* WEFT_PORT_CORTEX_M_H */
