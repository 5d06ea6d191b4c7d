/*
 * proc.c - child processes (I/O tier, weft_io.h): a program run with its
 * arguments, environment and input, its output captured, as a loop call.
 * libuv's uv_spawn and pipes serve better than a pool job: the child runs
 * by itself, the loop only moves its bytes, no worker is held meanwhile,
 * and a cancel kills it at once.
 * SPDX-License-Identifier: MIT
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "io.h"
#include "weft_io.h"
/* host.h: the call's loop (for its uv loop), its error code, and the
 * value allocator: the output moves into the result without a copy. */
#include "host.h"

extern char **environ;

/* About Buf: the output of one pipe, cap + 1 bytes allocated (the 1 for
 * the terminator of the string value it becomes) once libuv asked for
 * room, NULL before. */
typedef struct Buf {
  char *p;
  size_t len, cap;
} Buf;

/* About Proc: one exec, made with its call (its ud) in one block that
 * also holds argv and envp (NULL-terminated vectors, used only by the
 * spawn, which happens before weft_process_exec returns, so their strings
 * are borrowed), and the copies of cmd (named in failures) and of the
 * stdin data (written later). The result map is made with it; at the
 * end the output buffers move into it, and only an output pipe libuv
 * never asked room for needs an allocation then (an empty string).
 * From the spawn to the last close callback the Proc holds a reference
 * to the call; open counts its handles not yet closed (three pipes and
 * the process). The child is done once it exited and both output pipes
 * reached their end (eof == 2): then the process handle closes, and the
 * last close callback settles the call and drops the reference. The
 * call's fini frees the Proc once the caller has let go too, so neither a
 * cancel nor a release ever frees memory libuv still holds. */
typedef struct Proc {
  size_t size; /* of the block */
  weft_call_t *call;
  const char *cmd, *cwd;
  char **argv, **envp; /* envp NULL: the environment unchanged */
  char *input;
  size_t inlen;
  uv_process_t proc;
  uv_pipe_t pipe[3]; /* stdin, stdout, stderr */
  uv_write_t wreq;
  Buf out[2]; /* stdout, stderr */
  weft_value_t result;
  int open, failed, exited, eof, nomem;
  int64_t code;
  int sig;
} Proc;

static const char *const keys[] = {"code", "signal", "stdout", "stderr"};

static void proc_free(void *ud) {
  Proc *p = ud;
  int i;
  for (i = 0; i < 2; i++)
    if (p->out[i].p) weft__valloc(p->out[i].p, p->out[i].cap + 1, 0);
  weft_value_free(&p->result);
  weft__valloc(p, p->size, 0);
}

/* Rejects call with "<cmd>: <Message>" and libuv's code. */
static void fail(Proc *p, int code) {
  char msg[1024];
  weft_io_error_text(msg, sizeof msg, p->cmd, code);
  p->call->err = code;
  weft_call_reject(p->call, msg);
}

/* Moves b into a string value of its length, which must own exactly
 * len + 1 bytes: a short output is copied into a block of its size (the
 * allocator serves those from its caches, cheaper than shrinking a large
 * block in place), a longer one shrunk (which never fails under the
 * allocator contract; if it does, that is a failure). 0 or UV_ENOMEM. */
static int take(Buf *b, weft_value_t *v) {
  char *s = b->p;
  if (s == NULL || b->len < 1024) {
    if (weft_value_str(v, s, b->len) != 0) return UV_ENOMEM;
    return 0; /* b is freed with the Proc */
  }
  if (b->cap > b->len &&
      (s = weft__valloc(b->p, b->cap + 1, b->len + 1)) == NULL)
    return UV_ENOMEM;
  s[b->len] = '\0';
  v->type = WEFT_VSTR;
  v->u.s.ptr = s;
  v->u.s.len = b->len;
  b->p = NULL;
  return 0;
}

/* Settles the call with what the child left, unless it was settled
 * (a failed start) or cancelled. */
static void settle(Proc *p) {
  weft_value_t *vals = p->result.u.m.vals;
  if (p->failed || weft_call_cancelled(p->call)) return;
  if (p->nomem) return fail(p, UV_ENOMEM);
  weft_value_int(&vals[0], p->code);
  weft_value_int(&vals[1], p->sig);
  if (take(&p->out[0], &vals[2]) != 0 || take(&p->out[1], &vals[3]) != 0)
    return fail(p, UV_ENOMEM);
  weft_call_resolve(p->call, &p->result);
}

static void on_closed(uv_handle_t *h) {
  Proc *p = h->data;
  weft_call_t *c = p->call;
  if (--p->open > 0) return;
  settle(p);
  weft_call_unref(c); /* may free p */
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, on_closed);
}

