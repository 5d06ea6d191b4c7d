// W5 worker round trip, Node.js peer: x -> x + 1 runs on worker_threads
// workers reached with postMessage; each call is a promise resolved by the
// worker's reply (matched by id). seq: N calls in sequence on one worker
// (W5); c: N calls from 64 async tasks over 4 workers, libuv's default
// pool size (W5c).
// usage: node bench/peers/node_w5_roundtrip.js seq|c [N]
'use strict';
const { Worker } = require('worker_threads');
const C = require('./node_common');
const mode = process.argv[2] || 'seq', N = Number(process.argv[3] || 100000);

const src = `const { parentPort } = require('worker_threads');
parentPort.on('message', ([id, x]) => parentPort.postMessage([id, x + 1]));`;

function newWorker() {
  const w = new Worker(src, { eval: true });
  const pending = new Map();
  w.on('message', ([id, r]) => { const res = pending.get(id); pending.delete(id); res(r); });
  return { w, pending };
}
let nextId = 0;
function inc(worker, x) {
  const id = nextId++;
  return new Promise((res) => { worker.pending.set(id, res); worker.w.postMessage([id, x]); });
}

(async () => {
  const workers = [];
  for (let i = 0; i < (mode === 'seq' ? 1 : 4); i++) workers.push(newWorker());
  for (let i = 0; i < 1000; i++) await inc(workers[i % workers.length], 1); // warm-up
  const t0 = C.now(), c0 = C.cpu();
  let ok;
  if (mode === 'seq') {
    let x = 0;
    for (let i = 0; i < N; i++) x = await inc(workers[0], x);
    ok = x === N;
  } else {
    const K = 64, tasks = [];
    for (let k = 0; k < K; k++) {
      const w = workers[k % workers.length];
      tasks.push((async () => { let acc = 0; for (let i = k; i < N; i += K) acc += await inc(w, 0); return acc; })());
    }
    const sum = (await Promise.all(tasks)).reduce((a, b) => a + b, 0);
    ok = sum === N;
  }
  const wall = C.now() - t0;
  C.report(mode === 'seq' ? 'W5' : 'W5c', N, wall, C.cpu() - c0, ok, { us_per_op: +(wall * 1000 / N).toFixed(3) });
  for (const w of workers) await w.w.terminate();
})();
