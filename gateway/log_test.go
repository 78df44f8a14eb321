package gateway_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
)

// A LogHandler's level and format change under loggers already derived
// from it, attributes and groups kept.
func TestLogHandlerApply(t *testing.T) {
	var buf bytes.Buffer
	h := gateway.NewLogHandler(&buf, config.LogConfig{Level: "info", Format: "text"})
	log := slog.New(h).With("node", "n1").WithGroup("g")
	log.Debug("hidden")
	log.Info("as text", "k", 1)
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "msg=\"as text\" node=n1 g.k=1") {
		t.Fatalf("text output %q; want the info line only, with node=n1 g.k=1", got)
	}
	buf.Reset()
	if !h.Apply(config.LogConfig{Level: "debug", Format: "json"}) {
		t.Error("Apply(debug, json) reported no change")
	}
	log.Debug("as json", "k", 2)
	if got := buf.String(); !strings.Contains(got, `"msg":"as json","node":"n1","g":{"k":2}`) {
		t.Fatalf("json output %q; want the debug line in JSON with node and group g", got)
	}
	if h.Apply(config.LogConfig{Level: "debug", Format: "json"}) {
		t.Error("Apply of the same settings reported a change")
	}
}
