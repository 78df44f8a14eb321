// The official CometD 9 JavaScript client, in Node through
// cometd-nodejs-client 2, against the gateway, once over websocket and once
// over long-polling (each client is restricted to the transport under test so
// that a broken transport cannot hide behind a fallback).

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Gateway } from '../lib/gateway.mjs';
import { NodeClient, wire, AckExtension, TimeSyncExtension } from '../lib/cometd-node.mjs';
import { CuttingProxy } from '../lib/tcp-proxy.mjs';
import { guard, RawHttp, rawWebSocket, sleep, waitFor } from '../lib/util.mjs';

const T = { timeout: 40000 };
const rnd = () => randomBytes(5).toString('hex');

const gw = new Gateway({ name: 'gateway' });
before(() => gw.start());
after(async () => { await gw.stop(); gw.cleanup(); });

for (const transport of ['websocket', 'long-polling']) {
  const short = transport === 'websocket' ? 'ws' : 'lp';

  describe(`CometD 9 Node client over ${transport}`, () => {
    const clients = [];
    const gateways = [gw];
    const mk = (name, opts = {}) => {
      const c = new NodeClient({ url: gw.url, transport, name: `${short}:${name}`, ...opts });
      clients.push(c);
      return c;
    };
    const check = (t, fn) => guard(t, { gateways, wires: [wire] }, fn);
    afterEach(async () => { await Promise.all(clients.splice(0).map((c) => c.close())); });

    it('handshake negotiates the transport and the first /meta/connect succeeds', T, (t) => check(t, async () => {
      const a = mk('a');
      const reply = await a.connect();
      assert.equal(reply.successful, true);
      assert.match(reply.clientId, /^[A-Za-z0-9]+$/, 'clientId is alphanumeric');
      assert.equal(reply.version, '1.0');
      for (const type of ['websocket', 'long-polling', 'callback-polling']) {
        assert.ok(reply.supportedConnectionTypes.includes(type), `handshake reply advertises ${type}: ${JSON.stringify(reply.supportedConnectionTypes)}`);
      }
      assert.equal(a.cometd.getTransport().type, transport, 'transport in use');
      assert.equal(a.cometd.getClientId(), reply.clientId);
      const connects = a.sent.filter((m) => m.channel === '/meta/connect');
      assert.ok(connects.length >= 1);
      assert.equal(connects[0].connectionType, transport, 'connectionType sent on /meta/connect');
      if (transport === 'long-polling') {
        // The BAYEUX_BROWSER cookie set by the handshake must be kept by the
        // client and sent back: the server answers 402 without it.
        const cookie = a.cookie('BAYEUX_BROWSER');
        assert.ok(cookie, `BAYEUX_BROWSER stored in the client's jar after the handshake; jar=${JSON.stringify([...a.cookieStore])}`);
        const tag = `${short}:a`;
        const hsResp = wire.of(tag).find((e) => e.dir.startsWith('< 200 /cometd/handshake'));
        assert.ok(hsResp, 'handshake went over HTTP to /cometd/handshake');
        const connReq = wire.of(tag).find((e) => e.dir.startsWith('> POST /cometd/connect'));
        assert.ok(connReq, '/meta/connect POSTed to /cometd/connect');
        assert.ok(connReq.dir.includes(`BAYEUX_BROWSER=${cookie}`), `connect request carried the cookie: ${connReq.dir}`);
      } else {
        const frames = wire.entries.filter((e) => e.tag.startsWith('ws-') && e.dir === '>' && e.text.includes(reply.clientId) && e.text.includes('/meta/connect'));
        assert.ok(frames.length >= 1, '/meta/connect was sent as a websocket frame');
      }
    }));

    it('subscribe, publish and receive (other client and own message)', T, (t) => check(t, async () => {
      const ch = `/chat/${short}/${rnd()}`;
      const a = mk('a');
      const b = mk('b');
      await Promise.all([a.connect(), b.connect()]);
      const got = [];
      const { reply } = await a.subscribe(ch, (m) => got.push(m));
      assert.equal(reply.subscription, ch);
      const data = { text: 'hello from b', n: 1, nested: { ok: true, list: [1, 'two'] } };
      const ack = await b.publish(ch, data);
      assert.equal(ack.successful, true);
      assert.equal(ack.data, undefined, 'publish ack carries no data');
      await waitFor(() => got.length >= 1, 5000, 'delivery to subscriber a');
      assert.equal(got[0].channel, ch);
      assert.deepEqual(got[0].data, data);
      assert.equal(got[0].clientId, undefined, 'broadcast does not leak the publisher clientId');
      // The publisher is not subscribed: it must not get the message.
      await a.publish(ch, { text: 'own', n: 2 });
      await waitFor(() => got.length >= 2, 5000, 'a receives its own publish');
      assert.deepEqual(got[1].data, { text: 'own', n: 2 });
      assert.equal(b.received.filter((m) => m.channel === ch).length, 0, 'unsubscribed publisher got nothing');
    }));

    it('wildcard /* matches exactly one segment', T, (t) => check(t, async () => {
      const base = `/wc/${short}${rnd()}`;
      const a = mk('a');
      const b = mk('b');
      await Promise.all([a.connect(), b.connect()]);
      const got = [];
      await a.subscribe(`${base}/*`, (m) => got.push(m.channel));
      await b.publish(`${base}/deep/er`, { n: 1 }); // two segments: no
      await b.publish(base, { n: 2 }); // the parent itself: no
      await b.publish(`${base}x/one`, { n: 3 }); // sibling prefix: no
      await b.publish(`${base}/one`, { n: 4 }); // yes
      await b.publish(`${base}/two`, { n: 5 }); // yes
      await a.waitReceived((m) => m.channel === `${base}/two`, 5000, `${base}/two`);
      assert.deepEqual(a.received.filter((m) => m.channel.startsWith(base)).map((m) => m.channel), [`${base}/one`, `${base}/two`], 'server delivered only the one-segment matches');
      assert.deepEqual(got, [`${base}/one`, `${base}/two`]);
    }));

    it('wildcard /** matches any depth below the prefix', T, (t) => check(t, async () => {
      const base = `/wd/${short}${rnd()}`;
      const a = mk('a');
      const b = mk('b');
      await Promise.all([a.connect(), b.connect()]);
      const got = [];
      await a.subscribe(`${base}/**`, (m) => got.push(m.channel));
      await b.publish(`${base}/a`, { n: 1 });
      await b.publish(base, { n: 2 }); // no
      await b.publish(`${base}x/a`, { n: 3 }); // no
      await b.publish(`${base}/a/b/c`, { n: 4 });
      await b.publish(`${base}/z`, { n: 5 });
      await a.waitReceived((m) => m.channel === `${base}/z`, 5000, `${base}/z`);
      const expected = [`${base}/a`, `${base}/a/b/c`, `${base}/z`];
      assert.deepEqual(a.received.filter((m) => m.channel.startsWith(base)).map((m) => m.channel), expected);
      assert.deepEqual(got, expected);
    }));

    it('unsubscribe stops delivery', T, (t) => check(t, async () => {
      const base = `/u/${short}/${rnd()}`;
      const a = mk('a');
      const b = mk('b');
      await Promise.all([a.connect(), b.connect()]);
      const got = [];
      const { sub } = await a.subscribe(`${base}/x`, (m) => got.push(m));
      await a.subscribe(`${base}/sentinel`, () => {});
      await b.publish(`${base}/x`, { n: 1 });
      await waitFor(() => got.length === 1, 5000, 'first delivery');
      const reply = await a.unsubscribe(sub);
      assert.equal(reply.successful, true);
      assert.equal(reply.subscription, `${base}/x`);
      await b.publish(`${base}/x`, { n: 2 });
      await b.publish(`${base}/sentinel`, { n: 3 });
      await a.waitReceived((m) => m.channel === `${base}/sentinel`, 5000, 'sentinel after unsubscribe');
      await sleep(200);
      assert.deepEqual(a.received.filter((m) => m.channel === `${base}/x`).map((m) => m.data.n), [1], 'no delivery on the unsubscribed channel');
    }));

    it('remoteCall /echo and a plain publish to /service/echo are answered to the caller only', T, (t) => check(t, async () => {
      const a = mk('a');
      const b = mk('b');
      await Promise.all([a.connect(), b.connect()]);
      const bEcho = [];
      b.cometd.addListener('/service/echo', (m) => bEcho.push(m));
      const data = { q: `ping-${rnd()}`, n: 42, arr: [1, 2, 3] };
      const reply = await a.remoteCall('/echo', data, 5000);
      assert.equal(reply.successful, true, `remoteCall reply: ${JSON.stringify(reply)}`);
      assert.deepEqual(reply.data, data);

      const echoes = [];
      a.cometd.addListener('/service/echo', (m) => echoes.push(m));
      const data2 = { plain: `publish-${rnd()}` };
      const ack = await a.publish('/service/echo', data2);
      assert.equal(ack.successful, true);
      const echo = await waitFor(() => echoes.find((m) => m.data && m.data.plain === data2.plain), 5000, 'echo reply to plain publish');
      assert.equal(echo.channel, '/service/echo');
      assert.equal(echo.id, ack.id, 'echo reply carries the id of the request');
      assert.equal(echo.successful, true);
      await sleep(300);
      assert.equal(bEcho.length, 0, 'other client received none of the echo replies');
      assert.equal(b.received.filter((m) => m.channel === '/service/echo').length, 0);
    }));

    it('AckExtension: enabled by the server, batches acknowledged, messages delivered in order', T, (t) => check(t, async () => {
      const ch = `/ack/${short}/${rnd()}`;
      const a = mk('a');
      a.cometd.registerExtension('ack', new AckExtension());
      const b = mk('b');
      const hs = await a.connect();
      await b.connect();
      assert.equal(hs.ext && hs.ext.ack, true, `handshake reply ext.ack: ${JSON.stringify(hs.ext)}`);
      const sentHs = a.sent.find((m) => m.channel === '/meta/handshake');
      assert.equal(sentHs.ext.ack, true, 'client asked for acks');
      const got = [];
      await a.subscribe(ch, (m) => got.push(m.data.n));
      for (let n = 1; n <= 5; n++) await b.publish(ch, { n });
      await waitFor(() => got.length >= 5, 8000, 'five acked deliveries');
      assert.deepEqual(got, [1, 2, 3, 4, 5]);
      await waitFor(() => a.meta.filter((m) => m.channel === '/meta/connect' && m.successful && m.ext && typeof m.ext.ack === 'number').length >= 2, 8000, 'connect replies with ext.ack');
      const batches = a.meta.filter((m) => m.channel === '/meta/connect' && m.successful && m.ext && typeof m.ext.ack === 'number').map((m) => m.ext.ack);
      for (let i = 1; i < batches.length; i++) assert.ok(batches[i] > batches[i - 1], `ext.ack strictly increasing: ${batches}`);
      const acked = a.sent.filter((m) => m.channel === '/meta/connect' && m.ext && typeof m.ext.ack === 'number').map((m) => m.ext.ack);
      assert.ok(acked.some((x) => x >= 1), `client acknowledged batches on /meta/connect: ${acked}`);
    }));

    it('AckExtension: a message lost with a dropped connection is re-delivered', T, (t) => {
      const proxy = new CuttingProxy(gw.port, wire, `${short}:proxy`);
      return guard(t, { gateways, wires: [wire] }, async () => {
        await proxy.start();
        const ch = `/ackloss/${short}/${rnd()}`;
        const a = new NodeClient({ url: `http://127.0.0.1:${proxy.port}/cometd`, transport, name: `${short}:a-proxied` });
        clients.push(a);
        a.cometd.registerExtension('ack', new AckExtension());
        const b = mk('b');
        await a.connect();
        await b.connect();
        const got = [];
        await a.subscribe(ch, (m) => got.push(m.data));
        await b.publish(ch, { n: 1, marker: 'before' });
        await waitFor(() => got.length === 1, 8000, 'delivery before the cut');
        const marker = `lost-${rnd()}`;
        proxy.armCut(marker);
        await b.publish(ch, { n: 2, marker });
        await waitFor(() => proxy.cuts === 1, 8000, 'the proxy saw the message and cut the connection');
        await waitFor(() => got.some((d) => d.marker === marker), 15000, 're-delivery of the lost message');
        await b.publish(ch, { n: 3, marker: 'after' });
        await waitFor(() => got.length >= 3, 8000, 'delivery after recovery');
        assert.deepEqual(got.map((d) => d.n), [1, 2, 3], 'each message exactly once, in order');
        assert.equal(a.cometd.getClientId(), a.meta.find((m) => m.channel === '/meta/handshake').clientId, 'no re-handshake was needed');
      }).finally(() => proxy.stop());
    });

    it('TimeSyncExtension: replies carry ext.timesync and the client computes lag and offset', T, (t) => check(t, async () => {
      const a = mk('a');
      const ts = new TimeSyncExtension();
      a.cometd.registerExtension('timesync', ts);
      const before = Date.now();
      const hs = await a.connect();
      const after = Date.now();
      const sentHs = a.sent.find((m) => m.channel === '/meta/handshake');
      assert.ok(sentHs.ext && sentHs.ext.timesync, 'client sent ext.timesync');
      const sync = hs.ext && hs.ext.timesync;
      assert.ok(sync, `handshake reply has ext.timesync: ${JSON.stringify(hs)}`);
      for (const k of ['tc', 'ts', 'p', 'a']) assert.equal(typeof sync[k], 'number', `timesync.${k} is a number: ${JSON.stringify(sync)}`);
      assert.equal(sync.tc, sentHs.ext.timesync.tc, 'tc echoed');
      // Same machine, same clock: the server's receive time lies in the round trip.
      assert.ok(sync.ts >= before - 50 && sync.ts <= after + 50, `ts ${sync.ts} within [${before}, ${after}]`);
      assert.ok(sync.p >= 0 && sync.p <= after - before + 50, `p ${sync.p} plausible`);
      assert.ok(Math.abs(sync.a - (sync.tc + sentHs.ext.timesync.o + sentHs.ext.timesync.l - sync.ts)) <= 1, `a = (tc+o+l)-ts: ${JSON.stringify(sync)}`);
      const lag = ts.getNetworkLag();
      const offset = ts.getTimeOffset();
      assert.ok(Number.isFinite(lag) && lag >= 0 && lag < 1000, `lag ${lag}`);
      assert.ok(Number.isFinite(offset) && Math.abs(offset) < 500, `offset ${offset}`);
      const connectReplies = a.meta.filter((m) => m.channel === '/meta/connect');
      assert.ok(connectReplies.length >= 1);
      assert.ok(a.sent.filter((m) => m.channel === '/meta/connect').every((m) => m.ext && m.ext.timesync), 'every /meta/connect carries ext.timesync');
    }));

    it('disconnect ends the session on the server', T, (t) => check(t, async () => {
      const a = mk('a');
      const hs = await a.connect();
      const clientId = hs.clientId;
      const cookie = a.cookie('BAYEUX_BROWSER');
      const reply = await a.disconnect();
      assert.ok(reply, 'disconnect callback called');
      assert.equal(reply.successful, true, `disconnect reply: ${JSON.stringify(reply)}`);
      assert.equal(a.cometd.getStatus(), 'disconnected');
      const probe = { channel: '/meta/connect', clientId, connectionType: transport, id: '99', advice: { timeout: 0 } };
      let r;
      if (transport === 'long-polling') {
        const raw = new RawHttp(gw.origin, wire, `${short}:probe`);
        raw.cookies.set('BAYEUX_BROWSER', cookie);
        const res = await raw.post('/cometd/connect', [probe]);
        assert.equal(res.status, 200);
        r = res.json.find((m) => m.channel === '/meta/connect');
      } else {
        const ws = await rawWebSocket(gw.wsUrl, wire, `${short}:probe`);
        try {
          ws.send([probe]);
          r = await ws.next((m) => m.channel === '/meta/connect', 5000, 'connect reply');
        } finally { ws.close(); }
      }
      assert.equal(r.successful, false, `connect after disconnect must fail: ${JSON.stringify(r)}`);
      assert.equal(r.error, '402::session_unknown');
      assert.equal(r.advice && r.advice.reconnect, 'handshake');
    }));
  });
}

