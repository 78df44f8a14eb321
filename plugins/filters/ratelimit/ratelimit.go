package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometgate/cometgate/plugins"
	"golang.org/x/time/rate"
)

// Modules returns the package's modules for a plugins.Registry.
func Modules() []plugins.ModuleInfo {
	return []plugins.ModuleInfo{{
		Kind: plugins.KindFilter,
		Name: "ratelimit",
		New:  func() any { return new(Filter) },
		Doc:  "token bucket per session, user or channel; over the limit gets 429::rate_limited",
	}}
}

// Filter is the ratelimit module. Its exported fields are its options;
// after Provision it is safe for concurrent use, until Cleanup.
type Filter struct {
	// Rate is the sustained rate, in messages per second. Required, > 0.
	Rate float64 `yaml:"rate"`
	// Burst is the bucket's size: how many messages may pass at once.
	// Default: Rate rounded up, at least 1.
	Burst int `yaml:"burst"`
	// Per is what a bucket is kept for: "session", "user" (sessions
	// without a user: per session) or "channel". Default "session".
	Per string `yaml:"per"`
	// MaxKeys bounds the limiters tracked; when full, new keys are
	// refused. Default 100000.
	MaxKeys int `yaml:"maxKeys"`
	// IdleTimeout is how long a limiter is kept unused (at least until
	// its bucket refills). Default 1m.
	IdleTimeout time.Duration `yaml:"idleTimeout"`

	shards  [numShards]shard
	seed    maphash.Seed
	keys    atomic.Int64 // limiters in the shards
	refused atomic.Int64 // messages refused because the table was full
	logged  int64        // refused at the last warning; sweeper only
	log     *slog.Logger
	now     func() time.Time // the clock; tests replace it
	stop    chan struct{}    // closed by Cleanup
	done    chan struct{}    // closed when the sweeper has returned
	once    sync.Once        // Cleanup's
}

// Interface guards.
var (
	_ plugins.Filter       = (*Filter)(nil)
	_ plugins.Provisioner  = (*Filter)(nil)
	_ plugins.Validator    = (*Filter)(nil)
	_ plugins.CleanerUpper = (*Filter)(nil)
)

// ErrRateLimited is the rejection of a message over the limit, or with a
// new key when the table is full.
var ErrRateLimited = &plugins.Rejection{Code: 429, Reason: "rate_limited"}

// Defaults.
const (
	defaultMaxKeys     = 100000
	defaultIdleTimeout = time.Minute
)

// Per values.
const (
	perSession = "session"
	perUser    = "user"
	perChannel = "channel"
)

// numShards splits the table; a power of two.
const numShards = 64

// shard is a part of the table of limiters.
type shard struct {
	mu sync.RWMutex // guards m; read-held while a limiter is used
	m  map[key]*entry
	_  [32]byte // keeps shards on separate cache lines
}

// key names a bucket. kind keeps users and sessions apart.
type key struct {
	kind uint8 // kindSession, kindUser or kindChannel
	name string
}

const (
	kindSession uint8 = iota
	kindUser
	kindChannel
)

// entry is one bucket.
type entry struct {
	lim  *rate.Limiter
	last atomic.Int64 // when last used, Unix nanoseconds
}

// Provision applies the defaults and, when the options are valid, starts
// the sweeper.
func (f *Filter) Provision(ctx *plugins.Context) error {
	if f.Burst == 0 && f.Rate > 0 {
		f.Burst = int(max(1, min(math.Ceil(f.Rate), math.MaxInt32)))
	}
	if f.Per == "" {
		f.Per = perSession
	}
	if f.MaxKeys == 0 {
		f.MaxKeys = defaultMaxKeys
	}
	if f.IdleTimeout == 0 {
		f.IdleTimeout = defaultIdleTimeout
	}
	if err := f.Validate(); err != nil {
		return err
	}
	f.log = ctx.Logger
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.now == nil {
		f.now = time.Now
	}
	f.seed = maphash.MakeSeed()
	for i := range f.shards {
		f.shards[i].m = make(map[key]*entry)
	}
	f.stop, f.done = make(chan struct{}), make(chan struct{})
	go f.sweepLoop(max(f.IdleTimeout/2, time.Millisecond))
	return nil
}

