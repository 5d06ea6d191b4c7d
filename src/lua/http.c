/*
 * http.c - weft.http (Lua binding). Not built yet.
 * SPDX-License-Identifier: MIT
 */
#include "lweft.h"

void lw_open_http(lua_State *L, State *S) {
  (void)L;
  (void)S;
}
