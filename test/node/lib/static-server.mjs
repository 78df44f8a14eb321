// A small static file server on its own loopback port: it serves the test
// pages (test/node/pages) and the browser builds of the client libraries from
// node_modules, so that those pages run on an origin other than the
// gateway's. Only GET/HEAD of files under the two roots are served.

import http from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { join, normalize, extname, resolve, dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const NODE_ROOT = resolve(HERE, '..');
const ROOTS = {
  '/pages/': join(NODE_ROOT, 'pages'),
  '/node_modules/': join(NODE_ROOT, 'node_modules'),
};
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
};

/** Maps a URL path to a file under one of the roots, or null. */
export function resolveStatic(pathname) {
  for (const [prefix, root] of Object.entries(ROOTS)) {
    if (pathname.startsWith(prefix)) {
      const rel = normalize(decodeURIComponent(pathname.slice(prefix.length)));
      const file = join(root, rel);
      if (file !== root && !file.startsWith(root + sep)) return null;
      return file;
    }
  }
  return null;
}

export function contentType(file) {
  return TYPES[extname(file)] || 'application/octet-stream';
}

export class StaticServer {
  constructor() {
    this.requests = [];
  }

  get origin() { return `http://127.0.0.1:${this.port}`; }

  start(port = 0) {
    this.server = http.createServer(async (req, res) => {
      const url = new URL(req.url, 'http://x');
      this.requests.push(`${req.method} ${url.pathname}`);
      const file = (req.method === 'GET' || req.method === 'HEAD') ? resolveStatic(url.pathname) : null;
      try {
        if (!file || !(await stat(file)).isFile()) throw new Error('not found');
        const body = await readFile(file);
        res.writeHead(200, { 'Content-Type': contentType(file), 'Cache-Control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      } catch {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not found');
      }
    });
    return new Promise((r) => this.server.listen(port, '127.0.0.1', () => {
      this.port = this.server.address().port;
      r(this);
    }));
  }

  stop() {
    this.server.closeAllConnections && this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
