package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
	"github.com/cometgate/cometgate/plugins"
	"github.com/cometgate/cometgate/plugins/standard"
	dto "github.com/prometheus/client_model/go"
)

// tagFilter sets data.tag to its Tag.
type tagFilter struct {
	Tag string `yaml:"tag"`
}

func (f *tagFilter) Filter(_ context.Context, m *plugins.Message) error {
	var d map[string]any
	if err := json.Unmarshal(m.Data, &d); err != nil {
		return plugins.Reject("not_an_object")
	}
	if d["block"] == true {
		return plugins.Reject("blocked")
	}
	d["tag"] = f.Tag
	b, err := json.Marshal(d)
	m.Data = b
	return err
}

// withTagFilter is the built-in modules and tagFilter.
func withTagFilter() gateway.Option {
	r := standard.Registry()
	r.MustRegister(plugins.ModuleInfo{Kind: plugins.KindFilter, Name: "tag", New: func() any { return new(tagFilter) }})
	return gateway.WithRegistry(r)
}

func startWithPlugins(t *testing.T, yaml string) (*gateway.Server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	writeFile(t, path, yaml)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.DiscardHandler)), gateway.WithConfigFile(path), withTagFilter())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(gatewaytest.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), gatewaytest.DefaultTimeout)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, path
}

func tagPlugins(tag string) string {
	return fmt.Sprintf("plugins:\n  filters:\n    - channels: [/chat/**]\n      inbound:\n        - {module: tag, tag: %s}\n", tag)
}

