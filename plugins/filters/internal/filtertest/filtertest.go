// Package filtertest is test plumbing for the built-in filters: it decodes
// a filter from a YAML entry through a plugins.Registry, as the gateway
// does, and holds the sample message the benchmarks use.
package filtertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/cometgate/cometgate/plugins"
	"go.yaml.in/yaml/v3"
)

// Sample is a 200-byte message's data without markup, escapes or words
// worth filtering: the common case.
const Sample = `{"user":"alice","room":"general","text":"The meeting moves to room 4 at half past three; bring the slides and the quarterly numbers please","ts":1718000000,"tags":["work","meeting"],"reply":null}`

// Decode registers modules in a new registry and makes the filter the
// YAML entry src describes (a mapping with a "module" key), resolving
// file names against dir. A filter made is cleaned up when t ends.
func Decode(t testing.TB, modules []plugins.ModuleInfo, dir, src string) (plugins.Filter, error) {
	t.Helper()
	reg := plugins.NewRegistry()
	for _, m := range modules {
		if err := reg.Register(m); err != nil {
			t.Fatalf("Register(%s): %v", m.Name, err)
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("bad test YAML %q: %v", src, err)
	}
	ctx := &plugins.Context{
		Context: context.Background(),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Dir:     dir,
	}
	_, m, err := reg.Decode(ctx, plugins.KindFilter, doc.Content[0])
	if err != nil {
		return nil, err
	}
	if c, ok := m.(plugins.CleanerUpper); ok {
		t.Cleanup(func() {
			if err := c.Cleanup(); err != nil {
				t.Errorf("Cleanup: %v", err)
			}
		})
	}
	f, ok := m.(plugins.Filter)
	if !ok {
		return nil, fmt.Errorf("module %T is not a filter", m)
	}
	return f, nil
}

// MustDecode is Decode that fails the test on an error.
func MustDecode(t testing.TB, modules []plugins.ModuleInfo, dir, src string) plugins.Filter {
	t.Helper()
	f, err := Decode(t, modules, dir, src)
	if err != nil {
		t.Fatalf("Decode(%q): %v", src, err)
	}
	return f
}

// Message returns an inbound message from a client with data.
func Message(data string) *plugins.Message {
	return &plugins.Message{
		Channel:   "/chat/general",
		Data:      []byte(data),
		Direction: plugins.Inbound,
		Source:    plugins.FromClient,
		Client:    plugins.Client{ID: "s1", User: "alice", Transport: "websocket"},
	}
}
