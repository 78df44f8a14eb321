package engine

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/plugins"
)

// Config holds the engine settings. The zero value of each field means the
// default stated on it.
type Config struct {
	// Timeout is how long a /meta/connect is held. Default 20s.
	Timeout time.Duration
	// Interval is the advised pause between connects. Default 0.
	Interval time.Duration
	// MaxInterval is how long a session may go without a connect before it
	// expires. Default 10s.
	MaxInterval time.Duration
	// SweepPeriod is how often expired sessions are looked for. Default 1s.
	SweepPeriod time.Duration
	// MaxQueue and MaxQueueBytes bound each session's queue; overflow
	// disconnects the session as slow. Defaults 1000 and 4 MiB.
	MaxQueue      int
	MaxQueueBytes int
	// NoBroadcastToPublisher keeps a publisher's own broadcasts from being
	// delivered back to it. Default false (they are delivered, as CometD).
	NoBroadcastToPublisher bool
	// MetaConnectDeliverOnly sends events only with /meta/connect replies.
	MetaConnectDeliverOnly bool
	// ConnectionTypes is the list advertised in handshake replies.
	// Default websocket, long-polling, callback-polling.
	ConnectionTypes []string
	// Ack enables the server side of the acknowledged-delivery extension.
	Ack bool
	// MaxSubscriptions bounds the channels one session may be subscribed
	// to; a subscribe that would take it past the bound is refused whole
	// with 403:per_session:subscription_limit. Default 1000.
	MaxSubscriptions int
	// MaxSubscribeChannels bounds the channels one /meta/subscribe message
	// may name; a longer list is refused whole with
	// 403:per_message:subscription_limit. Default 100.
	MaxSubscribeChannels int
}

func (c *Config) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = 20 * time.Second
	}
	if c.MaxInterval <= 0 {
		c.MaxInterval = 10 * time.Second
	}
	if c.SweepPeriod <= 0 {
		c.SweepPeriod = time.Second
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 1000
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = 4 << 20
	}
	if len(c.ConnectionTypes) == 0 {
		c.ConnectionTypes = []string{"websocket", "long-polling", "callback-polling"}
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = 1000
	}
	if c.MaxSubscribeChannels <= 0 {
		c.MaxSubscribeChannels = 100
	}
}

// Limits are the engine settings that SetLimits changes while running;
// zero values mean the defaults of the Config fields of the same names.
type Limits struct {
	MaxQueue             int // Config.MaxQueue
	MaxQueueBytes        int // Config.MaxQueueBytes
	MaxSubscriptions     int // Config.MaxSubscriptions
	MaxSubscribeChannels int // Config.MaxSubscribeChannels
}

// limits returns c's live-changeable part.
func (c *Config) limits() Limits {
	return Limits{MaxQueue: c.MaxQueue, MaxQueueBytes: c.MaxQueueBytes, MaxSubscriptions: c.MaxSubscriptions, MaxSubscribeChannels: c.MaxSubscribeChannels}
}

// Option configures programmatic hooks of an Engine that configuration
// files cannot express.
type Option interface{ apply(*Engine) }

type optionFunc func(*Engine)

func (f optionFunc) apply(e *Engine) { f(e) }

// WithLogger sets the logger. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return optionFunc(func(e *Engine) { e.log = l }) }

// WithPolicy adds a security policy. Policies compose: each operation
// must be allowed by every policy added, asked in the order added, and the
// first denial is the one sent (see Policies). DefaultPolicy is always
// asked first: its rule (nobody creates, subscribes or publishes to meta
// channels) is part of the protocol, not a choice a policy can undo.
// A nil p is ignored.
func WithPolicy(p Policy) Option {
	return optionFunc(func(e *Engine) {
		if p != nil {
			e.policies = append(e.policies, p)
		}
	})
}

// WithExtension adds a server extension; extensions run in the order added.
func WithExtension(x Extension) Option {
	return optionFunc(func(e *Engine) {
		e.extensions = append(e.extensions, x)
		if s, ok := x.(Sender); ok {
			e.senders = append(e.senders, s)
		}
		if k, ok := x.(ExtKeeper); ok {
			e.keepers = append(e.keepers, k)
		}
	})
}

