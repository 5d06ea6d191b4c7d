/*
 * post.c - a C host feeding a running script from a thread of its own:
 * the script hands the host a channel and a progress function; a host
 * thread pushes 10,000 events into the channel and reports progress
 * every 1,000 through the function, while the script's other tasks keep
 * running (see script.lua, which checks what it got).
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>

#include <lauxlib.h>
#include <lualib.h>
#include <uv.h>

#include "weft.h"
#include "weft_lua.h"

/* About feed: what the feeding thread owns. The references are made on
 * the loop thread, used and dropped on the feeding thread. */
typedef struct feed {
  weft_lua_ref_t *ch, *progress;
  long n;
  int failed; /* a post was refused: the script will notice too */
  uv_thread_t tid;
  int started;
} feed;

static feed the_feed;

/* The host thread: events 1..n into the channel, progress(i) every
 * 1,000. Then it drops both references, which lets the loop end once
 * the script is done. */
static void feeder(void *arg) {
  feed *f = arg;
  weft_value_t v, args;
  long i;
  for (i = 1; i <= f->n; i++) {
    weft_value_int(&v, i);
    if (weft_lua_chan_send(f->ch, &v) != 0) f->failed = 1;
    if (i % 1000 != 0) continue;
    if (weft_value_array(&args, 1) != 0) {
      f->failed = 1;
      continue;
    }
    weft_value_int(&args.u.a.items[0], i);
    if (weft_lua_call_later(f->progress, &args) != 0) f->failed = 1;
  }
  weft_lua_unref(f->progress);
  weft_lua_unref(f->ch);
}

/* start_feed(ch, progress, n): a plain Lua C function, since host
 * functions of weft_lua_push_fn receive values, not channels or
 * functions. */
static int start_feed(lua_State *L) {
  feed *f = &the_feed;
  long n = (long)luaL_checkinteger(L, 3);
  if (f->started) return luaL_error(L, "start_feed: already started");
  if (weft_lua_ref_chan(L, 1, &f->ch) != 0)
    return luaL_error(L, "start_feed: expected a channel");
  if (weft_lua_ref_fn(L, 2, &f->progress) != 0) {
    weft_lua_unref(f->ch);
    return luaL_error(L, "start_feed: expected a function");
  }
  f->n = n;
  if (uv_thread_create(&f->tid, feeder, f) != 0) {
    weft_lua_unref(f->ch);
    weft_lua_unref(f->progress);
    return luaL_error(L, "start_feed: cannot start the thread");
  }
  f->started = 1;
  return 0;
}

int main(int argc, char **argv) {
  const char *script = argc > 1 ? argv[1] : "examples/post/script.lua";
  lua_State *L = luaL_newstate();
  int status;
  luaL_openlibs(L);
  luaL_requiref(L, "weft", luaopen_weft, 1);
  lua_pop(L, 1);
  lua_register(L, "start_feed", start_feed);
  if (luaL_loadfile(L, script) != LUA_OK) {
    fprintf(stderr, "post: %s\n", lua_tostring(L, -1));
    return 1;
  }
  /* Returns once the script's tasks have ended and the feeding thread
   * has dropped its references. */
  status = weft_lua_run(L, 0, 1);
  if (status != LUA_OK) fprintf(stderr, "post: %s\n", lua_tostring(L, -1));
  if (the_feed.started) uv_thread_join(&the_feed.tid);
  if (the_feed.failed) fprintf(stderr, "post: a post was refused\n");
  status = status != LUA_OK || the_feed.failed ||
           weft_lua_unhandled(L) != 0;
  lua_close(L);
  return status;
}
