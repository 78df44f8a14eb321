/*
 * The demo chat room, on top of bayeux.js.
 *
 * Channels: /chat/demo (room messages and notices), /members/demo (the sorted
 * member list, sent by the server), /service/members (join the member list),
 * /service/privatechat (a private message, delivered back on /chat/demo).
 * ?transport=long-polling (or websocket) forces one transport.
 */
(function () {
  'use strict';

  var ROOM = '/chat/demo', MEMBERS = '/members/demo';
  var $ = function (id) { return document.getElementById(id); };
  var ui = {
    joinForm: $('join-form'), username: $('username'), join: $('join'), leave: $('leave'),
    sendForm: $('send-form'), to: $('to'), phrase: $('phrase'), send: $('send'),
    members: $('members'), messages: $('messages'), status: $('status'), transport: $('transport')
  };

  var forced = new URLSearchParams(location.search).get('transport');
  var client = new Bayeux.Client(location.origin + '/cometd', {
    transports: forced === 'long-polling' || forced === 'websocket' ? [forced] : ['websocket', 'long-polling']
  });

  var me = null;          // our name while joined
  var announce = false;   // the "has joined" notice is still to be sent
  var subs = [];

  /* ---------- connection status ---------- */

  var STATUS_TEXT = { connecting: 'connecting\u2026', connected: 'connected', disconnected: 'disconnected' };
  function showStatus(s) {
    ui.status.textContent = STATUS_TEXT[s];
    document.body.setAttribute('data-status', s);
    ui.transport.textContent = s === 'connected' ? 'via ' + client.getTransport() : '';
  }
  client.onStatus(showStatus);
  showStatus('disconnected');

  // After every successful handshake (the first, or a new session after the
  // server forgot us) register with the member list again. The client has
  // already re-sent our subscriptions, so the member list reaches us.
  client.addListener('/meta/handshake', function (reply) {
    if (!reply.successful || !me) return;
    client.publish('/service/members', { user: me, room: ROOM }, failed('join the room'));
    if (announce) {
      announce = false;
      client.publish(ROOM, { user: me, membership: 'join', chat: me + ' has joined' }, failed('announce'));
    }
  });

  /* ---------- rendering (user text only ever goes through textContent) ---------- */

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function addLine(line) {
    var box = ui.messages;
    var atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    line.title = new Date().toLocaleTimeString();
    box.appendChild(line);
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  function notice(text) { addLine(el('div', 'msg notice', text)); }

  function failed(what) {
    return function (ack) {
      if (!ack.successful) notice('Could not ' + what + ': ' + (ack.error || 'no reply'));
    };
  }

  function onChat(msg) {
    var d = msg.data || {};
    if (d.membership || d.scope === 'error') return notice(String(d.chat || ''));
    var line, who = el('span', 'who', String(d.user || '?'));
    if (d.scope === 'private') {
      line = el('div', 'msg private');
      line.appendChild(who);
      line.appendChild(document.createTextNode(' \u2192 '));
      line.appendChild(el('span', 'who', String(d.peer || '?')));
    } else {
      line = el('div', 'msg');
      line.appendChild(who);
    }
    if (d.user === me) line.className += ' mine';
    line.appendChild(document.createTextNode(': '));
    line.appendChild(el('span', 'text', String(d.chat || '')));
    addLine(line);
  }

  function onMembers(msg) {
    var names = Array.isArray(msg.data) ? msg.data.map(String) : [];
    ui.members.textContent = '';
    names.forEach(function (n) {
      var li = el('li', n === me ? 'me' : '', n);
      ui.members.appendChild(li);
    });
    rebuildTo(names.filter(function (n) { return n !== me; }));
  }

  function rebuildTo(others) {
    var keep = ui.to.value;
    ui.to.textContent = '';
    var all = el('option', '', 'everyone');
    all.value = '';
    ui.to.appendChild(all);
    others.forEach(function (n) {
      var o = el('option', '', n);
      o.value = n;
      ui.to.appendChild(o);
    });
    ui.to.value = others.indexOf(keep) >= 0 ? keep : '';
  }

  function setJoined(joined) {
    ui.username.disabled = ui.join.disabled = joined;
    ui.leave.disabled = ui.to.disabled = ui.phrase.disabled = ui.send.disabled = !joined;
    ui.phrase.placeholder = joined ? 'Type a message and press Enter' : 'Join the room to chat';
  }

  /* ---------- actions ---------- */

  function join(name) {
    me = name;
    announce = true;
    subs = [client.subscribe(ROOM, onChat, failed('subscribe to the room')),
            client.subscribe(MEMBERS, onMembers, failed('subscribe to the member list'))];
    client.handshake();   // the /meta/handshake listener does the rest
    setJoined(true);
    ui.phrase.focus();
  }

  function leave() {
    if (!me) return;
    client.publish(ROOM, { user: me, membership: 'leave', chat: me + ' has left' });
    subs.forEach(function (h) { client.unsubscribe(h); });
    subs = [];
    client.disconnect();
    me = null;
    announce = false;
    ui.members.textContent = '';
    rebuildTo([]);
    setJoined(false);
  }

  function send() {
    var text = ui.phrase.value.trim(), peer = ui.to.value;
    if (!text || !me) return;
    if (peer) client.publish('/service/privatechat', { room: ROOM, user: me, chat: text, peer: peer }, failed('send'));
    else client.publish(ROOM, { user: me, chat: text }, failed('send'));
    ui.phrase.value = '';
    ui.phrase.focus();
  }

  ui.joinForm.addEventListener('submit', function (e) {
    e.preventDefault();
    var name = ui.username.value.trim();
    if (!name) { ui.username.focus(); return; }
    join(name);
  });
  ui.leave.addEventListener('click', function () {
    leave();
    ui.username.focus();
  });
  ui.sendForm.addEventListener('submit', function (e) { e.preventDefault(); send(); });
  window.addEventListener('pagehide', leave);

  setJoined(false);
  ui.username.focus();
})();
