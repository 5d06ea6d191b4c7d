#!/usr/bin/python3
"""bench/run.py - runs the workloads of BENCH.md (W0-W8) for weft and its
peers and writes docs/performance.md and docs/performance.png.

usage: /usr/bin/python3 bench/run.py [--quick] [--runs R] [--only W1,W3]
                                     [--build DIR] [--build-luajit DIR]
                                     [--no-build] [--timeout S]

It builds weft in Release mode (no tests, no sanitizers) twice: on Lua
5.4 in build-bench/ (impl "weft") and on LuaJIT (-DWEFT_LUA=luajit, impl
"weft-luajit") in the --build directory's name plus -luajit unless
--build-luajit says otherwise. A LuaJIT build that cannot be made, or is
absent with --no-build (the test suite's 5.4 build has none beside it),
makes weft-luajit n/a with the reason rather than a failure. It creates
the W6 file set in a temporary directory, starts a local nginx for W7
(1 worker, 127.0.0.1, a 128-byte body from a temporary directory; it is
stopped at the end), then runs every workload for every implementation,
one OS process per measurement, R times (default 3), interleaving the
implementations, and keeps the median run. Every program checks its own
result and prints one JSON line; a failed check, a crash or a run over the
time bound fails the whole command (exit status 1).

--quick runs small sizes once: a smoke test that every program works and
checks its result. It prints the table and writes no document.

Programs: bench/<workload>.lua for both weft builds (the same programs run
on Lua 5.4 and LuaJIT; bench/w5_host_roundtrip.c hosts W5), bench/peers/
for the peers. The weft programs of W6 and W7 are run only if they exist,
with these arguments:
  weft bench/w6_files.lua DIR NFILES PASSES    (file i is DIR/<i>: 4096
      bytes of the byte i % 251; 64 reads in flight; n = NFILES * PASSES)
  weft bench/w7_http.lua PORT N CONNS          (GET /body from
      127.0.0.1:PORT, 128-byte body; n = N; report cpu_ms for CPU/request)
SPDX-License-Identifier: MIT
"""
import argparse
import json
import os
import resource
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"  # Debian's Python, the one with uvloop

IMPLS = ["weft", "weft-luajit", "lua54-luv", "luajit-luv", "lua54-cqueues",
         "node", "python-asyncio", "python-uvloop", "lua54", "luajit"]
NAMES = {"weft": "weft (Lua 5.4)", "weft-luajit": "weft (LuaJIT)",
         "lua54-luv": "Lua 5.4 + luv", "luajit-luv": "LuaJIT + luv",
         "lua54-cqueues": "Lua 5.4 + cqueues", "node": "Node.js",
         "python-asyncio": "Python asyncio", "python-uvloop": "Python uvloop",
         "lua54": "plain lua5.4", "luajit": "plain luajit"}
# weft's builds, and the plain interpreters that are W8's baselines: none
# of them is a peer.
WEFTS = ("weft", "weft-luajit")
BASELINES = {"weft": "lua54", "weft-luajit": "luajit"}

# id: (title, metric, higher is better, unit, program, full args, quick args)
# The arguments are templates: {dir}, {nfiles}, {passes}, {port} are filled
# in by the harness.
WORKLOADS = {
    "W0": ("start-up", "wall_ms", False, "ms", "w0_startup", [], []),
    "W1": ("spawn-await, 100k tasks", "ops_per_sec", True, "tasks/s",
           "w1_spawn_await", ["100000"], ["2000"]),
    "W2a": ("sleep fan-out, 10k tasks", "wall_ms", False, "ms",
            "w2_sleep_fanout", ["10000"], ["200"]),
    "W2b": ("sleep fan-out, 100k tasks", "wall_ms", False, "ms",
            "w2_sleep_fanout", ["100000"], ["1000"]),
    "W3": ("channel ping-pong", "ops_per_sec", True, "round trips/s",
           "w3_pingpong", ["1000000"], ["2000"]),
    "W4a": ("1M timers, start + cancel", "ops_per_sec", True, "timers/s",
            "w4_timers", ["a", "1000000"], ["a", "2000"]),
    "W4b": ("1M timers, all fire", "ops_per_sec", True, "timers/s",
            "w4_timers", ["b", "1000000"], ["b", "2000"]),
    "W5": ("worker round trip, sequential", "us_per_op", False,
           "µs/round trip", "w5_roundtrip", ["seq", "100000"],
           ["seq", "1000"]),
    "W5c": ("worker round trip, 64 in flight", "ops_per_sec", True,
            "round trips/s", "w5_roundtrip", ["c", "100000"], ["c", "1000"]),
    "W6": ("files, 64 reads in flight", "ops_per_sec", True, "files/s",
           "w6_files", ["{dir}", "{nfiles}", "{passes}"],
           ["{dir}", "{nfiles}", "{passes}"]),
    "W7": ("HTTP keep-alive GETs, 50 in flight", "ops_per_sec", True,
           "req/s", "w7_http", ["{port}", "10000", "50"],
           ["{port}", "200", "50"]),
    "W8": ("CPU-bound loop in a task", "cpu_ms", False, "CPU ms",
           "w8_cpu", ["100000000"], ["1000000"]),
    "W8b": ("1 ms timer during a CPU-bound task", "late_ms", False,
            "ms late (max)", "w8_latency", ["100000000"], ["3000000"]),
}
# W8b: weft runs with preemption on, at this slice (ms).
W8B_SLICE = "2"
W6_FILES = {"full": (1000, 10), "quick": (100, 1)}

