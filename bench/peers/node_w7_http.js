// W7 HTTP, Node.js peer: the http module with a keep-alive Agent of CONNS
// sockets; CONNS async tasks each do their share of the N GETs in sequence.
// usage: node bench/peers/node_w7_http.js PORT [N] [CONNS]
'use strict';
const http = require('http');
const C = require('./node_common');
const port = Number(process.argv[2]), N = Number(process.argv[3] || 10000);
const CONNS = Number(process.argv[4] || 50);
const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });

function get() {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/body', agent }, (res) => {
      let bytes = 0;
      res.on('data', (chunk) => { bytes += chunk.length; });
      res.on('end', () => resolve([res.statusCode, bytes]));
    }).on('error', reject);
  });
}

(async () => {
  let good = 0, bytes = 0;
  async function client(count) {
    for (let i = 0; i < count; i++) {
      const [status, b] = await get();
      if (status === 200) good++;
      bytes += b;
    }
  }
  const t0 = C.now(), c0 = C.cpu();
  const tasks = [];
  for (let k = 0; k < CONNS; k++) tasks.push(client(Math.floor(N / CONNS) + (k < N % CONNS ? 1 : 0)));
  await Promise.all(tasks);
  const cpu = C.cpu() - c0;
  C.report('W7', N, C.now() - t0, cpu, good === N && bytes === N * 128,
    { cpu_us_per_req: +(cpu * 1000 / N).toFixed(3) });
  agent.destroy();
})();
