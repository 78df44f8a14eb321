package wasm

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometgate/cometgate/plugins"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// version is one content of the module file, compiled (and shared, see
// compiled), with this filter's pool of idle instances. It is reference
// counted: one reference while it is the filter's current version, one
// per instance in use. Once retired, the last reference closes its
// instances and releases the compiled module.
type version struct {
	f    *Filter
	c    *compiled
	idle chan *instance // at most MaxInstances

	refs      atomic.Int64
	retired   atomic.Bool
	closeOnce sync.Once
	closed    atomic.Bool
}

// compile makes a version of bin with one reference (the current one).
func (f *Filter) compile(ctx context.Context, bin []byte) (*version, error) {
	key := moduleKey{sum: sha256.Sum256(bin), pages: f.MemoryPages, ensure: !f.noEnsure}
	c, err := f.modules.get(ctx, key, bin)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.File, err)
	}
	v := &version{f: f, c: c, idle: make(chan *instance, f.MaxInstances)}
	v.refs.Store(1)
	return v, nil
}

// checkExports checks that the module exports the ABI's functions with
// their signatures.
func checkExports(cm wazero.CompiledModule) error {
	fns := cm.ExportedFunctions()
	want := []struct {
		name     string
		params   []api.ValueType
		results  []api.ValueType
		optional bool
	}{
		{exportInitialize, nil, nil, true},
		{exportAlloc, []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}, false},
		{exportFilter, []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}, false},
		{exportInit, []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}, true},
	}
	var errs []error
	for _, w := range want {
		d, ok := fns[w.name]
		if !ok {
			if !w.optional {
				errs = append(errs, fmt.Errorf("missing export %s", w.name))
			}
			continue
		}
		if !sameTypes(d.ParamTypes(), w.params) || !sameTypes(d.ResultTypes(), w.results) {
			errs = append(errs, fmt.Errorf("export %s has signature %v -> %v, want %v -> %v",
				w.name, typeNames(d.ParamTypes()), typeNames(d.ResultTypes()), typeNames(w.params), typeNames(w.results)))
		}
	}
	if len(cm.ExportedMemories()) == 0 {
		errs = append(errs, errors.New("missing exported memory"))
	}
	return errors.Join(errs...)
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func typeNames(ts []api.ValueType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = api.ValueTypeName(t)
	}
	return out
}

// acquire takes a reference, failing once v is retired.
func (v *version) acquire() bool {
	if v.retired.Load() {
		return false
	}
	v.refs.Add(1)
	if v.retired.Load() {
		v.release()
		return false
	}
	return true
}

// release drops a reference; the last one of a retired version closes it.
func (v *version) release() {
	if v.refs.Add(-1) == 0 && v.retired.Load() {
		v.close()
	}
}

// retire drops the current reference: idle instances are closed, and
// the runtime with the last reference.
func (v *version) retire() {
	v.retired.Store(true)
	v.drain()
	v.release()
}

func (v *version) drain() {
	for {
		select {
		case in := <-v.idle:
			in.close()
		default:
			return
		}
	}
}

// close closes the idle instances (the others are closed as they come
// back) and releases the compiled module.
func (v *version) close() {
	v.closeOnce.Do(func() {
		v.drain()
		v.f.modules.release(v.c)
		v.closed.Store(true)
	})
}

// put returns an instance after a call: a healthy one to the pool of its
// version while current, any other closed. It drops the instance's
// reference.
func (v *version) put(in *instance, healthy bool) {
	stopped := in.wd.stop()
	if healthy && stopped && !v.retired.Load() {
		select {
		case v.idle <- in:
			if v.retired.Load() {
				v.drain() // retired meanwhile: do not keep it
			}
		default:
			in.close()
		}
	} else {
		in.close()
	}
	v.release()
}

// instance is one instantiated module, used by one call at a time.
type instance struct {
	v      *version
	mod    api.Module
	mem    api.Memory
	alloc  api.Function
	filter api.Function
	stack  [2]uint64
	inPtr  uint32 // the guest's input buffer
	inCap  uint32
	buf    []byte // the message, encoded
	wd     watchdog
	stderr capWriter
}

