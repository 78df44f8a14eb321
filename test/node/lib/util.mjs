// Small helpers shared by the tests: bounded waits, a wire log, evidence
// printing on failure, and a raw HTTP Bayeux client with its own cookie jar.

import http from 'node:http';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rejects with a descriptive error if `p` does not settle within `ms`. */
export function withTimeout(p, ms, what) {
  let timer;
  const t = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

/** Polls `pred` until it returns a truthy value (returned) or `ms` elapses. */
export async function waitFor(pred, ms, what, every = 25) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

/** A bounded, timestamped log of what went over the wire. */
export class Wire {
  constructor(limit = 3000) {
    this.entries = [];
    this.limit = limit;
    this.t0 = Date.now();
  }
  add(tag, dir, data) {
    let text = typeof data === 'string' ? data : JSON.stringify(data);
    if (text && text.length > 2000) text = text.slice(0, 2000) + '...[cut]';
    this.entries.push({ t: Date.now() - this.t0, tag, dir, text });
    if (this.entries.length > this.limit) this.entries.shift();
  }
  /** Entries whose tag matches (string or RegExp) */
  of(tag) {
    return this.entries.filter((e) => (tag instanceof RegExp ? tag.test(e.tag) : e.tag === tag));
  }
  format(n = 120) {
    return this.entries.slice(-n).map((e) => `+${e.t}ms [${e.tag}] ${e.dir} ${e.text}`).join('\n');
  }
}

/**
 * Runs `fn`; if it throws, prints the evidence (gateway output, wire logs,
 * extra strings) as test diagnostics, then rethrows.
 * sources: { gateways: Gateway[], wires: Wire[], extra: () => string }
 */
export async function guard(t, sources, fn) {
  try {
    return await fn();
  } catch (err) {
    const out = [];
    for (const w of sources.wires || []) {
      out.push('---- wire log (client side) ----', w.format());
    }
    if (sources.extra) {
      try { out.push('---- extra ----', String(sources.extra())); } catch { /* ignore */ }
    }
    for (const g of sources.gateways || []) {
      out.push(`---- ${g.opts.name} output (tail) ----`, g.logTail(6000));
    }
    for (const line of out.join('\n').split('\n')) t.diagnostic(line);
    throw err;
  }
}

/**
 * A minimal Bayeux-over-HTTP client that keeps cookies (per instance) and
 * returns the raw exchange, for assertions about the wire itself.
 */
export class RawHttp {
  constructor(baseUrl, wire, tag = 'raw') {
    this.baseUrl = baseUrl;
    this.cookies = new Map();
    this.wire = wire;
    this.tag = tag;
  }
  cookieHeader() {
    return [...this.cookies.entries()].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  request(method, path, body, headers = {}, timeoutMs = 15000) {
    const url = new URL(path, this.baseUrl);
    const h = { ...headers };
    const ck = this.cookieHeader();
    if (ck && !('Cookie' in h)) h.Cookie = ck;
    if (h.Cookie === null) delete h.Cookie;
    if (body != null && !h['Content-Type']) h['Content-Type'] = 'application/json;charset=UTF-8';
    const payload = body == null ? null : (typeof body === 'string' ? body : JSON.stringify(body));
    this.wire && this.wire.add(this.tag, `> ${method} ${url.pathname}${url.search} cookie=${h.Cookie || '-'}`, payload || '');
    return new Promise((res, rej) => {
      const req = http.request(url, { method, headers: h, agent: false, timeout: timeoutMs }, (r) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (c) => { text += c; });
        r.on('end', () => {
          const sc = r.headers['set-cookie'] || [];
          for (const c of sc) {
            const nv = c.split(';')[0];
            const i = nv.indexOf('=');
            if (i > 0) this.cookies.set(nv.slice(0, i).trim(), nv.slice(i + 1).trim());
          }
          let json;
          try { json = JSON.parse(text); } catch { json = undefined; }
          this.wire && this.wire.add(this.tag, `< ${r.statusCode} set-cookie=${JSON.stringify(sc)}`, text);
          res({ status: r.statusCode, headers: r.headers, text, json, setCookies: sc });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`raw ${method} ${path} timed out`)));
      req.on('error', rej);
      if (payload != null) req.write(payload);
      req.end();
    });
  }
  post(path, messages, headers) { return this.request('POST', path, messages, headers); }
}

/**
 * A raw websocket Bayeux peer: send arrays of messages, await the next
 * message matching a predicate. Every frame is logged to `wire`.
 */
export async function rawWebSocket(url, wire, tag = 'rawws', headers = {}) {
  const { WebSocket } = await import('ws');
  const ws = new WebSocket(url, { headers });
  const inbox = [];
  const waiters = [];
  let closed = null;
  ws.on('message', (data) => {
    const text = data.toString();
    wire && wire.add(tag, '<', text);
    let msgs;
    try { msgs = JSON.parse(text); } catch { msgs = [{ unparsable: text }]; }
    for (const m of [].concat(msgs)) inbox.push(m);
    for (const w of waiters.splice(0)) w();
  });
  ws.on('close', (code, reason) => {
    closed = { code, reason: reason.toString() };
    wire && wire.add(tag, 'CLOSE', `${code} ${reason}`);
    for (const w of waiters.splice(0)) w();
  });
  await withTimeout(new Promise((res, rej) => {
    ws.once('open', res);
    ws.once('error', rej);
    ws.once('unexpected-response', (req, r) => rej(new Error(`websocket upgrade refused: HTTP ${r.statusCode}`)));
  }), 5000, `websocket open ${url}`);
  wire && wire.add(tag, 'OPEN', url);
  return {
    ws,
    inbox,
    get closed() { return closed; },
    send(msgs) {
      const text = JSON.stringify(msgs);
      wire && wire.add(tag, '>', text);
      ws.send(text);
    },
    async next(pred, ms, what) {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = inbox.findIndex(pred);
        if (i >= 0) return inbox.splice(i, 1)[0];
        if (closed) throw new Error(`websocket closed (${closed.code} ${closed.reason}) while waiting for ${what}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await new Promise((r) => { const tm = setTimeout(r, left); waiters.push(() => { clearTimeout(tm); r(); }); });
      }
    },
    close() { try { ws.close(); } catch { /* ignore */ } },
  };
}
