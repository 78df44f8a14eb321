// Three gateway nodes joined by their embedded NATS servers (cluster.broker
// embedded, routes between them: no other process), behind a round-robin
// HTTP proxy with no stickiness (each request goes to the next node, cookies
// passed through), and the official CometD 9 client (cometd-nodejs-client 2)
// over long-polling through it. A session lives on the node that created it
// (its client id names that node); a request that lands on another node is
// relayed to the owner over NATS, a held /meta/connect is held on the owner
// and answered through the relaying node.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import faye from 'faye';
import { randomBytes } from 'node:crypto';
import { Gateway, freePort } from '../lib/gateway.mjs';
import { NodeClient, wire, AckExtension } from '../lib/cometd-node.mjs';
import { guard, RawHttp, waitFor, withTimeout } from '../lib/util.mjs';

const T = { timeout: 90000 };
const rnd = () => randomBytes(5).toString('hex');
const ID_LEN = 8; // a session id starts with its owner node's id (gateway/cluster.IDLen)

/**
 * A reverse proxy on loopback that sends each request to the next node in
 * turn (no stickiness) and records every exchange: which node, the request
 * and response bodies, and the order of events (a sequence number when the
 * request arrived and when its response came back).
 */
class RoundRobinProxy {
  constructor(ports) {
    this.ports = ports;
    this.next = 0;
    this.seq = 0;
    this.exchanges = [];
    this.lastHandshakeNode = undefined; // node of the last handshake over HTTP
  }

