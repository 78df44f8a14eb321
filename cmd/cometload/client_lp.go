package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// lpShared is what all long-polling clients of a run share: one HTTP
// transport (its pool keeps a keep-alive connection per held connect)
// and a pool of response buffers. Cookies are per client.
type lpShared struct {
	tr   *http.Transport
	bufs sync.Pool
}

func newLPShared(clients int, tc *tls.Config) *lpShared {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &lpShared{
		tr: &http.Transport{
			DialContext:         d.DialContext,
			TLSClientConfig:     tc,
			MaxIdleConns:        0, // no global limit
			MaxIdleConnsPerHost: 2*clients + 64,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}
}

// lpClient is a Bayeux session over long-polling: a goroutine holds the
// connect loop, and other requests are POSTs of their own. Its cookie jar
// keeps the BAYEUX_BROWSER cookie that binds its requests to its session.
type lpClient struct {
	session
	hc       *http.Client
	base     string
	closed   chan struct{}
	loopDone chan struct{}
	stop     context.CancelFunc
	closing  atomic.Bool
}

func newLPClient(e *env, o clientOpts) *lpClient {
	return &lpClient{
		session: session{env: e, opts: o},
		hc:      &http.Client{Transport: e.lp.tr, Jar: &cookieJar{}},
		base:    strings.TrimSuffix(o.url, "/"),
		closed:  make(chan struct{}),
	}
}

// post sends one batch built by build (a JSON array but for its closing
// bracket) to the endpoint plus suffix, and dispatches the response. It
// returns the connect replies that no request waited for.
func (c *lpClient) post(ctx context.Context, suffix string, build func([]byte) []byte) ([]wireMsg, error) {
	return c.postTo(ctx, c.base, suffix, build)
}

// postTo is post to another endpoint, base (a node of a cluster other
// than the one the session was opened on).
func (c *lpClient) postTo(ctx context.Context, base, suffix string, build func([]byte) []byte) ([]wireMsg, error) {
	body := append(build(make([]byte, 0, 256)), ']')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+suffix, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	buf := c.env.lp.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer c.env.lp.bufs.Put(buf)
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %.80s", resp.StatusCode, bytes.TrimSpace(buf.Bytes()))
	}
	return c.dispatch(buf.Bytes(), time.Now().UnixNano()), nil
}

// request posts one message and waits for its reply, which is normally in
// the response itself.
func (c *lpClient) request(ctx context.Context, suffix, id string, build func([]byte) []byte, wantData bool) (wireMsg, error) {
	w := c.register(id, wantData)
	connects, err := c.post(ctx, suffix, func(b []byte) []byte { return build(append(b, '[')) })
	if err != nil {
		c.unregister(id)
		return wireMsg{}, err
	}
	for i := range connects {
		c.onConnect(ctx, &connects[i])
	}
	return c.wait(ctx, id, w, c.closed)
}

// Open implements Client.
func (c *lpClient) Open(ctx context.Context) error {
	if err := c.handshake(ctx); err != nil {
		return err
	}
	loopCtx, stop := context.WithCancel(context.Background())
	c.stop = stop
	c.loopDone = make(chan struct{})
	go c.loop(loopCtx)
	return nil
}

// handshake makes the handshake and the first (immediate) connect.
func (c *lpClient) handshake(ctx context.Context) error {
	id := c.nextID()
	m, err := c.request(ctx, "/handshake", id, func(b []byte) []byte { return appendHandshake(b, id, "long-polling") }, false)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if err := replyError(&m); err != nil {
		return err
	}
	cid := m.ClientID
	c.mu.Lock()
	c.clientID = cid
	c.mu.Unlock()
	c.adviceUpdate(m.Advice)
	id = c.nextID()
	m, err = c.request(ctx, "/connect", id, func(b []byte) []byte { return appendConnect(b, id, cid, "long-polling", true) }, false)
	if err != nil {
		return fmt.Errorf("first connect: %w", err)
	}
	c.adviceUpdate(m.Advice)
	return replyError(&m)
}

