// Package plugins is Cometgate's plugin contract: the filters, policies,
// handshake authenticators and listeners that operators add to the
// gateway, the registry of named modules they are configured by, and the
// pipeline that runs them on the gateway's one message path.
//
// A module is a Go value whose exported fields, with yaml tags, are its
// options. The registry creates a fresh value for each configured use
// (Registry.New), the loader decodes the options into it strictly (an
// unknown key is an error), then calls Provision, then Validate; the value
// then serves until the configuration that made it is replaced, when
// Cleanup is called. What a module does on the message path is given by
// the interfaces it implements: Filter, Policy, Authenticator, and the
// listener interfaces.
//
// Filters see messages as raw JSON (Message.Data and Message.Ext) and must
// never modify those bytes in place: to rewrite, assign new slices. The
// gateway validates what a filter produces before it reaches a client.
package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Direction says where on the path a filter sees a message.
type Direction uint8

// Directions.
const (
	// Inbound: once per message, after the security policies and before
	// publish handlers (backends) and fan-out.
	Inbound Direction = iota + 1
	// Outbound: once per delivery to one session.
	Outbound
)

func (d Direction) String() string {
	switch d {
	case Inbound:
		return "inbound"
	case Outbound:
		return "outbound"
	}
	return "none"
}

// Source says where an inbound message came from.
type Source uint8

// Sources.
const (
	FromClient  Source = iota + 1 // a Bayeux client, on any transport
	FromAPI                       // the control API
	FromBackend                   // a backend stream, or a server component
	FromBroker                    // another gateway node
)

func (s Source) String() string {
	switch s {
	case FromClient:
		return "client"
	case FromAPI:
		return "api"
	case FromBackend:
		return "backend"
	case FromBroker:
		return "broker"
	}
	return "none"
}

// Client describes a session: the publisher of an inbound message, the
// recipient of an outbound one, or the asker of a policy. Its zero value
// is the server itself (the control API, a backend stream).
type Client struct {
	ID         string   // Bayeux clientId, "" for the server
	User       string   // user id bound at handshake, "" if none
	Roles      []string // roles from the handshake authenticator; read only
	Transport  string   // websocket, long-polling, callback-polling, or ""
	RemoteAddr string   // network address, "" for the server
}

// Message is one message as a filter sees it. Data and Ext are raw JSON
// (Ext may be empty); a filter rewrites by assigning new slices to them,
// never by writing into the ones it got.
type Message struct {
	Channel   string
	ID        string // the message id, "" if none
	Data      json.RawMessage
	Ext       json.RawMessage
	Direction Direction
	Source    Source
	// Client is the publisher (Inbound) or the recipient (Outbound).
	Client Client
}

// Filter sees messages on the channels its chain is configured for. It
// returns nil to pass the message on (rewritten or not), a *Rejection
// (see Reject) to refuse it, or another error when it failed, which the
// gateway counts, logs and treats as a rejection. An inbound rejection is
// sent to the publisher as a failed reply (or to the control API caller
// as an error); an outbound one drops the message for that session only.
// Filter must be safe for concurrent use and honour ctx.
type Filter interface {
	Filter(ctx context.Context, m *Message) error
}

// Rejection is a filter's or a policy's refusal. It reaches the client as
// the Bayeux error "Code::Reason".
type Rejection struct {
	Code   int    // Bayeux error code; 403 when 0
	Reason string // a short word or phrase, e.g. "rate_limited"
}

func (r *Rejection) Error() string {
	return fmt.Sprintf("%d::%s", r.code(), r.Reason)
}

func (r *Rejection) code() int {
	if r.Code == 0 {
		return 403
	}
	return r.Code
}

// BayeuxCode returns the rejection's Bayeux error code.
func (r *Rejection) BayeuxCode() int { return r.code() }

// Reject returns a 403 rejection with reason.
func Reject(reason string) error { return &Rejection{Code: 403, Reason: SafeReason(reason)} }

// RejectCode returns a rejection with a code of its own, e.g. 429 for
// rate limits.
func RejectCode(code int, reason string) error {
	return &Rejection{Code: code, Reason: SafeReason(reason)}
}

// AsRejection returns err's Rejection, if it is or wraps one.
func AsRejection(err error) (*Rejection, bool) {
	var r *Rejection
	ok := errors.As(err, &r)
	return r, ok
}

// SafeReason makes s fit the message part of a Bayeux error: one line of
// at most 200 bytes, without the ':' and ',' that delimit error parts.
func SafeReason(s string) string {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ':', ',', '\n', '\r', '\t':
			return ' '
		}
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		cut := 200
		for cut > 0 && s[cut]&0xc0 == 0x80 { // do not split a UTF-8 sequence
			cut--
		}
		s = s[:cut]
	}
	return s
}

// Operation is what a policy is asked about.
type Operation uint8

// Operations.
const (
	OpHandshake Operation = iota + 1
	OpCreate
	OpSubscribe
	OpPublish
)

func (o Operation) String() string {
	switch o {
	case OpHandshake:
		return "handshake"
	case OpCreate:
		return "create"
	case OpSubscribe:
		return "subscribe"
	case OpPublish:
		return "publish"
	}
	return "none"
}

