package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
)

func TestDefaultIsValid(t *testing.T) {
	c := config.Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if c.Listen != "127.0.0.1:8080" || c.Path != "/cometd" || c.Bayeux.Timeout.D() != 20*time.Second || !*c.Demo.Enabled {
		t.Errorf("unexpected defaults: %+v", c)
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFile(t *testing.T) {
	p := writeFile(t, `
listen: 127.0.0.1:9999
bayeux:
  timeout: 5s
  maxInterval: 15000
  broadcastToPublisher: false
cors:
  allowedOrigins: [https://app.example]
`)
	c, err := config.Load(p)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Listen != "127.0.0.1:9999" || c.Bayeux.Timeout.D() != 5*time.Second || c.Bayeux.MaxInterval.D() != 15*time.Second {
		t.Errorf("Load = %+v", c)
	}
	if *c.Bayeux.BroadcastToPublisher {
		t.Error("explicit false was replaced by the default")
	}
	if c.Bayeux.MaxQueue != 1000 {
		t.Errorf("unset field not defaulted: maxQueue = %d", c.Bayeux.MaxQueue)
	}
}

func TestLoadRejectsUnknownKeys(t *testing.T) {
	p := writeFile(t, "bayeux:\n  timeot: 5s\n")
	_, err := config.Load(p)
	if err == nil || !strings.Contains(err.Error(), "timeot") {
		t.Fatalf("Load with a misspelt key = %v; want an error naming it", err)
	}
}

func TestValidateNamesFieldAndValue(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"timeout", func(c *config.Config) { c.Bayeux.Timeout = -1 }, "bayeux.timeout: -1ns: must be > 0"},
		{"listen", func(c *config.Config) { c.Listen = "nohost" }, "listen: nohost: must be host:port"},
		{"path", func(c *config.Config) { c.Path = "cometd" }, "path: cometd: must start with /"},
		{"transport", func(c *config.Config) { c.Bayeux.ConnectionTypes = []string{"smoke-signals"} }, "bayeux.connectionTypes[0]: smoke-signals"},
		{"idle", func(c *config.Config) {
			c.Transports.WebSocket.IdleTimeout = config.Duration(time.Second)
		}, "transports.websocket.idleTimeout: 1s: must exceed"},
		{"origin", func(c *config.Config) { c.CORS.AllowedOrigins = []string{"app.example"} }, "cors.allowedOrigins[0]: app.example"},
		{"level", func(c *config.Config) { c.Log.Level = "loud" }, "log.level: loud"},
		{"status", func(c *config.Config) { c.Bayeux.DuplicateConnectStatus = 200 }, "bayeux.duplicateConnectStatus: 200"},
		{"subscriptions", func(c *config.Config) { c.Limits.MaxSubscriptionsPerSession = -1 }, "limits.maxSubscriptionsPerSession: -1: must be > 0"},
		{"channels", func(c *config.Config) { c.Limits.MaxChannelsPerSubscribe = -5 }, "limits.maxChannelsPerSubscribe: -5: must be > 0"},
		{"required", func(c *config.Config) {
			c.Backends = map[string]config.BackendConfig{"h": {URL: "http://127.0.0.1:9/x", Required: true}}
			c.SetDefaults()
		}, "backends.h.required: true: applies only to gRPC backends"},
	}
	for _, tt := range tests {
		c := config.Default()
		tt.mutate(c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v; want it to contain %q", tt.name, err, tt.want)
			continue
		}
		if !errors.Is(err, config.ErrInvalid) {
			t.Errorf("%s: error does not wrap ErrInvalid", tt.name)
		}
		var fe *config.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: error has no *FieldError", tt.name)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{
		"COMETGATE_LISTEN":          "127.0.0.1:7000",
		"COMETGATE_TIMEOUT":         "3s",
		"COMETGATE_ALLOWED_ORIGINS": "http://a.example, http://b.example",
		"COMETGATE_DEMO":            "false",
		"COMETGATE_LOG_LEVEL":       "debug",
	}
	c := &config.Config{}
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if c.Listen != "127.0.0.1:7000" || c.Bayeux.Timeout.D() != 3*time.Second || len(c.CORS.AllowedOrigins) != 2 || *c.Demo.Enabled || c.Log.Level != "debug" {
		t.Errorf("after env: %+v", c)
	}
	bad := func(k string) (string, bool) {
		if k == "COMETGATE_TIMEOUT" {
			return "soon", true
		}
		return "", false
	}
	if err := (&config.Config{}).ApplyEnv(bad); err == nil || !strings.Contains(err.Error(), "COMETGATE_TIMEOUT: soon") {
		t.Errorf("bad env timeout: %v", err)
	}
}

