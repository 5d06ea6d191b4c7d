/*
 * proc.c - weft.process and weft.dns (Lua binding). Not built yet.
 * SPDX-License-Identifier: MIT
 */
#include "lweft.h"

void lw_open_proc(lua_State *L, State *S) {
  (void)L;
  (void)S;
}
