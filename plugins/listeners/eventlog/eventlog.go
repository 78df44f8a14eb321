package eventlog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cometgate/cometgate/plugins"
)

// DefaultMaxPerSecond is the maxPerSecond option's default.
const DefaultMaxPerSecond = 100

// Modules lists the package's modules.
func Modules() []plugins.ModuleInfo {
	return []plugins.ModuleInfo{{
		Kind: plugins.KindListener,
		Name: "log",
		New:  func() any { return new(Listener) },
		Doc:  "logs sessions added and removed, subscriptions and queue overflows, rate-limited",
	}}
}

// Listener is the "log" listener module. Its exported fields are its
// options. Its methods are safe for concurrent use and never wait on
// anything but a short lock and the log handler.
type Listener struct {
	// Level of the lines: debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// MaxPerSecond bounds the lines written per second; the events over
	// it are counted and summarised. Default 100.
	MaxPerSecond int `yaml:"maxPerSecond"`
	// Events chooses what is logged, among sessions (added, removed),
	// subscriptions (subscribed, unsubscribed) and queues (queue maxed).
	// Default all.
	Events []string `yaml:"events"`

	log                    *slog.Logger
	level                  slog.Level
	sessions, subs, queues bool
	now                    func() time.Time // the clock; tests replace it before Provision

	mu          sync.Mutex // guards the fields below
	windowStart time.Time
	lines       int              // written in the current window
	suppressed  [numEvents]int64 // by event, since the last summary
	timer       *time.Timer      // writes the summary; nil if none is due
	closed      bool
}

var (
	_ plugins.SessionListener      = (*Listener)(nil)
	_ plugins.SubscriptionListener = (*Listener)(nil)
	_ plugins.QueueListener        = (*Listener)(nil)
	_ plugins.Provisioner          = (*Listener)(nil)
	_ plugins.CleanerUpper         = (*Listener)(nil)
)

// event is what happened.
type event uint8

const (
	sessionAdded event = iota
	sessionRemoved
	subscribed
	unsubscribed
	queueMaxed
	numEvents
)

var eventNames = [numEvents]string{"session_added", "session_removed", "subscribed", "unsubscribed", "queue_maxed"}

// Provision applies the defaults and checks the options.
func (l *Listener) Provision(ctx *plugins.Context) error {
	l.log = ctx.Logger
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.Level == "" {
		l.Level = "info"
	}
	if err := l.level.UnmarshalText([]byte(l.Level)); err != nil {
		return fmt.Errorf("level: %q: want debug, info, warn or error", l.Level)
	}
	if l.MaxPerSecond == 0 {
		l.MaxPerSecond = DefaultMaxPerSecond
	}
	if l.MaxPerSecond < 0 {
		return fmt.Errorf("maxPerSecond: %d: must be > 0", l.MaxPerSecond)
	}
	if len(l.Events) == 0 {
		l.sessions, l.subs, l.queues = true, true, true
	}
	for i, e := range l.Events {
		switch e {
		case "sessions":
			l.sessions = true
		case "subscriptions":
			l.subs = true
		case "queues":
			l.queues = true
		default:
			return fmt.Errorf("events[%d]: %q: want sessions, subscriptions or queues", i, e)
		}
	}
	return nil
}

// Cleanup writes the summary of the events not logged, if any.
func (l *Listener) Cleanup() error {
	l.mu.Lock()
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	counts := l.takeLocked()
	l.mu.Unlock()
	l.summarise(counts)
	return nil
}

// SessionAdded logs a new session.
func (l *Listener) SessionAdded(c plugins.Client) {
	if l.sessions && l.allow(sessionAdded) {
		l.write("session added", client(c)...)
	}
}

// SessionRemoved logs a session's end and why.
func (l *Listener) SessionRemoved(c plugins.Client, reason string) {
	if l.sessions && l.allow(sessionRemoved) {
		l.write("session removed", append(client(c), slog.String("reason", reason))...)
	}
}

// Subscribed logs a subscription.
func (l *Listener) Subscribed(c plugins.Client, channel string, subscribers int) {
	if l.subs && l.allow(subscribed) {
		l.write("subscribed", append(client(c), slog.String("channel", channel), slog.Int("subscribers", subscribers))...)
	}
}

// Unsubscribed logs an unsubscription.
func (l *Listener) Unsubscribed(c plugins.Client, channel string, subscribers int) {
	if l.subs && l.allow(unsubscribed) {
		l.write("unsubscribed", append(client(c), slog.String("channel", channel), slog.Int("subscribers", subscribers))...)
	}
}

// QueueMaxed logs a queue overflow.
func (l *Listener) QueueMaxed(c plugins.Client, queued int) {
	if l.queues && l.allow(queueMaxed) {
		l.write("queue maxed", append(client(c), slog.Int("queued", queued))...)
	}
}

func client(c plugins.Client) []slog.Attr {
	attrs := make([]slog.Attr, 0, 6)
	attrs = append(attrs, slog.String("client", c.ID))
	if c.User != "" {
		attrs = append(attrs, slog.String("user", c.User))
	}
	if c.Transport != "" {
		attrs = append(attrs, slog.String("transport", c.Transport))
	}
	if c.RemoteAddr != "" {
		attrs = append(attrs, slog.String("remote", c.RemoteAddr))
	}
	return attrs
}

func (l *Listener) write(msg string, attrs ...slog.Attr) {
	l.log.LogAttrs(context.Background(), l.level, msg, attrs...)
}

// allow reports whether an event of kind e may be written now, counting
// it otherwise. An event that starts a new one-second window first
// writes the summary of the last one.
func (l *Listener) allow(e event) bool {
	if !l.log.Enabled(context.Background(), l.level) {
		return false
	}
	l.mu.Lock()
	now := l.now()
	var counts [numEvents]int64
	if d := now.Sub(l.windowStart); d >= time.Second || d < 0 {
		counts = l.takeLocked()
		l.windowStart, l.lines = now, 0
	}
	ok := l.lines < l.MaxPerSecond
	if ok {
		l.lines++
	} else {
		l.suppressed[e]++
		if l.timer == nil && !l.closed {
			l.timer = time.AfterFunc(time.Second-now.Sub(l.windowStart), l.flush)
		}
	}
	l.mu.Unlock()
	l.summarise(counts)
	return ok
}

// flush writes the summary when a window with suppressed events ends.
func (l *Listener) flush() {
	l.mu.Lock()
	l.timer = nil
	counts := l.takeLocked()
	l.mu.Unlock()
	l.summarise(counts)
}

// takeLocked returns the suppressed counts and zeroes them.
func (l *Listener) takeLocked() [numEvents]int64 {
	counts := l.suppressed
	l.suppressed = [numEvents]int64{}
	return counts
}

// summarise writes one line with the counts of the events not logged, if
// any.
func (l *Listener) summarise(counts [numEvents]int64) {
	var total int64
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		return
	}
	attrs := make([]slog.Attr, 0, numEvents+2)
	for e, n := range counts {
		if n > 0 {
			attrs = append(attrs, slog.Int64(eventNames[e], n))
		}
	}
	attrs = append(attrs, slog.Int64("total", total), slog.Int("maxPerSecond", l.MaxPerSecond))
	l.write("listener events not logged (over maxPerSecond)", attrs...)
}
