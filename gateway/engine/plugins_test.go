package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/cometgate/cometgate/internal/poll"
	"github.com/cometgate/cometgate/plugins"
	"go.yaml.in/yaml/v3"
)

// markFilter appends its tag to data, a JSON array.
type markFilter struct {
	Tag     string `yaml:"tag"`
	cleaned *atomic.Int32
}

func (f *markFilter) Provision(ctx *plugins.Context) error {
	v, err := ctx.Shared.Get("cleanups", func() (any, error) { return new(atomic.Int32), nil })
	f.cleaned = v.(*atomic.Int32)
	return err
}

func (f *markFilter) Cleanup() error { f.cleaned.Add(1); return nil }

func (f *markFilter) Filter(_ context.Context, m *plugins.Message) error {
	d := strings.TrimSpace(string(m.Data))
	if !strings.HasPrefix(d, "[") {
		return plugins.Reject("not_an_array")
	}
	sep := ","
	if d == "[]" {
		sep = ""
	}
	m.Data = json.RawMessage(d[:len(d)-1] + sep + `"` + f.Tag + `"]`)
	return nil
}

// denyFilter rejects messages for (outbound) or from (inbound) User, or
// every message when User is empty.
type denyFilter struct {
	User   string `yaml:"user"`
	Reason string `yaml:"reason"`
	Code   int    `yaml:"code"`
}

func (f *denyFilter) Filter(_ context.Context, m *plugins.Message) error {
	if f.User == "" || m.Client.User == f.User {
		return plugins.RejectCode(f.Code, f.Reason)
	}
	return nil
}

// brokenFilter fails in the way its Mode says.
type brokenFilter struct {
	Mode string `yaml:"mode"`
}

func (f *brokenFilter) Filter(_ context.Context, m *plugins.Message) error {
	switch f.Mode {
	case "panic":
		panic("broken filter")
	case "badjson":
		m.Data = json.RawMessage(`{"x":`)
	case "badutf8":
		m.Data = json.RawMessage("\"\xff\"")
	case "extarray":
		m.Ext = json.RawMessage(`[1]`)
	default:
		return errors.New("broken")
	}
	return nil
}

// rolePolicy lets only users with Role publish on Channel.
type rolePolicy struct {
	Channel string `yaml:"channel"`
	Role    string `yaml:"role"`
}

func (p *rolePolicy) Authorize(_ context.Context, r *plugins.Request) error {
	if r.Op != plugins.OpPublish || !bayeux.Match(p.Channel, r.Channel) {
		return nil
	}
	for _, role := range r.Client.Roles {
		if role == p.Role {
			return nil
		}
	}
	return roleDenial(p.Role)
}

// roleDenial denies for want of a role, with a reason as authorizers do.
type roleDenial string

func (r roleDenial) Error() string      { return "needs role " + string(r) }
func (r roleDenial) Unwrap() error      { return plugins.ErrDenied }
func (r roleDenial) DenyReason() string { return "needs_" + string(r) }

// tokenAuth reads ext.token "user:role1,role2[:expiresInMs]".
type tokenAuth struct{}

func (tokenAuth) Authenticate(_ context.Context, r *plugins.Request) (*plugins.Identity, error) {
	var ext struct {
		Token string `json:"token"`
	}
	json.Unmarshal(r.Ext, &ext)
	if ext.Token == "" {
		return nil, plugins.ErrNoCredentials
	}
	if ext.Token == "bad" {
		return nil, plugins.Reject("invalid_token")
	}
	if ext.Token == "down" {
		return nil, errors.New("key server unreachable")
	}
	parts := strings.Split(ext.Token, ":")
	id := &plugins.Identity{User: parts[0]}
	if len(parts) > 1 && parts[1] != "" {
		id.Roles = strings.Split(parts[1], ",")
	}
	if len(parts) > 2 {
		var ms int
		fmt.Sscan(parts[2], &ms)
		id.Expires = time.Now().Add(time.Duration(ms) * time.Millisecond)
	}
	return id, nil
}

// recordListener records events as lines.
type recordListener struct {
	events chan string
}

