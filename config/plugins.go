package config

import "go.yaml.in/yaml/v3"

// PluginsConfig configures the plugins on the message path: filter chains
// per channel pattern, policies, handshake authenticators and listeners.
// Each module entry is a mapping whose "module" key names a registered
// module and whose other keys are that module's options, decoded strictly
// (see plugins.Registry.Decode). Everything here is replaced by a reload
// without dropping sessions.
type PluginsConfig struct {
	// Filters are filter chains, each for the channels matching its
	// patterns. A message runs every chain whose patterns match its
	// channel, in the order listed, each chain's filters in order.
	Filters []FilterChainConfig `yaml:"filters"`
	// Policies decide handshakes, channel creation, subscriptions and
	// publishes, after the built-in rules and before the backends' hooks;
	// all must allow, and the first denial is sent.
	Policies []yaml.Node `yaml:"policies"`
	// Authenticators identify the client of a handshake (user id and
	// roles), asked in order until one finds credentials. With any
	// configured, a handshake that none identifies is denied unless
	// AllowAnonymous is set.
	Authenticators []yaml.Node `yaml:"authenticators"`
	// AllowAnonymous accepts handshakes that carry no credentials any
	// authenticator reads (they get no user id). Credentials that are
	// present but refused are denied regardless. Default false.
	AllowAnonymous bool `yaml:"allowAnonymous"`
	// Listeners are told of sessions added and removed, subscriptions and
	// queues that overflow.
	Listeners []yaml.Node `yaml:"listeners"`
}

// FilterChainConfig is one filter chain.
type FilterChainConfig struct {
	// Channels are the patterns the chain applies to: names, or "/a/*"
	// and "/a/**" wildcards. Required.
	Channels []string `yaml:"channels"`
	// Inbound filters see each message once, before it is handed to a
	// backend or fanned out.
	Inbound []yaml.Node `yaml:"inbound"`
	// Outbound filters see each delivery to a session; a channel with
	// none keeps the encode-once fan-out.
	Outbound []yaml.Node `yaml:"outbound"`
}
