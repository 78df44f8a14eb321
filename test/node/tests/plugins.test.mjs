// Issue 10: plugins on the message path, seen by the official CometD 9
// client (Node, cometd-nodejs-client 2) over websocket and long-polling:
// a WebAssembly filter (plugins/examples/profanity, built from source here)
// rejects a publish and the client sees the reason; a JWT authenticator
// binds a user and roles at handshake and refuses an expired token; the
// authorizer policy grants a channel to a role only.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gateway, REPO_ROOT } from '../lib/gateway.mjs';
import { NodeClient, wire } from '../lib/cometd-node.mjs';
import { guard, waitFor, withTimeout } from '../lib/util.mjs';

const T = { timeout: 60000 };
const SECRET = randomBytes(32).toString('hex');

const b64u = (s) => Buffer.from(s).toString('base64url');
function jwt(claims) {
  const head = b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64u(JSON.stringify(claims));
  const sig = createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}
const now = () => Math.floor(Date.now() / 1000);

function buildGuest(dir) {
  const out = join(dir, 'profanity.wasm');
  return new Promise((res, rej) => {
    execFile('go', ['build', '-buildmode=c-shared', '-o', out, './plugins/examples/profanity'], {
      cwd: REPO_ROOT,
      env: { ...process.env, GOOS: 'wasip1', GOARCH: 'wasm' },
      timeout: 300000,
      maxBuffer: 16 << 20,
    }, (err, stdout, stderr) => (err ? rej(new Error(`building the guest failed: ${err.message}\n${stdout}${stderr}`)) : res(out)));
  });
}

let gw;
before(async () => {
  const wasm = await buildGuest(mkdtempSync(join(tmpdir(), 'cg-wasm-')));
  gw = new Gateway({
    name: 'plugins',
    extraYaml: [
      'plugins:',
      '  allowAnonymous: true',
      '  filters:',
      '    - channels: [/chat/**]',
      '      inbound:',
      `        - {module: wasm, file: ${JSON.stringify(wasm)}, config: {mode: reject}}`,
      '  authenticators:',
      `    - {module: jwt, secret: ${JSON.stringify(SECRET)}}`,
      '  policies:',
      '    - module: authorizer',
      '      rules:',
      '        - channels: ["/admin/**"]',
      '          grant: [create, subscribe, publish]',
      '          roles: [admin]',
    ].join('\n'),
  });
  await gw.start();
});
after(async () => { if (gw) { await gw.stop(); gw.cleanup(); } });

/** Publishes and resolves with the reply, successful or not. */
function publishReply(c, channel, data) {
  return withTimeout(new Promise((res) => c.cometd.publish(channel, data, res)), 8000, `${c.name} publish ${channel}`);
}

/** Handshakes and resolves with the reply, successful or not. */
function handshakeReply(c, props) {
  return withTimeout(new Promise((res) => c.cometd.handshake(props, res)), 8000, `${c.name} handshake`);
}

for (const transport of ['websocket', 'long-polling']) {
  const short = transport === 'websocket' ? 'ws' : 'lp';
  describe(`plugins seen by the CometD 9 client over ${transport}`, () => {
    const clients = [];
    const mk = (name) => {
      const c = new NodeClient({ url: gw.url, transport, name: `${short}:plugins:${name}` });
      clients.push(c);
      return c;
    };
    const check = (t, fn) => guard(t, { gateways: [gw], wires: [wire] }, fn);
    afterEach(async () => { await Promise.all(clients.splice(0).map((c) => c.close())); });

    it('a WebAssembly filter rejects a publish with its reason; clean messages pass to subscribers', T, (t) => check(t, async () => {
      const a = mk('a');
      const b = mk('b');
      await a.connect();
      await b.connect();
      const got = [];
      await b.subscribe('/chat/room', (m) => got.push(m.data));
      const bad = await publishReply(a, '/chat/room', { text: 'what the DARN thing' });
      assert.equal(bad.successful, false, `publish with a listed word: ${JSON.stringify(bad)}`);
      assert.equal(bad.error, '403::profanity');
      const good = await publishReply(a, '/chat/room', { text: 'hello there' });
      assert.equal(good.successful, true, JSON.stringify(good));
      await waitFor(() => got.some((d) => d && d.text === 'hello there'), 8000, 'the clean message delivered');
      assert.deepEqual(got.map((d) => d.text), ['hello there'], 'the rejected message reached nobody');
    }));

    it('a JWT handshake binds roles the authorizer grants; an expired token is refused', T, (t) => check(t, async () => {
      const expired = mk('expired');
      const r = await handshakeReply(expired, { ext: { authentication: { token: jwt({ sub: 'old', exp: now() - 600 }) } } });
      assert.equal(r.successful, false, JSON.stringify(r));
      assert.equal(r.error, '403::token_expired');

      const user = mk('user');
      await user.connect({ ext: { authentication: { token: jwt({ sub: 'ursula', exp: now() + 600 }) } } });
      const denied = await publishReply(user, '/admin/notice', { text: 'hi' });
      assert.equal(denied.successful, false, JSON.stringify(denied));
      assert.match(denied.error, /^403:[^:]*:(channel_create|publish)_denied$/);

      const admin = mk('admin');
      await admin.connect({ ext: { authentication: { token: jwt({ sub: 'ada', roles: ['admin'], exp: now() + 600 }) } } });
      const got = [];
      await admin.subscribe('/admin/notice', (m) => got.push(m.data));
      const ok = await publishReply(admin, '/admin/notice', { text: 'maintenance' });
      assert.equal(ok.successful, true, JSON.stringify(ok));
      await waitFor(() => got.length === 1, 8000, 'the admin notice delivered');

      const anon = mk('anon');
      await anon.connect();
      const sub = await withTimeout(new Promise((res) => anon.cometd.subscribe('/admin/notice', () => {}, res)), 8000, 'anonymous subscribe');
      assert.equal(sub.successful, false, JSON.stringify(sub));
    }));
  });
}
