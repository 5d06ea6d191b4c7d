/*
 * post.c - host references to script functions and channels, called and
 * fed from any thread: each call runs the function as a new task on the
 * loop thread (Lua binding).
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>

#include "lweft.h"
/* host.h, not just weft.h: a reference and its calls come from the
 * process-wide value allocator (weft__valloc), since any thread may free
 * them, and refs guard their loop pointer with a uv mutex. */
#include "host.h"

/* About Link: what a state's references share with it, so that a
 * reference may outlive the state. loop is the state's loop while the
 * state is open and NULL once it closes, guarded by mu: a reference
 * posts only while holding mu and seeing loop set, and the state clears
 * it under mu before it frees the loop, so no post reaches a freed loop.
 * S is read on the loop thread only, by posts that run (not cancelled),
 * hence while the state is open. refs counts the holders: the open state
 * and each live reference; the last to go frees the link (acq_rel, as
 * weft_call_unref). */
typedef struct Link {
  uv_mutex_t mu;
  atomic_long refs;
  weft_loop_t *loop; /* guarded by mu */
  State *S;
} Link;

/* About weft_lua_ref_t: fn is a registry reference to the function (for
 * a channel, a closure that sends on it), made and released on the loop
 * thread. release is the post weft_lua_unref sends, so that releasing
 * needs no memory. A reference holds one weft_loop_ref hold from its
 * making until its release runs. */
struct weft_lua_ref_s {
  Link *link;
  int fn;
  weft_post_t release;
};

/* About Later: one weft_lua_call_later, from the value allocator: the
 * post and the arguments it carries to the loop thread. */
typedef struct Later {
  weft_post_t post;
  weft_lua_ref_t *ref;
  weft_value_t args; /* an array, or nil for none */
} Later;

static void link_unref(Link *k) {
  if (atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1)
    return;
  uv_mutex_destroy(&k->mu);
  weft__valloc(k, sizeof *k, 0);
}

static Link *link_get(State *S) {
  Link *k = S->link;
  if (k) return k;
  if ((k = weft__valloc(NULL, 0, sizeof *k)) == NULL) return NULL;
  if (uv_mutex_init(&k->mu) != 0) {
    weft__valloc(k, sizeof *k, 0);
    return NULL;
  }
  atomic_init(&k->refs, 1); /* the state's */
  k->loop = S->loop;
  k->S = S;
  return S->link = k;
}

void lw_post_close(State *S) {
  Link *k = S->link;
  if (k == NULL) return;
  S->link = NULL;
  uv_mutex_lock(&k->mu);
  k->loop = NULL;
  uv_mutex_unlock(&k->mu);
  link_unref(k);
}

/* Posts p through k's loop, or WEFT_ECLOSED once the state closed. */
static int link_post(Link *k, weft_post_t *p, weft_post_cb cb) {
  int r = WEFT_ECLOSED;
  uv_mutex_lock(&k->mu);
  if (k->loop) r = weft_loop_post(k->loop, p, cb);
  uv_mutex_unlock(&k->mu);
  return r;
}

/* Makes a reference to the value at idx. luaL_ref, which may raise, comes
 * first: nothing is held yet. */
static int make_ref(lua_State *L, State *S, int idx, weft_lua_ref_t **out) {
  Link *k = link_get(S);
  weft_lua_ref_t *r;
  int fn;
  if (k == NULL) return WEFT_ENOMEM;
  lua_pushvalue(L, idx);
  fn = luaL_ref(L, LUA_REGISTRYINDEX);
  if ((r = weft__valloc(NULL, 0, sizeof *r)) == NULL) {
    luaL_unref(L, LUA_REGISTRYINDEX, fn);
    return WEFT_ENOMEM;
  }
  atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
  r->link = k;
  r->fn = fn;
  weft_loop_ref(S->loop);
  *out = r;
  return 0;
}

int weft_lua_ref_fn(lua_State *L, int idx, weft_lua_ref_t **out) {
  if (out) *out = NULL;
  if (L == NULL || out == NULL || lua_type(L, idx) != LUA_TFUNCTION)
    return WEFT_EINVAL;
  idx = lua_absindex(L, idx);
  return make_ref(L, lw_open_state(L), idx, out);
}

#if LW_LUA51
/* 5.1 has no continuation for a call: the feed function is Lua there. */
static const char feed_src[] =
    "local send, ch = ...\n"
    "return function(v) send(ch, v) end\n";

static void push_feed(lua_State *L) {
  if (luaL_loadbuffer(L, feed_src, sizeof feed_src - 1, "=weft.feed"))
    lua_error(L);
  lua_insert(L, -3);
  lua_call(L, 2, 1);
}
#else
static int feed_k(lua_State *L, int st, lua_KContext ctx) {
  (void)L;
  (void)st;
  (void)ctx;
  return 0;
}

/* The function of a channel reference: feed(v) is ch:send(v), with the
 * send method and the channel as upvalues 1 and 2. It may wait while the
 * channel is full: a continuation, not a plain call. */
static int feed(lua_State *L) {
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushvalue(L, 1);
  lua_callk(L, 2, 0, 0, feed_k);
  return 0;
}

static void push_feed(lua_State *L) { lua_pushcclosure(L, feed, 2); }
#endif

/* Pushes the send method of channels, or nothing and returns 0 if the
 * value at idx has not the channel metatable. ch:send checks the
 * channel's tag itself when it runs (see About userdata tags). */
