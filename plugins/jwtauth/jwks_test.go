package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cometgate/cometgate/internal/poll"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cometgate/cometgate/plugins"
	"github.com/golang-jwt/jwt/v5"
)

// clock is a settable clock for the rate limit of JWKS fetches.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// keyServer serves a JWKS that tests replace, counting the requests.
type keyServer struct {
	*httptest.Server
	doc      atomic.Value // []byte
	status   atomic.Int32 // answered instead of the document when not 0
	requests atomic.Int64
}

func newKeyServer(t testing.TB, keys ...map[string]any) *keyServer {
	t.Helper()
	s := &keyServer{}
	s.set(keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if st := s.status.Load(); st != 0 {
			http.Error(w, "down", int(st))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.doc.Load().([]byte))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *keyServer) set(keys ...map[string]any) {
	doc, _ := json.Marshal(map[string]any{"keys": keys})
	s.doc.Store(doc)
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// rsaJWK and ecJWK are public keys as JWKs.
func rsaJWK(kid string, k *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]any {
	b, err := k.Bytes()
	if err != nil {
		panic(err)
	}
	return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64u(b[1:33]), "y": b64u(b[33:])}
}

func auth(a *Authenticator, tok string) error {
	_, err := a.Authenticate(context.Background(), handshake(tok))
	return err
}

// A rotated key set is picked up on the first token naming the new kid
// (once jwksMinRefresh has passed since the last fetch); a flood of
// unknown kids fetches at most once per jwksMinRefresh; a removed kid is
// refused.
func TestJWKSRotation(t *testing.T) {
	clk := &clock{t: time.Now()}
	srv := newKeyServer(t, rsaJWK("k1", &rsaKey().PublicKey))
	a := mustProvision(t, "", "jwksURL: "+srv.URL+"\naudience: chat\n", clk.Now)
	if got := srv.requests.Load(); got != 1 {
		t.Fatalf("fetches after Provision = %d; want 1", got)
	}
	tok1 := sign(t, jwt.SigningMethodRS256, rsaKey(), "k1", claims(clk.Now(), nil))
	if err := auth(a, tok1); err != nil {
		t.Fatalf("token of k1: %v", err)
	}

	srv.set(ecJWK("k2", &ecKey().PublicKey)) // rotate
	tok2 := sign(t, jwt.SigningMethodES256, ecKey(), "k2", claims(clk.Now(), nil))
	if err := auth(a, tok2); reason(err) != ReasonUnknownKey {
		t.Fatalf("token of k2 within jwksMinRefresh of the last fetch: err = %v; want %s", err, ReasonUnknownKey)
	}
	if got := srv.requests.Load(); got != 1 {
		t.Fatalf("fetches = %d; want still 1 (rate limited)", got)
	}
	clk.Advance(DefaultJWKSMinRefresh)
	if err := auth(a, tok2); err != nil {
		t.Fatalf("token of k2 after rotation: %v", err)
	}
	if got := srv.requests.Load(); got != 2 {
		t.Fatalf("fetches = %d; want 2", got)
	}
	if err := auth(a, tok1); reason(err) != ReasonUnknownKey {
		t.Fatalf("token of removed k1: err = %v; want %s", err, ReasonUnknownKey)
	}

	// A flood of unknown kids, now and after jwksMinRefresh: one fetch
	// per window, however many tokens and however concurrent.
	for round, want := range []int64{2, 3} {
		if round > 0 {
			clk.Advance(DefaultJWKSMinRefresh)
		}
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				tok := sign(t, jwt.SigningMethodES256, ecKey2(), fmt.Sprintf("bad%d", i), claims(clk.Now(), nil))
				if err := auth(a, tok); reason(err) != ReasonUnknownKey {
					t.Errorf("unknown kid: err = %v; want %s", err, ReasonUnknownKey)
				}
			})
		}
		wg.Wait()
		if got := srv.requests.Load(); got != want {
			t.Fatalf("round %d: fetches = %d; want %d", round, got, want)
		}
	}
	if err := auth(a, tok2); err != nil {
		t.Fatalf("token of k2 after the flood: %v", err)
	}
}

