package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	gatewayv1 "github.com/cometgate/cometgate/proto/gen/cometgate/gateway/v1"
	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// ---------------------------------------------------------------------------
// Gateway under test

const testToken = "test-token-0123456789abcdef"

// testCtx bounds one test.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startGateway starts a gateway on loopback ports (public and API), with
// mutate applied to the configuration, and shuts it down when t ends.
func startGateway(t *testing.T, mutate func(*config.Config)) *gateway.Server {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Bayeux.MaxInterval = config.Duration(2 * time.Minute) // no expiry mid-test
	if mutate != nil {
		mutate(cfg)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return srv
}

func apiAddr(t *testing.T, srv *gateway.Server) string {
	t.Helper()
	a := srv.APIAddr()
	if a == nil {
		t.Fatal("APIAddr() is nil: the API has no listener of its own")
	}
	return a.String()
}

// ---------------------------------------------------------------------------
// API clients: gRPC and REST behind one interface

// tokenCreds sends a bearer token over any transport (tests only).
type tokenCreds string

func (c tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(c)}, nil
}
func (tokenCreds) RequireTransportSecurity() bool { return false }

func grpcClient(t *testing.T, addr string, opts ...grpc.DialOption) gatewayv1.GatewayClient {
	t.Helper()
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { cc.Close() })
	return gatewayv1.NewGatewayClient(cc)
}

// restError is a non-200 REST answer; it carries the HTTP status and the
// gRPC code of its JSON body.
type restError struct {
	HTTP int
	Code codes.Code
	Body string
}

func (e *restError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.HTTP, e.Body) }
func (e *restError) GRPCStatus() *status.Status {
	return status.New(e.Code, e.Body)
}

// restClient implements gatewayv1.GatewayClient over the REST routes of
// gateway_http.yaml.
type restClient struct {
	base  string // http://host:port
	hc    *http.Client
	token string
}

var _ gatewayv1.GatewayClient = (*restClient)(nil)

func newREST(base string, hc *http.Client, token string) *restClient {
	if hc == nil {
		hc = &http.Client{Timeout: 20 * time.Second}
	}
	return &restClient{base: base, hc: hc, token: token}
}

// do sends a raw request and returns the status and body.
func (r *restClient) do(ctx context.Context, method, path string, body []byte) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

func (r *restClient) call(ctx context.Context, method, path string, query url.Values, in, out proto.Message) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = protojson.Marshal(in); err != nil {
			return err
		}
	}
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	code, _, b, err := r.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		var e struct {
			Code *int `json:"code"`
		}
		re := &restError{HTTP: code, Code: codes.Unknown, Body: string(b)}
		if json.Unmarshal(b, &e) == nil && e.Code != nil {
			re.Code = codes.Code(*e.Code)
		}
		return re
	}
	if err := protojson.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode %s: %w", b, err)
	}
	return nil
}

// target returns the route of Deliver or Disconnect for the ids set (with
// neither, the client route with an empty id).
func target(clientID, userID, verb string) string {
	if clientID == "" && userID != "" {
		return "/v1/users/" + url.PathEscape(userID) + ":" + verb
	}
	return "/v1/clients/" + url.PathEscape(clientID) + ":" + verb
}

func pageQuery(q url.Values, size int32, token string) url.Values {
	if size != 0 {
		q.Set("pageSize", fmt.Sprint(size))
	}
	if token != "" {
		q.Set("pageToken", token)
	}
	return q
}

func (r *restClient) Publish(ctx context.Context, in *gatewayv1.PublishRequest, _ ...grpc.CallOption) (*gatewayv1.PublishResponse, error) {
	out := &gatewayv1.PublishResponse{}
	return out, r.call(ctx, http.MethodPost, "/v1/publish", nil, in, out)
}

func (r *restClient) Deliver(ctx context.Context, in *gatewayv1.DeliverRequest, _ ...grpc.CallOption) (*gatewayv1.DeliverResponse, error) {
	out := &gatewayv1.DeliverResponse{}
	return out, r.call(ctx, http.MethodPost, target(in.GetClientId(), in.GetUserId(), "deliver"), nil, in, out)
}

func (r *restClient) Disconnect(ctx context.Context, in *gatewayv1.DisconnectRequest, _ ...grpc.CallOption) (*gatewayv1.DisconnectResponse, error) {
	out := &gatewayv1.DisconnectResponse{}
	return out, r.call(ctx, http.MethodPost, target(in.GetClientId(), in.GetUserId(), "disconnect"), nil, in, out)
}

func (r *restClient) ListChannels(ctx context.Context, in *gatewayv1.ListChannelsRequest, _ ...grpc.CallOption) (*gatewayv1.ListChannelsResponse, error) {
	q := url.Values{}
	if in.GetPattern() != "" {
		q.Set("pattern", in.GetPattern())
	}
	out := &gatewayv1.ListChannelsResponse{}
	return out, r.call(ctx, http.MethodGet, "/v1/channels", pageQuery(q, in.GetPageSize(), in.GetPageToken()), nil, out)
}

func (r *restClient) ListSessions(ctx context.Context, in *gatewayv1.ListSessionsRequest, _ ...grpc.CallOption) (*gatewayv1.ListSessionsResponse, error) {
	q := url.Values{}
	if in.GetUserId() != "" {
		q.Set("userId", in.GetUserId())
	}
	out := &gatewayv1.ListSessionsResponse{}
	return out, r.call(ctx, http.MethodGet, "/v1/sessions", pageQuery(q, in.GetPageSize(), in.GetPageToken()), nil, out)
}

func (r *restClient) GetSession(ctx context.Context, in *gatewayv1.GetSessionRequest, _ ...grpc.CallOption) (*gatewayv1.Session, error) {
	out := &gatewayv1.Session{}
	return out, r.call(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(in.GetClientId()), nil, nil, out)
}

func (r *restClient) Stats(ctx context.Context, in *gatewayv1.StatsRequest, _ ...grpc.CallOption) (*gatewayv1.StatsResponse, error) {
	out := &gatewayv1.StatsResponse{}
	return out, r.call(ctx, http.MethodGet, "/v1/stats", nil, nil, out)
}

func (r *restClient) Reload(ctx context.Context, in *gatewayv1.ReloadRequest, _ ...grpc.CallOption) (*gatewayv1.ReloadResponse, error) {
	out := &gatewayv1.ReloadResponse{}
	return out, r.call(ctx, http.MethodPost, "/v1/reload", nil, in, out)
}

func (r *restClient) ListTLSNames(ctx context.Context, in *gatewayv1.ListTLSNamesRequest, _ ...grpc.CallOption) (*gatewayv1.ListTLSNamesResponse, error) {
	out := &gatewayv1.ListTLSNamesResponse{}
	return out, r.call(ctx, http.MethodGet, "/v1/tls/names", nil, nil, out)
}

func (r *restClient) AllowTLSName(ctx context.Context, in *gatewayv1.AllowTLSNameRequest, _ ...grpc.CallOption) (*gatewayv1.ListTLSNamesResponse, error) {
	out := &gatewayv1.ListTLSNamesResponse{}
	return out, r.call(ctx, http.MethodPost, "/v1/tls/names", nil, in, out)
}

func (r *restClient) DisallowTLSName(ctx context.Context, in *gatewayv1.DisallowTLSNameRequest, _ ...grpc.CallOption) (*gatewayv1.ListTLSNamesResponse, error) {
	out := &gatewayv1.ListTLSNamesResponse{}
	return out, r.call(ctx, http.MethodDelete, "/v1/tls/names/"+url.PathEscape(in.GetName()), nil, nil, out)
}

// apiConn is one way of calling the API.
type apiConn struct {
	name string
	rest bool
	gatewayv1.GatewayClient
}

// wantErr checks err's gRPC code and, over REST, its HTTP status.
func (c apiConn) wantErr(t *testing.T, what string, err error, code codes.Code, httpStatus int) {
	t.Helper()
	if err == nil {
		t.Errorf("%s over %s: succeeded, want %v / HTTP %d", what, c.name, code, httpStatus)
		return
	}
	if got := status.Code(err); got != code {
		t.Errorf("%s over %s: code %v, want %v (%v)", what, c.name, got, code, err)
	}
	if c.rest {
		var re *restError
		if !errors.As(err, &re) {
			t.Errorf("%s over REST: %v is not an HTTP answer", what, err)
		} else if re.HTTP != httpStatus {
			t.Errorf("%s over REST: HTTP %d, want %d (%s)", what, re.HTTP, httpStatus, re.Body)
		}
	}
}

