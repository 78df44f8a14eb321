// A recording HTTP reverse proxy on loopback: forwards every request to the
// gateway unchanged and records what actually crossed the wire (request
// headers, notably Cookie, and response status and Set-Cookie).

import http from 'node:http';

export class HttpTap {
  constructor(targetPort, wire, tag = 'tap') {
    this.targetPort = targetPort;
    this.wire = wire;
    this.tag = tag;
    this.exchanges = [];
  }

  start() {
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const ex = { method: req.method, url: req.url, headers: req.headers, body };
        this.exchanges.push(ex);
        this.wire && this.wire.add(this.tag, `> ${req.method} ${req.url} cookie=[${req.headers.cookie || ''}]`, body);
        const up = http.request({
          host: '127.0.0.1', port: this.targetPort, method: req.method, path: req.url, headers: req.headers, agent: false,
        }, (ur) => {
          const out = [];
          ur.on('data', (c) => out.push(c));
          ur.on('end', () => {
            ex.status = ur.statusCode;
            ex.responseHeaders = ur.headers;
            ex.response = Buffer.concat(out).toString('utf8');
            this.wire && this.wire.add(this.tag, `< ${ur.statusCode} set-cookie=${JSON.stringify(ur.headers['set-cookie'] || [])}`, ex.response);
            res.writeHead(ur.statusCode, ur.headers);
            res.end(Buffer.concat(out));
          });
        });
        up.on('error', (e) => {
          ex.error = e.message;
          this.wire && this.wire.add(this.tag, '< PROXY ERROR', e.message);
          res.destroy();
        });
        up.end(body);
      });
    });
    return new Promise((r) => this.server.listen(0, '127.0.0.1', () => {
      this.port = this.server.address().port;
      r(this);
    }));
  }

  stop() {
    this.server.closeAllConnections && this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
