// W6 files, Node.js peer: 64 async tasks read the file set `passes` times
// with fs.promises.readFile (open, fstat, read, close on libuv's pool).
// usage: node bench/peers/node_w6_files.js DIR NFILES PASSES
'use strict';
const fsp = require('fs/promises');
const C = require('./node_common');
const dir = process.argv[2], nfiles = Number(process.argv[3] || 1000);
const passes = Number(process.argv[4] || 10), K = 64, total = nfiles * passes;

(async () => {
  let next = 0, good = 0, bytes = 0;
  async function reader() {
    while (next < total) {
      const i = next++ % nfiles;
      const data = await fsp.readFile(dir + '/' + i);
      if (C.fileOk(i, data)) good++;
      bytes += data.length;
    }
  }
  const t0 = C.now(), c0 = C.cpu();
  const tasks = [];
  for (let k = 0; k < K; k++) tasks.push(reader());
  await Promise.all(tasks);
  C.report('W6', total, C.now() - t0, C.cpu() - c0, good === total && bytes === total * 4096);
})();