// When the endpoint fails, the cached keys keep verifying; a kid that is
// not cached cannot be decided: a plain error (retry), not a rejection.
func TestJWKSDownKeepsCachedKeys(t *testing.T) {
	clk := &clock{t: time.Now()}
	srv := newKeyServer(t, rsaJWK("k1", &rsaKey().PublicKey), ecJWK("e1", &ecKey().PublicKey))
	a := mustProvision(t, "", "jwksURL: "+srv.URL+"\n", clk.Now)
	srv.status.Store(http.StatusBadGateway)
	clk.Advance(DefaultJWKSMinRefresh)

	unknown := sign(t, jwt.SigningMethodRS256, rsaKey2(), "k9", claims(clk.Now(), nil))
	err := auth(a, unknown)
	if _, rejected := plugins.AsRejection(err); err == nil || rejected || errors.Is(err, plugins.ErrNoCredentials) {
		t.Fatalf("unknown kid with the endpoint down: err = %v; want a plain error", err)
	}
	if got := srv.requests.Load(); got != 2 {
		t.Fatalf("fetches = %d; want 2", got)
	}
	for _, tok := range []string{
		sign(t, jwt.SigningMethodRS256, rsaKey(), "k1", claims(clk.Now(), nil)),
		sign(t, jwt.SigningMethodES256, ecKey(), "e1", claims(clk.Now(), nil)),
		sign(t, jwt.SigningMethodES256, ecKey(), "", claims(clk.Now(), nil)), // no kid: every ES256 key
	} {
		if err := auth(a, tok); err != nil {
			t.Errorf("cached key with the endpoint down: %v", err)
		}
	}
	// A kid naming a key of another type is refused without a fetch.
	if err := auth(a, sign(t, jwt.SigningMethodES256, ecKey(), "k1", claims(clk.Now(), nil))); reason(err) != ReasonInvalid {
		t.Errorf("ES256 token naming the RSA kid: err = %v; want %s", err, ReasonInvalid)
	}
	srv.Close() // unreachable
	clk.Advance(DefaultJWKSMinRefresh)
	if err := auth(a, unknown); err == nil || reason(err) != "error: "+err.Error() {
		t.Fatalf("unknown kid with the endpoint unreachable: err = %v; want a plain error", err)
	}
}

// The first fetch fails Provision unless jwksRequired is false; then the
// module fetches when a token needs keys, and tells the caller to retry
// until it gets them.
func TestJWKSRequired(t *testing.T) {
	clk := &clock{t: time.Now()}
	srv := newKeyServer(t, rsaJWK("k1", &rsaKey().PublicKey))
	srv.status.Store(http.StatusInternalServerError)
	if _, err := provision(t, "", "jwksURL: "+srv.URL+"\n", clk.Now); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("Provision with the endpoint failing: err = %v; want one naming the status", err)
	}
	a := mustProvision(t, "", "jwksURL: "+srv.URL+"\njwksRequired: false\n", clk.Now)
	tok := sign(t, jwt.SigningMethodRS256, rsaKey(), "k1", claims(clk.Now(), nil))
	err := auth(a, tok)
	if _, rejected := plugins.AsRejection(err); err == nil || rejected {
		t.Fatalf("no keys yet: err = %v; want a plain error", err)
	}
	srv.status.Store(0)
	if err := auth(a, tok); err == nil {
		t.Fatal("no keys yet, within jwksMinRefresh: accepted; want a plain error")
	}
	clk.Advance(DefaultJWKSMinRefresh)
	if err := auth(a, tok); err != nil {
		t.Fatalf("endpoint back: %v", err)
	}
}

