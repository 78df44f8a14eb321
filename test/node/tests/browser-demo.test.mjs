// The gateway's own demo chat page at "/", driven in headless Chromium by
// three independent browser contexts (three "browsers", each with its own
// BAYEUX_BROWSER cookie): join, member list, public message, private message.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Gateway } from '../lib/gateway.mjs';
import { launchBrowser, openPage, newWire } from '../lib/browser.mjs';
import { guard, sleep } from '../lib/util.mjs';

const wire = newWire();
const gw = new Gateway({ name: 'gateway' });
let browser;
before(async () => {
  await gw.start();
  browser = await launchBrowser();
});
after(async () => {
  if (browser) await browser.close();
  await gw.stop();
  gw.cleanup();
});

const texts = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));

describe('demo chat page in Chromium', () => {
  it('three users join, see each other, chat publicly and privately', { timeout: 90000 }, (t) => {
    const opened = [];
    return guard(t, { gateways: [gw], wires: [wire] }, async () => {
      const nonce = randomBytes(4).toString('hex');
      // alice forces websocket, bob long-polling, carol uses the page default.
      const users = [
        { name: `alice${nonce}`, query: '?transport=websocket' },
        { name: `bob${nonce}`, query: '?transport=long-polling' },
        { name: `carol${nonce}`, query: '' },
      ];
      for (const u of users) {
        const p = await openPage(browser, { tag: u.name.replace(nonce, ''), watch: `127.0.0.1:${gw.port}/cometd`, wire });
        opened.push(p);
        Object.assign(u, p);
        await u.page.goto(`${gw.origin}/${u.query}`);
        await u.page.fill('#username', u.name);
        await u.page.click('#join');
        await u.page.waitForFunction(() => document.querySelector('#status').textContent.trim() === 'connected', null, { timeout: 15000 });
      }
      const [alice, bob, carol] = users;
      const allNames = users.map((u) => u.name).sort();

      // Everyone sees everyone in the member list.
      for (const u of users) {
        await u.page.waitForFunction((names) => {
          const li = [...document.querySelectorAll('#members li')].map((e) => e.textContent.trim());
          return JSON.stringify(li) === JSON.stringify(names);
        }, allNames, { timeout: 15000 }).catch(async (e) => {
          throw new Error(`${u.name} member list ${JSON.stringify(await texts(u.page, '#members li'))}, expected ${JSON.stringify(allNames)}: ${e.message}`);
        });
      }

      // The forced transports were really used.
      assert.ok(alice.net.ws.some((w) => w.sent.some((f) => f.includes('/meta/connect'))), 'alice: /meta/connect over a websocket');
      assert.ok(!alice.net.http.some((r) => r.method === 'POST'), 'alice: no long-polling POSTs');
      assert.ok(bob.net.http.some((r) => r.method === 'POST' && r.body.includes('/meta/connect') && r.status === 200), 'bob: /meta/connect over long-polling');
      assert.equal(bob.net.ws.length, 0, 'bob: no websocket');

      // A public message reaches everyone.
      const pub = `hello everyone ${nonce}`;
      await bob.page.selectOption('#to', '');
      await bob.page.fill('#phrase', pub);
      await bob.page.click('#send');
      for (const u of users) {
        await u.page.waitForFunction((txt) => [...document.querySelectorAll('#messages .msg')].some((e) => e.textContent.includes(txt)), pub, { timeout: 10000 });
        const line = await u.page.$$eval('#messages .msg', (els, txt) => els.filter((e) => e.textContent.includes(txt)).map((e) => ({ cls: e.className, text: e.textContent })), pub);
        assert.equal(line.length, 1, `${u.name} sees the public message once`);
        assert.ok(!line[0].cls.split(/\s+/).includes('private'), `${u.name}: public message not marked private`);
        assert.ok(line[0].text.includes(bob.name), `${u.name}: public message shows the sender`);
      }

      // A private message from alice to bob: only alice and bob see it.
      const secret = `for bob only ${nonce}`;
      await alice.page.waitForSelector(`#to option[value="${bob.name}"]`, { state: 'attached' });
      await alice.page.selectOption('#to', bob.name);
      await alice.page.fill('#phrase', secret);
      await alice.page.click('#send');
      for (const u of [alice, bob]) {
        await u.page.waitForFunction((txt) => [...document.querySelectorAll('#messages .msg.private')].some((e) => e.textContent.includes(txt)), secret, { timeout: 10000 })
          .catch(async (e) => { throw new Error(`${u.name} did not see the private message: ${JSON.stringify(await texts(u.page, '#messages .msg'))} ${e.message}`); });
      }
      // Then a public sentinel from alice: once carol has it, the private
      // message (sent before it) would have arrived too if it leaked.
      const sentinel = `after the secret ${nonce}`;
      await alice.page.selectOption('#to', '');
      await alice.page.fill('#phrase', sentinel);
      await alice.page.click('#send');
      for (const u of users) {
        await u.page.waitForFunction((txt) => [...document.querySelectorAll('#messages .msg')].some((e) => e.textContent.includes(txt)), sentinel, { timeout: 10000 });
      }
      await sleep(300);
      const carolAll = await texts(carol.page, '#messages .msg');
      assert.ok(!carolAll.some((s) => s.includes(secret)), `carol must not see the private message: ${JSON.stringify(carolAll)}`);
      const carolWire = [...carol.net.ws.flatMap((w) => w.received), ...carol.net.http.map((r) => r.response || '')];
      assert.ok(!carolWire.some((s) => s.includes(secret)), 'the private message never reached carol\'s browser');
      const bobPrivate = await bob.page.$$eval('#messages .msg.private', (els) => els.map((e) => e.textContent));
      assert.ok(bobPrivate.some((s) => s.includes(alice.name) && s.includes(secret)), `bob's private line names alice: ${JSON.stringify(bobPrivate)}`);
      for (const u of users) assert.deepEqual(u.net.errors, [], `${u.name}: no page errors`);
    }).finally(async () => {
      for (const p of opened) await p.context.close().catch(() => {});
    });
  });
});
