/*
 * proc.c - weft.process and weft.dns (Lua binding): child processes with
 * captured output and name lookups, both on libuv, both cancellable.
 * SPDX-License-Identifier: MIT
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lweft.h"
#include "host.h"
#include "weft_io.h"

#define GUARD_MT "weft.IoGuard"
static const char GUARD_TAG[] = GUARD_MT; /* see About userdata tags */

/* About Op: what a waiting task and libuv share. The task waits on fut;
 * libuv's callbacks fill the op and settle fut. The task's stack holds a
 * guard userdata pointing here: when the task goes away without taking
 * the result (cancelled, timed out, or the state closes), the guard
 * abandons the op, which then frees itself once libuv is done with it.
 * closer lists the op in the state while libuv holds it. */
typedef struct Op Op;
struct Op {
  Closer closer;
  weft_future_t fut;
  void (*abandon)(Op *op); /* stop the work; free once libuv lets go */
  void (*free)(Op *op);
  int orphan;
};

typedef struct Guard {
  const char *tag; /* GUARD_TAG */
  Op *op;
} Guard;

/* __gc: a script can call it (debug.getmetatable) with anything. */
static int guard_gc(lua_State *L) {
  Guard *g = lw_toudata(L, 1, sizeof *g, GUARD_TAG);
  Op *op;
  if (g == NULL) return 0;
  op = g->op;
  g->op = NULL;
  if (op == NULL) return 0;
  /* A task may still wait on the op: only the guard on its stack kept it,
   * and debug.setlocal can replace that. It wakes (and finds the guard
   * gone) before the op frees itself. */
  weft_future_fulfill(&op->fut);
  op->abandon(op);
  return 0;
}

static Guard *push_guard(lua_State *L) {
  Guard *g = lua_newuserdatauv(L, sizeof *g, 0);
  g->tag = GUARD_TAG;
  g->op = NULL;
  luaL_setmetatable(L, GUARD_MT);
  return g;
}

/* The op of the guard a continuation left at idx. debug.setlocal can
 * replace what a suspended C function holds on its stack, and
 * debug.getmetatable lets a script finalize the guard: raises then. */
static Op *guarded_op(lua_State *L, int idx, Guard **g, const char *fname) {
  *g = lw_toudata(L, idx, sizeof **g, GUARD_TAG);
  if (*g == NULL || (*g)->op == NULL)
    luaL_error(L, "%s: its guard was replaced or finalized", fname);
  return (*g)->op;
}

static void *xalloc(size_t n) {
  void *p = weft__valloc(NULL, 0, n);
  if (p) memset(p, 0, n);
  return p;
}

/* Raises "<fname>: <what>: <libuv message>" as an "io" error with code. */
static int raise_uv(lua_State *L, const char *fname, const char *what,
                    int code) {
  char text[128];
  snprintf(text, sizeof text, "%s", uv_strerror(code));
  if (text[0] >= 'a' && text[0] <= 'z') text[0] -= 'a' - 'A'; /* as fs's */
  lua_pushfstring(L, "%s: %s: %s", fname, what, text);
  lw_new_error(L, "io", lua_tostring(L, -1));
  lua_pushstring(L, uv_err_name(code));
  lua_setfield(L, -2, "code");
  return lua_error(L);
}

/* ------------------------------------------------------------- process */

/* About Proc: a child and its three pipes. open counts the handles not yet
 * closed; the op is done (fut settled) once the child exited and both
 * output pipes reached their end, and freed after every close callback. */
typedef struct Buf {
  char *p;
  size_t len, cap;
} Buf;

typedef struct Proc {
  Op op;
  uv_process_t proc;
  uv_pipe_t pipe[3]; /* stdin, stdout, stderr */
  uv_write_t wreq;
  Buf out[3];        /* [0] is the stdin data */
  int open, exited, eof, nomem;
  int64_t code;
  int sig;
} Proc;

static void proc_free(Op *op) {
  Proc *p = (Proc *)op;
  int i;
  for (i = 0; i < 3; i++)
    if (p->out[i].p) weft__valloc(p->out[i].p, p->out[i].cap, 0);
  weft__valloc(p, sizeof *p, 0);
}

static void on_proc_closed(uv_handle_t *h) {
  Proc *p = h->data;
  if (--p->open > 0) return;
  lw_closer_remove(&p->op.closer);
  if (p->op.orphan)
    proc_free(&p->op);
  else
    weft_future_fulfill(&p->op.fut);
}

