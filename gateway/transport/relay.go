package transport

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
)

// Relay carries the polling requests of sessions that live on another
// node to that node, their owner (gateway/cluster implements it). A
// session's owner serves its requests with Handler.ServeRelayed, so that
// any node can serve any request of a long-polling or callback-polling
// client, with no sticky sessions. Handshakes are never relayed: a
// session lives where its handshake landed.
type Relay interface {
	// Remote reports whether session clientID is owned by another node.
	// It must be cheap: it is asked for every polling request.
	Remote(clientID string) bool
	// Forward sends req to the owner of req.ClientID and returns its
	// answer. It returns an error wrapping ErrOwnerUnreachable when the
	// owner could not answer (gone, no broker, timed out): the request is
	// then processed here, which answers 402::session_unknown with advice
	// to handshake again. When ctx ends first (the client went away) it
	// returns ctx's error and tells the owner to end a held connect.
	Forward(ctx context.Context, req *RelayRequest) (*RelayResponse, error)
}

// ErrOwnerUnreachable is wrapped by Relay.Forward errors that mean the
// session's owner did not answer.
var ErrOwnerUnreachable = errors.New("transport: session owner unreachable")

// RelayRequest is a polling request relayed to the session's owner: what
// the owner needs to process it as if it had arrived there.
type RelayRequest struct {
	// ClientID is the session the request is for (its first message's).
	ClientID string
	// Transport is LongPolling or CallbackPolling.
	Transport string
	// Messages is the batch's JSON (a message or an array of messages),
	// as the client sent it, in UTF-8.
	Messages []byte
	// Browser is the BAYEUX_BROWSER cookie value, NewBrowser the
	// engine.Client field of the same name seen from the relaying node.
	Browser    string
	NewBrowser bool
	// RemoteAddr is the client's address.
	RemoteAddr string
	// Header holds the request headers named by Config.KeepHeaders.
	Header map[string][]string
	// HTTP2 tells that the request came over HTTP/2.
	HTTP2 bool
	// DeliverOnly makes the session's events travel only with its connect
	// replies (as callback-polling's do): a websocket relayed to the owner
	// asks for it, since its connects and its other frames are relayed
	// separately and their answers could otherwise pass each other.
	DeliverOnly bool
	// MaxHold, if > 0, bounds how long the owner may hold a connect: the
	// relaying node waits that long plus its request timeout. It is set
	// for a batch made of one /meta/connect only.
	MaxHold time.Duration
	// Wake, if not nil, ends a held connect early when it is done: the
	// owner answers it at once, as if its hold had passed. The relaying
	// node sets it to end its relayed held connects when it shuts down;
	// the owner's Relay sets it to tell ServeRelayed. It does not travel.
	Wake context.Context
}

// RelayResponse is the owner's answer to a RelayRequest.
type RelayResponse struct {
	// Status is the HTTP status: 200 with Body, or an error status (400,
	// 413, 503, DuplicateConnectStatus) without. 0 means that the owner
	// saw the client go away: nothing is written.
	Status int
	// Body is the JSON array of events and replies (no JSONP wrapping).
	Body []byte
	// Browser, if not "", is a BAYEUX_BROWSER id to set as a cookie.
	Browser string
	// Held tells that a connect was held.
	Held bool
}

// SetRelay makes h relay the polling requests of sessions owned by other
// nodes through r. Call it before h serves.
func (h *Handler) SetRelay(r Relay) {
	h.relay = r
	h.maxHold = h.e.Config().Timeout
	h.closing, h.close = context.WithCancel(context.Background())
}

