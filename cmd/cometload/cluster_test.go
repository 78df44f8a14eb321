package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestClusterFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-scenario", "fanout", "-url", "http://a/cometd, http://b/cometd", "-pub-url", "http://c/cometd", "-server-pid", "11,12,13"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"http://a/cometd", "http://b/cometd"}; !slices.Equal(cfg.urls, want) || cfg.url != want[0] {
		t.Errorf("urls %q url %q; want %q", cfg.urls, cfg.url, want)
	}
	if !slices.Equal(cfg.pubURLs, []string{"http://c/cometd"}) {
		t.Errorf("pubURLs %q", cfg.pubURLs)
	}
	if !slices.Equal(cfg.serverPIDs, []int{11, 12, 13}) || cfg.serverPID != 11 {
		t.Errorf("serverPIDs %v serverPID %d", cfg.serverPIDs, cfg.serverPID)
	}
	e := &env{url: cfg.url, urls: cfg.urls, pubURLs: cfg.pubURLs}
	if got := []string{e.subURL(0), e.subURL(1), e.subURL(2), e.pubURL(5)}; !slices.Equal(got, []string{"http://a/cometd", "http://b/cometd", "http://a/cometd", "http://c/cometd"}) {
		t.Errorf("subURL, pubURL = %q", got)
	}
	cfg, err = parseFlags([]string{"-scenario", "relay", "-url", "http://a/cometd"})
	if err != nil || cfg.transport != "long-polling" {
		t.Errorf("relay: transport %q, err %v; want long-polling", cfg.transport, err)
	}
	for _, bad := range [][]string{
		{"-scenario", "rpc", "-url", "http://a/cometd,http://b/cometd"},
		{"-scenario", "relay", "-transport", "websocket"},
		{"-scenario", "fanout", "-pub-url", "ws://c"},
		{"-server-pid", "1,x"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) = nil error; want one", bad)
		}
	}
}

// fakeBayeux answers handshakes, connects and publishes; it counts the
// publishes it receives.
func fakeBayeux(t *testing.T, publishes *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in []map[string]any
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var out []map[string]any
		for _, m := range in {
			reply := map[string]any{"channel": m["channel"], "id": m["id"], "successful": true}
			switch ch, _ := m["channel"].(string); {
			case ch == "/meta/handshake":
				reply["clientId"] = "owner0001abc"
				reply["advice"] = map[string]any{"timeout": 0, "interval": 60000}
			case ch == "/meta/connect":
				reply["advice"] = map[string]any{"timeout": 0, "interval": 60000}
			case !strings.HasPrefix(ch, "/meta/"):
				publishes.Add(1)
			}
			out = append(out, reply)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestPublishVia: a long-polling session opened on one endpoint sends
// its publish to another and gets the acknowledgement from there.
func TestPublishVia(t *testing.T) {
	var atOwner, atOther atomic.Int64
	owner, other := fakeBayeux(t, &atOwner), fakeBayeux(t, &atOther)
	e := &env{url: owner.URL, transport: "long-polling", timeout: 5 * time.Second, stats: newStats(), lp: newLPShared(1, nil)}
	c := e.newClient(clientOpts{}).(*lpClient)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for range 3 {
		if err := c.PublishVia(ctx, other.URL, "/load/relay", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if atOther.Load() != 3 || atOwner.Load() != 0 {
		t.Errorf("publishes: %d at the other endpoint, %d at the owner; want 3 and 0", atOther.Load(), atOwner.Load())
	}
}
