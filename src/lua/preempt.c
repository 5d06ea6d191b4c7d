/*
 * preempt.c - preemption of Lua tasks that run too long without waiting
 * (Lua binding).
 * SPDX-License-Identifier: MIT
 *
 * A hook that fires every n instructions would make every instruction
 * slower (Lua checks for hooks on each one while a count hook is set), so
 * none is set until it is needed. A watchdog thread looks at the running
 * resume once per slice; when the same resume is still running a slice
 * later, it sends SIGURG to the loop thread, whose handler sets a count
 * hook of 1 on the task's coroutine (lua_sethook may be called from a
 * signal handler: lua.c does it for Ctrl-C). At the next instruction the
 * hook yields; the driver (task_fn) makes the task sleep 0 ms, behind the
 * timers that came due meanwhile, and ends the scheduler's run so that
 * the loop fires them.
 * Where the task cannot yield (inside a C function that calls Lua, such
 * as a string.gsub callback), the hook takes itself off and the next
 * signal, a slice later, tries again.
 *
 * Costs: lua_sethook with a mask marks every call frame of the coroutine
 * (Lua 5.4's settraps walks them all, about 3 instructions a frame), so
 * the handler calls it once per signal, and not when the hook is set
 * already. Setting it again every 1000 instructions while the task could
 * not yield made a deep recursion inside a callback quadratic; leaving a
 * count hook set to retry would make Lua count every instruction (2.7
 * times slower).
 *
 * The hook stays set while a preempted task is suspended. A hook that
 * yielded leaves a mark on its frame that only the next count or line
 * event takes off (without calling a hook); with no hook set at the
 * resume, the mark stayed and ate the first event of a hook the script
 * set later in that frame. So the mark goes at the resume, and the hook
 * takes itself off at the instruction after: only that one instruction
 * runs with weft's hook set (debug.gethook there reports it).
 *
 * Cancellation: a task cancelled while preempted is resumed with the
 * hook still set, so the hook raises its cancellation error after one
 * instruction, with no further lua_sethook (if the task cannot yield
 * there, at the resume after its next preemption). Raising instead of
 * yielding when a signal comes would stop a task that catches the error
 * from ever yielding again; this way it is preempted again, and gets the
 * error again at each such resume.
 */
#define _POSIX_C_SOURCE 200809L /* pthread_kill, sigaction */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include <uv.h>

/* core.h for weft__sched_alloc: the preemption record comes from the
 * state's allocator, which only the scheduler holds. */
#include "core.h"
#include "lweft.h"

/* About Preempt: one per state with preemption on. running is the number
 * of the resume in progress (count, from 1), 0 between resumes: the loop
 * thread writes it, the watchdog reads it. target and due are shared
 * with the signal handler, which runs on the loop thread: due is set
 * when the slice of the current resume is over, and cleared when the
 * hook yields (or a new resume starts). mu guards stop, which cv
 * announces. */
struct Preempt {
  State *S;
  uv_thread_t watchdog;
  uv_mutex_t mu;
  uv_cond_t cv;
  int stop;
  pthread_t loop;
  uint64_t slice_ns;
  atomic_ulong running;
  unsigned long count;
  lua_State *volatile target; /* the task's coroutine while it runs */
  volatile sig_atomic_t due;
  int jit_off; /* LuaJIT's compiler was turned off for this: see jit */
};

/* The loop thread's Preempt while it resumes a task (NULL between
 * resumes), for the handler and the hook. */
static _Thread_local Preempt *volatile tl_pre;

static void hook(lua_State *L, lua_Debug *ar);

/* Takes the hook off L; sets it again if a signal asked for a yield
 * meanwhile (the handler may have run inside this hook). */
static void disarm(lua_State *L, Preempt *p) {
  lua_sethook(L, NULL, 0, 0);
  if (p->due) lua_sethook(L, hook, LUA_MASKCOUNT, 1);
}

/* Fires, set with a count of 1, in the running task's coroutine when the
 * handler asked for a yield (due), and at the first instruction after a
 * resume that follows a preemption. */
