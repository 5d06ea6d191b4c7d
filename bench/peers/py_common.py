# py_common.py - helpers shared by the Python peer programs: the event loop
# (asyncio, or uvloop with --uvloop), peak RSS (VmHWM), the one JSON result
# line of BENCH.md, the W4 generator and the W6 file check.
# SPDX-License-Identifier: MIT
import asyncio
import json
import re
import sys
import time

UVLOOP = "--uvloop" in sys.argv
ARGS = [a for a in sys.argv[1:] if a != "--uvloop"]
IMPL = "python-uvloop" if UVLOOP else "python-asyncio"


def arg(i, default):
    return ARGS[i] if len(ARGS) > i else default


def rss_kb(field="VmHWM"):
    with open("/proc/self/status") as f:
        m = re.search(field + r":\s*(\d+)", f.read())
    return int(m.group(1)) if m else 0


now = lambda: time.perf_counter() * 1000      # monotonic ms
cpu = lambda: time.process_time() * 1000      # process CPU ms, all threads


def report(workload, n, wall_ms, cpu_ms, ok, **extra):
    line = {"impl": IMPL, "workload": workload, "n": n,
            "wall_ms": round(wall_ms, 3),
            "ops_per_sec": round(n / max(wall_ms, 1e-3) * 1000, 1),
            "cpu_ms": round(cpu_ms, 3), "peak_rss_kb": rss_kb()}
    for k in sorted(extra):
        line[k] = extra[k]
    line["ok"] = bool(ok)
    print(json.dumps(line, separators=(",", ":")), flush=True)
    if not ok:
        sys.exit(1)


def na(workload, reason):
    print(json.dumps({"impl": IMPL, "workload": workload, "na": reason,
                      "ok": True}, separators=(",", ":")), flush=True)


def run(main):
    """Runs the coroutine main() on asyncio's loop or on uvloop's."""
    if UVLOOP:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main())


def minstd(seed=42):
    x = seed
    while True:
        x = x * 16807 % 2147483647
        yield x % 1000


def file_ok(i, data):
    """W6: file i holds 4096 bytes of the byte i % 251."""
    return len(data) == 4096 and data[0] == i % 251 and data[4095] == i % 251
