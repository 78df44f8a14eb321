package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/acme"
	"github.com/cometgate/cometgate/gateway/api"
	"github.com/cometgate/cometgate/gateway/backend"
	"github.com/cometgate/cometgate/gateway/cluster"
	"github.com/cometgate/cometgate/gateway/demo"
	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/cometgate/cometgate/gateway/ext"
	"github.com/cometgate/cometgate/gateway/internal/connlimit"
	"github.com/cometgate/cometgate/gateway/metrics"
	"github.com/cometgate/cometgate/gateway/status"
	"github.com/cometgate/cometgate/gateway/transport"
	"github.com/cometgate/cometgate/plugins"
)

// Option sets a programmatic hook of the Server.
type Option interface{ apply(*Server) }

type optionFunc func(*Server)

func (f optionFunc) apply(s *Server) { f(s) }

// WithLogger sets the server's logger. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return optionFunc(func(s *Server) { s.log = l }) }

// WithEngineOptions passes options (policy, extensions) to the engine,
// after the server's own. A policy passed here is added to the auth
// backend's (auth.backend), which is asked first: both must allow.
func WithEngineOptions(opts ...engine.Option) Option {
	return optionFunc(func(s *Server) { s.engineOpts = append(s.engineOpts, opts...) })
}

// Server is a running Cometgate node.
type Server struct {
	cfg        *config.Config
	log        *slog.Logger
	engineOpts []engine.Option

	engine    *engine.Engine
	node      *cluster.Node     // cluster membership; nil on a single node
	embedded  *cluster.Embedded // the in-process NATS server, broker embedded
	backends  *backend.Router
	transport *transport.Handler
	chat      *demo.Chat
	mux       *http.ServeMux
	http      *http.Server
	api       *http.Server     // the control API's own server, if any
	apiSvc    *api.Service     // the control API, if enabled
	debug     *http.Server     // pprof, if configured
	metrics   *metrics.Metrics // the Prometheus registry
	status    *status.Status   // the status page, with the control API

	logHandler *LogHandler // the logger's handler, when built with NewLogHandler

	registry       *plugins.Registry // WithRegistry, or the built-in modules
	pluginShared   *plugins.Shared   // values kept across plugin reloads
	pluginCounters *plugins.Counters // filter outcomes, across reloads

	configPath string         // WithConfigFile; "" when none
	started    atomic.Bool    // Start has finished
	reloadMu   sync.Mutex     // serialises Reload; guards live
	live       *config.Config // the configuration last applied

	certCheck  time.Duration      // how often tls.mode files looks at its files
	certs      certSource         // the public listener's certificates; nil without TLS; set by Start
	acmeTuning func(*acme.Config) // WithACMETuning
	certExpiry atomic.Int64       // Unix time the certificate last served expires; 0: none yet
	plain      *http.Server       // tls.httpListen's server, if any

	mu            sync.Mutex // guards listener, plainListener, apiListener, serveErr
	listener      net.Listener
	plainListener net.Listener                       // tls.httpListen, if any
	connLimit     atomic.Pointer[connlimit.Listener] // the public listener, once started
	apiListener   net.Listener
	serveErr      chan error
}

