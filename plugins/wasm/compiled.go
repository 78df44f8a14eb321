package wasm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// moduleKey identifies a compiled module: the file's content and the
// runtime options it is compiled for.
type moduleKey struct {
	sum    [32]byte // SHA-256 of the module's bytes
	pages  uint32   // memory limit
	ensure bool     // compiled with the time limit's checks
}

// compiled is a module compiled in a runtime of its own (which carries
// the memory limit and the WASI host module). It is shared by every
// filter, and every version of one, that loads the same bytes with the
// same limit, so that a reload that keeps a module compiles nothing: the
// new configuration's filter takes a reference before the old one
// releases its own. The last reference closes the runtime.
type compiled struct {
	key    moduleKey
	rt     wazero.Runtime
	cm     wazero.CompiledModule
	err    error
	ready  chan struct{} // closed once rt, cm and err are set
	refs   int           // guarded by modules.mu
	ms     *modules
	closed atomic.Bool // the runtime is closed
}

// modules is the table of compiled modules, with wazero's compilation
// cache. One is kept in plugins.Shared under SharedCacheKey, for every
// wasm filter of the gateway and across reloads; Close (when the gateway
// stops) closes what is left and the cache.
type modules struct {
	cache wazero.CompilationCache // nil: none

	runtimes atomic.Int64 // open runtimes

	mu     sync.Mutex
	byKey  map[moduleKey]*compiled // guarded by mu
	closed bool                    // guarded by mu
}

var _ io.Closer = (*modules)(nil)

func newModules(cache wazero.CompilationCache) *modules {
	return &modules{cache: cache, byKey: make(map[moduleKey]*compiled)}
}

// get returns the module compiled from bin for key, compiling it unless
// another filter holds it, with a reference for the caller to release.
func (ms *modules) get(ctx context.Context, key moduleKey, bin []byte) (*compiled, error) {
	ms.mu.Lock()
	if ms.closed {
		ms.mu.Unlock()
		return nil, errors.New("wasm: modules closed")
	}
	if c, ok := ms.byKey[key]; ok {
		c.refs++
		ms.mu.Unlock()
		select {
		case <-c.ready:
		case <-ctx.Done():
			ms.release(c)
			return nil, ctx.Err()
		}
		if c.err != nil {
			ms.release(c)
			return nil, c.err
		}
		return c, nil
	}
	c := &compiled{key: key, refs: 1, ready: make(chan struct{})}
	ms.byKey[key] = c
	ms.mu.Unlock()
	c.rt, c.cm, c.err = ms.compile(ctx, key, bin)
	c.ms = ms
	close(c.ready)
	if c.err != nil {
		ms.release(c)
		return nil, c.err
	}
	return c, nil
}

func (ms *modules) compile(ctx context.Context, key moduleKey, bin []byte) (wazero.Runtime, wazero.CompiledModule, error) {
	rc := wazero.NewRuntimeConfig().
		WithMemoryLimitPages(key.pages).
		WithCloseOnContextDone(key.ensure)
	if ms.cache != nil {
		rc = rc.WithCompilationCache(ms.cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	ms.runtimes.Add(1)
	fail := func(err error) (wazero.Runtime, wazero.CompiledModule, error) {
		rt.Close(ctx)
		ms.runtimes.Add(-1)
		return nil, nil, err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return fail(fmt.Errorf("wasi: %w", err))
	}
	cm, err := rt.CompileModule(ctx, bin)
	if err != nil {
		return fail(fmt.Errorf("compile: %w", err))
	}
	if err := checkExports(cm); err != nil {
		cm.Close(ctx)
		return fail(err)
	}
	return rt, cm, nil
}

// release drops a reference to c; the last one closes its runtime.
func (ms *modules) release(c *compiled) {
	ms.mu.Lock()
	c.refs--
	last := c.refs == 0
	if last && ms.byKey[c.key] == c {
		delete(ms.byKey, c.key)
	}
	ms.mu.Unlock()
	if last {
		c.close()
	}
}

func (c *compiled) close() {
	if c.closed.Swap(true) || c.rt == nil {
		return
	}
	ctx := context.Background()
	c.cm.Close(ctx)
	c.rt.Close(ctx)
	c.ms.runtimes.Add(-1)
}

// Close closes every module still held (filters not cleaned up) and the
// compilation cache.
func (ms *modules) Close() error {
	ms.mu.Lock()
	ms.closed = true
	left := ms.byKey
	ms.byKey = nil
	ms.mu.Unlock()
	for _, c := range left {
		<-c.ready
		c.close()
	}
	if ms.cache != nil {
		return ms.cache.Close(context.Background())
	}
	return nil
}
