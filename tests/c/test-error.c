/*
 * test-error.c - the core tier through C poll tasks on a fake clock:
 * error codes: every code has a name and its own message.
 * SPDX-License-Identifier: MIT
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

static void error_names_and_messages_cover_every_code(void **state) {
  static const struct {
    int code;
    const char *name;
  } codes[] = {
      {WEFT_OK, "WEFT_OK"},           {WEFT_ENOMEM, "WEFT_ENOMEM"},
      {WEFT_ECANCELED, "WEFT_ECANCELED"}, {WEFT_ETIMEDOUT, "WEFT_ETIMEDOUT"},
      {WEFT_ECLOSED, "WEFT_ECLOSED"}, {WEFT_EINVAL, "WEFT_EINVAL"},
      {WEFT_EFULL, "WEFT_EFULL"},     {WEFT_EEMPTY, "WEFT_EEMPTY"},
      {WEFT_ESTATE, "WEFT_ESTATE"},   {WEFT_EDEADLK, "WEFT_EDEADLK"},
      {WEFT_ESCRIPT, "WEFT_ESCRIPT"},
  };
  const size_t n = sizeof codes / sizeof codes[0];
  const char *unknown = weft_strerror(-29999);
  size_t i, j;
  (void)state;
  assert_non_null(unknown);
  assert_non_null(weft_err_name(-29999));
  assert_non_null(weft_err_name(12345));
  for (i = 0; i < n; i++) {
    const char *msg = weft_strerror(codes[i].code);
    assert_string_equal(weft_err_name(codes[i].code), codes[i].name);
    assert_non_null(msg);
    assert_true(msg[0] != '\0');
    assert_string_not_equal(msg, unknown);
    for (j = 0; j < i; j++)
      assert_string_not_equal(msg, weft_strerror(codes[j].code));
    if (codes[i].code != WEFT_OK) assert_true(codes[i].code < -30000);
  }
  assert_string_equal(weft_strerror(WEFT_ECANCELED), "cancelled");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(error_names_and_messages_cover_every_code),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
