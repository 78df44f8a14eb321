// The official CometD 9 Node client over wss and HTTPS long-polling against a
// gateway in tls.mode files, with a certificate from a CA made for the test
// (openssl, ECDSA P-256). The client runs in a child process
// (children/tls-client.mjs) that trusts the CA through NODE_EXTRA_CA_CERTS.
// The Node adapter speaks HTTP/1.1; HTTP/2 long-polling is covered by the Go
// tests (gateway/tls_test.go).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gateway } from '../lib/gateway.mjs';
import { makeTestCertificates } from '../lib/testca.mjs';
import { guard, Wire, withTimeout } from '../lib/util.mjs';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), '..', 'children', 'tls-client.mjs');
const wire = new Wire();
const certs = makeTestCertificates();
const gw = new Gateway({
  name: 'gateway',
  tlsCA: certs.caPem,
  extraYaml: [certs.tlsYaml, 'cookie:', '  secure: true', '  sameSite: none'].join('\n'),
});
before(() => gw.start());
after(async () => { await gw.stop(); gw.cleanup(); certs.cleanup(); });

/** Runs the child client over transport and returns its JSON report. */
function runChild(transport) {
  const child = spawn(process.execPath, [CHILD], {
    env: {
      ...process.env,
      NODE_EXTRA_CA_CERTS: certs.caFile,
      CG_URL: gw.url,
      CG_TRANSPORT: transport,
      CG_CHANNEL: `/tls/${randomBytes(5).toString('hex')}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { err += c; });
  const done = new Promise((res) => child.on('exit', (code) => {
    wire.add(`child:${transport}`, `exit ${code}`, out + err);
    const line = out.split('\n').find((l) => l.startsWith('{'));
    res(line ? JSON.parse(line) : { ok: false, error: `no report (exit ${code}): ${err}` });
  }));
  return withTimeout(done, 30000, `the ${transport} child`).finally(() => child.kill('SIGKILL'));
}

describe('CometD 9 Node client over TLS (tls.mode files)', () => {
  assert.match(gw.url, /^https:/);
  for (const transport of ['websocket', 'long-polling']) {
    it(`${transport === 'websocket' ? 'wss' : 'HTTPS long-polling'}: connect, subscribe, publish, receive`, { timeout: 60000 }, (t) => guard(t, { gateways: [gw], wires: [wire] }, async () => {
      const r = await runChild(transport);
      assert.equal(r.ok, true, `child failed: ${r.error}\n${r.wire || ''}`);
      assert.equal(r.transport, transport);
      assert.deepEqual(r.data, { over: transport });
      if (transport === 'websocket') {
        assert.ok(r.setCookies.length > 0 && r.setCookies.every((c) => /;\s*Secure/.test(c) && /SameSite=None/.test(c)),
          `the upgrade's BAYEUX_BROWSER cookie is Secure; SameSite=None: ${JSON.stringify(r.setCookies)}`);
      }
    }));
  }
});
