// cometd-nodejs-client's own (stock) cookie handling, unmodified, over
// long-polling: the BAYEUX_BROWSER cookie set by the handshake must be stored
// by the adapter and sent back on every later request, as seen on the wire by
// a recording proxy; and the server must insist on it.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { adapt } from 'cometd-nodejs-client';
import { CometD } from 'cometd';
import { Gateway } from '../lib/gateway.mjs';
import { HttpTap } from '../lib/http-tap.mjs';
import { guard, RawHttp, Wire, withTimeout, waitFor } from '../lib/util.mjs';

const adapterOptions = {};
adapt(adapterOptions); // the adapter keeps its jar in adapterOptions.globalCookies

const wire = new Wire();
const gw = new Gateway({ name: 'gateway' });
let tap;
before(async () => {
  await gw.start();
  tap = await new HttpTap(gw.port, wire, 'tap').start();
});
after(async () => {
  if (tap) await tap.stop();
  await gw.stop();
  gw.cleanup();
});

describe('cometd-nodejs-client stock cookie jar over long-polling', () => {
  it('stores BAYEUX_BROWSER from the handshake and sends it back; the server requires it', { timeout: 30000 }, (t) => guard(t, { gateways: [gw], wires: [wire] }, async () => {
    const cometd = new CometD('stock');
    cometd.unregisterTransport('websocket');
    cometd.unregisterTransport('callback-polling');
    cometd.configure({ url: `http://127.0.0.1:${tap.port}/cometd`, logLevel: 'warn', maxNetworkDelay: 5000 });
    const connects = [];
    cometd.addListener('/meta/connect', (m) => connects.push(m));
    try {
      const hs = await withTimeout(new Promise((res) => cometd.handshake((m) => res(m))), 8000, 'handshake');
      assert.equal(hs.successful, true, JSON.stringify(hs));
      assert.equal(cometd.getTransport().type, 'long-polling');
      await waitFor(() => connects.some((m) => m.successful), 8000, 'successful /meta/connect');

      const hsEx = tap.exchanges.find((e) => e.url.startsWith('/cometd/handshake'));
      assert.ok(hsEx, 'handshake request seen on the wire');
      const setCookie = (hsEx.responseHeaders['set-cookie'] || []).find((c) => c.startsWith('BAYEUX_BROWSER='));
      assert.ok(setCookie, `handshake response sets BAYEUX_BROWSER: ${JSON.stringify(hsEx.responseHeaders)}`);
      const value = setCookie.split(';')[0].slice('BAYEUX_BROWSER='.length);
      assert.ok(value.length > 0);
      assert.match(setCookie, /;\s*Path=\//i, 'cookie Path=/');
      assert.match(setCookie, /;\s*HttpOnly/i, 'cookie HttpOnly');

      const jar = adapterOptions.globalCookies && adapterOptions.globalCookies['127.0.0.1'];
      assert.ok(jar, `adapter jar has host 127.0.0.1: ${JSON.stringify(adapterOptions.globalCookies)}`);
      assert.equal(jar.BAYEUX_BROWSER, `BAYEUX_BROWSER=${value}`, 'adapter stored the cookie');

      const later = tap.exchanges.filter((e) => e !== hsEx && e.method === 'POST');
      assert.ok(later.some((e) => e.url.startsWith('/cometd/connect')), 'a /meta/connect went over the wire');
      for (const e of later) {
        assert.ok((e.headers.cookie || '').split(/;\s*/).includes(`BAYEUX_BROWSER=${value}`), `request ${e.url} carried the cookie: ${e.headers.cookie}`);
      }
      // No second Set-Cookie once the browser cookie is known.
      for (const e of later.filter((x) => x.status)) {
        assert.ok(!(e.responseHeaders['set-cookie'] || []).some((c) => c.startsWith('BAYEUX_BROWSER=')), `no new BAYEUX_BROWSER on ${e.url}`);
      }

      // The server binds the session to the cookie: the same clientId without
      // it, or with another browser's cookie, is an unknown session.
      const probe = [{ channel: '/meta/connect', clientId: hs.clientId, connectionType: 'long-polling', id: '7', advice: { timeout: 0 } }];
      const noCookie = new RawHttp(gw.origin, wire, 'raw-nocookie');
      const r1 = await noCookie.post('/cometd/connect', probe);
      assert.equal(r1.status, 200);
      assert.equal(r1.json[0].successful, false, `connect without cookie: ${r1.text}`);
      assert.equal(r1.json[0].error, '402::session_unknown');
      assert.equal(r1.json[0].advice && r1.json[0].advice.reconnect, 'handshake');
      const wrong = new RawHttp(gw.origin, wire, 'raw-wrongcookie');
      wrong.cookies.set('BAYEUX_BROWSER', 'notTheRightBrowser1');
      const r2 = await wrong.post('/cometd/connect', probe);
      assert.equal(r2.json[0].error, '402::session_unknown', `connect with a wrong cookie: ${r2.text}`);
    } finally {
      await withTimeout(new Promise((res) => cometd.disconnect(() => res())), 5000, 'disconnect').catch(() => {});
    }
  }));

  it('two clients sharing the stock jar (one "browser") both receive; the extra one is told multiple-clients', { timeout: 30000 }, (t) => guard(t, { gateways: [gw], wires: [wire] }, async () => {
    const ch = `/shared/${Date.now().toString(36)}`;
    const mk = (name) => {
      const c = new CometD(name);
      c.unregisterTransport('websocket');
      c.unregisterTransport('callback-polling');
      c.configure({ url: `http://127.0.0.1:${tap.port}/cometd`, logLevel: 'warn', maxNetworkDelay: 5000 });
      c.connects = [];
      c.got = [];
      c.addListener('/meta/connect', (m) => c.connects.push(m));
      return c;
    };
    const clients = [mk('shared1'), mk('shared2')];
    try {
      for (const c of clients) {
        const hs = await withTimeout(new Promise((res) => c.handshake((m) => res(m))), 8000, `${c.getName()} handshake`);
        assert.equal(hs.successful, true);
        await waitFor(() => c.connects.some((m) => m.successful), 8000, `${c.getName()} connected`);
        await withTimeout(new Promise((res, rej) => c.subscribe(ch, (m) => c.got.push(m.data), (r) => (r.successful ? res() : rej(new Error(JSON.stringify(r)))))), 8000, 'subscribe');
      }
      // Let both settle into their polling pattern, then publish once.
      await new Promise((r) => setTimeout(r, 2500));
      await withTimeout(new Promise((res, rej) => clients[0].publish(ch, { n: 1 }, (r) => (r.successful ? res() : rej(new Error(JSON.stringify(r)))))), 8000, 'publish');
      for (const c of clients) await waitFor(() => c.got.length === 1, 8000, `${c.getName()} delivery`);
      const all = clients.flatMap((c) => c.connects);
      assert.ok(all.every((m) => m.successful), `every /meta/connect succeeded: ${JSON.stringify(all.filter((m) => !m.successful))}`);
      assert.ok(all.some((m) => m.advice && m.advice['multiple-clients'] === true), 'one of the two sessions of the same browser was advised multiple-clients');
    } finally {
      for (const c of clients) {
        await withTimeout(new Promise((res) => c.disconnect(() => res())), 5000, 'disconnect').catch(() => {});
      }
    }
  }));
});