// filterCount reads cometgate_filter_messages_total for a filter.
func filterCount(t *testing.T, srv *gateway.Server, filter, direction, outcome string) float64 {
	t.Helper()
	mfs, err := srv.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "cometgate_filter_messages_total" {
			continue
		}
		for _, m := range mf.Metric {
			if labels(m) == "direction="+direction+",filter="+filter+",outcome="+outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.Label {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

// A client's publish and a long-polling client's pass the configured
// filter; reloads replace it while a websocket session and a held long
// poll stay; a file with a broken plugin is refused and the running
// filters keep working; outcomes are counted in /metrics.
func TestPluginsFromConfigAndReload(t *testing.T) {
	srv, path := startWithPlugins(t, fileConfig(tagPlugins("v1")))
	ctx := gatewaytest.Context(t)
	ws, _, err := gatewaytest.DialWebSocket(ctx, "ws"+strings.TrimPrefix(bayeuxURL(srv), "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for _, m := range []struct {
		channel string
		fields  M
	}{
		{"/meta/handshake", nil},
		{"/meta/subscribe", M{"subscription": "/chat/room"}},
		{"/meta/connect", M{"connectionType": "websocket"}},
	} {
		var r M
		var err error
		if m.channel == "/meta/handshake" {
			r, _, err = ws.Handshake(gatewaytest.DefaultTimeout, nil)
		} else {
			r, _, err = ws.Call(gatewaytest.DefaultTimeout, m.channel, m.fields)
		}
		if err != nil || !r.Successful() {
			t.Fatalf("%s: %v, %v", m.channel, r, err)
		}
	}
	if err := ws.Send(ws.NewMessage("/meta/connect", M{"connectionType": "websocket"})); err != nil {
		t.Fatal(err)
	}
	expect := func(tag string) {
		t.Helper()
		if _, err := ws.ReadUntil(gatewaytest.DefaultTimeout, func(m M) bool {
			return m.Channel() == "/chat/room" && m.Obj("data").Str("tag") == tag
		}); err != nil {
			t.Fatalf("no message tagged %s: %v", tag, err)
		}
	}
	lp, held := heldLongPoll(t, ctx, srv, ws)
	if r, _, err := lp.Publish(ctx, "/chat/room", M{"text": "hi"}, nil); err != nil || !r.Successful() {
		t.Fatalf("publish: %v, %v", r, err)
	}
	expect("v1")
	r, _, err := lp.Publish(ctx, "/chat/room", M{"block": true}, nil)
	if err != nil || r.Successful() || r.Str("error") != "403::blocked" {
		t.Errorf("blocked publish reply = %v, %v; want error 403::blocked", r, err)
	}

	writeFile(t, path, fileConfig(tagPlugins("v2")))
	if _, err := srv.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	srv.Engine().Publish("/chat/room", json.RawMessage(`{"text":"from a backend"}`), nil)
	expect("v2")

	writeFile(t, path, fileConfig("plugins:\n  filters:\n    - channels: [/chat/**]\n      inbound:\n        - {module: tag, tga: v3}\n"))
	if _, err := srv.Reload(ctx); err == nil || !strings.Contains(err.Error(), "field tga not found") {
		t.Errorf("Reload of a misspelt option = %v; want it refused, naming the field", err)
	}
	srv.Engine().Publish("/chat/room", json.RawMessage(`{}`), nil)
	expect("v2")

	heldAnswered(t, ctx, srv, held)
	if srv.Engine().Session(ws.ClientID) == nil || srv.Engine().Session(lp.ClientID) == nil {
		t.Error("a session was dropped by a reload")
	}
	if got := filterCount(t, srv, "tag", "inbound", "rewritten"); got != 3 {
		t.Errorf("rewritten count = %v; want 3", got)
	}
	if got := filterCount(t, srv, "tag", "inbound", "rejected"); got != 1 {
		t.Errorf("rejected count = %v; want 1", got)
	}
}

// Reloads while messages are published lose none: each is delivered once,
// in order, through one configuration or the next.
func TestPluginReloadUnderLoad(t *testing.T) {
	srv, path := startWithPlugins(t, fileConfig(tagPlugins("r0")))
	ctx := gatewaytest.Context(t)
	lp := gatewaytest.NewClient(bayeuxURL(srv), nil)
	if r, _, err := lp.Handshake(ctx, nil); err != nil || !r.Successful() {
		t.Fatalf("handshake: %v, %v", r, err)
	}
	if r, _, err := lp.Subscribe(ctx, "/chat/load"); err != nil || !r.Successful() {
		t.Fatalf("subscribe: %v, %v", r, err)
	}
	const messages, reloads = 400, 20
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range messages {
			if _, err := srv.Engine().Publish("/chat/load", json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), nil); err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
		}
	}()
	for i := 1; i <= reloads; i++ {
		writeFile(t, path, fileConfig(tagPlugins(fmt.Sprintf("r%d", i))))
		if _, err := srv.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	var got []M
	for len(got) < messages {
		_, msgs, err := lp.Connect(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, gatewaytest.Events(msgs)...)
	}
	for i, m := range got {
		d := m.Obj("data")
		if n, ok := d["n"].(float64); !ok || int(n) != i || !strings.HasPrefix(d.Str("tag"), "r") {
			t.Fatalf("message %d = %v; want n=%d, tagged", i, m, i)
		}
	}
	if len(got) != messages {
		t.Errorf("got %d messages; want %d", len(got), messages)
	}
}

// The built-in ratelimit filter, configured from a file, limits one
// session's publishes with 429::rate_limited; its figures reach /metrics.
func TestRateLimitFilterEndToEnd(t *testing.T) {
	srv, _ := startWithPlugins(t, fileConfig("plugins:\n  filters:\n    - channels: [/chat/**]\n      inbound:\n        - {module: ratelimit, rate: 0.001, burst: 2, per: session}\n"))
	ctx := gatewaytest.Context(t)
	var codes []string
	for _, name := range []string{"a", "b"} {
		c := gatewaytest.NewClient(bayeuxURL(srv), nil)
		if r, _, err := c.Handshake(ctx, nil); err != nil || !r.Successful() {
			t.Fatalf("%s handshake: %v, %v", name, r, err)
		}
		for range 3 {
			r, _, err := c.Publish(ctx, "/chat/room", M{"text": "hi"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			codes = append(codes, r.Str("error"))
		}
	}
	want := []string{"", "", "429::rate_limited", "", "", "429::rate_limited"}
	if strings.Join(codes, ",") != strings.Join(want, ",") {
		t.Errorf("publish errors %q; want %q (two per session, each session its own bucket)", codes, want)
	}
	if got := filterCount(t, srv, "ratelimit", "inbound", "rejected"); got != 2 {
		t.Errorf("rejected count = %v; want 2", got)
	}
	mfs, err := srv.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	keys := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "cometgate_plugin_ratelimit_keys" {
			for _, m := range mf.Metric {
				if labels(m) == "module=ratelimit,place=filters[0].inbound[0]" {
					keys = m.GetGauge().GetValue()
				}
			}
		}
	}
	if keys != 2 {
		t.Errorf("cometgate_plugin_ratelimit_keys = %v; want 2", keys)
	}
}
