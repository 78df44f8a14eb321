package gateway_test

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	"github.com/golang-jwt/jwt/v5"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// tokenBackend is an auth backend: a handshake's ext.token is the user id,
// except "bad", which is refused.
type tokenBackend struct {
	backendv1.UnimplementedBackendServer
}

func (tokenBackend) Handshake(_ context.Context, r *backendv1.HandshakeRequest) (*backendv1.HandshakeResponse, error) {
	v, _ := engine.ExtValue(r.GetExt(), "token")
	var token string
	if json.Unmarshal(v, &token) != nil || token == "" || token == "bad" {
		return nil, status.Error(codes.Unauthenticated, "bad token")
	}
	return &backendv1.HandshakeResponse{UserId: token}, nil
}

func startTokenBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	backendv1.RegisterBackendServer(s, tokenBackend{})
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// bannedPolicy is an embedder's policy: it refuses the user "mallory",
// whom the auth backend has bound by the time it is asked, and
// subscriptions to /staff/**.
type bannedPolicy struct{ engine.DefaultPolicy }

func (bannedPolicy) CanHandshake(_ context.Context, s *engine.Session, _ *bayeux.Message) error {
	if s.User() == "mallory" {
		return &bayeux.Error{Code: 403, Args: "banned", Message: "handshake_denied", Reconnect: bayeux.ReconnectNone}
	}
	return nil
}

func (p bannedPolicy) CanSubscribe(ctx context.Context, s *engine.Session, ch string, m *bayeux.Message) error {
	if bayeux.Match("/staff/**", ch) {
		return engine.ErrDenied
	}
	return p.DefaultPolicy.CanSubscribe(ctx, s, ch, m)
}

// An embedder's policy (gateway.WithEngineOptions(engine.WithPolicy(...)))
// no longer replaces the auth backend's: both apply, the backend's first.
func TestEmbedderPolicyComposesWithAuthBackend(t *testing.T) {
	t.Parallel()
	addr := startTokenBackend(t)
	srv := newServer(t, longT, func(c *config.Config) {
		c.Backends = map[string]config.BackendConfig{"auth": {Target: addr}}
		c.Auth.Backend = "auth"
		c.SetDefaults()
	}, gateway.WithEngineOptions(engine.WithPolicy(bannedPolicy{})))
	tests := []struct {
		name    string
		token   string
		wantErr string // "" for success
	}{
		{name: "refused by the auth backend", token: "bad", wantErr: "403:bad token:handshake_denied"},
		{name: "refused by the embedder's policy", token: "mallory", wantErr: "403:banned:handshake_denied"},
		{name: "allowed by both", token: "alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, srv)
			r, _ := c.must(c.Handshake(c.ctx, M{"ext": M{"token": tt.token}}))
			if tt.wantErr != "" {
				wantFailure(t, r, tt.wantErr)
				return
			}
			wantSuccess(t, r)
			if got := srv.Engine().Session(r.Str("clientId")).User(); got != tt.token {
				t.Errorf("session user = %q; want %q, bound by the auth backend", got, tt.token)
			}
			wantFailure(t, c.subscribe("/staff/room"), "403:denied_by_security_policy:subscribe_denied")
			wantSuccess(t, c.subscribe("/public/room"))
		})
	}
}

// The plugin authenticator, a plugin policy and the auth backend compose:
// the JWT is checked first (no token: 401, the backend is not reached),
// the backend may still refuse, and the authorizer sees the roles the
// token carried.
func TestPluginAuthComposesWithAuthBackend(t *testing.T) {
	t.Parallel()
	addr := startTokenBackend(t)
	secret := "0123456789abcdef0123456789abcdef"
	var plugins config.PluginsConfig
	doc := `
authenticators:
  - {module: jwt, secret: ` + secret + `, from: ["ext:jwt"]}
policies:
  - module: authorizer
    rules:
      - {channels: [/staff/**], grant: [create, subscribe], roles: [staff]}
`
	if err := yaml.Unmarshal([]byte(doc), &plugins); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, longT, func(c *config.Config) {
		c.Backends = map[string]config.BackendConfig{"auth": {Target: addr}}
		c.Auth.Backend = "auth"
		c.Plugins = plugins
		c.SetDefaults()
	})
	sign := func(sub string, roles ...string) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": sub, "roles": roles, "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name, jwt, token string
		wantErr          string // "" for success
		staff            bool
	}{
		{name: "no token", token: "alice", wantErr: "401::authentication_required"},
		{name: "forged token", jwt: sign("alice", "staff") + "x", token: "alice", wantErr: "403::invalid_token"},
		{name: "refused by the auth backend", jwt: sign("alice", "staff"), token: "bad", wantErr: "403:bad token:handshake_denied"},
		{name: "staff", jwt: sign("alice", "staff"), token: "alice", staff: true},
		{name: "not staff", jwt: sign("bob"), token: "bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, srv)
			ext := M{"token": tt.token}
			if tt.jwt != "" {
				ext["jwt"] = tt.jwt
			}
			r, _ := c.must(c.Handshake(c.ctx, M{"ext": ext}))
			if tt.wantErr != "" {
				wantFailure(t, r, tt.wantErr)
				return
			}
			wantSuccess(t, r)
			if tt.staff {
				wantSuccess(t, c.subscribe("/staff/room"))
			} else {
				wantFailure(t, c.subscribe("/staff/other"), "403:denied_by_not_granting:create_denied") // no one made it yet
			}
		})
	}
}
