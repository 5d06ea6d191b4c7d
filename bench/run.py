#!/usr/bin/python3
"""bench/run.py - runs the workloads of BENCH.md (W0-W8) for weft and its
peers and writes docs/performance.md and docs/performance.png.

usage: /usr/bin/python3 bench/run.py [--quick] [--runs R] [--only W1,W3]
                                     [--build DIR] [--timeout S]

It builds weft in Release mode in build-bench/ (no tests, no sanitizers),
creates the W6 file set in a temporary directory, starts a local nginx for
W7 (1 worker, 127.0.0.1, a 128-byte body from a temporary directory; it is
stopped at the end), then runs every workload for every implementation,
one OS process per measurement, R times (default 3), interleaving the
implementations, and keeps the median run. Every program checks its own
result and prints one JSON line; a failed check, a crash or a run over the
time bound fails the whole command (exit status 1).

--quick runs small sizes once: a smoke test that every program works and
checks its result. It prints the table and writes no document.

Programs: bench/<workload>.lua for weft (bench/w5_host_roundtrip.c hosts
W5), bench/peers/ for the peers. The weft programs of W6 and W7 are run
only if they exist, with these arguments:
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

IMPLS = ["weft", "lua54-luv", "luajit-luv", "lua54-cqueues", "node",
         "python-asyncio", "python-uvloop", "lua54"]
NAMES = {"weft": "weft (Lua 5.4)", "lua54-luv": "Lua 5.4 + luv",
         "luajit-luv": "LuaJIT + luv", "lua54-cqueues": "Lua 5.4 + cqueues",
         "node": "Node.js", "python-asyncio": "Python asyncio",
         "python-uvloop": "Python uvloop", "lua54": "plain lua5.4"}

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

NOT_LUA54 = "W8 measures task overhead on the Lua 5.4 VM; this peer runs " \
            "another VM"
NO_PREEMPT = "W8b: like Lua 5.4 + luv and Node.js, nothing preempts the " \
             "loop, so the timer waits for all of it"
NA = {("luajit-luv", "W8"): NOT_LUA54, ("node", "W8"): NOT_LUA54,
      ("python-asyncio", "W8"): NOT_LUA54,
      ("python-uvloop", "W8"): NOT_LUA54,
      ("luajit-luv", "W8b"): NO_PREEMPT, ("lua54-cqueues", "W8b"): NO_PREEMPT,
      ("python-asyncio", "W8b"): NO_PREEMPT,
      ("python-uvloop", "W8b"): NO_PREEMPT}


def command(w, impl, args, build):
    """The argv that runs workload w for impl, a string (n/a reason), or
    None when impl does not take part in w."""
    prog = WORKLOADS[w][4]
    if (impl, w) in NA:
        return NA[(impl, w)]
    if impl == "lua54":  # the plain-Lua baseline of W8 only
        return ["lua5.4", "bench/peers/lua_w8_cpu.lua"] + args \
            if w == "W8" else None
    if impl == "weft":
        if w in ("W5", "W5c"):  # a C host registers the pool function
            return [os.path.join(build, "w5_host_roundtrip"), args[1],
                    "bench/w5_host_roundtrip.lua", args[0]]
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
          "lua54": ["lua5.4", "-v"]}


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


def build_weft(build, jobs):
    subprocess.run(["cmake", "-S", ROOT, "-B", build,
                    "-DCMAKE_BUILD_TYPE=Release", "-DWEFT_TESTS=OFF",
                    "-DWEFT_SANITIZE=OFF", "-DWEFT_TSAN=OFF"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build, "-j", str(jobs), "--target",
                    "weft_cli", "w5_host_roundtrip"], check=True,
                   stdout=subprocess.DEVNULL)


def run_all(opts, build, fill, log):
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
            c = command(w, impl, args, build)
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
            R[w][impl] = med
            log("%-4s %-15s %12s %s" % (w, impl, fmt(med["value"]),
                                        WORKLOADS[w][3]))
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


def best_peer(R, w):
    higher = WORKLOADS[w][2]
    if w == "W8":
        return ("lua54", val(R, w, "lua54"))
    cands = [(i, val(R, w, i)) for i in IMPLS
             if i not in ("weft", "lua54") and val(R, w, i) is not None]
    if not cands:
        return (None, None)
    return (max if higher else min)(cands, key=lambda c: c[1])


def ratio(w, a, b):
    """Speed of weft relative to b: above 1 means weft is ahead."""
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return a / b if WORKLOADS[w][2] else b / a


def per_task_bytes(R, w):
    top, base = R.get(w, {}).get("weft", {}), R.get("W0", {}).get("weft", {})
    if "peak_rss_kb" not in top or "peak_rss_kb" not in base:
        return None
    return (top["peak_rss_kb"] - base["peak_rss_kb"]) * 1024 / top["n"]


def check_target(R, w):
    """(target text, detail text, met: True/False/None)."""
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
        return vs("≥ 2× Lua 5.4 + luv (the LuaJIT half: n/a, weft runs "
                  "on Lua 5.4)", luv, 2.0, "Lua 5.4 + luv")
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


def sh(cmd):
    try:
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True,
                           cwd=ROOT, timeout=30)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except (subprocess.SubprocessError, IndexError):
        return "?"


def machine(build, load):
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


def summary_rows(R):
    rows = []
    for w in R:
        me = val(R, w, "weft")
        bp, bv = best_peer(R, w)
        target, detail, met = check_target(R, w)
        na = R[w].get("weft", {}).get("na") or R[w].get("weft", {}).get(
            "error")
        rows.append((w, me, bp, bv, ratio(w, me, bv), target, detail, met,
                     na))
    return rows


def markdown(R, opts, build, load, nginx_cap):
    out = []
    add = out.append
    add("Generated by `make bench` (bench/run.py) on %s: median of %d runs "
        "per figure (W8: %d), one OS process per run, implementations "
        "interleaved; W0 is hyperfine's median of 10 process starts per run."
        % (time.strftime("%Y-%m-%d %H:%M %Z"), opts.runs, max(opts.runs, 5)))
    add("")
    add("| | |\n|---|---|")
    for k, v in machine(build, load):
        add("| %s | %s |" % (k, v.replace("|", "/")))
    add("")
    add("## Summary: weft against the best peer")
    add("")
    add("Ratio: weft's speed over the best peer's in the same run; above 1 "
        "means weft is ahead (for times: the peer's time / weft's time).")
    add("")
    add("| workload | unit | weft | best peer | ratio | target | "
        "measured | met |")
    add("|---|---|---:|---|---:|---|---|---|")
    for w, me, bp, bv, r, target, detail, met, na in summary_rows(R):
        unit = WORKLOADS[w][3]
        add("| %s %s | %s | %s | %s | %s | %s | %s | %s |" % (
            w, WORKLOADS[w][0], unit, fmt(me) if na is None else "n/a",
            "%s %s" % (NAMES.get(bp, "—"), fmt(bv)) if bp else "—",
            "%.2f" % r if r else "—", target,
            detail if na is None else na,
            {True: "**met**", False: "missed", None: "—"}[met]))
    add("")
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
    rows = [(w, r) for w, _, _, _, r, _, _, _, _ in summary_rows(R) if r]
    if not rows or not shutil.which("gnuplot"):
        return False
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "ratio.dat")
        with open(data, "w") as f:
            for w, r in rows:
                f.write("%s %.4f\n" % (w, r))
        top = max(2.0, max(r for _, r in rows) * 1.5)
        low = min(0.5, min(r for _, r in rows) / 1.5)
        script = f"""
