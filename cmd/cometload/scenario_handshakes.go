package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// clientTLS returns the TLS configuration of https:// URLs: the system's
// roots, or those of caFile, or no verification; curve limits the key
// exchanges offered (see -tls-curve). It never resumes a
// session, so that every new connection costs the server a full
// handshake, as a new visitor does.
func clientTLS(caFile string, insecure bool, curve string) (*tls.Config, error) {
	c := &tls.Config{InsecureSkipVerify: insecure}
	switch curve {
	case "":
	case "x25519":
		c.CurvePreferences = []tls.CurveID{tls.X25519}
	case "p256":
		c.CurvePreferences = []tls.CurveID{tls.CurveP256}
	default:
		return nil, fmt.Errorf("-tls-curve %q: want x25519 or p256", curve)
	}
	if caFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("-ca: %w", err)
	}
	c.RootCAs = x509.NewCertPool()
	if !c.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-ca %s: no PEM certificate", caFile)
	}
	return c, nil
}

// runHandshakes opens -clients TLS connections to the URL's host,
// -setup-concurrency at a time, each closed as soon as its handshake is
// done, and reports handshakes/s and, with -server-pid, the server's CPU
// time per handshake. Nothing is sent over the connections: the figure
// is the TLS cost of a new session, which the other scenarios add to.
func runHandshakes(ctx context.Context, r *run) error {
	cfg := r.cfg
	u, err := url.Parse(cfg.url)
	if err != nil {
		return err
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	tc := cfg.tls.Clone()
	tc.ServerName = u.Hostname()
	tc.NextProtos = []string{"http/1.1"}

	var next, done, failed atomic.Int64
	var first sync.Once
	rep := &HandshakeReport{}
	one := func() error {
		hctx, cancel := context.WithTimeout(ctx, cfg.setup.timeout)
		defer cancel()
		raw, err := (&net.Dialer{}).DialContext(hctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer raw.Close()
		c := tls.Client(raw, tc)
		if err := c.HandshakeContext(hctx); err != nil {
			return err
		}
		first.Do(func() {
			s := c.ConnectionState()
			rep.Version, rep.Cipher = tls.VersionName(s.Version), tls.CipherSuiteName(s.CipherSuite)
			rep.Curve = s.CurveID.String()
		})
		return nil
	}

	cpu := startCPU()
	server := startServerCPU(cfg.serverPID)
	start := time.Now()
	var wg sync.WaitGroup
	for range min(cfg.setup.concurrency, max(cfg.clients, 1)) {
		wg.Go(func() {
			for next.Add(1) <= int64(cfg.clients) && ctx.Err() == nil {
				if err := one(); err != nil {
					failed.Add(1)
					if !errors.Is(err, context.Canceled) {
						r.stats.errs.add("handshake_failed", err.Error())
					}
					continue
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	rep.Done, rep.Failed = done.Load(), failed.Load()
	rep.PerSec = math.Round(float64(rep.Done) / wall.Seconds())
	r.report.Clients = int(rep.Done)
	r.report.DurationS = seconds(wall)
	r.report.ToolCPUPercent = math.Round(cpu.percent())
	r.report.ServerCPUPercent = server.percent()
	if used, _ := server.used(); used != nil && rep.Done > 0 {
		us := math.Round(float64(used[0]) / float64(time.Microsecond) / float64(rep.Done))
		rep.ServerCPUMicros = &us
	}
	r.report.Handshakes = rep
	return nil
}