func (l *recordListener) Provision(ctx *plugins.Context) error {
	v, err := ctx.Shared.Get("events", func() (any, error) { return make(chan string, 100), nil })
	l.events = v.(chan string)
	return err
}
func (l *recordListener) SessionAdded(c plugins.Client) { l.events <- "added " + c.User }
func (l *recordListener) SessionRemoved(c plugins.Client, why string) {
	l.events <- "removed " + c.User + " " + why
}
func (l *recordListener) Subscribed(c plugins.Client, ch string, n int) {
	l.events <- fmt.Sprintf("subscribed %s %s %d", c.User, ch, n)
}
func (l *recordListener) Unsubscribed(c plugins.Client, ch string, n int) {
	l.events <- fmt.Sprintf("unsubscribed %s %s %d", c.User, ch, n)
}
func (l *recordListener) QueueMaxed(c plugins.Client, n int) {
	l.events <- fmt.Sprintf("queuemaxed %s %d", c.User, n)
}

func testRegistry() *plugins.Registry {
	r := plugins.NewRegistry()
	r.MustRegister(plugins.ModuleInfo{Kind: plugins.KindFilter, Name: "mark", New: func() any { return new(markFilter) }})
	r.MustRegister(plugins.ModuleInfo{Kind: plugins.KindFilter, Name: "deny", New: func() any { return new(denyFilter) }})
	r.MustRegister(plugins.ModuleInfo{Kind: plugins.KindFilter, Name: "broken", New: func() any { return new(brokenFilter) }})
	r.MustRegister(plugins.ModuleInfo{Kind: plugins.KindPolicy, Name: "role", New: func() any { return new(rolePolicy) }})
	r.MustRegister(plugins.ModuleInfo{Kind: plugins.KindAuthenticator, Name: "token", New: func() any { return new(tokenAuth) }})
	r.MustRegister(plugins.ModuleInfo{Kind: plugins.KindListener, Name: "record", New: func() any { return new(recordListener) }})
	return r
}

