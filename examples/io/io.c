/*
 * io.c - weft's I/O from C with no Lua state at all: C tasks run at once
 * on one loop, each awaiting its own I/O (a file written and read back, a
 * name resolved, a TCP echo against the loop's own listener, a child
 * process, an HTTP GET of the URL given as argument), and one gives up on
 * a slow child mid-flight.
 * usage: weft_io_example [URL]   (without a URL, no HTTP request)
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weft.h"
#include "weft_io.h"

/* About job: one C task of the example, written as a protothread: step
 * says where it resumes, c is the call it waits for. */
typedef struct job {
  weft_task_t t; /* first member */
  weft_loop_t *loop;
  const char *name;
  int step, ok;
  weft_call_t *c;
  weft_tcp_t *conn;
  weft_http_t *req;
  const char *url;
  char path[64];
} job;

static int failures;

/* Parks the task on f and returns from its function, unless f settled. */
#define AWAIT(t, f)                                                         \
  do {                                                                      \
    if (weft_task_await((t), (f), WEFT_FOREVER) != 0) return WEFT_PENDING;  \
  } while (0)

/* Ends the job with its line of output. */
static int done(job *j, int ok, const char *what) {
  printf("%-8s %s %s\n", j->name, ok ? "ok  " : "FAIL", what);
  failures += !ok;
  weft_call_release(j->c);
  j->c = NULL;
  weft_task_finish(&j->t, WEFT_FUTURE_FULFILLED, 0);
  return WEFT_READY;
}

/* Ends the job with the error of its call. */
static int failed(job *j) {
  weft_error_t e;
  char text[512];
  weft_call_error(j->c, &e);
  snprintf(text, sizeof text, "%s: %s", e.where ? e.where : "?",
           e.message ? e.message : "cancelled");
  return done(j, 0, text);
}

/* The string a call fulfilled with, or NULL. */
static const weft_value_t *result_str(job *j) {
  const weft_value_t *v = weft_call_result(j->c);
  return v && v->type == WEFT_VSTR ? v : NULL;
}

/* A file: written, then read back. */
static int files_fn(weft_task_t *t, int status) {
  static const char text[] = "written and read by weft\n";
  job *j = (job *)t;
  const weft_value_t *v;
  (void)status;
  switch (j->step) {
  case 0:
    snprintf(j->path, sizeof j->path, "/tmp/weft-io-%ld.txt", (long)getpid());
    if (weft_fs_write(j->loop, j->path, text, sizeof text - 1, 0, &j->c))
      return done(j, 0, "fs.write did not start");
    j->step = 1;
    AWAIT(t, weft_call_future(j->c));
    /* fall through */
  case 1:
    if (weft_call_result(j->c) == NULL) return failed(j);
    weft_call_release(j->c);
    if (weft_fs_read(j->loop, j->path, &j->c))
      return done(j, 0, "fs.read did not start");
    j->step = 2;
    AWAIT(t, weft_call_future(j->c));
    /* fall through */
  default:
    if ((v = result_str(j)) == NULL) return failed(j);
    unlink(j->path);
    return done(j, v->u.s.len == sizeof text - 1 &&
                       memcmp(v->u.s.ptr, text, v->u.s.len) == 0,
                "a file written and read back");
  }
}

/* A name resolved. */
static int dns_fn(weft_task_t *t, int status) {
  job *j = (job *)t;
  const weft_value_t *v;
  char line[128];
  (void)status;
  if (j->step == 0) {
    if (weft_dns_resolve(j->loop, "localhost", &j->c))
      return done(j, 0, "dns.resolve did not start");
    j->step = 1;
    AWAIT(t, weft_call_future(j->c));
  }
  if ((v = weft_call_result(j->c)) == NULL) return failed(j);
  snprintf(line, sizeof line, "localhost resolves to %s",
           v->u.a.items[0].u.s.ptr);
  return done(j, v->u.a.len > 0, line);
}

/* A child process, its output captured. */
static int proc_fn(weft_task_t *t, int status) {
  static const char *const args[] = {"hello from a child", NULL};
  weft_process_opts o = {"echo", args, NULL, NULL, NULL, 0};
  job *j = (job *)t;
  const weft_value_t *out;
  (void)status;
  if (j->step == 0) {
    if (weft_process_exec(j->loop, &o, &j->c))
      return done(j, 0, "process.exec did not start");
    j->step = 1;
    AWAIT(t, weft_call_future(j->c));
  }
  if (weft_call_result(j->c) == NULL) return failed(j);
  out = weft_value_get(weft_call_result(j->c), "stdout");
  return done(j, out && strcmp(out->u.s.ptr, "hello from a child\n") == 0,
              "echo said: hello from a child");
}

/* A slow child given up on: the task waits 50 ms for `sleep 30`, then
 * cancels the call, which kills the child at once. */
static int cancel_fn(weft_task_t *t, int status) {
  static const char *const args[] = {"30", NULL};
  weft_process_opts o = {"sleep", args, NULL, NULL, NULL, 0};
  job *j = (job *)t;
  if (j->step == 0) {
    if (weft_process_exec(j->loop, &o, &j->c))
      return done(j, 0, "process.exec did not start");
    j->step = 1;
    if (weft_task_await(t, weft_call_future(j->c), 50) != 0)
      return WEFT_PENDING;
    status = 0;
  }
  if (status != WEFT_ETIMEDOUT) return done(j, 0, "sleep 30 ended early");
  return done(j, weft_call_cancel(j->c) == 1 &&
                     weft_call_future(j->c)->state == WEFT_FUTURE_CANCELLED,
              "sleep 30 cancelled after 50 ms, the child killed");
}

