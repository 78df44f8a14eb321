// Headless Chromium through playwright-core, with a per-page network log
// (HTTP requests/responses, websocket frames, console output and page errors)
// so that tests can assert which transport a client really used and print the
// wire exchange when they fail.

import { chromium } from 'playwright-core';
import { Wire } from './util.mjs';

export const CHROMIUM = process.env.CG_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30000 });
}

/**
 * Opens a page in a fresh context (or in `context`, for another tab of the
 * same browser, sharing its cookies) and records its traffic to any URL that
 * contains `watch` (the gateway's host:port) into `wire` under `tag`.
 * Returns { context, page, net } where net has http[] and ws[] arrays.
 */
export async function openPage(browser, { tag, watch, wire, context: shared }) {
  const context = shared || await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const net = { http: [], ws: [], console: [], errors: [] };
  page.on('console', (m) => {
    net.console.push(`${m.type()}: ${m.text()}`);
    wire.add(tag, `console.${m.type()}`, m.text());
  });
  page.on('pageerror', (e) => {
    net.errors.push(String(e && e.stack || e));
    wire.add(tag, 'PAGEERROR', String(e && e.stack || e));
  });
  page.on('request', (r) => {
    if (!r.url().includes(watch)) return;
    const entry = { method: r.method(), url: r.url(), type: r.resourceType(), body: r.postData() || '', status: null, response: null };
    net.http.push(entry);
    r._cgEntry = entry;
    wire.add(tag, `> ${r.method()} ${r.url()}`, entry.body);
  });
  page.on('requestfailed', (r) => {
    if (!r.url().includes(watch)) return;
    wire.add(tag, `< FAILED ${r.method()} ${r.url()}`, String(r.failure() && r.failure().errorText));
  });
  page.on('response', async (resp) => {
    const r = resp.request();
    if (!r.url().includes(watch)) return;
    const entry = r._cgEntry;
    if (entry) entry.status = resp.status();
    let text = '';
    try { text = await resp.text(); } catch { text = '(body unavailable)'; }
    if (entry) entry.response = text;
    const h = await resp.allHeaders().catch(() => ({}));
    if (entry) entry.headers = h;
    const interesting = ['content-type', 'set-cookie', 'access-control-allow-origin', 'access-control-allow-credentials'];
    const hs = interesting.filter((k) => h[k] !== undefined).map((k) => `${k}: ${h[k]}`).join(' | ');
    wire.add(tag, `< ${resp.status()} ${r.method()} ${r.url()} [${hs}]`, text);
  });
  page.on('websocket', (ws) => {
    if (!ws.url().includes(watch)) return;
    const entry = { url: ws.url(), sent: [], received: [], closed: false };
    net.ws.push(entry);
    wire.add(tag, 'WS OPEN', ws.url());
    ws.on('framesent', (f) => { entry.sent.push(String(f.payload)); wire.add(tag, 'ws>', String(f.payload)); });
    ws.on('framereceived', (f) => { entry.received.push(String(f.payload)); wire.add(tag, 'ws<', String(f.payload)); });
    ws.on('socketerror', (e) => wire.add(tag, 'WS ERROR', String(e)));
    ws.on('close', () => { entry.closed = true; wire.add(tag, 'WS CLOSE', ws.url()); });
  });
  return { context, page, net };
}

export function newWire() { return new Wire(4000); }
