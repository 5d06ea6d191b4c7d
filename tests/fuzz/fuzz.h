/*
 * fuzz.h - what the fuzz targets' C parts share (tests/fuzz).
 * SPDX-License-Identifier: MIT
 */
#ifndef WEFT_FUZZ_H
#define WEFT_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

/* libFuzzer's entry points. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prints "fuzz: what: msg" and aborts, so libFuzzer keeps the input. */
void fuzz_die(const char *what, const char *msg);

/* Pushes the target's host functions for its script (a table), or nil.
 * Defined by each target that runs a script (driver.c). [-0, +1, m] */
void fuzz_setup(lua_State *L);

#endif /* WEFT_FUZZ_H */
