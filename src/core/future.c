/*
 * future.c - waiter lists and one-shot futures (core tier).
 * A future settles once; its waiters are woken in the order they came.
 * SPDX-License-Identifier: MIT
 */
#include "core.h"

void weft__wlist_init(weft_link_t *head) { head->next = head->prev = head; }

int weft__wlist_empty(const weft_link_t *head) { return head->next == head; }

void weft__wlist_push(weft_link_t *head, weft_waiter_t *w) {
  WEFT_ASSERT(w->link.next == NULL);
  w->link.prev = head->prev;
  w->link.next = head;
  head->prev->next = &w->link;
  head->prev = &w->link;
}

/* The link is a waiter's first member: the pointers convert. */
weft_waiter_t *weft__wlist_first(const weft_link_t *head) {
  return head->next == head ? NULL : (weft_waiter_t *)head->next;
}

int weft__wlist_wake_one(weft_link_t *head, int status) {
  weft_waiter_t *w = weft__wlist_first(head);
  if (w == NULL) return 0;
  weft_waiter_remove(w);
  w->cb(w, status);
  return 1;
}

/* A callback may add or remove other waiters of the same list, so take the
 * first one each time rather than walking a saved next pointer. */
void weft__wlist_wake_all(weft_link_t *head, int status) {
  while (weft__wlist_wake_one(head, status)) {
  }
}

void weft_waiter_init(weft_waiter_t *w, weft_waiter_cb cb, void *data) {
  w->link.next = w->link.prev = NULL;
  w->cb = cb;
  w->data = data;
  w->buf = NULL;
}

void weft_waiter_remove(weft_waiter_t *w) {
  if (w->link.next == NULL) return;
  w->link.prev->next = w->link.next;
  w->link.next->prev = w->link.prev;
  w->link.next = w->link.prev = NULL;
}

int weft_waiter_linked(const weft_waiter_t *w) { return w->link.next != NULL; }

void weft_future_init(weft_future_t *f) {
  f->state = WEFT_FUTURE_PENDING;
  f->code = 0;
  f->data = NULL;
  weft__wlist_init(&f->waiters);
}

static int settle(weft_future_t *f, int state, int code) {
  if (f->state != WEFT_FUTURE_PENDING) return WEFT_ESTATE;
  f->state = (uint8_t)state;
  f->code = code;
  weft__wlist_wake_all(&f->waiters, state);
  return 0;
}

int weft_future_fulfill(weft_future_t *f) {
  return settle(f, WEFT_FUTURE_FULFILLED, 0);
}

int weft_future_reject(weft_future_t *f, int code) {
  return settle(f, WEFT_FUTURE_REJECTED, code);
}

int weft_future_settle_cancelled(weft_future_t *f) {
  return settle(f, WEFT_FUTURE_CANCELLED, WEFT_ECANCELED);
}

int weft_future_on(weft_future_t *f, weft_waiter_t *w) {
  if (f->state != WEFT_FUTURE_PENDING) return WEFT_ESTATE;
  weft__wlist_push(&f->waiters, w);
  return 0;
}
