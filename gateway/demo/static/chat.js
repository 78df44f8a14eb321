/*
 * The demo chat room, on the official CometD JavaScript client (the npm
 * package "cometd", served by the gateway under js/cometd/ with its license).
 *
 * Channels: /chat/demo (room messages, and the server's "has joined" / "has
 * left" notices), /members/demo (the member list, sent by the server),
 * /service/members (a remote call that joins the room and answers with our
 * member id), /service/privatechat (a private message to a member id,
 * delivered back on /chat/demo). A member is a session: two tabs that join
 * with one name are two members, labelled "name #id" while both are there.
 * ?transport=long-polling (or websocket) forces one transport.
 */
import {CometD, AckExtension} from './js/cometd/cometd.js';

const ROOM = '/chat/demo', MEMBERS = '/members/demo';
const $ = (id) => document.getElementById(id);
const ui = {
  joinForm: $('join-form'), username: $('username'), join: $('join'), leave: $('leave'),
  sendForm: $('send-form'), to: $('to'), phrase: $('phrase'), send: $('send'),
  members: $('members'), messages: $('messages'), status: $('status'), transport: $('transport'),
  multi: $('multi'),
};

const cometd = new CometD();
const forced = new URLSearchParams(location.search).get('transport');
if (forced === 'long-polling' || forced === 'websocket') {
  for (const t of cometd.getTransportTypes()) {
    if (t !== forced) cometd.unregisterTransport(t);
  }
}
cometd.configure({ url: location.origin + '/cometd', logLevel: 'warn' });
// The gateway implements the ack extension: no message is lost when a
// connection drops while the session lives on.
cometd.registerExtension('ack', new AckExtension());

let me = null;        // the name we joined with, while joined
let self = null;      // our member ({id, name, label}) once the server answered
let members = [];     // the last member list
let connected = false; // the last /meta/connect succeeded
let lost = false;      // "connection lost" was logged, and no reconnect since

/* ---------- connection status ---------- */

const STATUS_TEXT = { connecting: 'connecting\u2026', connected: 'connected', disconnected: 'disconnected' };
function showStatus(s) {
  ui.status.textContent = STATUS_TEXT[s];
  document.body.setAttribute('data-status', s);
  const t = cometd.getTransport();
  ui.transport.textContent = s === 'connected' && t ? 'via ' + t.type : '';
}
showStatus('disconnected');

// The gateway lets one tab of a browser hold a long poll; the others get
// the "multiple-clients" advice and poll at an interval instead, so they
// see messages later. Say so while it lasts.
function showMulti(advice) {
  const on = !!(advice && advice['multiple-clients']);
  ui.multi.hidden = !on;
  document.body.toggleAttribute('data-multiple-clients', on);
  if (on) {
    const every = advice.interval > 0 ? ' every ' + advice.interval / 1000 + ' s' : '';
    ui.multi.textContent = 'Another tab of this browser is connected to this server over long-polling, ' +
      'so this tab is in the slower multiple-clients mode: it asks for messages' + every +
      ' instead of holding a connection open. Close the other tabs, or use websocket, for instant delivery.';
  }
}

function connectionLost() {
  if (!me) return;
  if (!lost) {
    lost = true;
    notice('Connection lost; reconnecting\u2026', 'conn-lost');
  }
  showStatus('connecting');
}

// Every /meta/connect reply, and every failure to get one.
cometd.addListener('/meta/connect', (m) => {
  if (cometd.isDisconnected()) {
    connected = false;
    showStatus('disconnected');
    showMulti(null);
    return;
  }
  connected = m.successful === true;
  if (!connected) {
    connectionLost();
    return;
  }
  showStatus('connected');
  showMulti(m.advice);
  if (lost) {
    lost = false;
    notice('Reconnected via ' + cometd.getTransport().type, 'reconnected');
  }
});

// After every successful handshake (the first, or a new session after the
// server forgot ours) subscribe and join: a new session has no
// subscriptions and is no member yet.
cometd.addListener('/meta/handshake', (m) => {
  if (!m.successful) {
    connectionLost();
    return;
  }
  if (!me) return;
  if (m.reestablish) {
    lost = false;
    notice('Reconnected with a new session (the server had ended the old one); joining again as ' + me, 'reconnected');
  }
  cometd.batch(() => {
    cometd.subscribe(ROOM, onChat, failed('subscribe to the room'));
    cometd.subscribe(MEMBERS, onMembers, failed('subscribe to the member list'));
    cometd.remoteCall('members', { user: me, room: ROOM }, 10000, (reply) => {
      if (!reply.successful) return notice('Could not join the room: ' + (reply.error || 'no reply'));
      self = reply.data;
      renderMembers();
    });
  });
});

