// disconnect() with a /meta/connect held, over websocket, with the official
// CometD 9 client: the client closes its socket only if no connect is
// outstanding when the disconnect reply arrives, so the gateway must answer
// the held connect ahead of the disconnect reply and close the connection.
// The client runs in a child process (children/disconnect-held-connect.mjs),
// which must then exit by itself: nothing, socket or timer, may keep it alive.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gateway, freePort } from '../lib/gateway.mjs';
import { guard, Wire, waitFor, withTimeout } from '../lib/util.mjs';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), '..', 'children', 'disconnect-held-connect.mjs');
const EXIT_BOUND_MS = 15000; // from the go to disconnect() to the child's exit

const wire = new Wire();
let apiPort = null;
// A long poll timeout (30 s, beyond EXIT_BOUND_MS plus the client's network
// delay): the held connect is never answered by its timeout during the test.
const gw = new Gateway({ name: 'gateway', timeout: '30s', maxInterval: '10s' });
before(async () => {
  apiPort = await freePort();
  gw.opts.extraYaml = ['api:', `  listen: "127.0.0.1:${apiPort}"`].join('\n');
  await gw.start();
});
after(async () => { await gw.stop(); gw.cleanup(); });

async function stats() {
  const r = await fetch(`http://127.0.0.1:${apiPort}/v1/stats`, { signal: AbortSignal.timeout(5000) });
  const text = await r.text();
  wire.add('api', `< ${r.status} /v1/stats`, text);
  assert.equal(r.status, 200, text);
  const s = JSON.parse(text);
  // int64 fields are JSON strings, and zero ones may be left out.
  return { sessions: Number(s.sessions || 0), websocketConnections: Number(s.websocketConnections || 0) };
}

describe('CometD 9 Node client: disconnect() with a connect held over websocket', () => {
  it('the client process exits by itself and the gateway closes the connection', { timeout: 60000 }, (t) => {
    let child = null;
    let stderr = '';
    return guard(t, { gateways: [gw], wires: [wire], extra: () => `child stderr:\n${stderr}` }, async () => {
      child = spawn(process.execPath, [CHILD], {
        env: { ...process.env, CG_URL: gw.url, CG_CHANNEL: `/bye/${randomBytes(5).toString('hex')}` },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const steps = [];
      let out = '';
      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8');
      child.stdout.on('data', (c) => {
        out += c;
        let i;
        while ((i = out.indexOf('\n')) >= 0) {
          const line = out.slice(0, i);
          out = out.slice(i + 1);
          wire.add('child', 'stdout', line);
          try { steps.push({ at: Date.now(), ...JSON.parse(line) }); } catch { /* not ours */ }
        }
      });
      child.stderr.on('data', (c) => { stderr += c; });
      const exited = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal, at: Date.now() })));
      let exit = null;
      exited.then((e) => { exit = e; });

      const held = await waitFor(() => steps.find((s) => s.step === 'held') || (exit && { exit }), 20000, 'the child to have a connect held');
      assert.ok(!held.exit, `child exited before holding a connect: ${JSON.stringify(held.exit)}`);
      const s1 = await stats();
      assert.equal(s1.sessions, 1, `one session while the connect is held: ${JSON.stringify(s1)}`);
      assert.equal(s1.websocketConnections, 1, `one websocket while the connect is held: ${JSON.stringify(s1)}`);

      // Go: the child calls disconnect() once its standard input ends.
      child.stdin.end();
      const e = await withTimeout(exited, EXIT_BOUND_MS, 'the child process to exit by itself after disconnect()');
      const done = steps.find((s) => s.step === 'disconnected');
      assert.ok(done, `child reported the disconnect: ${JSON.stringify(steps)}`);
      assert.equal(done.reply && done.reply.successful, true, `disconnect reply: ${JSON.stringify(done.reply)}`);
      assert.ok(done.heldAnswer, 'the held connect was answered');
      // Ahead of the disconnect reply in the same frame: then the client has
      // no connect outstanding when it reads the disconnect reply, whatever
      // the timing (an answer in a frame of its own could come after it).
      const frame = (done.disconnectFrame || []).map((m) => `${m.channel}#${m.id}`);
      assert.deepEqual(frame, [`/meta/connect#${held.connectId}`, `/meta/disconnect#${done.reply.id}`], 'the frame with the disconnect reply');
      assert.equal(e.signal, null, 'exited, not killed');
      assert.equal(e.code, 0, `exit code; stderr: ${stderr}`);

      await waitFor(async () => {
        const s = await stats();
        return s.sessions === 0 && s.websocketConnections === 0;
      }, 5000, 'no session and no websocket connection left on the gateway');
    }).finally(async () => {
      if (child && child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((res) => child.once('exit', res));
        try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
        await withTimeout(gone, 5000, 'child exit after SIGTERM').catch(() => {
          try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
        });
        if (stderr) for (const line of stderr.split('\n')) t.diagnostic(`child: ${line}`);
      }
    });
  });
});
