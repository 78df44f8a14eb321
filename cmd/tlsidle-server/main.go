// Command tlsidle-server is a bench-only gateway for measuring websocket
// sessions over TLS before the public listener serves TLS itself: it
// builds the gateway as cmd/gateway does (default configuration, demo
// off) and serves its handler on a loopback listener of its own, over TLS
// with a certificate it makes (ECDSA P-256, signed by a CA it writes to
// -ca-out), or in plain TCP with -tls=false, so that both are measured
// through the same code.
//
//	tlsidle-server -listen 127.0.0.1:18443 -ca-out /tmp/ca.pem
//	cometload -url https://127.0.0.1:18443/cometd -ca /tmp/ca.pem -scenario idle ...
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tlsidle-server:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:18443", "loopback address to serve on")
	tlsOn := flag.Bool("tls", true, "serve over TLS (false: plain TCP, for comparison)")
	caOut := flag.String("ca-out", "", "write the CA certificate (PEM) here, for cometload -ca")
	poller := flag.Bool("poller", true, "transports.websocket.poller")
	debug := flag.String("debug", "", "debug.listen: a loopback address serving /debug/pprof/")
	flag.Parse()
	if host, _, err := net.SplitHostPort(*listen); err != nil || !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("-listen %q: want a loopback address", *listen)
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0" // the gateway's own listener, unused here
	cfg.Demo.Enabled = new(false)
	cfg.Transports.WebSocket.Poller = new(*poller)
	cfg.API.Listen = "off"
	cfg.Debug.Listen = *debug
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	gw, err := gateway.New(cfg, gateway.WithLogger(log))
	if err != nil {
		return err
	}
	if err := gw.Start(ctx); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           gw.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	scheme := "http"
	if *tlsOn {
		tc, caPEM, err := selfCA()
		if err != nil {
			return err
		}
		if *caOut != "" {
			if err := os.WriteFile(*caOut, caPEM, 0o644); err != nil {
				return err
			}
		}
		tc.NextProtos = []string{"http/1.1"} // websocket upgrades
		tc.MinVersion = tls.VersionTLS12
		ln = tls.NewListener(ln, tc)
		scheme = "https"
	}
	fmt.Printf("serving %s://%s%s (pid %d)\n", scheme, ln.Addr(), cfg.Path, os.Getpid())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		gw.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// selfCA makes a CA and a certificate for 127.0.0.1 it signs, both ECDSA
// P-256, valid for a day; it returns the server's TLS configuration and
// the CA certificate in PEM.
func selfCA() (*tls.Config, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tlsidle-server CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	tc := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der, caDER}, PrivateKey: key}}}
	return tc, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}
