// The official CometD 9 JavaScript client running in Node through
// cometd-nodejs-client 2 (its XMLHttpRequest and WebSocket adapters), plus the
// shims this harness needs around it:
//
// * Per-client cookie jars. The adapter's default jar is one per process and
//   keyed by host name only, so every client in a test process would share one
//   BAYEUX_BROWSER cookie (one "browser"), and the server would rightly hand
//   the second long-polling client the "multiple-clients" advice. We plug a jar
//   per client in through the adapter's documented `cookies` hooks, keyed on
//   the transport `context` that CometD copies into each XHR.
// * Cookies on websockets, as a browser sends them. The adapter's WebSocket
//   (the `ws` package) keeps no cookies, but the gateway binds a websocket
//   session to the BAYEUX_BROWSER cookie of the upgrade (its 101 response
//   sets one when the request has none) and lets a new connection resume the
//   session only with it. CometD creates its sockets with
//   `new window.WebSocket(url)`, which says nothing of the client, so each
//   NodeClient registers its own websocket transport (JarWebSocketTransport)
//   that names its owner for the synchronous extent of `send` -- the only
//   place CometD opens a socket -- and the WebSocket constructor takes the
//   jar from there: it sends the jar's cookies with the upgrade and stores
//   the Set-Cookie headers of the response in the same jar as the XHRs'.
// * A wire log: every XHR request/response (with the Cookie header actually
//   sent) and every websocket frame, for evidence when a test fails.
// * A recording extension that sees every incoming message before the
//   client-side channel dispatch (which filters wildcards and dropped
//   subscriptions itself and would hide server misdeliveries).

import { adapt } from 'cometd-nodejs-client';
import { XMLHttpRequest as AdapterXHR } from 'cometd-nodejs-client/src/XMLHttpRequest.js';
import { WebSocket as WsWebSocket } from 'ws';
import { CometD, AckExtension, TimeSyncExtension, WebSocketTransport } from 'cometd';
import { Wire, withTimeout, waitFor } from './util.mjs';

export { CometD, AckExtension, TimeSyncExtension };

export const wire = new Wire();

const sharedJar = new Map(); // used only if an XHR has no context (not expected)

function storeCookie(jar, host, header) {
  const first = header.split(';')[0].trim();
  const eq = first.indexOf('=');
  if (eq <= 0) return;
  const name = first.slice(0, eq);
  let hostJar = jar.get(host);
  if (!hostJar) { hostJar = new Map(); jar.set(host, hostJar); }
  if (/;\s*max-age=0/i.test(header)) hostJar.delete(name);
  else hostJar.set(name, first);
}

function cookiesFor(jar, host) {
  const hostJar = jar.get(host);
  return hostJar ? [...hostJar.values()] : [];
}

class JarXHR extends AdapterXHR {
  constructor() {
    const holder = {};
    const jarOf = () => (holder.self && holder.self.context && holder.self.context.cookieStore) || sharedJar;
    super({
      cookies: {
        storeCookie: (uri, header, callback) => {
          storeCookie(jarOf(), uri.hostname, header);
          callback();
        },
        retrieveCookies: (context, uri, callback) => {
          const list = cookiesFor(jarOf(), uri.hostname);
          holder.self.sentCookie = list.join('; ');
          callback(null, list);
        },
      },
    });
    holder.self = this;
  }

  open(method, uri) {
    this.reqMethod = method;
    this.reqUrl = String(uri);
    return super.open(method, uri);
  }

  send(data) {
    const tag = (this.context && this.context.name) || 'xhr';
    const onload = this.onload;
    const onerror = this.onerror;
    this.onload = () => {
      wire.add(tag, `< ${this.status} ${new URL(this.reqUrl).pathname}`, this.responseText);
      if (onload) onload.call(this);
    };
    this.onerror = (x) => {
      wire.add(tag, `< ERROR ${new URL(this.reqUrl).pathname}`, `${this.status} ${this.statusText}`);
      if (onerror) onerror.call(this, x);
    };
    const r = super.send(data);
    wire.add(tag, `> ${this.reqMethod} ${new URL(this.reqUrl).pathname} cookie=[${this.sentCookie || ''}]`, data || '');
    return r;
  }
}

let wsSeq = 0;
// The client whose websocket transport is sending right now (see
// JarWebSocketTransport); null outside of its synchronous `send`.
let wsOwner = null;

class LoggingWebSocket extends WsWebSocket {
  constructor(url, protocols, options) {
    const owner = wsOwner;
    const jar = (owner && owner.cookieStore) || sharedJar;
    const host = new URL(String(url)).hostname;
    const cookie = cookiesFor(jar, host).join('; ');
    const opts = { ...(options || {}) };
    if (cookie) opts.headers = { ...(opts.headers || {}), Cookie: cookie };
    super(url, protocols === undefined ? [] : protocols, opts);
    this.tag = owner ? `ws-${++wsSeq}:${owner.name}` : `ws-${++wsSeq}`;
    wire.add(this.tag, `OPEN cookie=[${cookie}]`, String(url));
    // 'upgrade' comes with the 101 response, before 'open' (and so before
    // CometD sends anything on the socket).
    this.on('upgrade', (res) => {
      const set = [].concat(res.headers['set-cookie'] || []);
      for (const h of set) storeCookie(jar, host, h);
      if (set.length) wire.add(this.tag, '< 101 set-cookie', JSON.stringify(set));
    });
    this.addEventListener('message', (e) => wire.add(this.tag, '<', String(e.data)));
    this.addEventListener('close', (e) => wire.add(this.tag, 'CLOSE', `${e.code} ${e.reason}`));
    this.addEventListener('error', (e) => wire.add(this.tag, 'ERROR', String(e.message || e.error || e)));
  }
  send(data, ...rest) {
    wire.add(this.tag, '>', String(data));
    return super.send(data, ...rest);
  }
}