static void hook(lua_State *L, lua_Debug *ar) {
  Preempt *p = tl_pre;
  Task *t;
  (void)ar;
  if (p == NULL || L != p->target) { /* a coroutine that copied the hook */
#if LW_LUA51
    /* LuaJIT has one hook for all coroutines: the target's is this one. */
    if (p != NULL && lw_is_luajit()) return;
#endif
    lua_sethook(L, NULL, 0, 0);
    return;
  }
  t = p->S->current;
  if (!p->due && !(t->t.flags & WEFT_TASK_CANCEL)) {
    disarm(L, p); /* after a resume: the mark is gone */
    return;
  }
  if (!lua_isyieldable(L)) { /* inside a C call: the next signal retries */
    p->due = 0;
    disarm(L, p);
    return;
  }
  if (!p->due) { /* resumed cancelled after a preemption */
    lua_sethook(L, NULL, 0, 0);
    lw_raise_cancel(L, t);
  }
  p->due = 0; /* the hook stays set while suspended: see the header */
  p->S->preemptions++;
  p->S->preempted = 1; /* task_fn: end the scheduler's run */
  lua_yield(L, 0); /* must be the hook's last call */
}

/* A coroutine with a debug hook of its own (a debugger, a profiler, a
 * coverage tool) keeps it and is not preempted. Where the hook is set
 * already, due is enough. This handler may interrupt the loop thread's
 * own lua_sethook on co, leaving a mix of the two: whatever the mix, the
 * next signal sees no hook, or weft's with no mask, and sets it again. */
static void on_signal(int sig) {
  Preempt *p = tl_pre;
  lua_State *co;
  lua_Hook h;
  (void)sig;
  if (p == NULL || (co = p->target) == NULL) return; /* between resumes */
  h = lua_gethook(co);
  if (h != NULL && h != hook) return;
  p->due = 1;
  if (h == NULL || lua_gethookmask(co) == 0)
    lua_sethook(co, hook, LUA_MASKCOUNT, 1);
}

static void watchdog(void *arg) {
  Preempt *p = arg;
  unsigned long seen = 0, now;
  uv_mutex_lock(&p->mu);
  while (!p->stop) {
    uv_cond_timedwait(&p->cv, &p->mu, p->slice_ns);
    if (p->stop) break;
    now = atomic_load_explicit(&p->running, memory_order_relaxed);
    if (now != 0 && now == seen) pthread_kill(p->loop, SIGURG);
    seen = now;
  }
  uv_mutex_unlock(&p->mu);
}

static uv_once_t handler_once = UV_ONCE_INIT;
static int handler_err;

static void install_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART; /* system calls the signal interrupts go on */
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGURG, &sa, NULL) != 0) handler_err = 1;
}

static void stop_watchdog(Preempt *p) {
  uv_mutex_lock(&p->mu);
  p->stop = 1;
  uv_cond_signal(&p->cv);
  uv_mutex_unlock(&p->mu);
  uv_thread_join(&p->watchdog);
  uv_cond_destroy(&p->cv);
  uv_mutex_destroy(&p->mu);
}

/* LuaJIT runs no debug hook inside the code it compiles, where a task
 * that computes spends its time: while preemption is on, LuaJIT's
 * compiler is off (what it had compiled is flushed), and it is turned
 * back on with preemption. luaJIT_setmode is found at run time (the
 * module built on 5.1 serves both). Returns whether it was turned off. */
static int jit(lua_State *L, int on) {
#if LW_LUA51
  int (*setmode)(lua_State *, int, int) =
      (int (*)(lua_State *, int, int))dlsym(RTLD_DEFAULT, "luaJIT_setmode");
  /* LUAJIT_MODE_ENGINE, with LUAJIT_MODE_ON or LUAJIT_MODE_OFF */
  return setmode != NULL && setmode(L, 0, on ? 0x0100 : 0x0000) != 0;
#else
  (void)L;
  (void)on;
  return 0;
#endif
}

void lw_preempt_free(State *S) {
  Preempt *p = S->pre;
  if (p == NULL) return;
  S->pre = NULL;
  stop_watchdog(p);
  weft__sched_alloc(S->sched, p, sizeof *p, 0);
}

