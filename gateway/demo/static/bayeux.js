/*
 * bayeux.js: a small Bayeux 1.0 client for browsers, with no dependencies.
 *
 *   var client = new Bayeux.Client(location.origin + '/cometd');
 *   client.onStatus(function (s) { ... });   // connecting | connected | disconnected
 *   client.subscribe('/chat/demo', function (msg) { ... });
 *   client.handshake();
 *
 * Transports: "websocket" (one socket, every frame a JSON array of messages)
 * and "long-polling" (HTTP POST of a JSON array, answered by a JSON array).
 * WebSocket is tried first; if it never works, or the server does not offer
 * it, the client handshakes again over long-polling.
 */
(function (window) {
  'use strict';

  var NETWORK_DELAY = 10000;  // margin added to every reply deadline (ms)
  var BACKOFF_STEP = 1000;    // the retry delay grows by this much per failure (ms)
  var MAX_BACKOFF = 60000;
  var DEFAULT_ADVICE = { reconnect: 'retry', interval: 0, timeout: 60000 };

  // True when channel `name` is matched by `pattern`: "/a/*" matches exactly
  // one more segment, "/a/**" one or more.
  function matches(pattern, name) {
    if (pattern === name) return true;
    var p = pattern.split('/'), n = name.split('/'), last = p[p.length - 1];
    if (last !== '*' && last !== '**') return false;
    if (last === '*' ? n.length !== p.length : n.length < p.length) return false;
    for (var i = 0; i < p.length - 1; i++) if (p[i] !== n[i]) return false;
    return true;
  }

  // Calls fn(arg); a throwing application callback must not break the client.
  function safe(fn, arg) {
    if (!fn) return;
    try { fn(arg); } catch (e) { console.error('bayeux: callback failed', e); }
  }

  function Client(url, options) {
    options = options || {};
    this.url = url.replace(/\/+$/, '');
    this.wsUrl = this.url.replace(/^http/, 'ws');   // http→ws, https→wss
    this.transports = (options.transports || ['websocket', 'long-polling']).filter(function (t) {
      return t === 'long-polling' || (t === 'websocket' && typeof window.WebSocket === 'function');
    });
    this.transport = this.transports[0];
    this.state = 'disconnected';   // disconnected | handshaking | handshaken | disconnecting
    this.status = 'disconnected';  // what onStatus listeners were last told
    this.clientId = null;
    this._nextId = 0;
    this._advice = Object.assign({}, DEFAULT_ADVICE);
    this._connected = false;   // the last /meta/connect succeeded
    this._connectId = null;    // id of the current /meta/connect
    this._backoff = 0;
    this._timer = null;        // the next handshake or connect
    this._pending = {};        // id → {msg, cb, timer, socket}: awaiting a reply
    this._calls = {};          // id → {channel, resolve, reject, settle}: remote calls
    this._queue = [];          // sent together at the end of this turn
    this._held = [];           // waiting for a handshake
    this._flushing = false;
    this._subs = {};           // channel → [handle]: server-side subscriptions
    this._listeners = [];      // local listeners (meta channels too)
    this._statusFns = [];
    this._ws = null;
    this._wsOutbox = [];       // frames waiting for the socket to open
    this._wsWorked = false;    // a handshake has succeeded over websocket
    this._fetches = [];        // AbortControllers of in-flight POSTs
  }

  var P = Client.prototype;

  /* ---------- public API ---------- */

  // Starts a session; the client then keeps it alive until disconnect().
  P.handshake = function () {
    if (this.state === 'handshaking' || this.state === 'handshaken') return;
    this._backoff = 0;
    this._advice = Object.assign({}, DEFAULT_ADVICE);
    this._handshake();
  };

  // Calls callback(message) for each message on channel (a pattern may use
  // * or **); done(reply) gets the server's answer. Returns a handle.
  // Subscriptions made before the handshake are sent after it.
  P.subscribe = function (channel, callback, done) {
    var h = { channel: channel, callback: callback, done: done }, list = this._subs[channel];
    if (!list) {
      this._subs[channel] = [h];
      if (this.state === 'handshaken') this._sendSubscribe(channel);
    } else {   // the server already has this subscription
      list.push(h);
      if (done && this.state === 'handshaken') {
        h.done = null;
        setTimeout(function () { safe(done, { channel: '/meta/subscribe', subscription: channel, successful: true }); }, 0);
      }
    }
    return h;
  };

  // Removes a subscription handle; the last one for a channel unsubscribes.
  P.unsubscribe = function (h, done) {
    var list = this._subs[h.channel], i = list ? list.indexOf(h) : -1;
    if (i < 0) return;
    list.splice(i, 1);
    if (!list.length) delete this._subs[h.channel];
    if (!list.length && this.state === 'handshaken') this._enqueue({ channel: '/meta/unsubscribe', subscription: h.channel }, done);
    else safe(done, { channel: '/meta/unsubscribe', subscription: h.channel, successful: true });
  };

  // Listens locally, without a server subscription: meta replies such as
  // '/meta/handshake', or narrowcast '/service/...' messages.
  P.addListener = function (channel, callback) {
    var h = { channel: channel, callback: callback };
    this._listeners.push(h);
    return h;
  };
  P.removeListener = function (h) { this._listeners = this._listeners.filter(function (x) { return x !== h; }); };

  // Publishes data on channel; done(ack) gets the server's {successful, error}.
  P.publish = function (channel, data, done) { this._enqueue({ channel: channel, data: data }, done); };

  // Request/response on a /service/ channel. Resolves with the reply message
  // carrying the same id on that channel; rejects if the publish is refused,
  // the reply says successful:false, or nothing came within timeoutMs.
  P.remoteCall = function (channel, data, timeoutMs) {
    var self = this;
    return new Promise(function (resolve, reject) {
      var id = self._enqueue({ channel: channel, data: data }, function (ack) {
        if (!ack.successful) settle(reject, ack);   // refused: no reply will come
      });
      var timer = setTimeout(function () { settle(reject, { channel: channel, successful: false, error: 'timeout' }); }, timeoutMs || NETWORK_DELAY);
      function settle(fn, m) {
        if (self._calls[id] !== call) return;
        clearTimeout(timer);
        delete self._calls[id];
        fn(m);
      }
      var call = self._calls[id] = { channel: channel, resolve: resolve, reject: reject, settle: settle };
    });
  };

  // Ends the session; done(reply) is called once the server answered (or not).
  // Messages queued before it (a last publish, unsubscribes) go out first.
  P.disconnect = function (done) {
    var self = this;
    if (this.state !== 'handshaken') { this._terminate(); return safe(done, { successful: true }); }
    clearTimeout(this._timer);
    this._enqueue({ channel: '/meta/disconnect' }, function (reply) {
      if (self.state === 'disconnecting') self._terminate();   // unless handshake() came since
      safe(done, reply);
    });
    this.state = 'disconnecting';
  };

  // fn(status) is called with 'connecting', 'connected' or 'disconnected'.
  P.onStatus = function (fn) { this._statusFns.push(fn); };
  P.getTransport = function () { return this.transport; };

  /* ---------- handshake and the /meta/connect loop ---------- */

  P._setStatus = function (s) {
    if (this.status === s) return;
    this.status = s;
    this._statusFns.slice().forEach(function (fn) { safe(fn, s); });
  };

  // The delay before the next retry after a failure: 0, 1 s, 2 s … 60 s.
  P._retryDelay = function () {
    var d = this._backoff;
    this._backoff = Math.min(d + BACKOFF_STEP, MAX_BACKOFF);
    return d + (this._advice.interval || 0);
  };

  P._later = function (fn, delay) {
    var self = this;
    clearTimeout(this._timer);
    this._timer = setTimeout(function () { fn.call(self); }, delay);
  };

  P._handshake = function () {
    clearTimeout(this._timer);
    this.state = 'handshaking';
    this.clientId = this._connectId = null;
    this._connected = false;
    this._setStatus('connecting');
    var self = this, msg = {
      channel: '/meta/handshake', version: '1.0', minimumVersion: '1.0',
      supportedConnectionTypes: this.transports.slice(), advice: { timeout: 60000, interval: 0 }
    };
    this._register(msg, function (r) { self._onHandshake(r); });
    this._transmit([msg]);   // a handshake always travels alone
  };

  P._onHandshake = function (r) {
    if (this.state !== 'handshaking') return;
    if (r.advice) this._advice = Object.assign({}, DEFAULT_ADVICE, r.advice);
    if (!r.successful) {
      this._notify(r);
      if (this._advice.reconnect === 'none') return this._terminate();
      return this._later(this._handshake, this._retryDelay());
    }
    // Negotiate: keep the current transport if the server offers it, else
    // take the first of ours that it offers, and handshake again with it.
    var offered = r.supportedConnectionTypes || [];
    var usable = this.transports.filter(function (t) { return offered.indexOf(t) >= 0; });
    if (!usable.length) {
      console.error('bayeux: no common transport; the server offers', offered);
      return this._terminate();
    }
    if (this.transport === 'websocket') this._wsWorked = true;
    if (usable.indexOf(this.transport) < 0) {
      this._closeSocket(1000, 'Transport change');
      this.transport = usable[0];
      return this._handshake();
    }
    this.clientId = r.clientId;
    this.state = 'handshaken';
    this._backoff = 0;
    // Send every subscription again (a new session has none), then let the
    // listeners act, then release the held messages: all in one batch.
    for (var ch in this._subs) this._sendSubscribe(ch);
    this._notify(r);
    this._queue = this._queue.concat(this._held);
    this._held = [];
    this._scheduleFlush();
    this._later(this._connect, this._advice.interval || 0);
  };

  P._connect = function () {
    if (this.state !== 'handshaken') return;
    var self = this, msg = { channel: '/meta/connect', clientId: this.clientId, connectionType: this.transport };
    if (!this._connected) msg.advice = { timeout: 0 };   // first connect (or after a failure): answer at once
    var id = this._connectId = this._register(msg, function (r) {
      if (id === self._connectId) self._onConnect(r);    // ignore replies for an older session
    });
    this._transmit([msg]);   // alone, so that the server may hold it
  };

  P._onConnect = function (r) {
    if (this.state !== 'handshaken') return;   // disconnecting, or handshaking again
    if (r.advice) this._advice = Object.assign({}, this._advice, r.advice);
    var reconnect = this._advice.reconnect;
    this._notify(r);
    this._connected = !!r.successful;
    if (reconnect === 'none') return this._terminate();
    if (r.successful) {
      this._backoff = 0;
      this._setStatus('connected');
      return this._later(this._connect, this._advice.interval || 0);
    }
    this._setStatus('connecting');
    if (reconnect === 'handshake' || /^402:/.test(r.error || '')) {
      this.state = 'handshaking';   // hold new messages for the new session
      this._later(this._handshake, this._retryDelay());
    } else {
      this._later(this._connect, this._retryDelay());
    }
  };

  // Stops everything: no more requests, and every waiting callback is failed.
  P._terminate = function () {
    clearTimeout(this._timer);
    this.state = 'disconnected';
    this.clientId = null;
    this._connected = false;
    this._subs = {};
    this._held = [];
    this._queue = [];
    for (var id in this._pending) this._fail(id, 'disconnected');
    for (id in this._calls) this._calls[id].settle(this._calls[id].reject, { successful: false, error: 'disconnected' });
    this._fetches.forEach(function (c) { c.abort(); });
    this._fetches = [];
    this._closeSocket(1000, 'Disconnect');
    this._setStatus('disconnected');
  };

  /* ---------- sending ---------- */

  P._sendSubscribe = function (channel) {
    var self = this;
    this._enqueue({ channel: '/meta/subscribe', subscription: channel }, function (r) {
      var list = self._subs[channel] || [];
      if (!r.successful && !r.network) delete self._subs[channel];   // refused by the server
      list.forEach(function (h) { var d = h.done; h.done = null; safe(d, r); });
    });
  };

  // Gives msg a fresh id and remembers cb for its reply; returns the id.
  P._register = function (msg, cb) {
    msg.id = String(++this._nextId);
    this._pending[msg.id] = { msg: msg, cb: cb };
    return msg.id;
  };

  // Queues an ordinary message. Everything queued in one turn of the event
  // loop goes out in one request (or frame), in order. Without a session,
  // messages are held until the next successful handshake.
  P._enqueue = function (msg, cb) {
    var id = this._register(msg, cb);
    if (this.state === 'handshaken') {
      this._queue.push(msg);
      this._scheduleFlush();
    } else {
      this._held.push(msg);
    }
    return id;
  };

  P._scheduleFlush = function () {
    var self = this;
    if (this._flushing) return;
    this._flushing = true;
    Promise.resolve().then(function () {
      var msgs = self._queue;
      self._flushing = false;
      self._queue = [];
      if (!msgs.length) return;
      msgs.forEach(function (m) { m.clientId = self.clientId; });
      self._transmit(msgs);
    });
  };

  // Sends a batch over the current transport and arms the reply deadlines.
  P._transmit = function (msgs) {
    var self = this;
    var abort = this.transport === 'websocket' ? this._wsSend(msgs) : this._postSend(msgs);
    msgs.forEach(function (m) {
      var p = self._pending[m.id], held = m.channel === '/meta/connect' && !m.advice;
      if (p) p.timer = setTimeout(function () { abort('timeout'); }, NETWORK_DELAY + (held ? self._advice.timeout || 0 : 0));
    });
  };

  // Fails a waiting message with a made-up reply; its callback decides what next.
  P._fail = function (id, reason) {
    var p = this._pending[id];
    if (!p) return;
    clearTimeout(p.timer);
    delete this._pending[id];
    safe(p.cb, { id: id, channel: p.msg.channel, successful: false, error: reason, network: true });
  };

  /* ---------- long-polling: POST a JSON array, read back a JSON array ---------- */

  P._postSend = function (msgs) {
    var self = this, ctl = new AbortController(), body = JSON.stringify(msgs), reason = 'no reply';
    var type = msgs.length === 1 && /^\/meta\/(handshake|connect|disconnect)$/.exec(msgs[0].channel);
    this._fetches.push(ctl);
    fetch(this.url + (type ? '/' + type[1] : ''), {   // the suffix only helps reading server logs
      method: 'POST', body: body, signal: ctl.signal,
      credentials: 'same-origin',   // the BAYEUX_BROWSER cookie must travel
      headers: { 'Content-Type': 'application/json;charset=UTF-8' },
      keepalive: msgs[0].channel !== '/meta/connect' && body.length < 60000   // a last message survives page unload
    }).then(function (res) {
      if (!res.ok) throw new Error('HTTP ' + res.status);
      return res.json();
    }).then(function (replies) {
      self._receive(replies);
    }).catch(function (e) {
      if (e.name !== 'AbortError') reason = String(e.message || e);
    }).then(function () {
      var i = self._fetches.indexOf(ctl);
      if (i >= 0) self._fetches.splice(i, 1);
      msgs.forEach(function (m) { self._fail(m.id, reason); });   // whatever got no reply has failed
    });
    return function (why) { reason = why; ctl.abort(); };
  };

  /* ---------- websocket: one socket, a JSON array in every frame ---------- */

  P._wsSend = function (msgs) {
    var self = this, ws = this._ws, frame = JSON.stringify(msgs);
    if (!ws || ws.readyState > 1) ws = this._openSocket();
    if (ws.readyState === 0) this._wsOutbox.push(frame);
    else ws.send(frame);
    msgs.forEach(function (m) { if (self._pending[m.id]) self._pending[m.id].socket = ws; });
    return function () { if (self._ws === ws) ws.close(); };   // onclose fails what waits
  };

  P._openSocket = function () {
    var self = this, ws = new WebSocket(this.wsUrl);
    this._ws = ws;
    this._wsOutbox = [];
    ws.onopen = function () {
      self._wsOutbox.forEach(function (f) { ws.send(f); });
      self._wsOutbox = [];
    };
    ws.onmessage = function (ev) {
      try { var msgs = JSON.parse(ev.data); } catch (e) { return console.error('bayeux: bad frame', ev.data); }
      self._receive(msgs);
    };
    ws.onclose = function () {
      if (self._ws !== ws) return;   // an old socket
      self._ws = null;
      // WebSocket never worked here: drop it and handshake over HTTP instead.
      var fallback = !self._wsWorked && self.state === 'handshaking' && self.transports.indexOf('long-polling') >= 0;
      for (var id in self._pending) {
        var p = self._pending[id];
        if (p.socket !== ws) continue;   // not sent on this socket (e.g. held)
        if (fallback) { clearTimeout(p.timer); delete self._pending[id]; }
        else self._fail(id, 'websocket closed');
      }
      if (fallback) {
        self.transport = 'long-polling';
        self._handshake();
      }
    };
    return ws;
  };

  P._closeSocket = function (code, reason) {
    var ws = this._ws;
    this._ws = null;
    if (ws && ws.readyState < 2) ws.close(code, reason);
  };

  /* ---------- receiving ---------- */

  P._receive = function (msgs) {
    if (!Array.isArray(msgs)) msgs = [msgs];
    for (var i = 0; i < msgs.length; i++) {
      var m = msgs[i];
      if (!m || typeof m.channel !== 'string') continue;
      var meta = m.channel.indexOf('/meta/') === 0, p = this._pending[m.id], call = this._calls[m.id];
      if (meta || m.data === undefined) {
        // A reply to one of our requests: a meta reply or a publish ack
        // (an ack never has data). Its id and channel must match.
        if (p && p.msg.channel === m.channel) {
          clearTimeout(p.timer);
          delete this._pending[m.id];
          safe(p.cb, m);
        } else if (call && call.channel === m.channel && m.successful === false) {
          call.settle(call.reject, m);
        } else if (meta) {
          this._notify(m);   // e.g. a /meta/disconnect from the server
        }
      } else if (call && call.channel === m.channel) {
        call.settle(m.successful === false ? call.reject : call.resolve, m);   // a remoteCall answer
      } else {
        this._deliver(m);
      }
    }
  };

  // Hands an event to every subscription and listener whose pattern matches.
  P._deliver = function (m) {
    for (var ch in this._subs) {
      if (matches(ch, m.channel)) this._subs[ch].slice().forEach(function (h) { safe(h.callback, m); });
    }
    this._notify(m);
  };

  P._notify = function (m) {
    this._listeners.slice().forEach(function (h) { if (matches(h.channel, m.channel)) safe(h.callback, m); });
  };

  window.Bayeux = { Client: Client, matches: matches };
})(window);