NOT_LUA54 = "W8 measures task overhead against plain lua5.4 or luajit; " \
            "this peer runs another VM"
NO_PREEMPT = "W8b: like Lua 5.4 + luv and Node.js, nothing preempts the " \
             "loop, so the timer waits for all of it"
NA = {("node", "W8"): NOT_LUA54,
      ("python-asyncio", "W8"): NOT_LUA54,
      ("python-uvloop", "W8"): NOT_LUA54,
      ("luajit-luv", "W8b"): NO_PREEMPT, ("lua54-cqueues", "W8b"): NO_PREEMPT,
      ("python-asyncio", "W8b"): NO_PREEMPT,
      ("python-uvloop", "W8b"): NO_PREEMPT,
      ("weft-luajit", "W8b"): "W8b: LuaJIT runs no hooks inside compiled "
      "code, so weft --preempt cannot interrupt the loop once it is "
      "compiled (it preempts once, then the timer waits for the whole loop)"}


def command(w, impl, args, builds):
    """The argv that runs workload w for impl, a string (n/a reason), or
    None when impl does not take part in w. builds maps each weft build to
    its directory, or to ("n/a", why) when there is no such build."""
    prog = WORKLOADS[w][4]
    if (impl, w) in NA:
        return NA[(impl, w)]
    if impl in ("lua54", "luajit"):  # the plain baselines of W8 only
        return [{"lua54": "lua5.4"}.get(impl, impl),
                "bench/peers/lua_w8_cpu.lua"] + args if w == "W8" else None
    if impl in WEFTS:
        build = builds[impl]
        if isinstance(build, tuple):
            return build[1]
        if w in ("W5", "W5c"):  # a C host registers the pool function
            host = os.path.join(build, "w5_host_roundtrip")
            if not os.path.exists(host):
                return "w5_host_roundtrip is not built in " + \
                    os.path.basename(build)
            return [host, args[1], "bench/w5_host_roundtrip.lua", args[0]]
        script = "bench/%s.lua" % prog
        if not os.path.exists(os.path.join(ROOT, script)):
            return "%s does not exist yet (weft.%s is being built)" % (
                script, "fs" if w == "W6" else "http")
        if w == "W8b":
            return [os.path.join(build, "weft"), "--preempt", W8B_SLICE,
                    script] + args
        return [os.path.join(build, "weft"), script] + args
    lua = {"lua54-luv": ["lua5.4", "bench/peers/luv_%s.lua"],
           "luajit-luv": ["luajit", "bench/peers/luv_%s.lua"],
           "lua54-cqueues": ["lua5.4", "bench/peers/cq_%s.lua"],
           "node": ["node", "bench/peers/node_%s.js"],
           "python-asyncio": [PY, "bench/peers/py_%s.py"],
           "python-uvloop": [PY, "bench/peers/py_%s.py", "--uvloop"]}[impl]
    return [lua[0], lua[1] % prog] + lua[2:] + args


PROBES = {"lua54-luv": ["lua5.4", "-e", "require 'luv'"],
          "luajit-luv": ["luajit", "-e", "require 'luv'"],
          "lua54-cqueues": ["lua5.4", "-e", "require 'cqueues'"],
          "node": ["node", "-e", "0"],
          "python-asyncio": [PY, "-c", "import asyncio"],
          "python-uvloop": [PY, "-c", "import uvloop"],
          "lua54": ["lua5.4", "-v"],
          "luajit": ["luajit", "-v"]}