// bothAPIs runs fn against a fresh gateway once over gRPC and once over
// REST.
func bothAPIs(t *testing.T, mutate func(*config.Config), fn func(t *testing.T, ctx context.Context, srv *gateway.Server, c apiConn)) {
	for _, rest := range []bool{false, true} {
		name := "gRPC"
		if rest {
			name = "REST"
		}
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			srv := startGateway(t, mutate)
			addr := apiAddr(t, srv)
			c := apiConn{name: name, rest: rest}
			if rest {
				c.GatewayClient = newREST("http://"+addr, nil, "")
			} else {
				c.GatewayClient = grpcClient(t, addr)
			}
			fn(t, ctx, srv, c)
		})
	}
}

// ---------------------------------------------------------------------------
// Minimal Bayeux clients

type msg map[string]json.RawMessage

func (m msg) str(key string) string {
	var s string
	json.Unmarshal(m[key], &s)
	return s
}

func (m msg) ok() bool { return string(m["successful"]) == "true" }

func isMeta(m msg) bool { return strings.HasPrefix(m.str("channel"), "/meta/") }

// lpClient is a long-polling Bayeux client with its own cookie jar.
type lpClient struct {
	url     string
	hc      *http.Client
	id      string
	pending []msg // events received but not yet consumed
}

func newLP(t *testing.T, ctx context.Context, srv *gateway.Server) *lpClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &lpClient{url: "http://" + srv.Addr().String() + "/cometd", hc: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
	replies := c.mustSend(t, ctx, map[string]any{
		"channel": "/meta/handshake", "version": "1.0", "minimumVersion": "1.0",
		"supportedConnectionTypes": []string{"long-polling"},
	})
	r := find(replies, "/meta/handshake")
	if r == nil || !r.ok() || r.str("clientId") == "" {
		t.Fatalf("handshake failed: %v", replies)
	}
	c.id = r.str("clientId")
	replies = c.mustSend(t, ctx, c.connectMsg(0))
	if r := find(replies, "/meta/connect"); r == nil || !r.ok() {
		t.Fatalf("first connect failed: %s", dump(replies))
	}
	return c
}

func (c *lpClient) connectMsg(timeoutMs int) map[string]any {
	return map[string]any{
		"channel": "/meta/connect", "clientId": c.id, "connectionType": "long-polling",
		"advice": map[string]any{"timeout": timeoutMs},
	}
}

func (c *lpClient) send(ctx context.Context, msgs ...map[string]any) ([]msg, error) {
	body, err := json.Marshal(msgs)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	var out []msg
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", b, err)
	}
	return out, nil
}

func (c *lpClient) mustSend(t *testing.T, ctx context.Context, msgs ...map[string]any) []msg {
	t.Helper()
	out, err := c.send(ctx, msgs...)
	if err != nil {
		t.Fatalf("bayeux request: %v", err)
	}
	// Keep any events for receive.
	for _, m := range out {
		if !isMeta(m) && !m.isReply() {
			c.pending = append(c.pending, m)
		}
	}
	return out
}

func (m msg) isReply() bool { _, ok := m["successful"]; return ok }

func (c *lpClient) subscribe(t *testing.T, ctx context.Context, channels ...string) {
	t.Helper()
	var msgs []map[string]any
	for _, ch := range channels {
		msgs = append(msgs, map[string]any{"channel": "/meta/subscribe", "clientId": c.id, "subscription": ch})
	}
	replies := c.mustSend(t, ctx, msgs...)
	n := 0
	for _, r := range replies {
		if r.str("channel") == "/meta/subscribe" {
			if !r.ok() {
				t.Fatalf("subscribe failed: %s", dump(replies))
			}
			n++
		}
	}
	if n != len(channels) {
		t.Fatalf("%d subscribe replies for %d channels: %s", n, len(channels), dump(replies))
	}
}

// publish publishes as the client and returns the publish reply.
func (c *lpClient) publish(t *testing.T, ctx context.Context, channel string, data any) msg {
	t.Helper()
	replies := c.mustSend(t, ctx, map[string]any{"channel": channel, "clientId": c.id, "data": data, "id": "p1"})
	for _, r := range replies {
		if r.str("channel") == channel && r.isReply() {
			return r
		}
	}
	t.Fatalf("no reply to publish on %s: %s", channel, dump(replies))
	return nil
}

