/*
 * test-version.c - the version (host tier): weft_version() and the macros
 * CMake generates into weft_version.h agree.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "weft.h"

/* The library reports the version the header was generated with. */
static void version_call_returns_the_header_string(void **state) {
  (void)state;
  assert_non_null(weft_version());
  assert_string_equal(weft_version(), WEFT_VERSION_STRING);
}

/* The string is MAJOR.MINOR.PATCH of the numeric macros, so the two
 * forms cannot drift apart. */
static void version_string_is_major_minor_patch(void **state) {
  char want[64];
  (void)state;
  snprintf(want, sizeof want, "%d.%d.%d", WEFT_VERSION_MAJOR,
           WEFT_VERSION_MINOR, WEFT_VERSION_PATCH);
  assert_string_equal(WEFT_VERSION_STRING, want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(version_call_returns_the_header_string),
      cmocka_unit_test(version_string_is_major_minor_patch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
