// node_common.js - helpers shared by the Node.js peer programs: peak RSS
// (VmHWM), the one JSON result line of BENCH.md, the W4 generator and the
// W6 file check.
// SPDX-License-Identifier: MIT
'use strict';
const fs = require('fs');

function rssKb(field = 'VmHWM') {
  const m = fs.readFileSync('/proc/self/status', 'utf8')
    .match(new RegExp(field + ':\\s*(\\d+)'));
  return m ? Number(m[1]) : 0;
}

// Monotonic milliseconds and process CPU milliseconds (all threads).
const now = () => Number(process.hrtime.bigint()) / 1e6;
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e3; };

function report(workload, n, wallMs, cpuMs, ok, extra = {}) {
  const line = { impl: 'node', workload, n, wall_ms: +wallMs.toFixed(3),
    ops_per_sec: +(n / Math.max(wallMs, 1e-3) * 1000).toFixed(1),
    cpu_ms: +cpuMs.toFixed(3), peak_rss_kb: rssKb() };
  for (const k of Object.keys(extra).sort()) line[k] = extra[k];
  line.ok = ok;
  process.stdout.write(JSON.stringify(line) + '\n');
  if (!ok) process.exitCode = 1;
}

function na(workload, reason) {
  process.stdout.write(JSON.stringify({ impl: 'node', workload, na: reason, ok: true }) + '\n');
}

// Park-Miller minstd, seed 42: returns the next delay in 0..999.
function minstd(seed = 42) {
  let x = seed;
  return () => { x = (x * 16807) % 2147483647; return x % 1000; };
}

// W6: file i holds 4096 bytes of the byte i % 251.
const fileOk = (i, buf) => buf.length === 4096 && buf[0] === i % 251 && buf[4095] === i % 251;

module.exports = { rssKb, now, cpu, report, na, minstd, fileOk };
