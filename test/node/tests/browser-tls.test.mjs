// The demo chat page (the official CometD client) in headless Chromium over
// TLS (tls.mode files, a test CA made with openssl; the browser context
// ignores certificate errors rather than trusting the CA): a tab over wss,
// and two tabs of one browser over HTTPS long-polling, which goes over
// HTTP/2, where both may hold a long poll (no multiple-clients notice,
// bayeux.http2MaxSessionsPerBrowser -1).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Gateway } from '../lib/gateway.mjs';
import { launchBrowser, openPage, newWire } from '../lib/browser.mjs';
import { makeTestCertificates } from '../lib/testca.mjs';
import { guard, waitFor } from '../lib/util.mjs';

const wire = newWire();
const certs = makeTestCertificates();
const gw = new Gateway({ name: 'gateway', tlsCA: certs.caPem, extraYaml: [certs.tlsYaml, 'cookie:', '  secure: true'].join('\n') });
let browser;
before(async () => {
  await gw.start();
  browser = await launchBrowser();
});
after(async () => {
  if (browser) await browser.close();
  await gw.stop();
  gw.cleanup();
  certs.cleanup();
});

const texts = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));

async function waitMembers(u, labels, timeout = 15000) {
  await u.page.waitForFunction((want) => {
    const li = [...document.querySelectorAll('#members li')].map((e) => e.textContent.trim());
    return JSON.stringify(li) === JSON.stringify(want);
  }, labels, { timeout }).catch(async (e) => {
    throw new Error(`${u.tag} member list ${JSON.stringify(await texts(u.page, '#members li'))}, expected ${JSON.stringify(labels)}: ${e.message}`);
  });
}

async function joinAs(opened, { tag, name, query, context }) {
  const p = await openPage(browser, { tag, watch: '127.0.0.1:', wire, context });
  const u = { tag, name, ...p };
  opened.push(u);
  await u.page.goto(`${gw.origin}/${query}`);
  await u.page.fill('#username', name);
  await u.page.click('#join');
  await u.page.waitForFunction(() => document.querySelector('#status').textContent.trim() === 'connected', null, { timeout: 15000 });
  return u;
}

/** The protocols (h2, http/1.1) the page's requests to the Bayeux endpoint used. */
const bayeuxProtocols = (u) => u.page.evaluate(() => [...new Set(performance.getEntriesByType('resource')
  .filter((e) => e.name.includes('/cometd')).map((e) => e.nextHopProtocol))]);

describe('demo chat page in Chromium over TLS', () => {
  it('a tab over wss and two tabs of one browser over HTTP/2 long-polling, without the multiple-clients notice', { timeout: 90000 }, (t) => {
    const opened = [];
    return guard(t, { gateways: [gw], wires: [wire] }, async () => {
      assert.match(gw.origin, /^https:/);
      const nonce = randomBytes(4).toString('hex');
      const wsContext = await browser.newContext({ ignoreHTTPSErrors: true });
      const ws = await joinAs(opened, { tag: 'ws', name: `wes${nonce}`, query: '?transport=websocket', context: wsContext });
      assert.ok(ws.net.ws.some((e) => e.url.startsWith('wss://')), `the wss tab opened a wss websocket: ${JSON.stringify(ws.net.ws.map((e) => e.url))}`);

      const lpContext = await browser.newContext({ ignoreHTTPSErrors: true });
      const tab1 = await joinAs(opened, { tag: 'tab1', name: `hank${nonce}`, query: '?transport=long-polling', context: lpContext });
      const tab2 = await joinAs(opened, { tag: 'tab2', name: `ivy${nonce}`, query: '?transport=long-polling', context: lpContext });
      const all = [ws.name, tab1.name, tab2.name].sort();
      for (const u of [ws, tab1, tab2]) await waitMembers(u, all);
      for (const u of [tab1, tab2]) {
        assert.deepEqual(await bayeuxProtocols(u), ['h2'], `${u.tag}: Bayeux requests over HTTP/2`);
      }
      // Both tabs hold their long polls: each gets a held connect answered
      // by an event (the other's join), and neither gets the advice.
      await waitFor(() => [tab1, tab2].every((u) => u.net.http.filter((r) => r.body.includes('/meta/connect') && r.status === 200).length >= 2),
        15000, 'two answered connects per tab');
      for (const u of [tab1, tab2]) {
        assert.equal(await u.page.isVisible('#multi'), false, `${u.tag}: no multiple-clients notice over HTTP/2`);
        assert.ok(!u.net.http.some((r) => /"multiple-clients":true/.test(r.response || '')), `${u.tag}: no multiple-clients advice`);
        const cookie = u.net.http.map((r) => (r.headers || {})['set-cookie']).find(Boolean);
        if (cookie) assert.match(cookie, /Secure/, `${u.tag}: the BAYEUX_BROWSER cookie is Secure`);
      }
      assert.deepEqual([...ws.net.errors, ...tab1.net.errors, ...tab2.net.errors], [], 'no page errors');
    }).finally(async () => { for (const u of opened) await u.context.close().catch(() => {}); });
  });
});