/* An HTTP GET: the status and the size of the body. */
static int http_fn(weft_task_t *t, int status) {
  weft_http_opts o;
  job *j = (job *)t;
  weft_future_t *w;
  weft_span_t body;
  char line[160];
  int r;
  (void)status;
  if (j->step == 0) {
    memset(&o, 0, sizeof o);
    o.url = j->url;
    o.max_body = -1;
    if (weft_http_request(j->loop, &o, &j->req) != 0)
      return done(j, 0, "the request did not start");
    j->step = 1;
  }
  if ((r = weft_http_poll(j->req, &w)) == WEFT_PENDING) {
    AWAIT(t, w);
    r = weft_http_poll(j->req, &w);
  }
  if (r == 0) r = weft_http_read(j->req, &body, &w);
  if (r == 0)
    snprintf(line, sizeof line, "GET %s: %ld, %zu bytes", j->url,
             weft_http_status(j->req), body.len);
  else
    snprintf(line, sizeof line, "GET %s: %s", j->url, weft_io_err_name(r));
  r = r == 0 && weft_http_status(j->req) == 200;
  weft_http_free(j->req);
  j->req = NULL;
  return done(j, r, line);
}

/* ---------------------------------------------------------- TCP echo */

static job echo_job;

/* The server's side: reads a line, writes it back, frees the connection.
 * step 0: reading, 1: writing, 2: done. */
static int echo_fn(weft_task_t *t, int status) {
  job *j = (job *)t;
  weft_future_t *w;
  weft_span_t line;
  int r = 0;
  (void)status;
  while (j->step < 2) {
    if (j->step == 0) {
      r = weft_tcp_read(j->conn, t, WEFT_READ_LINE_KEEP, 0, &line, &w);
      if (r == 0) {
        j->step = 1;
        r = weft_tcp_write(j->conn, t, line.ptr, line.len, &w);
        if (r == 0) j->step = 2;
      }
    } else if ((r = weft_tcp_poll_write(j->conn, t, &w)) == 0) {
      j->step = 2;
    }
    if (r == WEFT_PENDING) AWAIT(t, w);
    else if (r != 0) break;
  }
  j->ok = j->step == 2;
  weft_tcp_free(j->conn);
  j->conn = NULL;
  weft_task_finish(t, WEFT_FUTURE_FULFILLED, 0);
  return WEFT_READY;
}

static void on_accept(weft_server_t *s, weft_tcp_t *c, void *ud) {
  weft_loop_t *loop = ud;
  (void)s;
  echo_job.loop = loop;
  echo_job.conn = c;
  weft_task_start(weft_loop_sched(loop), &echo_job.t, echo_fn,
                  WEFT_PRIO_NORMAL, NULL);
}

/* The client's side: connects, sends a line, reads the echo. */
static int client_fn(weft_task_t *t, int status) {
  static const char msg[] = "ping over tcp\n";
  job *j = (job *)t;
  weft_future_t *w;
  weft_span_t sp;
  int r;
  (void)status;
  for (;;) {
    switch (j->step) {
    case 0: r = weft_tcp_poll_connect(j->conn, &w); break;
    case 1: r = weft_tcp_write(j->conn, t, msg, sizeof msg - 1, &w); break;
    case 2: r = weft_tcp_poll_write(j->conn, t, &w); break;
    default:
      r = weft_tcp_read(j->conn, t, WEFT_READ_LINE, 0, &sp, &w);
      if (r != 0 && r != WEFT_PENDING) break;
      if (r == 0) {
        int ok = sp.len == sizeof msg - 2 && memcmp(sp.ptr, msg, sp.len) == 0;
        weft_tcp_free(j->conn);
        j->conn = NULL;
        return done(j, ok, "a line echoed by the loop's own TCP server");
      }
    }
    if (r == WEFT_PENDING) {
      if (j->step == 1) j->step = 2;
      AWAIT(t, w);
      continue;
    }
    if (r != 0) {
      weft_tcp_free(j->conn);
      j->conn = NULL;
      return done(j, 0, weft_io_err_name(r));
    }
    j->step += j->step == 1 ? 2 : 1;
  }
}

int main(int argc, char **argv) {
  static job jobs[6] = {{.name = "files"}, {.name = "dns"},
                        {.name = "process"}, {.name = "cancel"},
                        {.name = "tcp"}, {.name = "http"}};
  static weft_task_fn fns[6] = {files_fn, dns_fn, proc_fn, cancel_fn,
                                client_fn, http_fn};
  int i, left, n = argc > 1 ? 6 : 5;
  weft_loop_t *loop;
  weft_pool_t *pool;
  weft_server_t *srv;
  if (weft_loop_new(&loop, NULL, NULL) != 0 ||
      weft_pool_new(&pool, NULL) != 0)
    return 1;
  weft_loop_set_pool(loop, pool);
  if (weft_tcp_listen(loop, "127.0.0.1", 0, 16, on_accept, loop, &srv) != 0 ||
      weft_tcp_connect(loop, "127.0.0.1", weft_server_port(srv),
                       &jobs[4].conn) != 0)
    return 1;
  jobs[5].url = argc > 1 ? argv[1] : NULL;
  for (i = 0; i < n; i++) {
    jobs[i].loop = loop;
    weft_task_start(weft_loop_sched(loop), &jobs[i].t, fns[i],
                    WEFT_PRIO_NORMAL, NULL);
  }
  left = weft_loop_run(loop);
  weft_server_free(srv);
  weft_loop_free(loop);
  weft_pool_free(pool);
  failures += !echo_job.ok;
  printf("io: %s\n", left == 0 && failures == 0 ? "all done" : "FAILED");
  return left == 0 && failures == 0 ? 0 : 1;
}
