// W4 timers, Node.js peer: setTimeout / clearTimeout. Mode a: start all,
// then clear all (the clock stops after one loop turn). Mode b: let all fire.
// usage: node bench/peers/node_w4_timers.js a|b [N]
'use strict';
const C = require('./node_common');
const mode = process.argv[2] || 'a', N = Number(process.argv[3] || 1000000);
if (mode !== 'a' && mode !== 'b') throw new Error('mode must be a or b');

(async () => {
  const next = C.minstd(42);
  let fired = 0, sum = 0, want = 0, allFired;
  const done = new Promise((r) => { allFired = r; });
  const fire = (d) => { fired++; sum += d; if (fired === N) allFired(); };
  const timers = new Array(N);
  const t0 = C.now(), c0 = C.cpu();
  for (let i = 0; i < N; i++) {
    const d = next();
    want += d;
    timers[i] = setTimeout(fire, d, d);
  }
  let ok;
  if (mode === 'a') {
    for (let i = 0; i < N; i++) clearTimeout(timers[i]);
    await new Promise((r) => setImmediate(r));
    ok = fired === 0;
  } else {
    await done;
    ok = fired === N && sum === want;
  }
  C.report('W4' + mode, N, C.now() - t0, C.cpu() - c0, ok);
})();