// New builds a Server from cfg, which must have been validated (as
// config.Load does). Nothing is started.
func New(cfg *config.Config, opts ...Option) (*Server, error) {
	s := &Server{cfg: cfg, live: cfg, log: slog.Default(), metrics: metrics.New(), certCheck: defaultCertCheck,
		pluginShared: new(plugins.Shared), pluginCounters: new(plugins.Counters)}
	for _, o := range opts {
		o.apply(s)
	}
	s.logHandler, _ = s.log.Handler().(*LogHandler)
	var recent *status.Recorder
	if cfg.APIEnabled() {
		// The status page lists the last warnings and errors logged.
		recent = status.NewRecorder(recentErrors)
		s.log = slog.New(recent.Handler(s.log.Handler()))
	}
	b := cfg.Bayeux
	bc := backendConfig(cfg, s.log)
	bc.ObserveCall = s.metrics.ObserveCall
	router, err := backend.New(bc)
	if err != nil {
		return nil, err
	}
	s.backends = router
	eopts := []engine.Option{engine.WithLogger(s.log)}
	if s.node, err = clusterNode(cfg, s); err != nil {
		router.Close(context.Background())
		return nil, err
	}
	if s.node != nil {
		eopts = append(eopts, engine.WithBroker(s.node), engine.WithIDPrefix(s.node.ID()))
	}
	if *cfg.Extensions.Timesync {
		eopts = append(eopts, engine.WithExtension(&ext.Timesync{}))
	}
	if *cfg.Extensions.Timestamp {
		eopts = append(eopts, engine.WithExtension(&ext.Timestamp{}))
	}
	if cfg.Auth.Backend != "" {
		eopts = append(eopts, engine.WithPolicy(router), engine.WithExtension(router))
	}
	if cfg.APIEnabled() {
		// Only the status page may subscribe to its channels.
		s.status = status.New(status.Config{
			Authorize: func(r *http.Request) bool { return s.apiSvc.RequestAuthorized(r) },
			Conns:     func() int { return s.transport.Len() },
			Backends:  router.Backends,
			Errors:    recent,
			Logger:    s.log,
		})
		eopts = append(eopts, engine.WithPolicy(s.status))
	}
	// Policies compose: an embedder's policy is asked after the auth
	// backend's, and sees the user it bound.
	eopts = append(eopts, s.engineOpts...)
	s.engine = engine.New(engine.Config{
		Timeout:                b.Timeout.D(),
		Interval:               b.Interval.D(),
		MaxInterval:            b.MaxInterval.D(),
		SweepPeriod:            b.SweepPeriod.D(),
		NoBroadcastToPublisher: !*b.BroadcastToPublisher,
		MetaConnectDeliverOnly: b.MetaConnectDeliverOnly,
		ConnectionTypes:        b.ConnectionTypes,
		Ack:                    *cfg.Extensions.Ack,
	}, eopts...)
	s.engine.SetLimits(engineLimits(cfg))
	set, err := s.loadPlugins(context.Background(), cfg.Plugins)
	if err != nil {
		router.Close(context.Background())
		s.pluginShared.Close()
		return nil, err
	}
	s.engine.SetPlugins(set)
	// From here on, a failure must also undo the plugins.
	undo := func(err error) (*Server, error) {
		router.Close(context.Background())
		s.closePlugins(context.Background())
		return nil, err
	}
	if s.status != nil {
		s.status.Bind(s.engine)
	}
	if s.node != nil {
		if err := s.node.Bind(s.engine); err != nil {
			return undo(err)
		}
	}
	ws := cfg.Transports.WebSocket
	s.transport = transport.NewHandler(s.engine, transport.Config{
		ConnectionTypes:            b.ConnectionTypes,
		MaxSessionsPerBrowser:      b.MaxSessionsPerBrowser,
		HTTP2MaxSessionsPerBrowser: b.HTTP2MaxSessionsPerBrowser,
		DuplicateConnectStatus:     b.DuplicateConnectStatus,
		CallbackParameter:          cfg.Transports.CallbackPolling.CallbackParameter,
		MaxCallbackLength:          cfg.Transports.CallbackPolling.MaxCallbackLength,
		WebSocket: transport.WebSocketConfig{
			ReadBufferSize: ws.ReadBufferSize, WriteBufferSize: ws.WriteBufferSize,
			PingInterval: ws.PingInterval.D(), IdleTimeout: ws.IdleTimeout.D(), WriteTimeout: ws.WriteTimeout.D(),
			MessagesPerFrame: ws.MessagesPerFrame, MaxFrameBytes: ws.MaxFrameBytes, MaxPendingBytes: ws.MaxPendingBytes,
			FlushDelay:  max(ws.FlushDelay.D(), 0),
			AnswerWait:  max(ws.AnswerWait.D(), 0),
			Subprotocol: ws.Subprotocol, Compression: ws.Compression,
			RequireHandshakePerConnection: ws.RequireHandshakePerConnection,
			HandshakeTimeout:              ws.HandshakeTimeout.D(), Poller: *ws.Poller,
		},
		KeepHeaders:   keptHeaders(cfg),
		Logger:        s.log,
		AnswerLatency: s.metrics.ObserveAnswer,
	})
	s.transport.SetLive(transportLive(cfg))
	s.bindRelay()
	s.mux = http.NewServeMux()
	s.mux.Handle(cfg.Path, s.transport)
	s.mux.Handle(cfg.Path+"/", s.transport)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if cfg.Metrics.Public {
		s.mux.Handle("GET /metrics", s.metrics.Handler())
	}
	if *cfg.Demo.Enabled {
		// A call route on a demo channel would answer each call twice.
		for _, ch := range demo.Channels() {
			if p := router.CallRoute(ch); p != "" {
				return undo(fmt.Errorf("routes: %s: also matches %s, which the demo chat serves; set demo.enabled: false or route other channels", p, ch))
			}
		}
		chat, err := demo.Register(s.engine)
		if err != nil {
			return undo(fmt.Errorf("demo: %w", err))
		}
		s.chat = chat
		s.mux.Handle("/", demo.Handler())
	}
	s.http = s.newHTTPServer(s.hsts(s.mux))
	if cfg.APIEnabled() {
		if err := s.buildAPI(); err != nil {
			return undo(err)
		}
	}
	if err := s.metrics.Register(s.metricSources()); err != nil {
		return undo(fmt.Errorf("metrics: %w", err))
	}
	return s, nil
}

