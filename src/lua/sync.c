/*
 * sync.c - channels, semaphores and groups for Lua tasks (Lua binding).
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <string.h>

#include "lweft.h"

/* ------------------------------------------------------------- channels */

/* About Chan: the core channel carries keys into the userdata's
 * uservalue table, which holds the Lua values in flight. A value is stored
 * under the next key (seq) before it enters the channel and removed when a
 * receiver takes it out (or the send fails). Keys count up to KEY_MAX;
 * after that (wrapped) a key still in use is skipped: a sender parked
 * with its value while 2^32 failing try_sends pass (a 32-bit host) keeps
 * its value. */
typedef struct Chan {
  const char *tag; /* CHAN_TAG: see About userdata tags */
  weft_chan_t ch;
  State *S; /* NULL until made, and once finalized */
  uintptr_t seq;
  int wrapped;
} Chan;

static const char CHAN_TAG[] = CHAN_MT, SEM_TAG[] = SEM_MT,
                  GROUP_TAG[] = GROUP_MT;

/* The largest key: both a uintptr_t (the core's item) and a lua_Integer. */
#define KEY_MAX                                          \
  ((uintmax_t)UINTPTR_MAX < (uintmax_t)LUA_MAXINTEGER     \
       ? (uintmax_t)UINTPTR_MAX                          \
       : (uintmax_t)LUA_MAXINTEGER)

/* The channel at 1, live: also checked again by the continuations, as
 * debug.setlocal can replace what a suspended C function has on its
 * stack. */
static Chan *checkchan(lua_State *L, const char *fname) {
  Chan *c = lw_checkudata(L, 1, sizeof *c, CHAN_TAG, fname);
  if (c->S == NULL) luaL_error(L, "%s: the channel was finalized", fname);
  return c;
}

/* Pushes the channel's table of values in flight, its user value (which
 * debug.setuservalue can replace). */
static void push_slots(lua_State *L, const char *fname) {
  if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE)
    luaL_error(L, "%s: the channel's user value was replaced", fname);
}

/* weft.channel([capacity]) -> channel. Capacity 0 (the default) makes a
 * rendezvous channel: send waits for a receiver. */
static int l_channel(lua_State *L) {
  State *S = upstate(L);
  lua_Integer cap = luaL_optinteger(L, 1, 0);
  Chan *c;
  int r;
  if (cap < 0 || cap > 0x7fffffff)
    return luaL_error(L, "weft.channel: capacity must be an integer from 0 "
                         "to 2^31-1, got " LW_I, LW_INT(cap));
  c = lua_newuserdatauv(L, sizeof *c, 1);
  memset(c, 0, sizeof *c);
  c->tag = CHAN_TAG;
  luaL_setmetatable(L, CHAN_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  r = weft_chan_init(S->sched, &c->ch, (size_t)cap, sizeof(uintptr_t));
  if (r != 0)
    return luaL_error(L, "weft.channel: %s", weft_strerror(r));
  c->S = S;
  return 1;
}

/* Stores the value at idx in the channel's table; returns its key. */
static uintptr_t put(lua_State *L, Chan *c, int idx, const char *fname) {
  uintptr_t key;
  push_slots(L, fname);
  for (;;) {
    if ((uintmax_t)c->seq >= KEY_MAX) {
      c->seq = 0;
      c->wrapped = 1;
    }
    key = ++c->seq;
    if (!c->wrapped) break;
    if (lua_rawgeti(L, -1, (lua_Integer)key) == LUA_TNIL) {
      lua_pop(L, 1);
      break;
    }
    lua_pop(L, 1);
  }
  lua_pushvalue(L, idx);
  lua_rawseti(L, -2, (lua_Integer)key);
  lua_pop(L, 1);
  return key;
}

static void drop(lua_State *L, uintptr_t key, const char *fname) {
  push_slots(L, fname);
  lua_pushnil(L);
  lua_rawseti(L, -2, (lua_Integer)key);
  lua_pop(L, 1);
}

/* Pushes the value under key and removes it from the table. */
static int take(lua_State *L, uintptr_t key, const char *fname) {
  push_slots(L, fname);
  lua_rawgeti(L, -1, (lua_Integer)key);
  lua_pushnil(L);
  lua_rawseti(L, -3, (lua_Integer)key);
  lua_remove(L, -2);
  return 1;
}

static int closed_error(lua_State *L, const char *fname) {
  lw_new_error(L, "closed", lua_pushfstring(L, "%s: channel is closed", fname));
  return lua_error(L);
}

static int send_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  if (t == NULL) return lw_yield(L, ctx, send_k);
  (void)st;
  (void)ctx;
  if (t->status == 0) return 0;
  checkchan(L, "ch:send");
  drop(L, t->t.item, "ch:send"); /* not taken */
  if (t->status == WEFT_ECANCELED) lw_raise_cancel(L, t);
  return closed_error(L, "ch:send");
}