// newInstance instantiates the module, runs its _initialize and
// cometgate_init, within initTimeout and ctx. The caller holds a
// reference to v, which the instance then carries.
func (v *version) newInstance(parent context.Context) (*instance, error) {
	if err := parent.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(parent, initTimeout)
	defer cancel()
	in := &instance{v: v}
	mc := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(exportInitialize).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader).
		WithStderr(&in.stderr).
		WithStdout(&in.stderr)
	mod, err := v.c.rt.InstantiateModule(ctx, v.c.cm, mc)
	if err != nil {
		if perr := parent.Err(); perr != nil {
			return nil, fmt.Errorf("instantiate: %w", perr)
		}
		return nil, fmt.Errorf("instantiate: %w", in.describe(err, ctx))
	}
	in.mod = mod
	v.f.live.Add(1)
	in.mem = mod.Memory()
	in.alloc = mod.ExportedFunction(exportAlloc)
	in.filter = mod.ExportedFunction(exportFilter)
	in.wd.init()
	if initFn := mod.ExportedFunction(exportInit); initFn != nil {
		cfg := v.f.cfgJSON
		if cfg == nil {
			cfg = []byte("null")
		}
		in.stack[0], in.stack[1] = 0, 0
		err := in.send(ctx, cfg)
		if err == nil {
			in.stack[0], in.stack[1] = uint64(in.inPtr), uint64(len(cfg))
			if err = initFn.CallWithStack(ctx, in.stack[:]); err != nil {
				err = in.describe(err, ctx)
			}
		}
		if err == nil && in.stack[0] != 0 {
			var vd verdict
			if vd, err = in.record(in.stack[0]); err == nil {
				err = fmt.Errorf("config refused: %s", oneLine(vd.reason))
				if vd.kind != kindFail {
					err = fmt.Errorf("%w: cometgate_init returned a verdict of kind %d", errGarbage, vd.kind)
				}
			}
		}
		if err != nil {
			in.close()
			return nil, fmt.Errorf("cometgate_init: %w", err)
		}
	}
	return in, nil
}

// send makes sure the guest's input buffer holds len(b) bytes and copies
// b into it.
func (in *instance) send(ctx context.Context, b []byte) error {
	n := uint32(len(b))
	if uint64(len(b)) > uint64(in.mem.Size()) {
		return fmt.Errorf("message of %d bytes exceeds the guest's memory", len(b))
	}
	if n > in.inCap {
		size := uint32(minInput)
		for size < n {
			size <<= 1
		}
		in.stack[0] = uint64(size)
		if err := in.alloc.CallWithStack(ctx, in.stack[:]); err != nil {
			return fmt.Errorf("%s: %w", exportAlloc, in.describe(err, ctx))
		}
		ptr := uint32(in.stack[0])
		if ptr == 0 || uint64(ptr)+uint64(size) > uint64(in.mem.Size()) {
			return fmt.Errorf("%w: %s(%d) returned %#x, outside memory", errGarbage, exportAlloc, size, ptr)
		}
		in.inPtr, in.inCap = ptr, size
	}
	if !in.mem.Write(in.inPtr, b) {
		return fmt.Errorf("%w: input buffer %#x+%d outside memory", errGarbage, in.inPtr, n)
	}
	return nil
}

// call runs the filter export on m, within the time limit. An error
// means the instance must not be used again.
func (in *instance) call(m *plugins.Message) (verdict, error) {
	in.buf = appendMessage(in.buf[:0], m)
	in.stderr.reset()
	ctx := context.Background()
	if !in.v.f.noEnsure {
		ctx = in.wd.start(in.v.f.Timeout.D())
	}
	if err := in.send(ctx, in.buf); err != nil {
		return verdict{}, err
	}
	in.stack[0], in.stack[1] = uint64(in.inPtr), uint64(len(in.buf))
	if err := in.filter.CallWithStack(ctx, in.stack[:]); err != nil {
		return verdict{}, in.describe(err, ctx)
	}
	if in.stack[0] == 0 {
		return verdict{}, nil
	}
	return in.record(in.stack[0])
}