static void close_handle(uv_handle_t *h) {
  if (h->data != NULL && !uv_is_closing(h)) uv_close(h, on_proc_closed);
}

static void maybe_done(Proc *p) {
  if (p->exited && p->eof == 2) close_handle((uv_handle_t *)&p->proc);
}

static void on_exit_cb(uv_process_t *h, int64_t status, int sig) {
  Proc *p = h->data;
  p->exited = 1;
  p->code = status;
  p->sig = sig;
  maybe_done(p);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  Proc *p = h->data;
  Buf *b = &p->out[(uv_pipe_t *)h - p->pipe];
  if (b->cap - b->len < hint) {
    size_t cap = b->cap ? b->cap * 2 : hint;
    char *np;
    while (cap - b->len < hint) cap *= 2;
    if ((np = weft__valloc(b->p, b->cap, cap)) == NULL) {
      buf->base = NULL;
      buf->len = 0; /* libuv reports UV_ENOBUFS to on_read */
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  buf->base = b->p + b->len;
  buf->len = b->cap - b->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  Proc *p = s->data;
  Buf *b = &p->out[(uv_pipe_t *)s - p->pipe];
  (void)buf;
  if (n > 0) b->len += (size_t)n;
  if (n >= 0) return;
  if (n == UV_ENOBUFS) p->nomem = 1;
  uv_read_stop(s);
  close_handle((uv_handle_t *)s);
  p->eof++;
  maybe_done(p);
}

static void on_written(uv_write_t *w, int status) {
  Proc *p = w->data;
  (void)status; /* a child that does not read its input is its business */
  close_handle((uv_handle_t *)&p->pipe[0]);
}

/* Stops the child and lets go: the pipes close now, the process handle
 * once the child's exit is seen (so it is reaped, never a zombie). */
static void proc_abandon(Op *op) {
  Proc *p = (Proc *)op;
  int i;
  op->orphan = 1;
  if (p->open == 0) { /* finished and closed: nobody took the result */
    proc_free(op);
    return;
  }
  if (!p->exited) uv_process_kill(&p->proc, SIGKILL);
  for (i = 0; i < 3; i++) close_handle((uv_handle_t *)&p->pipe[i]);
  p->eof = 2;
  maybe_done(p);
}

static void proc_closer(Closer *c) {
  Op *op = lw_container(c, Op, closer);
  op->abandon(op);
}

/* Copies the strings of the array at idx into a NULL-terminated vector
 * with first (if not NULL) in front; the strings stay on the Lua stack. */
static char **string_vector(lua_State *L, int idx, const char *first,
                            const char *fname, const char *what) {
  lua_Integer n = idx ? (lua_Integer)lua_rawlen(L, idx) : 0, i, k = 0;
  char **v = lua_newuserdatauv(L, (size_t)(n + 2) * sizeof *v, 0);
  if (first) v[k++] = (char *)first;
  for (i = 1; i <= n; i++) {
    if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
      luaL_error(L, "%s: %s[%d] must be a string, got %s", fname, what,
                 (int)i, luaL_typename(L, -1));
    v[k++] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1); /* the array keeps it alive */
  }
  v[k] = NULL;
  return v;
}

extern char **environ;

/* The child's environment: the parent's, with the names of the table at
 * idx set (a string value) or removed (false). The "name=value" strings
 * are kept in a table pushed below the vector. */
static char **env_vector(lua_State *L, int idx, const char *fname) {
  size_t n = 0, k = 0, i;
  int holder;
  char **v;
  for (i = 0; environ[i]; i++) n++;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING ||
        (lua_type(L, -1) != LUA_TSTRING && !(lua_type(L, -1) == LUA_TBOOLEAN &&
                                             !lua_toboolean(L, -1))))
      luaL_error(L, "%s: opts.env must map names to strings (or false to "
                    "remove), got %s = %s", fname, luaL_typename(L, -2),
                 luaL_typename(L, -1));
    lua_pop(L, 1);
    n++;
  }
  lua_newtable(L);
  holder = lua_gettop(L);
  v = lua_newuserdatauv(L, (n + 1) * sizeof *v, 0);
  for (i = 0; environ[i]; i++) {
    const char *eq = strchr(environ[i], '=');
    int t;
    if (eq == NULL) continue;
    lua_pushlstring(L, environ[i], (size_t)(eq - environ[i]));
    t = lua_rawget(L, idx);
    lua_pop(L, 1);
    if (t == LUA_TNIL) v[k++] = environ[i]; /* not overridden */
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
      v[k++] = (char *)lua_tostring(L, -1);
      lua_rawseti(L, holder, (lua_Integer)k);
    }
    lua_pop(L, 1);
  }
  v[k] = NULL;
  return v;
}

