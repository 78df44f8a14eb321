package standard_test

import (
	"context"
	"slices"
	"testing"

	"github.com/cometgate/cometgate/plugins"
	"github.com/cometgate/cometgate/plugins/standard"
)

func TestRegistryHasEveryBuiltIn(t *testing.T) {
	r := standard.Registry()
	for kind, want := range map[plugins.Kind][]string{
		plugins.KindFilter:        {"jsonschema", "maxsize", "nomarkup", "ratelimit", "regex", "wasm"},
		plugins.KindPolicy:        {"authorizer"},
		plugins.KindAuthenticator: {"jwt"},
		plugins.KindListener:      {"log"},
	} {
		if got := r.Names(kind); !slices.Equal(got, want) {
			t.Errorf("%s modules %v; want %v", kind, got, want)
		}
	}
	// Each call makes a registry of its own: an embedder adding a module
	// to one does not change another.
	r.MustRegister(plugins.ModuleInfo{Kind: plugins.KindPolicy, Name: "mine", New: func() any { return new(policy) }})
	if slices.Contains(standard.Registry().Names(plugins.KindPolicy), "mine") {
		t.Error("registries share state")
	}
}

type policy struct{}

func (*policy) Authorize(context.Context, *plugins.Request) error { return nil }
