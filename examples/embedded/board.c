/*
 * board.c - semihosting, the vector table, reset and the sensor timer of
 * the example firmware (MPS2 AN385).
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "board.h"
#include "cortex_m.h"

/* ------------------------------------------------------------ semihosting */

static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void board_puts(const char *s) { semihost(0x04, s); /* SYS_WRITE0 */ }

void board_putu(const char *s, uint32_t n) {
  char buf[11];
  int i = sizeof buf - 1;
  buf[i] = 0;
  do {
    buf[--i] = (char)('0' + n % 10);
    n /= 10;
  } while (n && i > 0);
  board_puts(s);
  board_puts(buf + i);
}

void board_exit(int failed) {
  /* SYS_EXIT with ADP_Stopped_ApplicationExit or RunTimeErrorUnknown. */
  semihost(0x18, (const void *)(failed ? 0x20023u : 0x20026u));
  for (;;) {
  }
}

/* ------------------------------------------------------------- the sensor */

#define TIMER0_CTRL (*(volatile uint32_t *)0x40000000u)
#define TIMER0_RELOAD (*(volatile uint32_t *)0x40000008u)
#define TIMER0_VALUE (*(volatile uint32_t *)0x40000004u)
#define TIMER0_INTCLEAR (*(volatile uint32_t *)0x4000000Cu)
#define TIMER0_IRQ 8u
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)

void (*board_sensor_isr)(void);

void board_sensor_start(uint32_t ms) {
  TIMER0_CTRL = 0;
  TIMER0_RELOAD = ms * (BOARD_CPU_HZ / 1000u);
  TIMER0_VALUE = ms * (BOARD_CPU_HZ / 1000u);
  TIMER0_CTRL = 1u | 8u; /* enable, interrupt enable */
}

static void timer0_handler(void) {
  TIMER0_CTRL = 0; /* one shot */
  TIMER0_INTCLEAR = 1;
  if (board_sensor_isr) board_sensor_isr();
}

/* ---------------------------------------------------------- reset, vectors */

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

void Reset_Handler(void);
void Reset_Handler(void) {
  memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
  memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
  NVIC_ISER0 = 1u << TIMER0_IRQ;
  weft_port_cm_init(BOARD_CPU_HZ);
  board_exit(main() != 0);
}

static void fault_handler(void) {
  board_puts("fault: unexpected exception\n");
  board_exit(1);
}

__attribute__((section(".vectors"), used)) static void (*const vectors[])(
    void) = {
    (void (*)(void))(uintptr_t)&_estack,
    Reset_Handler,
    fault_handler, /* NMI */
    fault_handler, /* HardFault */
    fault_handler, /* MemManage */
    fault_handler, /* BusFault */
    fault_handler, /* UsageFault */
    0, 0, 0, 0,
    fault_handler, /* SVCall */
    fault_handler, /* DebugMon */
    0,
    fault_handler, /* PendSV */
    SysTick_Handler,
    /* external interrupts 0..8 */
    fault_handler, fault_handler, fault_handler, fault_handler,
    fault_handler, fault_handler, fault_handler, fault_handler,
    timer0_handler,
};