  start() {
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const node = this.next++ % this.ports.length;
        const body = Buffer.concat(chunks).toString('utf8');
        if (body.includes('"/meta/handshake"')) this.lastHandshakeNode = node;
        const ex = { node, method: req.method, url: req.url, body, sentAt: ++this.seq };
        try { ex.messages = JSON.parse(body); } catch { ex.messages = []; }
        this.exchanges.push(ex);
        wire.add('proxy', `> node${node} ${req.method} ${req.url} cookie=[${req.headers.cookie || ''}]`, body);
        const up = http.request({
          host: '127.0.0.1', port: this.ports[node], method: req.method, path: req.url, headers: req.headers, agent: false,
        }, (ur) => {
          const out = [];
          ur.on('data', (c) => out.push(c));
          ur.on('end', () => {
            ex.answeredAt = ++this.seq;
            ex.status = ur.statusCode;
            ex.response = Buffer.concat(out).toString('utf8');
            try { ex.replies = JSON.parse(ex.response); } catch { ex.replies = []; }
            wire.add('proxy', `< node${node} ${ur.statusCode} set-cookie=${JSON.stringify(ur.headers['set-cookie'] || [])}`, ex.response);
            res.writeHead(ur.statusCode, ur.headers);
            res.end(Buffer.concat(out));
          });
        });
        up.on('error', (e) => {
          ex.error = e.message;
          wire.add('proxy', `< node${node} PROXY ERROR`, e.message);
          res.destroy();
        });
        up.end(body);
      });
    });
    // Websocket upgrades go to the next node too, and stay there: the
    // upgrade request is passed on as is, then bytes both ways.
    // A websocket goes to the node after the one that took the last
    // handshake over HTTP: a client that handshakes over HTTP, then opens
    // its websocket (Faye), has it away from its session's node.
    this.upgrades = [];
    this.awayUpgrades = 0;
    this.server.on('upgrade', (req, socket, head) => {
      let node = this.next++ % this.ports.length;
      if (this.lastHandshakeNode !== undefined) {
        node = (this.lastHandshakeNode + 1) % this.ports.length;
        this.awayUpgrades++;
      }
      this.upgrades.push(node);
      wire.add('proxy', `> node${node} UPGRADE ${req.url}`, '');
      const up = net.connect(this.ports[node], '127.0.0.1', () => {
        let h = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
        for (let i = 0; i < req.rawHeaders.length; i += 2) h += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
        up.write(h + '\r\n');
        if (head && head.length) up.write(head);
        up.pipe(socket);
        socket.pipe(up);
      });
      const close = () => { up.destroy(); socket.destroy(); };
      up.on('error', close);
      socket.on('error', close);
      up.on('close', close);
      socket.on('close', close);
    });
    return new Promise((r) => this.server.listen(0, '127.0.0.1', () => {
      this.port = this.server.address().port;
      r(this);
    }));
  }

  get url() { return `http://127.0.0.1:${this.port}/cometd`; }

  stop() {
    if (!this.server) return Promise.resolve();
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const nodes = [];
let proxy;

before(async () => {
  const natsPorts = [await freePort(), await freePort(), await freePort()];
  const routePorts = [await freePort(), await freePort(), await freePort()];
  for (let i = 0; i < 3; i++) {
    const routes = routePorts.filter((_, j) => j !== i).map((p) => JSON.stringify(`nats-route://127.0.0.1:${p}`));
    nodes.push(new Gateway({
      name: `node${i}`,
      timeout: '3s',
      extraYaml: [
        'cluster:',
        '  broker: embedded',
        `  nodeName: node${i}`,
        '  embedded:',
        `    listen: "127.0.0.1:${natsPorts[i]}"`,
        `    clusterListen: "127.0.0.1:${routePorts[i]}"`,
        `    routes: [${routes.join(', ')}]`,
      ].join('\n'),
    }));
  }
  await Promise.all(nodes.map((n) => n.start()));
  proxy = await new RoundRobinProxy(nodes.map((n) => n.port)).start();

  // The embedded servers form their routes in the background: wait until a
  // session opened on each node can be reached through each other node (a
  // relayed /meta/connect that does not wait succeeds).
  for (let i = 0; i < 3; i++) {
    const raw = new RawHttp(nodes[i].origin, wire, `ready${i}`);
    const hs = await raw.post('/cometd/handshake', [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: '1' }]);
    const clientId = hs.json && hs.json[0] && hs.json[0].clientId;
    assert.ok(clientId, `handshake on node${i}: ${hs.text}`);
    for (let j = 0; j < 3; j++) {
      let n = 1;
      await waitFor(async () => {
        raw.baseUrl = nodes[j].origin;
        const r = await raw.post('/cometd/connect', [{ channel: '/meta/connect', clientId, connectionType: 'long-polling', id: String(++n), advice: { timeout: 0 } }]);
        return r.status === 200 && r.json && r.json[0].successful;
      }, 30000, `a session of node${i} reachable through node${j} (routes up, relay answering)`, 100);
    }
    raw.baseUrl = nodes[i].origin;
    await raw.post('/cometd/disconnect', [{ channel: '/meta/disconnect', clientId, id: '999' }]);
  }
});

after(async () => {
  if (proxy) await proxy.stop();
  await Promise.all(nodes.map((n) => n.stop()));
  for (const n of nodes) n.cleanup();
});