def missing_peers():
    """The peers whose interpreter or library is not installed."""
    out = set()
    for impl, argv in PROBES.items():
        try:
            ok = subprocess.run(argv, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode == 0
        except OSError:
            ok = False
        if not ok:
            out.add(impl)
    return out


def metric(w, res):
    """The figure a workload is judged by, from one result line."""
    if w == "W5":
        return res["wall_ms"] * 1000 / res["n"]
    return res[WORKLOADS[w][1]]


# --- running -------------------------------------------------------------

def run_once(argv, timeout, env):
    t0 = time.perf_counter()
    try:
        p = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": "over the time bound of %d s" % timeout}
    except OSError as e:
        return {"error": str(e)}
    proc_ms = (time.perf_counter() - t0) * 1000
    lines = []
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    tail = " | ".join(p.stderr.strip().splitlines()[-3:])
    if p.returncode != 0 or not lines:
        return {"error": "exit status %d, %s" % (p.returncode,
                                                  tail or "no result line")}
    res = lines[-1]
    if not res.get("ok"):
        return {"error": "result check failed: " + json.dumps(res)}
    res["proc_ms"] = proc_ms
    return res


def hyperfine_ms(argv, env, runs):
    """Median wall time of the whole process (W0), from hyperfine."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run(["hyperfine", "-N", "--style", "none", "--warmup",
                        "3", "--runs", str(runs), "--export-json", f.name,
                        shlex.join(argv)], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return json.load(open(f.name))["results"][0]["median"] * 1000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """A local nginx for W7: 1 worker, 127.0.0.1, GET /body returns 128
    bytes from a temporary directory. Its own config, no root paths."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="weft-nginx-")
        os.chmod(self.dir, 0o755)  # workers may run as another user
        os.makedirs(os.path.join(self.dir, "www"))
        os.makedirs(os.path.join(self.dir, "logs"))
        body = os.path.join(self.dir, "www", "body")
        with open(body, "w") as f:
            f.write("x" * 127 + "\n")
        os.chmod(body, 0o644)
        self.port = free_port()
        d = self.dir
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  default_type application/octet-stream;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  client_body_temp_path {d}/tmp_body;
  proxy_temp_path {d}/tmp_proxy;
  fastcgi_temp_path {d}/tmp_fastcgi;
  uwsgi_temp_path {d}/tmp_uwsgi;
  scgi_temp_path {d}/tmp_scgi;
  server {{ listen 127.0.0.1:{self.port}; root {d}/www; }}
}}
""")
        self.proc = subprocess.Popen(
            ["nginx", "-p", d, "-e", d + "/logs/error.log", "-c", conf],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start")

    def wrk(self, seconds):
        """nginx's capacity, measured by wrk (C, 1 thread, 50 connections)."""
        if not shutil.which("wrk"):
            return None
        out = subprocess.run(["wrk", "-t1", "-c50", "-d%ds" % seconds,
                              "http://127.0.0.1:%d/body" % self.port],
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Requests/sec:"):
                return float(line.split()[1])
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # nginx: fast shutdown of master + worker
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def make_files(nfiles):
    d = tempfile.mkdtemp(prefix="weft-w6-")
    for i in range(nfiles):
        with open(os.path.join(d, str(i)), "wb") as f:
            f.write(bytes([i % 251]) * 4096)
    for i in range(nfiles):  # into the page cache
        with open(os.path.join(d, str(i)), "rb") as f:
            f.read()
    return d


def build_weft(build, jobs, lua="5.4"):
    subprocess.run(["cmake", "-S", ROOT, "-B", build,
                    "-DCMAKE_BUILD_TYPE=Release", "-DWEFT_TESTS=OFF",
                    "-DWEFT_SANITIZE=OFF", "-DWEFT_TSAN=OFF",
                    "-DWEFT_LUA=" + lua],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build, "-j", str(jobs), "--target",
                    "weft_cli", "w5_host_roundtrip"], check=True,
                   stdout=subprocess.DEVNULL)


def luajit_build(build, make, jobs, log):
    """The directory of weft built on LuaJIT, built first if make, or
    ("n/a", why) when there is none: the LuaJIT half is optional."""
    name = os.path.basename(build)
    if make:
        try:
            build_weft(build, jobs, "luajit")
        except (subprocess.CalledProcessError, OSError) as e:
            log("bench: the LuaJIT build failed: %s" % e)
            return ("n/a", "weft did not build on LuaJIT in %s (cmake "
                    "-DWEFT_LUA=luajit needs LuaJIT's headers: "
                    "libluajit-5.1-dev)" % name)
    weft = os.path.join(build, "weft")
    try:
        version = subprocess.run([weft, "--version"], capture_output=True,
                                 text=True).stdout
    except OSError:
        version = ""
    if "LuaJIT" not in version:
        return ("n/a", "no weft built on LuaJIT in %s (bench/run.py builds "
                "one there unless --no-build)" % name)
    return build


