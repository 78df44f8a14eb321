package main

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The handshakes scenario completes every handshake against a server
// whose CA it is given, and none against one it does not trust.
func TestHandshakesScenario(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args     []string
		ok, fail int64
	}{
		{[]string{"-ca", ca}, 30, 0},
		{[]string{"-insecure", "-tls-curve", "p256"}, 30, 0},
		{nil, 0, 30}, // the system's roots do not know the test server
	} {
		args := append([]string{"-scenario", "handshakes", "-url", srv.URL + "/cometd", "-clients", "30", "-setup-concurrency", "4", "-setup-timeout", "10s"}, tc.args...)
		cfg, err := parseFlags(args)
		if err != nil {
			t.Fatal(err)
		}
		r := &run{cfg: cfg, stats: newStats(), report: &Report{}}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = runHandshakes(ctx, r)
		cancel()
		h := r.report.Handshakes
		if err != nil || h == nil || h.Done != tc.ok || h.Failed != tc.fail {
			t.Fatalf("%v: %+v, %v; want %d done, %d failed", tc.args, h, err, tc.ok, tc.fail)
		}
		if tc.ok > 0 && (h.Version != "TLS 1.3" || h.PerSec <= 0) {
			t.Errorf("%v: %+v", tc.args, h)
		}
		if tc.args != nil && tc.args[0] == "-insecure" && h.Curve != "CurveP256" {
			t.Errorf("-tls-curve p256: key exchange %s", h.Curve)
		}
	}
}

func TestParseFlagsTLS(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-scenario", "handshakes", "-url", "http://127.0.0.1:1/cometd"}, "want https://"},
		{[]string{"-scenario", "idle", "-url", "https://127.0.0.1:1/cometd", "-tls-curve", "x448"}, "-tls-curve"},
		{[]string{"-scenario", "idle", "-url", "https://127.0.0.1:1/cometd", "-ca", "/nonexistent.pem"}, "-ca"},
		{[]string{"-scenario", "idle", "-url", "https://127.0.0.1:1/cometd", "-insecure"}, ""},
	} {
		_, err := parseFlags(tc.args)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseFlags(%q) = %v; want error containing %q", tc.args, err, tc.err)
		}
	}
}