/* ---------- rendering (user text only ever goes through textContent) ---------- */

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function addLine(line) {
  const box = ui.messages;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  line.title = new Date().toLocaleTimeString();
  box.appendChild(line);
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function notice(text, cls) { addLine(el('div', 'msg notice' + (cls ? ' ' + cls : ''), text)); }

function failed(what) {
  return (ack) => {
    if (!ack.successful) notice('Could not ' + what + ': ' + (ack.error || 'no reply'));
  };
}

// labelOf names a member as the member list does ("bob", or "bob #7"
// while two bobs are here); name is the fallback for one no longer listed.
function labelOf(id, name) {
  const m = members.find((x) => x.id === id);
  return m ? m.label : String(name || '?');
}

function onChat(msg) {
  const d = msg.data || {};
  if (d.membership) return notice(String(d.chat || ''), 'membership');
  if (d.scope === 'error') return notice(String(d.chat || ''), 'error');
  let line;
  if (d.scope === 'private') {
    line = el('div', 'msg private');
    line.appendChild(el('span', 'who', String(d.user || '?')));
    line.appendChild(document.createTextNode(' \u2192 '));
    line.appendChild(el('span', 'who', String(d.peer || '?')));
  } else {
    line = el('div', 'msg');
    line.appendChild(el('span', 'who', labelOf(d.member, d.user)));
  }
  if (self && d.member === self.id) line.className += ' mine';
  line.appendChild(document.createTextNode(': '));
  line.appendChild(el('span', 'text', String(d.chat || '')));
  addLine(line);
}

function onMembers(msg) {
  members = Array.isArray(msg.data) ? msg.data.filter((m) => m && typeof m.id === 'string') : [];
  renderMembers();
}

function renderMembers() {
  ui.members.textContent = '';
  for (const m of members) {
    const li = el('li', self && m.id === self.id ? 'me' : '', String(m.label));
    li.dataset.member = m.id;
    ui.members.appendChild(li);
  }
  rebuildTo(members.filter((m) => !self || m.id !== self.id));
}

function rebuildTo(others) {
  const keep = ui.to.value;
  ui.to.textContent = '';
  const all = el('option', '', 'everyone');
  all.value = '';
  ui.to.appendChild(all);
  for (const m of others) {
    const o = el('option', '', String(m.label));
    o.value = m.id;
    ui.to.appendChild(o);
  }
  ui.to.value = others.some((m) => m.id === keep) ? keep : '';
}

function setJoined(joined) {
  ui.username.disabled = ui.join.disabled = joined;
  ui.leave.disabled = ui.to.disabled = ui.phrase.disabled = ui.send.disabled = !joined;
  ui.phrase.placeholder = joined ? 'Type a message and press Enter' : 'Join the room to chat';
}

/* ---------- actions ---------- */

function join(name) {
  me = name;
  lost = false;
  showStatus('connecting');
  cometd.handshake(); // the /meta/handshake listener does the rest
  setJoined(true);
  ui.phrase.focus();
}

// leave disconnects; the server then tells the room that we left.
function leave() {
  if (!me) return;
  me = null;
  self = null;
  members = [];
  cometd.disconnect();
  showStatus('disconnected');
  showMulti(null);
  notice('You left the room');
  renderMembers();
  setJoined(false);
}

function send() {
  const text = ui.phrase.value.trim(), peer = ui.to.value;
  if (!text || !me) return;
  if (peer) cometd.publish('/service/privatechat', { room: ROOM, peer: peer, chat: text }, failed('send'));
  else cometd.publish(ROOM, { user: me, member: self ? self.id : undefined, chat: text }, failed('send'));
  ui.phrase.value = '';
  ui.phrase.focus();
}

ui.joinForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const name = ui.username.value.trim();
  if (!name) { ui.username.focus(); return; }
  join(name);
});
ui.leave.addEventListener('click', () => {
  leave();
  ui.username.focus();
});
ui.sendForm.addEventListener('submit', (e) => { e.preventDefault(); send(); });
window.addEventListener('pagehide', leave);

setJoined(false);
ui.username.focus();
