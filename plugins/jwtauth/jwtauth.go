package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/plugins"
	"github.com/golang-jwt/jwt/v5"
	"go.yaml.in/yaml/v3"
)

// The algorithms the module verifies.
const (
	HS256 = "HS256"
	RS256 = "RS256"
	ES256 = "ES256"
)

// Defaults of the options.
const (
	DefaultLeeway         = 30 * time.Second
	DefaultJWKSRefresh    = time.Hour
	DefaultJWKSMinRefresh = 30 * time.Second
	DefaultJWKSTimeout    = 10 * time.Second
	DefaultJWKSMaxBytes   = 256 << 10
	DefaultMaxTokenBytes  = 8 << 10
	DefaultUserClaim      = "sub"
	DefaultRolesClaim     = "roles"
	minSecretBytes        = 32
)

// DefaultFrom is where a token is looked for when the from option is not
// set.
var DefaultFrom = []string{"ext:token", "ext:authentication.token", "header:Authorization"}

// Reasons of the rejections Authenticate returns.
const (
	ReasonExpired       = "token_expired"
	ReasonNotYetValid   = "token_not_yet_valid"
	ReasonWrongAudience = "wrong_audience"
	ReasonWrongIssuer   = "wrong_issuer"
	ReasonUnknownKey    = "unknown_key"
	ReasonInvalid       = "invalid_token"
)

// Modules lists the package's modules.
func Modules() []plugins.ModuleInfo {
	return []plugins.ModuleInfo{{
		Kind: plugins.KindAuthenticator,
		Name: "jwt",
		New:  func() any { return new(Authenticator) },
		Doc:  "verifies a JWT (HS256, RS256, ES256; secret, PEM keys or JWKS) from the handshake and binds its user and roles",
	}}
}

// Authenticator is the "jwt" authenticator module. Its exported fields are
// its options; see the package documentation. After Provision it is safe
// for concurrent use; Cleanup stops its JWKS refresher.
type Authenticator struct {
	// Algorithms are the accepted "alg" header values, among HS256, RS256
	// and ES256. Default: HS256 with a secret, RS256 and ES256 with a
	// jwksURL or with publicKeyFile keys of those types.
	Algorithms []string `yaml:"algorithms"`
	// Secret is the HS256 key, at least 32 bytes. Prefer SecretEnv.
	Secret string `yaml:"secret"`
	// SecretEnv names the environment variable holding the HS256 key.
	SecretEnv string `yaml:"secretEnv"`
	// PublicKeyFile is a PEM file of RSA and/or EC P-256 public keys,
	// relative to the configuration file.
	PublicKeyFile string `yaml:"publicKeyFile"`
	// JWKSURL is an http(s) URL serving a JSON Web Key Set.
	JWKSURL string `yaml:"jwksURL"`
	// JWKSRefresh is how often the key set is fetched again. Default 1h.
	JWKSRefresh config.Duration `yaml:"jwksRefresh"`
	// JWKSMinRefresh is the least time between two fetches caused by
	// tokens whose kid is unknown. Default 30s.
	JWKSMinRefresh config.Duration `yaml:"jwksMinRefresh"`
	// JWKSTimeout bounds one fetch. Default 10s.
	JWKSTimeout config.Duration `yaml:"jwksTimeout"`
	// JWKSMaxBytes bounds the size of the key set document. Default 256 KiB.
	JWKSMaxBytes int64 `yaml:"jwksMaxBytes"`
	// JWKSRequired makes Provision fail when the first fetch fails.
	// Default true; with false the module starts without keys and fetches
	// on the first token that needs them.
	JWKSRequired *bool `yaml:"jwksRequired"`
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 30s
	// ("0s" for none).
	Leeway *config.Duration `yaml:"leeway"`
	// RequireExp refuses tokens without an exp claim. Default true.
	RequireExp *bool `yaml:"requireExp"`
	// Audience, a string or a list, requires the aud claim to name one of
	// them. Default: aud is not checked.
	Audience Strings `yaml:"audience"`
	// Issuer requires the iss claim to equal it. Default: not checked.
	Issuer string `yaml:"issuer"`
	// UserClaim is the claim naming the user (a dotted path for nested
	// claims). Default "sub".
	UserClaim string `yaml:"userClaim"`
	// RolesClaim is the claim listing the roles: a list of strings or a
	// space-separated string. Default "roles".
	RolesClaim string `yaml:"rolesClaim"`
	// From lists where the token is looked for, in order: "ext:<dotted
	// path>" or "header:<Name>". Default ["ext:token",
	// "ext:authentication.token", "header:Authorization"].
	From []string `yaml:"from"`
	// MaxTokenBytes refuses longer tokens before parsing. Default 8192.
	MaxTokenBytes int `yaml:"maxTokenBytes"`

	log       *slog.Logger
	now       func() time.Time // the clock; tests replace it before Provision
	parser    *jwt.Parser
	secret    []byte
	static    map[string][]any // alg -> public keys from publicKeyFile
	jwks      *jwks
	sources   []source
	userPath  []string
	rolesPath []string
	stop      context.CancelFunc
	stopped   sync.WaitGroup // the JWKS refresher
}

