// `npm test`: builds the gateway once (unless CG_BIN names a binary), then
// runs every tests/*.test.mjs with node's built-in test runner (TAP output;
// the last lines are its summary) and exits with its status.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildGateway } from './lib/gateway.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const env = { ...process.env };
let tmp = null;
if (!env.CG_BIN) {
  tmp = mkdtempSync(join(tmpdir(), 'cg-suite-'));
  const started = Date.now();
  try {
    env.CG_BIN = await buildGateway(tmp);
    console.log(`# built gateway in ${Date.now() - started} ms: ${env.CG_BIN}`);
  } catch (err) {
    // Let every test file fail with the build error (so the run still ends
    // with node:test's summary) instead of rebuilding in each file.
    const f = join(tmp, 'build-error.txt');
    writeFileSync(f, String(err.message || err));
    env.CG_BUILD_ERROR_FILE = f;
    delete env.CG_BIN;
    console.log('# gateway build FAILED; every test will fail with the build error');
  }
}
const only = process.argv.slice(2);
const files = only.length ? only : readdirSync(join(here, 'tests')).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => join('tests', f));
const child = spawn(process.execPath, ['--test', '--test-reporter=tap', `--test-concurrency=${env.CG_TEST_CONCURRENCY || 1}`, '--test-timeout=150000', ...files], {
  cwd: here, env, stdio: 'inherit',
});
const forward = (sig) => () => child.kill(sig);
process.on('SIGINT', forward('SIGINT'));
process.on('SIGTERM', forward('SIGTERM'));
child.on('exit', (code, signal) => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  process.exit(code === null ? 1 : code);
});
