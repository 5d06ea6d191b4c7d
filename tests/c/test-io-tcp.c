/*
 * test-io-tcp.c - TCP from C with no Lua state (weft_io.h): an echo over
 * the loop's own listener, lines and their limit, reads up to a pattern
 * and the idle check of a pool, a read cancelled in flight, a loop freed
 * with sockets open, argument checks.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "host-util.h"
#include "weft_io.h"

/* About net: one test's loop (on a counting allocator), its server, the
 * echo task of the connection it accepted and the client task. log holds
 * what the client read, joined. */
typedef struct net {
  test_alloc a;
  vcount v;
  weft_loop_t *loop;
  weft_server_t *srv;
  weft_task_t echo, client;
  weft_tcp_t *served, *conn;
  weft_future_t parked; /* the client waits to read */
  int estep, cstep, accepted, eof_seen, cancelled;
  char log[256];
} net;

static void begin(net *n) {
  memset(n, 0, sizeof *n);
  vcount_begin(&n->v);
  test_alloc_init(&n->a);
  assert_int_equal(weft_loop_new(&n->loop, test_alloc_fn, &n->a), 0);
}

static void end(net *n) {
  assert_int_equal(weft_loop_free(n->loop), 0);
  test_alloc_expect_empty(&n->a);
  vcount_end(&n->v);
}

/* The echo task: answers each line with the line, then frees its side
 * at the end of the stream. estep 1: a write is under way. */
static int echo_fn(weft_task_t *t, int status) {
  net *n = t->data;
  weft_future_t *w;
  weft_span_t sp;
  int r;
  assert_int_equal(status, 0);
  for (;;) {
    if (n->estep == 1)
      r = weft_tcp_poll_write(n->served, t, &w);
    else
      r = weft_tcp_read(n->served, t, WEFT_READ_LINE_KEEP, 0, &sp, &w);
    if (r == WEFT_PENDING) {
      if (weft_task_await(t, w, WEFT_FOREVER) != 0) return WEFT_PENDING;
      continue;
    }
    if (n->estep == 1) {
      assert_int_equal(r, 0);
      n->estep = 0;
      continue;
    }
    if (r == UV_EOF) break;
    assert_int_equal(r, 0);
    r = weft_tcp_write(n->served, t, sp.ptr, sp.len, &w);
    if (r == WEFT_PENDING) n->estep = 1;
    else assert_int_equal(r, 0);
  }
  n->eof_seen = 1;
  weft_tcp_free(n->served);
  n->served = NULL;
  weft_task_finish(t, WEFT_FUTURE_FULFILLED, 0);
  return WEFT_READY;
}

/* The accepted connection c, served by the task fn. */
static void serve(net *n, weft_tcp_t *c, weft_task_fn fn) {
  n->accepted++;
  n->served = c;
  n->echo.data = n;
  assert_int_equal(weft_task_start(weft_loop_sched(n->loop), &n->echo, fn,
                                   WEFT_PRIO_NORMAL, NULL),
                   0);
}

static void on_accept(weft_server_t *s, weft_tcp_t *c, void *ud) {
  net *n = ud;
  assert_ptr_equal(s, n->srv);
  serve(n, c, echo_fn);
}

/* Listens with on_acc, connects to it, and starts the client task fn. */
static void start(net *n, weft_accept_cb on_acc, weft_task_fn fn,
                  int prio) {
  assert_int_equal(weft_tcp_listen(n->loop, "127.0.0.1", 0, 16, on_acc, n,
                                   &n->srv),
                   0);
  assert_int_equal(weft_tcp_connect(n->loop, "127.0.0.1",
                                    weft_server_port(n->srv), &n->conn),
                   0);
  n->client.data = n;
  assert_int_equal(weft_task_start(weft_loop_sched(n->loop), &n->client, fn,
                                   prio, NULL),
                   0);
}

/* The client: connects, sends two lines, reads the echoes, ends its side
 * and reads to the end. */
