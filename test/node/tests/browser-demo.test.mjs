// The gateway's own demo chat page at "/", on the official CometD client,
// driven in headless Chromium. Independent browser contexts are independent
// "browsers" (each with its own BAYEUX_BROWSER cookie); two pages of one
// context are two tabs of one browser. Covered: join, member list, public
// and private messages; two members of the same name kept apart; a closed
// page and a dead connection shown leaving; a reconnect shown in the log;
// the multiple-clients notice.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Gateway } from '../lib/gateway.mjs';
import { launchBrowser, openPage, newWire } from '../lib/browser.mjs';
import { CuttingProxy } from '../lib/tcp-proxy.mjs';
import { guard, waitFor } from '../lib/util.mjs';

const wire = newWire();
// A short maxInterval: a session whose connection died expires (and its
// member is shown leaving) a few seconds later.
const gw = new Gateway({ name: 'gateway', maxInterval: '3s' });
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

/** Waits until the page's member list is exactly `labels`. */
async function waitMembers(u, labels, timeout = 15000) {
  await u.page.waitForFunction((want) => {
    const li = [...document.querySelectorAll('#members li')].map((e) => e.textContent.trim());
    return JSON.stringify(li) === JSON.stringify(want);
  }, labels, { timeout }).catch(async (e) => {
    throw new Error(`${u.tag} member list ${JSON.stringify(await texts(u.page, '#members li'))}, expected ${JSON.stringify(labels)}: ${e.message}`);
  });
}

/** Waits until a line of the page's log matching `selector` contains `text`. */
async function waitLine(u, text, selector = '#messages .msg', timeout = 15000) {
  await u.page.waitForFunction(([sel, txt]) => [...document.querySelectorAll(sel)].some((e) => e.textContent.includes(txt)),
    [selector, text], { timeout }).catch(async (e) => {
    throw new Error(`${u.tag}: no ${selector} containing ${JSON.stringify(text)} in ${JSON.stringify(await texts(u.page, '#messages .msg'))}: ${e.message}`);
  });
}

const waitStatus = (u, status, timeout = 15000) => u.page.waitForFunction(
  (s) => document.querySelector('#status').textContent.trim() === s, status, { timeout });

/** Opens the demo page (in a new browser unless `context`), joins as `name`, waits until connected. */
async function joinAs(opened, { tag, name, query = '', origin = gw.origin, context }) {
  const p = await openPage(browser, { tag, watch: `127.0.0.1:`, wire, context });
  const u = { tag, name, ...p };
  opened.push(u);
  await u.page.goto(`${origin}/${query}`);
  await u.page.fill('#username', name);
  await u.page.click('#join');
  await waitStatus(u, 'connected');
  return u;
}

async function closeAll(opened) {
  for (const u of opened) await u.context.close().catch(() => {});
}