// Validate checks the options.
func (f *Filter) Validate() error {
	var errs []error
	if !(f.Rate > 0) || math.IsInf(f.Rate, 1) {
		errs = append(errs, fmt.Errorf("rate: %v: must be a number > 0 (messages per second)", f.Rate))
	}
	if f.Burst < 0 {
		errs = append(errs, fmt.Errorf("burst: %d: must be > 0 (unset: the default)", f.Burst))
	}
	if f.Per != perSession && f.Per != perUser && f.Per != perChannel {
		errs = append(errs, fmt.Errorf("per: %q: must be %q, %q or %q", f.Per, perSession, perUser, perChannel))
	}
	if f.MaxKeys < 0 {
		errs = append(errs, fmt.Errorf("maxKeys: %d: must be > 0 (unset: the default)", f.MaxKeys))
	}
	if f.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("idleTimeout: %v: must be > 0 (unset: the default)", f.IdleTimeout))
	}
	return errors.Join(errs...)
}

// Cleanup stops the sweeper and waits for it to return. It may be called
// after a failed Provision, and more than once.
func (f *Filter) Cleanup() error {
	f.once.Do(func() {
		if f.stop != nil {
			close(f.stop)
			<-f.done
		}
	})
	return nil
}

// Filter takes a token from m's bucket. It returns ErrRateLimited when
// the bucket is empty, or when m has a new key and the table is full.
func (f *Filter) Filter(_ context.Context, m *plugins.Message) error {
	if m.Client.ID == "" {
		return nil // the server itself
	}
	k := key{kindSession, m.Client.ID}
	switch f.Per {
	case perUser:
		if m.Client.User != "" {
			k = key{kindUser, m.Client.User}
		}
	case perChannel:
		k = key{kindChannel, m.Channel}
	}
	now := f.now()
	sh := &f.shards[maphash.String(f.seed, k.name)&(numShards-1)]

	sh.mu.RLock()
	e := sh.m[k]
	if e != nil {
		ok := e.lim.AllowN(now, 1)
		e.last.Store(now.UnixNano())
		sh.mu.RUnlock()
		if !ok {
			return ErrRateLimited
		}
		return nil
	}
	sh.mu.RUnlock()

	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e = sh.m[k]; e == nil {
		if !f.reserveKey() {
			f.refused.Add(1)
			return ErrRateLimited
		}
		e = &entry{lim: rate.NewLimiter(rate.Limit(f.Rate), f.Burst)}
		k.name = strings.Clone(k.name) // do not keep a request's buffer alive
		sh.m[k] = e
	}
	ok := e.lim.AllowN(now, 1)
	e.last.Store(now.UnixNano())
	if !ok {
		return ErrRateLimited
	}
	return nil
}

// reserveKey counts a new limiter in, unless there are MaxKeys already.
func (f *Filter) reserveKey() bool {
	for {
		n := f.keys.Load()
		if n >= int64(f.MaxKeys) {
			return false
		}
		if f.keys.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Keys returns the number of limiters tracked, at most MaxKeys.
func (f *Filter) Keys() int { return int(f.keys.Load()) }

// Refused returns the number of messages refused because the table was
// full (they are also counted as rejections).
func (f *Filter) Refused() int64 { return f.refused.Load() }

// sweepLoop sweeps every interval until Cleanup.
func (f *Filter) sweepLoop(interval time.Duration) {
	defer close(f.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.sweep(f.now())
		}
	}
}

// sweep drops the limiters idle for IdleTimeout at now whose buckets have
// refilled, and warns if new keys were refused since the last sweep.
func (f *Filter) sweep(now time.Time) {
	idleSince := now.Add(-f.IdleTimeout).UnixNano()
	burst := float64(f.Burst)
	for i := range f.shards {
		sh := &f.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			if e.last.Load() <= idleSince && e.lim.TokensAt(now) >= burst {
				delete(sh.m, k)
				f.keys.Add(-1)
			}
		}
		sh.mu.Unlock()
	}
	if n := f.refused.Load(); n > f.logged {
		f.log.Warn("ratelimit: limiter table full, messages with new keys refused",
			"maxKeys", f.MaxKeys, "refused", n-f.logged, "per", f.Per)
		f.logged = n
	}
}

// Stats reports the tracked keys and the messages refused for want of
// room in the table, for /metrics.
func (f *Filter) Stats() []plugins.Stat {
	return []plugins.Stat{
		{Name: "ratelimit_keys", Help: "Limiters a ratelimit filter tracks (at most its maxKeys).", Value: float64(f.Keys())},
		{Name: "ratelimit_table_full_total", Help: "Messages a ratelimit filter refused because its table of limiters was full.", Value: float64(f.Refused()), Counter: true},
	}
}
