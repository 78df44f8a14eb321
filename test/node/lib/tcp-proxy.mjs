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
