// A minimal Faye server, for comparison runs of cometload against the same
// protocol on another implementation. It uses the Faye package installed
// for the interoperability tests (test/node), found relative to this file,
// and listens on loopback only.
//
//   node bench/faye-server.mjs [port]          # default 8090; mount /cometd
//
// Faye holds /meta/connect for `timeout` seconds; 20 matches Cometgate's
// default. Everything else is Faye's default (in-memory engine).
import { createRequire } from 'node:module';
import http from 'node:http';

const require = createRequire(import.meta.url);
const faye = require('../test/node/node_modules/faye');

const port = Number(process.argv[2] ?? process.env.FAYE_PORT ?? 8090);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`faye-server: bad port ${process.argv[2]}`);
  process.exit(2);
}
const host = '127.0.0.1';

const bayeux = new faye.NodeAdapter({ mount: '/cometd', timeout: 20 });
const server = http.createServer((req, res) => {
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
});
bayeux.attach(server);
server.listen(port, host, () => {
  console.log(`faye ${faye.VERSION} listening on http://${host}:${port}/cometd (pid ${process.pid})`);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
