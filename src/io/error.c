/*
 * error.c - the text of I/O failures, in one place (I/O tier): what
 * failed, then libuv's message with a capital, as strerror writes it;
 * and SIGPIPE, which would turn a failed write into the process's end.
 * SPDX-License-Identifier: MIT
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "io.h"
#include "weft_io.h"

void weft__ignore_sigpipe(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
  }
}

int weft_io_error_text(char *buf, size_t size, const char *what, int code) {
  char text[128];
  size_t n, room;
  if (buf == NULL || size == 0) return 0;
  snprintf(text, sizeof text, "%s",
           code > -30000 ? uv_strerror(code) : weft_strerror(code));
  if (text[0] >= 'a' && text[0] <= 'z') text[0] -= 'a' - 'A';
  if (what == NULL) return snprintf(buf, size, "%s", text);
  /* A long what is cut, the message never (when buf can hold it). */
  n = strlen(what);
  room = size > strlen(text) + 3 ? size - strlen(text) - 3 : 0;
  if (n > room && room > 3)
    return snprintf(buf, size, "%.*s...: %s", (int)(room - 3), what, text);
  return snprintf(buf, size, "%s: %s", what, text);
}

const char *weft_io_err_name(int code) {
  return code > -30000 ? uv_err_name(code) : weft_err_name(code);
}