/**
 * CometD's websocket transport for one NodeClient: while it sends (and so
 * possibly opens a socket, synchronously, with `new window.WebSocket`), the
 * socket's constructor knows whose cookie jar to use.
 */
class JarWebSocketTransport extends WebSocketTransport {
  constructor(owner) {
    super();
    this.owner = owner;
  }
  send(envelope, metaConnect) {
    const prev = wsOwner;
    wsOwner = this.owner;
    try {
      return super.send(envelope, metaConnect);
    } finally {
      wsOwner = prev;
    }
  }
}

adapt();
globalThis.window.XMLHttpRequest = JarXHR;
globalThis.window.WebSocket = LoggingWebSocket;

const META = ['/meta/handshake', '/meta/connect', '/meta/disconnect', '/meta/subscribe', '/meta/unsubscribe', '/meta/publish', '/meta/unsuccessful'];

/**
 * A CometD 9 client restricted to one transport (so that a broken transport
 * fails the test instead of silently falling back), with promise helpers.
 */
export class NodeClient {
  constructor({ url, transport, name, maxNetworkDelay = 5000, backoffIncrement = 500, logLevel = 'warn' }) {
    this.name = name;
    this.transportType = transport;
    this.cometd = new CometD(name);
    for (const t of this.cometd.getTransportTypes()) {
      if (t !== transport) this.cometd.unregisterTransport(t);
    }
    if (!this.cometd.findTransport(transport)) throw new Error(`transport ${transport} not available`);
    this.cookieStore = new Map();
    if (this.cometd.unregisterTransport('websocket')) {
      this.cometd.registerTransport('websocket', new JarWebSocketTransport(this));
    }
    const lp = this.cometd.findTransport('long-polling');
    if (lp) lp.context = { name, cookieStore: this.cookieStore };
    this.cometd.configure({ url, logLevel, maxNetworkDelay, backoffIncrement, maxBackoff: 3000 });
    this.meta = [];
    this.received = []; // every event (non-meta message with data) from the server, before client dispatch
    this.sent = [];
    for (const ch of META) this.cometd.addListener(ch, (m) => this.meta.push({ at: Date.now(), ...m }));
    this.cometd.registerExtension('recorder', {
      incoming: (m) => {
        // events only (a publish ack has no data)
        if (m.data !== undefined && (!m.channel || !m.channel.startsWith('/meta/'))) this.received.push({ at: Date.now(), ...m });
        return m;
      },
      outgoing: (m) => {
        this.sent.push(JSON.parse(JSON.stringify(m)));
        return m;
      },
    });
  }

  /** Value of a cookie in this client's jar for host 127.0.0.1 */
  cookie(name, host = '127.0.0.1') {
    const v = cookiesFor(this.cookieStore, host).find((c) => c.startsWith(name + '='));
    return v ? v.slice(name.length + 1) : undefined;
  }

  handshake(props = {}, ms = 8000) {
    return withTimeout(new Promise((res, rej) => {
      this.cometd.handshake(props, (reply) => (reply.successful ? res(reply) : rej(new Error(`handshake failed: ${JSON.stringify(reply)}`))));
    }), ms, `${this.name} handshake`);
  }

  /** Handshake and wait for the first successful /meta/connect. */
  async connect(props = {}, ms = 8000) {
    const since = Date.now();
    const reply = await this.handshake(props, ms);
    await this.waitMeta((m) => m.channel === '/meta/connect' && m.successful && m.at >= since, ms, 'first successful /meta/connect');
    return reply;
  }

  waitMeta(pred, ms, what) {
    return waitFor(() => this.meta.find(pred), ms, `${this.name}: ${what}`);
  }

  waitReceived(pred, ms, what) {
    return waitFor(() => this.received.find(pred), ms, `${this.name}: ${what}`);
  }

  subscribe(channel, onMessage = () => {}, ms = 8000) {
    return withTimeout(new Promise((res, rej) => {
      const sub = this.cometd.subscribe(channel, onMessage, (reply) => (reply.successful ? res({ sub, reply }) : rej(new Error(`subscribe ${channel} failed: ${JSON.stringify(reply)}`))));
    }), ms, `${this.name} subscribe ${channel}`);
  }

  unsubscribe(sub, ms = 8000) {
    return withTimeout(new Promise((res, rej) => {
      this.cometd.unsubscribe(sub, (reply) => (reply.successful ? res(reply) : rej(new Error(`unsubscribe failed: ${JSON.stringify(reply)}`))));
    }), ms, `${this.name} unsubscribe`);
  }

  publish(channel, data, ms = 8000) {
    return withTimeout(new Promise((res, rej) => {
      this.cometd.publish(channel, data, (reply) => (reply.successful ? res(reply) : rej(new Error(`publish ${channel} failed: ${JSON.stringify(reply)}`))));
    }), ms, `${this.name} publish ${channel}`);
  }

  remoteCall(target, data, timeout = 5000) {
    return withTimeout(new Promise((res) => {
      this.cometd.remoteCall(target, data, timeout, (reply) => res(reply));
    }), timeout + 2000, `${this.name} remoteCall ${target}`);
  }

  disconnect(ms = 8000) {
    if (this.cometd.isDisconnected()) return Promise.resolve(null);
    return withTimeout(new Promise((res) => {
      this.cometd.disconnect((reply) => res(reply));
    }), ms, `${this.name} disconnect`);
  }

  /** Best-effort cleanup that never throws. */
  async close() {
    try { await this.disconnect(3000); } catch { /* ignore */ }
  }
}