/* ch:send(v): waits while the channel is full; raises if it is closed. */
static int ch_send(lua_State *L) {
  State *S = upstate(L);
  Chan *c = checkchan(L, "ch:send");
  Task *t;
  int r;
  if (lua_isnoneornil(L, 2))
    return luaL_error(L, "ch:send: cannot send nil");
  t = lw_need_task(L, S, "ch:send");
  lua_settop(L, 2);
  t->t.item = put(L, c, 2, "ch:send");
  r = weft_chan_send(&c->ch, &t->t, &t->t.item);
  if (r == WEFT_PENDING) return lw_yield(L, 0, send_k);
  if (r == 0) return 0;
  drop(L, t->t.item, "ch:send");
  return closed_error(L, "ch:send");
}

static int recv_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  if (t == NULL) return lw_yield(L, ctx, recv_k);
  (void)st;
  (void)ctx;
  if (t->status == 0) {
    checkchan(L, "ch:recv");
    return take(L, t->t.item, "ch:recv");
  }
  if (t->status == WEFT_ECANCELED) lw_raise_cancel(L, t);
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

/* ch:recv() -> v, or nil, "closed" once closed and drained */
static int ch_recv(lua_State *L) {
  State *S = upstate(L);
  Chan *c = checkchan(L, "ch:recv");
  Task *t = lw_need_task(L, S, "ch:recv");
  int r;
  lua_settop(L, 1);
  r = weft_chan_recv(&c->ch, &t->t, &t->t.item);
  if (r == WEFT_PENDING) return lw_yield(L, 0, recv_k);
  if (r == 0) return take(L, t->t.item, "ch:recv");
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

/* ch:try_send(v) -> true, or false, "full" | "closed" */
static int ch_try_send(lua_State *L) {
  Chan *c = checkchan(L, "ch:try_send");
  uintptr_t ref;
  int r;
  if (lua_isnoneornil(L, 2))
    return luaL_error(L, "ch:try_send: cannot send nil");
  lua_settop(L, 2);
  ref = put(L, c, 2, "ch:try_send");
  r = weft_chan_try_send(&c->ch, &ref);
  if (r == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  drop(L, ref, "ch:try_send");
  lua_pushboolean(L, 0);
  lua_pushstring(L, r == WEFT_ECLOSED ? "closed" : "full");
  return 2;
}

/* ch:try_recv() -> v, or nil, "empty" | "closed" */
static int ch_try_recv(lua_State *L) {
  Chan *c = checkchan(L, "ch:try_recv");
  uintptr_t ref;
  int r;
  lua_settop(L, 1);
  r = weft_chan_try_recv(&c->ch, &ref);
  if (r == 0) return take(L, ref, "ch:try_recv");
  lua_pushnil(L);
  lua_pushstring(L, r == WEFT_ECLOSED ? "closed" : "empty");
  return 2;
}

/* ch:close(): idempotent */
static int ch_close(lua_State *L) {
  weft_chan_close(&checkchan(L, "ch:close")->ch);
  return 0;
}

/* ch:count() -> number of buffered values */
static int ch_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)weft_chan_count(&checkchan(L, "ch:count")->ch));
  return 1;
}

/* __gc. A script can call it (debug.getmetatable), on anything, and on a
 * live channel: its waiters are unlinked and it cannot be used again. */
static int ch_gc(lua_State *L) {
  Chan *c = lw_toudata(L, 1, sizeof *c, CHAN_TAG);
  if (c == NULL) return 0;
  if (c->S) weft_chan_free(&c->ch);
  c->S = NULL;
  return 0;
}

/* ----------------------------------------------------------- semaphores */

typedef struct Sem {
  const char *tag; /* SEM_TAG: see About userdata tags */
  weft_sem_t sem;
  size_t permits;
} Sem;