// Engine is a Bayeux server without transports. Create it with New, then
// Start it; Close answers held connects and stops the sweeper.
type Engine struct {
	cfg        Config
	limits     atomic.Pointer[Limits] // immutable; replaced by SetLimits
	log        *slog.Logger
	policy     Policy   // the policies composed, or DefaultPolicy
	policies   []Policy // as added by WithPolicy
	extensions []Extension
	keepers    []ExtKeeper // the extensions that are also ExtKeepers

	sessionsMu sync.RWMutex // guards sessions, users
	sessions   map[string]*Session
	users      map[string]map[*Session]struct{}

	channels *channels
	plugins  atomic.Pointer[plugins.Set] // nil when none; see SetPlugins
	broker   Broker                      // nil on a single node; see WithBroker
	idPrefix string                      // WithIDPrefix

	listenersMu sync.RWMutex // guards the listener slices
	publishers  []publishHandler
	added       []func(*Session)
	removed     []func(*Session, CloseReason)
	subs        []SubscriptionListener
	queueMaxed  []func(*Session, int)
	senders     []Sender // the extensions that are also Senders

	fanouts   atomic.Int64 // fan-outs in progress (see Fanout)
	closing   atomic.Bool
	done      chan struct{}
	startOnce sync.Once
	stopOnce  sync.Once
	wg        sync.WaitGroup

	stats Stats
}

// Stats are cumulative counters of an Engine, read with atomic loads.
type Stats struct {
	Handshakes atomic.Int64 // handshakes that created a session
	// HandshakesDenied counts handshakes a policy refused;
	// HandshakesFailed, those refused for another reason (shutting down,
	// no common connection type).
	HandshakesDenied atomic.Int64
	HandshakesFailed atomic.Int64
	// MessagesMeta, MessagesService and MessagesBroadcast count the
	// messages received from clients, by channel class.
	MessagesMeta      atomic.Int64
	MessagesService   atomic.Int64
	MessagesBroadcast atomic.Int64
	Published         atomic.Int64 // broadcast messages accepted
	Delivered         atomic.Int64 // messages queued to sessions
	Dropped           atomic.Int64 // sessions disconnected as slow
	Expired           atomic.Int64 // sessions expired
	// SubscribeLimited counts subscribe messages refused by
	// MaxSubscriptions or MaxSubscribeChannels.
	SubscribeLimited atomic.Int64
	// FilteredIn counts messages an inbound filter rejected; FilteredOut,
	// deliveries an outbound filter dropped.
	FilteredIn  atomic.Int64
	FilteredOut atomic.Int64
	// PolicyDenied counts operations a plugin policy denied; AuthFailed,
	// handshakes the authenticators refused.
	PolicyDenied atomic.Int64
	AuthFailed   atomic.Int64
	// CredentialsExpired counts sessions ended because the credentials
	// they handshook with expired.
	CredentialsExpired atomic.Int64
}

// New returns an Engine with cfg and opts applied. It starts nothing.
func New(cfg Config, opts ...Option) *Engine {
	cfg.setDefaults()
	e := &Engine{
		cfg:      cfg,
		log:      slog.Default(),
		sessions: make(map[string]*Session),
		users:    make(map[string]map[*Session]struct{}),
		done:     make(chan struct{}),
	}
	e.limits.Store(new(cfg.limits()))
	for _, o := range opts {
		o.apply(e)
	}
	e.channels = newChannels(e.broker)
	// The built-in rules, then the plugins' (authenticators first), then
	// those of WithPolicy (the backends' hooks).
	e.policy = append(Policies{DefaultPolicy{}, pluginPolicy{e}}, e.policies...)
	pl := pluginListeners{e}
	e.added = append(e.added, pl.added)
	e.removed = append(e.removed, pl.removed)
	e.subs = append(e.subs, pl)
	e.queueMaxed = append(e.queueMaxed, pl.queueMaxed)
	return e
}

// Config returns the engine's effective configuration, with the limits
// last set.
func (e *Engine) Config() Config {
	c := e.cfg
	l := e.limits.Load()
	c.MaxQueue, c.MaxQueueBytes = l.MaxQueue, l.MaxQueueBytes
	c.MaxSubscriptions, c.MaxSubscribeChannels = l.MaxSubscriptions, l.MaxSubscribeChannels
	return c
}

// SetLimits replaces the engine's limits while it runs; zero values mean
// the defaults. A subscribe is checked against the limits in force when
// it is processed, and a message queued for a session against those in
// force when it is queued: a queue longer than a lowered bound is kept,
// and its session is disconnected as slow on its next message unless it
// has drained below the bound by then. Sessions, subscriptions and held
// connects are otherwise untouched. Safe for concurrent use.
func (e *Engine) SetLimits(l Limits) {
	c := Config{MaxQueue: l.MaxQueue, MaxQueueBytes: l.MaxQueueBytes, MaxSubscriptions: l.MaxSubscriptions, MaxSubscribeChannels: l.MaxSubscribeChannels}
	c.setDefaults()
	e.limits.Store(new(c.limits()))
}

// Stats returns the engine's counters.
func (e *Engine) Stats() *Stats { return &e.stats }

// Start launches the sweeper. It returns at once; ctx is not retained.
func (e *Engine) Start(ctx context.Context) error {
	e.startOnce.Do(func() {
		e.wg.Add(1)
		go e.sweep()
	})
	return nil
}

