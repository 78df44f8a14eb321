// The Cometgate status page: subscribes to the status channel with the
// official CometD client and renders each snapshot.
import {CometD} from "/status/js/cometd/cometd.js";

const cfg = document.body.dataset;
const $ = (id) => document.getElementById(id);

function fmt(n) {
    if (typeof n !== "number") return "–";
    return Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 2 : 1);
}

// fill replaces a table body's rows; cells are set as text, never HTML.
function fill(id, rows, empty) {
    const body = $(id);
    body.replaceChildren();
    if (rows.length === 0) {
        const tr = body.insertRow();
        const td = tr.insertCell();
        td.colSpan = body.parentElement.tHead.rows[0].cells.length;
        td.className = "empty";
        td.textContent = empty;
        return;
    }
    for (const cells of rows) {
        const tr = body.insertRow();
        for (const c of cells) {
            const td = tr.insertCell();
            if (c && typeof c === "object") {
                td.textContent = c.text;
                td.className = c.cls || "";
            } else {
                td.textContent = String(c);
            }
        }
    }
}

function render(s) {
    $("sessions").textContent = fmt(s.sessions);
    $("connections").textContent = fmt(s.connections);
    $("rate-handshakes").textContent = fmt(s.rates.handshakes);
    $("rate-published").textContent = fmt(s.rates.published);
    $("rate-delivered").textContent = fmt(s.rates.delivered);
    $("uptime").textContent = s.uptime;
    $("updated").textContent = "updated " + new Date(s.time).toLocaleTimeString();
    const t = s.totals;
    $("totals").textContent = `Totals: ${t.handshakes} handshakes, ${t.published} published, ${t.delivered} delivered, ${t.dropped} dropped as slow, ${t.expired} expired.`;
    fill("transports", Object.entries(s.byTransport).sort(), "no session");
    fill("top-subs", s.topBySubscribers.map((c) => [c.channel, c.subscribers, fmt(c.rate)]), "no subscription");
    fill("top-rate", s.topByRate.map((c) => [c.channel, fmt(c.rate), c.published]), "no message yet");
    fill("backends", s.backends.map((b) => [
        b.name + (b.required ? " (required)" : ""), b.kind,
        {text: b.state, cls: b.state === "READY" || b.state === "HTTP" || b.state === "IDLE" ? "ok" : "bad"},
        b.calls, b.failures, b.calls ? b.avgMs.toFixed(2) : "–",
    ]), "no backend configured");
    fill("errors", s.errors.slice().reverse().map((e) => [
        new Date(e.time).toLocaleTimeString(), {text: e.level, cls: e.level === "ERROR" ? "bad" : "warn"}, e.message, e.attrs || "",
    ]), "none");
}

function setConn(ok, text) {
    const el = $("conn");
    el.textContent = text;
    el.className = ok ? "ok" : "bad";
}

const cometd = new CometD();
cometd.configure({url: new URL(cfg.bayeux, location.href).href, logLevel: "warn"});
cometd.addListener("/meta/connect", (m) => {
    if (cometd.isDisconnected()) return;
    setConn(m.successful, m.successful ? "live (" + cometd.getTransport().type + ")" : "reconnecting…");
});
cometd.handshake({ext: {cometgate: {statusKey: cfg.key}}}, (reply) => {
    if (!reply.successful) {
        setConn(false, "handshake refused");
        return;
    }
    cometd.subscribe(cfg.channel, (m) => render(m.data), (r) => {
        if (!r.successful) setConn(false, "subscription refused: " + (r.error || ""));
    });
});
// Leave at once rather than expire when the page goes away (reload, close).
addEventListener("pagehide", () => cometd.disconnect());