static Sem *checksem(lua_State *L, const char *fname) {
  return lw_checkudata(L, 1, sizeof(Sem), SEM_TAG, fname);
}

/* __gc: only a semaphore that a waiting task no longer holds on its stack
 * (debug.setlocal) can be collected with tasks in its list, or one a
 * script finalizes itself (debug.getmetatable): the waiters are unlinked,
 * so no task points into freed memory; they wait until cancelled. */
static int sem_gc(lua_State *L) {
  Sem *s = lw_toudata(L, 1, sizeof *s, SEM_TAG);
  if (s == NULL) return 0;
  while (s->sem.waiters.next != &s->sem.waiters)
    weft_waiter_remove((weft_waiter_t *)s->sem.waiters.next); /* first */
  return 0;
}

/* weft.semaphore(n) -> semaphore with n permits */
static int l_semaphore(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  Sem *s;
  if (n < 0)
    return luaL_error(L, "weft.semaphore: permits must be >= 0, got " LW_I,
                      LW_INT(n));
  s = lua_newuserdatauv(L, sizeof *s, 0);
  s->tag = SEM_TAG;
  weft_sem_init(&s->sem, (size_t)n);
  s->permits = (size_t)n;
  luaL_setmetatable(L, SEM_MT);
  return 1;
}

/* s:acquire(): waits for a permit */
static int sem_acquire(lua_State *L) {
  State *S = upstate(L);
  Sem *s = checksem(L, "sem:acquire");
  Task *t = lw_need_task(L, S, "sem:acquire");
  if (weft_sem_acquire(&s->sem, &t->t) == 0) return 0;
  return lw_yield(L, 0, lw_wake_k);
}

/* s:try_acquire() -> true if a permit was taken */
static int sem_try_acquire(lua_State *L) {
  Sem *s = checksem(L, "sem:try_acquire");
  lua_pushboolean(L, weft_sem_try_acquire(&s->sem) == 0);
  return 1;
}

/* s:release(): gives a permit back (to the longest waiter first) */
static int sem_release(lua_State *L) {
  Sem *s = checksem(L, "sem:release");
  if (s->sem.count >= s->permits && weft_sem_waiting(&s->sem) == 0)
    return luaL_error(L, "sem:release: released more permits than acquired");
  weft_sem_release(&s->sem);
  return 0;
}

/* s:available() -> free permits */
static int sem_available(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)checksem(L, "sem:available")->sem.count);
  return 1;
}

/* --------------------------------------------------------------- groups */

/* About Group: a core join set with fail-fast. A member that ends while
 * in the group stays anchored in the registry (its gref: see end_task)
 * until the group hands it out, through g:join_next, g:try_join or the
 * drain, or lets it go (group_gc): the core's lists point at it, so
 * nothing a script can replace may be what keeps it alive. Uservalue 1
 * holds the first failed member once handed out, for weft.group to raise.
 * closed is set when weft.group has drained it: it takes no new members
 * then. */
typedef struct Group {
  const char *tag; /* GROUP_TAG: see About userdata tags */
  weft_group_t g;
  State *S; /* NULL once finalized */
  int closed;
} Group;

/* The group at 1, live (also checked again by continuations: see
 * checkchan). */
static Group *checkgroup(lua_State *L, const char *fname) {
  Group *g = lw_checkudata(L, 1, sizeof *g, GROUP_TAG, fname);
  if (g->S == NULL) luaL_error(L, "%s: the group was finalized", fname);
  return g;
}

/* internal.group_new() -> group */
static int l_group_new(lua_State *L) {
  Group *g = lua_newuserdatauv(L, sizeof *g, 1);
  g->tag = GROUP_TAG;
  weft_group_init(&g->g, WEFT_GROUP_FAIL_FAST);
  g->S = upstate(L);
  g->closed = 0;
  luaL_setmetatable(L, GROUP_MT);
  return 1;
}

/* g:spawn([opts,] fn, ...) -> Task, a child of the calling task and a
 * member of g. All or nothing: lw_spawn raises before it starts the task,
 * and a script that closed or replaced the group from an opts metamethod
 * gets the task cancelled before it ever runs, and an error. */