describe('websocket sessions are bound to the browser (BAYEUX_BROWSER of the upgrade)', () => {
  it('another browser, or none, cannot resume a session by its clientId; the owner is undisturbed', T, (t) => {
    const clients = [];
    return guard(t, { gateways: [gw], wires: [wire] }, async () => {
      const ch = `/bound/${rnd()}`;
      const a = new NodeClient({ url: gw.url, transport: 'websocket', name: 'ws:bound-a' });
      const b = new NodeClient({ url: gw.url, transport: 'websocket', name: 'ws:bound-b' });
      clients.push(a, b);
      const hs = await a.connect();
      await b.connect();
      const got = [];
      await a.subscribe(ch, (m) => got.push(m.data));
      // Each client kept the cookie its own upgrade's 101 response set.
      const cookieA = a.cookie('BAYEUX_BROWSER');
      const cookieB = b.cookie('BAYEUX_BROWSER');
      assert.ok(cookieA && cookieB, `both jars hold BAYEUX_BROWSER: a=${JSON.stringify([...a.cookieStore])} b=${JSON.stringify([...b.cookieStore])}`);
      assert.notEqual(cookieA, cookieB, 'two jars, two browsers');

      const probe = (id) => [{ channel: '/meta/connect', clientId: hs.clientId, connectionType: 'websocket', id, advice: { timeout: 0 } }];
      for (const [tag, headers, id] of [['ws:bound-nocookie', {}, '101'], ['ws:bound-cookie-b', { Cookie: `BAYEUX_BROWSER=${cookieB}` }, '102']]) {
        const ws = await rawWebSocket(gw.wsUrl, wire, tag, headers);
        try {
          ws.send(probe(id));
          const r = await ws.next((m) => m.channel === '/meta/connect', 5000, `${tag}: connect reply`);
          assert.equal(r.successful, false, `${tag}: resuming a's session must fail: ${JSON.stringify(r)}`);
          assert.equal(r.error, '402::session_unknown', tag);
          assert.equal(r.advice && r.advice.reconnect, 'handshake', tag);
        } finally { ws.close(); }
      }

      await b.publish(ch, { n: 1 });
      await waitFor(() => got.length === 1, 5000, 'a still receives');
      assert.deepEqual(got, [{ n: 1 }]);
      assert.equal(a.cometd.getClientId(), hs.clientId, 'a kept its session');
      assert.equal(a.meta.filter((m) => m.channel === '/meta/handshake').length, 1, 'a did not re-handshake');
      const aSockets = wire.entries.filter((e) => e.tag.endsWith(':ws:bound-a'));
      assert.equal(aSockets.filter((e) => e.dir.startsWith('OPEN')).length, 1, 'a opened one websocket');
      assert.equal(aSockets.filter((e) => e.dir === 'CLOSE').length, 0, "a's websocket was not closed");
    }).finally(() => Promise.all(clients.map((c) => c.close())));
  });
});