// loop holds one connect at a time until Close.
func (c *lpClient) loop(ctx context.Context) {
	defer close(c.loopDone)
	for ctx.Err() == nil {
		timeout, interval := c.advised()
		if interval > 0 && !sleep(ctx, interval) {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, timeout+c.env.timeout)
		id, cid := c.nextID(), c.id()
		connects, err := c.post(rctx, "/connect", func(b []byte) []byte {
			return appendConnect(append(b, '['), id, cid, "long-polling", false)
		})
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.env.stats.errs.add("connect_http", err.Error())
			sleep(ctx, 500*time.Millisecond)
			continue
		}
		if len(connects) == 0 {
			c.env.stats.errs.add("connect_no_reply", "")
		}
		for i := range connects {
			if !c.onConnect(ctx, &connects[i]) {
				return
			}
		}
	}
}

// onConnect follows a connect reply's advice. It returns false when the
// server advises to stop.
func (c *lpClient) onConnect(ctx context.Context, m *wireMsg) bool {
	c.adviceUpdate(m.Advice)
	if m.ok() {
		return true
	}
	c.env.stats.errs.add("connect_failed", m.Error)
	reconnect := "retry"
	if m.Advice != nil && m.Advice.Reconnect != "" {
		reconnect = m.Advice.Reconnect
	}
	switch reconnect {
	case "none":
		c.env.stats.errs.add("reconnect_none", m.Error)
		return false
	case "handshake":
		c.env.stats.errs.add("rehandshake", "")
		hctx, cancel := context.WithTimeout(ctx, 2*c.env.timeout)
		defer cancel()
		if err := c.handshake(hctx); err != nil {
			c.env.stats.errs.add("rehandshake_failed", err.Error())
			return sleep(ctx, time.Second)
		}
		for _, ch := range c.subscriptions() {
			if err := c.subscribe(hctx, ch); err != nil {
				c.env.stats.errs.add("resubscribe_failed", err.Error())
			}
		}
		return true
	}
	return sleep(ctx, 500*time.Millisecond)
}

// Subscribe implements Client.
func (c *lpClient) Subscribe(ctx context.Context, channel string) error {
	if err := c.subscribe(ctx, channel); err != nil {
		return err
	}
	c.subscribed(channel)
	return nil
}

func (c *lpClient) subscribe(ctx context.Context, channel string) error {
	id, cid := c.nextID(), c.id()
	m, err := c.request(ctx, "", id, func(b []byte) []byte { return appendSubscribe(b, id, cid, channel) }, false)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", channel, err)
	}
	return replyError(&m)
}

// Publish implements Client.
func (c *lpClient) Publish(ctx context.Context, channel string, data [][]byte) error {
	cid := c.id()
	connects, err := c.post(ctx, "", func(b []byte) []byte {
		b = append(b, '[')
		for i, d := range data {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendPublish(b, c.nextID(), cid, channel, d)
		}
		return b
	})
	for i := range connects {
		c.onConnect(ctx, &connects[i])
	}
	return err
}

// Call implements Client.
func (c *lpClient) Call(ctx context.Context, channel string, data []byte) error {
	id, cid := c.nextID(), c.id()
	m, err := c.request(ctx, "", id, func(b []byte) []byte { return appendPublish(b, id, cid, channel, data) }, true)
	if err != nil {
		return err
	}
	return replyError(&m)
}

// PublishVia publishes data to channel with a request to the endpoint
// base instead of the session's own, and waits for the acknowledgement: a
// node of a cluster that does not own the session relays it to the owner.
func (c *lpClient) PublishVia(ctx context.Context, base, channel string, data []byte) error {
	id, cid := c.nextID(), c.id()
	w := c.register(id, false)
	connects, err := c.postTo(ctx, strings.TrimSuffix(base, "/"), "", func(b []byte) []byte {
		return appendPublish(append(b, '['), id, cid, channel, data)
	})
	if err != nil {
		c.unregister(id)
		return err
	}
	for i := range connects {
		c.onConnect(ctx, &connects[i])
	}
	m, err := c.wait(ctx, id, w, c.closed)
	if err != nil {
		return err
	}
	return replyError(&m)
}

// Close implements Client.
func (c *lpClient) Close(ctx context.Context) {
	if c.closing.Swap(true) {
		return
	}
	if c.stop != nil {
		c.stop()
	}
	if cid := c.id(); cid != "" {
		id := c.nextID()
		c.post(ctx, "/disconnect", func(b []byte) []byte { return appendDisconnect(append(b, '['), id, cid) })
	}
	close(c.closed)
	if c.loopDone != nil {
		select {
		case <-c.loopDone:
		case <-ctx.Done():
		}
	}
}

// sleep waits for d or the context's end, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
