/*
 * cortex_m.c - the ARM Cortex-M port of the embedded tier (ARMv6-M and
 * ARMv7-M): SysTick ticks a millisecond counter, PRIMASK masks
 * interrupts, WFI sleeps until one is pending.
 * SPDX-License-Identifier: MIT
 */
#include "cortex_m.h"
#include "port.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_CSR_ENABLE_TICKINT_CLKSOURCE 7u

/* Written by the SysTick handler only; a 32-bit aligned read is atomic. */
static volatile uint32_t ticks;

void weft_port_cm_init(uint32_t cpu_hz) {
  SYST_RVR = cpu_hz / 1000u - 1u;
  SYST_CVR = 0;
  SYST_CSR = SYST_CSR_ENABLE_TICKINT_CLKSOURCE;
}

void SysTick_Handler(void) { ticks++; }

uint32_t weft_port_now(void) { return ticks; }

uint32_t weft_port_enter(void) {
  uint32_t primask;
  __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
  return primask;
}

void weft_port_leave(uint32_t key) {
  __asm volatile("msr primask, %0" ::"r"(key) : "memory");
}

/* WFI with interrupts masked still wakes on a pending interrupt, which
 * then runs when the caller leaves the critical section. This port is not
 * tickless: SysTick wakes the core every millisecond, so ms is not needed;
 * a tickless port would program a wake-up timer for ms first. */
void weft_port_idle(uint32_t ms) {
  (void)ms;
  __asm volatile("dsb\n\twfi" ::: "memory");
}
