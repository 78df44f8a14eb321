// Third-party browser clients in headless Chromium, on pages served from an
// origin other than the gateway's (a static server on another loopback port,
// which is in the gateway's allowed origins): the CometD 9 client, the jQuery
// binding of cometd-jquery 3.0.0 and Dojo 1.7.12 dojox.cometd. Each one
// handshakes, subscribes, publishes and receives its own message, over a
// given transport; the transport really used is checked on the network.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Gateway } from '../lib/gateway.mjs';
import { StaticServer, resolveStatic, contentType } from '../lib/static-server.mjs';
import { launchBrowser, openPage, newWire } from '../lib/browser.mjs';
import { guard } from '../lib/util.mjs';

const wire = newWire();
const site = new StaticServer();
const otherSite = new StaticServer(); // NOT in the allowed origins
let gw;
let browser;

before(async () => {
  await site.start();
  await otherSite.start();
  gw = new Gateway({ name: 'gateway', allowedOrigins: [site.origin] });
  await gw.start();
  browser = await launchBrowser();
});
after(async () => {
  if (browser) await browser.close();
  if (gw) { await gw.stop(); gw.cleanup(); }
  await site.stop();
  await otherSite.stop();
});

/**
 * Loads `page` and runs its scenario. origin: 'site' (cross-origin static
 * server), 'other' (a non-allowed origin) or 'gateway' (the page is served
 * under the gateway's own origin by request interception, so that the
 * browser talks to the real gateway same-origin).
 */
async function runScenario(t, { page: pageName, transport, origin = 'site', timeout = 15000 }) {
  const tag = `${pageName}:${transport}`;
  const p = await openPage(browser, { tag, watch: `127.0.0.1:${gw.port}/cometd`, wire });
  try {
    let base;
    if (origin === 'gateway') {
      base = `${gw.origin}/__cgtest`;
      await p.context.route(`${base}/**`, async (route) => {
        const file = resolveStatic(new URL(route.request().url()).pathname.slice('/__cgtest'.length));
        if (!file) return route.fulfill({ status: 404, body: 'not found' });
        return route.fulfill({ status: 200, path: file, contentType: contentType(file) });
      });
    } else {
      base = (origin === 'other' ? otherSite : site).origin;
    }
    const channel = `/browser/${pageName.replace(/\W/g, '')}/${transport}/${randomBytes(4).toString('hex')}`;
    const data = { text: `hello from ${tag}`, n: 7, nested: { ok: true } };
    const report = await guard(t, { gateways: [gw], wires: [wire] }, async () => {
      await p.page.goto(`${base}/pages/${pageName}`);
      await p.page.waitForFunction(() => document.getElementById('state').textContent === 'ready', null, { timeout: 15000 });
      return p.page.evaluate((params) => window.__run(params), { url: gw.url, transport, channel, data, timeout });
    });
    return { report, net: p.net, channel, data, tag };
  } finally {
    // Give the client's disconnect a moment, then close the context.
    await p.page.waitForTimeout(200).catch(() => {});
    await p.context.close().catch(() => {});
  }
}

function assertRoundTrip({ report, channel, data }, transport) {
  assert.equal(report.error, null, `scenario error: ${report.error}; meta=${JSON.stringify(report.meta || report.metaEvents)}`);
  assert.equal(report.handshakeReply && report.handshakeReply.successful, true, 'handshake successful');
  assert.match(String(report.clientId), /^[A-Za-z0-9]+$/);
  assert.equal(report.transport, transport, 'transport chosen by the client');
  const connects = report.sent.filter((m) => m.channel === '/meta/connect');
  assert.ok(connects.length >= 1, 'client sent /meta/connect');
  for (const c of connects) assert.equal(c.connectionType, transport, 'connectionType on /meta/connect');
  assert.ok(report.delivered, 'own message delivered');
  assert.equal(report.delivered.channel, channel);
  assert.deepEqual(report.delivered.data, data);
}

function assertNetwork(net, transport) {
  const cometdHttp = net.http.filter((r) => r.type !== 'document');
  if (transport === 'websocket') {
    assert.ok(net.ws.length >= 1, 'a websocket to the gateway was opened');
    assert.ok(net.ws.some((w) => w.sent.some((f) => f.includes('/meta/connect'))), '/meta/connect went over the websocket');
    assert.ok(net.ws.some((w) => w.received.some((f) => f.includes('/meta/connect'))), '/meta/connect reply came over the websocket');
    assert.equal(cometdHttp.filter((r) => r.method === 'POST').length, 0, 'no long-polling POSTs');
  } else if (transport === 'long-polling') {
    assert.equal(net.ws.length, 0, 'no websocket');
    const posts = cometdHttp.filter((r) => r.method === 'POST');
    assert.ok(posts.some((r) => r.body.includes('/meta/connect') && r.status === 200), '/meta/connect POSTed and answered 200');
    assert.equal(cometdHttp.filter((r) => r.method === 'GET').length, 0, 'no JSONP GETs');
  } else if (transport === 'callback-polling') {
    assert.equal(net.ws.length, 0, 'no websocket');
    const gets = cometdHttp.filter((r) => r.method === 'GET');
    assert.ok(gets.some((r) => /[?&]jsonp=/.test(r.url) && decodeURIComponent(r.url).includes('/meta/connect') && r.status === 200), '/meta/connect sent as a JSONP GET and answered 200');
    assert.equal(cometdHttp.filter((r) => r.method === 'POST').length, 0, 'no POSTs');
  }
}

