// The gateway bridging channels to real gRPC backends, end to end, with the
// official CometD 9 Node client over websocket and long-polling. Two
// processes of cmd/example-backend run on free loopback ports:
//
// * contract mode (cometgate.backend.v1.Backend): remote calls on
//   /service/rooms/**, the /stocks/* ticker and /rooms/** join events fed by
//   Subscribe, moderation of /rooms/** publishes, and (on a second gateway)
//   the Handshake auth hook;
// * plain mode (example.v1 Calculator and Ticker, bound through gRPC server
//   reflection): /service/calc/add and the /quotes/* stream.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Gateway } from '../lib/gateway.mjs';
import { ExampleBackend } from '../lib/example-backend.mjs';
import { NodeClient, wire } from '../lib/cometd-node.mjs';
import { guard, sleep, waitFor, withTimeout } from '../lib/util.mjs';

const T = { timeout: 40000 };
const rnd = () => randomBytes(4).toString('hex');

const contract = new ExampleBackend({ mode: 'contract', name: 'backend-contract' });
const plain = new ExampleBackend({ mode: 'plain', name: 'backend-plain' });

function routesYaml({ auth = false } = {}) {
  return [
    'backends:',
    '  rooms:',
    `    target: ${JSON.stringify(contract.target)}`,
    '  calc:',
    `    target: ${JSON.stringify(plain.target)}`,
    'routes:',
    '  - { channel: /service/rooms/**, backend: rooms, type: call }',
    '  - { channel: /stocks/*, backend: rooms, type: stream }',
    '  - { channel: /rooms/**, backend: rooms, type: stream }',
    '  - { channel: /rooms/**, backend: rooms, type: publish }',
    '  - channel: /service/calc/add',
    '    backend: calc',
    '    method: example.v1.Calculator/Add',
    '    idempotent: true',
    '  - channel: /quotes/*',
    '    backend: calc',
    '    type: stream',
    '    method: example.v1.Ticker/Watch',
    '    channelTemplate: /quotes/{symbol}',
    '    request: { symbols: [ACME, GLOBEX], intervalMs: 100 }',
    ...(auth ? ['auth:', '  backend: rooms'] : []),
  ].join('\n');
}

// The backends must be up before the gateways: the gateway resolves the
// reflected methods when it starts.
const gw = new Gateway({ name: 'gateway' });
const authGw = new Gateway({ name: 'gateway-auth' });
before(async () => {
  await Promise.all([contract.start(), plain.start()]);
  gw.opts.extraYaml = routesYaml();
  authGw.opts.extraYaml = routesYaml({ auth: true });
  await Promise.all([gw.start(), authGw.start()]);
});
after(async () => {
  await Promise.all([gw.stop(), authGw.stop(), contract.stop(), plain.stop()]);
  gw.cleanup();
  authGw.cleanup();
});

const sources = { gateways: [gw, authGw, contract, plain], wires: [wire] };

/** Publishes and resolves with the reply, successful or not. */
function publishReply(c, channel, data, ms = 8000) {
  return withTimeout(new Promise((res) => c.cometd.publish(channel, data, (reply) => res(reply))), ms, `${c.name} publish ${channel}`);
}

/** Events `c` received on channel, in order (recorded before client dispatch). */
const on = (c, channel) => c.received.filter((m) => m.channel === channel);

