// Harness for the Cometgate gateway binary: build it (once per process, unless
// CG_BIN names a binary), start it on a free loopback port with a temporary
// YAML config, wait for /healthz, stop it by PID (SIGTERM, then SIGKILL after a
// bound) and restart it on the same port. The gateway's stderr/stdout is kept
// (bounded) so that a failing test can print it.

import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, '..', '..', '..');

const BUILD_TIMEOUT_MS = Number(process.env.CG_BUILD_TIMEOUT_MS || 300000);
const START_TIMEOUT_MS = 15000;
const STOP_GRACE_MS = 5000;
const LOG_LIMIT = 400000; // characters of gateway output kept per instance

let binaryPromise = null;
const live = new Set();

/** Returns the path of a gateway binary, building it on first use. */
export function gatewayBinary() {
  if (process.env.CG_BUILD_ERROR_FILE) {
    return Promise.reject(new Error(readFileSync(process.env.CG_BUILD_ERROR_FILE, 'utf8')));
  }
  if (process.env.CG_BIN) {
    if (!existsSync(process.env.CG_BIN)) {
      return Promise.reject(new Error(`CG_BIN=${process.env.CG_BIN} does not exist`));
    }
    return Promise.resolve(process.env.CG_BIN);
  }
  if (!binaryPromise) {
    binaryPromise = buildGateway();
  }
  return binaryPromise;
}

/** Builds ./cmd/gateway into a fresh temp dir and returns the binary path. */
export function buildGateway(outDir) {
  const dir = outDir || mkdtempSync(join(tmpdir(), 'cg-bin-'));
  const out = join(dir, 'gateway');
  return new Promise((res, rej) => {
    execFile('go', ['build', '-o', out, './cmd/gateway'], {
      cwd: REPO_ROOT,
      timeout: BUILD_TIMEOUT_MS,
      maxBuffer: 16 << 20,
    }, (err, stdout, stderr) => {
      if (err) {
        rej(new Error(`go build ./cmd/gateway failed: ${err.message}\n${stdout}${stderr}`));
      } else {
        res(out);
      }
    });
  });
}

/** Picks a free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

function httpGet(url, timeoutMs, ca) {
  return new Promise((res, rej) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(url, { agent: false, timeout: timeoutMs, ca }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c) => { body += c; });
      r.on('end', () => res({ status: r.statusCode, headers: r.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function yamlString(s) {
  return JSON.stringify(String(s)); // JSON strings are valid YAML scalars
}

/**
 * One gateway process (and its restarts on the same port).
 * Options: timeout ('2s'), maxInterval ('10s'), allowedOrigins ([]),
 * ack (true), timesync (true), logLevel ('debug'), extraYaml (string),
 * env ({}), name (for logs), tlsCA (PEM of the CA that signed the
 * certificate of a gateway configured with tls in extraYaml: its URLs are
 * then https and wss).
 */
export class Gateway {
  constructor(opts = {}) {
    this.opts = {
      timeout: '2s',
      maxInterval: '10s',
      allowedOrigins: [],
      ack: true,
      timesync: true,
      logLevel: process.env.CG_LOG_LEVEL || 'debug',
      extraYaml: '',
      env: {},
      name: 'gateway',
      ...opts,
    };
    this.port = null;
    this.proc = null;
    this.log = '';
    this.dir = mkdtempSync(join(tmpdir(), 'cg-run-'));
    this.configFile = join(this.dir, 'config.yaml');
    this.starts = 0;
  }

  get origin() { return `${this.opts.tlsCA ? 'https' : 'http'}://127.0.0.1:${this.port}`; }
  get url() { return `${this.origin}/cometd`; }
  get wsUrl() { return `${this.opts.tlsCA ? 'wss' : 'ws'}://127.0.0.1:${this.port}/cometd`; }

