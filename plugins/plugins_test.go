package plugins_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/plugins"
	"go.yaml.in/yaml/v3"
)

type passFilter struct{}

func (passFilter) Filter(context.Context, *plugins.Message) error { return nil }

type cleanFilter struct{ cleaned chan struct{} }

func (f *cleanFilter) Filter(context.Context, *plugins.Message) error { return nil }
func (f *cleanFilter) Provision(ctx *plugins.Context) error {
	v, err := ctx.Shared.Get("c", func() (any, error) { return make(chan struct{}, 1), nil })
	f.cleaned = v.(chan struct{})
	return err
}
func (f *cleanFilter) Cleanup() error { f.cleaned <- struct{}{}; return nil }

func TestRegisterRefuses(t *testing.T) {
	r := plugins.NewRegistry()
	if err := r.Register(plugins.ModuleInfo{Kind: plugins.KindFilter, Name: "pass", New: func() any { return &passFilter{} }}); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]plugins.ModuleInfo{
		"duplicate":   {Kind: plugins.KindFilter, Name: "pass", New: func() any { return &passFilter{} }},
		"wrong kind":  {Kind: plugins.KindPolicy, Name: "p", New: func() any { return &passFilter{} }},
		"not pointer": {Kind: plugins.KindFilter, Name: "v", New: func() any { return passFilter{} }},
		"no name":     {Kind: plugins.KindFilter, New: func() any { return &passFilter{} }},
		"bad kind":    {Kind: "x", Name: "x", New: func() any { return &passFilter{} }},
	} {
		if err := r.Register(m); err == nil {
			t.Errorf("%s: registered", name)
		}
	}
	if got := r.Names(plugins.KindFilter); len(got) != 1 || got[0] != "pass" {
		t.Errorf("Names = %v", got)
	}
}

func TestSafeReason(t *testing.T) {
	for in, want := range map[string]string{
		"rate limited":           "rate limited",
		"a:b,c\nd":               "a b c d",
		"\x00bell\x07":           "bell",
		strings.Repeat("é", 150): strings.Repeat("é", 100),
	} {
		got := plugins.SafeReason(in)
		if got != want || !utf8.ValidString(got) || len(got) > 200 {
			t.Errorf("SafeReason(%q) = %q; want %q", in, got, want)
		}
	}
	err := plugins.RejectCode(429, "rate:limited")
	if r, ok := plugins.AsRejection(err); !ok || r.Error() != "429::rate limited" {
		t.Errorf("RejectCode = %v", err)
	}
	if r, _ := plugins.AsRejection(plugins.Reject("x")); r.Error() != "403::x" {
		t.Errorf("Reject = %v", r)
	}
}

// Retire waits for the messages in a set before cleaning it up, and a
// retired set cannot be acquired again.
func TestRetireWaitsForUses(t *testing.T) {
	r := plugins.NewRegistry()
	r.MustRegister(plugins.ModuleInfo{Kind: plugins.KindFilter, Name: "clean", New: func() any { return new(cleanFilter) }})
	shared := new(plugins.Shared)
	var cfg config.PluginsConfig
	cfg.Filters = []config.FilterChainConfig{{Channels: []string{"/a"}}}
	set, err := plugins.Load(&plugins.Context{Context: context.Background(), Shared: shared}, r, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if set.Route("/a") != nil {
		t.Error("a chain without filters has a route")
	}
	if !set.Acquire() {
		t.Fatal("Acquire failed on a live set")
	}
	done := make(chan error)
	go func() { done <- set.Retire(context.Background()) }()
	for set.Acquire() { // Retire has not begun yet
		set.Release()
	}
	select {
	case <-done:
		t.Fatal("Retire returned while the set was in use")
	default:
	}
	set.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A retire that times out still cleans up, and says so.
	set2, _ := plugins.Load(&plugins.Context{Context: context.Background(), Shared: shared}, r, cfg, nil)
	set2.Acquire()
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := set2.Retire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Retire of a set in use past its deadline = %v", err)
	}
}

// Route finds the chains of exactly the patterns that match a channel.
func TestRouteMatching(t *testing.T) {
	r := plugins.NewRegistry()
	r.MustRegister(plugins.ModuleInfo{Kind: plugins.KindFilter, Name: "pass", New: func() any { return &passFilter{} }})
	load := func(patterns ...[]string) *plugins.Set {
		var cfg config.PluginsConfig
		for _, p := range patterns {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(`{module: pass}`), &n); err != nil {
				t.Fatal(err)
			}
			cfg.Filters = append(cfg.Filters, config.FilterChainConfig{Channels: p, Inbound: []yaml.Node{*n.Content[0]}})
		}
		set, err := plugins.Load(&plugins.Context{Context: context.Background(), Shared: new(plugins.Shared)}, r, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	tests := []struct {
		set  *plugins.Set
		name string
		want int // filters in the route
	}{
		{load([]string{"/chat/**"}), "/chat/a", 1},
		{load([]string{"/chat/**"}), "/chat/a/b", 1},
		{load([]string{"/chat/**"}), "/chat", 0},
		{load([]string{"/chat/**"}), "/chatter/a", 0},
		{load([]string{"/chat/*"}, []string{"/chat/a"}), "/chat/a", 2},
		{load([]string{"/chat/*"}, []string{"/chat/a"}), "/chat/a/b", 0},
		{load([]string{"/**"}, []string{"/x/*"}), "/anything/at/all", 1},
		{load([]string{"/**"}, []string{"/x/*"}), "/x/y", 2},
		{load([]string{"/*"}), "/top", 1},
		{load([]string{"/*"}), "/top/level", 0},
		{load([]string{"/a"}), "/a", 1},
		{load([]string{"/a"}), "/a/b", 0},
	}
	for _, tt := range tests {
		for range 2 { // uncached, then cached
			got := 0
			if rt := tt.set.Route(tt.name); rt != nil {
				got = len(rt.In)
			}
			if got != tt.want {
				t.Errorf("Route(%q) has %d filters; want %d", tt.name, got, tt.want)
			}
		}
	}
}
