package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Default returns a configuration with every default applied.
func Default() *Config {
	c := &Config{}
	c.SetDefaults()
	return c
}

// SetDefaults replaces every zero field with its documented default.
func (c *Config) SetDefaults() {
	setStr(&c.Listen, "127.0.0.1:8080")
	setStr(&c.Path, "/cometd")
	setDur(&c.ShutdownTimeout, 10*time.Second)
	setStr(&c.Log.Level, "info")
	setStr(&c.Log.Format, "text")

	b := &c.Bayeux
	setDur(&b.Timeout, 20*time.Second)
	setDur(&b.MaxInterval, 10*time.Second)
	setDur(&b.SweepPeriod, time.Second)
	setInt(&b.MaxQueue, 1000)
	setInt(&b.MaxQueueBytes, 4<<20)
	setBool(&b.BroadcastToPublisher, true)
	setInt(&b.MaxSessionsPerBrowser, 1)
	setInt(&b.HTTP2MaxSessionsPerBrowser, -1)
	setDur(&b.MultiSessionInterval, 2*time.Second)
	if len(b.ConnectionTypes) == 0 {
		b.ConnectionTypes = []string{"websocket", "long-polling", "callback-polling"}
	}
	setInt(&b.DuplicateConnectStatus, 500)

	setInt(&c.Limits.MaxRequestBytes, 256<<10)
	setInt(&c.Limits.MaxBatch, 256)
	setInt(&c.Limits.MaxSubscriptionsPerSession, 1000)
	setInt(&c.Limits.MaxChannelsPerSubscribe, 100)

	ws := &c.Transports.WebSocket
	setInt(&ws.ReadBufferSize, 512)
	setInt(&ws.WriteBufferSize, 4096)
	setDur(&ws.PingInterval, 25*time.Second)
	setDur(&ws.IdleTimeout, 60*time.Second)
	setDur(&ws.WriteTimeout, 10*time.Second)
	setInt(&ws.MaxFrameBytes, 64<<10)
	setInt(&ws.MaxPendingBytes, 1<<20)
	setDur(&ws.HandshakeTimeout, 10*time.Second)
	setBool(&ws.Poller, true)
	setDur(&ws.FlushDelay, 500*time.Microsecond)
	setDur(&ws.AnswerWait, 100*time.Millisecond)
	cp := &c.Transports.CallbackPolling
	setStr(&cp.CallbackParameter, "jsonp")
	setInt(&cp.MaxCallbackLength, 64)

	setStr(&c.Cookie.Name, "BAYEUX_BROWSER")
	setStr(&c.Cookie.Path, "/")
	setBool(&c.Cookie.HTTPOnly, true)
	setDur(&c.CORS.MaxAge, 10*time.Minute)

	setBool(&c.Extensions.Ack, true)
	setBool(&c.Extensions.Timesync, true)
	setBool(&c.Extensions.Timestamp, false)
	setBool(&c.Demo.Enabled, true)
	c.setBackendDefaults()
	c.setAPIDefaults()
	c.setTLSDefaults()
	c.setClusterDefaults()
}

