// W1 spawn-await, Node.js peer: a task is an async function call.
// usage: node bench/peers/node_w1_spawn_await.js [N]
'use strict';
const C = require('./node_common');
const N = Number(process.argv[2] || 100000);

async function body(i) { return i; }
(async () => {
  const tasks = new Array(N);
  const t0 = C.now(), c0 = C.cpu();
  for (let i = 0; i < N; i++) tasks[i] = body(i + 1);
  let sum = 0;
  for (let i = 0; i < N; i++) sum += await tasks[i];
  C.report('W1', N, C.now() - t0, C.cpu() - c0, sum === N * (N + 1) / 2);
})();