static void push_results(lua_State *L, Proc *p) {
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)p->code);
  lua_setfield(L, -2, "code");
  lua_pushinteger(L, p->sig);
  lua_setfield(L, -2, "signal");
  lua_pushlstring(L, p->out[1].p ? p->out[1].p : "", p->out[1].len);
  lua_setfield(L, -2, "stdout");
  lua_pushlstring(L, p->out[2].p ? p->out[2].p : "", p->out[2].len);
  lua_setfield(L, -2, "stderr");
}

/* Stack of exec while it waits: 1 cmd, 2 args, 3 opts, 4 guard. */
static int exec_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  Guard *g;
  Proc *p = (Proc *)guarded_op(L, 4, &g, "process.exec");
  if (t == NULL) return lua_yieldk(L, 0, ctx, exec_k);
  (void)st;
  if (t->status == WEFT_ECANCELED || t->status == WEFT_ETIMEDOUT) {
    g->op = NULL;
    p->op.abandon(&p->op);
    if (t->status == WEFT_ECANCELED) lw_raise_cancel(L, t);
    lua_pushfstring(L, "process.exec: %s: timed out after %I ms",
                    lua_tostring(L, 1), (lua_Integer)ctx);
    lw_new_error(L, "timeout", lua_tostring(L, -1));
    return lua_error(L);
  }
  g->op = NULL;
  if (p->nomem) {
    proc_free(&p->op);
    return luaL_error(L, "process.exec: %s: not enough memory for its output",
                      lua_tostring(L, 1));
  }
  push_results(L, p);
  proc_free(&p->op);
  return 1;
}

static const char *opt_string(lua_State *L, const char *key) {
  const char *s = NULL;
  if (lua_isnoneornil(L, 3)) return NULL;
  lua_getfield(L, 3, key);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "process.exec: opts.%s must be a string, got %s", key,
                 luaL_typename(L, -1));
    s = lua_tostring(L, -1);
  }
  return s; /* left on the stack: it stays alive until the call ends */
}

