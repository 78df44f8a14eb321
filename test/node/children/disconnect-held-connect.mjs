// Child process of tests/cometd-node-disconnect.test.mjs: the official
// CometD 9 client over websocket (through the harness adapters) handshakes,
// subscribes, waits until a /meta/connect is held by the server, and calls
// disconnect(). It then does nothing more and never calls process.exit: the
// process ends by itself only if nothing is left open -- in particular the
// websocket, which the client closes only if no connect is outstanding when
// the disconnect reply arrives, so the server must answer the held connect
// first (or close the socket).
//
// Env: CG_URL (the gateway's /cometd URL), CG_CHANNEL. Prints one JSON line
// per step on stdout; once the connect is held it waits for the end of its
// standard input (the parent's go, after it has looked at the gateway), whose
// pipe is then closed. On SIGTERM (the parent's bound expired) prints the wire
// log and the resources still keeping the process alive on stderr.

import { NodeClient, wire } from '../lib/cometd-node.mjs';
import { waitFor } from '../lib/util.mjs';

const say = (step, more = {}) => process.stdout.write(JSON.stringify({ step, ...more }) + '\n');

process.on('SIGTERM', () => {
  process.stderr.write(`still alive; active resources: ${JSON.stringify(process.getActiveResourcesInfo())}\n`);
  process.stderr.write(`wire log:\n${wire.format(60)}\n`);
  process.exit(143);
});

/** Ids of the /meta/connect messages sent and answered on this client's sockets. */
function connects() {
  const sent = [];
  const answered = new Map();
  for (const e of wire.entries) {
    if (!e.tag.endsWith(':child') || (e.dir !== '>' && e.dir !== '<')) continue;
    let msgs;
    try { msgs = [].concat(JSON.parse(e.text)); } catch { continue; }
    for (const m of msgs) {
      if (m.channel !== '/meta/connect') continue;
      if (e.dir === '>') sent.push(m.id);
      else answered.set(m.id, m);
    }
  }
  return { sent, answered };
}

const client = new NodeClient({ url: process.env.CG_URL, transport: 'websocket', name: 'child' });
const hs = await client.connect();
await client.subscribe(process.env.CG_CHANNEL);
say('subscribed', { clientId: hs.clientId });

// Held: the newest /meta/connect went out on the socket after an earlier one
// was answered successfully, and has no answer yet. The disconnect is sent on
// the same socket after it, so the server reads it while that connect waits.
const held = await waitFor(() => {
  const { sent, answered } = connects();
  const last = sent[sent.length - 1];
  const ok = [...answered.values()].some((m) => m.successful);
  return ok && last && !answered.has(last) ? last : null;
}, 10000, 'a held /meta/connect');
say('held', { connectId: held });
await new Promise((res) => {
  process.stdin.once('end', res);
  process.stdin.resume();
});

const reply = await client.disconnect();
const { answered } = connects();
// The frame that carried the disconnect reply, message by message.
let disconnectFrame = null;
for (const e of wire.entries) {
  if (!e.tag.endsWith(':child') || e.dir !== '<') continue;
  let msgs;
  try { msgs = [].concat(JSON.parse(e.text)); } catch { continue; }
  if (msgs.some((m) => m.channel === '/meta/disconnect')) {
    disconnectFrame = msgs.map(({ channel, id, successful }) => ({ channel, id, successful }));
  }
}
say('disconnected', { reply, heldAnswer: answered.get(held) || null, disconnectFrame, status: client.cometd.getStatus() });
