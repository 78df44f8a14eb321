package jsonschema_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cometgate/cometgate/plugins"
	"github.com/cometgate/cometgate/plugins/filters/internal/filtertest"
	"github.com/cometgate/cometgate/plugins/filters/jsonschema"
)

// sampleSchema describes filtertest.Sample.
const sampleSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["user", "text"],
  "properties": {
    "user": {"type": "string", "minLength": 1, "maxLength": 64},
    "room": {"type": "string"},
    "text": {"type": "string", "maxLength": 500},
    "ts": {"type": "integer", "minimum": 0},
    "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}, "maxItems": 8},
    "reply": {"type": ["string", "null"]},
    "email": {"type": "string", "format": "email"},
    "price": {"type": "number", "multipleOf": 0.01}
  },
  "additionalProperties": false
}`

// writeFiles writes name -> content into a new directory and returns it.
func writeFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func decode(t testing.TB, opts string) plugins.Filter {
	t.Helper()
	dir := writeFiles(t, map[string]string{"schema.json": sampleSchema})
	return filtertest.MustDecode(t, jsonschema.Modules(), dir, "module: jsonschema\nfile: schema.json\n"+opts)
}

func TestFilter(t *testing.T) {
	tests := []struct {
		name, opts, data string
		want             string // the rejection, "" to pass
	}{
		{"sample", "", filtertest.Sample, ""},
		{"minimal", "", `{"user":"u","text":"t"}`, ""},
		{"exact decimals", "", `{"user":"u","text":"t","price":19.99}`, ""},
		{"big integer", "", `{"user":"u","text":"t","ts":123456789012345678901234567890}`, ""},
		{"not an object", "", `["user"]`, "400::data fails type"},
		{"required", "", `{"user":"u"}`, "400::data fails required"},
		{"type deep", "", `{"user":"u","text":"t","tags":["ok",7]}`, "400::data/tags/1 fails type"},
		{"pattern", "", `{"user":"u","text":"t","tags":["ok","Not OK"]}`, "400::data/tags/1 fails pattern"},
		{"minimum", "", `{"user":"u","text":"t","ts":-1}`, "400::data/ts fails minimum"},
		{"multipleOf", "", `{"user":"u","text":"t","price":19.999}`, "400::data/price fails multipleOf"},
		{"additional", "", `{"user":"u","text":"t","x/y~":1}`, "400::data fails additionalProperties"},
		{"format is an annotation", "", `{"user":"u","text":"t","email":"nope"}`, ""},
		{"format asserted", "assertFormat: true", `{"user":"u","text":"t","email":"nope"}`, "400::data/email fails format"},
		{"format asserted pass", "assertFormat: true", `{"user":"u","text":"t","email":"a@b.test"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := decode(t, tt.opts)
			m := filtertest.Message(tt.data)
			err := f.Filter(context.Background(), m)
			if tt.want == "" {
				if err != nil {
					t.Errorf("Filter(%s) = %v; want nil", tt.data, err)
				}
				return
			}
			r, ok := plugins.AsRejection(err)
			if !ok || r.Error() != tt.want {
				t.Errorf("Filter(%s) = %v; want %s", tt.data, err, tt.want)
			}
		})
	}
}

func TestReasonIsSafe(t *testing.T) {
	dir := writeFiles(t, map[string]string{"s.json": `{"additionalProperties": {"type": "integer"}}`})
	f := filtertest.MustDecode(t, jsonschema.Modules(), dir, "module: jsonschema\nfile: s.json")
	key := "a:b,c\n<x>/~" + strings.Repeat("é", 200)
	m := filtertest.Message(fmt.Sprintf(`{%q:"v"}`, key))
	r, ok := plugins.AsRejection(f.Filter(context.Background(), m))
	if !ok {
		t.Fatalf("Filter = %v; want a rejection", r)
	}
	if strings.ContainsAny(r.Reason, ":,\n") || len(r.Reason) > 200 || !strings.HasPrefix(r.Reason, "data/a b c <x>~1~0é") {
		t.Errorf("Filter reason = %q; want a short, one-line place without : or ,", r.Reason)
	}
}

func TestBadData(t *testing.T) {
	f := decode(t, "")
	err := f.Filter(context.Background(), filtertest.Message(`{"user":`))
	if _, ok := plugins.AsRejection(err); err == nil || ok {
		t.Errorf("Filter on data that is not JSON = %v; want a failure", err)
	}
}

func TestOptions(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"good.json":    sampleSchema,
		"ref.json":     `{"$ref": "good.json"}`,
		"remote.json":  `{"$ref": "https://example.test/schema.json"}`,
		"bad.json":     `{"type": "no-such-type"}`,
		"badjson.json": `{"type": `,
		"badre.json":   `{"pattern": "("}`,
	})
	tests := []struct {
		opts    string
		wantErr string // "" for none
	}{
		{"file: good.json", ""},
		{"file: " + filepath.Join(dir, "good.json"), ""},
		{"file: ref.json", ""},
		{"file: good.json\nassertFormat: true", ""},
		{"", "file: a JSON Schema file is required"},
		{"file: missing.json", `file: "missing.json"`},
		{"file: bad.json", `file: "bad.json"`},
		{"file: badjson.json", `file: "badjson.json"`},
		{"file: badre.json", `file: "badre.json"`},
		{"file: remote.json", `file: "remote.json"`},
		{"file: good.json\nschema: x", "field schema not found"},
	}
	for _, tt := range tests {
		_, err := filtertest.Decode(t, jsonschema.Modules(), dir, "module: jsonschema\n"+tt.opts)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("Decode(%q) error %v; want none", tt.opts, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("Decode(%q) error %v; want one containing %q", tt.opts, err, tt.wantErr)
		}
	}
}

// TestConcurrent validates with one compiled schema from many goroutines.
func TestConcurrent(t *testing.T) {
	f := decode(t, "assertFormat: true")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				ok := (g+i)%2 == 0
				ts := i
				if !ok {
					ts = -i - 1
				}
				m := filtertest.Message(fmt.Sprintf(`{"user":"u%d","text":"t","ts":%d}`, g, ts))
				err := f.Filter(context.Background(), m)
				if (err == nil) != ok {
					t.Errorf("Filter(%s) = %v; want ok %v", m.Data, err, ok)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkFilter(b *testing.B) {
	for _, bc := range []struct{ name, data string }{
		{"Pass", filtertest.Sample},
		{"Reject", strings.Replace(filtertest.Sample, `"meeting"`, `"Meeting"`, 1)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := decode(b, "")
			m := filtertest.Message(bc.data)
			ctx := context.Background()
			if err := f.Filter(ctx, m); (err != nil) != (bc.name == "Reject") {
				b.Fatalf("Filter(%s) = %v", bc.data, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				f.Filter(ctx, m)
			}
		})
	}
}