def run_all(opts, builds, fill, log):
    """R[w][impl] = the median result, {"na": reason} or {"error": text}."""
    env = dict(os.environ, LUA_PATH=os.path.join(ROOT, "bench/peers/?.lua")
               + ";;")
    mode = "quick" if opts.quick else "full"
    R = {}
    missing = missing_peers()
    for impl in missing:
        log("bench: %s is not installed (scripts/bench-deps.sh installs "
            "it): skipped" % NAMES[impl])
    for w in opts.only:
        R[w] = {}
        args = [a.format(**fill) for a in WORKLOADS[w][6 if opts.quick
                                                         else 5]]
        cmds = {}
        for impl in IMPLS:
            c = command(w, impl, args, builds)
            if impl in missing and c is not None:
                c = "not installed"
            if w == "W7" and not fill["port"] and c is not None:
                c = "nginx is not installed"
            if isinstance(c, str):
                R[w][impl] = {"na": c}
            elif c is not None:
                cmds[impl] = c
        runs = {impl: [] for impl in cmds}
        # W8 compares two figures a few per cent apart: more runs.
        nruns = max(opts.runs, 5) if w == "W8" and not opts.quick \
            else opts.runs
        for _ in range(nruns):  # interleaved: noise hits everyone
            for impl, argv in cmds.items():
                if runs[impl] and "error" in runs[impl][-1]:
                    continue
                r = run_once(argv, opts.timeout, env)
                # W0 times the whole process: hyperfine's median of 10.
                if "error" not in r:
                    r["wall_ms"] = hyperfine_ms(argv, env, 10) \
                        if w == "W0" and not opts.quick else r["proc_ms"] \
                        if w == "W0" else r["wall_ms"]
                runs[impl].append(r)
        for impl, rs in runs.items():
            bad = [r for r in rs if "error" in r]
            if bad:
                R[w][impl] = bad[0]
                log("%-4s %-15s FAILED: %s" % (w, impl, bad[0]["error"]))
                continue
            rs.sort(key=lambda r: metric(w, r))
            med = rs[len(rs) // 2]
            v = [metric(w, r) for r in rs]
            med["spread"] = (v[-1] - v[0]) / v[len(v) // 2] \
                if v[len(v) // 2] else 0
            med["value"] = metric(w, med)
            med["runs"] = v  # every run's figure, in order of value
            med["cpu_runs"] = [r.get("cpu_ms") for r in rs]  # same order
            R[w][impl] = med
            log("%-4s %-15s %12s %s ±%.0f%%" % (w, impl, fmt(med["value"]),
                                               WORKLOADS[w][3],
                                               med["spread"] * 100))
    hashes = {r.get("hash") for r in R.get("W8", {}).values() if "hash" in r}
    if len(hashes) > 1:  # every W8 program must compute the same loop
        for r in R["W8"].values():
            if "hash" in r:
                r.clear()
                r["error"] = "W8 results differ between programs"
    return R


# --- reporting -----------------------------------------------------------

def fmt(v):
    if v is None:
        return "—"
    if abs(v) >= 100000:
        return "{:,.0f}".format(v)
    if abs(v) >= 100:
        return "{:.0f}".format(v)
    if abs(v) >= 10:
        return "{:.1f}".format(v)
    return "{:.2f}".format(v)


def val(R, w, impl):
    r = R.get(w, {}).get(impl, {})
    return r.get("value")


def best_peer(R, w, me="weft"):
    """The best peer of weft build me; W8's is its plain interpreter."""
    higher = WORKLOADS[w][2]
    if w == "W8":
        return (BASELINES[me], val(R, w, BASELINES[me]))
    cands = [(i, val(R, w, i)) for i in IMPLS
             if i not in WEFTS and i not in BASELINES.values()
             and val(R, w, i) is not None]
    if not cands:
        return (None, None)
    return (max if higher else min)(cands, key=lambda c: c[1])


def ratio(w, a, b):
    """Speed of weft relative to b: above 1 means weft is ahead."""
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return a / b if WORKLOADS[w][2] else b / a


def per_task_bytes(R, w, me="weft"):
    top, base = R.get(w, {}).get(me, {}), R.get("W0", {}).get(me, {})
    if "peak_rss_kb" not in top or "peak_rss_kb" not in base:
        return None
    return (top["peak_rss_kb"] - base["peak_rss_kb"]) * 1024 / top["n"]


def check_target(R, w, impl="weft"):
    """(target text, detail text, met: True/False/None)."""
    if impl == "weft-luajit":
        return check_target_luajit(R, w)
    me = val(R, w, "weft")
    node, luv = val(R, w, "node"), val(R, w, "lua54-luv")

    def vs(text, other, factor, what):
        r = ratio(w, me, other)
        if r is None:
            return text, "needs weft and %s" % what, None
        return text, "%.2f× %s" % (r, what), r >= factor
    if w == "W0":
        return vs("≤ the luv peer's start-up", luv, 1.0, "Lua 5.4 + luv")
    if w in ("W1", "W4a", "W4b"):
        return vs("≥ 1.5× Node.js", node, 1.5, "Node.js")
    if w in ("W2a", "W2b"):
        t, d, met = vs("wall ≤ 0.75× Node.js; ≤ 1.3 KB/task", node,
                       1 / 0.75, "Node.js (speed)")
        b = per_task_bytes(R, w)
        if b is None or met is None:
            return t, d, None
        return t, "%s; %.0f B/task" % (d, b), met and b <= 1300
    if w == "W3":
        return vs("≥ 2× Lua 5.4 + luv (LuaJIT's: in weft (LuaJIT)'s "
                  "table)", luv, 2.0, "Lua 5.4 + luv")
    if w == "W5":
        return vs("≥ 2× luv (≤ 13 µs)", luv, 2.0, "Lua 5.4 + luv")
    if w == "W5c":
        seq = R.get("W5", {}).get("weft", {})
        if me is None or "ops_per_sec" not in seq:
            return "≥ 10× W5", "needs weft W5 and W5c", None
        r = me / seq["ops_per_sec"]
        return "≥ 10× W5", "%.1f× weft's W5" % r, r >= 10
    if w == "W6":
        bp, bv = best_peer(R, w)
        return vs("≥ 1.3× the best peer", bv, 1.3, NAMES.get(bp, "peer"))
    if w == "W7":
        bp, bv = best_peer(R, w)
        t, d, met = vs("req/s within 5% of the best; CPU/req ≤ luv's", bv,
                       0.95, NAMES.get(bp, "peer"))
        mine = R.get(w, {}).get("weft", {})
        raw = R.get(w, {}).get("lua54-luv", {})
        if met is None or "cpu_ms" not in raw:
            return t, d, None
        a, b = (mine["cpu_ms"] * 1000 / mine["n"],
                raw["cpu_ms"] * 1000 / raw["n"])
        return t, "%s; %.1f vs %.1f µs CPU/req" % (d, a, b), met and a <= b
    if w == "W8":
        plain = val(R, w, "lua54")
        if me is None or plain is None:
            return "overhead ≤ 2%", "needs weft and plain lua5.4", None
        o = me / plain - 1
        return "overhead ≤ 2%", "overhead %+.1f%%" % (o * 100), o <= 0.02
    if w == "W8b":
        return ("none (BENCH.md: once preemption exists)",
                "weft --preempt %s" % W8B_SLICE, None)
    return "", "", None


def check_target_luajit(R, w):
    """check_target for weft on LuaJIT: BENCH.md sets W1, W3 and W4 (and
    W8's overhead, which holds for every VM); the rest are 5.4's only."""
    me = val(R, w, "weft-luajit")
    node, luv = val(R, w, "node"), val(R, w, "luajit-luv")
    if w in ("W1", "W4a", "W4b", "W3"):
        a, b = ratio(w, me, node), ratio(w, me, luv)
        if a is None or (w == "W3" and b is None):
            return "≥ Node.js", "needs weft (LuaJIT) and Node.js%s" % (
                " and LuaJIT + luv" if w == "W3" else ""), None
        if w != "W3":
            return "≥ Node.js", "%.2f× Node.js" % a, a >= 1
        return ("≥ Node.js; ≥ 2× LuaJIT + luv",
                "%.2f× Node.js; %.2f× LuaJIT + luv" % (a, b),
                a >= 1 and b >= 2)
    if w == "W8":
        plain = val(R, w, "luajit")
        if me is None or plain is None:
            return "overhead ≤ 2%", "needs weft and plain luajit", None
        o = me / plain - 1
        return "overhead ≤ 2%", "overhead %+.1f%%" % (o * 100), o <= 0.02
    return "none on LuaJIT", "", None


def sh(cmd):
    try:
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True,
                           cwd=ROOT, timeout=30)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except (subprocess.SubprocessError, IndexError):
        return "?"


def machine(builds, load):
    build = builds["weft"]
    flags = "?"
    fm = os.path.join(build, "CMakeFiles/weft_rest.dir/flags.make")
    if os.path.exists(fm):
        for line in open(fm):
            if line.startswith("C_FLAGS"):
                flags = line.split("=", 1)[1].strip()
    cc = "?"
    cache = os.path.join(build, "CMakeCache.txt")
    for line in open(cache):
        if line.startswith("CMAKE_C_COMPILER:"):
            cc = sh(line.split("=", 1)[1].strip() + " --version")
    model = sh("grep -m1 'model name' /proc/cpuinfo").split(":")[-1].strip()
    mem = "%.0f GiB" % (int(sh("grep -m1 MemTotal /proc/meminfo").split()[1])
                        / 2**20)
    dirty = sh("git status --porcelain -- src include CMakeLists.txt "
               "| wc -l")
    return [
        ("CPU", "%s, %d cores, %s RAM" % (model, os.cpu_count(), mem)),
        ("kernel", sh("uname -sr")),
        ("compiler", cc),
        ("flags (weft)", "`%s` (CMAKE_BUILD_TYPE=Release)" % flags),
        ("weft (LuaJIT)", builds["weft-luajit"][1]
         if isinstance(builds["weft-luajit"], tuple) else
         "the same flags, -DWEFT_LUA=luajit: " +
         sh(shlex.quote(os.path.join(builds["weft-luajit"], "weft")) +
            " --version")),
        ("commit", "%s%s" % (sh("git rev-parse --short HEAD"),
                             "" if dirty == "0" else
                             " + %s uncommitted changed files in src/, "
                             "include/ (others work in this checkout)"
                             % dirty)),
        ("load average", "%.2f before, %.2f after the run (2 cores)" % load),
        ("peers", "; ".join([
            sh("lua5.4 -v"), sh("luajit -v").split(" -- ")[0],
            "luv " + sh("lua5.4 -e 'print(require(\"luv\")"
                        ".version_string())'"),
            "cqueues " + sh("dpkg-query -W -f='${Version}' lua-cqueues"),
            "Node.js " + sh("node -v"), sh(PY + " -V"),
            "uvloop " + sh(PY + " -c 'import uvloop;"
                           "print(uvloop.__version__)'"),
            sh("nginx -v")])),
    ]


def summary_rows(R, impl="weft"):
    rows = []
    for w in R:
        me = val(R, w, impl)
        bp, bv = best_peer(R, w, impl)
        target, detail, met = check_target(R, w, impl)
        na = R[w].get(impl, {}).get("na") or R[w].get(impl, {}).get(
            "error")
        rows.append((w, me, bp, bv, ratio(w, me, bv), target, detail, met,
                     na))
    return rows


def summary(R, impl, add):
    """The summary table of one weft build against the best peers."""
    add("| workload | unit | %s | best peer | ratio | target | "
        "measured | met |" % NAMES[impl])
    add("|---|---|---:|---|---:|---|---|---|")
    for w, me, bp, bv, r, target, detail, met, na in summary_rows(R, impl):
        unit = WORKLOADS[w][3]
        add("| %s %s | %s | %s | %s | %s | %s | %s | %s |" % (
            w, WORKLOADS[w][0], unit, fmt(me) if na is None else "n/a",
            "%s %s" % (NAMES.get(bp, "—"), fmt(bv)) if bp else "—",
            "%.2f" % r if r else "—", target,
            detail if na is None else na,
            {True: "**met**", False: "missed", None: "—"}[met]))
    add("")


def markdown(R, opts, builds, load, nginx_cap):
    out = []
    add = out.append
    add("Generated by `make bench` (bench/run.py) on %s: median of %d runs "
        "per figure (W8: %d), one OS process per run, implementations "
        "interleaved; W0 is hyperfine's median of 10 process starts per run."
        % (time.strftime("%Y-%m-%d %H:%M %Z"), opts.runs, max(opts.runs, 5)))
    add("")
    add("| | |\n|---|---|")
    for k, v in machine(builds, load):
        add("| %s | %s |" % (k, v.replace("|", "/")))
    add("")
    add("## Summary: weft against the best peer")
    add("")
    add("Ratio: weft's speed over the best peer's in the same run; above 1 "
        "means weft is ahead (for times: the peer's time / weft's time).")
    add("")
    summary(R, "weft", add)
    if any("weft-luajit" in R[w] for w in R):
        add("## Summary: weft on LuaJIT against the best peer")
        add("")
        add("The same programs, run by weft built on LuaJIT "
            "(-DWEFT_LUA=luajit). BENCH.md's targets for it: W1, W3 and W4 "
            "≥ Node.js, W3 ≥ 2× LuaJIT + luv; W8's baseline is plain "
            "luajit.")
        add("")
        summary(R, "weft-luajit", add)
    add("## All figures")
    add("")
    add("The figure each workload is judged by (unit in the second column); "
        "n/a: the implementation lacks the primitive (reason below); "
        "±: spread of the runs (max − min over the median).")
    add("")
    impls = [i for i in IMPLS if any(i in R[w] for w in R)]
    add("| workload | unit | " + " | ".join(NAMES[i] for i in impls) + " |")
    add("|---|---|" + "---:|" * len(impls))
    notes = {}
    for w in R:
        cells = []
        for i in impls:
            r = R[w].get(i)
            if r is None:
                cells.append("")
            elif "na" in r:
                notes.setdefault(r["na"], []).append("%s %s" % (NAMES[i], w))
                cells.append("n/a")
            elif "error" in r:
                cells.append("FAILED")
            else:
                cells.append("%s ±%.0f%%" % (fmt(r["value"]),
                                             r["spread"] * 100))
        add("| %s | %s | %s |" % (w, WORKLOADS[w][3], " | ".join(cells)))
    add("")
    add("Peak RSS (VmHWM, MiB) of the same runs:")
    add("")
    add("| workload | " + " | ".join(NAMES[i] for i in impls) + " |")
    add("|---|" + "---:|" * len(impls))
    for w in R:
        cells = []
        for i in impls:
            r = R[w].get(i, {})
            cells.append("%.1f" % (r["peak_rss_kb"] / 1024)
                         if "peak_rss_kb" in r else "")
        add("| %s | %s |" % (w, " | ".join(cells)))
    add("")
    if "W2a" in R or "W2b" in R:
        add("Memory per sleeping task (W2), bytes: peak RSS of W2 minus "
            "peak RSS of W0 (the empty loop), over N; and, in brackets, the "
            "program's own reading (VmRSS once every task has parked, "
            "minus VmRSS before spawning).")
        add("")
        add("| workload | " + " | ".join(NAMES[i] for i in impls) + " |")
        add("|---|" + "---:|" * len(impls))
        for w in ("W2a", "W2b"):
            if w not in R:
                continue
            cells = []
            for i in impls:
                r, b = R[w].get(i, {}), R.get("W0", {}).get(i, {})
                if "peak_rss_kb" in r and "peak_rss_kb" in b:
                    own = r.get("bytes_per_task")
                    cells.append("%.0f%s" % (
                        (r["peak_rss_kb"] - b["peak_rss_kb"]) * 1024 / r["n"],
                        " (%.0f)" % own if own is not None else ""))
                else:
                    cells.append("")
            add("| %s | %s |" % (w, " | ".join(cells)))
        add("")
    if "W7" in R:
        add("Client CPU per request (W7), µs: " + ", ".join(
            "%s %.1f" % (NAMES[i], r["cpu_ms"] * 1000 / r["n"])
            for i, r in R["W7"].items() if "cpu_ms" in r) + "." +
            (" nginx itself serves %s req/s to wrk (C, 1 thread, 50 "
             "connections): the clients are bound by the server." %
             fmt(nginx_cap) if nginx_cap else ""))
        add("")
    if notes:
        add("n/a:")
        add("")
        for reason, who in notes.items():
            add("- %s: %s." % (", ".join(who), reason))
        add("")
    failed = [(w, i, r["error"]) for w in R for i, r in R[w].items()
              if "error" in r]
    if failed:
        add("Failed runs:")
        add("")
        for w, i, e in failed:
            add("- %s %s: %s" % (w, NAMES[i], e))
        add("")
    add("![weft's ratio to the best peer per workload](performance.png)")
    return "\n".join(out)


def chart(R, png):
    """Each weft build's ratio to the best peer per workload, side by side
    ("?": no figure)."""
    lj = {w: r for w, _, _, _, r, _, _, _, _ in summary_rows(R, "weft-luajit")
          if r}
    rows = [(w, r, lj.get(w)) for w, _, _, _, r, _, _, _, _ in summary_rows(R)
            if r or lj.get(w)]
    if not rows or not shutil.which("gnuplot"):
        return False
    ratios = [r for row in rows for r in row[1:] if r]
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "ratio.dat")
        with open(data, "w") as f:
            for w, r, r2 in rows:
                f.write("%s %s %s\n" % (w, "%.4f" % r if r else "?",
                                        "%.4f" % r2 if r2 else "?"))
        top = max(2.0, max(ratios) * 1.5)
        low = min(0.5, min(ratios) / 1.5)
        script = f"""
set terminal pngcairo size 900,480 font "sans,11"
set output "{png}"
set title "weft / best peer (speed ratio; above 1: weft ahead)"
set datafile missing "?"
set logscale y
set yrange [{low}:{top}]
set ytics (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
set grid ytics
set style fill solid 0.8 border -1
set boxwidth 0.38
set key top left
set xtics nomirror
f(x) = 1
plot "{data}" using 0:(NaN):xtic(1) with points notitle, \\
     "" using ($0-0.2):2 with boxes lc rgb "#3a7bd5" title "weft (Lua 5.4)", \\
     "" using ($0-0.2):2:(sprintf("%.2f", $2)) with labels offset 0,0.8 \\
       font ",8" notitle, \\
     "" using ($0+0.2):3 with boxes lc rgb "#e67e22" title "weft (LuaJIT)", \\
     "" using ($0+0.2):3:(sprintf("%.2f", $3)) with labels offset 0,0.8 \\
       font ",8" notitle, \\
     f(x) with lines lc rgb "#c0392b" lw 2 dt 2 notitle
"""
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    return True


BEGIN = "<!-- BEGIN GENERATED: bench/run.py rewrites this part -->"
END = "<!-- END GENERATED -->"


def write_doc(path, body):
    old = open(path).read() if os.path.exists(path) else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
    else:
        head = ("# weft performance\n\nweft against its peers on the "
                "workloads of BENCH.md. Run `make bench` to measure again "
                "(see the README).\n\n")
        tail = "\n"
    with open(path, "w") as f:
        f.write(head + BEGIN + "\n" + body + "\n" + END + tail)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--only", help="comma-separated workloads, e.g. W1,W3")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--build-luajit",
                    help="weft built on LuaJIT (default: --build + -luajit)")
    ap.add_argument("--no-build", action="store_true",
                    help="use the builds already in --build and "
                    "--build-luajit")
    ap.add_argument("--timeout", type=int)
    ap.add_argument("--out", help="the document to write (default: "
                    "docs/performance.md, and only from a run of every "
                    "workload)")
    ap.add_argument("--json", help="also write every run's result here")
    opts = ap.parse_args()
    opts.runs = opts.runs or (1 if opts.quick else 3)
    opts.timeout = opts.timeout or (60 if opts.quick else 300)
    opts.only = opts.only.split(",") if opts.only else list(WORKLOADS)
    # A run of some workloads prints its tables: written over the
    # document, it would replace a complete run's figures.
    partial = set(opts.only) != set(WORKLOADS) and not opts.out
    opts.out = opts.out or os.path.join(ROOT, "docs", "performance.md")
    build = os.path.abspath(opts.build)
    log = lambda s: print(s, flush=True)
    jobs = min(2, os.cpu_count() or 1)
    if not opts.no_build:
        build_weft(build, jobs)
    builds = {"weft": build, "weft-luajit": luajit_build(
        os.path.abspath(opts.build_luajit or build.rstrip("/") + "-luajit"),
        not opts.no_build, jobs, log)}
    if isinstance(builds["weft-luajit"], tuple):
        log("bench: weft (LuaJIT) is n/a: " + builds["weft-luajit"][1])
    load0 = os.getloadavg()[0]
    nfiles, passes = W6_FILES["quick" if opts.quick else "full"]
    files = make_files(nfiles) if "W6" in opts.only else ""
    nginx = Nginx() if "W7" in opts.only and shutil.which("nginx") else None
    cap = None
    try:
        if nginx and not opts.quick:
            cap = nginx.wrk(3)
        R = run_all(opts, builds, {"dir": files, "nfiles": nfiles,
                                  "passes": passes,
                                  "port": nginx.port if nginx else 0}, log)
    finally:
        if nginx:
            nginx.stop()
        if files:
            shutil.rmtree(files, ignore_errors=True)
    body = markdown(R, opts, builds, (load0, os.getloadavg()[0]), cap)
    failed = any("error" in r for w in R for r in R[w].values())
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(R, f, indent=1)
    if opts.quick:
        print("\n" + body.split("## All figures")[1].split("Peak RSS")[0]
              .strip())
    elif partial:
        print("\n## Summary" + body.split("## Summary", 1)[1]
              .split("Peak RSS")[0].rstrip())
        log("(some workloads only: %s not written; --out FILE writes the "
            "document there)" % os.path.relpath(opts.out, ROOT))
    else:
        write_doc(opts.out, body)
        chart(R, os.path.join(os.path.dirname(opts.out), "performance.png"))
        log("wrote %s and performance.png" % opts.out)
    if failed:
        log("bench: some programs failed (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