describe('CometD 9 Node client survives a gateway restart', () => {
  for (const transport of ['websocket', 'long-polling']) {
    const short = transport === 'websocket' ? 'ws' : 'lp';
    it(`over ${transport}: re-handshakes when told to and resumes on the re-subscribed channel`, T, async (t) => {
      const g = new Gateway({ name: `restart-gateway-${short}` });
      const clients = [];
      try {
        await guard(t, { gateways: [g], wires: [wire] }, async () => {
          await g.start();
          const ch = `/restart/${short}/${rnd()}`;
          const a = new NodeClient({ url: g.url, transport, name: `${short}:restart-a` });
          clients.push(a);
          const got = [];
          // The usual CometD pattern: (re)subscribe whenever a handshake succeeds.
          a.cometd.addListener('/meta/handshake', (m) => {
            if (m.successful) a.cometd.subscribe(ch, (msg) => got.push(msg.data));
          });
          const hs1 = await a.connect();
          await a.waitMeta((m) => m.channel === '/meta/subscribe' && m.successful, 5000, 'first subscription');
          const b1 = new NodeClient({ url: g.url, transport, name: `${short}:restart-b1` });
          clients.push(b1);
          await b1.connect();
          await b1.publish(ch, { phase: 'before' });
          await waitFor(() => got.some((d) => d.phase === 'before'), 5000, 'delivery before restart');
          await b1.close();

          const restartAt = Date.now();
          await g.restart();
          const hs2 = await a.waitMeta((m) => m.channel === '/meta/handshake' && m.successful && m.at > restartAt, 20000, 're-handshake after restart')
            .catch((e) => {
              // Name the usual culprit: CometD clients only accept "retry" or
              // "none" on a *successful* /meta/connect reply; anything else
              // throws inside the client ("Unrecognized advice action") and it
              // never polls again.
              const bad = a.meta.find((m) => m.channel === '/meta/connect' && m.successful && m.advice && !['retry', 'none', undefined].includes(m.advice.reconnect));
              throw bad ? new Error(`${e.message}; the gateway answered a /meta/connect with successful:true and advice.reconnect=${JSON.stringify(bad.advice.reconnect)}: ${JSON.stringify(bad)} -- the CometD client throws "Unrecognized advice action" on that and stops`) : e;
            });
          assert.notEqual(hs2.clientId, hs1.clientId, 'new session');
          // The gateway tells the client to re-handshake: the held connect is
          // answered on shutdown with 503::server_shutting_down (or, had the
          // client missed that, its next connect gets 402::session_unknown),
          // in both cases with advice reconnect "handshake".
          const told = a.meta.find((m) => m.channel === '/meta/connect' && m.at >= restartAt && m.successful === false &&
            ['503::server_shutting_down', '402::session_unknown'].includes(m.error));
          assert.ok(told, `client was told to re-handshake by a failed /meta/connect after restart; meta after restart: ${JSON.stringify(a.meta.filter((m) => m.at > restartAt - 3000).map(({ at, channel, successful, error, advice }) => ({ dt: at - restartAt, channel, successful, error, advice })))}`);
          assert.equal(told.advice && told.advice.reconnect, 'handshake');
          await a.waitMeta((m) => m.channel === '/meta/subscribe' && m.successful && m.at > restartAt, 10000, 're-subscription after restart');
          await a.waitMeta((m) => m.channel === '/meta/connect' && m.successful && m.at > restartAt, 10000, 'connected again');
          const b2 = new NodeClient({ url: g.url, transport, name: `${short}:restart-b2` });
          clients.push(b2);
          await b2.connect();
          await b2.publish(ch, { phase: 'after' });
          await waitFor(() => got.some((d) => d.phase === 'after'), 8000, 'delivery after restart');
        });
      } finally {
        await Promise.all(clients.map((c) => c.close()));
        await g.stop();
        g.cleanup();
      }
    });
  }
});
