// Package filters_test runs the built-in filters together through the
// plugin pipeline, from configuration as an operator writes it, including
// the examples in each package's documentation.
package filters_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/plugins"
	"github.com/cometgate/cometgate/plugins/filters/internal/filtertest"
	"github.com/cometgate/cometgate/plugins/filters/jsonschema"
	"github.com/cometgate/cometgate/plugins/filters/maxsize"
	"github.com/cometgate/cometgate/plugins/filters/nomarkup"
	"github.com/cometgate/cometgate/plugins/filters/ratelimit"
	"github.com/cometgate/cometgate/plugins/filters/regex"
	"go.yaml.in/yaml/v3"
)

func registry(t *testing.T) *plugins.Registry {
	t.Helper()
	reg := plugins.NewRegistry()
	for _, mods := range [][]plugins.ModuleInfo{nomarkup.Modules(), regex.Modules(), maxsize.Modules(), jsonschema.Modules(), ratelimit.Modules()} {
		for _, m := range mods {
			if err := reg.Register(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	return reg
}

// load loads the plugins section src with files (name -> content) in the
// configuration's directory, and retires it when t ends.
func load(t *testing.T, src string, files map[string]string) *plugins.Set {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var cfg config.PluginsConfig
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("decoding %q: %v", src, err)
	}
	ctx := &plugins.Context{Context: context.Background(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Dir: dir}
	set, err := plugins.Load(ctx, registry(t), cfg, nil)
	if err != nil {
		t.Fatalf("plugins.Load(%q): %v", src, err)
	}
	t.Cleanup(func() {
		if err := set.Retire(context.Background()); err != nil {
			t.Errorf("Retire: %v", err)
		}
	})
	return set
}

// TestDocExamples loads the options example of each package's doc.
func TestDocExamples(t *testing.T) {
	for _, pkg := range []string{"nomarkup", "regex", "maxsize", "jsonschema", "ratelimit"} {
		t.Run(pkg, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(pkg, "doc.go"))
			if err != nil {
				t.Fatal(err)
			}
			_, example, ok := strings.Cut(string(src), "// Options:\n//\n")
			if !ok {
				t.Fatalf("%s/doc.go has no Options example", pkg)
			}
			var yamlSrc strings.Builder
			for _, line := range strings.Split(example, "\n") {
				code, ok := strings.CutPrefix(line, "//\t")
				if !ok {
					break
				}
				yamlSrc.WriteString(code + "\n")
			}
			set := load(t, yamlSrc.String(), map[string]string{"schemas/order.json": `{"type": "object"}`})
			if !set.HasFilters() {
				t.Errorf("%s example %q loads no filter", pkg, yamlSrc.String())
			}
		})
	}
}

// TestChain runs all five filters in one inbound chain, through
// Chain.Run, which checks what each produces.
func TestChain(t *testing.T) {
	set := load(t, `
filters:
  - channels: ["/chat/**"]
    inbound:
      - module: ratelimit
        rate: 0.000001
        burst: 4
      - module: maxsize
        maxBytes: 256
      - module: jsonschema
        file: chat.json
      - module: regex
        rules:
          - words: [darn]
            action: replace
      - module: nomarkup
`, map[string]string{"chat.json": `{"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}`})
	route := set.Route("/chat/room")
	if route == nil || len(route.In) != 5 {
		t.Fatalf("Route(/chat/room) = %v; want 5 inbound filters", route)
	}
	if set.Route("/other") != nil {
		t.Fatal("Route(/other) has filters; want none")
	}
	tests := []struct {
		name, data string
		want       string // data after the chain, or the rejection
	}{
		{"pass", filtertest.Sample, filtertest.Sample},
		{"rewrite", `{"text":"<b>darn</b>"}`, `{"text":"&lt;b&gt;***&lt;/b&gt;"}`},
		{"too large", `{"text":"` + strings.Repeat("x", 300) + `"}`, "413::message_too_large"},
		{"schema", `{"txt":"hi"}`, "400::data fails required"},
		{"rate", `{"text":"hi"}`, "429::rate_limited"}, // the 5th message, burst 4
	}
	for _, tt := range tests {
		m := filtertest.Message(tt.data)
		m.Channel = "/chat/room"
		r := route.In.Run(context.Background(), m, nil)
		got := string(m.Data)
		if r != nil {
			got = r.Error()
		}
		if got != tt.want {
			t.Errorf("%s: chain(%s) = %s; want %s", tt.name, tt.data, got, tt.want)
		}
	}
}
