/*
 * chan.c - bounded channels and counting semaphores (core tier).
 * Both hand over directly to a waiting task (the item or the permit), so a
 * task that was woken has its operation done and can be cancelled afterwards
 * without losing anything.
 * SPDX-License-Identifier: MIT
 */
#include "core.h"

static unsigned char *slot(weft_chan_t *ch, size_t i) {
  return ch->buf + ((ch->head + i) % ch->cap) * ch->item_size;
}

int weft_chan_init_buf(weft_sched_t *s, weft_chan_t *ch, void *buf,
                       size_t cap, size_t item_size) {
  memset(ch, 0, sizeof *ch);
  if (item_size == 0 || (buf == NULL && cap > 0)) return WEFT_EINVAL;
  ch->sched = s;
  ch->buf = buf;
  ch->cap = cap;
  ch->item_size = item_size;
  weft__wlist_init(&ch->senders);
  weft__wlist_init(&ch->receivers);
  return 0;
}

#if !WEFT_EMBEDDED
int weft_chan_init(weft_sched_t *s, weft_chan_t *ch, size_t cap,
                   size_t item_size) {
  void *buf = NULL;
  memset(ch, 0, sizeof *ch);
  if (item_size == 0) return WEFT_EINVAL;
  if (cap > 0) {
    if (cap > (size_t)-1 / item_size) return WEFT_ENOMEM;
    buf = weft__sched_alloc(s, NULL, 0, cap * item_size);
    if (buf == NULL) return WEFT_ENOMEM;
  }
  weft_chan_init_buf(s, ch, buf, cap, item_size); /* cannot fail now */
  ch->owned = buf != NULL;
  return 0;
}
#endif

void weft_chan_free(weft_chan_t *ch) {
  weft_waiter_t *w;
  while ((w = weft__wlist_first(&ch->senders)) != NULL) weft_waiter_remove(w);
  while ((w = weft__wlist_first(&ch->receivers)) != NULL)
    weft_waiter_remove(w);
#if !WEFT_EMBEDDED
  if (ch->owned)
    weft__sched_alloc(ch->sched, ch->buf, ch->cap * ch->item_size, 0);
#endif
  ch->owned = 0;
  ch->buf = NULL;
  ch->cap = ch->count = 0;
}

void weft_chan_close(weft_chan_t *ch) {
  ch->closed = 1;
  weft__wlist_wake_all(&ch->senders, WEFT_ECLOSED);
  weft__wlist_wake_all(&ch->receivers, WEFT_ECLOSED);
}

int weft_chan_try_send(weft_chan_t *ch, const void *item) {
  weft_waiter_t *w;
  if (ch->closed) return WEFT_ECLOSED;
  if ((w = weft__wlist_first(&ch->receivers)) != NULL) {
    /* A receiver waits only while the buffer is empty: hand it over. */
    memcpy(w->buf, item, ch->item_size);
    weft__wlist_wake_one(&ch->receivers, 0);
    return 0;
  }
  if (ch->count == ch->cap) return WEFT_EFULL;
  memcpy(slot(ch, ch->count++), item, ch->item_size);
  return 0;
}

int weft_chan_try_recv(weft_chan_t *ch, void *out) {
  weft_waiter_t *w = weft__wlist_first(&ch->senders);
  if (ch->count > 0) {
    memcpy(out, slot(ch, 0), ch->item_size);
    ch->head = (ch->head + 1) % ch->cap;
    ch->count--;
    if (w) { /* the oldest blocked sender takes the freed slot */
      memcpy(slot(ch, ch->count++), w->buf, ch->item_size);
      weft__wlist_wake_one(&ch->senders, 0);
    }
    return 0;
  }
  if (w) { /* rendezvous: take the item straight from the sender */
    memcpy(out, w->buf, ch->item_size);
    weft__wlist_wake_one(&ch->senders, 0);
    return 0;
  }
  return ch->closed ? WEFT_ECLOSED : WEFT_EEMPTY;
}

int weft_chan_send(weft_chan_t *ch, weft_task_t *t, const void *item) {
  int r = weft_chan_try_send(ch, item);
  if (r != WEFT_EFULL) return r;
  return weft__task_park(t, &ch->senders, (void *)item, WEFT_FOREVER);
}

int weft_chan_send_waiter(weft_chan_t *ch, weft_waiter_t *w,
                          const void *item) {
  int r = weft_chan_try_send(ch, item);
  if (r != WEFT_EFULL) return r;
  /* A receiver reads only w->buf and wakes w through its callback, so a
   * sender needs no task: the host tier parks posts from other threads
   * here. */
  w->buf = (void *)item;
  weft__wlist_push(&ch->senders, w);
  return WEFT_PENDING;
}

int weft_chan_recv(weft_chan_t *ch, weft_task_t *t, void *out) {
  int r = weft_chan_try_recv(ch, out);
  if (r != WEFT_EEMPTY) return r;
  return weft__task_park(t, &ch->receivers, out, WEFT_FOREVER);
}

size_t weft_chan_count(const weft_chan_t *ch) { return ch->count; }

void weft_sem_init(weft_sem_t *s, size_t permits) {
  s->count = permits;
  weft__wlist_init(&s->waiters);
}

int weft_sem_try_acquire(weft_sem_t *s) {
  if (s->count == 0 || !weft__wlist_empty(&s->waiters)) return WEFT_EEMPTY;
  s->count--;
  return 0;
}

int weft_sem_acquire(weft_sem_t *s, weft_task_t *t) {
  if (weft_sem_try_acquire(s) == 0) return 0;
  return weft__task_park(t, &s->waiters, NULL, WEFT_FOREVER);
}

void weft_sem_release(weft_sem_t *s) {
  if (!weft__wlist_wake_one(&s->waiters, 0)) s->count++;
}

size_t weft_sem_waiting(const weft_sem_t *s) {
  size_t n = 0;
  const weft_link_t *l;
  for (l = s->waiters.next; l != &s->waiters; l = l->next) n++;
  return n;
}
