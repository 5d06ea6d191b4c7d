// main.cpp - a C++ host of weft, built against its CMake package: a loop,
// a C task that sleeps, and the library's version.
// SPDX-License-Identifier: MIT
#include <cstdio>
#include <cstring>

#include "weft.h"

static int ticks;

static int tick(weft_task_t *t, int status) {
  (void)status;
  if (++ticks < 3 && weft_task_sleep(t, 1) != 0) return WEFT_PENDING;
  weft_task_finish(t, WEFT_FUTURE_FULFILLED, 0);
  return WEFT_READY;
}

int main() {
  weft_loop_t *loop;
  weft_task_t t;
  std::memset(&t, 0, sizeof t);
  if (weft_loop_new(&loop, nullptr, nullptr) != 0) return 1;
  weft_task_start(weft_loop_sched(loop), &t, tick, WEFT_PRIO_NORMAL, nullptr);
  int left = weft_loop_run(loop);
  weft_loop_free(loop);
  std::printf("consumer: weft %s, %d ticks, %d left\n", weft_version(), ticks,
              left);
  return ticks == 3 && left == 0 &&
                 std::strcmp(weft_version(), WEFT_VERSION_STRING) == 0
             ? 0
             : 1;
}