set terminal pngcairo size 900,480 font "sans,11"
set output "{png}"
set title "weft / best peer (speed ratio; above 1: weft ahead)"
set logscale y
set yrange [{low}:{top}]
set ytics (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
set grid ytics
set style fill solid 0.8 border -1
set boxwidth 0.6
set key off
set xtics nomirror
f(x) = 1
plot "{data}" using 0:2:xtic(1) with boxes lc rgb "#3a7bd5", \\
     "" using 0:2:(sprintf("%.2f", $2)) with labels offset 0,0.8, \\
     f(x) with lines lc rgb "#c0392b" lw 2 dt 2
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
    ap.add_argument("--no-build", action="store_true",
                    help="use the weft already built in --build")
    ap.add_argument("--timeout", type=int)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs",
                                                  "performance.md"))
    opts = ap.parse_args()
    opts.runs = opts.runs or (1 if opts.quick else 3)
    opts.timeout = opts.timeout or (60 if opts.quick else 300)
    opts.only = opts.only.split(",") if opts.only else list(WORKLOADS)
    build = os.path.abspath(opts.build)
    log = lambda s: print(s, flush=True)
    if not opts.no_build:
        build_weft(build, min(2, os.cpu_count() or 1))
    load0 = os.getloadavg()[0]
    nfiles, passes = W6_FILES["quick" if opts.quick else "full"]
    files = make_files(nfiles) if "W6" in opts.only else ""
    nginx = Nginx() if "W7" in opts.only and shutil.which("nginx") else None
    cap = None
    try:
        if nginx and not opts.quick:
            cap = nginx.wrk(3)
        R = run_all(opts, build, {"dir": files, "nfiles": nfiles,
                                  "passes": passes,
                                  "port": nginx.port if nginx else 0}, log)
    finally:
        if nginx:
            nginx.stop()
        if files:
            shutil.rmtree(files, ignore_errors=True)
    body = markdown(R, opts, build, (load0, os.getloadavg()[0]), cap)
    failed = any("error" in r for w in R for r in R[w].values())
    if opts.quick:
        print("\n" + body.split("## All figures")[1].split("Peak RSS")[0]
              .strip())
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
