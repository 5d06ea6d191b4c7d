/*
 * test-io-http.c - the HTTP client from C with no Lua state (weft_io.h),
 * against tests/http_server.py: a GET and a POST, a request cancelled in
 * flight, a loop freed with requests in flight, argument checks, OOM.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <cmocka.h>

#include "host-util.h"
#include "weft_io.h"

/* The server's base URL ("http://127.0.0.1:PORT") and process. */
static char base[128];
static FILE *server;
static long server_pid, closed_port;

/* Starts tests/http_server.py: it prints its URLs once it listens, so
 * reading that line is the wait (no timing). */
static int server_up(void **state) {
  const char *dir = getenv("WEFT_SOURCE_DIR");
  char cmd[512], line[1024], https[256], ca[256];
  (void)state;
  snprintf(cmd, sizeof cmd, "python3 %s/tests/http_server.py",
           dir ? dir : ".");
  if ((server = popen(cmd, "r")) == NULL) return -1;
  if (fgets(line, sizeof line, server) == NULL) return -1;
  if (sscanf(line, "%127s %255s %255s %ld %ld", base, https, ca, &closed_port,
             &server_pid) != 5)
    return -1;
  return 0;
}

static int server_down(void **state) {
  (void)state;
  if (server_pid > 0) kill((pid_t)server_pid, SIGTERM);
  if (server) pclose(server);
  return 0;
}

/* About fetch: a C task that makes one request and reads its whole
 * response: status, X-Method header and body (cut at 255 bytes). rc: 0,
 * or the failure; cancelled: it woke with WEFT_ECANCELED (and freed its
 * request). keep: the request is left to the test (not freed). */
typedef struct fetch {
  weft_task_t t;
  weft_http_opts o;
  char url[256];
  weft_loop_t *loop;
  weft_http_t *r;
  int rc, done, cancelled, keep, started;
  long status;
  char method[16];
  char body[256];
  size_t blen;
} fetch;

static void fetch_init(fetch *f, weft_loop_t *loop, const char *path) {
  memset(f, 0, sizeof *f);
  f->loop = loop;
  snprintf(f->url, sizeof f->url, "%s%s", base, path);
  f->o.url = f->url;
  f->o.max_body = -1;
}

static int fetch_end(fetch *f, int rc) {
  f->rc = rc;
  f->done = 1;
  if (!f->keep) {
    weft_http_free(f->r);
    f->r = NULL;
  }
  weft_task_finish(&f->t, WEFT_FUTURE_FULFILLED, 0);
  return WEFT_READY;
}

/* The response's headers and body, into f. 0 or the failure. */
static int take(fetch *f) {
  weft_span_t name, value, sp;
  weft_future_t *w;
  size_t pos = 0;
  int rc;
  f->status = weft_http_status(f->r);
  while (weft_http_header_next(f->r, &pos, &name, &value))
    if (name.len == 8 && strncasecmp(name.ptr, "x-method", 8) == 0)
      snprintf(f->method, sizeof f->method, "%.*s", (int)value.len,
               value.ptr);
  while ((rc = weft_http_read(f->r, &sp, &w)) == 0) {
    size_t n = sp.len < sizeof f->body - 1 - f->blen
                   ? sp.len : sizeof f->body - 1 - f->blen;
    memcpy(f->body + f->blen, sp.ptr, n);
    f->blen += n;
  }
  assert_int_equal(rc, UV_EOF); /* a whole response: no wait */
  return 0;
}

static int fetch_fn(weft_task_t *t, int status) {
  fetch *f = (fetch *)t;
  weft_future_t *w;
  int rc;
  if (status == WEFT_ECANCELED) {
    f->cancelled = 1;
    return fetch_end(f, status);
  }
  if (!f->started) {
    f->started = 1;
    if ((rc = weft_http_request(f->loop, &f->o, &f->r)) != 0)
      return fetch_end(f, rc);
  }
  while ((rc = weft_http_poll(f->r, &w)) == WEFT_PENDING)
    if (weft_task_await(t, w, weft_http_wait_ms(f->r)) != 0)
      return WEFT_PENDING;
  return fetch_end(f, rc == 0 ? take(f) : rc);
}

static void go(weft_loop_t *loop, fetch *f) {
  assert_int_equal(weft_task_start(weft_loop_sched(loop), &f->t, fetch_fn,
                                   WEFT_PRIO_NORMAL, NULL),
                   0);
}

