package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cometgate/cometgate/internal/poll"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/plugins"
	"go.yaml.in/yaml/v3"
)

func TestDecodeOptions(t *testing.T) {
	f := mustFilter(t, "profanity", "maxInstances: 3\nmemoryPages: 64\ntimeout: 7ms\nwatch: -1s\nconfig: {words: [heck], mode: reject}\n")
	if f.MaxInstances != 3 || f.MemoryPages != 64 || f.Timeout.D() != 7*time.Millisecond || f.Watch.D() >= 0 {
		t.Errorf("options = %d, %d, %v, %v; want 3, 64, 7ms, negative", f.MaxInstances, f.MemoryPages, f.Timeout, f.Watch)
	}
	if f.stop != nil {
		t.Error("a negative watch started the watcher")
	}
	if got := string(f.cfgJSON); got != `{"mode":"reject","words":["heck"]}` {
		t.Errorf("config JSON = %s", got)
	}

	d := mustFilter(t, "profanity", "")
	if d.MemoryPages != DefaultMemoryPages || d.Timeout.D() != DefaultTimeout || d.Watch.D() != DefaultWatch || d.MaxInstances < 1 || d.cfgJSON != nil {
		t.Errorf("defaults = %d, %v, %v, %d, %s", d.MemoryPages, d.Timeout, d.Watch, d.MaxInstances, d.cfgJSON)
	}

	bad := []struct {
		name, guest, options, want string
	}{
		{"unknown option", "profanity", "colour: red\n", "field colour not found"},
		{"missing file", "profanity", "file: nowhere.wasm\n", "nowhere.wasm"},
		{"negative instances", "profanity", "maxInstances: -1\n", "maxInstances: -1"},
		{"too many pages", "profanity", "memoryPages: 70000\n", "memoryPages: 70000"},
		{"memory below the guest's minimum", "profanity", "memoryPages: 8\n", "compile"},
		{"config refused by the guest", "profanity", "config: {mode: shout}\n", `config refused: profanity: mode "shout"`},
		{"missing exports", "noexport", "", "missing export cometgate_alloc"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			options := tc.options
			guest := tc.guest
			if strings.HasPrefix(options, "file:") {
				guestPath(t, guest)
				_, _, err := testRegistry(t).Decode(testContext(nil), plugins.KindFilter, yamlNode(t, "module: wasm\n"+options))
				checkErr(t, err, tc.want)
				return
			}
			_, err := decodeFilter(t, guest, options)
			checkErr(t, err, tc.want)
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v; want one containing %q", err, want)
	}
}

func TestProfanity(t *testing.T) {
	replace := mustFilter(t, "profanity", "config: {words: [heck, Darn]}\n")
	reject := mustFilter(t, "profanity", "config: {words: [heck], mode: reject}\n")
	tests := []struct {
		name   string
		f      *Filter
		data   string
		want   string // the data after; "" when rejected
		reject bool
	}{
		{"clean", replace, `{"text":"hello there"}`, `{"text":"hello there"}`, false},
		{"masked", replace, `{"text":"oh heck, DARN it"}`, `{"text":"oh ****, **** it"}`, false},
		{"whole words only", replace, `{"text":"checker darning"}`, `{"text":"checker darning"}`, false},
		{"keys and escapes", replace, `{"heck":"a \"heck\" b","n":[1,"darn"]}`, `{"****":"a \"****\" b","n":[1,"****"]}`, false},
		{"outside strings", replace, `[true,null]`, `[true,null]`, false},
		{"rejected", reject, `{"text":"heck"}`, "", true},
		{"not rejected", reject, `{"text":"hecks"}`, `{"text":"hecks"}`, false},
	}
	ctx := testCtx(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := testMessage(tc.data)
			orig := m.Data
			err := tc.f.Filter(ctx, m)
			if tc.reject {
				r, ok := plugins.AsRejection(err)
				if !ok || r.BayeuxCode() != 403 || r.Reason != "profanity" {
					t.Fatalf("Filter(%s) = %v; want 403::profanity", tc.data, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Filter(%s) = %v", tc.data, err)
			}
			if string(m.Data) != tc.want {
				t.Errorf("Filter(%s) data = %s; want %s", tc.data, m.Data, tc.want)
			}
			if string(orig) != tc.data {
				t.Errorf("Filter wrote into the message's data: %s", orig)
			}
		})
	}
}

func TestPassGuest(t *testing.T) {
	f := mustFilter(t, "pass", "")
	ctx := testCtx(t)
	m := testMessage(`{"a":1}`)
	if err := f.Filter(ctx, m); err != nil || string(m.Data) != `{"a":1}` {
		t.Errorf("Filter(/chat/room) = %v, %s; want it passed unchanged", err, m.Data)
	}
	m.Channel = "/blocked/x"
	if r, ok := plugins.AsRejection(f.Filter(ctx, m)); !ok || r.Error() != "403::blocked" {
		t.Errorf("Filter(/blocked/x) = %v; want 403::blocked", r)
	}
}

func TestTimestamp(t *testing.T) {
	f := mustFilter(t, "timestamp", "config: {field: ts}\n")
	ctx := testCtx(t)
	before := time.Now().UnixMilli()
	m := testMessage(`{"text":"hi"}`)
	if err := f.Filter(ctx, m); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	var got struct {
		Text string `json:"text"`
		TS   int64  `json:"ts"`
	}
	if err := json.Unmarshal(m.Data, &got); err != nil {
		t.Fatalf("data %s: %v", m.Data, err)
	}
	if got.Text != "hi" || got.TS < before || got.TS > after {
		t.Errorf("data = %s; want text hi and ts in [%d, %d]", m.Data, before, after)
	}

	for _, data := range []string{`"just a string"`, `[{}]`, `{"unterminated"`} {
		m = testMessage(data)
		if err := f.Filter(ctx, m); err != nil || string(m.Data) != data {
			t.Errorf("Filter(%s) = %v, %s; want it passed", data, err, m.Data)
		}
	}
	for _, data := range []string{`{}`, ` { } `, `{"ts":1}`} {
		m = testMessage(data)
		var got struct {
			TS int64 `json:"ts"`
		}
		if err := f.Filter(ctx, m); err != nil || json.Unmarshal(m.Data, &got) != nil || got.TS < before {
			t.Errorf("Filter(%s) = %v, %s; want a valid object with ts set", data, err, m.Data)
		}
	}
}

// TestHostileGuests: each misbehaving call fails alone (an error, not a
// rejection; 500::filter_failed through a chain), the instance is
// replaced, and the filter and the other filters go on.
func TestHostileGuests(t *testing.T) {
	good := mustFilter(t, "profanity", "")
	tests := []struct {
		guest, trigger, want string
	}{
		{"loop", `"loop"`, "time limit of 100ms exceeded"},
		{"oob", `"trap"`, "out of bounds memory access"},
		{"hugealloc", `"grow"`, "out of memory"},
		{"panic", `"boom"`, "panic: boom"},
		{"garbage", `"oob"`, "outside memory"},
		{"garbage", `"len"`, "do not add up"},
		{"garbage", `"kind"`, "unknown kind 9"},
		{"garbage", `"code"`, "rejection code 99"},
		{"garbage", `"huge"`, "exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.guest+"/"+strings.Trim(tc.trigger, `"`), func(t *testing.T) {
			f := mustFilter(t, tc.guest, "maxInstances: 1\n")
			ctx := testCtx(t)
			if err := f.Filter(ctx, testMessage(`{"text":"fine"}`)); err != nil {
				t.Fatalf("harmless message: %v", err)
			}
			start := time.Now()
			err := f.Filter(ctx, testMessage(tc.trigger))
			if err == nil {
				t.Fatalf("Filter(%s) passed; want a failure", tc.trigger)
			}
			if _, ok := plugins.AsRejection(err); ok {
				t.Fatalf("Filter(%s) = rejection %v; want a failure", tc.trigger, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Filter(%s) = %v; want it to mention %q", tc.trigger, err, tc.want)
			}
			t.Logf("%s failed after %v: %v", tc.guest, time.Since(start), err)
			if n := f.live.Load(); n != 0 {
				t.Errorf("%d instances live after the failure; want the failed one discarded", n)
			}
			if st := f.Stats(); st[1].Name != "wasm_failed_calls_total" || st[1].Value != 1 {
				t.Errorf("Stats = %+v; want one failed call", st)
			}
			for i := 0; i < 3; i++ {
				if err := f.Filter(ctx, testMessage(`{"text":"fine"}`)); err != nil {
					t.Fatalf("call %d after the failure: %v", i, err)
				}
			}
			m := testMessage(`{"text":"heck"}`)
			if err := good.Filter(ctx, m); err != nil || string(m.Data) != `{"text":"****"}` {
				t.Errorf("profanity after %s: %v, %s", tc.guest, err, m.Data)
			}
		})
	}
}

// TestFailureThroughChain: a failing wasm filter is counted and logged by
// the pipeline and refused with 500::filter_failed; the message is left
// as it was.
func TestFailureThroughChain(t *testing.T) {
	guestPath(t, "panic")
	var log logBuffer
	reg := testRegistry(t)
	cfg := config.PluginsConfig{Filters: []config.FilterChainConfig{{
		Channels: []string{"/chat/**"},
		Inbound:  []yaml.Node{*yamlNode(t, "module: wasm\nfile: panic.wasm\n")},
	}}}
	counters := new(plugins.Counters)
	set, err := plugins.Load(testContext(slog.New(slog.NewTextHandler(&log, nil))), reg, cfg, counters)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Retire(context.Background())
	route := set.Route("/chat/room")
	m := testMessage(`{"text":"boom"}`)
	rej := route.In.Run(testCtx(t), m, set.Logger())
	if rej == nil || rej.Error() != "500::filter_failed" || string(m.Data) != `{"text":"boom"}` {
		t.Errorf("Run = %v, data %s; want 500::filter_failed and the data unchanged", rej, m.Data)
	}
	if rej := route.In.Run(testCtx(t), testMessage(`{"text":"ok"}`), set.Logger()); rej != nil {
		t.Errorf("Run after the failure = %v", rej)
	}
	fc := counters.Filter(plugins.FilterKey{Module: "wasm", Direction: plugins.Inbound})
	if fc.Failed.Load() != 1 || fc.Passed.Load() != 1 {
		t.Errorf("counts failed %d passed %d; want 1 and 1", fc.Failed.Load(), fc.Passed.Load())
	}
	if err := log.contains("panic: boom"); err != nil {
		t.Error(err)
	}
}

// TestBusy: with every instance busy, a call waits within its context and
// is then refused with 503::filter_busy.
func TestBusy(t *testing.T) {
	f := mustFilter(t, "loop", "maxInstances: 1\ntimeout: 1s\n")
	ctx := testCtx(t)
	done := make(chan error, 1)
	go func() { done <- f.Filter(ctx, testMessage(`"loop"`)) }()
	poll.Eventually(t, testTimeout, func() error {
		if len(f.tokens) != 1 {
			return errors.New("the looping call has not started")
		}
		return nil
	})
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	err := f.Filter(short, testMessage(`{}`))
	if r, ok := plugins.AsRejection(err); !ok || r.BayeuxCode() != 503 || r.Reason != "filter_busy" {
		t.Errorf("Filter with every instance busy = %v; want 503::filter_busy", err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "time limit of 1s") {
		t.Errorf("looping call = %v; want the time limit", err)
	}
	if err := f.Filter(ctx, testMessage(`{}`)); err != nil {
		t.Errorf("Filter once the instance is free = %v", err)
	}
	if st := f.Stats(); st[2].Name != "wasm_busy_total" || st[2].Value != 1 || st[1].Value != 1 {
		t.Errorf("Stats = %+v; want one busy refusal and one failed call", st)
	}
}

// TestConcurrentCalls: calls from many goroutines share at most
// maxInstances instances and all get their own answer.
func TestConcurrentCalls(t *testing.T) {
	f := mustFilter(t, "profanity", "maxInstances: 3\n")
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	var peakMu sync.Mutex
	peak := int32(0)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				word := "heck"
				want := "****"
				if i%2 == 1 {
					word, want = "hello"+strconv.Itoa(g), "hello"+strconv.Itoa(g)
				}
				m := testMessage(`{"text":"` + word + `"}`)
				if err := f.Filter(ctx, m); err != nil || string(m.Data) != `{"text":"`+want+`"}` {
					errs <- fmt.Errorf("Filter(%s) = %v, %s", word, err, m.Data)
					return
				}
				peakMu.Lock()
				peak = max(peak, f.live.Load())
				peakMu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if peak > 3 || peak < 1 {
		t.Errorf("peak live instances = %d; want 1 to 3", peak)
	}
}

// TestWatchSwapsModule: a changed file is compiled and swapped in; the old
// runtime is closed; a file that does not load is logged and the module
// in use kept.
func TestWatchSwapsModule(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "filter.wasm")
	copyFile(t, guestPath(t, "profanity"), file)
	var log logBuffer
	reg := testRegistry(t)
	pctx := testContext(slog.New(slog.NewTextHandler(&log, nil)))
	pctx.Dir = dir
	_, mod, err := reg.Decode(pctx, plugins.KindFilter, yamlNode(t, "module: wasm\nfile: filter.wasm\nwatch: 10ms\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := mod.(*Filter)
	defer f.Cleanup()
	ctx := testCtx(t)
	first := f.cur.Load()
	m := testMessage(`{"text":"heck"}`)
	if err := f.Filter(ctx, m); err != nil || string(m.Data) != `{"text":"****"}` {
		t.Fatalf("profanity: %v, %s", err, m.Data)
	}

	replaceFile(t, guestPath(t, "timestamp"), file)
	poll.Eventually(t, testTimeout, func() error {
		m := testMessage(`{"text":"heck"}`)
		if err := f.Filter(ctx, m); err != nil {
			return err
		}
		if !strings.Contains(string(m.Data), `"timestamp":`) {
			return fmt.Errorf("data %s: not the timestamp module yet", m.Data)
		}
		return nil
	})
	if !first.closed.Load() || !first.c.closed.Load() {
		t.Error("the replaced module's runtime is still open")
	}
	second := f.cur.Load()

	replaceFile(t, guestPath(t, "noexport"), file)
	poll.Eventually(t, testTimeout, func() error { return log.contains("does not load") })
	if err := log.contains("missing export cometgate_filter"); err != nil {
		t.Error(err)
	}
	if f.cur.Load() != second {
		t.Error("a module that does not load replaced the working one")
	}
	m = testMessage(`{"a":1}`)
	if err := f.Filter(ctx, m); err != nil || !strings.Contains(string(m.Data), `"timestamp":`) {
		t.Errorf("after a bad file: %v, %s; want the timestamp module still", err, m.Data)
	}

	if err := f.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if !second.closed.Load() || !second.c.closed.Load() {
		t.Error("Cleanup left the runtime open")
	}
	if err := f.Filter(ctx, testMessage(`{}`)); err == nil {
		t.Error("Filter after Cleanup passed")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile replaces to atomically, as a deployment would.
func replaceFile(t *testing.T, from, to string) {
	t.Helper()
	tmp := to + ".tmp"
	copyFile(t, from, tmp)
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}