describe('CometD 9 over long-polling through a round-robin proxy in front of three nodes', () => {
  const clients = [];
  const check = (t, fn) => guard(t, { gateways: nodes, wires: [wire] }, fn);
  afterEach(async () => { await Promise.all(clients.splice(0).map((c) => c.close())); });

  // With the ack extension, as CometD advises for strict order: a
  // long-polling client's events otherwise travel both in its held
  // connect's response and piggybacked on its publishes' responses, two
  // HTTP exchanges whose answers may arrive in either order (on one node
  // as on several; CometD gives no order between them either).
  const mk = (name) => {
    const c = new NodeClient({ url: proxy.url, transport: 'long-polling', name: `cl:${name}` });
    c.cometd.registerExtension('ack', new AckExtension());
    clients.push(c);
    return c;
  };

  // The node index each node id (a client id's first ID_LEN characters)
  // belongs to, learnt from the handshakes the proxy forwarded.
  const nodeOf = () => {
    const m = new Map();
    for (const ex of proxy.exchanges) {
      for (const r of ex.replies || []) {
        if (r.channel === '/meta/handshake' && r.successful && r.clientId) m.set(r.clientId.slice(0, ID_LEN), ex.node);
      }
    }
    return m;
  };

  it('publishes from sessions on different nodes reach every subscriber exactly once and in order; connects are held', T, (t) => check(t, async () => {
    const channel = `/cluster/${rnd()}`;
    const N = 15;
    // Sessions until their owners cover the three nodes. A client makes
    // three requests before its connects are held (handshake, first
    // connect, held connect), so the proxy would send every handshake to
    // the same node: skip a node before each one.
    const owners = new Set();
    while (owners.size < 3 && clients.length < 12) {
      proxy.next++;
      const c = mk(`c${clients.length}`);
      const reply = await c.connect();
      assert.equal(reply.ext && reply.ext.ack, true, `${c.name}: the ack extension is on`);
      owners.add(reply.clientId.slice(0, ID_LEN));
    }
    assert.equal(owners.size, 3, `sessions owned by three nodes: ${[...owners]}`);
    for (const c of clients) await c.subscribe(channel);

    // A subscription reaches the other nodes' NATS servers over their
    // routes a moment after its reply: probe until every client has seen
    // a probe from every other.
    await waitFor(async () => {
      await Promise.all(clients.map((c) => c.publish(channel, { probe: c.name })));
      return clients.every((r) => clients.every((p) => r.received.some((m) => m.channel === channel && m.data.probe === p.name)));
    }, 30000, 'probes from every client reach every client', 200);

    const since = proxy.seq;
    await Promise.all(clients.map(async (c) => {
      for (let i = 0; i < N; i++) await c.publish(channel, { from: c.name, seq: i });
    }));
    const want = clients.length * N;
    await waitFor(() => clients.every((c) => c.received.filter((m) => m.channel === channel && m.data.from !== undefined).length >= want),
      30000, `every client receives ${want} messages`);
    for (const r of clients) {
      const got = r.received.filter((m) => m.channel === channel && m.data.from !== undefined);
      assert.equal(got.length, want, `${r.name} received exactly ${want} messages (no duplicates)`);
      for (const p of clients) {
        const seqs = got.filter((m) => m.data.from === p.name).map((m) => m.data.seq);
        assert.deepEqual(seqs, [...Array(N).keys()], `${r.name} received ${p.name}'s messages once each, in order`);
      }
    }

    // No stickiness: each session's requests went to several nodes.
    const byClient = new Map();
    for (const ex of proxy.exchanges.filter((e) => e.sentAt > since)) {
      for (const m of ex.messages) {
        if (m.clientId) byClient.set(m.clientId, (byClient.get(m.clientId) || new Set()).add(ex.node));
      }
    }
    for (const c of clients) {
      const seen = byClient.get(c.cometd.getClientId());
      assert.ok(seen && seen.size >= 2, `${c.name}'s requests went to several nodes: ${seen && [...seen]}`);
    }

    // A held connect, relayed: a /meta/connect that went to a node other
    // than its session's owner, was still open when a message was published
    // after it, and was answered with that message.
    const ids = nodeOf();
    let relayedHeld = null;
    for (let round = 0; round < 10 && !relayedHeld; round++) {
      const tag = `wake-${round}`;
      const pubAt = proxy.seq;
      await clients[0].publish(channel, { wake: tag });
      await waitFor(() => clients.every((c) => c.received.some((m) => m.data.wake === tag)), 10000, `${tag} reaches every client`);
      relayedHeld = proxy.exchanges.find((ex) => ex.sentAt < pubAt && ex.answeredAt > pubAt
        && ex.messages.some((m) => m.channel === '/meta/connect' && ids.has(m.clientId.slice(0, ID_LEN)) && ids.get(m.clientId.slice(0, ID_LEN)) !== ex.node)
        && (ex.replies || []).some((m) => m.data && m.data.wake === tag));
    }
    assert.ok(relayedHeld, 'a /meta/connect held through a node other than its owner was answered with a message published while it was held');
    const connect = relayedHeld.replies.find((m) => m.channel === '/meta/connect');
    assert.ok(connect && connect.successful, `the relayed held connect succeeded: ${relayedHeld.response}`);
  }));
  it('Faye 1.4 (handshake over HTTP, then websocket to whichever node) exchanges messages exactly once across nodes', T, (t) => check(t, async () => {
    const channel = `/cluster/faye${rnd()}`;
    const mkFaye = (name) => {
      const client = new faye.Client(proxy.url, { retry: 1, timeout: 10 });
      const rec = { sent: [], received: [] };
      client.addExtension({
        outgoing(m, cb) { rec.sent.push(JSON.parse(JSON.stringify(m))); wire.add(name, '>', m); cb(m); },
        incoming(m, cb) { rec.received.push(m); wire.add(name, '<', m); cb(m); },
      });
      return { client, rec, name };
    };
    const fs = [mkFaye('faye-a'), mkFaye('faye-b'), mkFaye('faye-c')];
    try {
      const got = fs.map(() => []);
      // A subscribe sent while Faye moves its session from long-polling to
      // its websocket can fail (402, once in tens of runs: its websocket,
      // opened before the handshake's cookie existed, is not accepted for
      // a session that has already connected), on one node as on several;
      // Faye re-handshakes, and the application subscribes again.
      for (const [i, f] of fs.entries()) {
        for (let attempt = 1; ; attempt++) {
          try {
            await withTimeout(new Promise((res, rej) => f.client.subscribe(channel, (d) => got[i].push(d)).then(res, rej)), 20000, `${f.name} subscribe`);
            break;
          } catch (e) {
            if (attempt === 3 || e.code !== 402) throw e;
            wire.add(f.name, '!', `subscribe failed (${e.code} ${e.message}), subscribing again`);
          }
        }
      }
      // Probes until every client hears every other (subscriptions reach
      // the other nodes' NATS servers over routes a moment after their
      // replies), then the counted messages.
      await waitFor(async () => {
        await Promise.all(fs.map((f) => f.client.publish(channel, { probe: f.name })));
        return got.every((g) => fs.every((f) => g.some((d) => d.probe === f.name)));
      }, 30000, 'probes from every Faye client reach every Faye client', 200);
      const N = 10;
      for (let k = 0; k < N; k++) {
        await Promise.all(fs.map((f) => withTimeout(new Promise((res, rej) => f.client.publish(channel, { from: f.name, k }).then(res, rej)), 10000, `${f.name} publish ${k}`)));
      }
      await waitFor(() => got.every((g) => g.filter((d) => d.from !== undefined).length >= N * fs.length), 20000, 'every Faye client receives every message');
      for (const [i, g] of got.entries()) {
        const counted = g.filter((d) => d.from !== undefined);
        assert.equal(counted.length, N * fs.length, `${fs[i].name} received each message exactly once`);
        for (const f of fs) {
          assert.deepEqual(counted.filter((d) => d.from === f.name).map((d) => d.k), [...Array(N).keys()], `${fs[i].name} received ${f.name}'s messages in order`);
        }
      }
      // They ended on websockets, which went to several nodes.
      for (const f of fs) {
        const last = f.rec.sent.filter((m) => m.channel === '/meta/connect').at(-1);
        assert.equal(last && last.connectionType, 'websocket', `${f.name} connects over websocket`);
      }
      assert.ok(new Set(proxy.upgrades).size >= 2, `websockets went to several nodes: ${proxy.upgrades}`);
      // Each websocket went to the node after the one that took its
      // client's handshake over HTTP, so its frames were relayed.
      assert.equal(proxy.awayUpgrades, fs.length, `websockets sent away from their session's node: ${proxy.awayUpgrades}`);
    } finally {
      for (const f of fs) {
        await withTimeout(new Promise((res) => { try { f.client.disconnect(); } catch {} res(); }), 5000, 'faye disconnect').catch(() => {});
      }
    }
  }));
});
