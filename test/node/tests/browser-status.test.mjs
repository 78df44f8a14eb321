// The live status page (/status on the control API's listener) in headless
// Chromium: opened once with ?token=, it drops the token from the address,
// connects the official CometD client to the API listener's Bayeux endpoint,
// and shows numbers that change while CometD Node clients put load on the
// gateway. A screenshot of the page under load is saved as evidence in
// CG_ARTIFACTS (default test/node/artifacts/status-page.png).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Gateway, freePort } from '../lib/gateway.mjs';
import { NodeClient, wire as nodeWire } from '../lib/cometd-node.mjs';
import { launchBrowser, openPage, newWire } from '../lib/browser.mjs';
import { guard } from '../lib/util.mjs';

const ARTIFACTS = process.env.CG_ARTIFACTS || resolve(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const TOKEN = 'status-page-token-' + randomBytes(8).toString('hex');

const wire = newWire();
const gw = new Gateway({ name: 'gateway' });
let apiPort;
let browser;
before(async () => {
  apiPort = await freePort();
  gw.opts.extraYaml = ['api:', `  listen: "127.0.0.1:${apiPort}"`, `  tokens: ["${TOKEN}"]`].join('\n');
  await gw.start();
  browser = await launchBrowser();
});
after(async () => {
  if (browser) await browser.close();
  await gw.stop();
  gw.cleanup();
});

const text = (page, sel) => page.$eval(sel, (e) => e.textContent.trim());

describe('status page in Chromium', () => {
  it('needs the API token, keeps it, and shows live numbers under load', { timeout: 90000 }, (t) => {
    const clients = [];
    let load = null;
    let opened = null;
    return guard(t, { gateways: [gw], wires: [wire, nodeWire] }, async () => {
      const api = `http://127.0.0.1:${apiPort}`;
      // Same authentication as the API.
      const refused = await fetch(`${api}/status`, { signal: AbortSignal.timeout(5000) });
      assert.equal(refused.status, 401, 'GET /status without a token');
      assert.ok(!(await refused.text()).includes('data-key'), 'the refusal does not carry the page');

      opened = await openPage(browser, { tag: 'status', watch: `127.0.0.1:${apiPort}`, wire });
      const { page, net } = opened;
      await page.goto(`${api}/status?token=${encodeURIComponent(TOKEN)}`);
      assert.equal(page.url(), `${api}/status`, 'the token is dropped from the address');
      await page.waitForFunction(() => document.querySelector('#conn').textContent.startsWith('live'), null, { timeout: 15000 });
      // A reload, without the token in the address, still gets the page.
      await page.reload();
      await page.waitForFunction(() => document.querySelector('#conn').textContent.startsWith('live'), null, { timeout: 15000 });
      await page.waitForFunction(() => document.querySelector('#sessions').textContent !== '–', null, { timeout: 15000 });
      const initial = { rate: await text(page, '#rate-published'), top: await text(page, '#top-rate') };
      assert.equal(initial.rate, '0', 'no message published before the load');

      // Load: three official CometD Node clients, one over websocket, that
      // subscribe and publish on a channel until the page shows it.
      const channel = `/load/${randomBytes(4).toString('hex')}`;
      for (const [i, transport] of ['websocket', 'long-polling', 'long-polling'].entries()) {
        const c = new NodeClient({ url: gw.url, transport, name: `load${i}` });
        clients.push(c);
        await c.connect();
        await c.subscribe(channel);
      }
      let n = 0;
      load = setInterval(() => {
        for (const c of clients) c.cometd.publish(channel, { n: n++ });
      }, 50);

      // The page shows the new sessions (at least its own and the three
      // load clients), a publish rate above zero and the channel at the top
      // of both lists.
      await page.waitForFunction((channel) => {
        const num = (id) => Number(document.getElementById(id).textContent);
        const rows = (id) => [...document.querySelectorAll(`#${id} tr`)].map((r) => [...r.cells].map((c) => c.textContent));
        const subs = rows('top-subs');
        const rate = rows('top-rate');
        return num('sessions') >= 4 && num('rate-published') > 0 && num('rate-delivered') > 0 &&
          subs.length > 0 && subs[0][0] === channel && subs[0][1] === '3' &&
          rate.length > 0 && rate[0][0] === channel && Number(rate[0][1]) > 0 &&
          rows('transports').some((r) => r[0] === 'websocket' && Number(r[1]) >= 1);
      }, channel, { timeout: 30000, polling: 100 }).catch(async (e) => {
        const body = await page.$eval('main', (m) => m.innerText).catch(() => '');
        throw new Error(`page did not show the load: ${e.message}\n${body}`);
      });
      assert.notEqual(await text(page, '#rate-published'), initial.rate, 'the publish rate changed');
      assert.notEqual(await text(page, '#top-rate'), initial.top, 'the top-by-rate list changed');

      mkdirSync(ARTIFACTS, { recursive: true });
      const shot = join(ARTIFACTS, 'status-page.png');
      await page.screenshot({ path: shot, fullPage: true });
      t.diagnostic(`screenshot: ${shot}`);

      // The page's Bayeux went to the API listener, same origin.
      const used = [...net.ws.map((w) => w.url), ...net.http.filter((r) => r.method === 'POST').map((r) => r.url)];
      assert.ok(used.length > 0 && used.every((u) => u.includes(`127.0.0.1:${apiPort}/status/cometd`)), `Bayeux traffic of the page: ${JSON.stringify(used)}`);
      assert.deepEqual(net.errors, [], 'no page errors');
    }).finally(async () => {
      if (load) clearInterval(load);
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
      if (opened) await opened.context.close().catch(() => {});
    });
  });
});