var (
	_ plugins.Authenticator = (*Authenticator)(nil)
	_ plugins.Provisioner   = (*Authenticator)(nil)
	_ plugins.CleanerUpper  = (*Authenticator)(nil)
)

// Strings is a YAML option written as one string or a list of strings.
type Strings []string

// UnmarshalYAML accepts a scalar or a sequence of scalars.
func (s *Strings) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "" {
			*s = nil
		} else {
			*s = Strings{n.Value}
		}
		return nil
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		*s = l
		return nil
	}
	return fmt.Errorf("line %d: want a string or a list of strings", n.Line)
}

// Provision applies the defaults, checks the options, loads the keys,
// fetches the key set and starts its refresher.
func (a *Authenticator) Provision(ctx *plugins.Context) error {
	a.log = ctx.Logger
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.setDefaults()
	if err := a.loadKeys(ctx); err != nil {
		return err
	}
	algs, err := a.algorithms()
	if err != nil {
		return err
	}
	a.Algorithms = algs
	if a.sources, err = parseSources(a.From); err != nil {
		return err
	}
	for i, aud := range a.Audience {
		if aud == "" {
			return fmt.Errorf("audience[%d]: empty", i)
		}
	}
	if a.MaxTokenBytes < 0 {
		return fmt.Errorf("maxTokenBytes: %d: must be > 0", a.MaxTokenBytes)
	}
	a.userPath = claimPath(a.UserClaim)
	a.rolesPath = claimPath(a.RolesClaim)
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(a.Algorithms),
		jwt.WithLeeway(a.Leeway.D()),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(a.now),
	}
	if *a.RequireExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	a.parser = jwt.NewParser(opts...)
	if a.jwks != nil {
		return a.startJWKS(ctx)
	}
	return nil
}

func (a *Authenticator) setDefaults() {
	if a.JWKSRefresh == 0 {
		a.JWKSRefresh = config.Duration(DefaultJWKSRefresh)
	}
	if a.JWKSMinRefresh == 0 {
		a.JWKSMinRefresh = config.Duration(DefaultJWKSMinRefresh)
	}
	if a.JWKSTimeout == 0 {
		a.JWKSTimeout = config.Duration(DefaultJWKSTimeout)
	}
	if a.JWKSMaxBytes == 0 {
		a.JWKSMaxBytes = DefaultJWKSMaxBytes
	}
	if a.JWKSRequired == nil {
		a.JWKSRequired = config.Bool(true)
	}
	if a.Leeway == nil {
		d := config.Duration(DefaultLeeway)
		a.Leeway = &d
	}
	if a.RequireExp == nil {
		a.RequireExp = config.Bool(true)
	}
	if a.UserClaim == "" {
		a.UserClaim = DefaultUserClaim
	}
	if a.RolesClaim == "" {
		a.RolesClaim = DefaultRolesClaim
	}
	if len(a.From) == 0 {
		a.From = slices.Clone(DefaultFrom)
	}
	if a.MaxTokenBytes == 0 {
		a.MaxTokenBytes = DefaultMaxTokenBytes
	}
}

