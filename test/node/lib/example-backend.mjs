// Harness for cmd/example-backend: build it (once per process, unless
// CG_EXAMPLE_BACKEND_BIN names a binary), start it in contract or plain mode on
// a free loopback port, wait until it logs that it listens, and stop it by PID
// (SIGTERM, then SIGKILL after a bound). Its output is kept (bounded) and has
// the same shape as a Gateway's (opts.name, logTail) so that guard() prints it
// when a test fails.

import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, freePort } from './gateway.mjs';
import { waitFor } from './util.mjs';

const BUILD_TIMEOUT_MS = Number(process.env.CG_BUILD_TIMEOUT_MS || 300000);
const START_TIMEOUT_MS = 15000;
const STOP_GRACE_MS = 8000;
const LOG_LIMIT = 200000;

let binaryPromise = null;
let buildDir = null;
const live = new Set();

/** Returns the path of an example-backend binary, building it on first use. */
export function exampleBackendBinary() {
  if (process.env.CG_EXAMPLE_BACKEND_BIN) {
    const bin = process.env.CG_EXAMPLE_BACKEND_BIN;
    return existsSync(bin) ? Promise.resolve(bin) : Promise.reject(new Error(`CG_EXAMPLE_BACKEND_BIN=${bin} does not exist`));
  }
  if (!binaryPromise) {
    buildDir = mkdtempSync(join(tmpdir(), 'cg-example-backend-'));
    const out = join(buildDir, 'example-backend');
    binaryPromise = new Promise((res, rej) => {
      execFile('go', ['build', '-o', out, './cmd/example-backend'], {
        cwd: REPO_ROOT,
        timeout: BUILD_TIMEOUT_MS,
        maxBuffer: 16 << 20,
      }, (err, stdout, stderr) => {
        if (err) rej(new Error(`go build ./cmd/example-backend failed: ${err.message}\n${stdout}${stderr}`));
        else res(out);
      });
    });
  }
  return binaryPromise;
}

/** One example-backend process. Options: mode ('contract' | 'plain'), name. */
export class ExampleBackend {
  constructor(opts = {}) {
    this.opts = { mode: 'contract', name: `backend-${opts.mode || 'contract'}`, ...opts };
    this.port = null;
    this.proc = null;
    this.log = '';
    this.exit = null; // { code, signal } once exited
  }

  get target() { return `127.0.0.1:${this.port}`; }

  appendLog(s) {
    this.log += s;
    if (this.log.length > LOG_LIMIT) this.log = '[...truncated...]\n' + this.log.slice(this.log.length - LOG_LIMIT);
  }

  logTail(n = 8000) {
    return this.log.length > n ? '[...]' + this.log.slice(this.log.length - n) : this.log;
  }

  async start() {
    if (this.proc) throw new Error(`${this.opts.name} already running`);
    const bin = await exampleBackendBinary();
    this.port = await freePort();
    this.exit = null;
    this.appendLog(`\n===== ${this.opts.name} start on ${this.target} =====\n`);
    const proc = spawn(bin, ['-listen', this.target, '-mode', this.opts.mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    live.add(proc);
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (c) => this.appendLog(c));
    proc.stderr.on('data', (c) => this.appendLog(c));
    proc.exitedPromise = new Promise((res) => proc.on('exit', (code, signal) => {
      live.delete(proc);
      this.exit = { code, signal };
      this.appendLog(`\n===== ${this.opts.name} pid ${proc.pid} exited code=${code} signal=${signal} =====\n`);
      res(this.exit);
    }));
    try {
      await waitFor(() => {
        if (this.exit) throw new Error(`${this.opts.name} exited during startup:\n${this.logTail()}`);
        return this.log.includes('example backend listening');
      }, START_TIMEOUT_MS, `${this.opts.name} to listen on ${this.target}`);
    } catch (err) {
      await this.stop();
      throw new Error(`${err.message}\n${this.logTail()}`);
    }
    return this;
  }

  /** Waits until the output contains `text` (string or RegExp). */
  waitLog(text, ms, what) {
    const hit = () => (text instanceof RegExp ? text.test(this.log) : this.log.includes(text));
    return waitFor(hit, ms, `${this.opts.name}: ${what || text}`);
  }

  /**
   * SIGTERM, then SIGKILL after STOP_GRACE_MS. Resolves with
   * { code, signal, ms } once the process has exited.
   */
  async stop() {
    const proc = this.proc;
    if (!proc) return this.exit;
    this.proc = null;
    const started = Date.now();
    if (proc.exitCode === null && proc.signalCode === null) {
      try { process.kill(proc.pid, 'SIGTERM'); } catch { /* already gone */ }
      const timer = setTimeout(() => {
        this.appendLog(`\n===== ${this.opts.name} pid ${proc.pid} still running ${STOP_GRACE_MS} ms after SIGTERM; SIGKILL =====\n`);
        try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ }
      }, STOP_GRACE_MS);
      await proc.exitedPromise;
      clearTimeout(timer);
    } else {
      await proc.exitedPromise;
    }
    return { ...this.exit, ms: Date.now() - started };
  }
}

/** Remove the build directory and kill what is left (by PID) when the process exits. */
process.on('exit', () => {
  for (const p of live) {
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  if (buildDir) {
    try { rmSync(buildDir, { recursive: true, force: true }); } catch { /* ignore */ }
  }
});
