package gatewaytest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// ErrNoFrame is returned by WSClient reads when no frame arrived in time.
var ErrNoFrame = errors.New("gatewaytest: no websocket frame within the deadline")

// WSClient is a minimal Bayeux client over one websocket connection. A
// background goroutine reads frames as they come, so a read that times out
// leaves the connection usable.
type WSClient struct {
	// Conn is the underlying connection; write to it only through Send or
	// SendRaw.
	Conn *websocket.Conn
	// ClientID is set by a successful Handshake and added to every message
	// built by NewMessage.
	ClientID string
	// Cookies are those the upgrade response set (BAYEUX_BROWSER), which
	// a browser would send with its next upgrade; see CookieHeader.
	Cookies []*http.Cookie

	ids    atomic.Int64
	wmu    sync.Mutex // one writer at a time
	frames chan wsFrame
	done   chan struct{} // closed when the reader stops
	err    error         // why the reader stopped; read after done
}

type wsFrame struct {
	msgs []Message
	err  error
}

// DialWebSocket opens a websocket to url (ws://...) with header (may be
// nil). On a refused upgrade it returns the server's response with the
// error.
func DialWebSocket(ctx context.Context, url string, header http.Header) (*WSClient, *http.Response, error) {
	return DialWebSocketTLS(ctx, url, header, nil)
}

// DialWebSocketTLS is DialWebSocket with the TLS configuration of a wss
// url (nil: the defaults).
func DialWebSocketTLS(ctx context.Context, url string, header http.Header, tc *tls.Config) (*WSClient, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: DefaultTimeout, TLSClientConfig: tc}
	conn, resp, err := d.DialContext(ctx, url, header)
	if err != nil {
		return nil, resp, err
	}
	w := &WSClient{Conn: conn, Cookies: resp.Cookies(), frames: make(chan wsFrame, 256), done: make(chan struct{})}
	go w.readLoop()
	return w, resp, nil
}

// CookieHeader returns a request header carrying the cookies the upgrade
// response set, as a browser sends them with its next request.
func (w *WSClient) CookieHeader() http.Header {
	h := http.Header{}
	for _, c := range w.Cookies {
		h.Add("Cookie", (&http.Cookie{Name: c.Name, Value: c.Value}).String())
	}
	return h
}

func (w *WSClient) readLoop() {
	defer close(w.done)
	for {
		typ, data, err := w.Conn.ReadMessage()
		if err != nil {
			w.err = err
			return
		}
		f := wsFrame{}
		if typ != websocket.TextMessage {
			f.err = fmt.Errorf("websocket frame of type %d, want text", typ)
		} else {
			f.msgs, f.err = decodeBatch(data)
		}
		w.frames <- f
	}
}

// Close closes the connection without a close handshake and waits for the
// reader to stop.
func (w *WSClient) Close() {
	w.Conn.Close()
	for {
		select {
		case <-w.frames:
		case <-w.done:
			return
		}
	}
}

// NextID returns a fresh message id: "1", "2", ...
func (w *WSClient) NextID() string { return strconv.FormatInt(w.ids.Add(1), 10) }

// NewMessage is Client.NewMessage for this connection.
func (w *WSClient) NewMessage(channel string, fields Message) Message {
	return build(channel, w.NextID(), w.ClientID, fields)
}

// Send writes msgs as one text frame holding a JSON array.
func (w *WSClient) Send(msgs ...Message) error {
	b, err := json.Marshal(msgs)
	if err != nil {
		return err
	}
	return w.SendRaw(b)
}

// SendRaw writes data as one text frame, as is.
func (w *WSClient) SendRaw(data []byte) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.Conn.SetWriteDeadline(time.Now().Add(DefaultTimeout))
	return w.Conn.WriteMessage(websocket.TextMessage, data)
}

// Read returns the messages of the next frame. It fails with ErrNoFrame
// after timeout, with the read error once the connection is closed, and
// with a decoding error for a frame that is not a JSON array.
func (w *WSClient) Read(timeout time.Duration) ([]Message, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case f := <-w.frames:
		return f.msgs, f.err
	default:
	}
	select {
	case f := <-w.frames:
		return f.msgs, f.err
	case <-w.done:
		// Frames read before the close are still delivered first.
		select {
		case f := <-w.frames:
			return f.msgs, f.err
		default:
		}
		return nil, w.err
	case <-t.C:
		return nil, ErrNoFrame
	}
}

// ReadUntil reads frames until one holds a message for which match is
// true, and returns the frames read, oldest first, the matching one last.
// It fails if that takes longer than timeout.
func (w *WSClient) ReadUntil(timeout time.Duration, match func(Message) bool) ([][]Message, error) {
	deadline := time.Now().Add(timeout)
	var frames [][]Message
	for {
		msgs, err := w.Read(time.Until(deadline))
		if err != nil {
			return frames, fmt.Errorf("after frames %v: %w", frames, err)
		}
		frames = append(frames, msgs)
		for _, m := range msgs {
			if match(m) {
				return frames, nil
			}
		}
	}
}

// Call sends one message built by NewMessage(channel, fields) in its own
// frame and reads until its reply (matched by channel and id). It returns
// the reply and the frames read.
func (w *WSClient) Call(timeout time.Duration, channel string, fields Message) (Message, [][]Message, error) {
	m := w.NewMessage(channel, fields)
	if err := w.Send(m); err != nil {
		return nil, nil, err
	}
	id, _ := m["id"].(string)
	isReply := func(r Message) bool { return r.IsReply() && r.Channel() == channel && r.Str("id") == id }
	frames, err := w.ReadUntil(timeout, isReply)
	if err != nil {
		return nil, frames, err
	}
	for _, r := range frames[len(frames)-1] {
		if isReply(r) {
			return r, frames, nil
		}
	}
	panic("unreachable")
}

// Handshake calls /meta/handshake with version 1.0 and websocket (plus
// fields) and, if it succeeds, remembers the clientId.
func (w *WSClient) Handshake(timeout time.Duration, fields Message) (Message, [][]Message, error) {
	f := Message{"version": "1.0", "supportedConnectionTypes": []string{"websocket"}}
	for k, v := range fields {
		f[k] = v
	}
	r, frames, err := w.Call(timeout, "/meta/handshake", f)
	if err == nil && r.Successful() {
		w.ClientID = r.Str("clientId")
	}
	return r, frames, err
}

// WaitClose waits until the server closes the connection, discarding
// frames, and returns the close code (websocket.CloseAbnormalClosure, 1006,
// when the connection ended without a close frame).
func (w *WSClient) WaitClose(timeout time.Duration) (int, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-w.frames:
		case <-w.done:
			var ce *websocket.CloseError
			if errors.As(w.err, &ce) {
				return ce.Code, nil
			}
			return websocket.CloseAbnormalClosure, nil
		case <-t.C:
			return 0, fmt.Errorf("websocket still open after %v", timeout)
		}
	}
}