// record reads the verdict record at the packed pointer and length res.
func (in *instance) record(res uint64) (verdict, error) {
	ptr, n := uint32(res>>32), uint32(res)
	if n > maxRecord {
		return verdict{}, fmt.Errorf("%w: record of %d bytes exceeds %d", errGarbage, n, maxRecord)
	}
	rec, ok := in.mem.Read(ptr, n)
	if !ok {
		return verdict{}, fmt.Errorf("%w: record %#x+%d outside memory", errGarbage, ptr, n)
	}
	return decodeRecord(rec)
}

// describe makes a call's error say what happened: the time limit, the
// guest's exit code, or the trap's first line; with what the guest
// printed (a Go panic's message, "fatal error: out of memory").
func (in *instance) describe(err error, ctx context.Context) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			if _, ok := ctx.(*watchdog); ok {
				return fmt.Errorf("time limit of %v exceeded", in.v.f.Timeout)
			}
			return fmt.Errorf("instantiation time limit of %v exceeded", initTimeout)
		case sys.ExitCodeContextCanceled:
			return errors.New("canceled")
		}
		err = fmt.Errorf("guest exited with code %d", exit.ExitCode())
	} else if msg := err.Error(); strings.IndexByte(msg, '\n') >= 0 {
		err = errors.New(msg[:strings.IndexByte(msg, '\n')]) // drop the wasm stack trace
	}
	if out := in.stderr.String(); out != "" {
		if i := strings.Index(out, " goroutine "); i > 0 {
			out = out[:i] // the message, not the goroutine dump
		}
		if len(out) > 200 {
			out = out[:200]
		}
		return fmt.Errorf("%w; guest printed: %s", err, out)
	}
	return err
}

// close releases the instance (its memory goes with it).
func (in *instance) close() {
	if in.mod != nil {
		in.mod.Close(context.Background())
		in.mod = nil
		in.v.f.live.Add(-1)
	}
}

// watchdog is an instance's call context: its Done closes when the time
// limit of the current call passes, and wazero (WithCloseOnContextDone)
// then stops the guest. It is made once per instance and reused by each
// call, saving context.WithTimeout's allocations; once it has fired the
// instance is discarded.
type watchdog struct {
	done  chan struct{}
	fired atomic.Bool
	timer *time.Timer
	armed bool
}

func (w *watchdog) init() {
	w.done = make(chan struct{})
	w.timer = time.AfterFunc(time.Hour, func() {
		w.fired.Store(true)
		close(w.done)
	})
	w.timer.Stop()
}

// start arms the time limit and returns the call's context.
func (w *watchdog) start(limit time.Duration) context.Context {
	w.armed = true
	w.timer.Reset(limit)
	return w
}

// stop disarms the time limit; false if it fired (the instance must then
// be discarded).
func (w *watchdog) stop() bool {
	if w.armed {
		w.armed = false
		return w.timer.Stop() && !w.fired.Load()
	}
	return !w.fired.Load()
}

// Deadline implements context.Context.
func (w *watchdog) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context.
func (w *watchdog) Done() <-chan struct{} { return w.done }

// Err implements context.Context.
func (w *watchdog) Err() error {
	if w.fired.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

// Value implements context.Context; a call's context carries no values.
func (w *watchdog) Value(any) any { return nil }

// capWriter keeps the first bytes a guest writes to stdout and stderr in
// one call, for the error of a guest that exits (a Go panic's message).
type capWriter struct {
	mu  sync.Mutex
	buf []byte
}

const capWriterMax = 512

func (w *capWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := capWriterMax - len(w.buf); room > 0 {
		w.buf = append(w.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (w *capWriter) reset() {
	w.mu.Lock()
	w.buf = w.buf[:0]
	w.mu.Unlock()
}

// String returns what was written, on one line.
func (w *capWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return oneLine(string(w.buf))
}

// oneLine makes a guest's text fit a log line: whitespace collapsed,
// at most maxReason bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxReason {
		s = s[:maxReason]
	}
	return s
}
