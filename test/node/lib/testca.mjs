// A certificate authority made for one test run with openssl (ECDSA P-256),
// and a certificate it signs for 127.0.0.1 and localhost, as PEM files in a
// temporary directory.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Makes the CA and the certificate. Returns { caFile, certFile, keyFile,
 * caPem, tlsYaml (the gateway's tls section for them), cleanup() }.
 */
export function makeTestCertificates() {
  const dir = mkdtempSync(join(tmpdir(), 'cg-tls-'));
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=cometgate test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  ssl('req', ...ec, '-keyout', 'key.pem', '-out', 'leaf.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'leaf.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  ssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'cert.pem', '-days', '1', '-extfile', 'leaf.ext');
  const caFile = join(dir, 'ca.pem');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  return {
    caFile, certFile, keyFile,
    caPem: readFileSync(caFile),
    tlsYaml: ['tls:', '  mode: files', `  certFile: ${JSON.stringify(certFile)}`, `  keyFile: ${JSON.stringify(keyFile)}`].join('\n'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
