package jwtauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometgate/cometgate/plugins"
	"github.com/golang-jwt/jwt/v5"
	"go.yaml.in/yaml/v3"
)

const testSecret = "0123456789abcdef0123456789abcdef-test-secret"

// Test keys, made once: RSA key generation takes a while.
var (
	rsaKey   = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	rsaKey2  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	ecKey    = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC() })
	ecKey2   = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC() })
	testTime = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// pemOf encodes public keys as PKIX PEM blocks.
func pemOf(t testing.TB, keys ...any) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		pem.Encode(&b, &pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	return b.Bytes()
}

// writeFile writes data into a new file in a temporary directory and
// returns the directory and the file's name.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sign makes a token of method with claims, signed by key, with kid in
// its header unless "".
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims returns valid claims at now for user alice, merged with extra
// (a nil value deletes a claim).
func claims(now time.Time, extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":   "alice",
		"roles": []string{"admin", "chat"},
		"aud":   "chat",
		"iss":   "https://id.test/",
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// provision makes an Authenticator from YAML options, with its clock at
// now() and files relative to dir, and cleans it up when the test ends.
func provision(t testing.TB, dir, opts string, now func() time.Time) (*Authenticator, error) {
	t.Helper()
	a := new(Authenticator)
	dec := yaml.NewDecoder(strings.NewReader(opts))
	dec.KnownFields(true)
	if err := dec.Decode(a); err != nil {
		t.Fatalf("options: %v", err)
	}
	a.now = now
	ctx := &plugins.Context{Context: context.Background(), Dir: dir, Logger: slog.New(slog.DiscardHandler)}
	err := a.Provision(ctx)
	t.Cleanup(func() { a.Cleanup() })
	return a, err
}

func mustProvision(t testing.TB, dir, opts string, now func() time.Time) *Authenticator {
	t.Helper()
	a, err := provision(t, dir, opts, now)
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	return a
}

func fixed(at time.Time) func() time.Time { return func() time.Time { return at } }

// handshake returns a handshake request carrying tok in ext.token.
func handshake(tok string) *plugins.Request {
	ext, _ := json.Marshal(map[string]string{"token": tok})
	return &plugins.Request{Op: plugins.OpHandshake, Client: plugins.Client{ID: "c1"}, Ext: ext}
}

// reason returns err's rejection reason, "" for nil, or "error: ..." for
// another error.
func reason(err error) string {
	if err == nil {
		return ""
	}
	if r, ok := plugins.AsRejection(err); ok {
		return r.Reason
	}
	return "error: " + err.Error()
}

func TestAuthenticate(t *testing.T) {
	now := testTime
	dir := writeFile(t, "keys.pem", pemOf(t, &rsaKey().PublicKey, &ecKey().PublicKey))
	a := mustProvision(t, dir, `
secret: `+testSecret+`
publicKeyFile: keys.pem
audience: [chat, other]
issuer: https://id.test/
`, fixed(now))
	if got, want := a.Algorithms, []string{HS256, RS256, ES256}; !slices.Equal(got, want) {
		t.Fatalf("Algorithms = %v; want %v", got, want)
	}
	pubPEM := pemOf(t, &rsaKey().PublicKey)
	hs, rs, es := jwt.SigningMethodHS256, jwt.SigningMethodRS256, jwt.SigningMethodES256
	secret := []byte(testSecret)
	tests := []struct {
		name  string
		token string
		want  string // rejection reason, "" for accepted
	}{
		{"HS256", sign(t, hs, secret, "", claims(now, nil)), ""},
		{"RS256", sign(t, rs, rsaKey(), "", claims(now, nil)), ""},
		{"ES256", sign(t, es, ecKey(), "", claims(now, nil)), ""},
		{"kid ignored without a JWKS", sign(t, es, ecKey(), "whatever", claims(now, nil)), ""},
		{"audience list, one accepted", sign(t, hs, secret, "", claims(now, jwt.MapClaims{"aud": []string{"x", "other"}})), ""},
		{"expired within leeway", sign(t, hs, secret, "", claims(now, jwt.MapClaims{"exp": now.Add(-10 * time.Second).Unix()})), ""},
		{"expired", sign(t, hs, secret, "", claims(now, jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()})), ReasonExpired},
		{"not yet valid", sign(t, rs, rsaKey(), "", claims(now, jwt.MapClaims{"nbf": now.Add(time.Minute).Unix()})), ReasonNotYetValid},
		{"issued in the future", sign(t, es, ecKey(), "", claims(now, jwt.MapClaims{"iat": now.Add(time.Minute).Unix()})), ReasonNotYetValid},
		{"wrong audience", sign(t, hs, secret, "", claims(now, jwt.MapClaims{"aud": "billing"})), ReasonWrongAudience},
		{"no audience", sign(t, hs, secret, "", claims(now, jwt.MapClaims{"aud": nil})), ReasonWrongAudience},
		{"wrong issuer", sign(t, hs, secret, "", claims(now, jwt.MapClaims{"iss": "https://evil.test/"})), ReasonWrongIssuer},
		{"no issuer", sign(t, hs, secret, "", claims(now, jwt.MapClaims{"iss": nil})), ReasonWrongIssuer},
		{"no exp", sign(t, hs, secret, "", claims(now, jwt.MapClaims{"exp": nil})), ReasonInvalid},
		{"no user", sign(t, hs, secret, "", claims(now, jwt.MapClaims{"sub": nil})), ReasonInvalid},
		{"user not a string", sign(t, hs, secret, "", claims(now, jwt.MapClaims{"sub": 42})), ReasonInvalid},
		{"other secret", sign(t, hs, []byte(testSecret+"x"), "", claims(now, nil)), ReasonInvalid},
		{"other RSA key", sign(t, rs, rsaKey2(), "", claims(now, nil)), ReasonInvalid},
		{"other EC key", sign(t, es, ecKey2(), "", claims(now, nil)), ReasonInvalid},
		{"alg confusion: HS256 keyed with the RSA public key", sign(t, hs, pubPEM, "", claims(now, nil)), ReasonInvalid},
		{"alg none", noneToken(claims(now, nil)), ReasonInvalid},
		{"HS384 not accepted", sign(t, jwt.SigningMethodHS384, secret, "", claims(now, nil)), ReasonInvalid},
		{"ES256 header on an RSA signature", relabel(t, sign(t, rs, rsaKey(), "", claims(now, nil)), "ES256"), ReasonInvalid},
		{"garbage", "not.a.token", ReasonInvalid},
		{"too long", sign(t, hs, secret, "", claims(now, jwt.MapClaims{"pad": strings.Repeat("x", DefaultMaxTokenBytes)})), ReasonInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := a.Authenticate(context.Background(), handshake(tt.token))
			if got := reason(err); got != tt.want {
				t.Fatalf("Authenticate = %v, %q; want %q", id, got, tt.want)
			}
			if tt.want != "" {
				if strings.Contains(err.Error(), tt.token) {
					t.Errorf("the error %q echoes the token", err)
				}
				return
			}
			if id.User != "alice" || !slices.Equal(id.Roles, []string{"admin", "chat"}) {
				t.Errorf("identity = %+v; want alice [admin chat]", id)
			}
			c := jwt.MapClaims{}
			jwt.NewParser().ParseUnverified(tt.token, c)
			if want, _ := c.GetExpirationTime(); want == nil || !id.Expires.Equal(want.Time) {
				t.Errorf("Expires = %v; want %v", id.Expires, want)
			}
		})
	}
}

