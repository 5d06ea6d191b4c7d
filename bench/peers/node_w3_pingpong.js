// W3 ping-pong, Node.js peer: Node has no channel; this one (capacity 1)
// is a slot plus the resolvers of the parked sender and receiver, the
// usual promise-based queue.
// usage: node bench/peers/node_w3_pingpong.js [N]
'use strict';
const C = require('./node_common');
const N = Number(process.argv[2] || 1000000);

class Channel {
  constructor() { this.full = false; this.v = undefined; this.recvq = []; this.sendq = []; }
  async send(v) {
    while (this.full) await new Promise((r) => this.sendq.push(r));
    this.v = v; this.full = true;
    if (this.recvq.length) this.recvq.shift()();
  }
  async recv() {
    while (!this.full) await new Promise((r) => this.recvq.push(r));
    const v = this.v; this.v = undefined; this.full = false;
    if (this.sendq.length) this.sendq.shift()();
    return v;
  }
}

(async () => {
  const ping = new Channel(), pong = new Channel();
  const t0 = C.now(), c0 = C.cpu();
  const ponger = (async () => { for (let i = 0; i < N; i++) await pong.send((await ping.recv()) + 1); })();
  const pinger = (async () => {
    let sum = 0;
    for (let i = 1; i <= N; i++) { await ping.send(i); sum += await pong.recv(); }
    return sum;
  })();
  const sum = await pinger;
  await ponger;
  C.report('W3', N, C.now() - t0, C.cpu() - c0, sum === N * (N + 1) / 2 + N);
})();
