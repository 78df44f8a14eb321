package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"
)

// jwks is a cached JSON Web Key Set. Its methods are safe for concurrent
// use.
type jwks struct {
	url        string
	client     *http.Client
	maxBytes   int64
	minRefresh time.Duration
	now        func() time.Time
	log        *slog.Logger
	life       context.Context // ends at Cleanup; fetches run under it

	fetching chan struct{} // a 1-slot semaphore: one fetch at a time

	mu          sync.RWMutex // guards the fields below
	keys        *keyTable    // the last good set; nil before the first
	gen         uint64       // fetches attempted so far
	lastAttempt time.Time
	lastErr     error // of the last attempt; nil if it succeeded
}

// keyTable is one fetched key set.
type keyTable struct {
	byKID map[string]jwkKey
	byAlg map[string][]any
}

type jwkKey struct {
	alg string
	key any
}

func newJWKS(u string, timeout time.Duration, maxBytes int64, minRefresh time.Duration, now func() time.Time, log *slog.Logger) *jwks {
	secure := strings.HasPrefix(u, "https:")
	return &jwks{
		url: u,
		client: &http.Client{
			Timeout: timeout,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("too many redirects")
				}
				if secure && req.URL.Scheme != "https" {
					return errors.New("redirect from https to " + req.URL.Scheme)
				}
				return nil
			},
		},
		maxBytes:   maxBytes,
		minRefresh: minRefresh,
		now:        now,
		log:        log,
		life:       context.Background(),
		fetching:   make(chan struct{}, 1),
	}
}

// lookup returns the keys for alg: the one named kid, or all of them when
// kid is "". A kid not in the set, or a set never fetched, fetches again
// (at most once per minRefresh). It returns errKeyMismatch for a kid of
// another type, and errKeysUnavailable when nothing matches and the last
// fetch failed.
func (j *jwks) lookup(ctx context.Context, alg, kid string) ([]any, error) {
	keys, gen, err := j.find(alg, kid)
	if len(keys) > 0 || errors.Is(err, errKeyMismatch) {
		return keys, err
	}
	if err := j.refresh(ctx, gen, false); err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, err)
	}
	keys, _, err = j.find(alg, kid)
	return keys, err
}

// find looks alg and kid up in the cached set. With no match, the error
// is errKeysUnavailable if the last fetch failed.
func (j *jwks) find(alg, kid string) ([]any, uint64, error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if t := j.keys; t != nil {
		if kid == "" {
			if ks := t.byAlg[alg]; len(ks) > 0 {
				return ks, j.gen, nil
			}
		} else if k, ok := t.byKID[kid]; ok {
			if k.alg != alg {
				return nil, j.gen, errKeyMismatch
			}
			return []any{k.key}, j.gen, nil
		}
	}
	if j.lastErr != nil {
		return nil, j.gen, fmt.Errorf("%w: %w", errKeysUnavailable, j.lastErr)
	}
	return nil, j.gen, nil
}

// refresh fetches the key set. Unless force, it does nothing when a fetch
// was attempted since the caller's look-up (generation seen) or less than
// minRefresh ago. A failure keeps the last good keys.
func (j *jwks) refresh(ctx context.Context, seen uint64, force bool) error {
	select {
	case j.fetching <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-j.fetching }()
	j.mu.RLock()
	gen, last := j.gen, j.lastAttempt
	j.mu.RUnlock()
	if !force && (gen != seen || !last.IsZero() && j.now().Sub(last) < j.minRefresh) {
		return nil
	}
	t, err := j.fetch()
	j.mu.Lock()
	j.gen++
	j.lastAttempt = j.now()
	j.lastErr = err
	if err == nil {
		j.keys = t
	}
	j.mu.Unlock()
	if err != nil {
		j.log.Warn("JWKS fetch failed; keeping the last keys", "url", j.url, "err", err)
	}
	return err
}

// refreshLoop fetches the key set every period until ctx ends.
func (j *jwks) refreshLoop(ctx context.Context, period time.Duration) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			j.refresh(ctx, 0, true)
		}
	}
}

// fetch gets and parses the key set, under j.life.
func (j *jwks) fetch() (*keyTable, error) {
	req, err := http.NewRequestWithContext(j.life, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("JWKS %s: HTTP status %d", j.url, resp.StatusCode)
	}
	if resp.ContentLength > j.maxBytes {
		return nil, fmt.Errorf("JWKS %s: %d bytes, more than jwksMaxBytes (%d)", j.url, resp.ContentLength, j.maxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, j.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", j.url, err)
	}
	if int64(len(body)) > j.maxBytes {
		return nil, fmt.Errorf("JWKS %s: more than jwksMaxBytes (%d)", j.url, j.maxBytes)
	}
	t, skipped, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", j.url, err)
	}
	if skipped > 0 {
		j.log.Debug("JWKS keys skipped", "url", j.url, "skipped", skipped)
	}
	return t, nil
}

// jwk is one JSON Web Key (RFC 7517), the members this module reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS parses a key set, keeping the RS256 and ES256 signature keys.
// It fails when none is usable.
func parseJWKS(body []byte) (*keyTable, int, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, 0, fmt.Errorf("not a JWK set: %w", err)
	}
	t := &keyTable{byKID: make(map[string]jwkKey), byAlg: make(map[string][]any)}
	skipped := 0
	for _, k := range doc.Keys {
		alg, key, err := k.parse()
		if err != nil {
			skipped++
			continue
		}
		if k.Kid != "" {
			if _, dup := t.byKID[k.Kid]; dup {
				skipped++
				continue
			}
			t.byKID[k.Kid] = jwkKey{alg: alg, key: key}
		}
		t.byAlg[alg] = append(t.byAlg[alg], key)
	}
	if len(t.byAlg) == 0 {
		return nil, skipped, fmt.Errorf("no usable RS256 or ES256 key (%d skipped)", skipped)
	}
	return t, skipped, nil
}

// parse returns the key's algorithm and public key.
func (k *jwk) parse() (string, any, error) {
	if k.Use != "" && k.Use != "sig" {
		return "", nil, fmt.Errorf("use %q", k.Use)
	}
	switch k.Kty {
	case "RSA":
		if k.Alg != "" && k.Alg != RS256 {
			return "", nil, fmt.Errorf("alg %q", k.Alg)
		}
		n, err := b64(k.N)
		if err != nil {
			return "", nil, err
		}
		e, err := b64(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return "", nil, errors.New("bad e")
		}
		exp := new(big.Int).SetBytes(e)
		if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 || exp.Bit(0) == 0 {
			return "", nil, errors.New("bad e")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}
		if _, err := publicKeyAlg(pub); err != nil {
			return "", nil, err
		}
		return RS256, pub, nil
	case "EC":
		if k.Alg != "" && k.Alg != ES256 {
			return "", nil, fmt.Errorf("alg %q", k.Alg)
		}
		if k.Crv != "P-256" {
			return "", nil, fmt.Errorf("crv %q", k.Crv)
		}
		x, err1 := b64(k.X)
		y, err2 := b64(k.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return "", nil, errors.New("bad x or y")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return "", nil, err
		}
		return ES256, pub, nil
	}
	return "", nil, fmt.Errorf("kty %q", k.Kty)
}

// b64 decodes base64url, with or without padding.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
