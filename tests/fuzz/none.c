/*
 * none.c - fuzz_setup of the targets whose scripts need no host
 * functions of their own (tests/fuzz).
 * SPDX-License-Identifier: MIT
 */
#include "fuzz.h"

void fuzz_setup(lua_State *L) { lua_pushnil(L); }
