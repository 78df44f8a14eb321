package gatewaytest

import (
	"context"
	"errors"
	"github.com/cometgate/cometgate/internal/poll"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
)

// DefaultTimeout bounds every blocking step of a test that has no tighter
// bound of its own: see Context.
const DefaultTimeout = 20 * time.Second

// Server is a gateway started by NewServer.
type Server struct {
	*gateway.Server
	// Config is the configuration the server was built from; do not
	// modify it.
	Config *config.Config
	// URL is the Bayeux endpoint, e.g. "http://127.0.0.1:41234/cometd"
	// (https with tls.mode on).
	URL string
	// WSURL is the same endpoint with the ws (or wss) scheme.
	WSURL string
}

// NewServer starts a gateway for the test and returns it ready to serve.
// The configuration is config.Default() with the public listener and the
// control API's listener both on 127.0.0.1:0, then changed by configure (which may be nil) and validated. opts are passed
// to gateway.New. The server is shut down when the test ends.
//
// Server logs are discarded unless the environment variable
// COMETGATE_TEST_LOG is set, in which case they go to stderr at debug
// level.
func NewServer(t testing.TB, configure func(*config.Config), opts ...gateway.Option) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.API.Listen = "127.0.0.1:0" // never the default port: tests run servers side by side
	if configure != nil {
		configure(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("gatewaytest: invalid configuration: %v", err)
	}
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("COMETGATE_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := gateway.New(cfg, append([]gateway.Option{gateway.WithLogger(logger)}, opts...)...)
	if err != nil {
		t.Fatalf("gatewaytest: gateway.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("gatewaytest: Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("gatewaytest: Shutdown: %v", err)
		}
	})
	scheme := "http"
	if cfg.TLSOn() {
		scheme = "https"
	}
	url := scheme + "://" + srv.Addr().String() + cfg.Path
	return &Server{
		Server: srv,
		Config: cfg,
		URL:    url,
		WSURL:  "ws" + strings.TrimPrefix(url, "http"),
	}
}

// Client returns a new long-polling client of s with its own cookie jar.
func (s *Server) Client() *Client { return NewClient(s.URL, nil) }

// Context returns a context that expires after DefaultTimeout and is
// cancelled when the test ends.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	t.Cleanup(cancel)
	return ctx
}

// Eventually calls fn until it returns nil, failing t after timeout (see
// poll.Eventually).
func Eventually(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	poll.Eventually(t, timeout, fn)
}
