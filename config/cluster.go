package config

import (
	"net"
	"os"
	"regexp"
	"strings"
	"time"
)

// ClusterConfig joins several gateway nodes into one, over NATS: channels,
// narrowcasts, the control API and polling sessions behave as on one node,
// behind a load balancer without sticky sessions.
type ClusterConfig struct {
	// Broker is "memory" (one node, nothing shared), "nats" (the NATS
	// servers in NATS.URLs) or "embedded" (a nats-server started inside
	// the gateway, clustered with the other nodes' through
	// Embedded.Routes). Default "memory". Environment:
	// COMETGATE_CLUSTER_BROKER.
	Broker string `yaml:"broker"`
	// NodeName names this node in logs, metrics and the control API.
	// Default "", which means the host name (see NodeNameOrHost).
	// Environment: COMETGATE_NODE_NAME.
	NodeName string `yaml:"nodeName"`
	// SubjectPrefix starts every NATS subject the gateway uses, so that
	// several clusters may share one NATS account. Default "cometgate".
	SubjectPrefix string `yaml:"subjectPrefix"`
	// RequestTimeout bounds a request to another node that is not a held
	// /meta/connect: a relayed poll, a control API call answered by every
	// node. Default 2s.
	RequestTimeout Duration `yaml:"requestTimeout"`
	// MaxPendingMessages and MaxPendingBytes bound what each NATS
	// subscription may hold before the gateway has handled it; beyond, the
	// client library drops messages (counted as slow-consumer drops).
	// Defaults 65536 and 64 MiB.
	MaxPendingMessages int `yaml:"maxPendingMessages"`
	MaxPendingBytes    int `yaml:"maxPendingBytes"`
	// MaxRelayed bounds the polling requests of other nodes this node
	// serves at once (held connects included); beyond, they are refused
	// with 503 and the client retries. Default 20000.
	MaxRelayed int `yaml:"maxRelayed"`
	// NATS is how to reach the NATS servers (broker nats).
	NATS NATSConfig `yaml:"nats"`
	// Embedded configures the in-process NATS server (broker embedded).
	Embedded EmbeddedNATSConfig `yaml:"embedded"`
}

// NATSConfig is a NATS client connection.
type NATSConfig struct {
	// URLs are the servers, e.g. nats://10.0.0.1:4222. Default
	// ["nats://127.0.0.1:4222"]. Environment: COMETGATE_NATS_URLS
	// (comma-separated).
	URLs []string `yaml:"urls"`
	// CredsFile is a NATS credentials file (JWT and NKey seed). Default "".
	CredsFile string `yaml:"credsFile"`
	// NKeyFile is a file holding an NKey seed (user key). Default "".
	NKeyFile string `yaml:"nkeyFile"`
	// Token is an authentication token. Default "".
	Token string `yaml:"token"`
	// CAFile verifies the servers' certificates (TLS); CertFile and
	// KeyFile are this client's certificate. Default "" (system roots, no
	// client certificate).
	CAFile   string `yaml:"caFile"`
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// ReconnectWait is the pause between reconnection attempts, jittered.
	// Default 1s.
	ReconnectWait Duration `yaml:"reconnectWait"`
	// ReconnectBufferBytes is how much the client keeps to send while it
	// is reconnecting; what does not fit is counted as not forwarded.
	// Default 8 MiB.
	ReconnectBufferBytes int `yaml:"reconnectBufferBytes"`
}

// EmbeddedNATSConfig is the NATS server started inside the gateway.
type EmbeddedNATSConfig struct {
	// Listen is its client listener, which the node itself connects to.
	// Default "127.0.0.1:4222".
	Listen string `yaml:"listen"`
	// ClusterListen is its route listener, for the other nodes' embedded
	// servers; "" (the default) runs it alone.
	ClusterListen string `yaml:"clusterListen"`
	// Routes are the other nodes' route URLs, nats-route://host:port.
	Routes []string `yaml:"routes"`
	// ClusterName must be the same on every node. Default "cometgate".
	ClusterName string `yaml:"clusterName"`
}

