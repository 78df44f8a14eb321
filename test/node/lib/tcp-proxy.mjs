// A loopback TCP proxy that can cut a connection the moment the server sends
// a given marker, before forwarding those bytes: the client never sees the
// message, exactly as if the network had dropped the response carrying it.
// Used to check that the ack extension re-delivers messages lost in flight.
// It can also play a network outage: cut every connection and refuse new
// ones until told otherwise (outage / restore).
// Works for HTTP and for (uncompressed) websocket traffic, since server frames
// are not masked.

import net from 'node:net';

export class CuttingProxy {
  constructor(targetPort, wire, tag = 'proxy') {
    this.targetPort = targetPort;
    this.wire = wire;
    this.tag = tag;
    this.sockets = new Set();
    this.cutOn = null; // Buffer marker
    this.cuts = 0;
    this.connections = 0;
    this.refusing = false;
  }

  /** Cuts every open connection and refuses new ones until restore(). */
  outage() {
    this.refusing = true;
    this.wire && this.wire.add(this.tag, 'OUTAGE', `cutting ${this.sockets.size} sockets`);
    for (const s of this.sockets) s.destroy();
  }

  /** Ends an outage: new connections are forwarded again. */
  restore() {
    this.refusing = false;
    this.wire && this.wire.add(this.tag, 'RESTORE', '');
  }

  /** Arms a one-shot cut: the next server->client chunk containing `marker` kills that connection. */
  armCut(marker) {
    this.cutOn = Buffer.from(marker);
  }

  start() {
    this.server = net.createServer((client) => {
      if (this.refusing) {
        client.destroy();
        return;
      }
      this.connections++;
      const id = this.connections;
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      this.sockets.add(client);
      this.sockets.add(upstream);
      let tail = Buffer.alloc(0);
      const kill = () => { client.destroy(); upstream.destroy(); };
      client.on('data', (c) => upstream.write(c));
      upstream.on('data', (c) => {
        if (this.cutOn) {
          const window = Buffer.concat([tail, c]);
          if (window.includes(this.cutOn)) {
            const marker = this.cutOn.toString();
            this.cutOn = null;
            this.cuts++;
            this.wire && this.wire.add(this.tag, `CUT conn#${id}`, `dropped ${c.length} bytes containing ${marker}: ${c.toString('latin1').slice(0, 600)}`);
            kill();
            return;
          }
          tail = c.subarray(Math.max(0, c.length - this.cutOn.length));
        }
        client.write(c);
      });
      client.on('error', kill);
      upstream.on('error', kill);
      client.on('close', () => { upstream.end(); this.sockets.delete(client); });
      upstream.on('close', () => { client.end(); this.sockets.delete(upstream); });
    });
    return new Promise((res) => this.server.listen(0, '127.0.0.1', () => {
      this.port = this.server.address().port;
      res(this);
    }));
  }

  stop() {
    for (const s of this.sockets) s.destroy();
    return new Promise((res) => this.server ? this.server.close(() => res()) : res());
  }
}

/**
 * A loopback TCP proxy that holds back the server's side of every websocket
 * upgrade (the 101 response and all after it) until another connection has
 * forwarded a server chunk containing `releaseMarker`. It forces an ordering
 * a client may meet by chance: e.g. Faye opens its websocket (probing it)
 * while it handshakes over HTTP, and with the 101 held until the handshake
 * reply has gone through, neither request can carry the cookie the other one
 * sets.
 */
export class HoldingProxy {
  constructor(targetPort, releaseMarker, wire, tag = 'holding-proxy') {
    this.targetPort = targetPort;
    this.releaseMarker = Buffer.from(releaseMarker);
    this.wire = wire;
    this.tag = tag;
    this.sockets = new Set();
    this.held = []; // { id, flush } of upgrades still held
    this.heldUpgrades = 0;
    this.released = false;
  }

  release() {
    if (this.released) return;
    this.released = true;
    this.wire && this.wire.add(this.tag, 'RELEASE', `${this.held.length} held upgrade(s)`);
    for (const h of this.held.splice(0)) h.flush();
  }

  start() {
    let seq = 0;
    this.server = net.createServer((client) => {
      const id = ++seq;
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      this.sockets.add(client);
      this.sockets.add(upstream);
      const kill = () => { client.destroy(); upstream.destroy(); };
      let kind = null; // 'upgrade' or 'http', from the first request bytes
      let queue = null; // server chunks held back
      client.on('data', (c) => {
        if (kind === null) {
          kind = /\r\nupgrade:\s*websocket\r\n/i.test(c.toString('latin1')) ? 'upgrade' : 'http';
          if (kind === 'upgrade' && !this.released) {
            queue = [];
            this.heldUpgrades++;
            this.wire && this.wire.add(this.tag, `HOLD conn#${id}`, c.toString('latin1').split('\r\n')[0]);
            this.held.push({ id, flush: () => { for (const q of queue) client.write(q); queue = null; } });
          }
        }
        upstream.write(c);
      });
      upstream.on('data', (c) => {
        if (queue) { queue.push(c); return; }
        if (kind === 'http' && !this.released && c.includes(this.releaseMarker)) {
          client.write(c, () => this.release());
          return;
        }
        client.write(c);
      });
      client.on('error', kill);
      upstream.on('error', kill);
      client.on('close', () => { upstream.end(); this.sockets.delete(client); });
      upstream.on('close', () => { client.end(); this.sockets.delete(upstream); });
    });
    return new Promise((res) => this.server.listen(0, '127.0.0.1', () => {
      this.port = this.server.address().port;
      res(this);
    }));
  }

  stop() {
    for (const s of this.sockets) s.destroy();
    return new Promise((res) => this.server ? this.server.close(() => res()) : res());
  }
}
