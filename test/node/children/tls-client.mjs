// Child process of tests/tls.test.mjs: the official CometD 9 client (through
// the harness adapters) over HTTPS or wss. It runs in its own process because
// the adapter's XMLHttpRequest uses a fixed https agent: the test CA reaches
// it only through NODE_EXTRA_CA_CERTS, which Node reads at start-up.
//
// Env: CG_URL (the gateway's https /cometd URL), CG_TRANSPORT (websocket or
// long-polling), CG_CHANNEL. Two clients connect; a subscribes, b publishes,
// a must receive. Prints one JSON line: {ok, transport, setCookies} or
// {ok: false, error, wire}.

import { NodeClient, wire } from '../lib/cometd-node.mjs';

const url = process.env.CG_URL;
const transport = process.env.CG_TRANSPORT;
const channel = process.env.CG_CHANNEL;
const a = new NodeClient({ url, transport, name: 'a' });
const b = new NodeClient({ url, transport, name: 'b' });
try {
  await Promise.all([a.connect(), b.connect()]);
  await a.subscribe(channel);
  await b.publish(channel, { over: transport });
  const got = await a.waitReceived((m) => m.channel === channel, 8000, 'the message published by b');
  const setCookies = wire.entries.filter((e) => e.dir.includes('set-cookie')).map((e) => e.text);
  process.stdout.write(JSON.stringify({ ok: true, transport: a.cometd.getTransport().type, data: got.data, setCookies }) + '\n');
} catch (err) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(err && err.stack || err), wire: wire.format(40) }) + '\n');
} finally {
  await Promise.all([a.close(), b.close()]);
  process.exit(0);
}