/* weft.process.exec(cmd [, args [, opts]]) -> {code, signal, stdout, stderr} */
static int l_exec(lua_State *L) {
  State *S = upstate(L);
  Task *t;
  const char *cmd = NULL, *cwd, *input;
  uv_process_options_t o;
  uv_stdio_container_t io[3];
  char **argv, **envp = NULL;
  lua_Integer tmo = 0;
  size_t inlen = 0;
  Guard *g;
  Proc *p;
  int r, i, envidx = 0;
  lua_settop(L, 3); /* absent arguments are nils */
  if (lua_type(L, 1) != LUA_TSTRING)
    return luaL_error(L, "process.exec: cmd must be a string, got %s",
                      luaL_typename(L, 1));
  cmd = lua_tostring(L, 1);
  if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    return luaL_error(L, "process.exec: args must be a table or nil, got %s",
                      luaL_typename(L, 2));
  if (!lua_isnoneornil(L, 3) && !lua_istable(L, 3))
    return luaL_error(L, "process.exec: opts must be a table or nil, got %s",
                      luaL_typename(L, 3));
  lua_settop(L, 3);
  t = lw_need_task(L, S, "process.exec");
  g = push_guard(L); /* at 4, where exec_k looks */
  cwd = opt_string(L, "cwd");
  input = opt_string(L, "stdin");
  if (input) {
    lua_getfield(L, 3, "stdin");
    lua_tolstring(L, -1, &inlen);
    lua_pop(L, 1);
  }
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "timeout_ms");
    if (!lua_isnil(L, -1)) {
      if (!lua_isinteger(L, -1) || (tmo = lua_tointeger(L, -1)) <= 0)
        return luaL_error(L, "process.exec: opts.timeout_ms must be a "
                             "positive integer, got %s",
                          lua_isinteger(L, -1) ? lua_tostring(L, -1)
                                               : luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 3, "env") != LUA_TNIL) {
      if (!lua_istable(L, -1))
        return luaL_error(L, "process.exec: opts.env must be a table, got %s",
                          luaL_typename(L, -1));
      envidx = lua_gettop(L);
    }
  }
  argv = string_vector(L, lua_istable(L, 2) ? 2 : 0, cmd, "process.exec",
                       "args");
  if (envidx) envp = env_vector(L, envidx, "process.exec");
  if ((p = xalloc(sizeof *p)) == NULL)
    return luaL_error(L, "process.exec: not enough memory");
  if (input && inlen > 0) {
    if ((p->out[0].p = weft__valloc(NULL, 0, inlen)) == NULL) {
      weft__valloc(p, sizeof *p, 0);
      return luaL_error(L, "process.exec: not enough memory");
    }
    memcpy(p->out[0].p, input, inlen);
    p->out[0].len = p->out[0].cap = inlen;
  }
  weft_future_init(&p->op.fut);
  p->op.abandon = proc_abandon;
  p->op.free = proc_free;
  p->op.closer.close = proc_closer;
  for (i = 0; i < 3; i++) {
    uv_pipe_init(S->loop->uv, &p->pipe[i], 0);
    p->pipe[i].data = p;
    p->open++;
    io[i].flags = UV_CREATE_PIPE | (i == 0 ? UV_READABLE_PIPE
                                           : UV_WRITABLE_PIPE);
    io[i].data.stream = (uv_stream_t *)&p->pipe[i];
  }
  memset(&o, 0, sizeof o);
  o.file = cmd;
  o.args = argv;
  o.env = envp;
  o.cwd = cwd;
  o.stdio = io;
  o.stdio_count = 3;
  o.exit_cb = on_exit_cb;
  if (p->out[0].len) lw_ignore_sigpipe(); /* the child may not read it */
  r = uv_spawn(S->loop->uv, &p->proc, &o);
  lw_closer_add(S, &p->op.closer);
  if (r != 0) {
    /* The pipes are open; the failed process handle must be closed too. */
    p->proc.data = p;
    p->open++;
    p->op.orphan = 1;
    p->exited = 1;
    p->eof = 2;
    for (i = 0; i < 3; i++) close_handle((uv_handle_t *)&p->pipe[i]);
    close_handle((uv_handle_t *)&p->proc);
    return raise_uv(L, "process.exec", cmd, r);
  }
  p->proc.data = p;
  p->open++;
  g->op = &p->op;
  for (i = 1; i < 3; i++)
    uv_read_start((uv_stream_t *)&p->pipe[i], on_alloc, on_read);
  if (p->out[0].len) {
    uv_buf_t b = uv_buf_init(p->out[0].p, (unsigned)p->out[0].len);
    p->wreq.data = p;
    if (uv_write(&p->wreq, (uv_stream_t *)&p->pipe[0], &b, 1, on_written))
      close_handle((uv_handle_t *)&p->pipe[0]);
  } else {
    close_handle((uv_handle_t *)&p->pipe[0]);
  }
  r = weft_task_await(&t->t, &p->op.fut, tmo ? (uint64_t)tmo : WEFT_FOREVER);
  if (r == 0) return exec_k(L, LUA_YIELD, (lua_KContext)tmo);
  if (r != WEFT_PENDING) { /* no memory for the deadline: not parked */
    g->op = NULL;
    p->op.abandon(&p->op);
    return luaL_error(L, "process.exec: not enough memory");
  }
  return lua_yieldk(L, 0, (lua_KContext)tmo, exec_k);
}

/* ----------------------------------------------------------------- dns */

/* weft.dns.resolve(host) -> {"127.0.0.1", "::1", ...} (weft_dns_resolve) */
static int l_resolve(lua_State *L) {
  State *S = upstate(L);
  const char *host;
  weft_call_t **c;
  size_t len;
  Task *t;
  lua_settop(L, 1);
  if (lua_type(L, 1) != LUA_TSTRING)
    return luaL_error(L, "dns.resolve: host must be a string, got %s",
                      luaL_typename(L, 1));
  host = lua_tolstring(L, 1, &len);
  if (len == 0) return luaL_error(L, "dns.resolve: host must not be empty");
  if (strlen(host) != len)
    return luaL_error(L, "dns.resolve: host must not contain \"\\0\"");
  t = lw_need_task(L, S, "dns.resolve");
  c = lw_call_slot(L, "dns.resolve");
  return lw_call_wait(L, t, weft_dns_resolve(S->loop, host, c));
}

void lw_open_proc(lua_State *L, State *S) {
  luaL_newmetatable(L, GUARD_MT);
  lw_protect_mt(L, GUARD_MT);
  lua_pushcfunction(L, guard_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lw_push_state(L, S);
  lua_pushcclosure(L, l_exec, 1);
  lua_setfield(L, -2, "process_exec");
  lw_push_state(L, S);
  lua_pushcclosure(L, l_resolve, 1);
  lua_setfield(L, -2, "dns_resolve");
}
