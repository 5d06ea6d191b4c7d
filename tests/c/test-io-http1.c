/*
 * test-io-http1.c - the HTTP client's native HTTP/1.1 path from C (no Lua
 * state), against tests/http_server.py: plain http:// served without
 * libcurl, kept-alive connections, every way a body ends, 1xx, bad
 * replies, redirects, abandon at each step, a loop freed with connections
 * busy and idle, and a proxy in the environment handing requests to curl.
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE /* RTLD_NOLOAD */
#include <dlfcn.h>
#include <poll.h>
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
  snprintf(cmd, sizeof cmd, "python3 %s/tests/http_server.py", dir ? dir : ".");
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
 * response: status, the header named want (if any), body (cut at 255
 * bytes). rc: 0 or the failure; keep: the request is left to the test. */
typedef struct fetch {
  weft_task_t t;
  weft_http_opts o;
  char url[256];
  weft_loop_t *loop;
  weft_http_t *r;
  int rc, done, keep, started;
  long status;
  const char *want;
  char got[64];
  int has;
  char body[256];
  size_t blen;
} fetch;

static void fetch_init(fetch *f, weft_loop_t *loop, const char *path) {
  memset(f, 0, sizeof *f);
  f->loop = loop;
  snprintf(f->url, sizeof f->url, "%s%s", base, path);
  f->o.url = f->url;
  f->o.max_body = -1;
  f->o.follow_redirects = 1;
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

static int fetch_fn(weft_task_t *t, int status) {
  fetch *f = (fetch *)t;
  weft_span_t name, value, sp;
  weft_future_t *w;
  size_t pos = 0;
  int rc;
  if (status != 0) return fetch_end(f, status);
  if (!f->started) {
    f->started = 1;
    if ((rc = weft_http_request(f->loop, &f->o, &f->r)) != 0)
      return fetch_end(f, rc);
  }
  while ((rc = weft_http_poll(f->r, &w)) == WEFT_PENDING)
    if (weft_task_await(t, w, weft_http_wait_ms(f->r)) != 0)
      return WEFT_PENDING;
  if (rc != 0) return fetch_end(f, rc);
  f->status = weft_http_status(f->r);
  while (weft_http_header_next(f->r, &pos, &name, &value))
    if (f->want && name.len == strlen(f->want) &&
        strncasecmp(name.ptr, f->want, name.len) == 0) {
      f->has = 1;
      snprintf(f->got, sizeof f->got, "%.*s", (int)value.len, value.ptr);
    }
  while ((rc = weft_http_read(f->r, &sp, &w)) == 0) {
    size_t n = sp.len < sizeof f->body - 1 - f->blen
                   ? sp.len
                   : sizeof f->body - 1 - f->blen;
    memcpy(f->body + f->blen, sp.ptr, n);
    f->blen += n;
  }
  assert_int_equal(rc, UV_EOF); /* a whole response: no wait */
  return fetch_end(f, 0);
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

/* Runs one request of path to its end in n's loop; f keeps the result. */
static void run(net *n, fetch *f, const char *path) {
  fetch_init(f, n->loop, path);
  go(n->loop, f);
  assert_int_equal(weft_loop_run(n->loop), 0);
  assert_true(f->done);
}

static long server_count(net *n, const char *path) {
  fetch f;
  run(n, &f, path);
  assert_int_equal(f.rc, 0);
  return atol(f.body);
}

static int curl_loaded(void) {
  void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_NOLOAD);
  if (lib) dlclose(lib);
  return lib != NULL;
}

/* Plain http:// goes the native way: libcurl is never loaded (this test
 * runs first: the proxy test below loads it). */
static void plain_http_needs_no_libcurl(void **state) {
  fetch f;
  net n;
  (void)state;
  begin(&n);
  run(&n, &f, "/hello");
  assert_int_equal(f.rc, 0);
  assert_int_equal(f.status, 200);
  assert_memory_equal(f.body, "hello", 5);
  assert_false(curl_loaded());
  end(&n);
}

/* Requests in a row share one connection, which waits between them in
 * the loop's pool (and never holds the loop open). */
static void connections_are_kept_alive(void **state) {
  weft_http_stats_t st;
  long before, after;
  fetch f;
  int i;
  net n;
  (void)state;
  begin(&n);
  before = server_count(&n, "/connections");
  for (i = 0; i < 5; i++) {
    run(&n, &f, "/hello");
    assert_int_equal(f.rc, 0);
  }
  after = server_count(&n, "/connections");
  assert_int_equal(after, before); /* the first one's connection, reused */
  assert_int_equal(weft_http_stats(n.loop, &st), 1);
  assert_int_equal(st.connections, 1);
  assert_int_equal(st.active, 0);
  assert_int_equal(st.requests, 7);
  end(&n);
}

/* Bodies by length, in chunks, up to the connection's end, none (204,
 * 304), after two 1xx (also a byte at a time), and a redirect chain. */
static void every_kind_of_body(void **state) {
  static const struct {
    const char *path, *body, *want, *value;
    long status;
  } cases[] = {
      {"/chunked", "alphabetagamma", NULL, NULL, 200},
      {"/close-delimited", "until the end", "x-kind", "close", 200},
      {"/http10", "old server", "x-kind", "old", 200},
      {"/no-content", "", "x-kind", "none", 204},
      {"/not-modified", "", NULL, NULL, 304},
      {"/interim", "interim", "x-final", "yes", 200},
      {"/split", "interim", "link", NULL, 200},
      {"/split/folded", "folded", "x-folded", "one two three", 200},
      {"/split/trailers", "hello", "x-trailer", NULL, 200},
      {"/folded", "folded", "x-folded", "one two three", 200},
      {"/redirect/3", "hello", NULL, NULL, 200},
  };
  size_t i;
  net n;
  (void)state;
  begin(&n);
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fetch f;
    fetch_init(&f, n.loop, cases[i].path);
    f.want = cases[i].want;
    f.keep = 1;
    go(n.loop, &f);
    assert_int_equal(weft_loop_run(n.loop), 0);
    assert_int_equal(f.rc, 0);
    assert_int_equal(f.status, cases[i].status);
    assert_int_equal(f.blen, strlen(cases[i].body));
    assert_memory_equal(f.body, cases[i].body, f.blen);
    if (cases[i].want) {
      assert_int_equal(f.has, cases[i].value != NULL); /* (no 1xx's) */
      if (cases[i].value) assert_string_equal(f.got, cases[i].value);
    }
    if (strncmp(cases[i].path, "/redirect", 9) == 0) {
      char want[256];
      snprintf(want, sizeof want, "%s/hello", base);
      assert_string_equal(weft_http_url(f.r, 1), want);
    }
    weft_http_free(f.r);
  }
  end(&n);
}

