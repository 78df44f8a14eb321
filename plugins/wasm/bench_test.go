package wasm

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/plugins"
	"github.com/tetratelabs/wazero"
)

// benchData returns a JSON object of n bytes; with word, the text holds it.
func benchData(n int, word string) []byte {
	head := `{"user":"alice","room":"lobby","ts":1700000000000,"text":"`
	text := "the quick brown fox jumps over the lazy dog " + word + " "
	pad := n - len(head) - 2
	body := strings.Repeat(text, pad/len(text)+1)[:pad]
	return []byte(head + body + `"}`)
}

// benchFilter runs f on a message with data, serially or from parallel
// goroutines, checking each call succeeds.
func benchFilter(b *testing.B, f *Filter, data []byte, parallel bool) {
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	run := func(pb func() bool) {
		m := testMessage("")
		for pb() {
			m.Data, m.Ext = data, nil
			if err := f.Filter(ctx, m); err != nil {
				b.Error(err)
				return
			}
		}
	}
	if parallel {
		b.RunParallel(func(pb *testing.PB) { run(pb.Next) })
		return
	}
	i := 0
	run(func() bool { i++; return i <= b.N })
}

// BenchmarkFilter: a pooled call end to end (Filter: instance from the
// pool, message encoded into guest memory, the guest's call under the
// time limit, verdict decoded and applied) on a 200-byte message.
func BenchmarkFilter(b *testing.B) {
	pass := mustFilter(b, "pass", "watch: -1s\n")
	profanity := mustFilter(b, "profanity", "watch: -1s\n")
	timestamp := mustFilter(b, "timestamp", "watch: -1s\n")
	cases := []struct {
		name string
		f    *Filter
		data []byte
	}{
		{"pass", pass, benchData(200, "")},
		{"profanity-pass", profanity, benchData(200, "")},
		{"profanity-rewrite", profanity, benchData(200, "heck")},
		{"timestamp", timestamp, benchData(200, "")},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) { benchFilter(b, c.f, c.data, false) })
		b.Run(c.name+"-parallel", func(b *testing.B) { benchFilter(b, c.f, c.data, true) })
	}
}

// BenchmarkCloseOnContextDone: the time limit's cost. wazero's
// WithCloseOnContextDone starts a goroutine per call and leaves the
// compiled code for Go at each loop iteration to check whether the module
// was closed; "off" (timeout: -1) compiles without it, and then nothing
// could stop a looping guest. pass does no work per byte; profanity scans
// the data, so its loop dominates, more so with 16 KiB.
func BenchmarkCloseOnContextDone(b *testing.B) {
	for _, c := range []struct {
		guest, size string
		n           int
	}{{"pass", "200B", 200}, {"profanity", "200B", 200}, {"profanity", "16KiB", 16 << 10}} {
		data := benchData(c.n, "")
		for _, on := range []bool{true, false} {
			name := "off"
			if on {
				name = "on"
			}
			b.Run(c.guest+"-"+c.size+"-"+name, func(b *testing.B) {
				guestPath(b, c.guest)
				f := &Filter{File: c.guest + ".wasm", Watch: -1}
				if !on {
					f.Timeout = -1
				}
				if err := f.Provision(testContext(nil)); err != nil {
					b.Fatal(err)
				}
				defer f.Cleanup()
				benchFilter(b, f, data, false)
			})
		}
	}
}

// BenchmarkCallContext: the per-call context that carries the time limit:
// the instance's reusable watchdog against context.WithTimeout.
func BenchmarkCallContext(b *testing.B) {
	b.Run("watchdog", func(b *testing.B) {
		var w watchdog
		w.init()
		b.ReportAllocs()
		for b.Loop() {
			w.start(DefaultTimeout)
			if !w.stop() {
				b.Fatal("fired")
			}
		}
	})
	b.Run("WithTimeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
			cancel()
		}
	})
}

// BenchmarkCompile: compiling the profanity guest (a Go module of about
// 2 MB) into a new runtime, without a cache, and with wazero's in-memory
// cache while another runtime holds the module (as during a reload that
// changes the memory limit); and loading a filter whose compiled module
// another filter holds (a reload that keeps the module: no compilation).
func BenchmarkCompile(b *testing.B) {
	bin, err := os.ReadFile(guestPath(b, "profanity"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	compile := func(b *testing.B, cache wazero.CompilationCache) {
		rc := wazero.NewRuntimeConfig().WithCloseOnContextDone(true)
		if cache != nil {
			rc = rc.WithCompilationCache(cache)
		}
		rt := wazero.NewRuntimeWithConfig(ctx, rc)
		cm, err := rt.CompileModule(ctx, bin)
		if err != nil {
			b.Fatal(err)
		}
		cm.Close(ctx)
		rt.Close(ctx)
	}
	b.Run("no-cache", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			compile(b, nil)
		}
	})
	b.Run("memory-cache", func(b *testing.B) {
		cache := wazero.NewCompilationCache()
		defer cache.Close(ctx)
		holder := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true).WithCompilationCache(cache))
		defer holder.Close(ctx)
		if _, err := holder.CompileModule(ctx, bin); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			compile(b, cache)
		}
	})
	b.Run("filter-reload-shared-module", func(b *testing.B) {
		shared := new(plugins.Shared)
		defer shared.Close()
		pctx := testContext(nil)
		pctx.Shared = shared
		load := func() *Filter {
			f := &Filter{File: "profanity.wasm", Watch: -1}
			if err := f.Provision(pctx); err != nil {
				b.Fatal(err)
			}
			return f
		}
		holder := load()
		defer holder.Cleanup()
		b.ReportAllocs()
		for b.Loop() {
			load().Cleanup()
		}
	})
}

// BenchmarkInstantiate: making an instance (the Go guest's runtime and
// package initialisation), which a call pays when the pool is empty.
func BenchmarkInstantiate(b *testing.B) {
	f := mustFilter(b, "profanity", "watch: -1s\n")
	v := f.cur.Load()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		v.acquire()
		in, err := v.newInstance(ctx)
		if err != nil {
			b.Fatal(err)
		}
		in.close()
		v.release()
	}
}