static int push_send(lua_State *L, int idx) {
  int top = lua_gettop(L);
  if (!lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, CHAN_MT);
  if (lua_rawequal(L, -1, -2)) {
    lua_pushliteral(L, "__index");
    if (lua_rawget(L, -2) == LUA_TTABLE) {
      lua_pushliteral(L, "send");
      if (lua_rawget(L, -2) == LUA_TFUNCTION) {
        lua_replace(L, top + 1);
        lua_settop(L, top + 1);
        return 1;
      }
    }
  }
  lua_settop(L, top);
  return 0;
}

int weft_lua_ref_chan(lua_State *L, int idx, weft_lua_ref_t **out) {
  State *S;
  int r;
  if (out) *out = NULL;
  if (L == NULL || out == NULL) return WEFT_EINVAL;
  idx = lua_absindex(L, idx);
  S = lw_open_state(L);
  if (!push_send(L, idx)) return WEFT_EINVAL;
  lua_pushvalue(L, idx);
  push_feed(L);
  r = make_ref(L, S, lua_gettop(L), out);
  lua_pop(L, 1);
  return r;
}

static void later_free(Later *n) {
  weft_value_free(&n->args);
  weft__valloc(n, sizeof *n, 0);
}

/* How a call hands its node to later_entry: not on the Lua stack, as a
 * script's call hook can capture later_entry and call it again (see
 * SpawnReq in host.c). Taken once. */
static _Thread_local Later *later_cur;

/* [] -> []: spawns the function of the current call with its arguments. */
static int later_entry(lua_State *L) {
  Later *n = later_cur;
  const weft_value_t *a;
  size_t i, na;
  if (n == NULL)
    return luaL_error(L, "weft_lua_call_later: its entry was called again");
  later_cur = NULL;
  a = &n->args;
  na = a->type == WEFT_VARRAY ? a->u.a.len : 0;
  if (na > 1000000)
    return luaL_error(L, "weft_lua_call_later: too many arguments");
  luaL_checkstack(L, (int)na + 8, "weft_lua_call_later");
  lua_rawgeti(L, LUA_REGISTRYINDEX, n->ref->fn);
  for (i = 0; i < na; i++)
    lw_push_value(L, &a->u.a.items[i], "weft_lua_call_later");
  lw_spawn_at(L, n->ref->link->S, 1, WEFT_PRIO_NORMAL, 0);
  return 0;
}

/* The error on top, of a call that could not start, goes where failed
 * tasks go: nothing the host posted disappears unseen. */
static void report(State *S, const char *msg) {
  S->unhandled++;
  if (S->report)
    S->report(S->report_ud, msg);
  else
    fprintf(stderr, "weft: %s\n", msg);
}

static void later_run(Later *n) {
  State *S = n->ref->link->S;
  lua_State *L = S->L ? S->L : S->home;
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 2)) {
    report(S, "weft_lua_call_later: stack overflow");
    return;
  }
  later_cur = n;
  lua_pushcfunction(L, later_entry); /* a light function: no allocation */
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    report(S, msg ? msg : "weft_lua_call_later: failed");
  }
  later_cur = NULL;
  lua_settop(L, top);
}

static void later_cb(weft_post_t *p, int status) {
  Later *n = lw_container(p, Later, post);
  if (status == 0) later_run(n);
  later_free(n);
}

int weft_lua_call_later(weft_lua_ref_t *ref, weft_value_t *args) {
  Later *n;
  int r;
  if (ref == NULL ||
      (args && args->type != WEFT_VNIL && args->type != WEFT_VARRAY)) {
    if (args) weft_value_free(args);
    return WEFT_EINVAL;
  }
  if ((n = weft__valloc(NULL, 0, sizeof *n)) == NULL) {
    if (args) weft_value_free(args);
    return WEFT_ENOMEM;
  }
  n->ref = ref;
  weft_value_nil(&n->args);
  if (args) {
    n->args = *args;
    weft_value_nil(args);
  }
  if ((r = link_post(ref->link, &n->post, later_cb)) != 0) later_free(n);
  return r;
}

int weft_lua_chan_send(weft_lua_ref_t *ref, weft_value_t *v) {
  weft_value_t a;
  if (v == NULL) return WEFT_EINVAL;
  if (ref == NULL || v->type == WEFT_VNIL) {
    weft_value_free(v);
    return WEFT_EINVAL;
  }
  if (weft_value_array(&a, 1) != 0) {
    weft_value_free(v);
    return WEFT_ENOMEM;
  }
  a.u.a.items[0] = *v;
  weft_value_nil(v);
  return weft_lua_call_later(ref, &a);
}

/* Runs on the loop thread after every call posted before the unref (the
 * queue is FIFO), so those still find the function. */
static void release_cb(weft_post_t *p, int status) {
  weft_lua_ref_t *r = lw_container(p, weft_lua_ref_t, release);
  Link *k = r->link;
  if (status == 0) { /* not cancelled: the state is open */
    luaL_unref(k->S->home, LUA_REGISTRYINDEX, r->fn);
    weft_loop_unref(k->S->loop);
  }
  weft__valloc(r, sizeof *r, 0);
  link_unref(k);
}

void weft_lua_unref(weft_lua_ref_t *ref) {
  if (ref == NULL) return;
  if (link_post(ref->link, &ref->release, release_cb) != 0)
    release_cb(&ref->release, WEFT_ECLOSED); /* the state is gone */
}
