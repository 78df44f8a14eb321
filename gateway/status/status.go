package status

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cometgate/cometgate/gateway/backend"
	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
)

// Channel is the server-side channel the status page subscribes to.
const Channel = "/cometgate/status"

// channelPrefix starts every channel reserved for the status page.
const channelPrefix = "/cometgate/"

// sessionAttr marks a session that handshook with the status key.
const sessionAttr = "cometgate.status"

// Config configures a Status. Only Authorize is required.
type Config struct {
	// Authorize reports whether a request may use the control API (its
	// Host header and its credentials); the page and its Bayeux endpoint
	// accept the same requests. Required.
	Authorize func(*http.Request) bool
	// Conns returns how many connections the Bayeux endpoint holds.
	// Default: none reported.
	Conns func() int
	// Backends returns the backends' states. Default: none reported.
	Backends func() []backend.BackendState
	// Errors holds the recent warnings and errors. Default: none reported.
	Errors *Recorder
	// Interval is the time between two snapshots. Default 1s.
	Interval time.Duration
	// TopChannels is the length of each top-channel list. Default 10.
	TopChannels int
	// Logger logs the page's refusals at debug level. Default
	// slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.TopChannels <= 0 {
		c.TopChannels = 10
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Conns == nil {
		c.Conns = func() int { return 0 }
	}
	if c.Backends == nil {
		c.Backends = func() []backend.BackendState { return nil }
	}
}

// Status is the status page: its HTTP handler, its engine Policy and the
// publisher of its snapshots. Build it with New, pass it to the engine with
// engine.WithPolicy, then Bind it to the engine. Its methods are safe for
// concurrent use.
type Status struct {
	cfg     Config
	key     string // per-process secret the page handshakes with
	started time.Time
	e       *engine.Engine

	mu       sync.Mutex // guards watchers, stop
	watchers map[*engine.Session]struct{}
	stop     chan struct{} // closed to end the running publisher; nil when none runs
}

var (
	_ engine.Policy               = (*Status)(nil)
	_ engine.SubscriptionListener = (*Status)(nil)
)

// New returns a Status; nothing runs until a status session subscribes.
func New(cfg Config) *Status {
	cfg.setDefaults()
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return &Status{cfg: cfg, key: hex.EncodeToString(b[:]), started: time.Now(), watchers: make(map[*engine.Session]struct{})}
}

// Bind registers s with e (subscription and session listeners). Call it
// once, before e serves clients.
func (s *Status) Bind(e *engine.Engine) {
	s.e = e
	e.AddSubscriptionListener(s)
	e.OnSessionRemoved(func(ss *engine.Session, _ engine.CloseReason) {
		if isStatus(ss) { // other sessions never take s.mu
			s.unwatch(ss)
		}
	})
}

// reserved reports whether a channel name or pattern is one of the status
// page's ("/cometgate/..."), or a pattern covering them.
func reserved(ch string) bool {
	return strings.HasPrefix(ch, channelPrefix)
}

// isStatus reports whether a session handshook with the status key.
func isStatus(ss *engine.Session) bool {
	v, _ := ss.Get(sessionAttr).(bool)
	return v
}

// handshakeExt is the part of a handshake's ext the page fills in.
type handshakeExt struct {
	Cometgate struct {
		StatusKey string `json:"statusKey"`
	} `json:"cometgate"`
}

// CanHandshake marks a session whose handshake carries the status key; a
// handshake with a wrong key is denied.
func (s *Status) CanHandshake(_ context.Context, ss *engine.Session, m *bayeux.Message) error {
	if !bytes.Contains(m.Ext, []byte(`"statusKey"`)) {
		return nil
	}
	var x handshakeExt
	if json.Unmarshal(m.Ext, &x) != nil || x.Cometgate.StatusKey == "" {
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(x.Cometgate.StatusKey), []byte(s.key)) != 1 {
		return engine.ErrDenied
	}
	ss.Set(sessionAttr, true)
	return nil
}

// CanCreate lets only status sessions (and the server) create the
// reserved channels.
func (s *Status) CanCreate(_ context.Context, ss *engine.Session, ch string, _ *bayeux.Message) error {
	if reserved(ch) && ss != nil && !isStatus(ss) {
		return engine.ErrDenied
	}
	return nil
}

// CanSubscribe lets only status sessions subscribe to the reserved
// channels.
func (s *Status) CanSubscribe(_ context.Context, ss *engine.Session, ch string, _ *bayeux.Message) error {
	if reserved(ch) && ss != nil && !isStatus(ss) {
		return engine.ErrDenied
	}
	return nil
}

// CanPublish lets no client publish on the reserved channels.
func (s *Status) CanPublish(_ context.Context, ss *engine.Session, ch string, _ *bayeux.Message) error {
	if reserved(ch) && ss != nil {
		return engine.ErrDenied
	}
	return nil
}

// Subscribed starts the publisher on the first status subscription to
// Channel.
func (s *Status) Subscribed(ss *engine.Session, ch string, _ int) {
	if ch != Channel || !isStatus(ss) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watchers[ss] = struct{}{}
	if s.stop == nil {
		s.stop = make(chan struct{})
		go s.publish(s.stop)
	}
}

// Unsubscribed stops the publisher when the last status session leaves.
func (s *Status) Unsubscribed(ss *engine.Session, ch string, _ int) {
	if ch == Channel && isStatus(ss) {
		s.unwatch(ss)
	}
}

func (s *Status) unwatch(ss *engine.Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.watchers[ss]; !ok {
		return
	}
	delete(s.watchers, ss)
	if len(s.watchers) == 0 && s.stop != nil {
		close(s.stop)
		s.stop = nil
	}
}

// publish sends a snapshot to the watchers now and every Interval until
// stop is closed.
func (s *Status) publish(stop <-chan struct{}) {
	var smp sampler
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		snap := s.snapshot(&smp, time.Now())
		data, err := json.Marshal(snap)
		if err != nil {
			s.cfg.Logger.Error("status: encode snapshot", "err", err)
			return
		}
		s.mu.Lock()
		to := make([]*engine.Session, 0, len(s.watchers))
		for ss := range s.watchers {
			to = append(to, ss)
		}
		s.mu.Unlock()
		for _, ss := range to {
			ss.DeliverData(Channel, data, "")
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