static void maybe_done(Proc *p) {
  if (p->exited && p->eof == 2) close_handle((uv_handle_t *)&p->proc);
}

/* Kills the child, if it runs, and closes the pipes: the process handle
 * closes once its exit is seen, so that it is reaped, never a zombie. */
static void stop(Proc *p) {
  int i;
  if (!p->exited) uv_process_kill(&p->proc, SIGKILL);
  for (i = 0; i < 3; i++) close_handle((uv_handle_t *)&p->pipe[i]);
  p->eof = 2;
  maybe_done(p);
}

static void on_exit_cb(uv_process_t *h, int64_t status, int sig) {
  Proc *p = h->data;
  p->exited = 1;
  p->code = status;
  p->sig = sig;
  maybe_done(p);
}

static Buf *buf_of(uv_handle_t *h) {
  Proc *p = h->data;
  return &p->out[(uv_pipe_t *)h - &p->pipe[1]];
}

/* Doubles b, from FIRST bytes: 0, or -1 (out of memory). libuv's hint
 * (64 KiB) is not taken as the first size: most children write little,
 * a small block comes from the allocator's caches, and a large output
 * takes only a few more reads while its buffer doubles. */
#define FIRST 1000
static int grow(Buf *b) {
  size_t cap = b->cap ? b->cap * 2 : FIRST;
  char *np;
  if (b->cap > SIZE_MAX / 4) return -1;
  if ((np = weft__valloc(b->p, b->p ? b->cap + 1 : 0, cap + 1)) == NULL)
    return -1;
  b->p = np;
  b->cap = cap;
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  Buf *b = buf_of(h);
  (void)hint;
  if (b->cap - b->len < FIRST / 2 && grow(b) != 0) {
    buf->base = NULL;
    buf->len = 0; /* libuv reports UV_ENOBUFS to on_read */
    return;
  }
  buf->base = b->p + b->len;
  buf->len = b->cap - b->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  Proc *p = s->data;
  (void)buf;
  if (n > 0) buf_of((uv_handle_t *)s)->len += (size_t)n;
  if (n >= 0) return;
  if (n == UV_ENOBUFS) { /* the call fails: the child need not go on */
    p->nomem = 1;
    return stop(p);
  }
  close_handle((uv_handle_t *)s);
  p->eof++;
  maybe_done(p);
}

static void on_written(uv_write_t *w, int status) {
  Proc *p = w->data;
  (void)status; /* a child that does not read its input is its business */
  close_handle((uv_handle_t *)&p->pipe[0]);
}

/* Reads the output and writes the input of a spawned child. */
static void pump(Proc *p) {
  uv_buf_t b;
  int i;
  for (i = 1; i < 3; i++)
    if (uv_read_start((uv_stream_t *)&p->pipe[i], on_alloc, on_read) != 0) {
      close_handle((uv_handle_t *)&p->pipe[i]); /* no output to wait for */
      p->eof++;
    }
  b = uv_buf_init(p->input, (unsigned)p->inlen);
  p->wreq.data = p;
  if (p->inlen == 0 ||
      uv_write(&p->wreq, (uv_stream_t *)&p->pipe[0], &b, 1, on_written))
    close_handle((uv_handle_t *)&p->pipe[0]); /* the input is empty */
  maybe_done(p);
}

/* The call's function (loop thread, within weft_process_exec): spawns
 * the child with a pipe for each of its three standard streams. */
static void start(weft_call_t *c, void *ud) {
  Proc *p = ud;
  uv_loop_t *uv = c->loop->uv;
  uv_stdio_container_t io[3];
  uv_process_options_t o;
  int i, r;
  p->call = c;
  for (i = 0; i < 3; i++) {
    uv_pipe_init(uv, &p->pipe[i], 0);
    p->pipe[i].data = p;
    io[i].flags = UV_CREATE_PIPE | (i == 0 ? UV_READABLE_PIPE
                                           : UV_WRITABLE_PIPE);
    io[i].data.stream = (uv_stream_t *)&p->pipe[i];
  }
  memset(&o, 0, sizeof o);
  o.file = p->cmd;
  o.args = p->argv;
  o.env = p->envp;
  o.cwd = p->cwd;
  o.stdio = io;
  o.stdio_count = 3;
  o.exit_cb = on_exit_cb;
  if (p->inlen) weft__ignore_sigpipe();
  r = uv_spawn(uv, &p->proc, &o);
  /* A failed spawn leaves a handle to close as well (libuv's contract). */
  p->proc.data = p;
  p->open = 4;
  p->argv = p->envp = NULL; /* borrowed strings: gone after this */
  p->cwd = NULL;
  weft_call_ref(c); /* the Proc's, until its last handle closed */
  if (r != 0) {
    fail(p, r);
    p->failed = p->exited = 1;
    return stop(p);
  }
  pump(p);
}