// loadKeys reads the secret, the PEM file and checks the JWKS options.
func (a *Authenticator) loadKeys(ctx *plugins.Context) error {
	switch {
	case a.Secret != "" && a.SecretEnv != "":
		return errors.New("secret and secretEnv: set one of them")
	case a.SecretEnv != "":
		v, ok := os.LookupEnv(a.SecretEnv)
		if !ok || v == "" {
			return fmt.Errorf("secretEnv: %q: environment variable not set or empty", a.SecretEnv)
		}
		a.secret = []byte(v)
	case a.Secret != "":
		a.secret = []byte(a.Secret)
	}
	if a.secret != nil && len(a.secret) < minSecretBytes {
		return fmt.Errorf("secret: %d bytes: HS256 needs at least %d", len(a.secret), minSecretBytes)
	}
	a.Secret = "" // keep the secret in one place only
	if a.PublicKeyFile != "" {
		keys, err := loadPEM(ctx.Path(a.PublicKeyFile))
		if err != nil {
			return fmt.Errorf("publicKeyFile: %w", err)
		}
		a.static = keys
	}
	if a.JWKSURL != "" {
		u, err := url.Parse(a.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("jwksURL: %q: want an http or https URL", a.JWKSURL)
		}
		for _, d := range []struct {
			name string
			v    config.Duration
		}{{"jwksRefresh", a.JWKSRefresh}, {"jwksMinRefresh", a.JWKSMinRefresh}, {"jwksTimeout", a.JWKSTimeout}} {
			if d.v < 0 {
				return fmt.Errorf("%s: %v: must be > 0", d.name, d.v)
			}
		}
		if a.JWKSMaxBytes < 0 {
			return fmt.Errorf("jwksMaxBytes: %d: must be > 0", a.JWKSMaxBytes)
		}
		a.jwks = newJWKS(a.JWKSURL, a.JWKSTimeout.D(), a.JWKSMaxBytes, a.JWKSMinRefresh.D(), a.now, a.log)
	}
	if a.secret == nil && len(a.static) == 0 && a.jwks == nil {
		return errors.New("no key: set secret, secretEnv, publicKeyFile or jwksURL")
	}
	if *a.Leeway < 0 {
		return fmt.Errorf("leeway: %v: must be >= 0", *a.Leeway)
	}
	return nil
}

// algorithms returns the accepted algorithms: the configured ones, each
// checked against the keys, or those the keys allow.
func (a *Authenticator) algorithms() ([]string, error) {
	can := func(alg string) bool {
		switch alg {
		case HS256:
			return a.secret != nil
		case RS256, ES256:
			return a.jwks != nil || len(a.static[alg]) > 0
		}
		return false
	}
	if len(a.Algorithms) == 0 {
		var algs []string
		for _, alg := range []string{HS256, RS256, ES256} {
			if can(alg) {
				algs = append(algs, alg)
			}
		}
		return algs, nil
	}
	for i, alg := range a.Algorithms {
		switch alg {
		case HS256, RS256, ES256:
		default:
			return nil, fmt.Errorf("algorithms[%d]: %q: want HS256, RS256 or ES256", i, alg)
		}
		if !can(alg) {
			return nil, fmt.Errorf("algorithms[%d]: %q: no key of that type is configured", i, alg)
		}
	}
	return slices.Clone(a.Algorithms), nil
}

// startJWKS fetches the key set once and starts the refresher.
func (a *Authenticator) startJWKS(ctx *plugins.Context) error {
	life, stop := context.WithCancel(context.Background())
	a.stop = stop
	a.jwks.life = life
	if err := a.jwks.refresh(ctx, 0, true); err != nil {
		if *a.JWKSRequired {
			return fmt.Errorf("jwksURL: %w", err)
		}
		a.log.Warn("JWKS not available at start; fetching again when a token needs it", "url", a.JWKSURL, "err", err)
	}
	a.stopped.Add(1)
	go func() {
		defer a.stopped.Done()
		a.jwks.refreshLoop(life, a.JWKSRefresh.D())
	}()
	return nil
}

// Cleanup stops the JWKS refresher and waits for it to end. It may be
// called after a failed Provision.
func (a *Authenticator) Cleanup() error {
	if a.stop != nil {
		a.stop()
	}
	a.stopped.Wait()
	return nil
}