describe('demo chat page in Chromium', () => {
  it('three users join, see each other, chat publicly and privately', { timeout: 90000 }, (t) => {
    const opened = [];
    return guard(t, { gateways: [gw], wires: [wire] }, async () => {
      const nonce = randomBytes(4).toString('hex');
      // alice forces websocket, bob long-polling, carol uses the page default.
      const alice = await joinAs(opened, { tag: 'alice', name: `alice${nonce}`, query: '?transport=websocket' });
      const bob = await joinAs(opened, { tag: 'bob', name: `bob${nonce}`, query: '?transport=long-polling' });
      const carol = await joinAs(opened, { tag: 'carol', name: `carol${nonce}` });
      const users = [alice, bob, carol];
      const allNames = users.map((u) => u.name).sort();

      // Everyone sees everyone in the member list, and is told who joined.
      for (const u of users) await waitMembers(u, allNames);
      await waitLine(alice, `${carol.name} has joined`, '#messages .msg.notice');

      // The page runs the official CometD client, served by the gateway.
      for (const u of users) {
        assert.ok(u.net.http.some((r) => r.url.endsWith('/js/cometd/Client.js') && r.status === 200), `${u.tag} loaded the CometD client`);
        assert.ok(!u.net.http.some((r) => r.url.endsWith('/bayeux.js')), `${u.tag}: no hand-written client`);
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
        await waitLine(u, pub);
        const line = await u.page.$$eval('#messages .msg', (els, txt) => els.filter((e) => e.textContent.includes(txt)).map((e) => ({ cls: e.className, text: e.textContent })), pub);
        assert.equal(line.length, 1, `${u.tag} sees the public message once`);
        assert.ok(!line[0].cls.split(/\s+/).includes('private'), `${u.tag}: public message not marked private`);
        assert.ok(line[0].text.includes(bob.name), `${u.tag}: public message shows the sender`);
      }

      // A private message from alice to bob: only alice and bob see it.
      const secret = `for bob only ${nonce}`;
      await alice.page.selectOption('#to', { label: bob.name });
      await alice.page.fill('#phrase', secret);
      await alice.page.click('#send');
      for (const u of [alice, bob]) await waitLine(u, secret, '#messages .msg.private');
      // Then a public sentinel from alice: once carol has it, the private
      // message (sent before it) would have arrived too if it leaked.
      const sentinel = `after the secret ${nonce}`;
      await alice.page.selectOption('#to', '');
      await alice.page.fill('#phrase', sentinel);
      await alice.page.click('#send');
      for (const u of users) await waitLine(u, sentinel);
      const carolAll = await texts(carol.page, '#messages .msg');
      assert.ok(!carolAll.some((s) => s.includes(secret)), `carol must not see the private message: ${JSON.stringify(carolAll)}`);
      const carolWire = [...carol.net.ws.flatMap((w) => w.received), ...carol.net.http.map((r) => r.response || '')];
      assert.ok(!carolWire.some((s) => s.includes(secret)), 'the private message never reached carol\'s browser');
      const bobPrivate = await bob.page.$$eval('#messages .msg.private', (els) => els.map((e) => e.textContent));
      assert.ok(bobPrivate.some((s) => s.includes(alice.name) && s.includes(secret)), `bob's private line names alice: ${JSON.stringify(bobPrivate)}`);
      for (const u of users) assert.deepEqual(u.net.errors, [], `${u.tag}: no page errors`);
    }).finally(() => closeAll(opened));
  });

  it('two members with the same name are listed apart; a closed page is shown leaving', { timeout: 90000 }, (t) => {
    const opened = [];
    return guard(t, { gateways: [gw], wires: [wire] }, async () => {
      const nonce = randomBytes(4).toString('hex');
      const dan = `dan${nonce}`;
      const dan1 = await joinAs(opened, { tag: 'dan1', name: dan, query: '?transport=websocket' });
      const dan2 = await joinAs(opened, { tag: 'dan2', name: dan, query: '?transport=long-polling' });
      const erin = await joinAs(opened, { tag: 'erin', name: `erin${nonce}` });

      // Two members, each labelled with its own suffix, in every page.
      await erin.page.waitForFunction((name) => document.querySelectorAll('#members li').length === 3
        && [...document.querySelectorAll('#members li')].filter((e) => e.textContent.startsWith(name + ' #')).length === 2, dan);
      const labels = await texts(erin.page, '#members li');
      const dans = labels.filter((l) => l.startsWith(`${dan} #`));
      assert.equal(new Set(dans).size, 2, `two distinct labels for the two dans: ${JSON.stringify(labels)}`);
      for (const u of [dan1, dan2]) await waitMembers(u, labels);
      // Each dan's page marks itself, and offers the other one as a recipient.
      const own1 = await dan1.page.$eval('#members li.me', (e) => e.textContent.trim());
      const own2 = await dan2.page.$eval('#members li.me', (e) => e.textContent.trim());
      assert.notEqual(own1, own2, 'each dan is a different member');
      assert.deepEqual((await texts(dan1.page, '#to option')).sort(), ['everyone', own2, erin.name].sort());
      assert.deepEqual((await texts(erin.page, '#to option')).sort(), ['everyone', ...dans].sort());

      // A private message to one dan reaches that dan only.
      const secret = `for ${own2} only ${nonce}`;
      await erin.page.selectOption('#to', { label: own2 });
      await erin.page.fill('#phrase', secret);
      await erin.page.click('#send');
      await waitLine(dan2, secret, '#messages .msg.private');
      const sentinel = `after ${nonce}`;
      await erin.page.selectOption('#to', '');
      await erin.page.fill('#phrase', sentinel);
      await erin.page.click('#send');
      await waitLine(dan1, sentinel);
      assert.ok(!(await texts(dan1.page, '#messages .msg')).some((s) => s.includes(secret)), 'the other dan does not get the private message');

      // dan2 closes the page: the others see it leave, and the remaining
      // dan is plain "dan" again.
      await dan2.page.close();
      await waitLine(erin, `${own2} has left`, '#messages .msg.notice');
      await waitMembers(erin, [dan, erin.name].sort());
      await waitMembers(dan1, [dan, erin.name].sort());
      for (const u of [dan1, erin]) assert.deepEqual(u.net.errors, [], `${u.tag}: no page errors`);
    }).finally(() => closeAll(opened));
  });

  it('a member whose connection dies is shown leaving, and its page logs the reconnect', { timeout: 90000 }, (t) => {
    const opened = [];
    const proxy = new CuttingProxy(gw.port, wire, 'proxy');
    return guard(t, { gateways: [gw], wires: [wire] }, async () => {
      await proxy.start();
      const nonce = randomBytes(4).toString('hex');
      // frank reaches the gateway through the proxy, which plays the network.
      const frank = await joinAs(opened, { tag: 'frank', name: `frank${nonce}`, origin: `http://127.0.0.1:${proxy.port}` });
      const gina = await joinAs(opened, { tag: 'gina', name: `gina${nonce}` });
      const both = [frank.name, gina.name].sort();
      await waitMembers(gina, both);
      await waitMembers(frank, both);

      proxy.outage();
      // frank's page says it lost the connection and is reconnecting ...
      await waitLine(frank, 'Connection lost', '#messages .msg.notice.conn-lost');
      await waitStatus(frank, 'connecting\u2026');
      // ... and, once its session expired on the server, gina sees frank leave.
      await waitLine(gina, `${frank.name} has left (connection lost)`, '#messages .msg.notice', 30000);
      await waitMembers(gina, [gina.name]);

      proxy.restore();
      // frank's page reconnects (with a new session), logs it and joins again.
      await waitLine(frank, 'Reconnected', '#messages .msg.notice.reconnected', 30000);
      await waitStatus(frank, 'connected', 30000);
      await waitMembers(frank, both);
      await waitMembers(gina, both);
      const log = await texts(frank.page, '#messages .msg.notice');
      const lostAt = log.findIndex((s) => s.includes('Connection lost'));
      const backAt = log.findIndex((s) => s.includes('Reconnected'));
      assert.ok(lostAt >= 0 && backAt > lostAt, `frank's log shows the loss, then the reconnect: ${JSON.stringify(log)}`);
      for (const u of opened) assert.deepEqual(u.net.errors, [], `${u.tag}: no page errors`);
    }).finally(async () => {
      await closeAll(opened);
      await proxy.stop();
    });
  });

  it('a second tab of one browser over long-polling says it is in multiple-clients mode', { timeout: 90000 }, (t) => {
    const opened = [];
    return guard(t, { gateways: [gw], wires: [wire] }, async () => {
      const nonce = randomBytes(4).toString('hex');
      const tab1 = await joinAs(opened, { tag: 'tab1', name: `hank${nonce}`, query: '?transport=long-polling' });
      assert.equal(await tab1.page.isVisible('#multi'), false, 'one tab alone: no notice');
      const tab2 = await joinAs(opened, { tag: 'tab2', name: `ivy${nonce}`, query: '?transport=long-polling', context: tab1.context });
      const tabs = [tab1, tab2];

      // One of the two tabs (the one the gateway did not give the long
      // poll) gets the multiple-clients advice and says so.
      const slow = await Promise.any(tabs.map((u) => u.page.waitForSelector('#multi', { state: 'visible', timeout: 15000 }).then(() => u)))
        .catch(() => { throw new Error('neither tab shows the multiple-clients notice'); });
      const notice = await slow.page.textContent('#multi');
      assert.match(notice, /multiple-clients mode/);
      assert.match(notice, /every 2 s/, 'the notice gives the advised interval');
      await waitFor(() => slow.net.http.some((r) => r.body.includes('/meta/connect') && /"multiple-clients":true/.test(r.response || '')),
        5000, `${slow.tag}: a connect reply carrying the multiple-clients advice`);
      // Both tabs still chat, only slower.
      await waitMembers(tab1, [tab1.name, tab2.name].sort());
      await waitMembers(tab2, [tab1.name, tab2.name].sort());

      // When the other tab leaves, this one gets the long poll: the notice goes.
      const other = slow === tab1 ? tab2 : tab1;
      await other.page.close();
      await slow.page.waitForFunction(() => document.querySelector('#multi').hidden, null, { timeout: 20000 });
      await waitMembers(slow, [slow.name]);
      assert.deepEqual(slow.net.errors, [], `${slow.tag}: no page errors`);
    }).finally(() => closeAll(opened));
  });
});