  writeConfig() {
    const o = this.opts;
    const lines = [
      `listen: ${yamlString(`127.0.0.1:${this.port}`)}`,
      'path: /cometd',
      'bayeux:',
      `  timeout: ${o.timeout}`,
      `  maxInterval: ${o.maxInterval}`,
      'cors:',
      `  allowedOrigins: [${o.allowedOrigins.map(yamlString).join(', ')}]`,
      'extensions:',
      `  ack: ${o.ack ? 'true' : 'false'}`,
      `  timesync: ${o.timesync ? 'true' : 'false'}`,
    ];
    // The control API would otherwise take its default port (8081) in every
    // gateway the suite starts; tests that need it configure it themselves.
    if (!/^api:/m.test(o.extraYaml || '')) lines.push('api:', '  listen: "off"');
    if (o.extraYaml) lines.push(o.extraYaml);
    writeFileSync(this.configFile, lines.join('\n') + '\n');
  }

  appendLog(s) {
    this.log += s;
    if (this.log.length > LOG_LIMIT) {
      this.log = '[...truncated...]\n' + this.log.slice(this.log.length - LOG_LIMIT);
    }
  }

  /** Last `n` characters of the gateway's combined output. */
  logTail(n = 8000) {
    return this.log.length > n ? '[...]' + this.log.slice(this.log.length - n) : this.log;
  }

  async start() {
    if (this.proc) throw new Error('gateway already running');
    const bin = await gatewayBinary();
    if (this.port == null) this.port = await freePort();
    this.writeConfig();
    this.starts++;
    this.appendLog(`\n===== ${this.opts.name} start #${this.starts} on port ${this.port} =====\n`);
    const env = {
      ...process.env,
      COMETGATE_LISTEN: `127.0.0.1:${this.port}`,
      COMETGATE_LOG_LEVEL: this.opts.logLevel,
      ...this.opts.env,
    };
    const proc = spawn(bin, ['-config', this.configFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    live.add(proc);
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (c) => this.appendLog(c));
    proc.stderr.on('data', (c) => this.appendLog(c));
    const exited = new Promise((res) => proc.on('exit', (code, sig) => {
      live.delete(proc);
      this.appendLog(`\n===== ${this.opts.name} pid ${proc.pid} exited code=${code} signal=${sig} =====\n`);
      res({ code, sig });
    }));
    proc.exitedPromise = exited;

    const deadline = Date.now() + START_TIMEOUT_MS;
    let exitInfo = null;
    exited.then((e) => { exitInfo = e; });
    for (;;) {
      if (exitInfo) {
        this.proc = null;
        throw new Error(`gateway exited during startup (code=${exitInfo.code} signal=${exitInfo.sig}):\n${this.logTail()}`);
      }
      try {
        const r = await httpGet(`${this.origin}/healthz`, 1000, this.opts.tlsCA);
        if (r.status === 200) return this;
      } catch { /* not up yet */ }
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`gateway did not answer /healthz 200 within ${START_TIMEOUT_MS} ms:\n${this.logTail()}`);
      }
      await sleep(100);
    }
  }

  /** SIGTERM, then SIGKILL after STOP_GRACE_MS. Resolves when the process has exited. */
  async stop() {
    const proc = this.proc;
    if (!proc) return;
    this.proc = null;
    if (proc.exitCode === null && proc.signalCode === null) {
      try { process.kill(proc.pid, 'SIGTERM'); } catch { /* already gone */ }
      const timer = setTimeout(() => {
        this.appendLog(`\n===== ${this.opts.name} pid ${proc.pid} did not exit ${STOP_GRACE_MS} ms after SIGTERM; SIGKILL =====\n`);
        try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ }
      }, STOP_GRACE_MS);
      await proc.exitedPromise;
      clearTimeout(timer);
    }
  }

  /** Stops the gateway and starts it again on the same port. */
  async restart() {
    await this.stop();
    // The port is ours: the listener is closed when the process has exited.
    await this.start();
  }

  cleanup() {
    try { rmSync(this.dir, { recursive: true, force: true }); } catch { /* ignore */ }
  }
}

/** Kill every gateway this process started (by PID) if the process exits abruptly. */
process.on('exit', () => {
  for (const p of live) {
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  }
});
