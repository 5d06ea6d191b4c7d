// W2 sleep fan-out, Node.js peer: async functions awaiting a setTimeout
// promise (timers/promises).
// usage: node bench/peers/node_w2_sleep_fanout.js [N]
'use strict';
const { setTimeout: sleep } = require('timers/promises');
const C = require('./node_common');
const N = Number(process.argv[2] || 10000);

async function body(i) { await sleep(100); return i; }
(async () => {
  if (global.gc) global.gc();
  const base = C.rssKb('VmRSS');
  const tasks = new Array(N);
  const t0 = C.now(), c0 = C.cpu();
  for (let i = 0; i < N; i++) tasks[i] = body(i + 1);
  const sleeping = C.rssKb('VmRSS'); // every task has started and parked
  let sum = 0;
  for (let i = 0; i < N; i++) sum += await tasks[i];
  C.report('W2', N, C.now() - t0, C.cpu() - c0, sum === N * (N + 1) / 2,
    { bytes_per_task: +((sleeping - base) * 1024 / N).toFixed(1) });
})();