// loadSet loads a plugins section written in YAML.
func loadSet(t testing.TB, shared *plugins.Shared, doc string) *plugins.Set {
	t.Helper()
	var cfg config.PluginsConfig
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	set, err := plugins.Load(&plugins.Context{Context: context.Background(), Shared: shared}, testRegistry(), cfg, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return set
}

// subscribe subscribes s (of client c) to channel and checks the reply.
func subscribe(t testing.TB, e *engine.Engine, c *engine.Client, s *engine.Session, channel string) *bayeux.Message {
	t.Helper()
	r, bt := send(t, e, c, `[{"channel":"/meta/subscribe","clientId":"`+s.ID()+`","subscription":"`+channel+`"}]`)
	bt.End()
	return r[0]
}

func publish(t testing.TB, e *engine.Engine, c *engine.Client, s *engine.Session, channel, data string) *bayeux.Message {
	t.Helper()
	r, bt := send(t, e, c, `[{"id":"1","channel":"`+channel+`","clientId":"`+s.ID()+`","data":`+data+`}]`)
	bt.End()
	return r[0]
}

func TestInboundFiltersEveryPublisher(t *testing.T) {
	e := newEngine(t, engine.Config{})
	shared := new(plugins.Shared)
	e.SetPlugins(loadSet(t, shared, `
filters:
  - channels: [/chat/**]
    inbound:
      - {module: mark, tag: a}
      - {module: mark, tag: b}
  - channels: [/chat/room]
    inbound:
      - {module: mark, tag: c}
  - channels: [/other]
    inbound:
      - {module: deny, reason: closed}
`))
	c := lpClient("A")
	s := handshake(t, e, c, "")
	if r := subscribe(t, e, c, s, "/**"); !r.Successful {
		t.Fatalf("subscribe: %s", r)
	}
	// A client's publish: chains of /chat/** then /chat/room, each in order.
	if r := publish(t, e, c, s, "/chat/room", `[]`); !r.Successful {
		t.Fatalf("publish: %s", r)
	}
	// The control API's, and a backend stream's.
	if _, err := e.PublishChecked(context.Background(), &bayeux.Message{Channel: "/chat/x", Data: json.RawMessage(`["api"]`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Publish("/chat/y/z", json.RawMessage(`["backend"]`), nil); err != nil {
		t.Fatal(err)
	}
	// A channel no chain matches passes untouched.
	e.Publish("/plain", json.RawMessage(`[]`), nil)
	got := strings.Join(events(s), "\n")
	want := strings.Join([]string{
		`{"channel":"/chat/room","data":["a","b","c"]}`,
		`{"channel":"/chat/x","data":["api","a","b"]}`,
		`{"channel":"/chat/y/z","data":["backend","a","b"]}`,
		`{"channel":"/plain","data":[]}`,
	}, "\n")
	if got != want {
		t.Errorf("delivered:\n%s\nwant:\n%s", got, want)
	}
	// Rejections reach the publisher and nobody else.
	r := publish(t, e, c, s, "/other", `1`)
	if r.Successful || r.Error != "403::closed" {
		t.Errorf("rejected publish reply = %s; want error 403::closed", r)
	}
	if _, err := e.PublishChecked(context.Background(), &bayeux.Message{Channel: "/other", Data: json.RawMessage(`1`)}); err == nil || err.Error() != "403::closed" {
		t.Errorf("API publish error = %v; want 403::closed", err)
	}
	if n, err := e.Publish("/other", json.RawMessage(`1`), nil); n != 0 || err == nil {
		t.Errorf("backend publish = %d, %v; want refused", n, err)
	}
	if ev := events(s); len(ev) != 0 {
		t.Errorf("rejected messages delivered: %v", ev)
	}
	// Rejecting a filter's own input: data not an array.
	if r := publish(t, e, c, s, "/chat/room", `{}`); r.Successful || r.Error != "403::not_an_array" {
		t.Errorf("reply = %s; want 403::not_an_array", r)
	}
	if st := e.Stats(); st.FilteredIn.Load() != 4 {
		t.Errorf("FilteredIn = %d; want 4", st.FilteredIn.Load())
	}
}

func TestFilterFailuresAreRejections(t *testing.T) {
	for _, mode := range []string{"panic", "badjson", "badutf8", "extarray", "error"} {
		t.Run(mode, func(t *testing.T) {
			e := newEngine(t, engine.Config{})
			e.SetPlugins(loadSet(t, new(plugins.Shared), `
filters:
  - channels: [/x]
    inbound: [{module: broken, mode: `+mode+`}]
`))
			c := lpClient("A")
			s := handshake(t, e, c, "")
			subscribe(t, e, c, s, "/x")
			r := publish(t, e, c, s, "/x", `{"a":1}`)
			if r.Successful || r.Error != "500::filter_failed" {
				t.Errorf("reply = %s; want 500::filter_failed", r)
			}
			if ev := events(s); len(ev) != 0 {
				t.Errorf("delivered %v", ev)
			}
			// The session goes on.
			if r := publish(t, e, c, s, "/y", `1`); !r.Successful {
				t.Errorf("next publish: %s", r)
			}
		})
	}
}

func TestOutboundFiltersPerDelivery(t *testing.T) {
	e := newEngine(t, engine.Config{})
	e.SetPlugins(loadSet(t, new(plugins.Shared), `
filters:
  - channels: [/news/*]
    outbound:
      - {module: deny, user: bob, reason: hidden}
      - {module: mark, tag: seen}
`))
	users := map[string]*engine.Session{}
	clients := map[string]*engine.Client{}
	for _, u := range []string{"alice", "bob", "carol"} {
		c := lpClient(u)
		s := handshake(t, e, c, "")
		s.SetUser(u)
		subscribe(t, e, c, s, "/news/*")
		users[u], clients[u] = s, c
	}
	n, err := e.Publish("/news/today", json.RawMessage(`[]`), nil)
	if err != nil || n != 2 {
		t.Errorf("Publish = %d, %v; want 2 deliveries (bob's dropped)", n, err)
	}
	for u, want := range map[string]string{
		"alice": `{"channel":"/news/today","data":["seen"]}`,
		"bob":   ``,
		"carol": `{"channel":"/news/today","data":["seen"]}`,
	} {
		if got := strings.Join(events(users[u]), "|"); got != want {
			t.Errorf("%s got %q; want %q", u, got, want)
		}
	}
	// A narrowcast passes the outbound point too.
	users["bob"].DeliverData("/news/private", json.RawMessage(`[]`), "")
	users["alice"].DeliverData("/news/private", json.RawMessage(`[]`), "")
	if ev := events(users["bob"]); len(ev) != 0 {
		t.Errorf("bob got %v", ev)
	}
	if got := strings.Join(events(users["alice"]), "|"); got != `{"channel":"/news/private","data":["seen"]}` {
		t.Errorf("alice got %s", got)
	}
	if e.Stats().FilteredOut.Load() != 2 {
		t.Errorf("FilteredOut = %d; want 2", e.Stats().FilteredOut.Load())
	}
}

func TestPluginPolicyAndAuthenticator(t *testing.T) {
	var order []string
	backend := policyFunc(func(op string, s *engine.Session) error {
		order = append(order, op+" "+s.User())
		return nil
	})
	e := newEngine(t, engine.Config{}, engine.WithPolicy(backend))
	shared := new(plugins.Shared)
	e.SetPlugins(loadSet(t, shared, `
authenticators: [{module: token}]
policies: [{module: role, channel: /admin/**, role: admin}]
listeners: [{module: record}]
`))
	evs, _ := shared.Get("events", nil)
	events := evs.(chan string)
	hs := func(ext string) *bayeux.Message {
		r, bt := send(t, e, lpClient("A"), `[{"channel":"/meta/handshake","version":"1.0","ext":`+ext+`}]`)
		bt.End()
		return r[0]
	}
	for ext, want := range map[string]string{
		`{}`:                    "401::authentication_required",
		`{"token":"bad"}`:       "403::invalid_token",
		`{"token":"down"}`:      "503::authentication_unavailable",
		`{"token":"eve:"}`:      "",
		`{"token":"ann:admin"}`: "",
	} {
		r := hs(ext)
		if got := r.Error; got != want {
			t.Errorf("handshake %s: error %q; want %q", ext, got, want)
		}
	}
	if len(order) != 2 || order[0] != "handshake eve" && order[0] != "handshake ann" {
		t.Errorf("the WithPolicy policy saw %v; want two handshakes, after the authenticator bound the user", order)
	}
	var eve, ann *engine.Session
	for _, s := range e.Sessions() {
		switch s.User() {
		case "eve":
			eve = s
		case "ann":
			ann = s
		}
	}
	if eve == nil || ann == nil || len(ann.Roles()) != 1 || ann.Roles()[0] != "admin" {
		t.Fatalf("sessions not bound: eve %v ann %v", eve, ann)
	}
	c := lpClient("A")
	if r := publish(t, e, c, eve, "/admin/x", `1`); r.Successful || r.Error != "403:needs_admin:publish_denied" {
		t.Errorf("eve's publish: %s; want 403:needs_admin:publish_denied", r)
	}
	if r := publish(t, e, c, ann, "/admin/x", `1`); !r.Successful {
		t.Errorf("ann's publish: %s", r)
	}
	if r := publish(t, e, c, eve, "/public", `1`); !r.Successful {
		t.Errorf("eve's public publish: %s", r)
	}
	// The listener saw both sessions added; a subscription and a
	// disconnect are told too.
	subscribe(t, e, c, eve, "/public")
	r, bt := send(t, e, c, `[{"channel":"/meta/disconnect","clientId":"`+eve.ID()+`"}]`)
	bt.End()
	if !r[0].Successful {
		t.Fatal(r[0])
	}
	var got []string
	for len(events) > 0 {
		got = append(got, <-events)
	}
	want := []string{"added eve", "added ann", "subscribed eve /public 1", "unsubscribed eve /public 0", "removed eve disconnect"}
	if strings.Join(got, "|") != strings.Join(want, "|") && strings.Join(got, "|") != strings.Join(append([]string{"added ann", "added eve"}, want[2:]...), "|") {
		t.Errorf("listener events %v; want %v", got, want)
	}
}

func TestCredentialsExpiryEndsSession(t *testing.T) {
	e := newEngine(t, engine.Config{SweepPeriod: 5 * time.Millisecond})
	e.SetPlugins(loadSet(t, new(plugins.Shared), `authenticators: [{module: token}]`))
	r, bt := send(t, e, lpClient("A"), `[{"channel":"/meta/handshake","version":"1.0","ext":{"token":"tim::30"}}]`)
	bt.End()
	s := e.Session(r[0].ClientID)
	if s == nil {
		t.Fatalf("handshake: %s", r[0])
	}
	poll.Eventually(t, 10*time.Second, func() error {
		if e.Session(s.ID()) != nil {
			return errors.New("the session outlives its credentials")
		}
		return nil
	})
	if s.CloseReason() != engine.CloseServer {
		t.Errorf("close reason %v; want server", s.CloseReason())
	}
	if e.Stats().CredentialsExpired.Load() != 1 {
		t.Errorf("CredentialsExpired = %d", e.Stats().CredentialsExpired.Load())
	}
}

func TestSetPluginsSwapsAndRetires(t *testing.T) {
	e := newEngine(t, engine.Config{})
	shared := new(plugins.Shared)
	one := loadSet(t, shared, `filters: [{channels: [/x], inbound: [{module: mark, tag: one}]}]`)
	two := loadSet(t, shared, `filters: [{channels: [/x], inbound: [{module: mark, tag: two}]}]`)
	c := lpClient("A")
	s := handshake(t, e, c, "")
	subscribe(t, e, c, s, "/x")
	e.SetPlugins(one)
	e.Publish("/x", json.RawMessage(`[]`), nil)
	old := e.SetPlugins(two)
	if old != one {
		t.Fatal("SetPlugins did not return the previous set")
	}
	if err := old.Retire(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.Publish("/x", json.RawMessage(`[]`), nil)
	if got := strings.Join(events(s), "|"); got != `{"channel":"/x","data":["one"]}|{"channel":"/x","data":["two"]}` {
		t.Errorf("delivered %s", got)
	}
	v, _ := shared.Get("cleanups", nil)
	if n := v.(*atomic.Int32).Load(); n != 1 {
		t.Errorf("%d cleanups after retiring one set; want 1", n)
	}
	if e.Session(s.ID()) == nil {
		t.Error("session dropped by the swap")
	}
}

func TestLoadRefusesBadModules(t *testing.T) {
	for doc, want := range map[string]string{
		`filters: [{channels: [/x], inbound: [{module: mark, tag: a, colour: red}]}]`: "field colour not found",
		`filters: [{channels: [/x], inbound: [{module: nosuch}]}]`:                    `unknown filter module "nosuch"`,
		`filters: [{channels: [/x], inbound: [{tag: a}]}]`:                            `needs a "module" key`,
		`filters: [{inbound: [{module: mark}]}]`:                                      "at least one channel pattern",
		`filters: [{channels: ["x/"], inbound: [{module: mark}]}]`:                    "not a channel or pattern",
		`policies: [{module: mark}]`:                                                  `unknown policy module "mark"`,
	} {
		var cfg config.PluginsConfig
		if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
			t.Fatal(err)
		}
		shared := new(plugins.Shared)
		_, err := plugins.Load(&plugins.Context{Context: context.Background(), Shared: shared}, testRegistry(), cfg, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v; want one containing %q", doc, err, want)
		}
	}
}

// policyFunc is an engine.Policy that records and allows.
type policyFunc func(op string, s *engine.Session) error

func (f policyFunc) CanHandshake(_ context.Context, s *engine.Session, _ *bayeux.Message) error {
	return f("handshake", s)
}
func (f policyFunc) CanCreate(context.Context, *engine.Session, string, *bayeux.Message) error {
	return nil
}
func (f policyFunc) CanSubscribe(context.Context, *engine.Session, string, *bayeux.Message) error {
	return nil
}
func (f policyFunc) CanPublish(context.Context, *engine.Session, string, *bayeux.Message) error {
	return nil
}

// benchSubscribers makes n push sessions subscribed to channel.
func benchSubscribers(b *testing.B, e *engine.Engine, n int, channel string) []*engine.Session {
	sessions := make([]*engine.Session, n)
	for i := range sessions {
		c := &engine.Client{Transport: "websocket", Push: true, Conn: nopConn{}}
		msgs, _ := bayeux.Decode([]byte(`[{"channel":"/meta/handshake"}]`), 0)
		bt := e.Process(context.Background(), c, msgs)
		bt.End()
		s := bt.Exchanges[0].Session
		msgs, _ = bayeux.Decode([]byte(`[{"channel":"/meta/subscribe","clientId":"`+s.ID()+`","subscription":"`+channel+`"}]`), 0)
		e.Process(context.Background(), c, msgs).End()
		sessions[i] = s
	}
	return sessions
}

// BenchmarkInboundEmptyChain is a publish to a channel no chain matches
// while chains exist for others: the cost of looking (ns/op over
// BenchmarkInboundNoPlugins) and its allocations (none more).
func BenchmarkInboundEmptyChain(b *testing.B) {
	e := engine.New(engine.Config{})
	e.SetPlugins(loadSet(b, new(plugins.Shared), `filters: [{channels: [/chat/**, /news/*], inbound: [{module: mark, tag: a}], outbound: [{module: mark, tag: b}]}]`))
	benchInboundNoSubscribers(b, e)
}

// BenchmarkInboundNoPlugins is BenchmarkInboundEmptyChain's baseline.
func BenchmarkInboundNoPlugins(b *testing.B) {
	benchInboundNoSubscribers(b, engine.New(engine.Config{}))
}

func benchInboundNoSubscribers(b *testing.B, e *engine.Engine) {
	data := json.RawMessage(`{"user":"alice","chat":"hello, world","ts":1732512345678}`)
	b.ReportAllocs()
	for b.Loop() {
		e.Publish("/stocks/acme", data, nil)
	}
}

// BenchmarkRouteLookup is the lookup alone: a channel without filters,
// while chains exist for others.
func BenchmarkRouteLookup(b *testing.B) {
	set := loadSet(b, new(plugins.Shared), `filters: [{channels: [/chat/**, /news/*], inbound: [{module: mark, tag: a}]}]`)
	b.ReportAllocs()
	for b.Loop() {
		if set.Route("/stocks/acme") != nil {
			b.Fatal("matched")
		}
	}
}

// BenchmarkFanoutPlugins publishes to 1,000 subscribers of a channel with
// the chains named, and drains every queue: allocs/op is per message.
func BenchmarkFanoutPlugins(b *testing.B) {
	for _, bc := range []struct{ name, doc string }{
		{"none", ``},
		{"otherChannels", `filters: [{channels: [/chat/**], inbound: [{module: mark, tag: a}], outbound: [{module: mark, tag: b}]}]`},
		{"inboundGo", `filters: [{channels: [/bench/**], inbound: [{module: mark, tag: a}]}]`},
		{"outboundGo", `filters: [{channels: [/bench/**], outbound: [{module: mark, tag: b}]}]`},
		{"outboundGoPass", `filters: [{channels: [/bench/**], outbound: [{module: deny, user: nobody}]}]`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := engine.New(engine.Config{MaxQueue: 1 << 20, MaxQueueBytes: 1 << 30})
			if bc.doc != "" {
				e.SetPlugins(loadSet(b, new(plugins.Shared), bc.doc))
			}
			const n = 1000
			sessions := benchSubscribers(b, e, n, "/bench/room")
			data := json.RawMessage(`["alice","hello, world",1732512345678]`)
			drain := make([][]byte, 0, 16)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.Publish("/bench/room", data, nil)
				for _, s := range sessions {
					drain, _ = s.Pull(drain[:0], 0, 1<<20)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
		})
	}
}

func TestQueueMaxedListener(t *testing.T) {
	e := newEngine(t, engine.Config{MaxQueue: 2})
	shared := new(plugins.Shared)
	e.SetPlugins(loadSet(t, shared, `listeners: [{module: record}]`))
	evs, _ := shared.Get("events", nil)
	events := evs.(chan string)
	var engineSaw []int
	e.OnQueueMaxed(func(_ *engine.Session, n int) { engineSaw = append(engineSaw, n) })
	c := lpClient("A")
	s := handshake(t, e, c, "")
	s.SetUser("sam")
	subscribe(t, e, c, s, "/q")
	for range 3 {
		e.Publish("/q", json.RawMessage(`1`), nil)
	}
	var got []string
	for len(events) > 0 {
		got = append(got, <-events)
	}
	want := "added |subscribed sam /q 1|queuemaxed sam 2|unsubscribed sam /q 0|removed sam slow"
	if strings.Join(got, "|") != want {
		t.Errorf("listener events %q; want %q", strings.Join(got, "|"), want)
	}
	if len(engineSaw) != 1 || engineSaw[0] != 2 {
		t.Errorf("OnQueueMaxed saw %v; want [2]", engineSaw)
	}
}

// BenchmarkRouteLookupSharedSegment looks up a channel without filters
// whose first segment a filter pattern shares (the cached map lookup).
func BenchmarkRouteLookupSharedSegment(b *testing.B) {
	set := loadSet(b, new(plugins.Shared), `filters: [{channels: [/chat/private/**, /news/*], inbound: [{module: mark, tag: a}]}]`)
	b.ReportAllocs()
	for b.Loop() {
		if set.Route("/chat/lobby") != nil {
			b.Fatal("matched")
		}
	}
}