// Close shuts the engine down: held connects are answered with advice to
// re-handshake (the sessions will not survive), push connections are told
// to close, and the sweeper stops. It waits for the sweeper within ctx.
// Close is idempotent.
func (e *Engine) Close(ctx context.Context) error {
	e.stopOnce.Do(func() {
		// Later fan-outs are refused; those under way finish first.
		e.closing.Store(true)
		for e.fanouts.Load() > 0 && ctx.Err() == nil {
			time.Sleep(50 * time.Microsecond)
		}
		close(e.done)
		for _, s := range e.Sessions() {
			s.shutdown()
		}
	})
	stopped := make(chan struct{})
	go func() { e.wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Session returns the live session with id, or nil.
func (e *Engine) Session(id string) *Session {
	e.sessionsMu.RLock()
	s := e.sessions[id]
	e.sessionsMu.RUnlock()
	return s
}

// Sessions returns a snapshot of the live sessions.
func (e *Engine) Sessions() []*Session {
	e.sessionsMu.RLock()
	list := make([]*Session, 0, len(e.sessions))
	for _, s := range e.sessions {
		list = append(list, s)
	}
	e.sessionsMu.RUnlock()
	return list
}

// SessionCounts counts the live sessions by the connection type they last
// used (Session.Transport), and how many of them have a connect held now.
// It visits every session: call it when scraping, not per message.
func (e *Engine) SessionCounts() (byTransport map[string]int, held int) {
	byTransport = make(map[string]int, 4)
	for _, s := range e.Sessions() {
		s.mu.Lock()
		byTransport[s.transport]++
		if s.held != nil {
			held++
		}
		s.mu.Unlock()
	}
	return byTransport, held
}

// SessionCount returns the number of live sessions.
func (e *Engine) SessionCount() int {
	e.sessionsMu.RLock()
	defer e.sessionsMu.RUnlock()
	return len(e.sessions)
}

// UserSessions returns the live sessions bound to user.
func (e *Engine) UserSessions(user string) []*Session {
	e.sessionsMu.RLock()
	defer e.sessionsMu.RUnlock()
	set := e.users[user]
	list := make([]*Session, 0, len(set))
	for s := range set {
		list = append(list, s)
	}
	return list
}

func (e *Engine) bindUser(s *Session, old, user string) {
	e.sessionsMu.Lock()
	defer e.sessionsMu.Unlock()
	if _, live := e.sessions[s.id]; !live {
		return
	}
	if set := e.users[old]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(e.users, old)
		}
	}
	if user != "" {
		set := e.users[user]
		if set == nil {
			set = make(map[*Session]struct{})
			e.users[user] = set
		}
		set[s] = struct{}{}
	}
}

// sweep expires sessions and drops idle channels every SweepPeriod.
func (e *Engine) sweep() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.SweepPeriod)
	defer t.Stop()
	for {
		select {
		case <-e.done:
			return
		case now := <-t.C:
			for _, s := range e.Sessions() {
				switch {
				case s.expired(now):
					e.stats.Expired.Add(1)
					e.removeSession(s, CloseExpired, nil)
				case s.credentialsExpired(now):
					e.stats.CredentialsExpired.Add(1)
					e.log.Debug("session credentials expired", "session", s.id)
					s.Disconnect()
				}
			}
			e.channels.sweep()
		}
	}
}

// removeSession takes s out of every table and tells its listeners; final,
// if not nil, is a last message for it (a server-side /meta/disconnect). It
// is a no-op for a session already removed.
func (e *Engine) removeSession(s *Session, reason CloseReason, final []byte) {
	if !s.close(reason, final) {
		return
	}
	e.sessionsMu.Lock()
	delete(e.sessions, s.id)
	if u := s.User(); u != "" {
		if set := e.users[u]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(e.users, u)
			}
		}
	}
	e.sessionsMu.Unlock()
	for _, ch := range s.takeSubscriptions() {
		e.unsubscribe(s, ch)
	}
	if e.log.Enabled(context.Background(), slog.LevelDebug) {
		e.log.Debug("session removed", "session", s.id, "reason", reason.String(), "transport", s.Transport(), "remote", s.remote)
	}
	e.listenersMu.RLock()
	removed := e.removed
	e.listenersMu.RUnlock()
	for _, fn := range removed {
		fn(s, reason)
	}
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns n random bytes from crypto/rand as lower-case base32
// ([a-z2-7], so acceptable wherever Bayeux wants alphanumerics).
func newID(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails on supported platforms (Go 1.24+)
	return idEncoding.EncodeToString(b)
}

// NewBrowserID returns a fresh value for the BAYEUX_BROWSER cookie.
func NewBrowserID() string { return newID(10) }

// replyTo returns a reply skeleton for request m.
func replyTo(m *bayeux.Message) *bayeux.Message {
	return &bayeux.Message{Channel: m.Channel, ID: m.ID, Reply: true, Successful: true}
}

// Closing reports whether Close has begun.
func (e *Engine) Closing() bool { return e.closing.Load() }