for (const transport of ['websocket', 'long-polling']) {
  const short = transport === 'websocket' ? 'ws' : 'lp';

  describe(`gRPC backends through the gateway, CometD 9 over ${transport}`, () => {
    const clients = [];
    const mk = (name, g = gw) => {
      const c = new NodeClient({ url: g.url, transport, name: `${short}:${name}` });
      clients.push(c);
      return c;
    };
    const check = (t, fn) => guard(t, sources, fn);
    afterEach(async () => { await Promise.all(clients.splice(0).map((c) => c.close())); });

    it('remoteCall /calc/add reaches Calculator.Add through reflection; int64 is a JSON string', T, (t) => check(t, async () => {
      const a = mk('a');
      await a.connect();
      const reply = await a.remoteCall('/calc/add', { a: 2, b: 40 });
      assert.equal(reply.successful, true, `reply: ${JSON.stringify(reply)}`);
      assert.equal(reply.channel, '/service/calc/add');
      assert.deepEqual(reply.data, { sum: '42' });
      const big = await a.remoteCall('/calc/add', { a: '9007199254740993', b: 1 });
      assert.equal(big.successful, true, `reply: ${JSON.stringify(big)}`);
      assert.deepEqual(big.data, { sum: '9007199254740994' }, 'int64 beyond 2^53 kept exact');
      const bad = await a.remoteCall('/calc/add', { a: 'two' });
      assert.equal(bad.successful, false, `reply: ${JSON.stringify(bad)}`);
      assert.match(bad.error, /^400:InvalidArgument:/);
    }));

    it('remoteCall /rooms/join and /rooms/members on the contract backend return the members', T, (t) => check(t, async () => {
      const room = `r${short}${rnd()}`;
      const a = mk('a');
      const b = mk('b');
      await Promise.all([a.connect(), b.connect()]);
      const ra = await a.remoteCall('/rooms/join', { room, user: 'ann' });
      assert.equal(ra.successful, true, `reply: ${JSON.stringify(ra)}`);
      assert.equal(ra.channel, '/service/rooms/join');
      assert.deepEqual(ra.data, { room, members: ['ann'] });
      const rb = await b.remoteCall('/rooms/join', { room, user: 'bob' });
      assert.deepEqual(rb.data, { room, members: ['ann', 'bob'] }, `reply: ${JSON.stringify(rb)}`);
      const rm = await a.remoteCall('/rooms/members', { room });
      assert.deepEqual(rm.data, { room, members: ['ann', 'bob'] }, `reply: ${JSON.stringify(rm)}`);
      const list = await a.remoteCall('/rooms/list', {});
      assert.equal(list.successful, true, `reply: ${JSON.stringify(list)}`);
      assert.ok(list.data.rooms.includes(room) && list.data.rooms.includes('lobby'), `rooms: ${JSON.stringify(list.data)}`);
      // Each reply went to its caller only.
      assert.equal(on(b, '/service/rooms/members').length, 0, 'b got nothing of a\'s call');
    }));

    it('a remoteCall to an unknown method fails with 404:NotFound, bad data with 400:InvalidArgument', T, (t) => check(t, async () => {
      const a = mk('a');
      await a.connect();
      const reply = await a.remoteCall('/rooms/nosuchmethod', { room: 'lobby' });
      assert.equal(reply.successful, false, `reply: ${JSON.stringify(reply)}`);
      assert.equal(reply.channel, '/service/rooms/nosuchmethod');
      assert.match(String(reply.error), /^404:NotFound:/, `error: ${reply.error}`);
      assert.equal(reply.data && reply.data.code, 'NotFound', `failure data: ${JSON.stringify(reply.data)}`);
      const bad = await a.remoteCall('/rooms/join', { room: 'no/slash', user: 'x' });
      assert.equal(bad.successful, false, `reply: ${JSON.stringify(bad)}`);
      assert.match(String(bad.error), /^400:InvalidArgument:/, `error: ${bad.error}`);
    }));

    it('subscribing /quotes/ACME receives quotes from the plain Ticker.Watch stream', T, (t) => check(t, async () => {
      const a = mk('a');
      await a.connect();
      await a.subscribe('/quotes/ACME');
      await waitFor(() => on(a, '/quotes/ACME').length >= 3, 8000, '3 quotes on /quotes/ACME');
      const quotes = on(a, '/quotes/ACME').map((m) => m.data);
      for (const q of quotes) {
        assert.equal(q.symbol, 'ACME', `quote: ${JSON.stringify(q)}`);
        assert.equal(typeof q.price, 'number');
        assert.match(q.sequence, /^\d+$/, 'int64 sequence as a JSON string');
      }
      const seqs = quotes.map((q) => Number(q.sequence));
      for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1, `consecutive sequences: ${seqs}`);
      assert.equal(on(a, '/quotes/GLOBEX').length, 0, 'GLOBEX quotes go to /quotes/GLOBEX, not to this subscriber');
    }));

    it('subscribing /stocks/ACME receives ticks from the contract Subscribe stream', T, (t) => check(t, async () => {
      const a = mk('a');
      const b = mk('b');
      await Promise.all([a.connect(), b.connect()]);
      const got = [];
      await a.subscribe('/stocks/ACME', (m) => got.push(m));
      // A subscriber to the route's pattern gets what the channel streams carry.
      await b.subscribe('/stocks/*');
      await waitFor(() => got.length >= 3, 8000, '3 ticks on /stocks/ACME');
      await b.waitReceived((m) => m.channel === '/stocks/ACME', 3000, 'a tick through /stocks/*');
      const seqs = got.map((m) => m.data.seq);
      for (const m of got) {
        assert.equal(m.channel, '/stocks/ACME');
        assert.equal(m.data.symbol, 'ACME', `tick: ${JSON.stringify(m.data)}`);
        assert.equal(typeof m.data.price, 'number');
        assert.equal(m.ext && m.ext.cometgate && m.ext.cometgate.gap, undefined, 'no gap notice on a healthy stream');
      }
      for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1, `consecutive seq: ${seqs}`);
      assert.doesNotMatch(gw.log, /backend stream broke[^\n]*channel=\/stocks\//, 'no /stocks/ stream broke');
    }));

    it('/rooms/<room>/events carries join events; publishes to /rooms/<room> are moderated', T, (t) => check(t, async () => {
      const room = `e${short}${rnd()}`;
      const a = mk('a');
      const b = mk('b');
      await Promise.all([a.connect(), b.connect()]);
      const opened = `room events stream opened" room=${room} `; // slog text output
      await a.subscribe(`/rooms/${room}/events`);
      await contract.waitLog(opened, 8000, 'the events stream reached the backend');
      await b.remoteCall('/rooms/join', { room, user: 'cat' });
      const ev = await a.waitReceived((m) => m.channel === `/rooms/${room}/events`, 8000, 'join event');
      assert.deepEqual(ev.data, { type: 'join', room, user: 'cat', members: ['cat'] });

      await a.subscribe(`/rooms/${room}`);
      const ok = await publishReply(b, `/rooms/${room}`, { text: 'hello' });
      assert.equal(ok.successful, true, `publish reply: ${JSON.stringify(ok)}`);
      const msg = await a.waitReceived((m) => m.channel === `/rooms/${room}`, 8000, 'moderated chat message');
      assert.deepEqual(msg.data, { text: 'hello', moderated: true });
      const spam = await publishReply(b, `/rooms/${room}`, { text: 'buy SPAM now' });
      assert.equal(spam.successful, false, `publish reply: ${JSON.stringify(spam)}`);
      assert.equal(spam.error, '403:spam:publish_denied');
      const forged = await publishReply(b, `/rooms/${room}/events`, { type: 'join', user: 'mallory' });
      assert.equal(forged.successful, false, `publish reply: ${JSON.stringify(forged)}`);
      assert.equal(forged.error, '403:read_only:publish_denied');
      await publishReply(b, `/rooms/${room}`, { text: 'sentinel' });
      await a.waitReceived((m) => m.channel === `/rooms/${room}` && m.data.text === 'sentinel', 8000, 'sentinel');
      assert.deepEqual(on(a, `/rooms/${room}`).map((m) => m.data.text), ['hello', 'sentinel'], 'the spam was not delivered');
      assert.equal(on(a, `/rooms/${room}/events`).length, 1, 'the forged event was not delivered');
    }));

    it('with auth on, the backend Handshake binds the user id and refuses a bad token', T, (t) => check(t, async () => {
      const a = mk('a', authGw);
      const reply = await a.connect({ ext: { auth: { token: 'demo', user: 'dora' } } });
      assert.equal(reply.successful, true);
      assert.equal(reply.ext && reply.ext.auth && reply.ext.auth.user, 'dora', `handshake ext: ${JSON.stringify(reply.ext)}`);
      const room = `a${short}${rnd()}`;
      const joined = await a.remoteCall('/rooms/join', { room });
      assert.deepEqual(joined.data, { room, members: ['dora'] }, `the caller's user id reached Call: ${JSON.stringify(joined)}`);

      const m = mk('mallory', authGw);
      await assert.rejects(m.handshake({ ext: { auth: { token: 'nope' } } }), (err) => {
        assert.match(err.message, /"error":"403:bad token:handshake_denied"/);
        return true;
      });
      const n = mk('anon', authGw);
      await assert.rejects(n.handshake(), /403:bad token:handshake_denied/);
    }));
  });
}

