/*
 * test-chan.c - the core tier through C poll tasks on a fake clock:
 * channels: the ring buffer, rendezvous, parked senders and
 * receivers, close, and cancellation racing a hand-over.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

static ONE_WAIT_FN(fn_send, weft_chan_send(p->ch, t, &p->item))
static ONE_WAIT_FN(fn_recv, weft_chan_recv(p->ch, t, &p->item))

static void chan_buffered_is_fifo_across_the_ring_wrap(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  int i, v, next_in = 0, next_out = 0;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 4, sizeof(int)), 0);
  assert_int_equal(weft_chan_try_recv(&ch, &v), WEFT_EEMPTY);
  for (i = 0; i < 4; i++) {
    v = next_in++;
    assert_int_equal(weft_chan_try_send(&ch, &v), 0);
  }
  assert_int_equal(weft_chan_count(&ch), 4);
  v = 99;
  assert_int_equal(weft_chan_try_send(&ch, &v), WEFT_EFULL);
  /* Take 3, put 3, many times: the ring head wraps around. */
  for (i = 0; i < 10; i++) {
    int k;
    for (k = 0; k < 3; k++) {
      assert_int_equal(weft_chan_try_recv(&ch, &v), 0);
      assert_int_equal(v, next_out++);
    }
    for (k = 0; k < 3; k++) {
      v = next_in++;
      assert_int_equal(weft_chan_try_send(&ch, &v), 0);
    }
  }
  while (weft_chan_try_recv(&ch, &v) == 0) assert_int_equal(v, next_out++);
  assert_int_equal(next_out, next_in);
  assert_int_equal(weft_chan_count(&ch), 0);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_init_rejects_zero_item_size_and_overflow(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 4, 0), WEFT_EINVAL);
  assert_int_equal(weft_chan_init(&s, &ch, (size_t)-1 / 2, 4), WEFT_ENOMEM);
  assert_int_equal(a.live_blocks, 0);
  assert_int_equal(weft_chan_init(&s, &ch, 0, 4), 0); /* no buffer needed */
  assert_int_equal(a.live_blocks, 0);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_rendezvous_send_waits_for_a_receiver(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe snd;
  test_log log;
  int v = 0;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  assert_int_equal(weft_chan_init(&s, &ch, 0, sizeof(int)), 0);
  v = 1;
  assert_int_equal(weft_chan_try_send(&ch, &v), WEFT_EFULL);
  assert_int_equal(weft_chan_try_recv(&ch, &v), WEFT_EEMPTY);
  memset(&snd, 0, sizeof snd);
  snd.ch = &ch;
  snd.item = 42;
  snd.name = 1;
  snd.log = &log;
  probe_start(&s, &snd, fn_send, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_true(snd.t.flags & WEFT_TASK_PARKED); /* nobody took it yet */
  assert_int_equal(weft_chan_count(&ch), 0);
  assert_int_equal(weft_chan_try_recv(&ch, &v), 0);
  assert_int_equal(v, 42);
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1);
  assert_int_equal(snd.res, 0);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_rendezvous_send_hands_to_a_waiting_receiver(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe rcv;
  int v = 7;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 0, sizeof(int)), 0);
  memset(&rcv, 0, sizeof rcv);
  rcv.ch = &ch;
  probe_start(&s, &rcv, fn_recv, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(weft_chan_try_send(&ch, &v), 0);
  v = 8; /* copied at the hand-off: later changes do not matter */
  test_sched_settle(&s);
  assert_int_equal(rcv.res, 0);
  assert_int_equal(rcv.item, 7);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_full_senders_park_and_are_served_fifo(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe snd[4], rcv[4];
  test_log log;
  int i;
  (void)state;
  test_sched_begin(&s, &a);
  test_log_init(&log);
  assert_int_equal(weft_chan_init(&s, &ch, 1, sizeof(int)), 0);
  memset(snd, 0, sizeof snd);
  memset(rcv, 0, sizeof rcv);
  for (i = 0; i < 4; i++) {
    snd[i].ch = &ch;
    snd[i].item = 10 + i;
    snd[i].name = 1 + i;
    snd[i].log = &log;
    probe_start(&s, &snd[i], fn_send, WEFT_PRIO_NORMAL, NULL);
  }
  test_sched_settle(&s);
  TEST_LOG_EXPECT(&log, 1); /* the first filled the buffer; 3 wait */
  assert_int_equal(weft_chan_count(&ch), 1);
  for (i = 0; i < 4; i++) {
    rcv[i].ch = &ch;
    rcv[i].name = 11 + i;
    rcv[i].log = &log;
    probe_start(&s, &rcv[i], fn_recv, WEFT_PRIO_NORMAL, NULL);
  }
  test_sched_settle(&s);
  for (i = 0; i < 4; i++) {
    assert_int_equal(rcv[i].res, 0);
    assert_int_equal(rcv[i].item, 10 + i);
    assert_int_equal(snd[i].res, 0);
  }
  /* Each receive moved the oldest waiting sender's item into the buffer
   * and woke that sender. */
  TEST_LOG_EXPECT(&log, 1, 11, 12, 13, 14, 2, 3, 4);
  assert_int_equal(weft_chan_count(&ch), 0);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_close_wakes_receivers_with_eclosed(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe rcv[2];
  int i, v = 1;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 2, sizeof(int)), 0);
  memset(rcv, 0, sizeof rcv);
  for (i = 0; i < 2; i++) {
    rcv[i].ch = &ch;
    rcv[i].item = -5;
    probe_start(&s, &rcv[i], fn_recv, WEFT_PRIO_NORMAL, NULL);
  }
  test_sched_settle(&s);
  weft_chan_close(&ch);
  test_sched_settle(&s);
  for (i = 0; i < 2; i++) {
    assert_int_equal(rcv[i].res, WEFT_ECLOSED);
    assert_int_equal(rcv[i].item, -5);
  }
  assert_int_equal(weft_chan_try_send(&ch, &v), WEFT_ECLOSED);
  assert_int_equal(weft_chan_try_recv(&ch, &v), WEFT_ECLOSED);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_close_wakes_senders_and_keeps_buffered_items(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe snd[3], late;
  int i, v;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 1, sizeof(int)), 0);
  memset(snd, 0, sizeof snd);
  for (i = 0; i < 3; i++) {
    snd[i].ch = &ch;
    snd[i].item = 1 + i;
    probe_start(&s, &snd[i], fn_send, WEFT_PRIO_NORMAL, NULL);
  }
  test_sched_settle(&s);
  weft_chan_close(&ch);
  weft_chan_close(&ch); /* idempotent */
  test_sched_settle(&s);
  assert_int_equal(snd[0].res, 0);
  assert_int_equal(snd[1].res, WEFT_ECLOSED);
  assert_int_equal(snd[2].res, WEFT_ECLOSED);
  /* The buffered item is still there, then the channel reads closed. */
  assert_int_equal(weft_chan_count(&ch), 1);
  assert_int_equal(weft_chan_try_recv(&ch, &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(weft_chan_try_recv(&ch, &v), WEFT_ECLOSED);
  /* A task sending or receiving now gets WEFT_ECLOSED without waiting. */
  memset(&late, 0, sizeof late);
  late.ch = &ch;
  probe_start(&s, &late, fn_send, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(late.runs, 1);
  assert_int_equal(late.res, WEFT_ECLOSED);
  memset(&late, 0, sizeof late);
  late.ch = &ch;
  probe_start(&s, &late, fn_recv, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(late.runs, 1);
  assert_int_equal(late.res, WEFT_ECLOSED);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_receiver_woken_then_cancelled_keeps_its_item(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe rcv;
  int v = 31;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 1, sizeof(int)), 0);
  memset(&rcv, 0, sizeof rcv);
  rcv.ch = &ch;
  probe_start(&s, &rcv, fn_recv, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(weft_chan_try_send(&ch, &v), 0); /* handed over */
  assert_int_equal(weft_task_cancel(&rcv.t), 0);    /* before it runs */
  test_sched_settle(&s);
  assert_int_equal(rcv.res, 0);
  assert_int_equal(rcv.item, 31);
  assert_true(rcv.t.flags & WEFT_TASK_CANCEL);
  assert_int_equal(weft_chan_count(&ch), 0); /* not duplicated either */
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_sender_woken_then_cancelled_was_taken(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe snd;
  int v = 0;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 0, sizeof(int)), 0);
  memset(&snd, 0, sizeof snd);
  snd.ch = &ch;
  snd.item = 5;
  probe_start(&s, &snd, fn_send, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(weft_chan_try_recv(&ch, &v), 0);
  assert_int_equal(weft_task_cancel(&snd.t), 0);
  test_sched_settle(&s);
  assert_int_equal(v, 5);
  assert_int_equal(snd.res, 0); /* its send completed */
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_cancelled_waiting_receiver_takes_nothing(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe rcv;
  int v = 3;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 1, sizeof(int)), 0);
  memset(&rcv, 0, sizeof rcv);
  rcv.ch = &ch;
  rcv.item = -1;
  probe_start(&s, &rcv, fn_recv, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  assert_int_equal(weft_task_cancel(&rcv.t), 0);
  assert_int_equal(weft_chan_try_send(&ch, &v), 0); /* buffered, not lost */
  test_sched_settle(&s);
  assert_int_equal(rcv.res, WEFT_ECANCELED);
  assert_int_equal(rcv.item, -1);
  assert_int_equal(weft_chan_count(&ch), 1);
  v = 0;
  assert_int_equal(weft_chan_try_recv(&ch, &v), 0);
  assert_int_equal(v, 3);
  weft_chan_free(&ch);
  test_sched_end(&s, &a);
}

static void chan_free_drops_waiting_tasks_without_waking(void **state) {
  weft_sched_t s;
  test_alloc a;
  weft_chan_t ch;
  probe rcv;
  (void)state;
  test_sched_begin(&s, &a);
  assert_int_equal(weft_chan_init(&s, &ch, 3, sizeof(int)), 0);
  memset(&rcv, 0, sizeof rcv);
  rcv.ch = &ch;
  probe_start(&s, &rcv, fn_recv, WEFT_PRIO_NORMAL, NULL);
  test_sched_settle(&s);
  weft_chan_free(&ch);
  assert_false(weft_sched_has_ready(&s));
  assert_int_equal(a.live_blocks, 0);
  assert_true(rcv.t.flags & WEFT_TASK_PARKED);
  assert_int_equal(weft_task_cancel(&rcv.t), 0); /* its owner ends it */
  test_sched_settle(&s);
  assert_int_equal(rcv.res, WEFT_ECANCELED);
  test_sched_end(&s, &a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(chan_buffered_is_fifo_across_the_ring_wrap),
      cmocka_unit_test(chan_init_rejects_zero_item_size_and_overflow),
      cmocka_unit_test(chan_rendezvous_send_waits_for_a_receiver),
      cmocka_unit_test(chan_rendezvous_send_hands_to_a_waiting_receiver),
      cmocka_unit_test(chan_full_senders_park_and_are_served_fifo),
      cmocka_unit_test(chan_close_wakes_receivers_with_eclosed),
      cmocka_unit_test(chan_close_wakes_senders_and_keeps_buffered_items),
      cmocka_unit_test(chan_receiver_woken_then_cancelled_keeps_its_item),
      cmocka_unit_test(chan_sender_woken_then_cancelled_was_taken),
      cmocka_unit_test(chan_cancelled_waiting_receiver_takes_nothing),
      cmocka_unit_test(chan_free_drops_waiting_tasks_without_waking),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