// forward relays a polling request to its session's owner and appends the
// owner's JSON array to dst. It reports false when the owner could not
// answer: the caller then processes the batch itself.
func (h *Handler) forward(r *http.Request, transport string, msgs []bayeux.Message, src batchSource, dst []byte) ([]byte, pollResult, bool) {
	browser := h.browserID(r)
	req := &RelayRequest{
		ClientID:   msgs[0].ClientID,
		Transport:  transport,
		Messages:   src.array(),
		Browser:    browser,
		NewBrowser: h.minted.fresh(browser),
		RemoteAddr: r.RemoteAddr,
		Header:     h.keptHeaders(r.Header),
		HTTP2:      r.ProtoMajor >= 2,
	}
	if len(msgs) == 1 && msgs[0].Channel == bayeux.MetaConnect {
		req.MaxHold = h.maxHold
		req.Wake = h.closing
		if h.closing.Err() != nil {
			// Shutting down: the owner may get the request after the
			// wake-up, so it must not hold it at all.
			req.MaxHold = time.Millisecond
		}
	}
	resp, err := h.relay.Forward(r.Context(), req)
	switch {
	case err == nil:
	case r.Context().Err() != nil:
		return dst, pollResult{}, true // the client went away
	case errors.Is(err, ErrOwnerUnreachable):
		h.cfg.Logger.Debug("session owner unreachable; answering here", "session", req.ClientID, "err", err)
		return dst, pollResult{}, false
	default:
		h.cfg.Logger.Debug("relayed request failed", "session", req.ClientID, "err", err)
		return dst, pollResult{status: http.StatusBadGateway}, true
	}
	res := pollResult{status: resp.Status, browser: resp.Browser, held: resp.Held}
	if !validRelayResponse(resp) {
		h.cfg.Logger.Debug("invalid answer from the session's owner", "session", req.ClientID, "status", resp.Status)
		return dst, pollResult{status: http.StatusBadGateway}, true
	}
	if res.status == http.StatusOK {
		dst = append(dst, resp.Body...)
	}
	return dst, res, true
}

// validRelayResponse checks an answer that came from another node before
// any of it reaches a client: a status a poll may end with, a body that is
// a JSON array in UTF-8, a cookie value of browser id characters.
func validRelayResponse(resp *RelayResponse) bool {
	switch {
	case resp.Status == 0:
		return true
	case resp.Status == http.StatusOK:
		b := bytes.TrimSpace(resp.Body)
		if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' || bayeux.ValidJSON(b) != nil {
			return false
		}
	case resp.Status < 400 || resp.Status > 599:
		return false
	}
	if len(resp.Browser) > 64 {
		return false
	}
	for i := 0; i < len(resp.Browser); i++ {
		c := resp.Browser[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ServeRelayed serves a polling request that another node relayed to this
// one, the session's owner: it processes the batch as servePoll would
// (holding a lone connect up to req.MaxHold, until ctx ends: the client
// went away) and returns the answer, whose Body is appended to dst. It
// checks req as untrusted input. Safe for concurrent use; each call may
// block for a connect's hold, so run each in its own goroutine.
func (h *Handler) ServeRelayed(ctx context.Context, req *RelayRequest, dst []byte) *RelayResponse {
	if req.Transport != LongPolling && req.Transport != CallbackPolling || !h.allowed(req.Transport) {
		return &RelayResponse{Status: http.StatusBadRequest}
	}
	l := h.live.Load()
	if len(req.Messages) > l.MaxRequestBytes {
		h.stats.tooLarge.Add(1)
		return &RelayResponse{Status: http.StatusRequestEntityTooLarge}
	}
	msgs, err := bayeux.Decode(req.Messages, l.MaxBatch)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, bayeux.ErrBatchTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		return &RelayResponse{Status: status}
	}
	for i := range msgs {
		if msgs[i].Channel == bayeux.MetaHandshake {
			return &RelayResponse{Status: http.StatusBadRequest} // handshakes are served where they land
		}
	}
	c := &engine.Client{
		Transport:    req.Transport,
		DeliverOnly:  req.Transport == CallbackPolling || req.DeliverOnly,
		Browser:      req.Browser,
		NewBrowser:   req.NewBrowser || h.minted.fresh(req.Browser),
		TrustSession: l.TrustClientSession,
		RemoteAddr:   req.RemoteAddr,
		Header:       req.Header,
	}
	p := &pollRequest{msgs: msgs, client: c, http2: req.HTTP2, maxHold: req.MaxHold}
	if req.Wake != nil {
		p.wake = req.Wake.Done()
	}
	out, res := h.poll(ctx, p, dst)
	if res.held && !res.due.IsZero() && h.cfg.AnswerLatency != nil {
		h.cfg.AnswerLatency(time.Since(res.due))
	}
	resp := &RelayResponse{Status: res.status, Browser: res.browser, Held: res.held}
	if res.status == http.StatusOK {
		resp.Body = out
	}
	return resp
}
