/*
 * main.c - the weft command: runs a Lua script as the main task of a weft
 * loop, waits for every task, reports failures (CLI).
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "alloc.h"
#include "lcompat.h" /* the binding's: one CLI source for every Lua */
#include "weft_lua.h"
#if WEFT_LUAJIT
#include <luajit.h>
#define VM_NAME LUAJIT_VERSION
#else
#define VM_NAME LUA_RELEASE
#endif

static const char usage[] =
    "usage: weft [options] [script.lua [args...]]\n"
    "Runs script.lua as the main task of a weft loop, waits until every\n"
    "task has ended, and exits non-zero if the script or any task it never\n"
    "awaited failed. The module is loaded as the global 'weft'.\n"
    "\n"
    "options:\n"
    "  -e code        run code as a main task (may be repeated)\n"
    "  --threads N    worker threads of the pool (default: the CPUs)\n"
    "  --preempt MS   make a task that runs MS ms without waiting yield\n"
    "  --memory-limit SIZE\n"
    "                 fail allocations past SIZE bytes (suffix k, M or G:\n"
    "                 KiB, MiB, GiB); the script gets 'not enough memory'\n"
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

/* --preempt MS: the time slice of a task that does not wait. */
static int set_preempt(lua_State *L, const char *ms) {
  char *end;
  long v = strtol(ms, &end, 10);
  int r;
  if (*ms == '\0' || *end != '\0' || v < 1 || v > 60000) {
    fprintf(stderr, "weft: --preempt needs milliseconds from 1 to 60000, "
                    "got '%s'\n", ms);
    return 2;
  }
  if ((r = weft_lua_set_preempt(L, (unsigned)v)) != 0) {
    fprintf(stderr, "weft: --preempt: %s\n", weft_strerror(r));
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
    } else if (!strcmp(argv[i], "--preempt")) {
      if (++i == argc) { fail("--preempt needs an argument"); return 2; }
      if (ran) { fail("--preempt must come before any -e"); return 2; }
      if ((r = set_preempt(L, argv[i])) != 0) return r;
    } else if (!strcmp(argv[i], "--memory-limit")) {
      i++; /* taken by find_limit */
    } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      fputs(usage, stdout);
      return 0;
    } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--version")) {
      printf("weft %s (%s)\n", weft_version(), VM_NAME);
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

/* ---------------------------------------------------------- allocators */

/* The C library's allocator with lua_Alloc's contract: the state's in
 * sanitizer builds (every Lua object is then a block the sanitizer sees),
 * and under the budget of weft's values. */
static void *sys_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(p);
    return NULL;
  }
  return realloc(p, nsize);
}

/* About budget: --memory-limit. It counts the blocks of the Lua state
 * (values, tasks, coroutines, and weft's scheduler, which allocates
 * through the state) in lua, and those of weft's value allocator (I/O
 * buffers, host function values: any thread) in vals; a growth that would
 * take the sum past max fails as if memory had run out, and is counted in
 * refused. Only the Lua thread writes lua; the loads are relaxed, so a
 * race may let the sum pass max by what other threads are allocating at
 * that moment. */
typedef struct budget {
  lua_Alloc f; /* the state's allocator underneath */
  void *ud;
  size_t max;
  atomic_size_t lua, vals, refused;
} budget;

static int over(budget *b, size_t osize, size_t nsize) {
  size_t used = atomic_load_explicit(&b->lua, memory_order_relaxed) +
                atomic_load_explicit(&b->vals, memory_order_relaxed);
  if (nsize <= osize || (used <= b->max && nsize - osize <= b->max - used))
    return 0;
  atomic_fetch_add_explicit(&b->refused, 1, memory_order_relaxed);
  return 1;
}

static void *budget_lua(void *ud, void *p, size_t osize, size_t nsize) {
  budget *b = ud;
  size_t old = p ? osize : 0; /* without a block osize is a type tag */
  void *q;
  if (over(b, old, nsize)) return NULL;
  q = b->f(b->ud, p, osize, nsize);
  if (q != NULL || nsize == 0)
    atomic_store_explicit(
        &b->lua,
        atomic_load_explicit(&b->lua, memory_order_relaxed) - old + nsize,
        memory_order_relaxed);
  return q;
}

static void *budget_vals(void *ud, void *p, size_t osize, size_t nsize) {
  budget *b = ud;
  size_t old = p ? osize : 0;
  void *q;
  if (over(b, old, nsize)) return NULL;
  if ((q = sys_alloc(NULL, p, osize, nsize)) == NULL && nsize != 0)
    return NULL;
  if (nsize >= old)
    atomic_fetch_add_explicit(&b->vals, nsize - old, memory_order_relaxed);
  else
    atomic_fetch_sub_explicit(&b->vals, old - nsize, memory_order_relaxed);
  return q;
}