// NodeNameOrHost returns NodeName, or the host name when it is empty.
func (k *ClusterConfig) NodeNameOrHost() string {
	if k.NodeName != "" {
		return k.NodeName
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "cometgate"
}

// Clustered reports whether the node shares its channels with others.
func (c *Config) Clustered() bool { return c.Cluster.Broker != "memory" }

func (c *Config) setClusterDefaults() {
	k := &c.Cluster
	setStr(&k.Broker, "memory")
	setStr(&k.SubjectPrefix, "cometgate")
	setDur(&k.RequestTimeout, 2*time.Second)
	setInt(&k.MaxPendingMessages, 65536)
	setInt(&k.MaxPendingBytes, 64<<20)
	setInt(&k.MaxRelayed, 20000)
	if len(k.NATS.URLs) == 0 {
		k.NATS.URLs = []string{"nats://127.0.0.1:4222"}
	}
	setDur(&k.NATS.ReconnectWait, time.Second)
	setInt(&k.NATS.ReconnectBufferBytes, 8<<20)
	setStr(&k.Embedded.Listen, "127.0.0.1:4222")
	setStr(&k.Embedded.ClusterName, "cometgate")
}

// subjectTokenRE is one NATS subject token without wildcards.
var subjectTokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func (c *Config) validateCluster(bad func(field string, value any, reason string)) {
	k := c.Cluster
	switch k.Broker {
	case "memory", "nats", "embedded":
	default:
		bad("cluster.broker", k.Broker, "must be memory, nats or embedded")
	}
	for _, tok := range strings.Split(k.SubjectPrefix, ".") {
		if !subjectTokenRE.MatchString(tok) {
			bad("cluster.subjectPrefix", k.SubjectPrefix, "must be NATS subject tokens of [A-Za-z0-9_-] joined by dots")
			break
		}
	}
	if k.RequestTimeout <= 0 {
		bad("cluster.requestTimeout", k.RequestTimeout, "must be > 0")
	}
	if k.MaxPendingMessages < 1 {
		bad("cluster.maxPendingMessages", k.MaxPendingMessages, "must be > 0")
	}
	if k.MaxPendingBytes < 1024 {
		bad("cluster.maxPendingBytes", k.MaxPendingBytes, "must be >= 1024")
	}
	if k.MaxRelayed < 1 {
		bad("cluster.maxRelayed", k.MaxRelayed, "must be > 0")
	}
	if k.Broker == "nats" {
		for _, u := range k.NATS.URLs {
			if !strings.Contains(u, "://") {
				bad("cluster.nats.urls", u, "must be a URL such as nats://host:4222")
			}
		}
	}
	if k.NATS.ReconnectWait <= 0 {
		bad("cluster.nats.reconnectWait", k.NATS.ReconnectWait, "must be > 0")
	}
	if (k.NATS.CertFile == "") != (k.NATS.KeyFile == "") {
		bad("cluster.nats.certFile", k.NATS.CertFile, "certFile and keyFile go together")
	}
	if k.NATS.CredsFile != "" && k.NATS.NKeyFile != "" {
		bad("cluster.nats.nkeyFile", k.NATS.NKeyFile, "use credsFile or nkeyFile, not both")
	}
	if k.Broker == "embedded" {
		if _, _, err := net.SplitHostPort(k.Embedded.Listen); err != nil {
			bad("cluster.embedded.listen", k.Embedded.Listen, "must be host:port")
		}
		if k.Embedded.ClusterListen != "" {
			if _, _, err := net.SplitHostPort(k.Embedded.ClusterListen); err != nil {
				bad("cluster.embedded.clusterListen", k.Embedded.ClusterListen, "must be host:port or empty")
			}
		}
		if len(k.Embedded.Routes) > 0 && k.Embedded.ClusterListen == "" {
			bad("cluster.embedded.routes", k.Embedded.Routes, "need cluster.embedded.clusterListen")
		}
	}
}
