/*
 * eval.c - handles of evaluations started from C (Lua binding): the
 * handle weft_lua_spawn_eval gives, weft_lua_cancel and
 * weft_lua_task_state. weft_lua_spawn itself is in host.c.
 * SPDX-License-Identifier: MIT
 */
#include "lweft.h"

/* About the handle: the task's id, which its scheduler never gives again,
 * and its anchor in the registry (Task.ref), which leads to it in O(1)
 * with no table of evaluations to keep. The anchor is let go when the
 * task ends and the slot may then hold any value, another task's
 * included: the id tells them apart. So a handle holds nothing, costs
 * nothing to keep or drop, and stays harmless after its task ended. */

int weft_lua_spawn_eval(lua_State *L, int nargs, weft_lua_done_fn done,
                        void *ud, weft_lua_eval_t *eval) {
  int r = weft_lua_spawn(L, nargs, done, ud);
  Task *t;
  if (eval == NULL) return r;
  eval->id = 0;
  eval->ref = LUA_NOREF;
  if (r != LUA_OK) return r;
  t = (Task *)lw_tofut(L, NULL, -1); /* the task weft_lua_spawn pushed */
  eval->id = t->t.id;
  eval->ref = t->ref;
  return r;
}

/* The live task the handle names, or NULL. [-0, +0, -] */
static Task *eval_task(lua_State *L, State *S, const weft_lua_eval_t *e) {
  Fut *f;
  Task *t = NULL;
  if (e->ref <= 0) return NULL; /* LUA_NOREF, LUA_REFNIL */
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->ref);
  f = lw_tofut(L, S, -1);
  if (f && f->kind == KIND_TASK && ((Task *)f)->t.id == e->id)
    t = (Task *)f;
  lua_pop(L, 1);
  return t && !(t->t.flags & WEFT_TASK_DONE) ? t : NULL;
}

int weft_lua_cancel(lua_State *L, const weft_lua_eval_t *eval) {
  State *S;
  Task *t;
  if (L == NULL || eval == NULL || eval->id == 0) return WEFT_EINVAL;
  if ((S = lw_find_state(L)) == NULL || !lua_checkstack(L, 1))
    return WEFT_ESTATE;
  if ((t = eval_task(L, S, eval)) == NULL) return WEFT_ESTATE;
  if (t->t.flags & WEFT_TASK_CANCEL) return WEFT_ECANCELED;
  weft_task_cancel(&t->t); /* 0: t is live */
  weft_loop_wake(S->loop); /* a borrowed loop: run the cancellation */
  return 0;
}

int weft_lua_task_state(lua_State *L, int idx) {
  Fut *f;
  if (L == NULL || idx == 0 || idx > lua_gettop(L) || idx < -lua_gettop(L))
    return WEFT_EINVAL; /* pseudo-indices too */
  if ((f = lw_tofut(L, NULL, idx)) == NULL) return WEFT_EINVAL;
  return (int)lw_future(f)->state;
}