func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(s.cfg.APIEnabled() && s.cfg.APIOnPublic()) // gRPC clients on the public port
	return &http.Server{
		Handler:           h,
		Protocols:         &p,
		ReadHeaderTimeout: 10 * time.Second,
		// Bounds reading a whole request (a slowly sent body); long polls
		// are held while writing, and websockets clear it on upgrade.
		ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// recentErrors is how many warnings and errors the status page lists.
const recentErrors = 50

// buildAPI creates the control API and mounts it on the public mux or on
// its own server.
func (s *Server) buildAPI() error {
	a := s.cfg.API
	listen := a.Listen
	if s.cfg.APIOnPublic() {
		listen = s.cfg.Listen
	}
	var cl api.Cluster // a nil *cluster.Node must stay a nil interface
	if s.node != nil {
		cl = s.node
	}
	svc := api.New(s.engine, api.Config{
		Listen:          listen,
		AllowedOrigins:  a.AllowedOrigins,
		AllowedHosts:    a.AllowedHosts,
		Tokens:          a.Tokens,
		ClientCerts:     a.TLS.ClientCAFile != "",
		MaxDataBytes:    a.MaxDataBytes,
		Conns:           s.transport.Len,
		Reload:          s.reloadForAPI,
		TLSNames:        s.tlsNames,
		LongPollAnswers: s.metrics.LongPollAnswers,
		ObserveRequest:  s.metrics.ObserveRequest,
		Cluster:         cl,
		Logger:          s.log,
	})
	s.apiSvc = svc
	metricsHandler := s.guardedMetrics(svc)
	statusPage := s.status.Handler(s.transport)
	if s.cfg.APIOnPublic() {
		s.mux.Handle(status.PagePath, statusPage)
		s.mux.Handle(status.PagePath+"/", statusPage)
		s.mux.Handle("/v1/", svc.Handler())
		s.mux.Handle("/cometgate.gateway.v1.Gateway/", svc.Handler())
		for _, p := range api.ReflectionPaths {
			s.mux.Handle(p, svc.Handler())
		}
		if !s.cfg.Metrics.Public {
			s.mux.Handle("GET /metrics", metricsHandler)
		}
		return nil
	}
	own := http.NewServeMux()
	own.HandleFunc("GET /readyz", s.readyz)
	own.Handle(status.PagePath, statusPage)
	own.Handle(status.PagePath+"/", statusPage)
	own.Handle("/", svc.Handler())
	own.Handle("GET /metrics", metricsHandler)
	srv := s.newHTTPServer(own)
	srv.Protocols.SetUnencryptedHTTP2(!s.cfg.APITLSOn())
	if s.cfg.APITLSOn() {
		tc, err := apiTLS(a.TLS)
		if err != nil {
			return fmt.Errorf("api.tls: %w", err)
		}
		srv.TLSConfig = tc
	}
	s.api = srv
	return nil
}

// apiTLS loads the API listener's certificate and, for mTLS, the client CA.
// Client certificates are verified when given; a request without one must
// then carry a token. With Public, the certificate is the public
// listener's, set by Start (GetCertificate).
func apiTLS(c config.APITLSConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if !c.Public {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", c.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

// guardedMetrics serves /metrics to the requests the control API would
// accept (its tokens or client certificates).
func (s *Server) guardedMetrics(svc *api.Service) http.Handler {
	h := s.metrics.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !svc.Authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cometgate"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// metricSources lists the components /metrics reads at scrape time.
func (s *Server) metricSources() metrics.Sources {
	src := metrics.Sources{Engine: s.engine, Transport: s.transport, Backends: s.backends, RefusedConnections: s.RefusedConnections, Plugins: s.pluginCounters}
	if s.node != nil {
		src.Cluster = s.clusterFigures
	}
	if s.cfg.TLSOn() {
		src.CertificateExpiry = s.CertificateExpiry
		src.CertificateLoadFailures = s.certificateLoadFailures
	}
	if s.cfg.TLS.Mode == "auto" {
		src.TLSCertificates = s.acmeCounts
	}
	if svc := s.apiSvc; svc != nil {
		src.APIRefused = func() map[string]int64 {
			r := svc.Refused()
			return map[string]int64{"host": r.Host, "origin": r.Origin, "contentType": r.ContentType}
		}
	}
	return src
}

// Metrics returns the node's metrics, whose registry /metrics serves.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// API returns the control API, for its counters; nil with api.listen: off.
func (s *Server) API() *api.Service { return s.apiSvc }

// Engine returns the protocol engine, for embedding programs and tests.
func (s *Server) Engine() *engine.Engine { return s.engine }

// RefusedConnections returns how many connections the public listener
// refused because their address held limits.maxConnectionsPerAddress.
func (s *Server) RefusedConnections() int64 {
	if l := s.connLimit.Load(); l != nil {
		return l.Refused()
	}
	return 0
}

// Transport returns the Bayeux endpoint's handler, for its counters.
func (s *Server) Transport() *transport.Handler { return s.transport }

// Handler returns the server's HTTP handler (Bayeux endpoint, health, demo).
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.engine.Closing() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("shutting down\n"))
		return
	}
	w.Write([]byte("ok\n"))
}

// Start listens on the configured addresses and serves in the background.
// If any part fails to start, what was started is stopped, in reverse
// order, and the error returned.
func (s *Server) Start(ctx context.Context) (err error) {
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	undo = append(undo, func() { s.closePlugins(ctx) })
	undo = append(undo, func() { s.backends.Close(ctx) })
	if err := s.backends.Start(ctx, s.engine); err != nil {
		return fmt.Errorf("start backends: %w", err)
	}
	if err := s.engine.Start(ctx); err != nil {
		return fmt.Errorf("start engine: %w", err)
	}
	undo = append(undo, func() { s.engine.Close(ctx) })
	stopCluster, err := s.startCluster(ctx)
	if err != nil {
		return fmt.Errorf("start cluster node: %w", err)
	}
	undo = append(undo, stopCluster)
	var tlsConfig *tls.Config
	if s.cfg.TLSOn() {
		src, err := newCertSource(ctx, s.cfg.TLS, s.certCheck, s.acmeTuning, s.log)
		if err != nil {
			return err
		}
		undo = append(undo, func() { src.Close() })
		s.certs = src
		tlsConfig = s.publicTLS(src)
		if f, ok := src.(*fileCerts); ok {
			s.certExpiry.Store(f.cert.Load().Leaf.NotAfter.Unix()) // before the first handshake
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	undo = append(undo, func() { ln.Close() })
	// The per-address limit counts raw TCP connections, before any TLS
	// handshake.
	limited := connlimit.New(ln, s.cfg.Limits.MaxConnectionsPerAddress, s.log)
	s.connLimit.Store(limited)
	ln = limited
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	var plainLn net.Listener
	if addr := s.cfg.TLS.HTTPListen; tlsConfig != nil && addr != "" {
		if plainLn, err = lc.Listen(ctx, "tcp", addr); err != nil {
			return fmt.Errorf("listen on %s (tls.httpListen): %w", addr, err)
		}
		undo = append(undo, func() { plainLn.Close() })
		s.plain = &http.Server{
			Handler:           s.plainHandler(s.certs),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			IdleTimeout:       time.Minute,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
	}
	if s.api != nil && s.cfg.API.TLS.Public {
		s.api.TLSConfig.GetCertificate = s.certs.GetCertificate // validation made sure TLS is on
	}
	var apiLn net.Listener
	if s.api != nil {
		if apiLn, err = lc.Listen(ctx, "tcp", s.cfg.API.Listen); err != nil {
			return fmt.Errorf("listen on %s (api.listen): %w", s.cfg.API.Listen, err)
		}
		undo = append(undo, func() { apiLn.Close() })
	}
	if addr := s.cfg.Debug.Listen; addr != "" {
		if err := s.serveDebug(ctx, addr); err != nil {
			return err
		}
	}
	if a, ok := s.certs.(acmeCerts); ok {
		// The listeners are bound: challenges can be answered. Start's
		// context only bounds starting; management runs until Shutdown.
		if err := a.Start(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("tls.mode auto: %w", err)
		}
	}
	s.mu.Lock()
	s.listener = ln
	s.plainListener = plainLn
	s.apiListener = apiLn
	s.serveErr = make(chan error, 3)
	s.mu.Unlock()
	serve := func(srv *http.Server, ln net.Listener, tlsOn bool) {
		var err error
		if tlsOn {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}
	go serve(s.http, ln, false) // a TLS listener's connections are served over TLS, HTTP/2 included
	s.log.Info("cometgate listening", "addr", ln.Addr().String(), "bayeux", s.cfg.Path, "demo", *s.cfg.Demo.Enabled, "tls", s.cfg.TLS.Mode)
	if plainLn != nil {
		go serve(s.plain, plainLn, false)
		s.log.Info("plain HTTP listening", "addr", plainLn.Addr().String(), "redirect", *s.cfg.TLS.Redirect)
	}
	if apiLn != nil {
		tlsOn := s.api.TLSConfig != nil // read before Serve configures HTTP/2 on it
		go serve(s.api, apiLn, tlsOn)
		s.log.Info("control API listening", "addr", apiLn.Addr().String(), "tls", tlsOn, "auth", len(s.cfg.API.Tokens) > 0 || s.cfg.API.TLS.ClientCAFile != "")
	} else if s.cfg.APIEnabled() {
		s.log.Info("control API on the public listener", "path", "/v1/")
	}
	s.started.Store(true)
	s.logStartup()
	return nil
}

// serveDebug serves pprof on addr until Shutdown.
func (s *Server) serveDebug(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (debug.listen): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.debug = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.debug.Serve(ln)
	s.log.Info("pprof listening", "addr", ln.Addr().String())
	return nil
}

// APIAddr returns the control API's own listener address, once started, or
// nil when it has none.
func (s *Server) APIAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apiListener == nil {
		return nil
	}
	return s.apiListener.Addr()
}

// Addr returns the address the server listens on, once started.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// Run starts the server and serves until ctx is cancelled or serving
// fails, then shuts down within the configured shutdown timeout.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-s.serveErr:
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout.D())
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		return errors.Join(serveErr, err)
	}
	return serveErr
}

// Shutdown stops the node in order: the engine answers every held connect
// with advice to re-handshake, websocket connections are closed with 1001,
// then the HTTP server stops accepting and waits for the requests in
// flight, all within ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	start := time.Now()
	s.log.Info("cometgate shutting down", "sessions", s.engine.SessionCount())
	errEngine := s.engine.Close(ctx)
	s.shutdownStep("engine closed, held connects answered", errEngine)
	s.transport.Shutdown()
	s.shutdownStep("websocket connections closed", nil)
	errHTTP := s.http.Shutdown(ctx)
	if errHTTP != nil {
		s.http.Close()
	}
	if s.debug != nil {
		s.debug.Close()
	}
	if s.plain != nil {
		if err := s.plain.Shutdown(ctx); err != nil {
			s.plain.Close()
			errHTTP = errors.Join(errHTTP, err)
		}
	}
	if s.api != nil {
		if err := s.api.Shutdown(ctx); err != nil {
			s.api.Close()
			errHTTP = errors.Join(errHTTP, err)
		}
	}
	if s.certs != nil {
		errHTTP = errors.Join(errHTTP, s.certs.Close())
	}
	s.shutdownStep("listeners stopped", errHTTP)
	var errCluster error
	if s.node != nil {
		// After the listeners: relayed polls of this node's sessions are
		// answered over NATS until then.
		errCluster = s.node.Close(ctx)
		s.stopEmbedded()
		s.shutdownStep("left the cluster", errCluster)
	}
	errBackends := s.backends.Close(ctx)
	s.shutdownStep("backends closed", errBackends)
	errPlugins := s.closePlugins(ctx)
	s.shutdownStep("plugins cleaned up", errPlugins)
	s.log.Info("cometgate stopped", "took", time.Since(start))
	return errors.Join(errEngine, errHTTP, errCluster, errBackends, errPlugins)
}