/* Parses a --memory-limit SIZE: digits and an optional k, M or G (KiB,
 * MiB, GiB). 0 if it is not one, or too large. */
static size_t parse_size(const char *a) {
  char *end;
  unsigned long long v, unit = 1;
  if (*a < '0' || *a > '9') return 0;
  errno = 0;
  v = strtoull(a, &end, 10);
  if (errno == ERANGE) return 0;
  if (*end == 'k' || *end == 'K') unit = 1ull << 10;
  if (*end == 'm' || *end == 'M') unit = 1ull << 20;
  if (*end == 'g' || *end == 'G') unit = 1ull << 30;
  if (unit > 1) end++;
  if (*end != '\0' || v > SIZE_MAX / unit) return 0;
  return (size_t)(v * unit);
}

/* The state's allocator must be chosen before the state exists, so
 * --memory-limit is looked for before run() walks the options, the same
 * way: they end at the script, at "--" or at a non-option. Returns 0 (and
 * the size in *max, 0 for none) or the exit status of a bad use. */
static int find_limit(int argc, char **argv, size_t *max, const char **arg) {
  int i;
  *max = 0;
  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-e") || !strcmp(argv[i], "--threads") ||
        !strcmp(argv[i], "--preempt")) {
      i++;
    } else if (!strcmp(argv[i], "--memory-limit")) {
      if (++i == argc) return fail("--memory-limit needs an argument"), 2;
      if (*max) return fail("--memory-limit given twice"), 2;
      if ((*max = parse_size(argv[i])) == 0) {
        fprintf(stderr, "weft: --memory-limit needs a size in bytes such as "
                        "65536, 512k, 64M or 1G, got '%s'\n", argv[i]);
        return 2;
      }
      *arg = argv[i];
    } else if (!strcmp(argv[i], "--") || argv[i][0] != '-' ||
               argv[i][1] == '\0') {
      break;
    }
  }
  return 0;
}

/* run() as a protected call: an error outside the chunks (no memory to
 * open the libraries or to store the arguments, under --memory-limit) is
 * reported, not a panic. [argc, argv] -> the exit status. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = lua_touserdata(L, 2);
  lua_settop(L, 0);
  lua_pushinteger(L, run(L, argc, argv));
  return 1;
}

#if LUA_VERSION_NUM >= 504
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
#endif

static int panic(lua_State *L) {
  fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n",
          lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                         : "error object is not a string");
  return 0;
}

/* A state on allocator f, with luaL_newstate's panic and warnings. */
static lua_State *new_state(lua_Alloc f, void *ud) {
  lua_State *L = lua_newstate(f, ud);
  if (L != NULL) {
    lua_atpanic(L, panic);
#if LUA_VERSION_NUM >= 504
    static int warn_state;
    lua_setwarnf(L, warn_fn, &warn_state);
#endif
  }
  return L;
}

/* The state runs on the slab allocator (alloc.c), except in sanitizer
 * builds, and under a budget with --memory-limit. */
int main(int argc, char **argv) {
  static budget b;
  lua_State *L;
  const char *limit = NULL;
  size_t max;
  int status;
#ifdef WEFT_SYSTEM_ALLOC
  lua_Alloc f = sys_alloc;
  void *ud = NULL;
#else
  static slab heap;
  lua_Alloc f = slab_alloc;
  void *ud = &heap;
  slab_init(&heap);
#endif
  if ((status = find_limit(argc, argv, &max, &limit)) != 0) return status;
  if (max) {
    b.f = f;
    b.ud = ud;
    b.max = max;
    weft_value_set_allocator(budget_vals, &b);
    f = budget_lua;
    ud = &b;
  }
  L = new_state(f, ud);
  if (L == NULL) {
    status = fail("cannot create the Lua state: not enough memory");
  } else {
    lua_pushcfunction(L, pmain); /* light: nothing here allocates */
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    if (lua_pcall(L, 2, 1, 0) == LUA_OK) {
      status = (int)lua_tointeger(L, -1);
    } else {
      fail(lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                          : "(error object is not a string)");
      status = 1;
    }
    lua_close(L);
  }
  if (pool) weft_pool_free(pool);
#ifndef WEFT_SYSTEM_ALLOC
  slab_free(&heap);
#endif
  if (status != 0 && atomic_load(&b.refused) > 0)
    fprintf(stderr, "weft: the memory limit was reached (--memory-limit "
                    "%s)\n", limit);
  return status;
}
