// Package wasm is the "wasm" filter module: it runs each message through
// a WebAssembly module loaded from a file, sandboxed by wazero (pure Go,
// no cgo). A filter is written in ordinary Go with the guest SDK
// (plugins/wasm/guest) and built with the standard toolchain; ABI.md
// describes the interface for other languages. Examples are in
// plugins/examples.
//
// # Configuration
//
//	plugins:
//	  filters:
//	    - channels: ["/chat/**"]
//	      inbound:
//	        - module: wasm
//	          file: filters/profanity.wasm   # relative to the configuration file
//	          maxInstances: 4                # default GOMAXPROCS
//	          memoryPages: 256               # 64 KiB pages per instance; default 256 (16 MiB)
//	          timeout: 100ms                 # per call; default 100ms; -1 removes the limit
//	          watch: 2s                      # file check interval; default 2s; -1s disables
//	          config: {words: [darn, heck], mode: reject}   # handed to the guest's cometgate_init
//
// # Behaviour
//
// Provision compiles the module, makes a first instance (which checks the
// exports, runs the guest's initialisation and hands it the config) and
// fails the load if any of that fails. Compiled modules are shared by
// every filter that loads the same bytes with the same memory limit and
// time-limit setting, through plugins.Shared (key "wasm.cache", with
// wazero's compilation cache; both are released by Shared.Close): a
// reload that keeps a module compiles nothing and costs one instance
// (about 10 ms for a Go guest), and a module no filter holds any more has
// its runtime closed. Compiling a Go guest (about 2 MB) takes 1 to 2 s;
// from wazero's in-memory cache, when another runtime holds it, about
// 50 ms.
//
// Instances are pooled, since a wazero instance serves one call at a
// time: at most MaxInstances exist per filter, idle or busy. A call takes
// an idle one or makes one (about 10 ms for a Go guest: its runtime's
// initialisation); a call that finds all busy waits within its context,
// then is refused with 503::filter_busy.
//
// A call that traps (out-of-bounds access, a Go panic or fatal error),
// runs past its time limit, grows memory past MemoryPages, exits, or
// answers a malformed verdict fails: Filter returns a plain error, which
// the pipeline logs and counts and turns into 500::filter_failed; the
// instance is discarded and a later call makes a fresh one; other calls,
// filters and the gateway are unaffected. What the guest printed during
// the call (a panic's message) is part of the error.
//
// With Watch, the file is checked at that interval (size and mtime, then
// its hash); a changed file is compiled and instantiated aside, then
// swapped in atomically: calls in flight finish on the old module, whose
// instances are closed as they come back. A file that fails to load is
// logged and the current module kept. Cleanup stops the watcher and closes
// the filter's instances (busy ones as their calls end, within Timeout)
// and releases its compiled module.
//
// # The time limit and its cost
//
// A call's time limit (wall clock) needs wazero's WithCloseOnContextDone:
// without it nothing can stop a guest that loops, which would hold its
// instance and an OS thread forever. It costs, per call, a goroutine that
// wazero starts to watch the context (3 allocations, about 1.5 to 2.5 µs
// here), and, per loop iteration and function entry in the guest, a trip
// from the compiled code to Go to check whether the module was closed
// (tens of nanoseconds, several times what the iteration costs
// otherwise). The limit is on by default; timeout: -1 removes it for
// trusted guests. The call's context is a watchdog made once per
// instance, armed and disarmed with a reused timer (about 80 ns, no
// allocation; context.WithTimeout costs about 0.9 µs and 4 allocations).
// Measured on a 2-core AMD EPYC VM (go1.26, wazero 1.12.0), a 200-byte
// message, end to end:
//
//	guest                    time limit on            off (timeout: -1)
//	pass (no work per byte)  4.0-5.0 µs, 3 allocs      2.3-2.5 µs, 0 allocs
//	profanity (scans data)   44-50 µs                  8.8-10.5 µs
//	profanity, 16 KiB        3.4-4.3 ms                0.6-0.8 ms
//
// So a guest should do little work per byte and allocate little (a
// collection in a guest runs under the same checks: a guest decoding and
// encoding each message with encoding/json took 0.4 ms per call and had
// calls over 100 ms). The default limit, 100 ms, is far above what a call
// takes, so that a collection or the host's scheduling on a loaded
// machine does not fail a call.
//
// # Limits
//
// Memory per instance is bounded by MemoryPages (a Go guest starts at
// about 2.3 MiB). The guest gets no files, network or environment; its
// clocks are the host's and its random source crypto/rand; sleeping
// returns at once. Instantiation (the guest's _initialize and
// cometgate_init) is bounded by 1 s.
package wasm