// Backends returns the backend router, for tests and embedding programs.
func (s *Server) Backends() *backend.Router { return s.backends }

// Check builds everything cfg describes without starting or connecting
// anything, to report route, backend and plugin errors (as gateway
// -check-config does): plugin modules are provisioned (their files read,
// WebAssembly compiled) and cleaned up. Pass WithConfigFile so that
// relative file names in plugin options resolve as when running. The
// certificate files of tls.mode files are loaded too. Methods bound through server reflection are checked at start.
func Check(cfg *config.Config, opts ...Option) error {
	s, err := New(cfg, append([]Option{WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		return err
	}
	var errTLS error
	if cfg.TLS.Mode == "files" {
		if _, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
			errTLS = fmt.Errorf("tls.certFile %s, tls.keyFile %s: %w", cfg.TLS.CertFile, cfg.TLS.KeyFile, err)
		}
	}
	return errors.Join(errTLS, s.backends.Close(context.Background()), s.closePlugins(context.Background()))
}

// engineLimits translates the engine's settings that Reload changes.
func engineLimits(cfg *config.Config) engine.Limits {
	return engine.Limits{
		MaxQueue:             cfg.Bayeux.MaxQueue,
		MaxQueueBytes:        cfg.Bayeux.MaxQueueBytes,
		MaxSubscriptions:     cfg.Limits.MaxSubscriptionsPerSession,
		MaxSubscribeChannels: cfg.Limits.MaxChannelsPerSubscribe,
	}
}

// transportLive translates the transport's settings that Reload changes.
func transportLive(cfg *config.Config) transport.Live {
	return transport.Live{
		MaxRequestBytes:    cfg.Limits.MaxRequestBytes,
		MaxBatch:           cfg.Limits.MaxBatch,
		TrustClientSession: cfg.Bayeux.TrustClientSession,
		Cookie: transport.CookieConfig{
			Name: cfg.Cookie.Name, Path: cfg.Cookie.Path, Domain: cfg.Cookie.Domain, MaxAge: cfg.Cookie.MaxAge,
			Secure: cfg.Cookie.Secure, HTTPOnly: *cfg.Cookie.HTTPOnly, SameSite: cfg.Cookie.SameSite,
		},
		MultiSessionInterval: cfg.Bayeux.MultiSessionInterval.D(),
		AllowedOrigins:       cfg.CORS.AllowedOrigins,
		CORSMaxAge:           cfg.CORS.MaxAge.D(),
	}
}

// keptHeaders lists the request headers some backend forwards, which
// websocket sessions must therefore keep.
func keptHeaders(cfg *config.Config) []string {
	var names []string
	for _, b := range cfg.Backends {
		names = append(names, b.Headers...)
		if len(b.Cookies) > 0 {
			names = append(names, "Cookie")
		}
	}
	return names
}

// backendConfig translates the configuration of backends and routes.
func backendConfig(cfg *config.Config, log *slog.Logger) backend.Config {
	bc := backend.Config{
		Backends:    make(map[string]backend.Spec, len(cfg.Backends)),
		AuthBackend: cfg.Auth.Backend,
		AuthTimeout: cfg.Auth.Timeout.D(),
		Logger:      log,
	}
	for name, b := range cfg.Backends {
		bc.Backends[name] = backend.Spec{
			Target: b.Target, URL: b.URL,
			TLSMode: b.TLS.Mode, CAFile: b.TLS.CAFile, CertFile: b.TLS.CertFile, KeyFile: b.TLS.KeyFile, ServerName: b.TLS.ServerName,
			Timeout:       b.Timeout.D(),
			RetryAttempts: b.Retry.MaxAttempts, RetryBackoff: b.Retry.InitialBackoff.D(), RetryMaxBackoff: b.Retry.MaxBackoff.D(),
			ReconnectBaseDelay: b.Reconnect.BaseDelay.D(), ReconnectMaxDelay: b.Reconnect.MaxDelay.D(), ConnectTimeout: b.Reconnect.ConnectTimeout.D(),
			MaxMessageBytes: b.MaxMessageBytes,
			Metadata:        b.Metadata, Headers: b.Headers, Cookies: b.Cookies,
			Descriptors: b.Descriptors, Required: b.Required,
		}
	}
	for _, r := range cfg.Routes {
		var req []byte
		if r.Request != nil {
			req, _ = json.Marshal(r.Request) // YAML mappings decode to JSON-safe values
		}
		bc.Routes = append(bc.Routes, backend.RouteSpec{
			Channel: r.Channel, Backend: r.Backend, Type: r.Type, Method: r.Method,
			Idempotent: r.Idempotent, Timeout: r.Timeout.D(), Request: req, ChannelTemplate: r.ChannelTemplate,
		})
	}
	return bc
}
