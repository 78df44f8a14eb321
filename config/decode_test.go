package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/config"
)

// TestDecodeErrorsNameTheField checks that keys and values that do not
// fit the configuration are reported by their YAML path and line, with the
// closest known key for a typo, and never with a Go type name.
func TestDecodeErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"typo", "bayeux:\n  maxInteval: 5s\n", "line 2: bayeux.maxInteval: unknown field; did you mean maxInterval?"},
		{"case", "Listen: 127.0.0.1:1\n", "line 1: Listen: unknown field; did you mean listen?"},
		{"far from any key", "bayeux:\n  zzzzzzzz: 1\n", "line 2: bayeux.zzzzzzzz: unknown field; known fields: broadcastToPublisher,"},
		{"nested typo", "transports:\n  websocket:\n    pingIntervall: 1s\n", "line 3: transports.websocket.pingIntervall: unknown field; did you mean pingInterval?"},
		{"backend typo", "backends:\n  b:\n    target: x:1\n    tls: {mod: tls}\n", "line 4: backends.b.tls.mod: unknown field; did you mean mode?"},
		{"route typo", "routes:\n  - chanel: /service/x\n", "line 2: routes[0].chanel: unknown field; did you mean channel?"},
		{"duration", "bayeux:\n  timeout: abc\n", `line 2: bayeux.timeout: "abc": not a duration`},
		{"integer", "bayeux:\n  maxQueue: lots\n", `line 2: bayeux.maxQueue: "lots": not an integer`},
		{"bool", "demo:\n  enabled: maybe\n", `line 2: demo.enabled: "maybe": not true or false`},
		{"list", "bayeux:\n  connectionTypes: websocket\n", `line 2: bayeux.connectionTypes: "websocket": not a list`},
		{"list item", "cors:\n  allowedOrigins: [https://a.example, {x: 1}]\n", `line 2: cors.allowedOrigins[1]: (a mapping): not a string`},
		{"section", "limits: 3\n", `line 1: limits: "3": not a mapping of settings`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(writeFile(t, tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load(%q) = %v; want an error containing %q", tt.yaml, err, tt.want)
			}
			for _, goName := range []string{"config.", "not found in type", "cannot unmarshal", "time.Duration"} {
				if strings.Contains(err.Error(), goName) {
					t.Errorf("Load(%q) = %v; it names Go types (%q)", tt.yaml, err, goName)
				}
			}
			var de *config.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, config.ErrInvalid) {
				t.Errorf("Load(%q) = %v; want a *config.DecodeError wrapping ErrInvalid", tt.yaml, err)
			}
		})
	}
}

// TestDecodeAcceptsYAMLForms checks that what the YAML library accepts
// passes the field check too (empty documents, anchors, aliases and merge
// keys), and that a typo inside a merged mapping is still found.
func TestDecodeAcceptsYAMLForms(t *testing.T) {
	for _, text := range []string{
		"",
		"# only a comment\n",
		"~\n",
		"bayeux:\n  timeout: &t 5s\n  maxInterval: *t\n",
		"backends:\n  a: &b {target: 127.0.0.1:1, timeout: 2s}\n  c:\n    <<: *b\n    timeout: 3s\n",
		"backends:\n  a: &b {target: 127.0.0.1:1}\n  c:\n    <<: [*b]\n",
	} {
		var c config.Config
		if err := config.Decode([]byte(text), &c); err != nil {
			t.Errorf("Decode(%q) = %v; want nil", text, err)
		}
	}
	var c config.Config
	err := config.Decode([]byte("backends:\n  a: &b {targt: 127.0.0.1:1}\n  c:\n    <<: *b\n"), &c)
	for _, want := range []string{"backends.a.targt: unknown field; did you mean target?", "backends.c.targt: unknown field; did you mean target?"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode(typo in a merged mapping) = %v; want %q", err, want)
		}
	}
}

// TestDecodeReportsEveryError checks that all problems of a file are
// reported at once, in file order.
func TestDecodeReportsEveryError(t *testing.T) {
	_, err := config.Load(writeFile(t, "bayeux:\n  timeot: 5s\n  maxQueue: x\nlog:\n  levle: debug\n"))
	if err == nil {
		t.Fatal("Load of three bad keys succeeded")
	}
	got := err.Error()
	want := []string{"line 2: bayeux.timeot: unknown field; did you mean timeout?", "line 3: bayeux.maxQueue", "line 5: log.levle: unknown field; did you mean level?"}
	last := -1
	for _, w := range want {
		i := strings.Index(got, w)
		if i < 0 || i < last {
			t.Fatalf("Load = %v; want %q in order", got, want)
		}
		last = i
	}
}
