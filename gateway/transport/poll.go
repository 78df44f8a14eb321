package transport

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	"golang.org/x/text/encoding/htmlindex"
)

// callback returns the JSONP callback name of r if r carries exactly one
// valid one, else "". An invalid name means the request is not a
// callback-polling request at all (400 Unknown Bayeux Transport), so no
// script can be injected through it.
func (h *Handler) callback(r *http.Request) string {
	vals := r.URL.Query()[h.cfg.CallbackParameter]
	if len(vals) != 1 || !ValidCallback(vals[0], h.cfg.MaxCallbackLength) {
		return ""
	}
	return vals[0]
}

// ValidCallback reports whether name is an acceptable JSONP callback: 1 to
// max characters of [A-Za-z0-9._-], as CometD accepts.
func ValidCallback(name string, max int) bool {
	if name == "" || len(name) > max {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// readMessages decodes the messages of a polling request: the JSON body of
// a POST (any content type; form-encoded bodies carry message=), or the
// message= query parameters of a JSONP GET, which may repeat. It also
// returns where they came from, for a relay to the session's owner.
func (h *Handler) readMessages(w http.ResponseWriter, r *http.Request, jsonp bool) ([]bayeux.Message, batchSource, string, error) {
	l := h.live.Load()
	if jsonp {
		vals := r.URL.Query()["message"]
		if len(vals) == 0 {
			return nil, batchSource{}, "missing message parameter", bayeux.ErrEmptyBody
		}
		msgs, reason, err := decodeValues(vals, l)
		return msgs, batchSource{vals: vals}, reason, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(l.MaxRequestBytes)))
	if err != nil {
		if isTooLarge(err) {
			return nil, batchSource{}, "request body too large", err
		}
		return nil, batchSource{}, "cannot read request body", err
	}
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if body, err = decodeCharset(body, params["charset"]); err != nil {
		return nil, batchSource{}, "unsupported charset " + params["charset"], err
	}
	if ct == "application/x-www-form-urlencoded" && !looksLikeJSON(body) {
		form, err := url.ParseQuery(string(body))
		if err != nil || len(form["message"]) == 0 {
			return nil, batchSource{}, "form body without message parameter", bayeux.ErrEmptyBody
		}
		msgs, reason, err := decodeValues(form["message"], l)
		return msgs, batchSource{vals: form["message"]}, reason, err
	}
	msgs, err := bayeux.Decode(body, l.MaxBatch)
	if err != nil {
		return nil, batchSource{}, err.Error(), err
	}
	return msgs, batchSource{body: body}, "", nil
}

// batchSource is the JSON a polling request's messages were decoded from:
// a body (a message or an array), or message= values, each a message or
// an array.
type batchSource struct {
	body []byte
	vals []string
}

// array returns the messages as one JSON text that bayeux.Decode reads
// back into the same messages, without decoding them again.
func (b batchSource) array() []byte {
	if b.vals == nil {
		return b.body
	}
	if len(b.vals) == 1 {
		return []byte(b.vals[0])
	}
	out := []byte{'['}
	for _, v := range b.vals {
		part := bytes.TrimSpace([]byte(v))
		if len(part) >= 2 && part[0] == '[' && part[len(part)-1] == ']' {
			part = bytes.TrimSpace(part[1 : len(part)-1])
		}
		if len(part) == 0 {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, part...)
	}
	return append(out, ']')
}

func decodeValues(vals []string, l *Live) ([]bayeux.Message, string, error) {
	var all []bayeux.Message
	size := 0
	for _, v := range vals {
		size += len(v)
		if size > l.MaxRequestBytes {
			return nil, "request too large", bayeux.ErrBatchTooLarge
		}
		msgs, err := bayeux.Decode([]byte(v), l.MaxBatch)
		if err != nil {
			return nil, err.Error(), err
		}
		all = append(all, msgs...)
		if len(all) > l.MaxBatch {
			return nil, "too many messages", bayeux.ErrBatchTooLarge
		}
	}
	return all, "", nil
}

// servePoll serves long-polling (POST) and callback-polling (JSONP GET):
// the HTTP side (origin, CORS, reading the request, JSONP wrapping,
// headers) around poll, which does the Bayeux side. A batch of a session
// that another node owns is relayed to that node (relay.go), which runs
// poll for it.
func (h *Handler) servePoll(w http.ResponseWriter, r *http.Request, jsonp bool) {
	if !h.originAllowed(r) {
		h.refusedOrigin(r, "cross-origin request refused")
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	h.cors(w, r)
	msgs, src, reason, err := h.readMessages(w, r, jsonp)
	if err != nil {
		h.badRequest(w, r, reason, err)
		return
	}
	if handshakeNotAlone(msgs) {
		h.badRequest(w, r, "a handshake must be alone in its request", nil)
		return
	}
	transport := LongPolling
	if jsonp {
		transport = CallbackPolling
	}
	buf := h.getBuf()
	defer h.putBuf(buf)
	out := (*buf)[:0]
	if jsonp {
		out = append(out, h.callback(r)...)
		out = append(out, '(')
	}
	var res pollResult
	relayed := false
	if h.relay != nil && msgs[0].Channel != bayeux.MetaHandshake && h.relay.Remote(msgs[0].ClientID) {
		out, res, relayed = h.forward(r, transport, msgs, src, out)
	}
	if !relayed {
		c := &engine.Client{
			Transport:    transport,
			DeliverOnly:  jsonp,
			Browser:      h.browserID(r),
			TrustSession: h.live.Load().TrustClientSession,
			RemoteAddr:   r.RemoteAddr,
			Header:       r.Header,
		}
		c.NewBrowser = h.minted.fresh(c.Browser)
		out, res = h.poll(r.Context(), &pollRequest{msgs: msgs, client: c, http2: r.ProtoMajor >= 2}, out)
	}
	switch {
	case res.status == 0:
		return // the client went away
	case res.status != http.StatusOK:
		w.WriteHeader(res.status)
		return
	}
	if res.browser != "" {
		h.setBrowserCookie(w, r, res.browser)
	}
	hd := w.Header()
	if jsonp {
		out = append(out, ')')
		out = bayeux.EscapeJS(out)
		hd.Set("Content-Type", "text/javascript;charset=UTF-8")
		hd.Set("X-Content-Type-Options", "nosniff")
	} else {
		hd.Set("Content-Type", "application/json;charset=UTF-8")
	}
	hd.Set("Cache-Control", "no-cache, no-store")
	*buf = out
	h.stats.pollBytes.Add(int64(len(out)))
	if !res.held {
		w.Write(out)
		return
	}
	// A held connect that ends now is usually one of many that a broadcast
	// ended at once. Send the response in one write, then let the others'
	// goroutines send theirs before this one goes on to read and parse the
	// client's next request: answering every held connect comes first.
	hd.Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if !relayed && !res.due.IsZero() && h.cfg.AnswerLatency != nil {
		h.cfg.AnswerLatency(time.Since(res.due))
	}
	runtime.Gosched()
}

// pollRequest is the Bayeux side of one polling request, as poll needs it
// whether the request came over HTTP to this node or was relayed by
// another node.
type pollRequest struct {
	msgs   []bayeux.Message
	client *engine.Client
	http2  bool // over HTTP/2: HTTP2MaxSessionsPerBrowser applies
	// maxHold, if > 0, bounds a held connect (a relayed one must end
	// before the relaying node's request times out).
	maxHold time.Duration
	// wake, if not nil, ends a held connect when closed, as its timeout
	// would (the relaying node is shutting down).
	wake <-chan struct{}
}

// pollResult is what poll answers; the JSON array itself is appended to
// the caller's buffer.
type pollResult struct {
	// status is 200 with a body, DuplicateConnectStatus for a held connect
	// superseded by a newer one (no body), or 0 when the client went away
	// (nothing to write).
	status int
	// browser, if not "", is a new BAYEUX_BROWSER id to set as a cookie.
	browser string
	// held tells that a connect was held; due, if not zero, when a queued
	// message ended the hold.
	held bool
	due  time.Time
}

// poll does the Bayeux work of one polling request, independent of HTTP:
// it processes the batch, holds a lone successful connect (until a message
// is queued, the hold passes, the session ends, or ctx ends: the client
// went away), and appends the JSON array of the events and replies to dst.
func (h *Handler) poll(ctx context.Context, p *pollRequest, dst []byte) ([]byte, pollResult) {
	c, msgs := p.client, p.msgs
	res := pollResult{status: http.StatusOK}
	if c.Browser == "" && msgs[0].Channel == bayeux.MetaHandshake {
		c.Browser = engine.NewBrowserID()
		res.browser = c.Browser
	}
	b := h.e.Process(ctx, c, msgs)
	xs := b.Exchanges
	if res.browser != "" && !xs[0].Reply.Successful {
		res.browser = ""
	}
	var events [][]byte
	if len(xs) == 1 && xs[0].IsConnect() && xs[0].Reply.Successful && xs[0].Hold > 0 {
		res.held = true
		b.End()
		if p.maxHold > 0 && xs[0].Hold > p.maxHold {
			xs[0].Hold = p.maxHold
		}
		var st int
		if events, res.due, st = h.holdConnect(ctx, p.wake, p.http2, c, xs[0]); st != http.StatusOK {
			res.status = st
			return dst, res
		}
	} else {
		for _, x := range xs {
			if x.IsConnect() && x.Reply.Successful {
				events = x.Session.Complete(x, events, 0)
			}
		}
		if b.Session != nil {
			events = b.Session.Take(events, 0)
		}
		b.End()
	}
	dst = append(dst, '[')
	n := 0
	for _, ev := range events {
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = append(dst, ev...)
	}
	for _, x := range xs {
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = bayeux.AppendMessage(dst, x.Reply)
	}
	return append(dst, ']'), res
}

// holdConnect holds a long poll until a message is queued, the timeout
// passes (or wake is closed), the session ends or ctx ends (the client
// went away); it returns
// the events to send with the reply and, if a queued message ended the
// hold, when. Its status is 200, 0 when nothing is to be written (the
// client left), or DuplicateConnectStatus (superseded).
func (h *Handler) holdConnect(ctx context.Context, wake <-chan struct{}, http2 bool, c *engine.Client, x *engine.Exchange) ([][]byte, time.Time, int) {
	s := x.Session
	held := &h.browsers
	if http2 {
		held = &h.h2Polls
	}
	if !held.acquire(c.Browser, s.ID()) {
		h.stats.browserLimited.Add(1)
		// Another tab of this browser already holds a long poll.
		interval := h.live.Load().MultiSessionInterval
		a := &bayeux.Advice{Reconnect: bayeux.ReconnectRetry, Interval: interval.Milliseconds(), Timeout: -1, MaxInterval: -1, MultipleClients: true}
		if interval < 0 {
			x.Reply.Successful = false
			a = &bayeux.Advice{Reconnect: bayeux.ReconnectNone, Interval: -1, Timeout: -1, MaxInterval: -1, MultipleClients: true}
		}
		x.Reply.Advice = a
		return s.Complete(x, nil, 0), time.Time{}, http.StatusOK
	}
	defer held.release(c.Browser, s.ID())
	hold := s.Park(x)
	timer := time.NewTimer(x.Hold)
	gone := false
	select {
	case <-hold.Wake():
	case <-timer.C:
	case <-wake:
	case <-ctx.Done():
		gone = true
	}
	timer.Stop()
	if s.Unpark(hold, gone) {
		h.cfg.Logger.Debug("held connect superseded by a newer one", "session", s.ID())
		return nil, time.Time{}, h.cfg.DuplicateConnectStatus
	}
	if gone {
		return nil, time.Time{}, 0
	}
	return s.Complete(x, nil, 0), hold.Due(), http.StatusOK
}

// looksLikeJSON reports whether body starts (after blanks) like a JSON
// message or array; such a body is JSON whatever its declared type.
func looksLikeJSON(body []byte) bool {
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '[', '{':
			return true
		}
		return false
	}
	return false
}

// decodeCharset converts a body in the declared charset to UTF-8, as
// CometD does; without a charset, or with UTF-8, it is used as is.
func decodeCharset(body []byte, charset string) ([]byte, error) {
	switch strings.ToLower(charset) {
	case "", "utf-8", "utf8", "us-ascii":
		return body, nil
	}
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, err
	}
	return enc.NewDecoder().Bytes(body)
}
