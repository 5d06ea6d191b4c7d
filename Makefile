# Convenience targets; CMake does the building.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# The Luas the suite runs on besides 5.4, each in a build of its own
# (build-lua<v>, build-asan-lua<v>): the module, CLI and Lua specs built
# against it (and, for luajit, the C tests that embed Lua).
LUAS ?= 5.3 5.1 luajit
# EMBEDDED_CROSS=0 skips the embedded tier's Cortex-M cross tests, and so
# the toolchain and qemu they need (about 800 MB).
EMBEDDED_CROSS ?= 1
ifeq ($(EMBEDDED_CROSS),0)
TEST_DEPS = test
CROSS = -DWEFT_EMBEDDED_CROSS=OFF
else
TEST_DEPS = test embedded
CROSS = -DWEFT_EMBEDDED_CROSS=ON
endif
CONFIG = -DCMAKE_BUILD_TYPE=RelWithDebInfo
ASAN_CONFIG = -DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=ON

.PHONY: all deps deps-test build demo test test-luas test-asan test-tsan \
	check install clean

all: build

deps:
	@bash scripts/deps.sh build

deps-test:
	@bash scripts/deps.sh $(TEST_DEPS)

# What the demo and an install need: no test tools.
build: deps
	cmake -S . -B $(BUILD) $(CONFIG) -DWEFT_TESTS=OFF >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The demo: many tasks running at once.
demo: build
	$(BUILD)/weft examples/demo.lua

test: deps-test
	cmake -S . -B $(BUILD) $(CONFIG) -DWEFT_TESTS=ON $(CROSS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	$(MAKE) test-luas

# One Lua: make test-lua LUA=5.1 (the builds of test-luas and test-asan).
.PHONY: test-lua test-asan-lua
test-lua:
	cmake -S . -B build-lua$(LUA) $(CONFIG) -DWEFT_TESTS=ON -DWEFT_LUA=$(LUA) >/dev/null
	cmake --build build-lua$(LUA) -j $(JOBS)
	ctest --test-dir build-lua$(LUA) --output-on-failure -j $(JOBS)

test-asan-lua:
	cmake -S . -B build-asan-lua$(LUA) $(ASAN_CONFIG) -DWEFT_TESTS=ON -DWEFT_LUA=$(LUA) >/dev/null
	cmake --build build-asan-lua$(LUA) -j $(JOBS)
	ctest --test-dir build-asan-lua$(LUA) --output-on-failure -j $(JOBS)

test-luas: deps-test
	@for v in $(LUAS); do $(MAKE) --no-print-directory test-lua LUA=$$v || exit 1; done

test-asan: deps-test
	cmake -S . -B $(ASAN_BUILD) $(ASAN_CONFIG) -DWEFT_TESTS=ON $(CROSS) >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)
	@for v in $(LUAS); do $(MAKE) --no-print-directory test-asan-lua LUA=$$v || exit 1; done

# Thread code (pool, completions, embedding) under ThreadSanitizer. The
# out-of-memory sweep is single-threaded and far too slow there: skipped.
TSAN_BUILD ?= build-tsan
test-tsan: deps-test
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DWEFT_TSAN=ON -DWEFT_TESTS=ON $(CROSS) >/dev/null
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	ctest --test-dir $(TSAN_BUILD) --output-on-failure -j $(JOBS) -R '^(c/|regress/12-preempt-watchdog|example/embed|example/post|example/io|bench/w5)' -E '^c/test-oom$$'

check: test test-asan test-tsan

# Installs the library, headers, CLI and the module for Lua 5.4, and the
# modules for 5.3 and for 5.1 (which LuaJIT loads too) into PREFIX
# (/usr/local unless given): each in lib/lua/<version>, where that Lua
# looks by default.
PREFIX ?= /usr/local
MODULE_LUAS ?= 5.3 5.1
.PHONY: install install-modules
install: build install-modules
	cmake --install $(BUILD) --prefix $(PREFIX)

install-modules:
	@bash scripts/deps.sh build luas
	@for v in $(MODULE_LUAS); do \
	  cmake -S . -B build-lua$$v $(CONFIG) -DWEFT_TESTS=OFF -DWEFT_LUA=$$v >/dev/null && \
	  cmake --build build-lua$$v -j $(JOBS) --target weft_module && \
	  cmake --install build-lua$$v --prefix $(PREFIX) --component module || exit 1; done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) build-lua* build-asan-lua*

# Benchmarks against the peers (bench/, see docs/performance.md). bench
# builds weft in Release in build-bench/ (Lua 5.4) and build-bench-luajit/
# (LuaJIT), runs every workload for both (median of 3) and writes
# docs/performance.md and docs/performance.png; bench-quick runs small
# sizes once and only checks that every program works.
.PHONY: bench bench-quick
bench: deps
	@bash scripts/bench-deps.sh
	/usr/bin/python3 bench/run.py --build build-bench

bench-quick: deps
	@bash scripts/bench-deps.sh
	/usr/bin/python3 bench/run.py --quick --build build-bench

# Fuzzing (tests/fuzz/README.md): the libFuzzer targets, built with clang,
# ASan and UBSan in build-fuzz/, each run FUZZ_SECONDS one after another.
# fuzz-ci runs each for 20 s, from a fixed seed.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_TARGETS = marshal tcp_lines http_response http_options size
.PHONY: fuzz fuzz-ci fuzz-build
fuzz-build: deps
	@bash scripts/fuzz-deps.sh
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DWEFT_FUZZ=ON \
	  -DWEFT_SANITIZE=ON -DWEFT_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) \
	  $(foreach t,$(FUZZ_TARGETS),--target fuzz_$(t))

fuzz: fuzz-build
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-ci:
	FUZZ_SEED=1 $(MAKE) fuzz FUZZ_SECONDS=20

# The random script-API generator (tests/gen/gen.lua): GEN_CALLS calls
# from GEN_SEED under the CLI of the ASan + UBSan build (ASAN_BUILD, as
# for make test-asan); gen-ci makes 50,000.
GEN_CALLS ?= 1000000
GEN_SEED ?= 1
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  LSAN_OPTIONS=use_tls=0:suppressions=$(CURDIR)/tests/lsan.supp \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
.PHONY: gen gen-ci asan-cli
asan-cli: deps-test
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=ON -DWEFT_TESTS=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target weft_cli

gen: asan-cli
	$(SAN_ENV) $(ASAN_BUILD)/weft tests/gen/gen.lua $(GEN_CALLS) $(GEN_SEED)

gen-ci:
	$(MAKE) gen GEN_CALLS=50000

# The soak (tests/soak/soak.lua): SOAK_TASKS tasks in rounds of
# SOAK_ROUND, with the CLI of the normal build; soak-ci runs 2 rounds of
# 20,000.
SOAK_TASKS ?= 1000000
SOAK_ROUND ?= 100000
.PHONY: soak soak-ci
soak: build
	$(BUILD)/weft tests/soak/soak.lua $(SOAK_TASKS) $(SOAK_ROUND)

soak-ci:
	$(MAKE) soak SOAK_TASKS=40000 SOAK_ROUND=20000