// Load reads the YAML file at path strictly (unknown keys are errors),
// applies environment overrides, then defaults, and validates. An empty
// path loads the embedded defaults plus the environment.
func Load(path string) (*Config, error) {
	c := &Config{}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if err := Decode(data, c); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := c.ApplyEnv(os.LookupEnv); err != nil {
		return nil, err
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// EnvVar is an environment variable that overrides one setting of the
// file.
type EnvVar struct {
	Name  string // e.g. "COMETGATE_LISTEN"
	Field string // the setting it overrides, e.g. "listen"
	Usage string // what it holds, in a few words
	apply func(c *Config, v string) error
}

// Environment lists the environment variables [Config.ApplyEnv] reads, in
// the order it applies them.
func Environment() []EnvVar {
	return []EnvVar{
		{"COMETGATE_LISTEN", "listen", "public listener, host:port", func(c *Config, v string) error {
			c.Listen = v
			return nil
		}},
		{"COMETGATE_LOG_LEVEL", "log.level", "debug, info, warn or error", func(c *Config, v string) error {
			c.Log.Level = v
			return nil
		}},
		{"COMETGATE_LOG_FORMAT", "log.format", "text or json", func(c *Config, v string) error {
			c.Log.Format = v
			return nil
		}},
		{"COMETGATE_TIMEOUT", "bayeux.timeout", "how long /meta/connect is held, e.g. 20s", func(c *Config, v string) error {
			d, err := parseDuration(v)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrInvalid, &FieldError{"COMETGATE_TIMEOUT", v, err.Error()})
			}
			c.Bayeux.Timeout = d
			return nil
		}},
		{"COMETGATE_ALLOWED_ORIGINS", "cors.allowedOrigins", "comma-separated origins, or *", func(c *Config, v string) error {
			c.CORS.AllowedOrigins = splitList(v)
			return nil
		}},
		{"COMETGATE_DEBUG_LISTEN", "debug.listen", "loopback host:port serving /debug/pprof/", func(c *Config, v string) error {
			c.Debug.Listen = v
			return nil
		}},
		{"COMETGATE_API_LISTEN", "api.listen", `control API host:port, "public" or "off"`, func(c *Config, v string) error {
			c.API.Listen = v
			return nil
		}},
		{"COMETGATE_API_TOKENS", "api.tokens", "comma-separated bearer tokens for the control API", func(c *Config, v string) error {
			c.API.Tokens = splitList(v)
			return nil
		}},
		{"COMETGATE_CLUSTER_BROKER", "cluster.broker", "memory, nats or embedded", func(c *Config, v string) error {
			c.Cluster.Broker = v
			return nil
		}},
		{"COMETGATE_NODE_NAME", "cluster.nodeName", "this node's name in the cluster", func(c *Config, v string) error {
			c.Cluster.NodeName = v
			return nil
		}},
		{"COMETGATE_NATS_URLS", "cluster.nats.urls", "comma-separated NATS server URLs", func(c *Config, v string) error {
			c.Cluster.NATS.URLs = splitList(v)
			return nil
		}},
		{"COMETGATE_DEMO", "demo.enabled", "true or false: serve the demo chat", func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrInvalid, &FieldError{"COMETGATE_DEMO", v, "must be true or false"})
			}
			c.Demo.Enabled = &b
			return nil
		}},
	}
}

// ApplyEnv applies the environment overrides listed by [Environment],
// read through lookup (os.LookupEnv in production); an empty value is
// ignored.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	for _, e := range Environment() {
		if v, ok := lookup(e.Name); ok && v != "" {
			if err := e.apply(c, v); err != nil {
				return err
			}
		}
	}
	return nil
}

var connectionTypes = map[string]bool{"websocket": true, "long-polling": true, "callback-polling": true}

var callbackParamRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Validate checks every field and returns all problems at once, each a
// *FieldError, joined and wrapping ErrInvalid.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field string, value any, reason string) {
		errs = append(errs, &FieldError{field, value, reason})
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", c.Listen, "must be host:port")
	}
	if !strings.HasPrefix(c.Path, "/") || strings.HasSuffix(c.Path, "/") && c.Path != "/" {
		bad("path", c.Path, "must start with / and not end with /")
	}
	if c.Path == "/" {
		bad("path", c.Path, "must not be the root, which serves the demo and health endpoints")
	}
	positive := func(field string, d Duration) {
		if d <= 0 {
			bad(field, d, "must be > 0")
		}
	}
	positive("shutdownTimeout", c.ShutdownTimeout)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", c.Log.Level, "must be one of debug, info, warn, error")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", c.Log.Format, "must be text or json")
	}
	b := c.Bayeux
	positive("bayeux.timeout", b.Timeout)
	if b.Interval < 0 {
		bad("bayeux.interval", b.Interval, "must be >= 0")
	}
	positive("bayeux.maxInterval", b.MaxInterval)
	positive("bayeux.sweepPeriod", b.SweepPeriod)
	if b.MaxQueue < 1 {
		bad("bayeux.maxQueue", b.MaxQueue, "must be > 0")
	}
	if b.MaxQueueBytes < 1024 {
		bad("bayeux.maxQueueBytes", b.MaxQueueBytes, "must be >= 1024")
	}
	if b.MaxSessionsPerBrowser < -1 {
		bad("bayeux.maxSessionsPerBrowser", b.MaxSessionsPerBrowser, "must be >= 1, or -1 for unlimited")
	}
	if b.HTTP2MaxSessionsPerBrowser < -1 {
		bad("bayeux.http2MaxSessionsPerBrowser", b.HTTP2MaxSessionsPerBrowser, "must be >= 1, or -1 for unlimited")
	}
	seen := map[string]bool{}
	for i, t := range b.ConnectionTypes {
		field := fmt.Sprintf("bayeux.connectionTypes[%d]", i)
		if !connectionTypes[t] {
			bad(field, t, "must be websocket, long-polling or callback-polling")
		} else if seen[t] {
			bad(field, t, "listed twice")
		}
		seen[t] = true
	}
	if b.DuplicateConnectStatus < 400 || b.DuplicateConnectStatus > 599 {
		bad("bayeux.duplicateConnectStatus", b.DuplicateConnectStatus, "must be an HTTP error status (400-599)")
	}
	if c.Limits.MaxRequestBytes < 1024 {
		bad("limits.maxRequestBytes", c.Limits.MaxRequestBytes, "must be >= 1024")
	}
	if c.Limits.MaxBatch < 1 {
		bad("limits.maxBatch", c.Limits.MaxBatch, "must be > 0")
	}
	if c.Limits.MaxSubscriptionsPerSession < 1 {
		bad("limits.maxSubscriptionsPerSession", c.Limits.MaxSubscriptionsPerSession, "must be > 0")
	}
	if c.Limits.MaxChannelsPerSubscribe < 1 {
		bad("limits.maxChannelsPerSubscribe", c.Limits.MaxChannelsPerSubscribe, "must be > 0")
	}
	ws := c.Transports.WebSocket
	if ws.ReadBufferSize < 128 {
		bad("transports.websocket.readBufferSize", ws.ReadBufferSize, "must be >= 128")
	}
	if ws.WriteBufferSize < 128 {
		bad("transports.websocket.writeBufferSize", ws.WriteBufferSize, "must be >= 128")
	}
	positive("transports.websocket.pingInterval", ws.PingInterval)
	positive("transports.websocket.writeTimeout", ws.WriteTimeout)
	positive("transports.websocket.handshakeTimeout", ws.HandshakeTimeout)
	if c.Limits.MaxConnectionsPerAddress < 0 {
		bad("limits.maxConnectionsPerAddress", c.Limits.MaxConnectionsPerAddress, "must be >= 0 (0: off)")
	}
	if ws.MaxPendingBytes < ws.MaxFrameBytes {
		bad("transports.websocket.maxPendingBytes", ws.MaxPendingBytes, "must be at least transports.websocket.maxFrameBytes")
	}
	if ws.IdleTimeout <= ws.PingInterval {
		bad("transports.websocket.idleTimeout", ws.IdleTimeout, "must exceed transports.websocket.pingInterval ("+ws.PingInterval.String()+")")
	}
	if ws.FlushDelay > Duration(100*time.Millisecond) {
		bad("transports.websocket.flushDelay", ws.FlushDelay, "must be at most 100ms (negative: write at once)")
	}
	if ws.AnswerWait > Duration(5*time.Second) {
		bad("transports.websocket.answerWait", ws.AnswerWait, "must be at most 5s, below the clients' reply timeout (negative: reply at once)")
	}
	if ws.MessagesPerFrame < 0 {
		bad("transports.websocket.messagesPerFrame", ws.MessagesPerFrame, "must be >= 0")
	}
	if ws.MaxFrameBytes < 1024 {
		bad("transports.websocket.maxFrameBytes", ws.MaxFrameBytes, "must be >= 1024")
	}
	cp := c.Transports.CallbackPolling
	if !callbackParamRE.MatchString(cp.CallbackParameter) {
		bad("transports.callbackPolling.callbackParameter", cp.CallbackParameter, "must match [A-Za-z0-9_.-]+")
	}
	if cp.MaxCallbackLength < 1 || cp.MaxCallbackLength > 1024 {
		bad("transports.callbackPolling.maxCallbackLength", cp.MaxCallbackLength, "must be between 1 and 1024")
	}
	if !callbackParamRE.MatchString(c.Cookie.Name) {
		bad("cookie.name", c.Cookie.Name, "must match [A-Za-z0-9_.-]+")
	}
	switch strings.ToLower(c.Cookie.SameSite) {
	case "", "lax", "strict", "none":
	default:
		bad("cookie.sameSite", c.Cookie.SameSite, "must be lax, strict, none or empty")
	}
	for i, o := range c.CORS.AllowedOrigins {
		if o != "*" && !webOrigin(o) {
			bad(fmt.Sprintf("cors.allowedOrigins[%d]", i), o, `must be "*" or an origin such as https://app.example (scheme, host, optional port; no path, no trailing slash)`)
		}
	}
	c.validateBackends(bad)
	c.validateAPI(bad)
	c.validateTLS(bad)
	c.validateCluster(bad)
	if c.Debug.Listen != "" && !loopback(c.Debug.Listen) {
		bad("debug.listen", c.Debug.Listen, "profiles may only be served on a loopback address")
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
}

// UnmarshalYAML accepts "20s"-style strings or integer milliseconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

func parseDuration(s string) (Duration, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return Duration(time.Duration(ms) * time.Millisecond), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 20s, 500ms or an integer of milliseconds)", s)
	}
	return Duration(d), nil
}

func setStr(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setDur(p *Duration, v time.Duration) {
	if *p == 0 {
		*p = Duration(v)
	}
}

func setBool(p **bool, v bool) {
	if *p == nil {
		*p = &v
	}
}

// splitList splits a comma-separated environment value, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
