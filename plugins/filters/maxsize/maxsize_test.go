package maxsize_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/plugins"
	"github.com/cometgate/cometgate/plugins/filters/internal/filtertest"
	"github.com/cometgate/cometgate/plugins/filters/maxsize"
)

func TestFilter(t *testing.T) {
	tests := []struct {
		name       string
		opts       string
		data, ext  string
		wantReject bool
	}{
		{"under", "maxBytes: 11", `"12345678"`, "", false},
		{"at the bound", "maxBytes: 10", `"12345678"`, "", false},
		{"over", "maxBytes: 9", `"12345678"`, "", true},
		{"ext unbounded", "maxBytes: 10", `1`, `{"k":"` + strings.Repeat("x", 1000) + `"}`, false},
		{"ext under", "maxBytes: 10\nmaxExtBytes: 10", `1`, `{"k":"x"}`, false},
		{"ext over", "maxBytes: 10\nmaxExtBytes: 8", `1`, `{"k":"x"}`, true},
		{"sample", "maxBytes: 256", filtertest.Sample, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filtertest.MustDecode(t, maxsize.Modules(), "", "module: maxsize\n"+tt.opts)
			m := filtertest.Message(tt.data)
			m.Ext = []byte(tt.ext)
			err := f.Filter(context.Background(), m)
			if !tt.wantReject {
				if err != nil {
					t.Errorf("Filter(%s, %s) = %v; want nil", tt.data, tt.ext, err)
				}
				return
			}
			r, ok := plugins.AsRejection(err)
			if !ok || r.Error() != "413::message_too_large" || !errors.Is(err, maxsize.ErrTooLarge) {
				t.Errorf("Filter(%s, %s) = %v; want 413::message_too_large", tt.data, tt.ext, err)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		opts    string
		wantErr string // "" for none
	}{
		{"maxBytes: 1", ""},
		{"maxBytes: 1\nmaxExtBytes: 0", ""},
		{"", "maxBytes: 0: must be > 0"},
		{"maxBytes: -5", "maxBytes: -5: must be > 0"},
		{"maxBytes: 1\nmaxExtBytes: -1", "maxExtBytes: -1: must be >= 0"},
		{"maxBytes: 1k", "cannot unmarshal"},
		{"maxbytes: 1", "field maxbytes not found"},
	}
	for _, tt := range tests {
		_, err := filtertest.Decode(t, maxsize.Modules(), "", "module: maxsize\n"+tt.opts)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("Decode(%q) error %v; want none", tt.opts, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("Decode(%q) error %v; want one containing %q", tt.opts, err, tt.wantErr)
		}
	}
}

func BenchmarkFilter(b *testing.B) {
	for _, bc := range []struct {
		name string
		max  string
	}{{"Pass", "256"}, {"Reject", "100"}} {
		b.Run(bc.name, func(b *testing.B) {
			f := filtertest.MustDecode(b, maxsize.Modules(), "", "module: maxsize\nmaxBytes: "+bc.max)
			m := filtertest.Message(filtertest.Sample)
			ctx := context.Background()
			if err := f.Filter(ctx, m); (err != nil) != (bc.name == "Reject") {
				b.Fatalf("Filter = %v", err)
			}
			b.ReportAllocs()
			for b.Loop() {
				f.Filter(ctx, m)
			}
		})
	}
}