int weft_lua_set_preempt(lua_State *L, unsigned slice_ms) {
  State *S;
  Preempt *p;
  if (L == NULL) return WEFT_EINVAL; /* misuse: see weft_lua.h */
  S = lw_open_state(L);
  if (S->current != NULL) return WEFT_ESTATE; /* not from inside a task */
  /* The compiler back on with preemption off (not when the state
   * closes: lw_preempt_free then, and LuaJIT is ending). */
  if (S->pre && S->pre->jit_off) jit(S->home, 1);
  lw_preempt_free(S);
  if (slice_ms == 0) return 0;
  uv_once(&handler_once, install_handler);
  if (handler_err) return WEFT_EINVAL;
  p = weft__sched_alloc(S->sched, NULL, 0, sizeof *p);
  if (p == NULL) return WEFT_ENOMEM;
  memset(p, 0, sizeof *p);
  p->S = S;
  p->loop = pthread_self();
  p->slice_ns = (uint64_t)slice_ms * 1000000u;
  atomic_init(&p->running, 0);
  if (uv_mutex_init(&p->mu) != 0) goto fail;
  if (uv_cond_init(&p->cv) != 0) {
    uv_mutex_destroy(&p->mu);
    goto fail;
  }
  if (uv_thread_create(&p->watchdog, watchdog, p) != 0) {
    uv_cond_destroy(&p->cv);
    uv_mutex_destroy(&p->mu);
    goto fail;
  }
  S->pre = p;
  p->jit_off = jit(S->home, 0);
  return 0;
fail:
  weft__sched_alloc(S->sched, p, sizeof *p, 0);
  return WEFT_ENOMEM;
}

/* weft.preempt(ms): ms > 0 turns preemption on with that slice, 0 off. */
int lw_l_preempt(lua_State *L) {
  lua_Integer ms = 0;
  int r;
  if (!lua_isnoneornil(L, 1)) {
    int isint;
    ms = lua_tointegerx(L, 1, &isint);
    if (!isint || ms < 0 || ms > 60000)
      return luaL_error(L, "weft.preempt: ms must be an integer from 0 to "
                           "60000, got %s", luaL_tolstring(L, 1, NULL));
  }
  r = weft_lua_set_preempt(L, (unsigned)ms);
  if (r == WEFT_ESTATE)
    return luaL_error(L, "weft.preempt: not from inside a task (call it "
                         "before weft.run)");
  if (r != 0) return luaL_error(L, "weft.preempt: %s", weft_strerror(r));
  return 0;
}

void lw_preempt_begin(Preempt *p, lua_State *co) {
  tl_pre = p;
  p->due = 0;
  atomic_signal_fence(memory_order_seq_cst);
  p->target = co;
  atomic_store_explicit(&p->running, ++p->count, memory_order_relaxed);
}

/* From here the handler does nothing. A preempted task keeps the hook
 * (see the header); otherwise a hook set before is taken off (it did not
 * fire, or a signal came after it had). */
/* A task's nested coroutine runs (task.c, co_enter): the signal now
 * aims at it, or at nothing (NULL) where it cannot yield. */
void lw_preempt_retarget(Preempt *p, lua_State *co) {
  lua_State *old = p->target;
  atomic_signal_fence(memory_order_seq_cst);
  p->target = co;
  atomic_signal_fence(memory_order_seq_cst);
  if (old && old != co && lua_gethook(old) == hook)
    lua_sethook(old, NULL, 0, 0);
  if (p->due && co) lua_sethook(co, hook, LUA_MASKCOUNT, 1);
}

void lw_preempt_end(Preempt *p, lua_State *co) {
  lua_State *tg = p->target;
  p->target = NULL;
  atomic_signal_fence(memory_order_seq_cst);
  if (!p->S->preempted && lua_gethook(co) == hook)
    lua_sethook(co, NULL, 0, 0);
  if (tg && tg != co && !p->S->preempted && lua_gethook(tg) == hook)
    lua_sethook(tg, NULL, 0, 0);
  tl_pre = NULL;
  atomic_store_explicit(&p->running, 0, memory_order_relaxed);
}