static int client_fn(weft_task_t *t, int status) {
  static const char msg[] = "hello\nworld\n";
  net *n = t->data;
  weft_future_t *w = NULL;
  weft_span_t sp;
  int r;
  assert_int_equal(status, 0);
  for (;;) {
    switch (n->cstep) {
    case 0:
      r = weft_tcp_poll_connect(n->conn, &w);
      break;
    case 1:
      r = weft_tcp_write(n->conn, t, msg, sizeof msg - 1, &w);
      if (r == WEFT_PENDING) n->cstep = 2;
      break;
    case 2:
      r = weft_tcp_poll_write(n->conn, t, &w);
      break;
    case 3:
    case 4:
      r = weft_tcp_read(n->conn, t, WEFT_READ_LINE, 0, &sp, &w);
      if (r == 0) {
        strncat(n->log, sp.ptr, sp.len);
        strcat(n->log, "|");
      }
      break;
    case 5:
      r = weft_tcp_shutdown(n->conn, t, &w);
      if (r == WEFT_PENDING) n->cstep = 6;
      break;
    case 6:
      r = weft_tcp_poll_write(n->conn, t, &w);
      break;
    case 7:
      r = weft_tcp_read(n->conn, t, WEFT_READ_ALL, 0, &sp, &w);
      if (r == 0) assert_int_equal(sp.len, 0);
      break;
    default:
      weft_tcp_free(n->conn);
      n->conn = NULL;
      weft_server_free(n->srv);
      n->srv = NULL;
      weft_task_finish(t, WEFT_FUTURE_FULFILLED, 0);
      return WEFT_READY;
    }
    if (r == WEFT_PENDING) {
      if (weft_task_await(t, w, WEFT_FOREVER) != 0) return WEFT_PENDING;
      continue;
    }
    assert_int_equal(r, 0);
    n->cstep += n->cstep == 1 ? 2 : n->cstep == 5 ? 2 : 1;
  }
}

/* An echo over the loop's own listener, each side a C task. */
static void an_echo_over_the_loops_own_listener(void **state) {
  net n;
  (void)state;
  begin(&n);
  assert_int_equal(weft_tcp_listen(n.loop, "127.0.0.1", 0, 16, on_accept,
                                   &n, &n.srv),
                   0);
  assert_true(weft_server_port(n.srv) > 0);
  assert_int_equal(weft_tcp_connect(n.loop, "127.0.0.1",
                                    weft_server_port(n.srv), &n.conn),
                   0);
  assert_memory_equal(weft_tcp_name(n.conn), "127.0.0.1:", 10);
  n.client.data = &n;
  assert_int_equal(weft_task_start(weft_loop_sched(n.loop), &n.client,
                                   client_fn, WEFT_PRIO_NORMAL, NULL),
                   0);
  assert_int_equal(weft_loop_run(n.loop), 0);
  assert_string_equal(n.log, "hello|world|");
  assert_int_equal(n.accepted, 1);
  assert_true(n.eof_seen);
  assert_null(n.conn);
  end(&n);
}

/* About the until test: the server's task waits for parked, then writes
 * until_msg and ends its side; the client checks the idle connection,
 * releases the server and reads the message back in pieces. */
static const char until_msg[] = "ab--XYcd--XYef";

static int say_fn(weft_task_t *t, int status) {
  net *n = t->data;
  weft_future_t *w;
  int r;
  assert_int_equal(status, 0);
  for (;;) {
    if (n->estep == 0) {
      if (weft_task_await(t, &n->parked, WEFT_FOREVER) != 0)
        return WEFT_PENDING;
      n->estep = 1;
      r = weft_tcp_write(n->served, t, until_msg, sizeof until_msg - 1, &w);
    } else {
      r = weft_tcp_poll_write(n->served, t, &w);
    }
    if (r != WEFT_PENDING) break;
    if (weft_task_await(t, w, WEFT_FOREVER) != 0) return WEFT_PENDING;
  }
  assert_int_equal(r, 0);
  weft_tcp_free(n->served); /* the end of the stream follows the bytes */
  n->served = NULL;
  weft_task_finish(t, WEFT_FUTURE_FULFILLED, 0);
  return WEFT_READY;
}

static void on_accept_say(weft_server_t *s, weft_tcp_t *c, void *ud) {
  (void)s;
  serve(ud, c, say_fn);
}

/* Each read: pattern, max, inclusive; what it hands out and whether the
 * pattern ended it. */
static const struct {
  const char *pat;
  size_t max;
  int incl;
  const char *out;
  int found, r;
} until_reads[] = {
    {"--XY", 0, 0, "ab", 1, 0},  {"--XY", 0, 1, "cd--XY", 1, 0},
    {"--XY", 1, 0, "e", 0, 0},   {"--XY", 0, 0, "f", 0, UV_EOF},
};

