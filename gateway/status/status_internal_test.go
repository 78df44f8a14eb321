package status

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cometgate/cometgate/gateway/backend"
	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
)

func TestRecorderKeepsLastWarnings(t *testing.T) {
	rec := NewRecorder(3)
	var out bytes.Buffer
	log := slog.New(rec.Handler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelError})))
	log = log.With("node", "a").WithGroup("g")
	log.Info("not kept")
	for i := range 5 {
		log.Warn(fmt.Sprintf("warn %d", i), "n", i)
	}
	log.Error("boom", slog.Group("peer", "addr", "127.0.0.1:1"))
	got := rec.Recent()
	var msgs []string
	for _, e := range got {
		msgs = append(msgs, e.Level+" "+e.Message+" "+e.Attrs)
	}
	want := []string{"WARN warn 3 node=a g.n=3", "WARN warn 4 node=a g.n=4", "ERROR boom node=a g.peer.addr=127.0.0.1:1"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Errorf("Recent() = %q; want %q", msgs, want)
	}
	// The wrapped handler still gets what its level enables, and only that.
	if s := out.String(); !strings.Contains(s, "boom") || strings.Contains(s, "warn 4") || strings.Contains(s, "not kept") {
		t.Errorf("wrapped handler wrote %q; want the error only", s)
	}
}

func TestRecorderCutsLongEntries(t *testing.T) {
	rec := NewRecorder(1)
	slog.New(rec.Handler(slog.DiscardHandler)).Warn(strings.Repeat("é", 500), "k", strings.Repeat("v", 5000))
	e := rec.Recent()[0]
	if len(e.Message) > maxMessageLen+len("…") || len(e.Attrs) > maxAttrsLen+len("…") || !strings.HasSuffix(e.Message, "…") {
		t.Errorf("entry of %d+%d bytes; want at most %d+%d, marked as cut", len(e.Message), len(e.Attrs), maxMessageLen, maxAttrsLen)
	}
	if !strings.HasPrefix(e.Message, "éé") || strings.ContainsRune(e.Message, '\uFFFD') {
		t.Errorf("message cut inside a rune: %q", e.Message[:10])
	}
}

// send processes one batch of raw messages for c and returns the replies.
func send(t *testing.T, e *engine.Engine, c *engine.Client, raw string) []*bayeux.Message {
	t.Helper()
	msgs, err := bayeux.Decode([]byte(raw), 0)
	if err != nil {
		t.Fatal(err)
	}
	b := e.Process(context.Background(), c, msgs)
	defer b.End()
	var out []*bayeux.Message
	for _, x := range b.Exchanges {
		out = append(out, x.Reply)
	}
	return out
}

// subscriber handshakes a long-polling session subscribed to channel.
func subscriber(t *testing.T, e *engine.Engine, browser, channel string) {
	t.Helper()
	c := &engine.Client{Transport: "long-polling", Browser: browser}
	r := send(t, e, c, `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]`)
	if !r[0].Successful {
		t.Fatalf("handshake: %s", r[0])
	}
	r = send(t, e, c, `[{"channel":"/meta/subscribe","clientId":"`+r[0].ClientID+`","subscription":"`+channel+`"}]`)
	if !r[0].Successful {
		t.Fatalf("subscribe: %s", r[0])
	}
}

// TestSnapshotRates computes rates between two snapshots taken at chosen
// times, so that the expected values are exact.
func TestSnapshotRates(t *testing.T) {
	var calls, callTime int64
	e := engine.New(engine.Config{})
	s := New(Config{
		Authorize: func(*http.Request) bool { return true },
		Backends: func() []backend.BackendState {
			return []backend.BackendState{{Name: "b", Kind: "grpc", State: "READY", Calls: calls, CallTime: time.Duration(callTime)}}
		},
	})
	s.Bind(e)
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	subscriber(t, e, "A", "/a")
	subscriber(t, e, "B", "/b")
	publish := func(ch string, n int) {
		for range n {
			if _, err := e.Publish(ch, json.RawMessage("1"), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	t0 := time.Unix(1000, 0)
	var smp sampler
	publish("/a", 2)
	calls, callTime = 2, int64(20*time.Millisecond)
	first := s.snapshot(&smp, t0)
	if first.Rates.Published != 0 || first.Backends[0].AvgMs != 10 {
		t.Errorf("first snapshot: published rate %v, mean call %vms; want 0, 10 (all calls)", first.Rates.Published, first.Backends[0].AvgMs)
	}
	publish("/a", 4)
	publish("/b", 1)
	calls, callTime = 3, int64(24*time.Millisecond)
	second := s.snapshot(&smp, t0.Add(2*time.Second))
	if second.Rates.Published != 2.5 {
		t.Errorf("published rate %v; want 2.5 (5 in 2s)", second.Rates.Published)
	}
	if second.Backends[0].AvgMs != 4 {
		t.Errorf("mean call %vms; want 4 (the one call since the previous snapshot)", second.Backends[0].AvgMs)
	}
	want := []ChannelStat{{Channel: "/a", Subscribers: 1, Published: 6, Rate: 2}, {Channel: "/b", Subscribers: 1, Published: 1, Rate: 0.5}}
	if fmt.Sprint(second.TopByRate) != fmt.Sprint(want) {
		t.Errorf("topByRate %+v; want %+v", second.TopByRate, want)
	}
}

// TestPublisherRunsOnlyWhileWatched: the publisher starts with the first
// status subscription and stops when the last status session leaves; a
// session without the key changes nothing.
func TestPublisherRunsOnlyWhileWatched(t *testing.T) {
	s := New(Config{Authorize: func(*http.Request) bool { return true }, Interval: time.Hour})
	e := engine.New(engine.Config{}, engine.WithPolicy(s))
	s.Bind(e)
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	running := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.stop != nil
	}
	subscriber(t, e, "A", "/a")
	if running() {
		t.Fatal("publisher running without a status session")
	}
	c := &engine.Client{Transport: "long-polling", Browser: "S"}
	r := send(t, e, c, `[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"cometgate":{"statusKey":"`+s.key+`"}}}]`)
	if !r[0].Successful {
		t.Fatalf("status handshake: %s", r[0])
	}
	id := r[0].ClientID
	if r = send(t, e, c, `[{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"`+Channel+`"}]`); !r[0].Successful {
		t.Fatalf("status subscribe: %s", r[0])
	}
	if !running() {
		t.Fatal("publisher not running with a status subscriber")
	}
	if r = send(t, e, c, `[{"channel":"/meta/disconnect","clientId":"`+id+`"}]`); !r[0].Successful {
		t.Fatalf("disconnect: %s", r[0])
	}
	if running() {
		t.Error("publisher still running after the last status session left")
	}
}