function assertCors(net, origin) {
  const xhr = net.http.filter((r) => r.method === 'POST' && r.status === 200);
  assert.ok(xhr.length >= 1);
  for (const r of xhr) {
    assert.equal(r.headers['access-control-allow-origin'], origin, `ACAO on ${r.url}`);
    assert.equal(r.headers['access-control-allow-credentials'], 'true', `ACAC on ${r.url}`);
  }
}

describe('CometD 9 JavaScript client in Chromium, cross-origin', () => {
  for (const transport of ['websocket', 'long-polling', 'callback-polling']) {
    it(`over ${transport}`, { timeout: 45000 }, async (t) => {
      const r = await runScenario(t, { page: 'cometd9.html', transport });
      await guard(t, { gateways: [gw], wires: [wire] }, async () => {
        assertRoundTrip(r, transport);
        assertNetwork(r.net, transport);
        if (transport === 'long-polling') assertCors(r.net, site.origin);
        assert.equal(r.report.publishReply && r.report.publishReply.successful, true, 'publish acknowledged');
        assert.deepEqual(r.net.errors, [], 'no page errors');
      });
    });
  }
});

describe('cometd-jquery 3.0.0 (jQuery binding) in Chromium, cross-origin', () => {
  for (const transport of ['websocket', 'long-polling', 'callback-polling']) {
    it(`over ${transport}`, { timeout: 45000 }, async (t) => {
      const r = await runScenario(t, { page: 'jquery.html', transport });
      await guard(t, { gateways: [gw], wires: [wire] }, async () => {
        assertRoundTrip(r, transport);
        assertNetwork(r.net, transport);
        if (transport === 'long-polling') assertCors(r.net, site.origin);
        assert.deepEqual(r.net.errors, [], 'no page errors');
      });
    });
  }
});

describe('Dojo 1.7.12 dojox.cometd in Chromium', () => {
  it('over callback-polling, cross-origin (JSONP handshake without supportedConnectionTypes)', { timeout: 45000 }, async (t) => {
    const r = await runScenario(t, { page: 'dojo.html', transport: 'callback-polling' });
    await guard(t, { gateways: [gw], wires: [wire] }, async () => {
      assert.equal(r.report.isXD, true, 'dojo saw a cross-domain URL');
      const hs = r.report.sent.find((m) => m.channel === '/meta/handshake');
      assert.ok(hs && hs.supportedConnectionTypes === undefined, 'this handshake carries no supportedConnectionTypes');
      assertRoundTrip(r, 'callback-polling');
      assertNetwork(r.net, 'callback-polling');
      assert.deepEqual(r.net.errors, [], 'no page errors');
    });
  });

  it('over long-polling, page on the gateway origin (form-encoded handshake, text/json requests)', { timeout: 45000 }, async (t) => {
    const r = await runScenario(t, { page: 'dojo.html', transport: 'long-polling', origin: 'gateway' });
    await guard(t, { gateways: [gw], wires: [wire] }, async () => {
      assert.equal(r.report.isXD, false, 'dojo saw a same-origin URL');
      const hsReq = r.net.http.find((x) => x.method === 'POST' && decodeURIComponent(x.body).includes('/meta/handshake'));
      assert.ok(hsReq, 'handshake POSTed');
      assert.match(hsReq.body, /^message=/, 'dojo sends its handshake as a form-encoded message= parameter');
      assertRoundTrip(r, 'long-polling');
      assertNetwork(r.net, 'long-polling');
      assert.deepEqual(r.net.errors, [], 'no page errors');
    });
  });
});

describe('Origin allowlist', () => {
  for (const transport of ['websocket', 'long-polling']) {
    it(`a page from an origin not allowed cannot use the gateway over ${transport}`, { timeout: 45000 }, async (t) => {
      const r = await runScenario(t, { page: 'cometd9.html', transport, origin: 'other', timeout: 6000 });
      await guard(t, { gateways: [gw], wires: [wire] }, async () => {
        assert.notEqual(r.report.handshakeReply && r.report.handshakeReply.successful, true, `handshake from ${otherSite.origin} must not succeed`);
        assert.ok(!r.report.delivered, 'no delivery');
        assert.ok(!r.report.meta.some((m) => m.successful), 'no successful /meta/connect');
      });
    });
  }
});