static int until_fn(weft_task_t *t, int status) {
  net *n = t->data;
  weft_future_t *w;
  weft_span_t sp;
  int r, found, i;
  assert_int_equal(status, 0);
  if (n->cstep == 0) {
    if ((r = weft_tcp_poll_connect(n->conn, &w)) == WEFT_PENDING) {
      assert_int_equal(weft_task_await(t, w, WEFT_FOREVER), WEFT_PENDING);
      return WEFT_PENDING;
    }
    assert_int_equal(r, 0);
    /* Connected, nothing sent yet: another owner could take it. */
    assert_int_equal(weft_tcp_idle_check(n->conn), 0);
    weft_future_fulfill(&n->parked);
    n->cstep = 1;
  }
  while ((i = n->cstep - 1) < 4) {
    r = weft_tcp_read_until(n->conn, t, until_reads[i].pat,
                            strlen(until_reads[i].pat), until_reads[i].max,
                            until_reads[i].incl, &sp, &found, &w);
    if (r == WEFT_PENDING) {
      assert_int_equal(weft_task_await(t, w, WEFT_FOREVER), WEFT_PENDING);
      return WEFT_PENDING;
    }
    assert_int_equal(r, until_reads[i].r);
    assert_int_equal(sp.len, strlen(until_reads[i].out));
    assert_memory_equal(sp.ptr, until_reads[i].out, sp.len);
    if (r == 0) assert_int_equal(found, until_reads[i].found);
    /* Bytes are waiting after the first read: not reusable. */
    if (i == 0) assert_int_equal(weft_tcp_idle_check(n->conn), WEFT_ESTATE);
    n->cstep++;
  }
  assert_int_equal(weft_tcp_idle_check(n->conn), UV_EOF);
  weft_tcp_free(n->conn);
  n->conn = NULL;
  weft_server_free(n->srv);
  n->srv = NULL;
  weft_task_finish(t, WEFT_FUTURE_FULFILLED, 0);
  return WEFT_READY;
}

/* Reads up to a pattern, whole, with it, a size at a time, and at the end
 * of the stream; the idle check before and after. */
static void reads_up_to_a_pattern(void **state) {
  net n;
  (void)state;
  begin(&n);
  weft_future_init(&n.parked);
  start(&n, on_accept_say, until_fn, WEFT_PRIO_NORMAL);
  assert_int_equal(weft_loop_run(n.loop), 0);
  assert_int_equal(n.cstep, 5);
  assert_int_equal(n.accepted, 1);
  assert_null(n.served);
  end(&n);
}

/* A reader that waits forever; cancelled, it gives its read up. */
static int stuck_fn(weft_task_t *t, int status) {
  net *n = t->data;
  weft_future_t *w, *w2;
  weft_span_t sp;
  int r;
  if (status == WEFT_ECANCELED) {
    n->cancelled = 1;
    assert_ptr_equal(weft_tcp_reader(n->conn), t);
    weft_tcp_read_abandon(n->conn, t);
    assert_null(weft_tcp_reader(n->conn));
    weft_tcp_free(n->conn);
    n->conn = NULL;
    weft_server_close(n->srv); /* the loop frees it, and the echo side */
    weft_task_finish(t, WEFT_FUTURE_CANCELLED, WEFT_ECANCELED);
    return WEFT_READY;
  }
  if (n->cstep == 0) {
    r = weft_tcp_poll_connect(n->conn, &w);
    if (r == WEFT_PENDING) {
      assert_int_equal(weft_task_await(t, w, WEFT_FOREVER), WEFT_PENDING);
      return WEFT_PENDING;
    }
    assert_int_equal(r, 0);
    n->cstep = 1;
  }
  r = weft_tcp_read(n->conn, t, WEFT_READ_EXACT, 10, &sp, &w);
  assert_int_equal(r, WEFT_PENDING);
  /* Nobody else may read meanwhile. */
  assert_int_equal(weft_tcp_read(n->conn, &n->echo, WEFT_READ_SOME, 1, &sp,
                                 &w2),
                   WEFT_ESTATE);
  assert_int_equal(weft_task_await(t, w, WEFT_FOREVER), WEFT_PENDING);
  weft_future_fulfill(&n->parked);
  return WEFT_PENDING;
}

/* Cancels the client once it waits to read. */
static int canceller_fn(weft_task_t *t, int status) {
  net *n = t->data;
  (void)status;
  if (weft_task_await(t, &n->parked, WEFT_FOREVER) != 0) return WEFT_PENDING;
  assert_int_equal(weft_task_cancel(&n->client), 0);
  weft_task_finish(t, WEFT_FUTURE_FULFILLED, 0);
  return WEFT_READY;
}

static void on_accept_idle(weft_server_t *s, weft_tcp_t *c, void *ud) {
  net *n = ud;
  (void)s;
  n->accepted++;
  n->served = c; /* never read nor written; freed at the end */
}

/* A read waiting for bytes that never come, cancelled: the task gives
 * the read up and the connection is freed; what the loop still holds
 * (the accepted side, the closed server) goes with the loop. */
static void a_read_cancelled_in_flight(void **state) {
  net n;
  weft_task_t canceller;
  (void)state;
  begin(&n);
  start(&n, on_accept_idle, stuck_fn, WEFT_PRIO_HIGH);
  memset(&canceller, 0, sizeof canceller);
  canceller.data = &n;
  weft_future_init(&n.parked);
  assert_int_equal(weft_task_start(weft_loop_sched(n.loop), &canceller,
                                   canceller_fn, WEFT_PRIO_LOW, NULL),
                   0);
  assert_int_equal(weft_loop_run(n.loop), 0);
  assert_true(n.cancelled);
  assert_int_equal(n.accepted, 1);
  weft_tcp_free(n.served); /* its owner's to free */
  weft_server_free(n.srv);
  end(&n);
}

