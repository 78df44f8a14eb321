package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/plugins"
	"github.com/tetratelabs/wazero"
	"go.yaml.in/yaml/v3"
)

// Modules returns this package's modules: the "wasm" filter.
func Modules() []plugins.ModuleInfo {
	return []plugins.ModuleInfo{{
		Kind: plugins.KindFilter,
		Name: "wasm",
		New:  func() any { return new(Filter) },
		Doc:  "runs a WebAssembly filter module (wazero, sandboxed, pooled instances)",
	}}
}

// Defaults.
const (
	// DefaultMemoryPages is the default memory limit per instance, in
	// 64 KiB pages: 16 MiB. A Go guest starts at about 2.3 MiB and grows
	// its heap in steps of a few MiB.
	DefaultMemoryPages = 256
	// DefaultTimeout is the default time limit of one call.
	DefaultTimeout = 100 * time.Millisecond
	// DefaultWatch is the default interval at which the module file is
	// checked for changes.
	DefaultWatch = 2 * time.Second
	// initTimeout bounds making an instance: the guest's _initialize (the
	// Go runtime and package init functions) and cometgate_init.
	initTimeout = time.Second
	// SharedCacheKey is the plugins.Shared key of the compiled modules and
	// wazero's compilation cache, which every wasm filter shares.
	SharedCacheKey = "wasm.cache"
)

// Filter is the "wasm" filter module: it runs each message through a
// WebAssembly module's cometgate_filter export (see ABI.md and the
// package documentation). Safe for concurrent use.
type Filter struct {
	// File is the module's path (.wasm), relative to the configuration
	// file's directory. Required.
	File string `yaml:"file"`
	// MaxInstances caps the module's instances, and so the calls running
	// at once: a call that finds them all busy waits for one within its
	// context, then is refused with 503::filter_busy. Default
	// runtime.GOMAXPROCS(0).
	MaxInstances int `yaml:"maxInstances"`
	// MemoryPages is each instance's memory limit in 64 KiB pages; a guest
	// growing past it fails (and its instance is discarded). Default 256
	// (16 MiB); at most 65536.
	MemoryPages uint32 `yaml:"memoryPages"`
	// Timeout is one call's time limit (wall clock, so it includes the
	// host's scheduling delays); a guest running past it is stopped and
	// the call fails. Default 100ms. A negative value removes the limit
	// and its cost (see the package documentation): for trusted guests
	// only, since nothing can then stop a guest that loops.
	Timeout config.Duration `yaml:"timeout"`
	// Watch is how often the file is checked for changes; a changed file
	// is compiled and swapped in atomically, the previous module serving
	// until then (and staying when the new one fails to load). Default 2s;
	// a negative value disables watching (a reload still reads the file).
	Watch config.Duration `yaml:"watch"`
	// Config is handed to each instance once, as JSON, if the guest
	// exports cometgate_init (guest.Configure). Optional: any YAML value.
	Config yaml.Node `yaml:"config"`

	path     string
	log      *slog.Logger
	modules  *modules // shared through ctx.Shared, or the filter's own
	cfgJSON  []byte
	tokens   chan struct{} // one per running call
	cur      atomic.Pointer[version]
	watchMu  sync.Mutex // guards watchStat, swaps
	watchSt  fileStat
	stop     chan struct{}
	stopped  chan struct{}
	cleaned  atomic.Bool
	live     atomic.Int32 // instances made and not closed
	failed   atomic.Int64 // calls that failed: their instance was discarded
	busy     atomic.Int64 // calls refused with 503::filter_busy
	noEnsure bool         // no time limit: compiled without wazero's checks
}

// Provision applies the defaults, compiles the module (through the
// shared compilation cache), makes a first instance (which checks the
// exports and the config) and starts watching the file.
func (f *Filter) Provision(ctx *plugins.Context) error {
	if f.File == "" {
		return errors.New("file: required")
	}
	if f.MaxInstances == 0 {
		f.MaxInstances = runtime.GOMAXPROCS(0)
	}
	if f.MemoryPages == 0 {
		f.MemoryPages = DefaultMemoryPages
	}
	if f.Timeout == 0 {
		f.Timeout = config.Duration(DefaultTimeout)
	}
	if f.Watch == 0 {
		f.Watch = config.Duration(DefaultWatch)
	}
	if f.MaxInstances < 0 {
		return fmt.Errorf("maxInstances: %d: must be > 0", f.MaxInstances)
	}
	if f.MemoryPages > 65536 {
		return fmt.Errorf("memoryPages: %d: must be at most 65536", f.MemoryPages)
	}
	f.noEnsure = f.Timeout < 0
	f.path = ctx.Path(f.File)
	f.log = ctx.Logger
	if f.log == nil {
		f.log = slog.Default()
	}
	cfg, err := configJSON(&f.Config)
	if err != nil {
		return err
	}
	f.cfgJSON = cfg
	f.modules = newModules(nil)
	if ctx.Shared != nil {
		c, err := ctx.Shared.Get(SharedCacheKey, func() (any, error) {
			return newModules(wazero.NewCompilationCache()), nil
		})
		if err != nil {
			return err
		}
		ms, ok := c.(*modules)
		if !ok {
			return fmt.Errorf("shared value %q is a %T", SharedCacheKey, c)
		}
		f.modules = ms
	}
	f.tokens = make(chan struct{}, f.MaxInstances)
	st, bin, err := readFile(f.path)
	if err != nil {
		return err
	}
	v, err := f.load(ctx, bin)
	if err != nil {
		return err
	}
	f.cur.Store(v)
	f.watchSt = st
	if f.Watch > 0 {
		f.stop, f.stopped = make(chan struct{}), make(chan struct{})
		go f.watch()
	}
	return nil
}

