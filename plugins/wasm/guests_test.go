package wasm

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometgate/cometgate/plugins"
	"github.com/tetratelabs/wazero"
	"go.yaml.in/yaml/v3"
)

// The example guests are built from source once per test binary, into
// guestDir, each on first use.
var (
	guestDir string
	// testShared is the plugins.Shared of every filter the tests make; its
	// compilation cache is backed by a directory, so that a guest compiled
	// by one test is not compiled again by the next (an in-memory cache
	// forgets a module once no runtime holds it).
	testShared = new(plugins.Shared)
	builds     sync.Map // guest name -> *guestBuild
)

type guestBuild struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cometgate-wasm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	guestDir = filepath.Join(dir, "guests")
	cacheDir := testCacheDir(dir)
	if _, err := testShared.Get(SharedCacheKey, func() (any, error) {
		c, err := wazero.NewCompilationCacheWithDir(cacheDir)
		return newModules(c), err
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	testShared.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testCacheDir returns the directory of the tests' compilation cache:
// under the user's cache directory, so that later runs skip compiling
// guests that did not change (compiling a Go guest takes over a second,
// and ten times that under the race detector); entries are keyed by the
// module's hash, wazero's version and the CPU. Without a user cache
// directory, a directory under tmp, removed at the end.
func testCacheDir(tmp string) string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "cometgate-wasm-test")
	}
	return filepath.Join(tmp, "cache")
}

// buildTimeout bounds building one guest (a cold build of the Go runtime
// for wasip1 takes tens of seconds on a loaded 2-core machine).
const buildTimeout = 4 * time.Minute

// guestPath returns the path of the example guest name, building it on
// first use.
func guestPath(tb testing.TB, name string) string {
	tb.Helper()
	v, _ := builds.LoadOrStore(name, new(guestBuild))
	b := v.(*guestBuild)
	b.once.Do(func() { b.path, b.err = buildGuest(name) })
	if b.err != nil {
		tb.Fatalf("build guest %s: %v", name, b.err)
	}
	return b.path
}

func buildGuest(name string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(guestDir, name+".wasm")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-buildmode=c-shared", "-o", out, "../examples/"+name)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w: %s", err, msg)
	}
	return out, nil
}

// testRegistry returns a registry with this package's modules.
func testRegistry(tb testing.TB) *plugins.Registry {
	tb.Helper()
	reg := plugins.NewRegistry()
	for _, m := range Modules() {
		if err := reg.Register(m); err != nil {
			tb.Fatal(err)
		}
	}
	return reg
}

// yamlNode parses a YAML snippet into its top node.
func yamlNode(tb testing.TB, src string) *yaml.Node {
	tb.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		tb.Fatalf("yaml %q: %v", src, err)
	}
	return doc.Content[0]
}

// testContext is the provisioning context of the tests' filters: guests
// resolve from the build directory.
func testContext(log *slog.Logger) *plugins.Context {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &plugins.Context{Context: context.Background(), Logger: log, Dir: guestDir, Shared: testShared}
}

// decodeFilter decodes a "wasm" filter entry (the guest it names is built
// first); the filter is cleaned up when the test ends.
func decodeFilter(tb testing.TB, guest, options string) (*Filter, error) {
	tb.Helper()
	return decodeFilterLog(tb, guest, options, nil)
}

func decodeFilterLog(tb testing.TB, guest, options string, log *slog.Logger) (*Filter, error) {
	tb.Helper()
	guestPath(tb, guest)
	src := "module: wasm\nfile: " + guest + ".wasm\n" + options
	_, m, err := testRegistry(tb).Decode(testContext(log), plugins.KindFilter, yamlNode(tb, src))
	if err != nil {
		return nil, err
	}
	f := m.(*Filter)
	tb.Cleanup(func() { f.Cleanup() })
	return f, nil
}

func mustFilter(tb testing.TB, guest, options string) *Filter {
	tb.Helper()
	f, err := decodeFilter(tb, guest, options)
	if err != nil {
		tb.Fatalf("decode wasm filter %s: %v", guest, err)
	}
	return f
}

// testMessage returns an inbound client message on /chat/room with data.
func testMessage(data string) *plugins.Message {
	return &plugins.Message{
		Channel:   "/chat/room",
		ID:        "42",
		Data:      []byte(data),
		Direction: plugins.Inbound,
		Source:    plugins.FromClient,
		Client:    plugins.Client{ID: "c1", User: "alice", Transport: "websocket"},
	}
}

// testTimeout bounds each blocking step of a test; compiling a guest not
// yet in the cache takes up to tens of seconds under the race detector.
const testTimeout = 2 * time.Minute

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	tb.Cleanup(cancel)
	return ctx
}

// logBuffer is a slog destination that tests read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) contains(s string) error {
	if out := l.String(); !strings.Contains(out, s) {
		return fmt.Errorf("log lacks %q; log:\n%s", s, out)
	}
	return nil
}