/* A loop freed with a listener and a connection open closes them; their
 * owners free them afterwards, which touches no loop. */
static void a_loop_freed_with_sockets_open(void **state) {
  net n;
  (void)state;
  begin(&n);
  assert_int_equal(weft_tcp_listen(n.loop, "127.0.0.1", 0, 4,
                                   on_accept_idle, &n, &n.srv),
                   0);
  assert_int_equal(weft_tcp_connect(n.loop, "127.0.0.1",
                                    weft_server_port(n.srv), &n.conn),
                   0);
  assert_int_equal(weft_loop_free(n.loop), 0);
  assert_true(weft_tcp_closed(n.conn));
  {
    weft_future_t *w;
    assert_int_equal(weft_tcp_write(n.conn, &n.client, "x", 1, &w),
                     WEFT_ECLOSED);
  }
  weft_tcp_free(n.conn);
  weft_server_free(n.srv);
  test_alloc_expect_empty(&n.a);
  vcount_end(&n.v);
}

/* Every entry checks what it is given. */
static void tcp_entries_refuse_bad_arguments(void **state) {
  net n;
  weft_tcp_t *c = (weft_tcp_t *)&n;
  weft_server_t *s = (weft_server_t *)&n;
  weft_future_t *w;
  weft_span_t sp;
  (void)state;
  begin(&n);
  assert_int_equal(weft_tcp_connect(n.loop, "localhost", 80, &c),
                   WEFT_EINVAL); /* names go through weft_dns_resolve */
  assert_null(c);
  assert_int_equal(weft_tcp_connect(n.loop, "127.0.0.1", 70000, &c),
                   WEFT_EINVAL);
  assert_int_equal(weft_tcp_connect(NULL, "127.0.0.1", 1, &c), WEFT_EINVAL);
  assert_int_equal(weft_tcp_listen(n.loop, "127.0.0.1", 0, 0,
                                   on_accept_idle, &n, &s),
                   WEFT_EINVAL);
  assert_null(s);
  assert_int_equal(weft_tcp_listen(n.loop, "127.0.0.1", 0, 1, NULL, &n, &s),
                   WEFT_EINVAL);
  assert_int_equal(
      weft_tcp_read(NULL, &n.client, WEFT_READ_SOME, 1, &sp, &w),
      WEFT_EINVAL);
  assert_int_equal(weft_tcp_connect(n.loop, "127.0.0.1", 9, &c), 0);
  assert_int_equal(weft_tcp_read(c, &n.client, 9, 1, &sp, &w), WEFT_EINVAL);
  assert_int_equal(weft_tcp_read(c, &n.client, WEFT_READ_UNTIL, 1, &sp, &w),
                   WEFT_EINVAL); /* only weft_tcp_read_until's */
  {
    static char big[WEFT_UNTIL_MAX + 1];
    int found;
    assert_int_equal(weft_tcp_read_until(c, &n.client, "x", 0, 0, 0, &sp,
                                         &found, &w),
                     WEFT_EINVAL);
    assert_int_equal(weft_tcp_read_until(c, &n.client, big, sizeof big, 0, 0,
                                         &sp, &found, &w),
                     WEFT_EINVAL);
    assert_int_equal(weft_tcp_read_until(c, &n.client, NULL, 1, 0, 0, &sp,
                                         &found, &w),
                     WEFT_EINVAL);
    assert_int_equal(weft_tcp_idle_check(NULL), WEFT_EINVAL);
    assert_int_equal(weft_tcp_idle_check(c), WEFT_ESTATE); /* connecting */
  }
  assert_int_equal(weft_tcp_write(c, &n.client, NULL, 1, &w), WEFT_EINVAL);
  /* Nothing is written while connecting: the connect's request and
   * future are in use (a write there corrupted libuv's queue). */
  assert_int_equal(weft_tcp_write(c, &n.client, "x", 1, &w), UV_ENOTCONN);
  assert_int_equal(weft_tcp_try_write(c, &n.client, "x", 1), UV_ENOTCONN);
  assert_int_equal(weft_tcp_shutdown(c, &n.client, &w), UV_ENOTCONN);
  weft_tcp_free(c);
  weft_tcp_free(NULL);
  weft_server_free(NULL);
  end(&n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(an_echo_over_the_loops_own_listener),
      cmocka_unit_test(reads_up_to_a_pattern),
      cmocka_unit_test(a_read_cancelled_in_flight),
      cmocka_unit_test(a_loop_freed_with_sockets_open),
      cmocka_unit_test(tcp_entries_refuse_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