static int group_spawn(lua_State *L) {
  State *S = upstate(L);
  Group *g = checkgroup(L, "g:spawn");
  Task *t;
  if (g->closed) return luaL_error(L, "g:spawn: the group has ended");
  lw_spawn(L, S, 2, "g:spawn");
  t = lua_touserdata(L, -1);
  if (lw_toudata(L, 1, sizeof *g, GROUP_TAG) != g || g->closed) {
    weft_task_cancel(&t->t); /* it has not run: it never will */
    return luaL_error(L, "g:spawn: the group was replaced or has ended");
  }
  weft_group_add(&g->g, &t->t); /* cannot fail: t is new */
  return 1;
}

static Task *member_task(weft_task_t *m) {
  return (Task *)((char *)m - offsetof(Task, t));
}

/* Pushes the ended member m, which the group has handed out, and drops
 * its anchor; the first failed one is kept for weft.group to raise. */
static Fut *push_member(lua_State *L, Group *g, weft_task_t *m) {
  Task *t = member_task(m);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->gref);
  luaL_unref(L, LUA_REGISTRYINDEX, t->gref);
  t->gref = LUA_NOREF;
  if (m == weft_group_failed(&g->g)) {
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, 1);
  }
  return &t->h;
}

/* The outcome of member m as true, values... or false, err. */
static int member_outcome(lua_State *L, Group *g, weft_task_t *m) {
  int top = lua_gettop(L);
  push_member(L, g, m)->observed = 1;
  if (m->done.state == WEFT_FUTURE_FULFILLED) {
    lua_pushboolean(L, 1);
    lua_insert(L, -2);
    lw_push_outcome(L, top + 2);
    lua_remove(L, top + 2);
    return lua_gettop(L) - top;
  }
  lua_pushboolean(L, 0);
  if (m->done.state == WEFT_FUTURE_REJECTED)
    lua_getiuservalue(L, top + 1, UV_RESULT);
  else
    lw_push_cancel_error(L, top + 1);
  lua_remove(L, top + 1);
  return 2;
}

static int join_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  if (t == NULL) return lw_yield(L, ctx, join_k);
  (void)st;
  (void)ctx;
  if (t->status == WEFT_ECANCELED) lw_raise_cancel(L, t);
  if (t->status != 0) return 0; /* the group was cleared */
  return member_outcome(L, checkgroup(L, "g:join_next"), t->u.joined);
}

/* g:join_next() -> true, values... | false, err for the next child to end,
 * or nothing when no child is left. */
static int group_join_next(lua_State *L) {
  State *S = upstate(L);
  Group *g = checkgroup(L, "g:join_next");
  Task *t = lw_need_task(L, S, "g:join_next");
  int r;
  lua_settop(L, 1);
  r = weft_group_join(&g->g, &t->t, &t->u.joined);
  if (r == WEFT_PENDING) return lw_yield(L, 0, join_k);
  if (r != 0) return 0;
  return member_outcome(L, g, t->u.joined);
}

/* g:try_join() -> what g:join_next() returns for a child that has ended
 * (true, values... | false, err), nil, "running" when children run but
 * none has ended, or nothing when no child is left. Waits for nothing, so
 * it works anywhere, and a cancellation of the caller does not raise. */
static int group_try_join(lua_State *L) {
  Group *g = checkgroup(L, "g:try_join");
  weft_task_t *m;
  int r;
  lua_settop(L, 1);
  r = weft_group_try_join(&g->g, &m);
  if (r == WEFT_EEMPTY) {
    lua_pushnil(L);
    lua_pushliteral(L, "running");
    return 2;
  }
  if (r != 0) return 0;
  return member_outcome(L, g, m);
}

/* g:cancel(): cancels every running child */
static int group_cancel(lua_State *L) {
  weft_group_cancel(&checkgroup(L, "g:cancel")->g);
  return 0;
}

/* g:size() -> children not yet joined */
static int group_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)weft_group_size(&checkgroup(L, "g:size")->g));
  return 1;
}

static void drained(lua_State *L, Group *g, weft_task_t *m) {
  Fut *f = push_member(L, g, m);
  if (m != weft_group_failed(&g->g)) f->observed = 1;
  lua_pop(L, 1);
}

static int drain_loop(lua_State *L, Group *g, Task *t);

/* A cancellation does not stop the drain: the children were cancelled
 * with the task, and weft.group must still wait for them to end. */
