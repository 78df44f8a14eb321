package backend

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cometgate/cometgate/gateway/engine"
	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// backendConn is a named backend: a gRPC client connection, or an HTTP
// client for legacy services.
type backendConn struct {
	name     string
	spec     Spec
	grpc     *grpc.ClientConn
	contract backendv1.BackendClient
	http     *http.Client
	headers  []string // lower-cased header names to forward

	lastWarn atomic.Int64 // when a failure was last logged as a warning, Unix ns
	faults   atomic.Int64 // server faults logged at debug since then
	down     atomic.Bool  // the last request found the backend unreachable

	calls     atomic.Int64 // remote calls finished (see Router.Backends)
	failures  atomic.Int64 // of which failed
	callNanos atomic.Int64 // their total duration

	users     atomic.Int64 // calls and publish hooks in flight on it
	retired   atomic.Bool  // replaced by a reload: closed once users is 0
	closeOnce sync.Once
}

// acquire counts a call or hook about to use b. It fails when a reload
// has retired b meanwhile: the caller must then use the routing now in
// force. A successful acquire must be followed by release.
func (b *backendConn) acquire() bool {
	b.users.Add(1)
	if b.retired.Load() {
		b.release()
		return false
	}
	return true
}

// release ends a use counted by acquire, closing a retired b after its
// last one.
func (b *backendConn) release() {
	if b.users.Add(-1) == 0 && b.retired.Load() {
		b.close()
	}
}

// retire marks b as replaced: it is closed as soon as no call or hook
// uses it (at once if none does). Streams on it are cancelled by the
// caller.
func (b *backendConn) retire() {
	b.retired.Store(true)
	if b.users.Load() == 0 {
		b.close()
	}
}

// dial creates the client of a backend; a gRPC one connects lazily, and
// reconnects with the spec's bounded backoff.
func dial(name string, spec Spec) (*backendConn, error) {
	spec.setDefaults()
	b := &backendConn{name: name, spec: spec}
	for _, h := range spec.Headers {
		b.headers = append(b.headers, strings.ToLower(h))
	}
	if spec.URL != "" {
		b.http = &http.Client{Timeout: spec.Timeout}
		return b, nil
	}
	creds, err := transportCredentials(spec)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", name, err)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(spec.MaxMessageBytes), grpc.MaxCallSendMsgSize(spec.MaxMessageBytes)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  spec.ReconnectBaseDelay,
				Multiplier: backoff.DefaultConfig.Multiplier,
				Jitter:     backoff.DefaultConfig.Jitter,
				MaxDelay:   spec.ReconnectMaxDelay,
			},
			MinConnectTimeout: spec.ConnectTimeout,
		}),
	}
	if spec.Required {
		// Stay connected while idle, so that readiness reports the
		// backend's reachability rather than a lack of calls.
		opts = append(opts, grpc.WithIdleTimeout(0))
	}
	conn, err := grpc.NewClient(spec.Target, opts...)
	if err != nil {
		return nil, fmt.Errorf("backend %q: dial %s: %w", name, spec.Target, err)
	}
	b.grpc = conn
	b.contract = backendv1.NewBackendClient(conn)
	return b, nil
}

func transportCredentials(spec Spec) (credentials.TransportCredentials, error) {
	switch spec.TLSMode {
	case "", "plaintext":
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{ServerName: spec.ServerName, MinVersion: tls.VersionTLS12}
	if spec.CAFile != "" {
		pem, err := os.ReadFile(spec.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("CA file holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	if spec.TLSMode == "mtls" {
		cert, err := tls.LoadX509KeyPair(spec.CertFile, spec.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(cfg), nil
}

// close closes b's connection; later calls do nothing.
func (b *backendConn) close() {
	b.closeOnce.Do(func() {
		if b.grpc != nil {
			b.grpc.Close()
		}
		if b.http != nil {
			b.http.CloseIdleConnections()
		}
	})
}

// reachable reports whether b can take calls now: an HTTP backend always
// (it is not watched), a gRPC one when its connection is ready. A gRPC
// connection that went idle (as one does when its server went away) is
// told to connect again, so that asking again soon gets the answer.
func (b *backendConn) reachable() bool {
	if b.grpc == nil {
		return true
	}
	switch b.grpc.GetState() {
	case connectivity.Ready:
		return true
	case connectivity.Idle:
		b.grpc.Connect()
	}
	return false
}

// Metadata keys the gateway adds to every call, so that services that know
// nothing of Bayeux can still tell who calls.
const (
	MDChannel  = "cometgate-channel"
	MDClientID = "cometgate-client-id"
	MDUserID   = "cometgate-user-id"
)

// metadata returns the outgoing metadata of a call on behalf of session s
// on channel: static metadata, forwarded headers and cookies, and the
// caller's identity.
func (b *backendConn) metadata(s *engine.Session, channel string, c *engine.Client) metadata.MD {
	md := metadata.MD{}
	for k, v := range b.spec.Metadata {
		md.Set(k, v)
	}
	if c != nil {
		for _, h := range b.headers {
			if vals := c.Header[http.CanonicalHeaderKey(h)]; len(vals) > 0 {
				md.Set(h, vals...)
			}
		}
		if len(b.spec.Cookies) > 0 {
			r := http.Request{Header: http.Header(c.Header)}
			var kept []string
			for _, name := range b.spec.Cookies {
				if ck, err := r.Cookie(name); err == nil {
					kept = append(kept, ck.Name+"="+ck.Value)
				}
			}
			if len(kept) > 0 {
				md.Set("cookie", strings.Join(kept, "; "))
			}
		}
	}
	md.Set(MDChannel, channel)
	if s != nil {
		md.Set(MDClientID, s.ID())
		if u := s.User(); u != "" {
			md.Set(MDUserID, u)
		}
	}
	return md
}
