/*
 * host.c - the host port of the embedded tier (see host.h): a recursive
 * mutex is the critical section, a condition variable the idle wait.
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* PTHREAD_MUTEX_RECURSIVE */
#include <pthread.h>

#include "host.h"
#include "port.h"

/* About the port's state: mu is the critical section. It is recursive
 * because, with WEFT_CONF_ATOMIC 0, a signal raise inside a handler enters
 * the section again, as nested interrupt masking does on a chip. now and
 * irq are guarded by mu; sleeps too. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t mu;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint32_t now;
static int irq; /* an interrupt ran since the last idle wait */
static unsigned long sleeps;

static void init(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&mu, &a);
  pthread_mutexattr_destroy(&a);
}

uint32_t weft_port_enter(void) {
  pthread_once(&once, init);
  pthread_mutex_lock(&mu);
  return 0;
}

void weft_port_leave(uint32_t key) {
  (void)key;
  pthread_mutex_unlock(&mu);
}

uint32_t weft_port_now(void) {
  uint32_t key = weft_port_enter(), t = now;
  weft_port_leave(key);
  return t;
}

void weft_port_idle(uint32_t ms) {
  if (!irq && ms == WEFT_PORT_FOREVER) {
    sleeps++;
    while (!irq) pthread_cond_wait(&cv, &mu);
  } else if (!irq) {
    now += ms; /* the virtual clock jumps to the deadline */
  }
  irq = 0;
}

void weft_port_host_irq(void (*handler)(void *), void *arg) {
  uint32_t key = weft_port_enter();
  handler(arg);
  irq = 1;
  pthread_cond_broadcast(&cv);
  weft_port_leave(key);
}

void weft_port_host_advance(uint32_t ms) {
  uint32_t key = weft_port_enter();
  now += ms;
  weft_port_leave(key);
}

void weft_port_host_reset(void) {
  uint32_t key = weft_port_enter();
  now = 0;
  irq = 0;
  sleeps = 0;
  weft_port_leave(key);
}

unsigned long weft_port_host_sleeps(void) {
  uint32_t key = weft_port_enter();
  unsigned long n = sleeps;
  weft_port_leave(key);
  return n;
}