/* Failures: code, curl's name and a message naming the URL. */
static void failures_are_named(void **state) {
  static const struct {
    const char *path, *name;
    int code;
    int64_t max_body;
  } cases[] = {
      {"/malformed", "WEIRD_SERVER_REPLY", UV_EPROTO, -1},
      {"/bad-status", "WEIRD_SERVER_REPLY", UV_EPROTO, -1},
      {"/bad-chunk", "WEIRD_SERVER_REPLY", UV_EPROTO, -1},
      {"/cut-headers", "WEIRD_SERVER_REPLY", UV_EPROTO, -1},
      {"/empty", "GOT_NOTHING", UV_ECONNRESET, -1},
      {"/close-mid", "PARTIAL_FILE", UV_EPROTO, -1},
      {"/bytes/100000", "FILESIZE_EXCEEDED", UV_EFBIG, 1000},
      {"/chunked", "FILESIZE_EXCEEDED", UV_EFBIG, 6},
      {"/redirect/30", "TOO_MANY_REDIRECTS", UV_EPROTO, -1},
  };
  size_t i;
  net n;
  (void)state;
  begin(&n);
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    weft_error_t e;
    fetch f;
    fetch_init(&f, n.loop, cases[i].path);
    f.o.max_body = cases[i].max_body;
    f.keep = 1;
    go(n.loop, &f);
    assert_int_equal(weft_loop_run(n.loop), 0);
    assert_int_equal(f.rc, cases[i].code);
    assert_int_equal(weft_http_error(f.r, &e), cases[i].code);
    assert_string_equal(e.where, "http.request");
    assert_memory_equal(e.message, f.url, strlen(f.url));
    assert_string_equal(weft_http_error_name(f.r), cases[i].name);
    weft_http_free(f.r);
  }
  end(&n);
}

/* A name goes through weft's resolver; one that does not resolve fails
 * as curl's path says it. */