// The refresher fetches every jwksRefresh, and Cleanup stops it.
func TestJWKSBackgroundRefresh(t *testing.T) {
	srv := newKeyServer(t, rsaJWK("k1", &rsaKey().PublicKey))
	a := mustProvision(t, "", "jwksURL: "+srv.URL+"\njwksRefresh: 5ms\n", time.Now)
	srv.set(ecJWK("k2", &ecKey().PublicKey))
	tok := sign(t, jwt.SigningMethodES256, ecKey(), "k2", claims(time.Now(), nil))
	poll.Eventually(t, 10*time.Second, func() error {
		if n := srv.requests.Load(); n < 3 {
			return fmt.Errorf("%d fetches", n)
		}
		return auth(a, tok) // within jwksMinRefresh: only the refresher can have fetched k2
	})
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if a.jwks.life.Err() == nil {
		t.Error("Cleanup left the refresher's context alive")
	}
}

func TestJWKSLimits(t *testing.T) {
	srv := newKeyServer(t, rsaJWK("k1", &rsaKey().PublicKey))
	if _, err := provision(t, "", "jwksURL: "+srv.URL+"\njwksMaxBytes: 100\n", time.Now); err == nil || !strings.Contains(err.Error(), "jwksMaxBytes") {
		t.Fatalf("JWKS larger than jwksMaxBytes: err = %v", err)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(slow.Close)
	if _, err := provision(t, "", "jwksURL: "+slow.URL+"\njwksTimeout: 50ms\n", time.Now); err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("JWKS slower than jwksTimeout: err = %v", err)
	}
}

func TestParseJWKS(t *testing.T) {
	rsaPub, ecPub := &rsaKey().PublicKey, &ecKey().PublicKey
	with := func(k map[string]any, kv ...any) map[string]any {
		c := make(map[string]any, len(k))
		for n, v := range k {
			c[n] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	tests := []struct {
		name string
		keys []map[string]any
		want int // usable keys; -1 for an error
	}{
		{"rsa and ec", []map[string]any{rsaJWK("a", rsaPub), ecJWK("b", ecPub)}, 2},
		{"no kid", []map[string]any{with(rsaJWK("", rsaPub))}, 1},
		{"encryption key skipped", []map[string]any{rsaJWK("a", rsaPub), with(ecJWK("b", ecPub), "use", "enc")}, 1},
		{"RS384 skipped", []map[string]any{with(rsaJWK("a", rsaPub), "alg", "RS384"), ecJWK("b", ecPub)}, 1},
		{"P-384 skipped", []map[string]any{with(ecJWK("a", ecPub), "crv", "P-384"), ecJWK("b", ecPub)}, 1},
		{"point off the curve skipped", []map[string]any{with(ecJWK("a", ecPub), "y", b64u(make([]byte, 32))), ecJWK("b", ecPub)}, 1},
		{"even e skipped", []map[string]any{with(rsaJWK("a", rsaPub), "e", b64u([]byte{1, 0, 0})), ecJWK("b", ecPub)}, 1},
		{"short modulus skipped", []map[string]any{with(rsaJWK("a", rsaPub), "n", b64u(rsaPub.N.Bytes()[:64])), ecJWK("b", ecPub)}, 1},
		{"duplicate kid skipped", []map[string]any{rsaJWK("a", rsaPub), ecJWK("a", ecPub)}, 1},
		{"oct skipped", []map[string]any{{"kty": "oct", "k": b64u([]byte(testSecret))}, ecJWK("b", ecPub)}, 1},
		{"nothing usable", []map[string]any{{"kty": "oct", "k": b64u([]byte(testSecret))}}, -1},
		{"empty", nil, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, _ := json.Marshal(map[string]any{"keys": tt.keys})
			kt, _, err := parseJWKS(doc)
			if tt.want < 0 {
				if err == nil {
					t.Fatalf("parseJWKS: no error; want one")
				}
				return
			}
			if err != nil {
				t.Fatalf("parseJWKS: %v", err)
			}
			n := 0
			for _, ks := range kt.byAlg {
				n += len(ks)
			}
			if n != tt.want {
				t.Errorf("usable keys = %d; want %d", n, tt.want)
			}
		})
	}
	if _, _, err := parseJWKS([]byte(`{"keys":`)); err == nil {
		t.Error("parseJWKS of truncated JSON: no error")
	}
}