// ParseOperation returns the Operation named s ("handshake", "create",
// "subscribe", "publish").
func ParseOperation(s string) (Operation, bool) {
	for o := OpHandshake; o <= OpPublish; o++ {
		if o.String() == s {
			return o, true
		}
	}
	return 0, false
}

// Request is what a policy decides on.
type Request struct {
	Op Operation
	// Channel is the channel created, subscribed to (a pattern may be
	// subscribed) or published to; "" for a handshake.
	Channel string
	// Client is the asker. For a handshake, ID is the new session's id and
	// User and Roles are what the authenticators and earlier policies
	// bound. The zero Client is the server itself (the control API).
	Client Client
	// Data and Ext are the message's, raw JSON; read only.
	Data json.RawMessage
	Ext  json.RawMessage
	// Header is the HTTP request's (or websocket upgrade's) headers; nil
	// for the server. Read only.
	Header map[string][]string
}

// Policy decides handshakes, channel creation, subscriptions and
// publishes. It returns nil to allow, a *Rejection to deny with its
// reason, or another error, which is logged and denies with the
// operation's standard error. Policies compose: an operation is allowed
// only when every policy allows it; the first denial is the one sent.
// Authorize may wait (to ask a service) and must honour ctx; it must be
// safe for concurrent use.
type Policy interface {
	Authorize(ctx context.Context, r *Request) error
}

// ErrDenied is returned (or wrapped) by a Policy to deny with the
// operation's standard error, as CometD sends it (for example
// 403::subscribe_denied), without a reason of its own.
var ErrDenied = errors.New("plugins: denied")

// Identity is what an authenticator establishes for a handshake.
type Identity struct {
	User  string
	Roles []string
	// Expires, if not zero, is when the credentials expire; the session
	// is disconnected then (re-handshaking needs fresh credentials).
	Expires time.Time
}

// ErrNoCredentials is returned by an Authenticator for a handshake that
// carries none of the credentials it reads; the next authenticator is
// then asked. A handshake that no authenticator identifies is denied,
// unless the configuration allows anonymous sessions.
var ErrNoCredentials = errors.New("plugins: no credentials")

// Authenticator identifies the client of a handshake (r.Op is
// OpHandshake). It returns the identity, ErrNoCredentials when the
// handshake carries none it reads, a *Rejection for credentials it
// refuses (expired, wrong audience...), or another error when it could not
// decide (a key server unreachable), which denies the handshake with
// advice to retry. It must be safe for concurrent use and honour ctx.
type Authenticator interface {
	Authenticate(ctx context.Context, r *Request) (*Identity, error)
}

// SessionListener is told when sessions start and end. Listeners are
// called on the path of the request or event that caused them: they must
// return quickly and never wait on a network.
type SessionListener interface {
	SessionAdded(c Client)
	// SessionRemoved gives why: disconnect, expired, slow, server or
	// shutdown.
	SessionRemoved(c Client, reason string)
}

// SubscriptionListener is told of each subscription change, with the
// channel's subscriber count after it (1: first, 0: last).
type SubscriptionListener interface {
	Subscribed(c Client, channel string, subscribers int)
	Unsubscribed(c Client, channel string, subscribers int)
}

// QueueListener is told when a session's queue overflows its bound; the
// session is then disconnected as slow (CometD's QueueMaxedListener).
type QueueListener interface {
	QueueMaxed(c Client, queued int)
}

// Provisioner is implemented by a module that prepares itself after its
// options are decoded: opens files, compiles, starts helpers.
type Provisioner interface {
	Provision(ctx *Context) error
}

// Validator is implemented by a module that checks its options after
// Provision.
type Validator interface {
	Validate() error
}

// CleanerUpper is implemented by a module that holds resources to release
// when the configuration that made it is replaced or the gateway stops.
// Cleanup is called once, after no message is being filtered by it.
type CleanerUpper interface {
	Cleanup() error
}

// Context is what a module is provisioned with.
type Context struct {
	context.Context
	// Logger is for the module; it names the module and its place.
	Logger *slog.Logger
	// Dir is the directory relative file names in options resolve from
	// (the configuration file's); "" means the working directory.
	Dir string
	// Shared keeps values across reloads (e.g. a compilation cache).
	Shared *Shared
}

// Path resolves a file name from a module's options against c.Dir.
func (c *Context) Path(name string) string {
	if name == "" || c.Dir == "" || strings.HasPrefix(name, "/") {
		return name
	}
	return c.Dir + "/" + name
}

// Stat is one figure a module reports about itself, for /metrics, beyond
// the outcome counts the pipeline keeps for every filter.
type Stat struct {
	// Name is the metric's name after "cometgate_plugin_": lower case,
	// digits and '_'; a counter's ends in "_total".
	Name    string
	Help    string
	Value   float64
	Counter bool // a counter (it may restart at 0 when a reload replaces the module), else a gauge
}

// StatsReporter is implemented by a module with figures of its own (a
// rate limiter's tracked keys, a WebAssembly filter's live instances and
// traps). Stats is called at each scrape of /metrics and must be cheap.
type StatsReporter interface {
	Stats() []Stat
}
