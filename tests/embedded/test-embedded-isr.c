/*
 * test-embedded-isr.c - ISR-safe signals racing the scheduler: a thread
 * stands in for the interrupt and raises signals while weft_sched_loop
 * dispatches, delivers and idles on the host port. Built twice: with
 * atomic bit operations (c/test-embedded-isr) and with the critical-
 * section fallback (c/test-embedded-isr-cs). Runs under ThreadSanitizer.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sched.h>

#include "host.h"
#include "port.h"
#include "util.h"

/* About race: shared by the scheduler's thread and the "interrupt"
 * thread. sig/hot are set before the thread starts; acked and stop are
 * accessed atomically; the rest belongs to the scheduler's thread. */
typedef struct race {
  weft_sched_t s;
  weft_signal_t sig, hot;
  weft_task_t waiter, busy, urgent;
  unsigned rounds;
  unsigned acked;   /* atomic: wake-ups the waiter has seen */
  int stop;         /* atomic: the waiter saw the last bit */
  uint32_t seen;    /* bits the waiter got, ORed */
  uint32_t got;
  unsigned urgent_wakes;
  uint32_t urgent_got; /* bits the urgent task got, ORed */
  uint32_t urgent_buf;
} race;

static race *R(weft_task_t *t) { return t->data; }

static void raise_sig(void *arg) { weft_signal_raise(arg, 1); }

/* ------------------------------------------------------------ handshake */

/* The interrupt thread raises, then waits until the task saw it, rounds
 * times: each raise must end an idle wait or be seen before one. A lost
 * wake-up leaves both threads waiting: the test times out. */
static void *isr_handshake(void *arg) {
  race *x = arg;
  unsigned i;
  for (i = 1; i <= x->rounds; i++) {
    weft_port_host_irq(raise_sig, &x->sig);
    while (__atomic_load_n(&x->acked, __ATOMIC_SEQ_CST) < i) sched_yield();
  }
  return NULL;
}

static int fn_count(weft_task_t *t, int status) {
  race *x = R(t);
  int r;
  assert_int_equal(status, 0);
  if (x->got != 0) { /* woken with bits */
    x->got = 0;
    __atomic_add_fetch(&x->acked, 1, __ATOMIC_SEQ_CST);
  }
  for (;;) {
    if (__atomic_load_n(&x->acked, __ATOMIC_SEQ_CST) == x->rounds)
      return WEFT_READY;
    r = weft_signal_wait(&x->sig, t, &x->got, WEFT_FOREVER);
    if (r == WEFT_PENDING) return r;
    x->got = 0; /* taken at once: raised before this wait */
    __atomic_add_fetch(&x->acked, 1, __ATOMIC_SEQ_CST);
  }
}

static void isr_handshake_never_loses_a_wakeup(void **state) {
  static race x;
  pthread_t th;
  (void)state;
  memset(&x, 0, sizeof x);
  weft_port_host_reset();
  weft_sched_init(&x.s, NULL, NULL);
  assert_int_equal(weft_signal_init(&x.s, &x.sig), 0);
  x.rounds = 2000;
  x.waiter.data = &x;
  assert_int_equal(
      weft_task_start(&x.s, &x.waiter, fn_count, WEFT_PRIO_NORMAL, NULL), 0);
  assert_int_equal(pthread_create(&th, NULL, isr_handshake, &x), 0);
  weft_sched_loop(&x.s);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(x.acked, x.rounds);
  weft_signal_close(&x.sig);
  assert_int_equal(weft_sched_close(&x.s), 0);
}

/* ---------------------------------------------------------------- flood */

#define LAST_BIT (1u << 31)

/* Raises bits 0..30 many times with no handshake, straight from the
 * thread, while the scheduler is busy (the raises race the delivery), and
 * pokes a critical task through a second signal; then the last bit,
 * through an interrupt so an idle wait would end too. */