// Cleanup stops watching and retires the module: its runtime is closed
// now, or, if calls are still running, when the last one ends (each is
// bounded by Timeout).
func (f *Filter) Cleanup() error {
	if f.cleaned.Swap(true) {
		return nil
	}
	if f.stop != nil {
		close(f.stop)
		<-f.stopped
	}
	f.watchMu.Lock()
	defer f.watchMu.Unlock()
	if v := f.cur.Swap(nil); v != nil {
		v.retire()
	}
	return nil
}

// Filter runs m through the module: one call of its cometgate_filter
// export on a pooled instance.
func (f *Filter) Filter(ctx context.Context, m *plugins.Message) error {
	select {
	case f.tokens <- struct{}{}:
	default:
		select {
		case f.tokens <- struct{}{}:
		case <-ctx.Done():
			f.busy.Add(1)
			return errBusy
		}
	}
	defer func() { <-f.tokens }()
	in, err := f.instance(ctx)
	if err != nil {
		return fmt.Errorf("wasm %s: %w", f.File, err)
	}
	v, err := in.call(m)
	in.v.put(in, err == nil)
	if err != nil {
		f.failed.Add(1)
		return fmt.Errorf("wasm %s: %w", f.File, err)
	}
	return v.apply(m)
}

// Stats reports the filter's live instances, the calls that failed (a
// trap, a time limit, memory, a bad verdict: each discards its instance)
// and the calls refused as busy, for /metrics.
func (f *Filter) Stats() []plugins.Stat {
	return []plugins.Stat{
		{Name: "wasm_instances", Help: "Live instances of a WebAssembly filter (at most its maxInstances).", Value: float64(f.live.Load())},
		{Name: "wasm_failed_calls_total", Help: "WebAssembly filter calls that failed (trap, time limit, memory, bad verdict); each discarded its instance.", Value: float64(f.failed.Load()), Counter: true},
		{Name: "wasm_busy_total", Help: "Messages a WebAssembly filter refused with 503::filter_busy: every instance stayed busy until the message's context ended.", Value: float64(f.busy.Load()), Counter: true},
	}
}

// errBusy refuses a message that found every instance busy until its
// context ended.
var errBusy = plugins.RejectCode(503, "filter_busy")

// instance takes an idle instance of the current module, or makes one.
func (f *Filter) instance(ctx context.Context) (*instance, error) {
	for {
		v := f.cur.Load()
		if v == nil {
			return nil, errors.New("filter cleaned up")
		}
		if !v.acquire() {
			continue // swapped meanwhile
		}
		select {
		case in := <-v.idle:
			return in, nil
		default:
		}
		in, err := v.newInstance(ctx)
		if err != nil {
			v.release()
			return nil, err
		}
		return in, nil
	}
}

// load compiles bin into a new version and makes its first instance,
// which checks the exports and the guest's acceptance of the config.
func (f *Filter) load(ctx context.Context, bin []byte) (*version, error) {
	v, err := f.compile(ctx, bin)
	if err != nil {
		return nil, err
	}
	in, err := v.newInstance(ctx)
	if err != nil {
		v.retire()
		return nil, err
	}
	v.idle <- in
	return v, nil
}

// watch polls the file every f.Watch until Cleanup.
func (f *Filter) watch() {
	defer close(f.stopped)
	t := time.NewTicker(f.Watch.D())
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.checkFile()
		}
	}
}

// checkFile swaps in the file's module if the file changed since last
// seen. A module that fails to load is logged and the current one kept.
func (f *Filter) checkFile() {
	f.watchMu.Lock()
	defer f.watchMu.Unlock()
	if f.cleaned.Load() {
		return
	}
	st, err := statFile(f.path)
	if err != nil {
		if st != f.watchSt {
			f.log.Warn("wasm module file unreadable; keeping the loaded module", "file", f.path, "err", err)
			f.watchSt = st
		}
		return
	}
	if st == f.watchSt {
		return
	}
	f.watchSt = st
	st2, bin, err := readFile(f.path)
	if err != nil {
		f.log.Warn("wasm module file unreadable; keeping the loaded module", "file", f.path, "err", err)
		return
	}
	f.watchSt = st2
	if cur := f.cur.Load(); cur != nil && cur.c.key.sum == sha256.Sum256(bin) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
	defer cancel()
	v, err := f.load(ctx, bin)
	if err != nil {
		f.log.Error("wasm module changed but does not load; keeping the previous one", "file", f.path, "err", err)
		return
	}
	if old := f.cur.Swap(v); old != nil {
		old.retire()
	}
	f.log.Info("wasm module reloaded", "file", f.path)
}

// fileStat is what tells a file changed without reading it.
type fileStat struct {
	size    int64
	modTime time.Time
	missing bool
}

func statFile(path string) (fileStat, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStat{missing: true}, err
	}
	return fileStat{size: fi.Size(), modTime: fi.ModTime()}, nil
}

func readFile(path string) (fileStat, []byte, error) {
	st, err := statFile(path)
	if err != nil {
		return st, nil, fmt.Errorf("file: %w", err)
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		return st, nil, fmt.Errorf("file: %w", err)
	}
	return st, bin, nil
}

// configJSON converts the config option to JSON: nil when absent.
func configJSON(n *yaml.Node) ([]byte, error) {
	if n.Kind == 0 {
		return nil, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return b, nil
}