/* Told once, on the loop thread, that the caller gave up (or that the
 * loop is being freed): the child is killed and the pipes closed. */
static void on_cancel(weft_call_t *c, void *ud) {
  (void)c;
  stop(ud);
}

/* ------------------------------------------------------------- the entry */

static size_t count(const char *const *v) {
  size_t n = 0;
  if (v)
    while (v[n]) n++;
  return n;
}

/* The length of the name in "NAME=value", or of a bare "NAME". */
static size_t name_len(const char *s) {
  const char *eq = strchr(s, '=');
  return eq ? (size_t)(eq - s) : strlen(s);
}

static int valid(const weft_process_opts *o) {
  size_t i;
  if (o->cmd == NULL || (o->stdin_data == NULL && o->stdin_len > 0))
    return 0;
  for (i = 0; o->env && o->env[i]; i++)
    if (name_len(o->env[i]) == 0) return 0; /* "" or "=value" */
  return 1;
}

/* Whether env names the variable of var ("NAME=value"). */
static int changed(const char *var, const char *const *env) {
  size_t n = name_len(var), i;
  for (i = 0; env[i]; i++)
    if (name_len(env[i]) == n && memcmp(env[i], var, n) == 0) return 1;
  return 0;
}

/* Fills v with the inherited environment as env changes it. */
static void merge_env(char **v, const char *const *env) {
  size_t i, k = 0;
  for (i = 0; environ[i]; i++)
    if (strchr(environ[i], '=') && !changed(environ[i], env))
      v[k++] = environ[i];
  for (i = 0; env[i]; i++)
    if (strchr(env[i], '=')) v[k++] = (char *)env[i];
  v[k] = NULL;
}

/* The result map, its values to fill at the end. 0 or WEFT_ENOMEM. */
static int prepare(Proc *p) {
  int i;
  if (weft_value_map(&p->result, 4) != 0) return WEFT_ENOMEM;
  for (i = 0; i < 4; i++)
    if (weft_value_str(&p->result.u.m.keys[i], keys[i], strlen(keys[i])))
      return WEFT_ENOMEM;
  return 0;
}

/* A Proc for o, in one block (see About Proc), or NULL. */
static Proc *proc_new(const weft_process_opts *o) {
  size_t na = count(o->args), clen = strlen(o->cmd), i;
  size_t ne = o->env ? count((const char *const *)environ) + count(o->env) +
                           1 : 0;
  size_t size = sizeof(Proc) + (na + 2 + ne) * sizeof(char *) + clen + 1;
  char *s;
  Proc *p;
  if (o->stdin_len > SIZE_MAX - size ||
      (p = weft__valloc(NULL, 0, size + o->stdin_len)) == NULL)
    return NULL;
  memset(p, 0, sizeof *p);
  p->size = size + o->stdin_len;
  if (prepare(p) != 0) {
    proc_free(p);
    return NULL;
  }
  p->argv = (char **)(p + 1);
  s = (char *)(p->argv + na + 2 + ne);
  p->cmd = memcpy(s, o->cmd, clen + 1);
  p->argv[0] = s;
  for (i = 0; i < na; i++) p->argv[i + 1] = (char *)o->args[i];
  p->argv[na + 1] = NULL;
  if (o->env) merge_env(p->envp = p->argv + na + 2, o->env);
  p->cwd = o->cwd;
  p->input = s + clen + 1;
  p->inlen = o->stdin_len;
  if (p->inlen) memcpy(p->input, o->stdin_data, p->inlen);
  return p;
}

int weft_process_exec(weft_loop_t *loop, const weft_process_opts *opts,
                      weft_call_t **out) {
  weft_fn_opts fo = {WEFT_FN_LOOP, WEFT_PRIO_NORMAL, 0, on_cancel, NULL};
  Proc *p;
  int r;
  if (out) *out = NULL;
  if (loop == NULL || opts == NULL || out == NULL || !valid(opts))
    return WEFT_EINVAL;
  if ((p = proc_new(opts)) == NULL) return WEFT_ENOMEM;
  fo.ud = p;
  r = weft_call_new(loop, "process.exec", start, &fo, NULL, NULL, out);
  if (r != 0) {
    proc_free(p);
    return r;
  }
  (*out)->fini = proc_free;
  return weft_call_start(*out);
}