static int drain_k(lua_State *L, int st, lua_KContext ctx) {
  Task *t = lw_k_task(L);
  Group *g = checkgroup(L, "weft.group");
  if (t == NULL) return lw_yield(L, ctx, drain_k);
  (void)st;
  (void)ctx;
  if (t->status == 0) drained(L, g, t->u.joined);
  return drain_loop(L, g, t);
}

static int drain_loop(lua_State *L, Group *g, Task *t) {
  Fut *f;
  for (;;) {
    int r = weft_group_join(&g->g, &t->t, &t->u.joined);
    if (r == WEFT_PENDING) return lw_yield(L, 0, drain_k);
    if (r != 0) break;
    drained(L, g, t->u.joined);
  }
  g->closed = 1;
  lua_getiuservalue(L, 1, 1); /* the failed child, if not handed out */
  f = lw_tofut(L, g->S, -1); /* not one if debug.setuservalue put it */
  if (f == NULL || f->observed) lua_pushnil(L);
  return 1;
}

/* g:_drain() -> the failed child not yet observed, or nil, once every
 * child has ended. Ignores the caller's cancellation (see drain_k). */
static int group_drain(lua_State *L) {
  State *S = upstate(L);
  Group *g = checkgroup(L, "g:_drain");
  Task *t = lw_in_task(L, S, "weft.group");
  lua_settop(L, 1);
  return drain_loop(L, g, t);
}

/* __gc (see ch_gc): the members are let go; the group cannot be used
 * again. */
static int group_gc(lua_State *L) {
  Group *g = lw_toudata(L, 1, sizeof *g, GROUP_TAG);
  weft_task_t *m;
  if (g == NULL) return 0;
  while (weft_group_try_join(&g->g, &m) == 0) {
    Task *t = member_task(m);
    luaL_unref(L, LUA_REGISTRYINDEX, t->gref);
    t->gref = LUA_NOREF;
  }
  weft_group_clear(&g->g);
  g->S = NULL;
  return 0;
}

static const luaL_Reg chan_methods[] = {
    {"send", ch_send}, {"recv", ch_recv}, {"try_send", ch_try_send},
    {"try_recv", ch_try_recv}, {"close", ch_close}, {"count", ch_count},
    {NULL, NULL}};

static const luaL_Reg sem_methods[] = {
    {"acquire", sem_acquire}, {"try_acquire", sem_try_acquire},
    {"release", sem_release}, {"available", sem_available}, {NULL, NULL}};

static const luaL_Reg group_methods[] = {
    {"spawn", group_spawn}, {"join_next", group_join_next},
    {"try_join", group_try_join}, {"cancel", group_cancel},
    {"size", group_size}, {"_drain", group_drain},
    {NULL, NULL}};

/* Creates metatable tname, protected, whose __index is a table of
 * methods (with the state as upvalue), stored as internal[field] for the
 * prelude. Expects [weft, internal] on top. */
static void new_class(lua_State *L, State *S, const char *tname,
                      const luaL_Reg *methods, lua_CFunction gc,
                      const char *field, const char *const *waits) {
  luaL_newmetatable(L, tname);
  lw_protect_mt(L, tname);
  lua_newtable(L);
  lw_push_state(L, S);
  luaL_setfuncs(L, methods, 1);
  lw_wrap_fields(L, -1, waits);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, field);
  lua_setfield(L, -2, "__index");
  if (gc) {
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}

void lw_open_sync(lua_State *L, State *S) {
  new_class(L, S, CHAN_MT, chan_methods, ch_gc, "chan_methods",
            (const char *const[]){"send", "recv", NULL});
  new_class(L, S, SEM_MT, sem_methods, sem_gc, "sem_methods",
            (const char *const[]){"acquire", NULL});
  new_class(L, S, GROUP_MT, group_methods, group_gc, "group_methods",
            (const char *const[]){"join_next", "_drain", NULL});
  lw_push_state(L, S);
  lua_pushcclosure(L, l_group_new, 1);
  lua_setfield(L, -2, "group_new");
  lw_push_state(L, S);
  lua_pushcclosure(L, l_channel, 1);
  lua_setfield(L, -3, "channel");
  lw_push_state(L, S);
  lua_pushcclosure(L, l_semaphore, 1);
  lua_setfield(L, -3, "semaphore");
}