func TestExampleConfigsAreValid(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	if len(files) == 0 {
		t.Fatal("no example configuration in config/")
	}
	for _, f := range files {
		if _, err := config.Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestBackendReconnect(t *testing.T) {
	c, err := config.Load(writeFile(t, "backends:\n  b:\n    target: 127.0.0.1:9090\n"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if rc := c.Backends["b"].Reconnect; rc.BaseDelay.D() != 100*time.Millisecond || rc.MaxDelay.D() != time.Second || rc.ConnectTimeout.D() != 5*time.Second {
		t.Errorf("reconnect defaults = %+v; want baseDelay 100ms, maxDelay 1s, connectTimeout 5s", rc)
	}
	for _, tt := range []struct{ yaml, want string }{
		{"maxDelay: 50ms", "backends.b.reconnect.maxDelay: 50ms: must be >= reconnect.baseDelay"},
		{"baseDelay: -1s", "backends.b.reconnect.baseDelay: -1s: must be > 0"},
		{"connectTimeout: -1s", "backends.b.reconnect.connectTimeout: -1s: must be > 0"},
	} {
		_, err := config.Load(writeFile(t, "backends:\n  b:\n    target: 127.0.0.1:9090\n    reconnect: {"+tt.yaml+"}\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load with reconnect {%s} = %v; want %q", tt.yaml, err, tt.want)
		}
	}
}

// TestOriginsAreBareOrigins checks that an allowed origin with a path or a
// trailing slash, which no browser sends, is refused.
func TestOriginsAreBareOrigins(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*config.Config)
		want   string // "" for valid
	}{
		{"cors ok", func(c *config.Config) {
			c.CORS.AllowedOrigins = []string{"https://app.example", "http://127.0.0.1:3000", "*"}
		}, ""},
		{"cors trailing slash", func(c *config.Config) { c.CORS.AllowedOrigins = []string{"https://app.example/"} }, "cors.allowedOrigins[0]: https://app.example/: must be"},
		{"cors path", func(c *config.Config) {
			c.CORS.AllowedOrigins = []string{"https://a.example", "https://app.example/chat"}
		}, "cors.allowedOrigins[1]: https://app.example/chat: must be"},
		{"cors no host", func(c *config.Config) { c.CORS.AllowedOrigins = []string{"https://"} }, "cors.allowedOrigins[0]: https://: must be"},
		{"cors query", func(c *config.Config) { c.CORS.AllowedOrigins = []string{"https://app.example?x=1"} }, "cors.allowedOrigins[0]"},
		{"api ok", func(c *config.Config) { c.API.AllowedOrigins = []string{"https://ops.example:8443"} }, ""},
		{"api trailing slash", func(c *config.Config) { c.API.AllowedOrigins = []string{"https://ops.example/"} }, "api.allowedOrigins[0]: https://ops.example/: must be"},
		{"api path", func(c *config.Config) { c.API.AllowedOrigins = []string{"https://ops.example/status"} }, "api.allowedOrigins[0]: https://ops.example/status: must be"},
	}
	for _, tt := range tests {
		c := config.Default()
		tt.mutate(c)
		err := c.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Validate() = %v; want nil", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: Validate() = %v; want an error containing %q", tt.name, err, tt.want)
		}
	}
}
