// W0 start-up, Node.js peer: an empty async main. The harness times the
// whole process.
// usage: node bench/peers/node_w0_startup.js
'use strict';
const C = require('./node_common');
(async () => {
  let ran = false;
  await (async () => { ran = true; })();
  C.report('W0', 1, 0, C.cpu(), ran);
})();