// noneToken is an unsigned token with "alg":"none".
func noneToken(c jwt.MapClaims) string {
	enc := base64.RawURLEncoding
	payload, _ := json.Marshal(c)
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + "."
}

// relabel replaces a token's header by one claiming alg.
func relabel(t testing.TB, tok, alg string) string {
	t.Helper()
	parts := strings.SplitN(tok, ".", 2)
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"`+alg+`","typ":"JWT"}`)) + "." + parts[1]
}

// With only an RSA public key configured, the classic algorithm
// confusion (an HS256 token whose HMAC key is the public key's PEM) and
// its variants are refused, and HS256 is not even accepted.
func TestAlgorithmConfusion(t *testing.T) {
	now := testTime
	pubPEM := pemOf(t, &rsaKey().PublicKey)
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey().PublicKey)
	dir := writeFile(t, "rsa.pem", pubPEM)
	a := mustProvision(t, dir, "publicKeyFile: rsa.pem\n", fixed(now))
	if got, want := a.Algorithms, []string{RS256}; !slices.Equal(got, want) {
		t.Fatalf("Algorithms = %v; want %v", got, want)
	}
	for name, key := range map[string][]byte{"pem": pubPEM, "der": der, "pkcs1": x509.MarshalPKCS1PublicKey(&rsaKey().PublicKey)} {
		tok := sign(t, jwt.SigningMethodHS256, key, "", claims(now, nil))
		if _, err := a.Authenticate(context.Background(), handshake(tok)); reason(err) != ReasonInvalid {
			t.Errorf("HS256 keyed with the %s public key: err = %v; want %s", name, err, ReasonInvalid)
		}
	}
	if _, err := provision(t, dir, "publicKeyFile: rsa.pem\nalgorithms: [HS256, RS256]\n", fixed(now)); err == nil ||
		!strings.Contains(err.Error(), "HS256") {
		t.Errorf("algorithms: [HS256] without a secret: err = %v; want an error naming HS256", err)
	}
	// With both a secret and the RSA key, an HS256 token keyed with the
	// public key meets the secret only.
	both := mustProvision(t, dir, "publicKeyFile: rsa.pem\nsecret: "+testSecret+"\n", fixed(now))
	tok := sign(t, jwt.SigningMethodHS256, pubPEM, "", claims(now, nil))
	if _, err := both.Authenticate(context.Background(), handshake(tok)); reason(err) != ReasonInvalid {
		t.Errorf("HS256 keyed with the public key, secret configured: err = %v; want %s", err, ReasonInvalid)
	}
}

func TestLeewayAndRequireExp(t *testing.T) {
	now := testTime
	secret := []byte(testSecret)
	strict := mustProvision(t, "", "secret: "+testSecret+"\nleeway: 0s\n", fixed(now))
	lax := mustProvision(t, "", "secret: "+testSecret+"\nleeway: 2m\nrequireExp: false\n", fixed(now))
	tests := []struct {
		name string
		a    *Authenticator
		c    jwt.MapClaims
		want string
	}{
		{"no leeway, expired 1s ago", strict, jwt.MapClaims{"exp": now.Add(-time.Second).Unix()}, ReasonExpired},
		{"no leeway, nbf in 1s", strict, jwt.MapClaims{"nbf": now.Add(time.Second).Unix()}, ReasonNotYetValid},
		{"2m leeway, expired 1m ago", lax, jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()}, ""},
		{"2m leeway, expired 3m ago", lax, jwt.MapClaims{"exp": now.Add(-3 * time.Minute).Unix()}, ReasonExpired},
		{"exp not required", lax, jwt.MapClaims{"exp": nil}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.a.Authenticate(context.Background(), handshake(sign(t, jwt.SigningMethodHS256, secret, "", claims(now, tt.c))))
			if got := reason(err); got != tt.want {
				t.Fatalf("Authenticate = %v, %q; want %q", id, got, tt.want)
			}
			if tt.c["exp"] == nil && err == nil && !id.Expires.IsZero() {
				t.Errorf("Expires = %v without exp; want zero", id.Expires)
			}
		})
	}
}

func TestTokenSources(t *testing.T) {
	now := testTime
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(now, nil))
	def := mustProvision(t, "", "secret: "+testSecret+"\n", fixed(now))
	custom := mustProvision(t, "", "secret: "+testSecret+"\nfrom: [header:X-Token, ext:com.acme.authn.jwt]\n", fixed(now))
	tests := []struct {
		name   string
		a      *Authenticator
		ext    string
		header map[string][]string
		want   string // "" accepted, "none" ErrNoCredentials, else a reason
	}{
		{"ext.token", def, `{"token":"` + tok + `"}`, nil, ""},
		{"ext.authentication.token", def, `{"authentication":{"token":"` + tok + `"}}`, nil, ""},
		{"Authorization Bearer", def, "", map[string][]string{"Authorization": {"Bearer " + tok}}, ""},
		{"authorization bearer, any case", def, "", map[string][]string{"Authorization": {"bearer " + tok}}, ""},
		{"Authorization Basic", def, "", map[string][]string{"Authorization": {"Basic dXNlcjpwYXNz"}}, "none"},
		{"nothing", def, "", nil, "none"},
		{"other ext", def, `{"ack":true,"authentication":{"user":"x"}}`, nil, "none"},
		{"ext not an object", def, `[1,2]`, nil, "none"},
		{"ext.token null", def, `{"token":null}`, nil, "none"},
		{"ext.token empty", def, `{"token":""}`, nil, "none"},
		{"ext.token a number", def, `{"token":42}`, nil, ReasonInvalid},
		{"first present wins", def, `{"token":"bad"}`, map[string][]string{"Authorization": {"Bearer " + tok}}, ReasonInvalid},
		{"custom header", custom, "", map[string][]string{"X-Token": {tok}}, ""},
		{"custom ext path", custom, `{"com":{"acme":{"authn":{"jwt":"` + tok + `"}}}}`, nil, ""},
		{"custom: default places not read", custom, `{"token":"` + tok + `"}`, map[string][]string{"Authorization": {"Bearer " + tok}}, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &plugins.Request{Op: plugins.OpHandshake, Ext: json.RawMessage(tt.ext), Header: tt.header}
			id, err := tt.a.Authenticate(context.Background(), r)
			got := reason(err)
			if errors.Is(err, plugins.ErrNoCredentials) {
				got = "none"
			}
			if got != tt.want {
				t.Fatalf("Authenticate = %v, %v; want %q", id, err, tt.want)
			}
			if tt.want == "" && id.User != "alice" {
				t.Errorf("User = %q; want alice", id.User)
			}
		})
	}
}

func TestRoles(t *testing.T) {
	now := testTime
	plain := mustProvision(t, "", "secret: "+testSecret+"\n", fixed(now))
	nested := mustProvision(t, "", "secret: "+testSecret+"\nrolesClaim: realm_access.roles\nuserClaim: preferred_username\n", fixed(now))
	tests := []struct {
		name   string
		a      *Authenticator
		claims jwt.MapClaims
		user   string
		roles  []string
	}{
		{"list", plain, jwt.MapClaims{"roles": []any{"a", "b"}}, "alice", []string{"a", "b"}},
		{"space-separated", plain, jwt.MapClaims{"roles": " a  b c "}, "alice", []string{"a", "b", "c"}},
		{"non-strings skipped", plain, jwt.MapClaims{"roles": []any{"a", 1, true, "", "b"}}, "alice", []string{"a", "b"}},
		{"missing", plain, jwt.MapClaims{"roles": nil}, "alice", nil},
		{"an object is none", plain, jwt.MapClaims{"roles": map[string]any{"a": true}}, "alice", nil},
		{"nested", nested, jwt.MapClaims{"preferred_username": "bob", "realm_access": map[string]any{"roles": []any{"ops"}}}, "bob", []string{"ops"}},
		{"dotted key", nested, jwt.MapClaims{"preferred_username": "bob", "realm_access.roles": "x y"}, "bob", []string{"x", "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claims(now, tt.claims)
			delete(c, "aud")
			id, err := tt.a.Authenticate(context.Background(), handshake(sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", c)))
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if id.User != tt.user || !slices.Equal(id.Roles, tt.roles) {
				t.Errorf("identity = %q %q; want %q %q", id.User, id.Roles, tt.user, tt.roles)
			}
		})
	}
}

// Options go through a registry as the gateway decodes them: strictly.
func TestModuleOptions(t *testing.T) {
	reg := plugins.NewRegistry()
	for _, m := range Modules() {
		reg.MustRegister(m)
	}
	t.Setenv("JWTAUTH_TEST_SECRET", testSecret)
	dir := writeFile(t, "keys.pem", pemOf(t, &ecKey().PublicKey))
	tests := []struct {
		name string
		yaml string
		want string // "" for success, else a substring of the error
	}{
		{"secret", "module: jwt\nsecret: " + testSecret, ""},
		{"secretEnv", "module: jwt\nsecretEnv: JWTAUTH_TEST_SECRET\naudience: chat\nleeway: 0s", ""},
		{"pem relative to the configuration", "module: jwt\npublicKeyFile: keys.pem\nalgorithms: [ES256]", ""},
		{"unknown option", "module: jwt\nsecret: " + testSecret + "\nsecrett: x", "secrett"},
		{"no key", "module: jwt\naudience: chat", "no key"},
		{"short secret", "module: jwt\nsecret: short", "at least 32"},
		{"secret and secretEnv", "module: jwt\nsecret: " + testSecret + "\nsecretEnv: JWTAUTH_TEST_SECRET", "set one"},
		{"secretEnv unset", "module: jwt\nsecretEnv: JWTAUTH_TEST_UNSET", "JWTAUTH_TEST_UNSET"},
		{"unknown algorithm", "module: jwt\nsecret: " + testSecret + "\nalgorithms: [none]", `"none"`},
		{"ES256 without a key", "module: jwt\nsecret: " + testSecret + "\nalgorithms: [ES256]", "ES256"},
		{"missing file", "module: jwt\npublicKeyFile: nope.pem", "nope.pem"},
		{"bad from", "module: jwt\nsecret: " + testSecret + "\nfrom: [cookie:x]", "cookie:x"},
		{"bad jwksURL", "module: jwt\njwksURL: ftp://x/keys", "jwksURL"},
		{"negative leeway", "module: jwt\nsecret: " + testSecret + "\nleeway: -1s", "leeway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(tt.yaml), &n); err != nil {
				t.Fatal(err)
			}
			ctx := &plugins.Context{Context: context.Background(), Dir: dir}
			_, m, err := reg.Decode(ctx, plugins.KindAuthenticator, n.Content[0])
			if m != nil {
				t.Cleanup(func() { m.(plugins.CleanerUpper).Cleanup() })
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Decode: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Decode: err = %v; want one containing %q", err, tt.want)
			}
			if err == nil && strings.Contains(tt.yaml, "secret") && !strings.Contains(tt.yaml, "secretEnv") && m.(*Authenticator).Secret != "" {
				t.Error("the secret stays in the options after Provision")
			}
		})
	}
}

func TestLoadPEM(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	priv, _ := x509.MarshalECPrivateKey(ecKey())
	tests := []struct {
		name string
		data []byte
		want string // "" for success
	}{
		{"rsa and ec", pemOf(t, &rsaKey().PublicKey, &ecKey().PublicKey), ""},
		{"pkcs1", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey().PublicKey)}), ""},
		{"small rsa", pemOf(t, &small.PublicKey), "at least 2048"},
		{"p384", pemOf(t, &p384.PublicKey), "P-256"},
		{"private key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: priv}), "not a public key"},
		{"empty", nil, "no PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFile(t, "k.pem", tt.data)
			keys, err := loadPEM(filepath.Join(dir, "k.pem"))
			if tt.want == "" {
				if err != nil || len(keys) == 0 {
					t.Fatalf("loadPEM = %v, %v; want keys", keys, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("loadPEM: err = %v; want one containing %q", err, tt.want)
			}
		})
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	now := time.Now()
	dir := writeFile(b, "keys.pem", pemOf(b, &rsaKey().PublicKey, &ecKey().PublicKey))
	a := mustProvision(b, dir, "secret: "+testSecret+"\npublicKeyFile: keys.pem\naudience: chat\n", time.Now)
	for _, bc := range []struct {
		name   string
		method jwt.SigningMethod
		key    any
	}{
		{"HS256", jwt.SigningMethodHS256, []byte(testSecret)},
		{"RS256", jwt.SigningMethodRS256, rsaKey()},
		{"ES256", jwt.SigningMethodES256, ecKey()},
	} {
		r := handshake(sign(b, bc.method, bc.key, "", claims(now, nil)))
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				if _, err := a.Authenticate(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
