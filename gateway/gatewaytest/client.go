package gatewaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
)

// StatusError is returned for an HTTP response whose status is not 200.
type StatusError struct {
	StatusCode int
	Body       []byte
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %.200q", e.StatusCode, e.Body)
}

// Client is a minimal Bayeux client over HTTP: long-polling (POST of a
// JSON array) and callback-polling (JSONP GET). It keeps cookies in its
// jar, as Bayeux HTTP clients must.
type Client struct {
	// URL is where requests go; tests may point it at a sub-path such as
	// URL+"/connect".
	URL string
	// HTTP sends the requests. Its Jar holds the BAYEUX_BROWSER cookie.
	HTTP *http.Client
	// ClientID is set by a successful Handshake and added to every message
	// built by NewMessage. Set it by hand to impersonate another session.
	ClientID string

	ids atomic.Int64
}

// NewClient returns a client of the endpoint url using jar for cookies;
// a nil jar means a new, empty one. Clients that share a jar act as tabs of
// one browser.
func NewClient(url string, jar http.CookieJar) *Client {
	if jar == nil {
		jar, _ = cookiejar.New(nil) // never fails with nil options
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &Client{URL: url, HTTP: &http.Client{Jar: jar, Transport: tr}}
}

// NextID returns a fresh message id: "1", "2", ...
func (c *Client) NextID() string { return strconv.FormatInt(c.ids.Add(1), 10) }

// NewMessage builds a message on channel with a fresh id and, except for a
// handshake, the client's ClientID, then applies fields (a nil value removes
// a field, e.g. Message{"id": nil}).
func (c *Client) NewMessage(channel string, fields Message) Message {
	return build(channel, c.NextID(), c.ClientID, fields)
}

// Send POSTs msgs as one JSON array and returns the decoded reply array and
// the response, whose body has been read. A status other than 200 is
// reported as a *StatusError, with the response.
func (c *Client) Send(ctx context.Context, msgs ...Message) ([]Message, *http.Response, error) {
	body, err := json.Marshal(msgs)
	if err != nil {
		return nil, nil, err
	}
	resp, b, err := c.Post(ctx, "application/json;charset=UTF-8", body)
	if err != nil {
		return nil, resp, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp, &StatusError{resp.StatusCode, b}
	}
	out, err := decodeBatch(b)
	return out, resp, err
}

// Post sends body as is to URL with the given Content-Type ("" sends
// none) and returns the response and its body, whatever the status.
func (c *Client) Post(ctx context.Context, contentType string, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return c.Do(req)
}

// Get sends a GET to URL with query and returns the response and its body,
// whatever the status.
func (c *Client) Get(ctx context.Context, query url.Values) (*http.Response, []byte, error) {
	u := c.URL
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	return c.Do(req)
}

// Do sends req with the client's cookie jar and returns the response and
// its body, whatever the status.
func (c *Client) Do(req *http.Request) (*http.Response, []byte, error) {
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// JSONP sends a callback-polling request: a GET with callback in the
// "jsonp" parameter and one "message" parameter per batch. It checks that
// a 200 body has the form callback([...]) and returns the messages inside.
func (c *Client) JSONP(ctx context.Context, callback string, batches ...[]Message) ([]Message, *http.Response, error) {
	q := url.Values{"jsonp": {callback}}
	for _, b := range batches {
		j, err := json.Marshal(b)
		if err != nil {
			return nil, nil, err
		}
		q.Add("message", string(j))
	}
	resp, body, err := c.Get(ctx, q)
	if err != nil {
		return nil, resp, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp, &StatusError{resp.StatusCode, body}
	}
	s := string(body)
	if !strings.HasPrefix(s, callback+"(") || !strings.HasSuffix(s, ")") {
		return nil, resp, fmt.Errorf("JSONP body is not %s([...]): %.200q", callback, body)
	}
	msgs, err := decodeBatch([]byte(s[len(callback)+1 : len(s)-1]))
	return msgs, resp, err
}

// Call sends one message built by NewMessage(channel, fields) and returns
// its reply (matched by channel and id) and every message of the response.
func (c *Client) Call(ctx context.Context, channel string, fields Message) (Message, []Message, error) {
	m := c.NewMessage(channel, fields)
	msgs, _, err := c.Send(ctx, m)
	if err != nil {
		return nil, msgs, err
	}
	id, _ := m["id"].(string)
	r, ok := FindReply(msgs, channel, id)
	if !ok {
		return nil, msgs, fmt.Errorf("no reply to %s id %q in %v", channel, id, msgs)
	}
	return r, msgs, nil
}

// Handshake calls /meta/handshake with version 1.0 and long-polling (plus
// fields) and, if it succeeds, remembers the clientId.
func (c *Client) Handshake(ctx context.Context, fields Message) (Message, []Message, error) {
	f := Message{"version": "1.0", "supportedConnectionTypes": []string{"long-polling"}}
	for k, v := range fields {
		f[k] = v
	}
	r, msgs, err := c.Call(ctx, "/meta/handshake", f)
	if err == nil && r.Successful() {
		c.ClientID = r.Str("clientId")
	}
	return r, msgs, err
}

// Connect calls /meta/connect with connectionType long-polling (plus
// fields). It returns when the server answers, which may take up to the
// server's timeout.
func (c *Client) Connect(ctx context.Context, fields Message) (Message, []Message, error) {
	f := Message{"connectionType": "long-polling"}
	for k, v := range fields {
		f[k] = v
	}
	return c.Call(ctx, "/meta/connect", f)
}

// Subscribe calls /meta/subscribe with subscription (a string, a list or
// anything else a test wants to send).
func (c *Client) Subscribe(ctx context.Context, subscription any) (Message, []Message, error) {
	return c.Call(ctx, "/meta/subscribe", Message{"subscription": subscription})
}

// Unsubscribe calls /meta/unsubscribe with subscription.
func (c *Client) Unsubscribe(ctx context.Context, subscription any) (Message, []Message, error) {
	return c.Call(ctx, "/meta/unsubscribe", Message{"subscription": subscription})
}

// Publish publishes data on channel (plus fields) and returns the ack.
func (c *Client) Publish(ctx context.Context, channel string, data any, fields Message) (Message, []Message, error) {
	f := Message{"data": data}
	for k, v := range fields {
		f[k] = v
	}
	return c.Call(ctx, channel, f)
}

// Disconnect calls /meta/disconnect.
func (c *Client) Disconnect(ctx context.Context) (Message, []Message, error) {
	return c.Call(ctx, "/meta/disconnect", nil)
}
