/*
 * embed.c - a small C host embedding weft: it registers a sync function,
 * a pool function (a slow "fetch" that sleeps on a worker thread) and a
 * loop function completed later from a thread of the host's own, then
 * runs script.lua, which calls them concurrently, cancels one call and
 * lets another time out.
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>
#include <uv.h>

#include "weft.h"
#include "weft_lua.h"

/* add(a, b) -> a + b: sync, runs on the loop thread and returns at once. */
static void add(weft_call_t *call, void *ud) {
  const weft_value_t *args = weft_call_args(call);
  weft_value_t r;
  (void)ud;
  if (args->u.a.len != 2 || args->u.a.items[0].type != WEFT_VINT ||
      args->u.a.items[1].type != WEFT_VINT) {
    weft_call_reject(call, "expected two integers");
    return;
  }
  weft_value_int(&r, args->u.a.items[0].u.i + args->u.a.items[1].u.i);
  weft_call_resolve(call, &r);
}

/* fetch(url, ms) -> "body of <url>": runs on a worker thread; sleeps ms
 * in small steps, checking whether the caller gave up. */
static void fetch(weft_call_t *call, void *ud) {
  const weft_value_t *args = weft_call_args(call);
  const weft_value_t *url = &args->u.a.items[0];
  int64_t ms = args->u.a.len > 1 && args->u.a.items[1].type == WEFT_VINT
                   ? args->u.a.items[1].u.i
                   : 50;
  char body[256];
  weft_value_t r;
  (void)ud;
  if (args->u.a.len < 1 || url->type != WEFT_VSTR) {
    weft_call_reject(call, "expected a url string");
    return;
  }
  for (; ms > 0; ms -= 5) {
    if (weft_call_cancelled(call)) return; /* nobody wants the answer */
    uv_sleep(5);
  }
  snprintf(body, sizeof body, "body of %s", url->u.s.ptr);
  if (weft_value_str(&r, body, strlen(body)) != 0) {
    weft_call_reject(call, "out of memory");
    return;
  }
  weft_call_resolve(call, &r);
}

/* ask(question) -> answer: a loop function. It hands the call to a thread
 * of the host, which answers 20 ms later; the reference keeps the handle
 * valid on that thread until it is done with it. */
static void answer_thread(void *arg) {
  weft_call_t *call = arg;
  weft_value_t r;
  uv_sleep(20);
  weft_value_str(&r, "42", 2);
  weft_call_resolve(call, &r); /* a no-op if the caller gave up */
  weft_call_unref(call);
}

static uv_thread_t threads[16];
static int nthreads;

static void ask(weft_call_t *call, void *ud) {
  (void)ud;
  if (nthreads == 16) {
    weft_call_reject(call, "too many questions");
    return;
  }
  weft_call_ref(call);
  uv_thread_create(&threads[nthreads++], answer_thread, call);
}

static void on_cancel(weft_call_t *call, void *ud) {
  (void)ud;
  printf("host: call to %s cancelled\n", weft_call_name(call));
}

static void reg(lua_State *L, const char *name, weft_host_fn fn, int kind,
                uint64_t timeout_ms) {
  weft_fn_opts o;
  memset(&o, 0, sizeof o);
  o.kind = kind;
  o.priority = WEFT_PRIO_NORMAL;
  o.timeout_ms = timeout_ms;
  o.on_cancel = on_cancel;
  weft_lua_push_fn(L, name, fn, &o);
  lua_setglobal(L, name);
}

int main(int argc, char **argv) {
  const char *script = argc > 1 ? argv[1] : "examples/embed/script.lua";
  lua_State *L = luaL_newstate();
  int status, i;
  luaL_openlibs(L);
  luaL_requiref(L, "weft", luaopen_weft, 1);
  lua_pop(L, 1);
  reg(L, "add", add, WEFT_FN_SYNC, 0);
  reg(L, "fetch", fetch, WEFT_FN_POOL, 0);
  reg(L, "fetch_with_deadline", fetch, WEFT_FN_POOL, 30);
  reg(L, "ask", ask, WEFT_FN_LOOP, 0);
  if (luaL_loadfile(L, script) != LUA_OK) {
    fprintf(stderr, "embed: %s\n", lua_tostring(L, -1));
    return 1;
  }
  status = weft_lua_run(L, 0, 1);
  if (status != LUA_OK) fprintf(stderr, "embed: %s\n", lua_tostring(L, -1));
  lua_close(L); /* stops the pool; late completions are harmless */
  for (i = 0; i < nthreads; i++) uv_thread_join(&threads[i]);
  return status != LUA_OK;
}