static void *isr_flood(void *arg) {
  race *x = arg;
  unsigned i;
  for (i = 0; i < x->rounds; i++) {
    weft_signal_raise(&x->sig, 1u << (i % 31));
    if (i % 7 == 0) weft_signal_raise(&x->hot, 1u << (i % 5));
    if (i % 64 == 0) sched_yield();
  }
  weft_port_host_irq(raise_sig, &x->hot);
  weft_port_host_irq(raise_sig, &x->sig); /* bit 0 again, then the last */
  weft_signal_raise(&x->sig, LAST_BIT);
  weft_port_host_irq(raise_sig, &x->sig);
  return NULL;
}

static int fn_collect(weft_task_t *t, int status) {
  race *x = R(t);
  int r;
  assert_int_equal(status, 0);
  for (;;) {
    x->seen |= x->got;
    if (x->seen & LAST_BIT) {
      __atomic_store_n(&x->stop, 1, __ATOMIC_SEQ_CST);
      return WEFT_READY;
    }
    r = weft_signal_wait(&x->sig, t, &x->got, WEFT_FOREVER);
    if (r == WEFT_PENDING) return r;
  }
}

/* Keeps the scheduler dispatching until the collector is done. */
static int fn_busy(weft_task_t *t, int status) {
  race *x = R(t);
  (void)status;
  if (__atomic_load_n(&x->stop, __ATOMIC_SEQ_CST)) return WEFT_READY;
  return weft_task_yield(t);
}

/* Counts its wake-ups until the collector is done, then drains. */
static int fn_urgent(weft_task_t *t, int status) {
  race *x = R(t);
  int r;
  if (status == WEFT_ECANCELED) {
    weft_task_finish(t, WEFT_FUTURE_CANCELLED, status);
    return WEFT_PENDING;
  }
  assert_int_equal(status, 0);
  for (;;) {
    if (x->urgent_buf != 0) x->urgent_wakes++;
    x->urgent_got |= x->urgent_buf;
    x->urgent_buf = 0;
    r = weft_signal_wait(&x->hot, t, &x->urgent_buf, WEFT_FOREVER);
    if (r == WEFT_PENDING) return r;
  }
}

static void isr_flood_delivers_every_bit(void **state) {
  static race x;
  pthread_t th;
  uint32_t rest;
  (void)state;
  memset(&x, 0, sizeof x);
  weft_port_host_reset();
  weft_sched_init(&x.s, NULL, NULL);
  assert_int_equal(weft_signal_init(&x.s, &x.sig), 0);
  assert_int_equal(weft_signal_init(&x.s, &x.hot), 0);
  x.rounds = 20000;
  x.waiter.data = x.busy.data = x.urgent.data = &x;
  assert_int_equal(weft_task_start(&x.s, &x.waiter, fn_collect,
                                   WEFT_PRIO_NORMAL, NULL), 0);
  assert_int_equal(weft_task_start(&x.s, &x.busy, fn_busy, WEFT_PRIO_IDLE,
                                   NULL), 0);
  assert_int_equal(weft_task_start(&x.s, &x.urgent, fn_urgent,
                                   WEFT_PRIO_CRITICAL, NULL), 0);
  assert_int_equal(pthread_create(&th, NULL, isr_flood, &x), 0);
  /* Run until the collector and the busy task end; the urgent task waits
   * on. */
  while (!(x.waiter.flags & WEFT_TASK_DONE) || !(x.busy.flags & WEFT_TASK_DONE))
    weft_sched_run(&x.s, 64);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(x.seen | (weft_signal_take(&x.sig) & ~LAST_BIT),
                   0xffffffffu);
  /* What the urgent task has not been handed yet is still raised. */
  weft_sched_run(&x.s, SIZE_MAX);
  rest = weft_signal_take(&x.hot);
  assert_int_equal(x.urgent_got | rest, 0x1f);
  assert_true(x.urgent_wakes >= 1);
  weft_task_cancel(&x.urgent);
  weft_sched_run(&x.s, SIZE_MAX);
  assert_true(x.urgent.flags & WEFT_TASK_DONE);
  weft_signal_close(&x.sig);
  weft_signal_close(&x.hot);
  assert_int_equal(weft_sched_close(&x.s), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(isr_handshake_never_loses_a_wakeup),
      cmocka_unit_test(isr_flood_delivers_every_bit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
