// The control API's REST side end to end: a gateway whose API listens on its
// own loopback port, two official CometD 9 Node clients (one over
// long-polling, one over websocket), and plain fetch() calls to /v1/...
// A broadcast through POST /v1/publish must reach both subscribers with the
// exact data; POST /v1/clients/{id}:deliver must reach that client alone.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Gateway, freePort } from '../lib/gateway.mjs';
import { NodeClient, wire } from '../lib/cometd-node.mjs';
import { guard, waitFor } from '../lib/util.mjs';

const T = { timeout: 40000 };
const rnd = () => randomBytes(5).toString('hex');

let apiPort = null;
const gw = new Gateway({ name: 'gateway' });
before(async () => {
  apiPort = await freePort();
  gw.opts.extraYaml = ['api:', `  listen: "127.0.0.1:${apiPort}"`].join('\n');
  await gw.start();
});
after(async () => { await gw.stop(); gw.cleanup(); });

/** Calls the REST API; returns { status, json, text }. */
async function api(method, path, body) {
  const url = `http://127.0.0.1:${apiPort}${path}`;
  const init = { method, signal: AbortSignal.timeout(5000), headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  wire.add('api', `> ${method} ${path}`, init.body || '');
  const r = await fetch(url, init);
  const text = await r.text();
  wire.add('api', `< ${r.status} ${path}`, text);
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text };
}

// Data covering JSON's value kinds, nesting and non-ASCII text.
const DATA = {
  text: 'héllo — 世界 \u2028 "quoted" \\ back',
  int: 42,
  neg: -7,
  float: 3.25,
  yes: true,
  no: false,
  nothing: null,
  list: [1, 'two', { three: [3] }, [], {}],
  nested: { deep: { deeper: { deepest: 'ok' } } },
};

describe('control API (REST) with CometD 9 Node clients', () => {
  const clients = [];
  const check = (t, fn) => guard(t, { gateways: [gw], wires: [wire] }, fn);
  afterEach(async () => { await Promise.all(clients.splice(0).map((c) => c.close())); });

  /** A connected long-polling client and a connected websocket client, both subscribed to ch. */
  async function twoSubscribers(ch) {
    const lp = new NodeClient({ url: gw.url, transport: 'long-polling', name: `lp:${rnd()}` });
    const ws = new NodeClient({ url: gw.url, transport: 'websocket', name: `ws:${rnd()}` });
    clients.push(lp, ws);
    await Promise.all([lp.connect(), ws.connect()]);
    assert.equal(lp.cometd.getTransport().type, 'long-polling');
    assert.equal(ws.cometd.getTransport().type, 'websocket');
    const got = { lp: [], ws: [] };
    await Promise.all([
      lp.subscribe(ch, (m) => got.lp.push(m)),
      ws.subscribe(ch, (m) => got.ws.push(m)),
    ]);
    return { lp, ws, got };
  }

  it('POST /v1/publish reaches a long-polling and a websocket subscriber with the exact data', T, (t) => check(t, async () => {
    const ch = `/api/${rnd()}/news`;
    const { lp, ws, got } = await twoSubscribers(ch);

    // The API sees both sessions and their transports.
    for (const [c, transport] of [[lp, 'long-polling'], [ws, 'websocket']]) {
      const r = await api('GET', `/v1/sessions/${c.cometd.getClientId()}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.clientId, c.cometd.getClientId());
      assert.equal(r.json.transport, transport);
      assert.deepEqual(r.json.subscriptions, [ch]);
    }

    const r = await api('POST', '/v1/publish', { channel: ch, data: DATA, ext: { origin: 'api-test' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.subscribers, 2, `subscribers in ${r.text}`);

    await waitFor(() => got.lp.length >= 1 && got.ws.length >= 1, 8000, 'the publish at both subscribers');
    for (const [name, c, list] of [['long-polling', lp, got.lp], ['websocket', ws, got.ws]]) {
      assert.equal(list.length, 1, `${name}: exactly one message`);
      assert.equal(list[0].channel, ch, `${name}: channel`);
      assert.deepEqual(list[0].data, DATA, `${name}: exact data`);
      // What came over the wire, before the client's own dispatch.
      const raw = c.received.filter((m) => m.channel === ch);
      assert.equal(raw.length, 1, `${name}: one message on the wire`);
      assert.deepEqual(raw[0].data, DATA);
      assert.deepEqual(raw[0].ext, { origin: 'api-test' }, `${name}: ext`);
      assert.equal(raw[0].clientId, undefined, `${name}: no clientId on an API broadcast`);
      assert.equal(raw[0].id, undefined, `${name}: no id on an API broadcast`);
    }

    // Exact numbers through dataJson (base64 of the raw JSON text).
    const rawJSON = '{"n":9007199254740993,"s":"x"}';
    const r2 = await api('POST', '/v1/publish', { channel: ch, dataJson: Buffer.from(rawJSON).toString('base64') });
    assert.equal(r2.status, 200, r2.text);
    assert.equal(r2.json.subscribers, 2);
    await waitFor(() => got.lp.length >= 2 && got.ws.length >= 2, 8000, 'the dataJson publish at both subscribers');
    for (const list of [got.lp, got.ws]) assert.deepEqual(list[1].data, JSON.parse(rawJSON));
    const frames = wire.entries.filter((e) => e.dir.startsWith('<') && e.text.includes('9007199254740993'));
    assert.ok(frames.length >= 2, 'the exact integer went over the wire to both clients');
  }));

  it('POST /v1/clients/{id}:deliver reaches that client only', T, (t) => check(t, async () => {
    const ch = `/api/${rnd()}/direct`;
    const { lp, ws, got } = await twoSubscribers(ch);

    for (const [target, other, tName, oName] of [[lp, ws, 'lp', 'ws'], [ws, lp, 'ws', 'lp']]) {
      const data = { to: tName, nonce: rnd(), list: [1, 2, 3] };
      const id = target.cometd.getClientId();
      const r = await api('POST', `/v1/clients/${id}:deliver`, { channel: ch, data });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.sessions, 1, `sessions in ${r.text}`);
      await waitFor(() => got[tName].find((m) => m.data.nonce === data.nonce), 8000, `delivery to ${tName}`);
      const m = got[tName].find((x) => x.data.nonce === data.nonce);
      assert.equal(m.channel, ch);
      assert.deepEqual(m.data, data);

      // A broadcast marker after the delivery: once the other client has it,
      // the delivery would have arrived before it if it had been sent there.
      const marker = { marker: rnd() };
      const r2 = await api('POST', '/v1/publish', { channel: ch, data: marker });
      assert.equal(r2.status, 200, r2.text);
      await waitFor(() => got[oName].find((x) => x.data.marker === marker.marker), 8000, `marker at ${oName}`);
      await waitFor(() => got[tName].find((x) => x.data.marker === marker.marker), 8000, `marker at ${tName}`);
      assert.equal(got[oName].filter((x) => x.data.nonce === data.nonce).length, 0, `${oName} did not get the delivery to ${tName}`);
      assert.equal(other.received.filter((x) => x.data && x.data.nonce === data.nonce).length, 0, `nothing for ${oName} on the wire`);
      assert.equal(target.received.filter((x) => x.data && x.data.nonce === data.nonce).length, 1, `${tName} got it once`);
    }

    // An unknown client id is a 404, and delivers nothing.
    const r = await api('POST', '/v1/clients/nosuchclient:deliver', { channel: ch, data: { x: 1 } });
    assert.equal(r.status, 404, r.text);
    assert.equal(r.json.code, 5, 'gRPC NOT_FOUND in the body');
  }));
});