// Authenticate verifies the handshake's token. See the package
// documentation for the outcomes.
func (a *Authenticator) Authenticate(ctx context.Context, r *plugins.Request) (*plugins.Identity, error) {
	tok, err := a.token(r)
	if err != nil {
		return nil, err
	}
	if len(tok) > a.MaxTokenBytes {
		a.log.Debug("jwt refused", "reason", ReasonInvalid, "err", "token too long", "bytes", len(tok))
		return nil, plugins.Reject(ReasonInvalid)
	}
	claims := jwt.MapClaims{}
	_, err = a.parser.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) { return a.key(ctx, t) })
	if err != nil {
		return nil, a.failure(err)
	}
	if len(a.Audience) > 0 {
		aud, err := claims.GetAudience()
		if err != nil {
			return nil, a.refuse(ReasonInvalid, err)
		}
		if !slices.ContainsFunc(aud, func(s string) bool { return slices.Contains(a.Audience, s) }) {
			return nil, a.refuse(ReasonWrongAudience, errors.New("aud does not name an accepted audience"))
		}
	}
	if a.Issuer != "" {
		if iss, err := claims.GetIssuer(); err != nil || iss != a.Issuer {
			return nil, a.refuse(ReasonWrongIssuer, errors.New("iss is not the accepted issuer"))
		}
	}
	id := &plugins.Identity{}
	if user, ok := lookupClaim(claims, a.userPath).(string); ok && user != "" {
		id.User = user
	} else {
		return nil, a.refuse(ReasonInvalid, fmt.Errorf("no user in claim %q", a.UserClaim))
	}
	id.Roles = roles(lookupClaim(claims, a.rolesPath))
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		id.Expires = exp.Time
	}
	return id, nil
}

// Errors of the key function, told apart by failure.
var (
	errNoKey           = errors.New("no key for the token's algorithm")
	errKeyMismatch     = errors.New("the key named by kid is of another type")
	errUnknownKey      = errors.New("kid not in the key set")
	errKeysUnavailable = errors.New("key set unavailable")
)

// key returns the key(s) to verify t with, chosen by t's algorithm.
func (a *Authenticator) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	switch alg {
	case HS256:
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok || a.secret == nil {
			return nil, errNoKey
		}
		return a.secret, nil
	case RS256:
		if _, ok := t.Method.(*jwt.SigningMethodRSA); !ok {
			return nil, errNoKey
		}
	case ES256:
		if _, ok := t.Method.(*jwt.SigningMethodECDSA); !ok {
			return nil, errNoKey
		}
	default:
		return nil, errNoKey
	}
	kid, _ := t.Header["kid"].(string)
	static := a.static[alg]
	if a.jwks == nil {
		if len(static) == 0 {
			return nil, errNoKey
		}
		return keySet(static), nil
	}
	keys, err := a.jwks.lookup(ctx, alg, kid)
	if kid != "" && len(keys) > 0 {
		return keys[0], nil
	}
	keys = append(slices.Clip(static), keys...)
	if len(keys) > 0 {
		return keySet(keys), nil
	}
	if err != nil {
		return nil, err
	}
	return nil, errUnknownKey
}

func keySet(keys []any) jwt.VerificationKeySet {
	s := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
	for i, k := range keys {
		s.Keys[i] = k
	}
	return s
}

// failure turns a parse error into what Authenticate returns.
func (a *Authenticator) failure(err error) error {
	switch {
	case errors.Is(err, errKeysUnavailable):
		return fmt.Errorf("jwt: cannot verify the token: %w", err)
	case errors.Is(err, errUnknownKey):
		return a.refuse(ReasonUnknownKey, err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return a.refuse(ReasonExpired, err)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return a.refuse(ReasonNotYetValid, err)
	}
	return a.refuse(ReasonInvalid, err)
}

// refuse logs why (at debug; never the token) and returns the rejection.
func (a *Authenticator) refuse(reason string, why error) error {
	a.log.Debug("jwt refused", "reason", reason, "err", why)
	return plugins.Reject(reason)
}

// claimPath splits a claim name into a path.
func claimPath(name string) []string { return strings.Split(name, ".") }

// lookupClaim returns the claim at path: the whole dotted name as one key
// first, then as a path of nested objects.
func lookupClaim(claims map[string]any, path []string) any {
	if len(path) > 1 {
		if v, ok := claims[strings.Join(path, ".")]; ok {
			return v
		}
	}
	var cur any = claims
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[p]; !ok {
			return nil
		}
	}
	return cur
}

// roles reads a roles claim: a list of strings (others are skipped) or a
// space-separated string.
func roles(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
