// Package acme obtains and renews the gateway's TLS certificates from an
// ACME CA (Let's Encrypt, or any RFC 8555 server) with
// github.com/caddyserver/certmagic, and serves them in TLS handshakes.
//
// # Use
//
//	m, err := acme.New(ctx, acme.Config{
//		CA:      certmagic.LetsEncryptStagingCA, // then the production directory
//		Email:   "ops@example.com",
//		Agreed:  true,
//		Domains: []string{"push.example.com"},
//		Storage: "/var/lib/cometgate/acme",
//	})
//	if err != nil { ... } // bad config or unwritable storage
//	defer m.Close()
//	if err := m.Start(ctx); err != nil { ... }
//
//	httpSrv := &http.Server{Addr: ":80", Handler: m.HTTPChallenge(redirectToHTTPS)}
//	tlsConf := &tls.Config{
//		GetCertificate: m.GetCertificate,
//		NextProtos:     append([]string{"h2", "http/1.1"}, m.NextProtos()...),
//		MinVersion:     tls.VersionTLS12,
//	}
//
// Start returns at once; certificates found in storage are served
// immediately, missing ones are obtained in the background, and renewal
// runs from certmagic's maintenance loop (every RenewCheckInterval). A
// first certificate that cannot be obtained is retried after 1, 2, 5, 10,
// 30 minutes, then hourly; a failed renewal follows certmagic's backoff
// (1 min, 2 min, ... up to 6 h between attempts). A node whose certificate is still valid keeps serving it
// while renewal fails. Failures are counted (Stats) and described by
// Problems, one line each, for /readyz: an unreachable CA, a failed
// issuance with the CA's reason, a managed name with no certificate yet,
// unwritable storage. New and Start return an error wrapping ErrStorage
// when the storage directory cannot be written.
//
// HTTP-01 is answered by the handler HTTPChallenge wraps (port 80, or
// AltHTTPPort where the CA is told to reach another port, as in tests);
// TLS-ALPN-01 by GetCertificate on the TLS listener, which must offer
// NextProtos (acme-tls/1). If nothing listens on the challenge port,
// certmagic opens a listener of its own there for the duration of the
// challenge.
//
// # On-demand issuance
//
// With OnDemand, a handshake for a name with no certificate obtains one
// during the handshake, but only if the name is in the allowlist (Config.Allow,
// then AllowName/DisallowName): exact names and "*.example.com" patterns
// matching one label. The decision is a lookup in memory, never a network
// call; a refused name gets no certificate and no ACME order, and is counted
// (the onDemandRefused of Stats). Unrestricted on-demand issuance is a
// denial-of-service vector, so there is no "allow all". Names in Domains are
// always allowed.
//
// # Storage and clusters
//
// Storage is certmagic's file storage in the directory Config.Storage: the
// ACME account, keys, certificates, and lock files. Nodes that share that
// directory (a shared volume) form one certmagic cluster: they coordinate
// issuance and renewal through certmagic's file locks, so one node orders a
// certificate and the others load it from storage, and a challenge
// presented by one node can be answered by another (the distributed
// solver keeps the challenge in storage). Network file systems with weak
// locking semantics are known to be unreliable for this. A NATS key-value
// storage (certmagic's Storage interface) may replace it when clustering
// comes.
//
// # certmagic global state
//
// Each Manager has its own certmagic Cache, Configs (certmagic.New, never
// certmagic.Default or its default cache), ACME issuers, storage and logger
// (certmagic's zap logs are forwarded to Config.Logger). What remains
// process-wide in certmagic, and is shared by every Manager of a process:
//   - certmagic.New fills zero fields from the package variable
//     certmagic.Default: this package sets every field it relies on, except
//     OnDemand of the eager config, MustStaple, KeySource, LocalCache and the
//     default/fallback server names. Nothing in Cometgate may change
//     certmagic.Default.
//   - package variables read at issuance: HTTPPort and HTTPSPort (used when
//     AltHTTPPort/AltTLSALPNPort are zero), HTTPTimeout, UserAgent,
//     RateLimitEvents/RateLimitEventsWindow (10 orders per 10 s, per CA and
//     email), and the default key type (ECDSA P-256).
//   - process-wide maps keyed by name or address: the order rate limiters,
//     the challenge listeners certmagic opens itself, the active challenges
//     (by identifier), the in-flight on-demand obtains, the storage lock
//     registry, the async job queue and the renewal backoff schedule. Two
//     Managers managing the same name in one process therefore share
//     challenge and backoff state; different names do not interact.
//
// Close stops the Manager's management jobs and its cache's maintenance
// goroutine and waits for the latter. The ACME client's idle keep-alive
// connections to the CA (certmagic sets no idle timeout and offers no way to
// close them) stay until the CA closes them.
package acme
