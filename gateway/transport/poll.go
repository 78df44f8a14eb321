package transport

import (
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
// message= query parameters of a JSONP GET, which may repeat.
func (h *Handler) readMessages(w http.ResponseWriter, r *http.Request, jsonp bool) ([]bayeux.Message, string, error) {
	l := h.live.Load()
	if jsonp {
		vals := r.URL.Query()["message"]
		if len(vals) == 0 {
			return nil, "missing message parameter", bayeux.ErrEmptyBody
		}
		return decodeValues(vals, l)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(l.MaxRequestBytes)))
	if err != nil {
		if isTooLarge(err) {
			return nil, "request body too large", err
		}
		return nil, "cannot read request body", err
	}
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if body, err = decodeCharset(body, params["charset"]); err != nil {
		return nil, "unsupported charset " + params["charset"], err
	}
	if ct == "application/x-www-form-urlencoded" && !looksLikeJSON(body) {
		form, err := url.ParseQuery(string(body))
		if err != nil || len(form["message"]) == 0 {
			return nil, "form body without message parameter", bayeux.ErrEmptyBody
		}
		return decodeValues(form["message"], l)
	}
	msgs, err := bayeux.Decode(body, l.MaxBatch)
	if err != nil {
		return nil, err.Error(), err
	}
	return msgs, "", nil
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

// servePoll serves long-polling (POST) and callback-polling (JSONP GET).
func (h *Handler) servePoll(w http.ResponseWriter, r *http.Request, jsonp bool) {
	if !h.originAllowed(r) {
		h.refusedOrigin(r, "cross-origin request refused")
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	h.cors(w, r)
	msgs, reason, err := h.readMessages(w, r, jsonp)
	if err != nil {
		h.badRequest(w, r, reason, err)
		return
	}
	if handshakeNotAlone(msgs) {
		h.badRequest(w, r, "a handshake must be alone in its request", nil)
		return
	}
	c := &engine.Client{
		Transport:    LongPolling,
		DeliverOnly:  jsonp,
		Browser:      h.browserID(r),
		TrustSession: h.live.Load().TrustClientSession,
		RemoteAddr:   r.RemoteAddr,
		Header:       r.Header,
	}
	if jsonp {
		c.Transport = CallbackPolling
	}
	c.NewBrowser = h.minted.fresh(c.Browser)
	newBrowser := false
	if c.Browser == "" && msgs[0].Channel == bayeux.MetaHandshake {
		c.Browser = engine.NewBrowserID()
		newBrowser = true
	}
	b := h.e.Process(r.Context(), c, msgs)
	xs := b.Exchanges
	if newBrowser && xs[0].Reply.Successful {
		h.setBrowserCookie(w, r, c.Browser)
	}

	buf := h.getBuf()
	defer h.putBuf(buf)
	var events [][]byte
	held := false
	var due time.Time // when a message ended the hold
	if len(xs) == 1 && xs[0].IsConnect() && xs[0].Reply.Successful && xs[0].Hold > 0 {
		held = true
		b.End()
		var ok bool
		if events, due, ok = h.holdConnect(w, r, c, xs[0]); !ok {
			return
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
	out := (*buf)[:0]
	if jsonp {
		out = append(out, h.callback(r)...)
		out = append(out, '(')
	}
	out = append(out, '[')
	n := 0
	sep := func() {
		if n > 0 {
			out = append(out, ',')
		}
		n++
	}
	for _, ev := range events {
		sep()
		out = append(out, ev...)
	}
	for _, x := range xs {
		sep()
		out = bayeux.AppendMessage(out, x.Reply)
	}
	out = append(out, ']')
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
	if !held {
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
	if !due.IsZero() && h.cfg.AnswerLatency != nil {
		h.cfg.AnswerLatency(time.Since(due))
	}
	runtime.Gosched()
}

// holdConnect holds a long poll until a message is queued, the timeout
// passes, the session ends or the client goes away; it returns the events
// to send with the reply and, if a queued message ended the hold, when. It
// returns false when nothing is to be written (the client left) or an
// error status was written (superseded).
func (h *Handler) holdConnect(w http.ResponseWriter, r *http.Request, c *engine.Client, x *engine.Exchange) ([][]byte, time.Time, bool) {
	s := x.Session
	held := &h.browsers
	if r.ProtoMajor >= 2 {
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
		return s.Complete(x, nil, 0), time.Time{}, true
	}
	defer held.release(c.Browser, s.ID())
	hold := s.Park(x)
	timer := time.NewTimer(x.Hold)
	gone := false
	select {
	case <-hold.Wake():
	case <-timer.C:
	case <-r.Context().Done():
		gone = true
	}
	timer.Stop()
	if s.Unpark(hold, gone) {
		h.cfg.Logger.Debug("held connect superseded by a newer one", "session", s.ID())
		w.WriteHeader(h.cfg.DuplicateConnectStatus)
		return nil, time.Time{}, false
	}
	if gone {
		return nil, time.Time{}, false
	}
	return s.Complete(x, nil, 0), hold.Due(), true
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
