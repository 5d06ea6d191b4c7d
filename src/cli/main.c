/*
 * main.c - the weft command: runs a Lua script as the main task of a weft
 * loop, waits for every task, reports failures (CLI).
 * SPDX-License-Identifier: MIT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "alloc.h"
#include "weft_lua.h"

static const char usage[] =
    "usage: weft [options] [script.lua [args...]]\n"
    "Runs script.lua as the main task of a weft loop, waits until every\n"
    "task has ended, and exits non-zero if the script or any task it never\n"
    "awaited failed. The module is loaded as the global 'weft'.\n"
    "\n"
    "options:\n"
    "  -e code        run code as a main task (may be repeated)\n"
    "  --threads N    worker threads of the pool (default: the CPUs)\n"
    "  -v, --version  print the version and exit\n"
    "  -h, --help     print this help and exit\n"
    "  --             stop handling options\n";

static int fail(const char *msg) {
  fprintf(stderr, "weft: %s\n", msg);
  return 1;
}

/* Runs the chunk below nargs arguments on top of L as a main task. */
static int run_chunk(lua_State *L, int nargs) {
  if (weft_lua_run(L, nargs, 1) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fail(msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
    return 1;
  }
  lua_settop(L, 0);
  return 0;
}

/* arg = {[0] = script, args...}, as the lua command sets it. */
static void set_arg(lua_State *L, char **argv, int argc, int script) {
  int i;
  lua_createtable(L, argc - script, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int run_script(lua_State *L, char **argv, int argc, int script) {
  int i;
  set_arg(L, argv, argc, script);
  if (luaL_loadfile(L, strcmp(argv[script], "-") ? argv[script] : NULL))
    return fail(lua_tostring(L, -1));
  for (i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
  return run_chunk(L, argc - script - 1);
}

static weft_pool_t *pool; /* from --threads; outlives the state */

/* --threads N: the pool the state's pool functions and weft.fs use. */
static int set_threads(lua_State *L, const char *n) {
  weft_pool_opts o = {0, 0};
  char *end;
  long v = strtol(n, &end, 10);
  int r;
  if (*n == '\0' || *end != '\0' || v < 1 || v > 1024) {
    fprintf(stderr, "weft: --threads needs a number from 1 to 1024, got "
                    "'%s'\n", n);
    return 2;
  }
  if (pool) return fail("--threads given twice");
  o.threads = (unsigned)v;
  if ((r = weft_pool_new(&pool, &o)) != 0 ||
      (r = weft_lua_set_pool(L, pool)) != 0) {
    fprintf(stderr, "weft: --threads: %s\n",
            r == WEFT_ESTATE ? "must come before any -e that uses the pool"
                             : weft_strerror(r));
    return 2;
  }
  return 0;
}

static int run(lua_State *L, int argc, char **argv) {
  int i, ran = 0, r;
  luaL_openlibs(L);
  luaL_requiref(L, "weft", luaopen_weft, 1);
  lua_pop(L, 1);
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-e") == 0) {
      if (++i == argc) { fail("-e needs an argument"); return 2; }
      if (luaL_loadbuffer(L, argv[i], strlen(argv[i]), "=(command line)"))
        return fail(lua_tostring(L, -1));
      if (run_chunk(L, 0)) return 1;
      ran = 1;
    } else if (!strcmp(argv[i], "--threads")) {
      if (++i == argc) { fail("--threads needs an argument"); return 2; }
      if ((r = set_threads(L, argv[i])) != 0) return r;
    } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      fputs(usage, stdout);
      return 0;
    } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--version")) {
      printf("weft %s (%s)\n", WEFT_VERSION_STRING, LUA_RELEASE);
      return 0;
    } else if (!strcmp(argv[i], "--")) {
      i++;
      break;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      fprintf(stderr, "weft: unknown option '%s'\n%s", argv[i], usage);
      return 2;
    } else {
      break;
    }
  }
  if (i < argc) {
    if (run_script(L, argv, argc, i)) return 1;
  } else if (!ran) {
    fputs(usage, stderr);
    return 2;
  }
  return weft_lua_unhandled(L) > 0;
}

#ifndef WEFT_SYSTEM_ALLOC
/* Warnings and panics as with luaL_newstate (lauxlib.c): warnings are
 * off until warn("@on"); each message goes to stderr after "Lua warning:
 * ". st: 0 off, 1 on, 2 inside a message of several pieces. */
static int warn_control(int *st, const char *msg, int tocont) {
  if (tocont || msg[0] != '@') return 0;
  if (strcmp(msg + 1, "off") == 0) *st = 0;
  if (strcmp(msg + 1, "on") == 0) *st = 1;
  return 1;
}

static void warn_fn(void *ud, const char *msg, int tocont) {
  int *st = ud;
  if (*st == 0) {
    warn_control(st, msg, tocont);
    return;
  }
  if (*st == 1) {
    if (warn_control(st, msg, tocont)) return;
    fputs("Lua warning: ", stderr);
  }
  fputs(msg, stderr);
  if (tocont) {
    *st = 2;
  } else {
    fputc('\n', stderr);
    *st = 1;
  }
}

static int panic(lua_State *L) {
  fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n",
          lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                         : "error object is not a string");
  return 0;
}

/* A state on the slab allocator, with luaL_newstate's panic and
 * warnings. */
static lua_State *new_state(slab *heap) {
  static int warn_state;
  lua_State *L;
  slab_init(heap);
  L = lua_newstate(slab_alloc, heap);
  if (L != NULL) {
    lua_atpanic(L, panic);
    lua_setwarnf(L, warn_fn, &warn_state);
  }
  return L;
}
#endif

/* The state runs on the slab allocator (alloc.c), except in sanitizer
 * builds, where every Lua object must be a block the sanitizer sees. */
int main(int argc, char **argv) {
  lua_State *L;
  int status;
#ifdef WEFT_SYSTEM_ALLOC
  L = luaL_newstate();
#else
  static slab heap;
  L = new_state(&heap);
#endif
  if (L == NULL) return fail("cannot create the Lua state: not enough memory");
  status = run(L, argc, argv);
  lua_close(L);
  if (pool) weft_pool_free(pool);
#ifndef WEFT_SYSTEM_ALLOC
  slab_free(&heap);
#endif
  return status;
}