static void names_are_resolved(void **state) {
  fetch f;
  net n;
  char url[256];
  (void)state;
  begin(&n);
  fetch_init(&f, n.loop, "");
  snprintf(url, sizeof url, "http://localhost:%s/hello",
           strrchr(base, ':') + 1);
  f.o.url = url;
  go(n.loop, &f);
  assert_int_equal(weft_loop_run(n.loop), 0);
  assert_int_equal(f.rc, 0);
  assert_memory_equal(f.body, "hello", 5);
  fetch_init(&f, n.loop, "");
  f.o.url = "http://no-such-host.invalid/";
  go(n.loop, &f);
  assert_int_equal(weft_loop_run(n.loop), 0);
  assert_int_equal(f.rc, UV_EAI_NONAME);
  end(&n);
}

/* One turn of n's loop: waits for its next event (as a foreign loop
 * would), then runs what it brought. */
static void step(weft_loop_t *loop) {
  struct pollfd p;
  int ms = weft_loop_timeout(loop);
  p.fd = weft_loop_backend_fd(loop);
  p.events = POLLIN;
  poll(&p, 1, ms < 0 || ms > 100 ? 100 : ms);
  weft_loop_run_nowait(loop);
}

/* A request freed after k turns of the loop, for every k until one ends
 * by itself: at each step (a lookup, connecting, sending, headers, part
 * of the body) it is abandoned, leaks nothing and the next works. */
static void freed_at_every_step(void **state) {
  static const char *const hosts[] = {"127.0.0.1", "localhost"};
  size_t h;
  (void)state;
  for (h = 0; h < 2; h++) {
    int k, ended = 0;
    for (k = 0; !ended && k < 1000; k++) {
      weft_future_t *w;
      weft_http_opts o;
      weft_http_t *r;
      net n;
      char url[256];
      int i;
      begin(&n);
      snprintf(url, sizeof url, "http://%s:%s/slow/3", hosts[h],
               strrchr(base, ':') + 1);
      memset(&o, 0, sizeof o);
      o.url = url;
      o.max_body = -1;
      o.stream = k % 2;
      assert_int_equal(weft_http_request(n.loop, &o, &r), 0);
      for (i = 0; i < k; i++) step(n.loop);
      ended = weft_http_poll(r, &w) == 0 && !o.stream;
      weft_http_free(r);
      end(&n);
    }
    assert_true(ended);
  }
}

/* The loop is freed with a request in flight and a connection idle in
 * the pool: both close; the owner frees the request after. */
static void loop_freed_with_busy_and_idle(void **state) {
  weft_http_stats_t st;
  weft_future_t *wt;
  weft_http_opts o;
  weft_http_t *r;
  fetch f;
  net n;
  (void)state;
  begin(&n);
  run(&n, &f, "/hello"); /* its connection now idle */
  memset(&o, 0, sizeof o);
  o.url = f.url;
  o.max_body = -1;
  snprintf(f.url, sizeof f.url, "%s/hang", base);
  assert_int_equal(weft_http_request(n.loop, &o, &r), 0);
  weft_loop_run_nowait(n.loop);
  assert_int_equal(weft_http_stats(n.loop, &st), 1);
  assert_int_equal(st.active, 1);
  assert_int_equal(weft_loop_free(n.loop), 0);
  assert_int_equal(weft_http_poll(r, &wt), WEFT_ECLOSED);
  weft_http_free(r);
  test_alloc_expect_empty(&n.a);
  vcount_end(&n.v);
}

/* A proxy named by the environment: the loop's requests go to curl, which
 * uses it (here one that refuses: COULDNT_CONNECT). Last: it loads
 * libcurl. */
static void proxy_in_environment_goes_to_curl(void **state) {
  char proxy[64];
  fetch f;
  net n;
  (void)state;
  snprintf(proxy, sizeof proxy, "http://127.0.0.1:%ld", closed_port);
  setenv("http_proxy", proxy, 1);
  begin(&n);
  run(&n, &f, "/hello");
  unsetenv("http_proxy");
  assert_int_equal(f.rc, UV_ECONNREFUSED);
  assert_true(curl_loaded());
  end(&n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(plain_http_needs_no_libcurl),
      cmocka_unit_test(connections_are_kept_alive),
      cmocka_unit_test(every_kind_of_body),
      cmocka_unit_test(failures_are_named),
      cmocka_unit_test(names_are_resolved),
      cmocka_unit_test(freed_at_every_step),
      cmocka_unit_test(loop_freed_with_busy_and_idle),
      cmocka_unit_test(proxy_in_environment_goes_to_curl),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, server_up, server_down);
}