describe('example backends shut down cleanly', () => {
  it('SIGTERM with streams open: both exit 0 well before the forced stop', T, (t) => guard(t, sources, async () => {
    const c = new NodeClient({ url: gw.url, transport: 'websocket', name: 'stop:a' });
    try {
      await c.connect();
      await c.subscribe('/stocks/GLOBEX');
      await c.subscribe('/quotes/GLOBEX');
      await waitFor(() => on(c, '/stocks/GLOBEX').length > 0 && on(c, '/quotes/GLOBEX').length > 0, 8000, 'both streams flowing');
      const [ec, ep] = await Promise.all([contract.stop(), plain.stop()]);
      assert.deepEqual([ec.code, ec.signal], [0, null], `contract backend exit: ${JSON.stringify(ec)}`);
      assert.deepEqual([ep.code, ep.signal], [0, null], `plain backend exit: ${JSON.stringify(ep)}`);
      assert.ok(ec.ms < 4000 && ep.ms < 4000, `stopped in ${ec.ms} and ${ep.ms} ms`);
      assert.doesNotMatch(contract.log + plain.log, /graceful stop timed out/);
      // The gateway notices and keeps serving its clients.
      await sleep(300);
      const reply = await c.remoteCall('/rooms/list', {}, 3000);
      assert.equal(reply.successful, false, `reply with the backend down: ${JSON.stringify(reply)}`);
      assert.match(String(reply.error), /^503:Unavailable:/);
    } finally {
      await c.close();
    }
  }));
});