// receive returns the next event on channel, connecting as needed.
func (c *lpClient) receive(t *testing.T, ctx context.Context, channel string) msg {
	t.Helper()
	for {
		for i, m := range c.pending {
			if m.str("channel") == channel {
				c.pending = slices.Delete(c.pending, i, i+1)
				return m
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("no message on %s before the deadline (pending %s)", channel, dump(c.pending))
		}
		replies := c.mustSend(t, ctx, c.connectMsg(2000))
		if r := find(replies, "/meta/connect"); r == nil || !r.ok() {
			t.Fatalf("connect failed while waiting for %s: %s", channel, dump(replies))
		}
	}
}

// connectReply sends one connect and returns its reply.
func (c *lpClient) connectReply(t *testing.T, ctx context.Context, timeoutMs int) msg {
	t.Helper()
	replies := c.mustSend(t, ctx, c.connectMsg(timeoutMs))
	r := find(replies, "/meta/connect")
	if r == nil {
		t.Fatalf("no connect reply: %s", dump(replies))
	}
	return r
}

func find(list []msg, channel string) msg {
	for _, m := range list {
		if m.str("channel") == channel && m.isReply() {
			return m
		}
	}
	return nil
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// wsClient is a websocket Bayeux client. All calls on the test goroutine.
type wsClient struct {
	conn    *websocket.Conn
	id      string
	pending []msg
}

func newWS(t *testing.T, ctx context.Context, srv *gateway.Server) *wsClient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(ctx, "ws://"+srv.Addr().String()+"/cometd", nil)
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &wsClient{conn: conn}
	c.write(t, map[string]any{
		"channel": "/meta/handshake", "version": "1.0", "minimumVersion": "1.0",
		"supportedConnectionTypes": []string{"websocket"},
	})
	r := c.reply(t, ctx, "/meta/handshake")
	if !r.ok() || r.str("clientId") == "" {
		t.Fatalf("websocket handshake failed: %v", r)
	}
	c.id = r.str("clientId")
	c.write(t, map[string]any{"channel": "/meta/connect", "clientId": c.id, "connectionType": "websocket", "advice": map[string]any{"timeout": 0}})
	if r := c.reply(t, ctx, "/meta/connect"); !r.ok() {
		t.Fatalf("websocket first connect failed: %v", r)
	}
	return c
}

func (c *wsClient) write(t *testing.T, msgs ...map[string]any) {
	t.Helper()
	if err := c.conn.WriteJSON(msgs); err != nil {
		t.Fatalf("websocket write: %v", err)
	}
}

// read reads one frame, keeping events aside.
func (c *wsClient) read(t *testing.T, ctx context.Context) []msg {
	t.Helper()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	c.conn.SetReadDeadline(deadline)
	var out []msg
	if err := c.conn.ReadJSON(&out); err != nil {
		t.Fatalf("websocket read: %v (pending %s)", err, dump(c.pending))
	}
	for _, m := range out {
		if !isMeta(m) && !m.isReply() {
			c.pending = append(c.pending, m)
		}
	}
	return out
}

func (c *wsClient) reply(t *testing.T, ctx context.Context, channel string) msg {
	t.Helper()
	for {
		if r := find(c.read(t, ctx), channel); r != nil {
			return r
		}
	}
}

func (c *wsClient) subscribe(t *testing.T, ctx context.Context, channel string) {
	t.Helper()
	c.write(t, map[string]any{"channel": "/meta/subscribe", "clientId": c.id, "subscription": channel})
	if r := c.reply(t, ctx, "/meta/subscribe"); !r.ok() {
		t.Fatalf("websocket subscribe failed: %v", r)
	}
	// A held connect, as real clients keep one.
	c.write(t, map[string]any{"channel": "/meta/connect", "clientId": c.id, "connectionType": "websocket", "advice": map[string]any{"timeout": 15000}})
}

func (c *wsClient) receive(t *testing.T, ctx context.Context, channel string) msg {
	t.Helper()
	for {
		for i, m := range c.pending {
			if m.str("channel") == channel {
				c.pending = slices.Delete(c.pending, i, i+1)
				return m
			}
		}
		c.read(t, ctx)
	}
}

// ---------------------------------------------------------------------------
// Assertions on delivered messages

func jsonValue(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	return v
}

// checkEvent checks a delivered message: its channel, data and ext, and
// that it carries no id or clientId.
func checkEvent(t *testing.T, who string, m msg, channel, data, ext string) {
	t.Helper()
	if got := m.str("channel"); got != channel {
		t.Errorf("%s: channel %q, want %q", who, got, channel)
	}
	if !reflect.DeepEqual(jsonValue(t, m["data"]), jsonValue(t, []byte(data))) {
		t.Errorf("%s: data %s, want %s", who, m["data"], data)
	}
	if ext == "" {
		if _, ok := m["ext"]; ok {
			t.Errorf("%s: unexpected ext %s", who, m["ext"])
		}
	} else if e, ok := m["ext"]; !ok || !reflect.DeepEqual(jsonValue(t, e), jsonValue(t, []byte(ext))) {
		t.Errorf("%s: ext %s, want %s", who, m["ext"], ext)
	}
	for _, k := range []string{"id", "clientId"} {
		if v, ok := m[k]; ok {
			t.Errorf("%s: message carries %s %s: %s", who, k, v, dump(m))
		}
	}
}

func mustValue(t *testing.T, v any) *structpb.Value {
	t.Helper()
	pv, err := structpb.NewValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return pv
}

func mustStruct(t *testing.T, v map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func queueDepth(t *testing.T, ctx context.Context, c apiConn, id string) int32 {
	t.Helper()
	s, err := c.GetSession(ctx, &gatewayv1.GetSessionRequest{ClientId: id})
	if err != nil {
		t.Fatalf("GetSession(%s) over %s: %v", id, c.name, err)
	}
	return s.GetQueueDepth()
}

// ---------------------------------------------------------------------------
// Methods

func TestPublish(t *testing.T) {
	bothAPIs(t, nil, func(t *testing.T, ctx context.Context, srv *gateway.Server, c apiConn) {
		lp := newLP(t, ctx, srv)
		lp.subscribe(t, ctx, "/news/sport")
		ws := newWS(t, ctx, srv)
		ws.subscribe(t, ctx, "/news/*")

		resp, err := c.Publish(ctx, &gatewayv1.PublishRequest{
			Channel: "/news/sport",
			Data:    mustValue(t, map[string]any{"text": "goal", "minute": 42.5, "tags": []any{"a", true, nil}}),
			Ext:     mustStruct(t, map[string]any{"trace": "t-1", "n": 7}),
		})
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if resp.GetSubscribers() != 2 {
			t.Errorf("subscribers = %d, want 2", resp.GetSubscribers())
		}
		const data = `{"text":"goal","minute":42.5,"tags":["a",true,null]}`
		const ext = `{"trace":"t-1","n":7}`
		checkEvent(t, "long-polling", lp.receive(t, ctx, "/news/sport"), "/news/sport", data, ext)
		checkEvent(t, "websocket", ws.receive(t, ctx, "/news/sport"), "/news/sport", data, ext)

		// data_json keeps numbers exact; no ext means none delivered.
		const exact = `{"big":123456789012345678901234567890,"f":0.1000000000000000055511151231257827}`
		resp, err = c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/news/sport", DataJson: []byte(exact)})
		if err != nil {
			t.Fatalf("Publish data_json: %v", err)
		}
		if resp.GetSubscribers() != 2 {
			t.Errorf("subscribers = %d, want 2", resp.GetSubscribers())
		}
		m := lp.receive(t, ctx, "/news/sport")
		checkEvent(t, "long-polling data_json", m, "/news/sport", exact, "")
		if !bytes.Contains(m["data"], []byte("123456789012345678901234567890")) {
			t.Errorf("data_json number not kept exact: %s", m["data"])
		}
		checkEvent(t, "websocket data_json", ws.receive(t, ctx, "/news/sport"), "/news/sport", exact, "")

		// Nobody subscribed: accepted, 0 subscribers; absent data is null.
		resp, err = c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/nobody/here"})
		if err != nil || resp.GetSubscribers() != 0 {
			t.Errorf("Publish to an empty channel: %v, %v; want 0 subscribers", resp, err)
		}
	})
}

func TestDeliver(t *testing.T) {
	bothAPIs(t, nil, func(t *testing.T, ctx context.Context, srv *gateway.Server, c apiConn) {
		// a and b are alice's (a by joining the demo chat, b bound by the
		// engine); o is bob's.
		a, b, o := newLP(t, ctx, srv), newLP(t, ctx, srv), newLP(t, ctx, srv)
		if r := a.publish(t, ctx, "/service/members", map[string]any{"user": "alice", "room": "/chat/demo"}); !r.ok() {
			t.Fatalf("chat join: %s", dump(r))
		}
		if r := o.publish(t, ctx, "/service/members", map[string]any{"user": "bob", "room": "/chat/demo"}); !r.ok() {
			t.Fatalf("chat join: %s", dump(r))
		}
		srv.Engine().Session(b.id).SetUser("alice")

		// To one client, on a channel it never subscribed to.
		resp, err := c.Deliver(ctx, &gatewayv1.DeliverRequest{
			ClientId: a.id, Channel: "/private/inbox",
			Data: mustValue(t, map[string]any{"hello": "a"}),
			Ext:  mustStruct(t, map[string]any{"k": "v"}),
		})
		if err != nil {
			t.Fatalf("Deliver to client: %v", err)
		}
		if resp.GetSessions() != 1 {
			t.Errorf("sessions = %d, want 1", resp.GetSessions())
		}
		if d := queueDepth(t, ctx, c, a.id); d != 1 {
			t.Errorf("target queue depth %d, want 1", d)
		}
		for _, other := range []*lpClient{b, o} {
			if d := queueDepth(t, ctx, c, other.id); d != 0 {
				t.Errorf("other session %s got %d messages", other.id, d)
			}
		}
		checkEvent(t, "client a", a.receive(t, ctx, "/private/inbox"), "/private/inbox", `{"hello":"a"}`, `{"k":"v"}`)

		// To every session of a user.
		resp, err = c.Deliver(ctx, &gatewayv1.DeliverRequest{UserId: "alice", Channel: "/private/user", DataJson: []byte(`[1,2,3]`)})
		if err != nil {
			t.Fatalf("Deliver to user: %v", err)
		}
		if resp.GetSessions() != 2 {
			t.Errorf("sessions = %d, want 2", resp.GetSessions())
		}
		if d := queueDepth(t, ctx, c, o.id); d != 0 {
			t.Errorf("bob's session got %d messages", d)
		}
		checkEvent(t, "alice a", a.receive(t, ctx, "/private/user"), "/private/user", `[1,2,3]`, "")
		checkEvent(t, "alice b", b.receive(t, ctx, "/private/user"), "/private/user", `[1,2,3]`, "")

		// Bob joined the chat too: a single session.
		resp, err = c.Deliver(ctx, &gatewayv1.DeliverRequest{UserId: "bob", Channel: "/private/user", Data: mustValue(t, "hi bob")})
		if err != nil || resp.GetSessions() != 1 {
			t.Fatalf("Deliver to bob: %v, %v", resp, err)
		}
		checkEvent(t, "bob", o.receive(t, ctx, "/private/user"), "/private/user", `"hi bob"`, "")
	})
}

func TestDisconnect(t *testing.T) {
	bothAPIs(t, nil, func(t *testing.T, ctx context.Context, srv *gateway.Server, c apiConn) {
		one, a1, a2, keep := newLP(t, ctx, srv), newLP(t, ctx, srv), newLP(t, ctx, srv), newLP(t, ctx, srv)
		a1.subscribe(t, ctx, "/d/x")
		srv.Engine().Session(a1.id).SetUser("alice")
		srv.Engine().Session(a2.id).SetUser("alice")

		gone := func(cl *lpClient) {
			t.Helper()
			_, err := c.GetSession(ctx, &gatewayv1.GetSessionRequest{ClientId: cl.id})
			c.wantErr(t, "GetSession of a disconnected session", err, codes.NotFound, http.StatusNotFound)
			r := cl.connectReply(t, ctx, 0)
			if r.ok() || !strings.HasPrefix(r.str("error"), "402") {
				t.Errorf("connect after disconnect: %s, want error 402", dump(r))
			}
		}

		resp, err := c.Disconnect(ctx, &gatewayv1.DisconnectRequest{ClientId: one.id, Reason: "test"})
		if err != nil {
			t.Fatalf("Disconnect client: %v", err)
		}
		if resp.GetSessions() != 1 {
			t.Errorf("sessions = %d, want 1", resp.GetSessions())
		}
		gone(one)
		if _, err := c.GetSession(ctx, &gatewayv1.GetSessionRequest{ClientId: a1.id}); err != nil {
			t.Errorf("another session went too: %v", err)
		}

		resp, err = c.Disconnect(ctx, &gatewayv1.DisconnectRequest{UserId: "alice"})
		if err != nil {
			t.Fatalf("Disconnect user: %v", err)
		}
		if resp.GetSessions() != 2 {
			t.Errorf("sessions = %d, want 2", resp.GetSessions())
		}
		gone(a1)
		gone(a2)
		// Their subscriptions went with them.
		ch, err := c.ListChannels(ctx, &gatewayv1.ListChannelsRequest{Pattern: "/d/x"})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range ch.GetChannels() {
			if x.GetSubscribers() != 0 {
				t.Errorf("channel %s still has %d subscribers", x.GetName(), x.GetSubscribers())
			}
		}
		// The user is gone; the bystander is not.
		_, err = c.Disconnect(ctx, &gatewayv1.DisconnectRequest{UserId: "alice"})
		c.wantErr(t, "Disconnect of a user without sessions", err, codes.NotFound, http.StatusNotFound)
		list, err := c.ListSessions(ctx, &gatewayv1.ListSessionsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.GetSessions()) != 1 || list.GetSessions()[0].GetClientId() != keep.id {
			t.Errorf("sessions left: %v, want only %s", list.GetSessions(), keep.id)
		}
		if r := keep.connectReply(t, ctx, 0); !r.ok() {
			t.Errorf("bystander's connect failed: %s", dump(r))
		}
	})
}

// TestDisconnectHeldConnect checks that a held long poll is answered at
// once with /meta/disconnect and reconnect advice "none".
func TestDisconnectHeldConnect(t *testing.T) {
	bothAPIs(t, nil, func(t *testing.T, ctx context.Context, srv *gateway.Server, c apiConn) {
		cl := newLP(t, ctx, srv)
		type result struct {
			msgs []msg
			err  error
			took time.Duration
		}
		done := make(chan result, 1)
		go func() {
			start := time.Now()
			msgs, err := cl.send(ctx, cl.connectMsg(15000))
			done <- result{msgs, err, time.Since(start)}
		}()
		// Wait until the connect is held.
		for s := srv.Engine().Session(cl.id); s == nil || !s.Held(); s = srv.Engine().Session(cl.id) {
			if ctx.Err() != nil {
				t.Fatal("the connect was never held")
			}
			time.Sleep(5 * time.Millisecond)
		}
		select {
		case r := <-done:
			t.Fatalf("connect returned before the disconnect: %s %v", dump(r.msgs), r.err)
		default:
		}
		if _, err := c.Disconnect(ctx, &gatewayv1.DisconnectRequest{ClientId: cl.id}); err != nil {
			t.Fatalf("Disconnect: %v", err)
		}
		var r result
		select {
		case r = <-done:
		case <-ctx.Done():
			t.Fatal("held connect not answered")
		}
		if r.err != nil {
			t.Fatalf("held connect: %v", r.err)
		}
		if r.took > 10*time.Second {
			t.Errorf("held connect answered after %v", r.took)
		}
		var sawDisconnect bool
		for _, m := range r.msgs {
			if m.str("channel") == "/meta/disconnect" {
				sawDisconnect = true
			}
		}
		if !sawDisconnect {
			t.Errorf("held connect answered without /meta/disconnect: %s", dump(r.msgs))
		}
		if conn := find(r.msgs, "/meta/connect"); conn == nil {
			t.Errorf("held connect answered without a /meta/connect reply: %s", dump(r.msgs))
		} else {
			var adv struct {
				Reconnect string `json:"reconnect"`
			}
			json.Unmarshal(conn["advice"], &adv)
			if adv.Reconnect != "none" {
				t.Errorf("connect reply advice %s, want reconnect none", conn["advice"])
			}
		}
	})
}

func TestListChannels(t *testing.T) {
	bothAPIs(t, nil, func(t *testing.T, ctx context.Context, srv *gateway.Server, c apiConn) {
		x, y := newLP(t, ctx, srv), newLP(t, ctx, srv)
		want := []string{"/page/**"}
		for i := range 7 {
			want = append(want, fmt.Sprintf("/page/c%d", i))
		}
		x.subscribe(t, ctx, append(slices.Clone(want), "/other/x")...)
		y.subscribe(t, ctx, "/page/c0")

		var got []string
		counts := map[string]int32{}
		token, pages := "", 0
		for {
			resp, err := c.ListChannels(ctx, &gatewayv1.ListChannelsRequest{Pattern: "/page/**", PageSize: 3, PageToken: token})
			if err != nil {
				t.Fatalf("ListChannels page %d: %v", pages, err)
			}
			pages++
			if n := len(resp.GetChannels()); n > 3 || n == 0 {
				t.Errorf("page %d has %d channels", pages, n)
			}
			for _, ch := range resp.GetChannels() {
				got = append(got, ch.GetName())
				counts[ch.GetName()] = ch.GetSubscribers()
			}
			token = resp.GetNextPageToken()
			if token == "" {
				break
			}
			if pages > 10 {
				t.Fatal("pagination does not end")
			}
		}
		if pages != 3 {
			t.Errorf("%d pages, want 3 (8 channels, 3 a page)", pages)
		}
		if !slices.Equal(got, want) {
			t.Errorf("channels %v, want %v", got, want)
		}
		if counts["/page/c0"] != 2 || counts["/page/c1"] != 1 || counts["/page/**"] != 1 {
			t.Errorf("subscriber counts %v", counts)
		}

		// An exact name, and no filter at all.
		resp, err := c.ListChannels(ctx, &gatewayv1.ListChannelsRequest{Pattern: "/other/x"})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetChannels()) != 1 || resp.GetChannels()[0].GetName() != "/other/x" || resp.GetNextPageToken() != "" {
			t.Errorf("pattern /other/x: %v", resp)
		}
		resp, err = c.ListChannels(ctx, &gatewayv1.ListChannelsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		for _, ch := range resp.GetChannels() {
			all = append(all, ch.GetName())
		}
		if !slices.IsSorted(all) || !slices.Contains(all, "/other/x") || !slices.Contains(all, "/page/c6") {
			t.Errorf("all channels: %v", all)
		}
		// "/page/*" matches one level only, so not "/page/**"? It matches
		// every /page/cN name; at least those.
		resp, err = c.ListChannels(ctx, &gatewayv1.ListChannelsRequest{Pattern: "/page/*", PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetChannels()) < 7 {
			t.Errorf("pattern /page/*: %v", resp.GetChannels())
		}
	})
}

func TestSessions(t *testing.T) {
	bothAPIs(t, nil, func(t *testing.T, ctx context.Context, srv *gateway.Server, c apiConn) {
		before := time.Now()
		a, b := newLP(t, ctx, srv), newLP(t, ctx, srv)
		ws := newWS(t, ctx, srv)
		if r := a.publish(t, ctx, "/service/members", map[string]any{"user": "alice", "room": "/chat/demo"}); !r.ok() {
			t.Fatalf("chat join: %s", dump(r))
		}
		a.subscribe(t, ctx, "/s/two", "/s/one")
		srv.Engine().Session(b.id).SetUser("alice")
		srv.Engine().Session(ws.id).SetUser("carol")
		for i := range 2 {
			if _, err := c.Deliver(ctx, &gatewayv1.DeliverRequest{ClientId: a.id, Channel: "/q", Data: mustValue(t, float64(i))}); err != nil {
				t.Fatal(err)
			}
		}

		// User filter.
		resp, err := c.ListSessions(ctx, &gatewayv1.ListSessionsRequest{UserId: "alice"})
		if err != nil {
			t.Fatalf("ListSessions(alice): %v", err)
		}
		var ids []string
		for _, s := range resp.GetSessions() {
			ids = append(ids, s.GetClientId())
			if s.GetUserId() != "alice" {
				t.Errorf("session %s of user %q in alice's list", s.GetClientId(), s.GetUserId())
			}
		}
		wantIDs := []string{a.id, b.id}
		slices.Sort(wantIDs)
		if !slices.Equal(ids, wantIDs) {
			t.Errorf("alice's sessions %v, want %v", ids, wantIDs)
		}
		resp, err = c.ListSessions(ctx, &gatewayv1.ListSessionsRequest{UserId: "nobody"})
		if err != nil || len(resp.GetSessions()) != 0 {
			t.Errorf("ListSessions(nobody): %v, %v", resp, err)
		}

		// All, one per page.
		ids = nil
		token := ""
		for range 10 {
			resp, err := c.ListSessions(ctx, &gatewayv1.ListSessionsRequest{PageSize: 1, PageToken: token})
			if err != nil {
				t.Fatalf("ListSessions: %v", err)
			}
			if len(resp.GetSessions()) != 1 {
				t.Fatalf("page of %d sessions, want 1", len(resp.GetSessions()))
			}
			ids = append(ids, resp.GetSessions()[0].GetClientId())
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		wantIDs = []string{a.id, b.id, ws.id}
		slices.Sort(wantIDs)
		if !slices.Equal(ids, wantIDs) {
			t.Errorf("paged sessions %v, want %v", ids, wantIDs)
		}

		// One session's fields.
		s, err := c.GetSession(ctx, &gatewayv1.GetSessionRequest{ClientId: a.id})
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		if s.GetClientId() != a.id || s.GetUserId() != "alice" || s.GetTransport() != "long-polling" || s.GetState() != "connected" {
			t.Errorf("session: %v", s)
		}
		if !slices.Equal(s.GetSubscriptions(), []string{"/s/one", "/s/two"}) {
			t.Errorf("subscriptions %v, want [/s/one /s/two]", s.GetSubscriptions())
		}
		if s.GetQueueDepth() != 2 {
			t.Errorf("queue depth %d, want 2", s.GetQueueDepth())
		}
		if host, _, err := net.SplitHostPort(s.GetRemoteAddr()); err != nil || host != "127.0.0.1" {
			t.Errorf("remote addr %q", s.GetRemoteAddr())
		}
		created := s.GetCreated().AsTime()
		if created.Before(before.Add(-time.Second)) || created.After(time.Now().Add(time.Second)) {
			t.Errorf("created %v, test started %v", created, before)
		}
		if age := s.GetAgeSeconds(); age <= 0 || age > 60 {
			t.Errorf("age %v s", age)
		}
		s, err = c.GetSession(ctx, &gatewayv1.GetSessionRequest{ClientId: ws.id})
		if err != nil {
			t.Fatal(err)
		}
		if s.GetTransport() != "websocket" || s.GetUserId() != "carol" || len(s.GetSubscriptions()) != 0 {
			t.Errorf("websocket session: %v", s)
		}
		_, err = c.GetSession(ctx, &gatewayv1.GetSessionRequest{ClientId: "nosuchsession"})
		c.wantErr(t, "GetSession of an unknown id", err, codes.NotFound, http.StatusNotFound)
	})
}

func TestStats(t *testing.T) {
	bothAPIs(t, nil, func(t *testing.T, ctx context.Context, srv *gateway.Server, c apiConn) {
		s0, err := c.Stats(ctx, &gatewayv1.StatsRequest{})
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		if s0.GetSessions() != 0 || s0.GetHandshakes() != 0 || s0.GetWebsocketConnections() != 0 {
			t.Errorf("fresh node stats: %v", s0)
		}
		lp := newLP(t, ctx, srv)
		lp.subscribe(t, ctx, "/st/a")
		ws := newWS(t, ctx, srv)
		ws.subscribe(t, ctx, "/st/a")
		if _, err := c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/st/a", Data: mustValue(t, "x")}); err != nil {
			t.Fatal(err)
		}
		lp.receive(t, ctx, "/st/a")
		ws.receive(t, ctx, "/st/a")
		s1, err := c.Stats(ctx, &gatewayv1.StatsRequest{})
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		if s1.GetSessions() != 2 || s1.GetHandshakes()-s0.GetHandshakes() != 2 {
			t.Errorf("sessions %d, handshakes %d→%d; want 2 and +2", s1.GetSessions(), s0.GetHandshakes(), s1.GetHandshakes())
		}
		if s1.GetPublished()-s0.GetPublished() != 1 || s1.GetDelivered()-s0.GetDelivered() != 2 {
			t.Errorf("published %d→%d, delivered %d→%d; want +1 and +2", s0.GetPublished(), s1.GetPublished(), s0.GetDelivered(), s1.GetDelivered())
		}
		if s1.GetChannels() < 1 || s1.GetWebsocketConnections() != 1 {
			t.Errorf("channels %d, websocket connections %d; want >=1 and 1", s1.GetChannels(), s1.GetWebsocketConnections())
		}
		if s1.GetUptimeSeconds() <= 0 || s1.GetUptimeSeconds() < s0.GetUptimeSeconds() {
			t.Errorf("uptime %v then %v", s0.GetUptimeSeconds(), s1.GetUptimeSeconds())
		}
		if s1.GetDroppedSlow() != 0 || s1.GetExpired() != 0 {
			t.Errorf("dropped %d, expired %d", s1.GetDroppedSlow(), s1.GetExpired())
		}
	})
}

// The long-polling answer latency counts a held connect ended by a
// message, and nothing else.
func TestStatsLongPollAnswer(t *testing.T) {
	bothAPIs(t, nil, func(t *testing.T, ctx context.Context, srv *gateway.Server, c apiConn) {
		lp := newLP(t, ctx, srv)
		lp.subscribe(t, ctx, "/st/lp")
		// A connect answered at once is not counted.
		lp.mustSend(t, ctx, lp.connectMsg(0))
		done := make(chan []msg, 1)
		go func() {
			msgs, _ := lp.send(ctx, lp.connectMsg(15000))
			done <- msgs
		}()
		for s := srv.Engine().Session(lp.id); s == nil || !s.Held(); s = srv.Engine().Session(lp.id) {
			if ctx.Err() != nil {
				t.Fatal("the connect was never held")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if _, err := c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/st/lp", Data: mustValue(t, "x")}); err != nil {
			t.Fatal(err)
		}
		if msgs := <-done; len(msgs) != 2 || msgs[0].str("channel") != "/st/lp" {
			t.Fatalf("held connect answered with %s", dump(msgs))
		}
		// The gateway records the answer once written, which may be just
		// after the client has read it.
		var a *gatewayv1.LatencySummary
		for a.GetCount() == 0 && ctx.Err() == nil {
			st, err := c.Stats(ctx, &gatewayv1.StatsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if a = st.GetLongPollAnswer(); a.GetCount() == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if a.GetCount() != 1 || a.GetMaxMs() <= 0 || a.GetMaxMs() > 5000 || a.GetP50Ms() != a.GetMaxMs() || a.GetP99Ms() != a.GetMaxMs() {
			t.Errorf("long_poll_answer = %v; want one answer, in (0, 5000] ms", a)
		}
		// Buckets are cumulative: the answer is counted from its bound on.
		bs := a.GetBuckets()
		if len(bs) == 0 || bs[len(bs)-1].GetUpperMs() != 1000 {
			t.Fatalf("buckets = %v", bs)
		}
		for _, b := range bs {
			want := int64(0)
			if b.GetUpperMs() > a.GetMaxMs() {
				want = 1
			}
			if b.GetCount() != want {
				t.Errorf("bucket < %v ms counts %d; want %d (the answer took %v ms)", b.GetUpperMs(), b.GetCount(), want, a.GetMaxMs())
			}
		}
	})
}

func TestOpenAPI(t *testing.T) {
	ctx := testCtx(t)
	srv := startGateway(t, nil)
	rc := newREST("http://"+apiAddr(t, srv), nil, "")
	code, hdr, body, err := rc.do(ctx, http.MethodGet, "/v1/openapi.json", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/openapi.json: %d %v", code, err)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if _, ok := doc.Paths["/v1/publish"]["post"]; !ok {
		t.Errorf("no POST /v1/publish in %v", slices.Sorted(maps.Keys(doc.Paths)))
	}
	for _, p := range []string{"/v1/channels", "/v1/sessions", "/v1/stats"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("no %s path", p)
		}
	}
}

// ---------------------------------------------------------------------------
// Authentication

func TestTokenAuth(t *testing.T) {
	ctx := testCtx(t)
	srv := startGateway(t, func(c *config.Config) { c.API.Tokens = []string{"another-token-abcdefghij", testToken} })
	addr := apiAddr(t, srv)

	for _, tc := range []struct {
		name  string
		token string
		ok    bool
	}{
		{"no token", "", false},
		{"wrong token", "wrong-token-0123456789abcdef", false},
		{"token prefix", testToken[:16], false},
		{"right token", testToken, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
			if tc.token != "" {
				opts = append(opts, grpc.WithPerRPCCredentials(tokenCreds(tc.token)))
			}
			g := apiConn{name: "gRPC", GatewayClient: grpcClient(t, addr, opts...)}
			r := apiConn{name: "REST", rest: true, GatewayClient: newREST("http://"+addr, nil, tc.token)}
			for _, c := range []apiConn{g, r} {
				_, errStats := c.Stats(ctx, &gatewayv1.StatsRequest{})
				_, errPub := c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/auth/x", Data: mustValue(t, 1)})
				if tc.ok {
					if errStats != nil || errPub != nil {
						t.Errorf("%s with the right token refused: %v / %v", c.name, errStats, errPub)
					}
					continue
				}
				c.wantErr(t, "Stats", errStats, codes.Unauthenticated, http.StatusUnauthorized)
				c.wantErr(t, "Publish", errPub, codes.Unauthenticated, http.StatusUnauthorized)
			}
			// The OpenAPI document is behind the same check.
			code, hdr, _, err := r.GatewayClient.(*restClient).do(ctx, http.MethodGet, "/v1/openapi.json", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.ok && code != http.StatusOK || !tc.ok && code != http.StatusUnauthorized {
				t.Errorf("GET /v1/openapi.json: %d", code)
			}
			if !tc.ok && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer (%q)", hdr.Get("WWW-Authenticate"))
			}
		})
	}
	// A scheme other than Bearer.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/stats", nil)
	req.Header.Set("Authorization", "Basic "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("Basic scheme: %d, want 401", resp.StatusCode)
	}
}

// pki holds a test CA and certificates issued by it.
type pki struct {
	caPool *x509.CertPool
	caPEM  []byte
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

var serial int64 = 1

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{caPool: x509.NewCertPool(), ca: ca, caKey: key,
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	p.caPool.AddCert(ca)
	return p
}

// issue returns a leaf certificate's PEM files' contents and its
// tls.Certificate.
func (p *pki) issue(t *testing.T, name string, server bool) (certPEM, keyPEM []byte, cert tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM, cert
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMutualTLS(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	ca := newPKI(t, "test CA")
	srvCert, srvKey, _ := ca.issue(t, "gateway", true)
	_, _, clientCert := ca.issue(t, "operator", false)
	_, _, strangerCert := newPKI(t, "other CA").issue(t, "stranger", false)
	tlsCfg := config.APITLSConfig{
		CertFile:     writeFile(t, dir, "server.pem", srvCert),
		KeyFile:      writeFile(t, dir, "server-key.pem", srvKey),
		ClientCAFile: writeFile(t, dir, "ca.pem", ca.caPEM),
	}
	srv := startGateway(t, func(c *config.Config) { c.API.TLS = tlsCfg })
	addr := apiAddr(t, srv)

	clientTLS := func(certs ...tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: ca.caPool, Certificates: certs, MinVersion: tls.VersionTLS12}
	}
	grpcTLS := func(certs ...tls.Certificate) apiConn {
		return apiConn{name: "gRPC/TLS", GatewayClient: grpcClient(t, addr, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(certs...))))}
	}
	restTLS := func(certs ...tls.Certificate) apiConn {
		tr := &http.Transport{TLSClientConfig: clientTLS(certs...), ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		return apiConn{name: "REST/TLS", rest: true, GatewayClient: newREST("https://"+addr, &http.Client{Transport: tr, Timeout: 20 * time.Second}, "")}
	}

	// A verified client certificate, no token: accepted.
	for _, c := range []apiConn{grpcTLS(clientCert), restTLS(clientCert)} {
		if _, err := c.Stats(ctx, &gatewayv1.StatsRequest{}); err != nil {
			t.Errorf("%s with a client certificate: %v", c.name, err)
		}
		if _, err := c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/mtls/x", Data: mustValue(t, "ok")}); err != nil {
			t.Errorf("%s Publish with a client certificate: %v", c.name, err)
		}
	}
	// No certificate, no token: refused.
	for _, c := range []apiConn{grpcTLS(), restTLS()} {
		_, err := c.Stats(ctx, &gatewayv1.StatsRequest{})
		c.wantErr(t, "Stats without certificate or token", err, codes.Unauthenticated, http.StatusUnauthorized)
		_, err = c.ListSessions(ctx, &gatewayv1.ListSessionsRequest{})
		c.wantErr(t, "ListSessions without certificate or token", err, codes.Unauthenticated, http.StatusUnauthorized)
	}
	// A certificate from another CA: the TLS handshake fails.
	for _, c := range []apiConn{grpcTLS(strangerCert), restTLS(strangerCert)} {
		if _, err := c.Stats(ctx, &gatewayv1.StatsRequest{}); err == nil {
			t.Errorf("%s with a certificate of another CA: accepted", c.name)
		} else if status.Code(err) == codes.OK {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// Plain HTTP on the TLS port gets nothing from the API.
	rc := newREST("http://"+addr, nil, "")
	if code, _, body, err := rc.do(ctx, http.MethodGet, "/v1/stats", nil); err == nil && code == http.StatusOK {
		t.Errorf("plain HTTP on the TLS port answered 200: %s", body)
	}
}

// ---------------------------------------------------------------------------
// Configuration

func TestConfigNonLoopbackNeedsAuth(t *testing.T) {
	base := func() *config.Config {
		c := config.Default()
		c.Listen = "127.0.0.1:0"
		return c
	}
	for _, tc := range []struct {
		name    string
		mutate  func(*config.Config)
		wantErr string // "" for valid
	}{
		{"any address without auth", func(c *config.Config) { c.API.Listen = "0.0.0.0:0" }, "api.listen"},
		{"public IP without auth", func(c *config.Config) { c.API.Listen = "192.0.2.10:8081" }, "api.listen"},
		{"host name without auth", func(c *config.Config) { c.API.Listen = "api.example:8081" }, "api.listen"},
		{"public listener on any address without auth", func(c *config.Config) { c.Listen = "0.0.0.0:0"; c.API.Listen = "public" }, "api.listen"},
		{"any address with a token", func(c *config.Config) { c.API.Listen = "0.0.0.0:0"; c.API.Tokens = []string{testToken} }, ""},
		{"any address with mTLS", func(c *config.Config) {
			c.API.Listen = "0.0.0.0:0"
			c.API.TLS = config.APITLSConfig{CertFile: "c.pem", KeyFile: "k.pem", ClientCAFile: "ca.pem"}
		}, ""},
		{"short token", func(c *config.Config) { c.API.Listen = "0.0.0.0:0"; c.API.Tokens = []string{"short"} }, "api.tokens[0]"},
		{"loopback without auth", func(c *config.Config) { c.API.Listen = "127.0.0.1:0" }, ""},
		{"localhost without auth", func(c *config.Config) { c.API.Listen = "localhost:0" }, ""},
		{"IPv6 loopback without auth", func(c *config.Config) { c.API.Listen = "[::1]:0" }, ""},
		{"public listener on loopback", func(c *config.Config) { c.API.Listen = "public" }, ""},
		{"off", func(c *config.Config) { c.Listen = "0.0.0.0:0"; c.API.Listen = "off" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(c)
			c.SetDefaults()
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted it, want an error naming %s", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate: %v; want it to name %s", err, tc.wantErr)
			}
			var fe *config.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %v wraps no *config.FieldError", err)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Bad input

const maxData = 1024 // api.maxDataBytes in TestBadInput

func TestBadInput(t *testing.T) {
	bothAPIs(t, func(c *config.Config) { c.API.MaxDataBytes = maxData }, func(t *testing.T, ctx context.Context, srv *gateway.Server, c apiConn) {
		cl := newLP(t, ctx, srv)
		srv.Engine().Session(cl.id).SetUser("dave")
		big := strings.Repeat("x", maxData+10)
		bigJSON := []byte(`"` + big + `"`)
		const badReq, notFound = http.StatusBadRequest, http.StatusNotFound
		inv, nf := codes.InvalidArgument, codes.NotFound

		for _, ch := range []string{"", "nochannel", "/a//b", "//", "/a/*", "/a/**", "/*", "/meta/connect", "/meta/foo", "/service/echo", "/service/x/y"} {
			_, err := c.Publish(ctx, &gatewayv1.PublishRequest{Channel: ch, Data: mustValue(t, 1)})
			c.wantErr(t, fmt.Sprintf("Publish to %q", ch), err, inv, badReq)
		}
		pubs := map[string]*gatewayv1.PublishRequest{
			"oversized data":         {Channel: "/ok", Data: mustValue(t, big)},
			"oversized data_json":    {Channel: "/ok", DataJson: bigJSON},
			"data and data_json":     {Channel: "/ok", Data: mustValue(t, 1), DataJson: []byte(`2`)},
			"invalid data_json":      {Channel: "/ok", DataJson: []byte(`{"a":`)},
			"data_json with garbage": {Channel: "/ok", DataJson: []byte(`1 2`)},
		}
		for what, req := range pubs {
			_, err := c.Publish(ctx, req)
			c.wantErr(t, "Publish with "+what, err, inv, badReq)
		}
		// Exactly at the limit is fine.
		if _, err := c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/ok", DataJson: []byte(`"` + big[:maxData-2] + `"`)}); err != nil {
			t.Errorf("Publish of exactly api.maxDataBytes: %v", err)
		}

		delivers := []struct {
			what string
			req  *gatewayv1.DeliverRequest
			code codes.Code
			http int
		}{
			{"unknown client", &gatewayv1.DeliverRequest{ClientId: "nosuchclient", Channel: "/x"}, nf, notFound},
			{"unknown user", &gatewayv1.DeliverRequest{UserId: "nosuchuser", Channel: "/x"}, nf, notFound},
			{"client and user", &gatewayv1.DeliverRequest{ClientId: cl.id, UserId: "dave", Channel: "/x"}, inv, badReq},
			{"wildcard channel", &gatewayv1.DeliverRequest{ClientId: cl.id, Channel: "/x/*"}, inv, badReq},
			{"meta channel", &gatewayv1.DeliverRequest{ClientId: cl.id, Channel: "/meta/connect"}, inv, badReq},
			{"invalid channel", &gatewayv1.DeliverRequest{ClientId: cl.id, Channel: "x"}, inv, badReq},
			{"oversized data", &gatewayv1.DeliverRequest{UserId: "dave", Channel: "/x", Data: mustValue(t, big)}, inv, badReq},
			{"data and data_json", &gatewayv1.DeliverRequest{ClientId: cl.id, Channel: "/x", Data: mustValue(t, 1), DataJson: []byte(`1`)}, inv, badReq},
		}
		if !c.rest { // REST routes always carry one id; see TestRESTNeitherID.
			delivers = append(delivers, struct {
				what string
				req  *gatewayv1.DeliverRequest
				code codes.Code
				http int
			}{"neither client nor user", &gatewayv1.DeliverRequest{Channel: "/x"}, inv, badReq})
			_, err := c.Disconnect(ctx, &gatewayv1.DisconnectRequest{})
			c.wantErr(t, "Disconnect of neither client nor user", err, inv, badReq)
		}
		for _, d := range delivers {
			_, err := c.Deliver(ctx, d.req)
			c.wantErr(t, "Deliver: "+d.what, err, d.code, d.http)
		}
		_, err := c.Disconnect(ctx, &gatewayv1.DisconnectRequest{ClientId: "nosuchclient"})
		c.wantErr(t, "Disconnect of an unknown client", err, nf, notFound)
		_, err = c.Disconnect(ctx, &gatewayv1.DisconnectRequest{UserId: "nosuchuser"})
		c.wantErr(t, "Disconnect of an unknown user", err, nf, notFound)
		_, err = c.Disconnect(ctx, &gatewayv1.DisconnectRequest{ClientId: cl.id, UserId: "dave"})
		c.wantErr(t, "Disconnect of client and user", err, inv, badReq)
		// None of the refused calls touched the session.
		if d := queueDepth(t, ctx, c, cl.id); d != 0 {
			t.Errorf("refused deliveries queued %d messages", d)
		}

		for _, tok := range []string{"!!!", "not base64?", "%%"} {
			_, err = c.ListChannels(ctx, &gatewayv1.ListChannelsRequest{PageToken: tok})
			c.wantErr(t, fmt.Sprintf("ListChannels page_token %q", tok), err, inv, badReq)
			_, err = c.ListSessions(ctx, &gatewayv1.ListSessionsRequest{PageToken: tok})
			c.wantErr(t, fmt.Sprintf("ListSessions page_token %q", tok), err, inv, badReq)
		}
		_, err = c.ListChannels(ctx, &gatewayv1.ListChannelsRequest{PageSize: -1})
		c.wantErr(t, "ListChannels page_size -1", err, inv, badReq)
		_, err = c.ListSessions(ctx, &gatewayv1.ListSessionsRequest{PageSize: -1})
		c.wantErr(t, "ListSessions page_size -1", err, inv, badReq)
		_, err = c.ListChannels(ctx, &gatewayv1.ListChannelsRequest{Pattern: "nochannel"})
		c.wantErr(t, "ListChannels bad pattern", err, inv, badReq)
		_, err = c.GetSession(ctx, &gatewayv1.GetSessionRequest{ClientId: "nosuchclient"})
		c.wantErr(t, "GetSession unknown", err, nf, notFound)

		// The gRPC message limit (api.maxDataBytes + 16 KiB).
		if !c.rest {
			_, err = c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/ok", DataJson: bytes.Repeat([]byte("1"), maxData+20<<10)})
			c.wantErr(t, "Publish over the gRPC message limit", err, codes.ResourceExhausted, 0)
		}
	})
}

// TestRESTBodies checks what only REST has: the request body limit,
// malformed JSON, and unknown fields.
func TestRESTBodies(t *testing.T) {
	ctx := testCtx(t)
	srv := startGateway(t, func(c *config.Config) { c.API.MaxDataBytes = maxData })
	rc := newREST("http://"+apiAddr(t, srv), nil, "")
	cl := newLP(t, ctx, srv)
	cl.subscribe(t, ctx, "/ok")

	tooBig := []byte(`{"channel":"/ok","data":"` + strings.Repeat("x", maxData+17<<10) + `"}`)
	cases := []struct {
		what, method, path string
		body               []byte
		status             int
	}{
		{"body over the request limit", "POST", "/v1/publish", tooBig, http.StatusRequestEntityTooLarge},
		{"deliver body over the request limit", "POST", "/v1/clients/" + cl.id + ":deliver", tooBig, http.StatusRequestEntityTooLarge},
		{"data over api.maxDataBytes", "POST", "/v1/publish", []byte(`{"channel":"/ok","data":"` + strings.Repeat("x", maxData) + `"}`), http.StatusBadRequest},
		{"data and dataJson", "POST", "/v1/publish", []byte(`{"channel":"/ok","data":1,"dataJson":"Mg=="}`), http.StatusBadRequest},
		{"malformed JSON", "POST", "/v1/publish", []byte(`{"channel":`), http.StatusBadRequest},
		{"unknown field", "POST", "/v1/publish", []byte(`{"channel":"/ok","nope":1}`), http.StatusBadRequest},
		{"wildcard channel", "POST", "/v1/publish", []byte(`{"channel":"/ok/*","data":1}`), http.StatusBadRequest},
		{"service channel", "POST", "/v1/publish", []byte(`{"channel":"/service/x","data":1}`), http.StatusBadRequest},
		{"both ids", "POST", "/v1/clients/" + cl.id + ":deliver", []byte(`{"userId":"u","channel":"/x"}`), http.StatusBadRequest},
		{"bad page token", "GET", "/v1/channels?pageToken=!!!", nil, http.StatusBadRequest},
		{"bad page token (proto name)", "GET", "/v1/sessions?page_token=!!!", nil, http.StatusBadRequest},
		{"unknown session", "GET", "/v1/sessions/nosuchsession", nil, http.StatusNotFound},
	}
	for _, tc := range cases {
		code, _, body, err := rc.do(ctx, tc.method, tc.path, tc.body)
		if err != nil {
			t.Errorf("%s: %v", tc.what, err)
			continue
		}
		if code != tc.status {
			t.Errorf("%s: HTTP %d, want %d: %s", tc.what, code, tc.status, body)
			continue
		}
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Code == 0 || e.Message == "" {
			t.Errorf("%s: error body %q is not a status JSON", tc.what, body)
		}
	}
	// None of it reached the subscriber; a good publish does.
	if d := queueDepth(t, ctx, apiConn{name: "REST", rest: true, GatewayClient: rc}, cl.id); d != 0 {
		t.Errorf("refused requests queued %d messages", d)
	}
	code, _, body, err := rc.do(ctx, "POST", "/v1/publish", []byte(`{"channel":"/ok","data":{"a":[1]},"ext":{"e":true}}`))
	if err != nil || code != http.StatusOK {
		t.Fatalf("good publish: %d %s %v", code, body, err)
	}
	checkEvent(t, "subscriber", cl.receive(t, ctx, "/ok"), "/ok", `{"a":[1]}`, `{"e":true}`)
}

// TestRESTNeitherID checks the REST routes with an empty id: no route
// matches, so they answer 404 and nothing is disconnected (gRPC callers get
// InvalidArgument for neither id, see TestBadInput).
func TestRESTNeitherID(t *testing.T) {
	ctx := testCtx(t)
	srv := startGateway(t, nil)
	rc := newREST("http://"+apiAddr(t, srv), nil, "")
	newLP(t, ctx, srv)
	for _, p := range []string{"/v1/clients/:deliver", "/v1/users/:deliver", "/v1/clients/:disconnect", "/v1/users/:disconnect"} {
		code, _, body, err := rc.do(ctx, "POST", p, []byte(`{"channel":"/x"}`))
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusNotFound {
			t.Errorf("POST %s: HTTP %d, want 404 (no route): %s", p, code, body)
		}
	}
	if n := srv.Engine().SessionCount(); n != 1 {
		t.Errorf("%d sessions left, want 1", n)
	}
}

// ---------------------------------------------------------------------------
// Publish handlers apply to API publishes

func TestPublishHandlers(t *testing.T) {
	bothAPIs(t, nil, func(t *testing.T, ctx context.Context, srv *gateway.Server, c apiConn) {
		sessions := make(chan *engine.Session, 16)
		err := srv.Engine().HandlePublish("/guarded/**", func(_ context.Context, s *engine.Session, m *bayeux.Message) error {
			sessions <- s
			switch {
			case strings.HasSuffix(m.Channel, "/deny"):
				return &bayeux.Error{Code: 403, Message: "guarded"}
			case strings.HasSuffix(m.Channel, "/veto"):
				return errors.New("vetoed")
			case strings.HasSuffix(m.Channel, "/rewrite"):
				m.Data = json.RawMessage(`{"rewritten":true,"was":` + string(m.Data) + `}`)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ran := func(what string) *engine.Session {
			t.Helper()
			select {
			case s := <-sessions:
				return s
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: the publish handler did not run", what)
				return nil
			}
		}
		sub := newLP(t, ctx, srv)
		sub.subscribe(t, ctx, "/guarded/**")

		_, err = c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/guarded/deny", Data: mustValue(t, 1)})
		c.wantErr(t, "Publish refused by a handler", err, codes.PermissionDenied, http.StatusForbidden)
		if s := ran("API publish on /guarded/deny"); s != nil {
			t.Errorf("handler saw session %s for an API publish, want nil", s.ID())
		}
		_, err = c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/guarded/veto", Data: mustValue(t, 1)})
		c.wantErr(t, "Publish vetoed by a handler", err, codes.FailedPrecondition, http.StatusBadRequest)
		ran("API publish on /guarded/veto")
		if d := queueDepth(t, ctx, c, sub.id); d != 0 {
			t.Errorf("refused publishes queued %d messages", d)
		}

		// A client's publish gets the same answer.
		if r := sub.publish(t, ctx, "/guarded/deny", 1); r.ok() || !strings.HasPrefix(r.str("error"), "403") {
			t.Errorf("client publish: %s, want 403", dump(r))
		}
		if s := ran("client publish on /guarded/deny"); s == nil || s.ID() != sub.id {
			t.Errorf("handler saw session %v for a client publish, want %s", s, sub.id)
		}

		resp, err := c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/guarded/rewrite", DataJson: []byte(`{"orig":1}`)})
		if err != nil {
			t.Fatalf("Publish rewritten: %v", err)
		}
		ran("API publish on /guarded/rewrite")
		if resp.GetSubscribers() != 1 {
			t.Errorf("subscribers %d, want 1", resp.GetSubscribers())
		}
		checkEvent(t, "subscriber", sub.receive(t, ctx, "/guarded/rewrite"), "/guarded/rewrite", `{"rewritten":true,"was":{"orig":1}}`, "")

		// Channels outside the pattern are not handled.
		if _, err := c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/free/deny", Data: mustValue(t, 1)}); err != nil {
			t.Errorf("Publish outside the handler's pattern: %v", err)
		}
		select {
		case <-sessions:
			t.Error("handler ran for /free/deny")
		default:
		}
	})
}

// TestPublishPolicy checks that the engine's security policy is applied to
// API publishes too.
func TestPublishPolicy(t *testing.T) {
	ctx := testCtx(t)
	cfg := config.Default()
	cfg.Listen, cfg.API.Listen = "127.0.0.1:0", "127.0.0.1:0"
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)), gateway.WithEngineOptions(engine.WithPolicy(denyPolicy{})))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	addr := apiAddr(t, srv)
	for _, c := range []apiConn{
		{name: "gRPC", GatewayClient: grpcClient(t, addr)},
		{name: "REST", rest: true, GatewayClient: newREST("http://"+addr, nil, "")},
	} {
		_, err = c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/closed/x", Data: mustValue(t, 1)})
		c.wantErr(t, "Publish denied by the policy", err, codes.PermissionDenied, http.StatusForbidden)
		if _, err := c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/open/x", Data: mustValue(t, 1)}); err != nil {
			t.Errorf("%s Publish allowed by the policy: %v", c.name, err)
		}
	}
}

// denyPolicy refuses to create or publish on /closed/**.
type denyPolicy struct{ engine.DefaultPolicy }

func (denyPolicy) CanPublish(_ context.Context, _ *engine.Session, ch string, _ *bayeux.Message) error {
	if strings.HasPrefix(ch, "/closed/") {
		return errors.New("closed")
	}
	return nil
}

// ---------------------------------------------------------------------------
// api.listen: public

func TestAPIOnPublicListener(t *testing.T) {
	ctx := testCtx(t)
	srv := startGateway(t, func(c *config.Config) { c.API.Listen = "public"; c.API.Tokens = []string{testToken} })
	if a := srv.APIAddr(); a != nil {
		t.Errorf("APIAddr() = %v with api.listen public, want nil", a)
	}
	addr := srv.Addr().String()
	sub := newLP(t, ctx, srv) // Bayeux still served on the same port
	sub.subscribe(t, ctx, "/pub/x")

	rest := apiConn{name: "REST", rest: true, GatewayClient: newREST("http://"+addr, nil, testToken)}
	grpcC := apiConn{name: "gRPC", GatewayClient: grpcClient(t, addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(tokenCreds(testToken)))}
	for i, c := range []apiConn{rest, grpcC} {
		st, err := c.Stats(ctx, &gatewayv1.StatsRequest{})
		if err != nil {
			t.Fatalf("%s Stats on the public listener: %v", c.name, err)
		}
		if st.GetSessions() != 1 {
			t.Errorf("%s: sessions %d, want 1", c.name, st.GetSessions())
		}
		resp, err := c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/pub/x", Data: mustValue(t, float64(i))})
		if err != nil || resp.GetSubscribers() != 1 {
			t.Fatalf("%s Publish on the public listener: %v, %v", c.name, resp, err)
		}
		checkEvent(t, c.name, sub.receive(t, ctx, "/pub/x"), "/pub/x", fmt.Sprint(i), "")
		s, err := c.GetSession(ctx, &gatewayv1.GetSessionRequest{ClientId: sub.id})
		if err != nil || s.GetClientId() != sub.id {
			t.Errorf("%s GetSession: %v, %v", c.name, s, err)
		}
	}
	// Tokens still apply there.
	noTok := apiConn{name: "REST", rest: true, GatewayClient: newREST("http://"+addr, nil, "")}
	_, err := noTok.Stats(ctx, &gatewayv1.StatsRequest{})
	noTok.wantErr(t, "Stats without a token on the public listener", err, codes.Unauthenticated, http.StatusUnauthorized)
	noTokG := apiConn{name: "gRPC", GatewayClient: grpcClient(t, addr)}
	_, err = noTokG.Stats(ctx, &gatewayv1.StatsRequest{})
	noTokG.wantErr(t, "Stats without a token on the public listener", err, codes.Unauthenticated, 0)
	code, _, _, err := rest.GatewayClient.(*restClient).do(ctx, http.MethodGet, "/v1/openapi.json", nil)
	if err != nil || code != http.StatusOK {
		t.Errorf("openapi.json on the public listener: %d %v", code, err)
	}
}

// TestAPIOff checks api.listen: off serves nothing.
func TestAPIOff(t *testing.T) {
	ctx := testCtx(t)
	srv := startGateway(t, func(c *config.Config) { c.API.Listen = "off" })
	if a := srv.APIAddr(); a != nil {
		t.Errorf("APIAddr() = %v with api.listen off", a)
	}
	rc := newREST("http://"+srv.Addr().String(), nil, "")
	code, _, _, err := rc.do(ctx, http.MethodGet, "/v1/stats", nil)
	if err != nil {
		t.Fatal(err)
	}
	if code == http.StatusOK {
		t.Error("GET /v1/stats on the public listener answered 200 with api.listen off")
	}
}