/* About net: one test's loop on a counting allocator. */
typedef struct net {
  test_alloc a;
  vcount v;
  weft_loop_t *loop;
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

static void get_and_post_from_c(void **state) {
  static const char *const hdrs[] = {"Expect:", "X-Test: one", NULL};
  weft_http_stats_t st;
  fetch g, p;
  net n;
  (void)state;
  begin(&n);
  fetch_init(&g, n.loop, "/hello");
  fetch_init(&p, n.loop, "/echo");
  p.o.body = "ping\0pong"; /* any bytes */
  p.o.body_len = 9;
  p.o.headers = hdrs;
  go(n.loop, &g);
  go(n.loop, &p);
  assert_int_equal(weft_loop_run(n.loop), 0);
  assert_true(g.done && p.done);
  assert_int_equal(g.rc, 0);
  assert_int_equal(g.status, 200);
  assert_int_equal(g.blen, 5);
  assert_memory_equal(g.body, "hello", 5);
  assert_int_equal(p.rc, 0);
  assert_int_equal(p.status, 200);
  assert_string_equal(p.method, "POST"); /* a body and no method */
  assert_int_equal(p.blen, 9);
  assert_memory_equal(p.body, "ping\0pong", 9);
  assert_int_equal(weft_http_stats(n.loop, &st), 1);
  assert_int_equal(st.requests, 2);
  assert_int_equal(st.active, 0);
  end(&n);
}

/* A refused connection fails with a libuv code, curl's name and a
 * message that names the URL. */
static void failure_names_the_url(void **state) {
  weft_error_t e;
  fetch f;
  net n;
  char url[64];
  (void)state;
  begin(&n);
  fetch_init(&f, n.loop, "");
  snprintf(url, sizeof url, "http://127.0.0.1:%ld/", closed_port);
  f.o.url = url;
  f.keep = 1;
  go(n.loop, &f);
  assert_int_equal(weft_loop_run(n.loop), 0);
  assert_int_equal(f.rc, UV_ECONNREFUSED);
  assert_int_equal(weft_http_error(f.r, &e), UV_ECONNREFUSED);
  assert_string_equal(e.where, "http.request");
  assert_memory_equal(e.message, url, strlen(url));
  assert_string_equal(weft_http_error_name(f.r), "COULDNT_CONNECT");
  weft_http_free(f.r);
  end(&n);
}

/* About watcher: a task that asks the server how many /hang requests it
 * got (since it started: hangs counts them for the tests before) until
 * there are want more, then cancels its target (a task) or returns. */
static long hangs;

typedef struct watcher {
  fetch probe;
  weft_task_t t;
  weft_task_t *target;
  long want;
  int seen, launched;
} watcher;

static int watch_fn(weft_task_t *t, int status) {
  watcher *w = (watcher *)((char *)t - offsetof(watcher, t));
  weft_loop_t *loop = w->probe.loop;
  assert_int_equal(status, 0);
  for (;;) {
    if (w->launched && !w->probe.done) {
      if (weft_task_await(t, &w->probe.t.done, WEFT_FOREVER) != 0)
        return WEFT_PENDING;
      continue;
    }
    if (w->launched && atol(w->probe.body) >= hangs + w->want) break;
    fetch_init(&w->probe, loop, "/hangs");
    go(loop, &w->probe);
    w->launched = 1;
  }
  w->seen = 1;
  hangs += w->want;
  if (w->target) weft_task_cancel(w->target);
  weft_task_finish(t, WEFT_FUTURE_FULFILLED, 0);
  return WEFT_READY;
}

static void watch(weft_loop_t *loop, watcher *w, weft_task_t *target,
                  long want) {
  memset(w, 0, sizeof *w);
  w->want = want;
  w->probe.loop = loop;
  w->target = target;
  assert_int_equal(weft_task_start(weft_loop_sched(loop), &w->t, watch_fn,
                                   WEFT_PRIO_NORMAL, NULL),
                   0);
}

/* A request the server holds is given up when its task is cancelled:
 * the task wakes at once and frees it; nothing is left in flight. */
static void request_cancelled_in_flight(void **state) {
  weft_http_stats_t st;
  watcher w;
  fetch f;
  net n;
  (void)state;
  begin(&n);
  fetch_init(&f, n.loop, "/hang");
  go(n.loop, &f);
  watch(n.loop, &w, &f.t, 1);
  assert_int_equal(weft_loop_run(n.loop), 0);
  assert_true(w.seen);
  assert_true(f.cancelled);
  assert_null(f.r);
  assert_int_equal(weft_http_stats(n.loop, &st), 1);
  assert_int_equal(st.active, 0);
  end(&n);
}

/* The loop is freed while a request is in flight: the loop abandons it,
 * its poll then says WEFT_ECLOSED, and its owner frees it after. */
static void loop_freed_with_request_in_flight(void **state) {
  weft_future_t *wt;
  weft_http_t *r;
  weft_http_opts o;
  watcher w;
  net n;
  char url[256];
  (void)state;
  begin(&n);
  memset(&o, 0, sizeof o);
  snprintf(url, sizeof url, "%s/hang", base);
  o.url = url;
  o.max_body = -1;
  assert_int_equal(weft_http_request(n.loop, &o, &r), 0);
  watch(n.loop, &w, NULL, 1); /* runs until the server holds it */
  assert_int_equal(weft_http_poll(r, &wt), WEFT_PENDING);
  /* weft_loop_run would return only once r ended: a request in flight
   * holds the loop. Steps of it run until the server holds r. */
  while (!w.seen) weft_loop_run_nowait(n.loop);
  assert_int_equal(weft_http_poll(r, &wt), WEFT_PENDING);
  assert_int_equal(weft_loop_free(n.loop), 0);
  assert_int_equal(weft_http_poll(r, &wt), WEFT_ECLOSED);
  assert_null(wt);
  weft_http_free(r);
  test_alloc_expect_empty(&n.a);
  vcount_end(&n.v);
}

/* Every argument is checked at the entry: nothing starts. */
static void bad_arguments_are_refused(void **state) {
  static const char *const crlf[] = {"X-A: 1\r\nX-B: 2", NULL};
  static const char *const name[] = {"Bad Name: 1", NULL};
  static const char *const semi[] = {"X-A; 1", NULL};
  static const char *const tab[] = {"X-A: a\tb", NULL};
  weft_http_opts o;
  weft_http_t *r;
  net n;
  char url[256];
  (void)state;
  begin(&n);
  snprintf(url, sizeof url, "%s/hello", base);
#define REFUSE(expr)                                                        \
  do {                                                                      \
    r = (weft_http_t *)&r;                                                  \
    assert_int_equal(expr, WEFT_EINVAL);                                    \
    assert_null(r);                                                         \
  } while (0)
#define WITH(field, value)                                                  \
  do {                                                                      \
    memset(&o, 0, sizeof o);                                                \
    o.url = url;                                                            \
    o.field = value;                                                        \
    REFUSE(weft_http_request(n.loop, &o, &r));                              \
  } while (0)
  memset(&o, 0, sizeof o);
  o.url = url;
  REFUSE(weft_http_request(NULL, &o, &r));
  REFUSE(weft_http_request(n.loop, NULL, &r));
  assert_int_equal(weft_http_request(n.loop, &o, NULL), WEFT_EINVAL);
  WITH(url, NULL);
  WITH(url, "ftp://127.0.0.1/");
  WITH(url, "http:/x");
  WITH(url, "http://127.0.0.1/a\nb");
  WITH(url, "http://127.0.0.1/\x7f");
  WITH(method, "G T");
  WITH(method, "");
  WITH(method, "GET\r\n");
  WITH(headers, crlf);
  WITH(headers, name);
  WITH(headers, semi);
  WITH(body_len, 3); /* no body */
  WITH(max_body, -2);
  WITH(timeout_ms, UINT64_MAX);
  WITH(ca_file, "");
  /* A tab in a value is allowed; the URL's scheme in any case. */
  memset(&o, 0, sizeof o);
  o.url = url;
  o.headers = tab;
  assert_int_equal(weft_http_request(n.loop, &o, &r), 0);
  weft_http_free(r);
  memcpy(url, "HTTP", 4);
  assert_int_equal(weft_http_request(n.loop, &o, &r), 0);
  weft_http_free(r);
#undef WITH
#undef REFUSE
  end(&n);
}

/* Allocation n of the entry fails, for n = 1, 2, ... until it succeeds:
 * each failure is WEFT_ENOMEM with nothing started, and nothing leaks. */
static void request_oom_sweep(void **state) {
  static const char *const hdrs[] = {"X-A: 1", NULL};
  weft_http_opts o;
  weft_http_t *r;
  long n_ok = 0, i;
  net n;
  char url[256];
  (void)state;
  begin(&n);
  snprintf(url, sizeof url, "%s/hello", base);
  memset(&o, 0, sizeof o);
  o.url = url;
  o.headers = hdrs;
  o.body = "x";
  o.body_len = 1;
  for (i = 1; n_ok == 0; i++) {
    int rc;
    n.v.fail_at = atomic_load(&n.v.allocs) + i;
    rc = weft_http_request(n.loop, &o, &r);
    n.v.fail_at = 0;
    if (rc == 0) {
      n_ok = i;
      break;
    }
    assert_int_equal(rc, WEFT_ENOMEM);
    assert_null(r);
  }
  assert_true(n_ok > 1); /* at least one allocation could fail */
  weft_http_free(r);
  end(&n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(get_and_post_from_c),
      cmocka_unit_test(failure_names_the_url),
      cmocka_unit_test(request_cancelled_in_flight),
      cmocka_unit_test(loop_freed_with_request_in_flight),
      cmocka_unit_test(bad_arguments_are_refused),
      cmocka_unit_test(request_oom_sweep),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, server_up, server_down);
}
