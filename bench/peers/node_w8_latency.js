// W8b timer lateness, Node.js peer: a CPU-bound loop in an async task
// while the main task sleeps 1 ms again and again. Nothing preempts the
// loop, so the first sleep waits for all of it.
// usage: node bench/peers/node_w8_latency.js [N]
'use strict';
const { now, cpu, report } = require('./node_common');
const N = Number(process.argv[2] || 100000000);

function work(n) {
  let h = 0;
  for (let i = 1; i <= n; i++) h = (h * 31 + i) % 1000003;
  return h;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  const t0 = now(), c0 = cpu();
  let done = false, h = -1;
  const busy = (async () => { await null; h = work(N); done = true; })();
  let late = 0, sleeps = 0;
  do {
    const s = now();
    await sleep(1);
    late = Math.max(late, now() - s - 1);
    sleeps++;
  } while (!done);
  await busy;
  report('W8b', N, now() - t0, cpu() - c0, h >= 0 && h < 1000003,
    { late_ms: +late.toFixed(3), sleeps });
})();
