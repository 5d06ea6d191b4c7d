/*
 * signal.c - ISR-safe signals: how an interrupt handler wakes a task
 * (embedded tier). A raise only sets bits; the scheduler does the rest.
 * SPDX-License-Identifier: MIT
 */
#include "core.h"
#include "port.h"

#if WEFT_EMBEDDED

/* About the bit operations: they are the only code an interrupt handler
 * runs, and the only code that touches sig->bits and s->sig_pending. A
 * raise sets the signal's bits before its pending bit, and the scheduler
 * clears the pending bit before taking the signal's bits, so bits raised
 * while the scheduler delivers are either taken now or leave the pending
 * bit set for the next pass: none is lost. Sequentially consistent
 * ordering: these run a few times per interrupt, and the cost of
 * reasoning about anything weaker is not worth the cycles. */
#if WEFT_CONF_ATOMIC
static void set_bits(uint32_t *p, uint32_t b) {
  __atomic_fetch_or(p, b, __ATOMIC_SEQ_CST);
}

static uint32_t take_bits(uint32_t *p) {
  return __atomic_exchange_n(p, 0, __ATOMIC_SEQ_CST);
}

static uint32_t peek_bits(uint32_t *p) {
  return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
#else
static void set_bits(uint32_t *p, uint32_t b) {
  uint32_t key = weft_port_enter();
  *p |= b;
  weft_port_leave(key);
}

static uint32_t take_bits(uint32_t *p) {
  uint32_t key = weft_port_enter(), b = *p;
  *p = 0;
  weft_port_leave(key);
  return b;
}

static uint32_t peek_bits(uint32_t *p) {
  uint32_t key = weft_port_enter(), b = *p;
  weft_port_leave(key);
  return b;
}
#endif

int weft_signal_init(weft_sched_t *s, weft_signal_t *sig) {
  unsigned i;
  for (i = 0; i < WEFT_CONF_SIGNALS && s->sigs[i] != NULL; i++) {
  }
  if (i == WEFT_CONF_SIGNALS) return WEFT_EFULL;
  sig->bits = 0;
  sig->sched = s;
  sig->slot = i;
  weft__wlist_init(&sig->waiters);
  s->sigs[i] = sig;
  return 0;
}

void weft_signal_close(weft_signal_t *sig) {
  sig->sched->sigs[sig->slot] = NULL;
  weft__wlist_wake_all(&sig->waiters, WEFT_ECLOSED);
}

void weft_signal_raise(weft_signal_t *sig, uint32_t bits) {
  if (bits == 0) return;
  set_bits(&sig->bits, bits);
  set_bits(&sig->sched->sig_pending, 1u << sig->slot);
}

uint32_t weft_signal_take(weft_signal_t *sig) {
  return take_bits(&sig->bits);
}

int weft_signal_wait(weft_signal_t *sig, weft_task_t *t, uint32_t *out,
                     uint64_t timeout_ms) {
  uint32_t b = take_bits(&sig->bits);
  if (b != 0) {
    *out = b;
    return 0;
  }
  return weft__task_park(t, &sig->waiters, out, timeout_ms);
}

/* A raised signal with nobody waiting keeps its bits for the next wait. */
static void deliver(weft_signal_t *sig) {
  weft_waiter_t *w = weft__wlist_first(&sig->waiters);
  uint32_t b;
  if (w == NULL || (b = take_bits(&sig->bits)) == 0) return;
  *(uint32_t *)w->buf = b;
  weft__wlist_wake_one(&sig->waiters, 0);
}

void weft__signals_run(weft_sched_t *s) {
  uint32_t pend;
  unsigned i;
  if (peek_bits(&s->sig_pending) == 0) return;
  pend = take_bits(&s->sig_pending);
  for (i = 0; pend != 0; i++, pend >>= 1)
    if ((pend & 1u) && s->sigs[i] != NULL) deliver(s->sigs[i]);
}

#endif /* WEFT_EMBEDDED */
