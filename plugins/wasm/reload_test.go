package wasm

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/plugins"
	"github.com/tetratelabs/wazero"
	"go.yaml.in/yaml/v3"
)

// TestReloadsDoNotLeak loads a plugin configuration with a wasm filter
// 200 times in a row, as reloads do (Load the new set, filter a message
// through it, Retire the previous one), and checks that the resident
// memory and the goroutines do not grow: each retired filter closes its
// instances and stops its watcher, and a module no filter holds any more
// has its runtime closed. Every fourth reload changes the module's
// memory limit, which needs a runtime of its own, so that runtimes are
// made and closed too (an unchanged module keeps its runtime).
func TestReloadsDoNotLeak(t *testing.T) {
	guestPath(t, "profanity")
	reg := testRegistry(t)
	cfgs := make([]config.PluginsConfig, 2)
	for i := range cfgs {
		cfgs[i] = config.PluginsConfig{Filters: []config.FilterChainConfig{{
			Channels: []string{"/chat/**"},
			Inbound: []yaml.Node{*yamlNode(t, fmt.Sprintf(
				"module: wasm\nfile: profanity.wasm\nmaxInstances: 2\nmemoryPages: %d\n", 256+i))},
		}}}
	}
	// A Shared of its own, to count the runtimes it opens.
	cache, err := wazero.NewCompilationCacheWithDir(testCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	ms := newModules(cache)
	pctx := testContext(nil)
	pctx.Shared = new(plugins.Shared)
	pctx.Shared.Get(SharedCacheKey, func() (any, error) { return ms, nil })
	defer pctx.Shared.Close()
	ctx := testCtx(t)
	var cur *plugins.Set
	defer func() { cur.Retire(context.Background()) }()
	n := 0
	reload := func() {
		t.Helper()
		s, err := plugins.Load(pctx, reg, cfgs[n/4%2], nil)
		n++
		if err != nil {
			t.Fatal(err)
		}
		m := testMessage(`{"text":"heck"}`)
		if rej := s.Route("/chat/room").In.Run(ctx, m, nil); rej != nil || string(m.Data) != `{"text":"****"}` {
			t.Fatalf("filtering through the new set: %v, %s", rej, m.Data)
		}
		if err := cur.Retire(ctx); err != nil {
			t.Fatal(err)
		}
		cur = s
	}
	for i := 0; i < 20; i++ { // warm-up: caches, pools, the heap's shape
		reload()
	}
	// Measured with no set loaded, so that what the live one holds (tens
	// of MiB, and varying with the collector's timing) is not counted.
	cur.Retire(ctx)
	cur = nil
	rss0, g0 := memoryInUse(t), runtime.NumGoroutine()
	const reloads = 200
	for i := 0; i < reloads; i++ {
		reload()
		if os.Getenv("RSSDEBUG") != "" && i%25 == 24 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			t.Logf("%d: rss %.1f heapinuse %.1f heapsys %.1f released %.1f", i, mib(residentBytes(t)), mib(int64(ms.HeapInuse)), mib(int64(ms.HeapSys)), mib(int64(ms.HeapReleased)))
		}
	}
	cur.Retire(ctx)
	cur = nil
	rss1, g1 := memoryInUse(t), runtime.NumGoroutine()
	growth := rss1 - rss0
	t.Logf("%d reloads: %s %.1f MiB -> %.1f MiB (%+.1f MiB), goroutines %d -> %d",
		reloads, memoryName(), mib(rss0), mib(rss1), mib(growth), g0, g1)
	// One leaked runtime with an instance holds at least 2 MiB of guest
	// memory; 200 of them would be hundreds of MiB.
	const maxGrowth = 4 << 20
	if growth > maxGrowth {
		t.Errorf("%s grew by %.1f MiB over %d reloads; want at most %.0f MiB", memoryName(), mib(growth), reloads, mib(maxGrowth))
	}
	if n := ms.runtimes.Load(); n != 0 {
		t.Errorf("%d runtimes open with no filter loaded; want 0", n)
	}
	if g1 > g0+2 {
		t.Errorf("goroutines grew from %d to %d over %d reloads", g0, g1, reloads)
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func memoryName() string {
	if raceEnabled {
		return "Go memory"
	}
	return "RSS less free heap"
}

// memoryInUse returns the resident set size or, under the race detector
// (whose shadow memory grows with the heap's churn), the memory the Go
// runtime has mapped and not released; either less the free heap the
// runtime keeps without returning it, which varies by megabytes from one
// collection to the next.
func memoryInUse(t *testing.T) int64 {
	t.Helper()
	least := int64(-1)
	for i := 0; i < 3; i++ { // the least of a few samples
		collect()
		s := []metrics.Sample{
			{Name: "/memory/classes/total:bytes"},
			{Name: "/memory/classes/heap/released:bytes"},
			{Name: "/memory/classes/heap/free:bytes"},
		}
		var n int64
		if raceEnabled {
			metrics.Read(s)
			n = int64(s[0].Value.Uint64() - s[1].Value.Uint64())
		} else {
			n = residentBytes(t)
			metrics.Read(s)
		}
		n -= int64(s[2].Value.Uint64())
		if least < 0 || n < least {
			least = n
		}
	}
	return least
}

// collect runs full collections and returns free memory to the OS. wazero
// frees compiled code in finalizers, which run after a collection: a few
// rounds let them run and their memory be collected in turn.
func collect() {
	for i := 0; i < 4; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	debug.FreeOSMemory()
}

// residentBytes returns the process's resident set size.
func residentBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatalf("reading RSS: %v", err)
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		t.Fatalf("statm %q", b)
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		t.Fatal(fmt.Errorf("statm %q: %w", b, err))
	}
	return pages * int64(os.Getpagesize())
}
