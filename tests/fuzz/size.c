/*
 * size.c - fuzz target: the CLI's --memory-limit SIZE parser and the
 * option scan that finds it (src/cli/main.c, included here: both are
 * static). parse_size must agree with a model of its documented grammar,
 * digits and an optional k, M or G (KiB, MiB, GiB), 0 meaning "not a
 * size" (as is a size past SIZE_MAX); find_limit, given the input split
 * into arguments at NUL bytes, must take the size after --memory-limit
 * among the options, refuse a repeated or a bad one with status 2, and
 * stop at the script, at "--" or at a non-option.
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "fuzz.h"

/* The CLI's main becomes cli_main; its static functions are ours. */
#define main cli_main
#include "../../src/cli/main.c"
#undef main

void fuzz_die(const char *what, const char *msg) {
  fprintf(stderr, "fuzz: %s: %s\n", what, msg);
  abort();
}

/* The model: 0 unless s is digits and at most one unit letter, and the
 * size fits a size_t; computed with overflow checks of its own. */
static size_t model_size(const char *s) {
  size_t v = 0, unit = 1;
  const char *p = s;
  if (*p < '0' || *p > '9') return 0;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (v > (SIZE_MAX - (size_t)(*p - '0')) / 10) return 0;
    v = v * 10 + (size_t)(*p - '0');
  }
  if (*p == 'k' || *p == 'K') unit = (size_t)1 << 10, p++;
  else if (*p == 'm' || *p == 'M') unit = (size_t)1 << 20, p++;
  else if (*p == 'g' || *p == 'G') unit = (size_t)1 << 30, p++;
  if (*p != '\0' || v > SIZE_MAX / unit) return 0;
  return v * unit;
}

static void check_size(const char *s) {
  size_t got = parse_size(s), want = model_size(s);
  char msg[160];
  if (got == want) return;
  snprintf(msg, sizeof msg, "parse_size(\"%.40s\") = %zu, expected %zu", s,
           got, want);
  fuzz_die("size", msg);
}

/* The model of find_limit: the options end at the first argument that is
 * not one ("-" alone, "--", or no leading '-'); -e, --threads and
 * --preempt take the next argument as theirs. */
static int model_limit(int argc, char **argv, size_t *max) {
  int i;
  *max = 0;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-e") || !strcmp(a, "--threads") ||
        !strcmp(a, "--preempt")) {
      i++;
    } else if (!strcmp(a, "--memory-limit")) {
      if (i + 1 == argc || *max) return 2;
      if ((*max = model_size(argv[++i])) == 0) return 2;
    } else if (!strcmp(a, "--") || a[0] != '-' || a[1] == '\0') {
      break;
    }
  }
  return 0;
}

#define MAX_ARGS 32

static int quiet, saved; /* /dev/null, and the real stderr */

static void check_limit(const uint8_t *data, size_t size) {
  char *buf = malloc(size + 1), *argv[MAX_ARGS + 1];
  const char *arg = NULL;
  int argc = 1, r, want;
  size_t max, want_max, i, start = 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  argv[0] = "weft";
  for (i = 0; i <= size && argc < MAX_ARGS; i++)
    if (buf[i] == '\0') {
      argv[argc++] = buf + start;
      start = i + 1;
    }
  argv[argc] = NULL;
  fflush(stderr);
  dup2(quiet, 2); /* find_limit's messages for bad sizes */
  r = find_limit(argc, argv, &max, &arg);
  fflush(stderr);
  dup2(saved, 2);
  want = model_limit(argc, argv, &want_max);
  if (r != want || (r == 0 && max != want_max))
    fuzz_die("find_limit", "disagrees with the model");
  if (r == 0 && max != 0 && (arg == NULL || parse_size(arg) != max))
    fuzz_die("find_limit", "the size's argument is not the one parsed");
  free(buf);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  quiet = open("/dev/null", O_WRONLY);
  saved = dup(2);
  if (quiet < 0 || saved < 0) fuzz_die("size", "cannot open /dev/null");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char s[64];
  size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
  memcpy(s, data, n);
  s[n] = '\0';
  check_size(s);
  check_limit(data, size);
  return 0;
}
