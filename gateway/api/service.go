package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/cometgate/cometgate/gateway/metrics"
	gatewayv1 "github.com/cometgate/cometgate/proto/gen/cometgate/gateway/v1"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

//go:embed openapi.json
var openAPI []byte

// Config configures the API. Zero values mean the defaults stated.
type Config struct {
	// Tokens are the accepted bearer tokens.
	Tokens []string
	// ClientCerts accepts requests whose TLS client certificate was
	// verified (the listener's tls.Config does the verification).
	ClientCerts bool
	// MaxDataBytes bounds the data of one message. Default 64 KiB.
	MaxDataBytes int
	// MaxRequestBytes bounds a request body or gRPC message. Default
	// MaxDataBytes + 16 KiB.
	MaxRequestBytes int
	// Conns reports open websocket connections, for Stats.
	Conns func() int
	// LongPollAnswers reports the long-polling delivery latency, for
	// Stats (nil: none).
	LongPollAnswers func() metrics.LatencySummary
	// ObserveRequest, if not nil, is told of each request: its protocol
	// ("grpc" or "rest"), its method (a gRPC method name, or a REST route
	// such as "POST /v1/publish", "other" for none) and its code (a gRPC
	// code name, or an HTTP status). It must not block.
	ObserveRequest func(protocol, method, code string)
	// Listen is the address the API is served on (its own, or the public
	// listener's); its host may appear in the Host header of REST
	// requests.
	Listen string
	// AllowedOrigins are the origins ("https://ops.example", compared
	// case-insensitively) whose browser requests the REST API serves, with
	// CORS headers; "*" allows any. Requests with another Origin header
	// are refused. Default none.
	AllowedOrigins []string
	// AllowedHosts are the host names, besides IP addresses, "localhost"
	// and Listen's host, that the Host header of a REST request may carry.
	// Default none.
	AllowedHosts []string
	// Reload reloads the node's configuration, for the Reload method
	// (nil: Reload answers UNIMPLEMENTED). It returns what changed while
	// running and the settings that need a restart, or why the new
	// configuration was refused.
	Reload func(ctx context.Context) (applied, needsRestart []string, err error)
	// TLSNames returns the on-demand TLS allowlist, or nil when the node
	// has no on-demand TLS (the TLS name methods then answer
	// FAILED_PRECONDITION). Nil: likewise.
	TLSNames func() TLSNames
	// Cluster, if not nil, is the cluster the node belongs to: the
	// session, channel and stats methods, Deliver and Disconnect then
	// answer for every node (see Cluster). Nil: this node alone.
	Cluster Cluster
	// Logger receives request problems at debug level.
	Logger *slog.Logger
}

// Service implements gatewayv1.GatewayServer over an engine.
type Service struct {
	gatewayv1.UnimplementedGatewayServer
	e       *engine.Engine
	cfg     Config
	started time.Time
	hosts   []string // allowed Host names besides IPs and localhost, lowercase
	refused refusals
}

var _ gatewayv1.GatewayServer = (*Service)(nil)

// New returns the API of e.
func New(e *engine.Engine, cfg Config) *Service {
	if cfg.MaxDataBytes <= 0 {
		cfg.MaxDataBytes = 64 << 10
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = cfg.MaxDataBytes + 16<<10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Conns == nil {
		cfg.Conns = func() int { return 0 }
	}
	s := &Service{e: e, cfg: cfg, started: time.Now(), hosts: allowedHostNames(cfg)}
	if cfg.Cluster != nil {
		cfg.Cluster.HandleAPI(s.answerPeer)
	}
	return s
}

// AuthRequired reports whether requests must authenticate.
func (s *Service) AuthRequired() bool { return len(s.cfg.Tokens) > 0 || s.cfg.ClientCerts }

// RequestAuthorized reports whether r may use the REST API: its Host
// header names an allowed host, and it authenticates (a bearer token in
// its Authorization header, or a verified client certificate) when the API
// requires it. Other handlers on the API listener (the status page) use it
// to accept the same requests. It may be called concurrently.
func (s *Service) RequestAuthorized(r *http.Request) bool {
	return s.hostAllowed(r.Host) && s.authorized(r.Header.Get("Authorization"), r.TLS)
}

// authorized checks an Authorization header value and a TLS state.
func (s *Service) authorized(authz string, cs *tls.ConnectionState) bool {
	if !s.AuthRequired() {
		return true
	}
	if s.cfg.ClientCerts && cs != nil && len(cs.VerifiedChains) > 0 {
		return true
	}
	token, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok || token == "" {
		return false
	}
	for _, t := range s.cfg.Tokens {
		if subtle.ConstantTimeCompare([]byte(token), []byte(t)) == 1 {
			return true
		}
	}
	return false
}

// Handler returns one http.Handler serving the gRPC API (HTTP/2 requests
// with a gRPC content type) and the REST API with its OpenAPI document.
// The server it is mounted on must speak HTTP/2 (TLS, or unencrypted
// HTTP/2 enabled) for gRPC clients. Only REST requests get the browser
// checks of RESTHandler.
func (s *Service) Handler() http.Handler {
	interceptors := []grpc.UnaryServerInterceptor{s.unaryAuth}
	if s.cfg.ObserveRequest != nil {
		interceptors = append([]grpc.UnaryServerInterceptor{s.countUnary}, interceptors...)
	}
	gs := grpc.NewServer(
		grpc.ChainUnaryInterceptor(interceptors...),
		grpc.StreamInterceptor(s.streamAuth),
		grpc.MaxRecvMsgSize(s.cfg.MaxRequestBytes),
	)
	gatewayv1.RegisterGatewayServer(gs, s)
	registerReflection(gs)
	rest := s.RESTHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

// RESTHandler serves /v1/... and /v1/openapi.json, behind the checks that
// keep web pages out (see browserGuard) and then authentication.
func (s *Service) RESTHandler() http.Handler {
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, exactDataJSON{&runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
		runtime.WithMiddlewares(restPattern),
	)
	// Registering a local server cannot fail.
	_ = gatewayv1.RegisterGatewayHandlerServer(context.Background(), mux, s)
	guarded := s.browserGuard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r.Header.Get("Authorization"), r.TLS) {
			s.cfg.Logger.Debug("control API request refused: not authenticated", "remote", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="cometgate"`)
			writeJSONError(w, http.StatusUnauthorized, codes.Unauthenticated, "authentication required")
			return
		}
		if r.Method == http.MethodGet && r.URL.Path == "/v1/openapi.json" {
			w.Header().Set("Content-Type", "application/json")
			w.Write(openAPI)
			return
		}
		if r.Body != nil && r.Method != http.MethodGet {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxRequestBytes)))
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					writeJSONError(w, http.StatusRequestEntityTooLarge, codes.InvalidArgument, fmt.Sprintf("request body exceeds %d bytes", s.cfg.MaxRequestBytes))
					return
				}
				writeJSONError(w, http.StatusBadRequest, codes.InvalidArgument, "cannot read request body")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		mux.ServeHTTP(w, r)
	}))
	if s.cfg.ObserveRequest == nil {
		return guarded
	}
	return s.countREST(guarded)
}

func writeJSONError(w http.ResponseWriter, httpStatus int, code codes.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	json.NewEncoder(w).Encode(map[string]any{"code": int(code), "message": msg, "details": []any{}})
}

func (s *Service) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !s.callAuthorized(ctx) {
		s.cfg.Logger.Debug("control API call refused: not authenticated", "method", info.FullMethod)
		return nil, status.Error(codes.Unauthenticated, "authentication required")
	}
	return handler(ctx, req)
}

// data returns the JSON of a request's data: value or raw (data_json).
func (s *Service) data(value *structpb.Value, raw []byte) (json.RawMessage, error) {
	switch {
	case value != nil && len(raw) > 0:
		return nil, status.Error(codes.InvalidArgument, "data and data_json are exclusive")
	case value != nil:
		b, err := value.MarshalJSON()
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "data: %v", err)
		}
		raw = b
	case len(raw) == 0:
		raw = []byte("null")
	default:
		if err := bayeux.ValidJSON(raw); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "data_json is not valid JSON: %v", err)
		}
	}
	if len(raw) > s.cfg.MaxDataBytes {
		return nil, status.Errorf(codes.InvalidArgument, "data is %d bytes; the limit is %d", len(raw), s.cfg.MaxDataBytes)
	}
	return raw, nil
}

// Publish broadcasts a message as a client publish would be.
func (s *Service) Publish(ctx context.Context, req *gatewayv1.PublishRequest) (*gatewayv1.PublishResponse, error) {
	data, err := s.data(req.GetData(), req.GetDataJson())
	if err != nil {
		return nil, err
	}
	ext, err := extJSON(req.GetExt())
	if err != nil {
		return nil, err
	}
	m := &bayeux.Message{Channel: req.GetChannel(), Data: data, Ext: ext}
	n, err := s.e.PublishChecked(ctx, m)
	if err != nil {
		return nil, grpcError(err)
	}
	return &gatewayv1.PublishResponse{Subscribers: int32(n)}, nil
}

func extJSON(ext *structpb.Struct) (json.RawMessage, error) {
	if ext == nil {
		return nil, nil
	}
	b, err := ext.MarshalJSON()
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "ext: %v", err)
	}
	return b, nil
}

// Deliver sends a message to one session or one user's sessions: on a
// clustered node, to the node owning the session, or to every node.
func (s *Service) Deliver(ctx context.Context, req *gatewayv1.DeliverRequest) (*gatewayv1.DeliverResponse, error) {
	if s.cfg.Cluster == nil {
		return s.localDeliver(req)
	}
	if (req.GetClientId() == "") == (req.GetUserId() == "") {
		return nil, status.Error(codes.InvalidArgument, "exactly one of client_id and user_id is required")
	}
	// Checked here, and sent on as exact JSON (data_json).
	name, data, _, err := s.deliverMessage(req)
	if err != nil {
		return nil, err
	}
	fwd := &gatewayv1.DeliverRequest{ClientId: req.GetClientId(), UserId: req.GetUserId(), Channel: name, DataJson: data, Ext: req.GetExt()}
	if id := req.GetClientId(); id != "" {
		owner := s.owner(id)
		if owner == "" {
			return s.localDeliver(fwd)
		}
		resp := new(gatewayv1.DeliverResponse)
		if err := s.ask(ctx, owner, "Deliver", id, fwd, resp); err != nil {
			return nil, err
		}
		return &gatewayv1.DeliverResponse{Sessions: resp.Sessions}, nil
	}
	total := int64(0)
	if local, err := s.localDeliver(fwd); err == nil {
		total += int64(local.Sessions)
	} else if status.Code(err) != codes.NotFound {
		return nil, err
	}
	unreachable := gather(ctx, s, "Deliver", fwd, func() *gatewayv1.DeliverResponse { return new(gatewayv1.DeliverResponse) },
		func(_ string, r *gatewayv1.DeliverResponse) { total += int64(max(r.Sessions, 0)) }, func(string) {})
	if total == 0 && len(unreachable) == 0 {
		return nil, status.Errorf(codes.NotFound, "no session of user %q", req.GetUserId())
	}
	return &gatewayv1.DeliverResponse{Sessions: int32(min(total, 1<<31-1)), UnreachableNodes: unreachable}, nil
}

// deliverMessage checks a Deliver request's channel, data and ext.
func (s *Service) deliverMessage(req *gatewayv1.DeliverRequest) (string, json.RawMessage, json.RawMessage, error) {
	name, wild, ok := bayeux.ParseChannel(req.GetChannel())
	if !ok || wild != bayeux.NotWild || bayeux.KindOf(name) == bayeux.KindMeta {
		return "", nil, nil, status.Errorf(codes.InvalidArgument, "channel %q: not a valid, non-meta, non-pattern channel", req.GetChannel())
	}
	data, err := s.data(req.GetData(), req.GetDataJson())
	if err != nil {
		return "", nil, nil, err
	}
	ext, err := extJSON(req.GetExt())
	if err != nil {
		return "", nil, nil, err
	}
	return name, data, ext, nil
}

// localDeliver delivers to this node's sessions.
func (s *Service) localDeliver(req *gatewayv1.DeliverRequest) (*gatewayv1.DeliverResponse, error) {
	sessions, err := s.targets(req.GetClientId(), req.GetUserId())
	if err != nil {
		return nil, err
	}
	name, data, ext, err := s.deliverMessage(req)
	if err != nil {
		return nil, err
	}
	m := &bayeux.Message{Channel: name, Data: data, Ext: ext}
	for _, ss := range sessions {
		ss.Deliver(m)
	}
	return &gatewayv1.DeliverResponse{Sessions: int32(len(sessions))}, nil
}

// targets resolves exactly one of a client id and a user id.
func (s *Service) targets(clientID, userID string) ([]*engine.Session, error) {
	switch {
	case (clientID == "") == (userID == ""):
		return nil, status.Error(codes.InvalidArgument, "exactly one of client_id and user_id is required")
	case clientID != "":
		ss := s.e.Session(clientID)
		if ss == nil {
			return nil, status.Errorf(codes.NotFound, "no session %q", clientID)
		}
		return []*engine.Session{ss}, nil
	}
	list := s.e.UserSessions(userID)
	if len(list) == 0 {
		return nil, status.Errorf(codes.NotFound, "no session of user %q", userID)
	}
	return list, nil
}

// Disconnect ends sessions: on a clustered node, on the node owning the
// session, or on every node.
func (s *Service) Disconnect(ctx context.Context, req *gatewayv1.DisconnectRequest) (*gatewayv1.DisconnectResponse, error) {
	if s.cfg.Cluster == nil {
		return s.localDisconnect(req)
	}
	if (req.GetClientId() == "") == (req.GetUserId() == "") {
		return nil, status.Error(codes.InvalidArgument, "exactly one of client_id and user_id is required")
	}
	if id := req.GetClientId(); id != "" {
		owner := s.owner(id)
		if owner == "" {
			return s.localDisconnect(req)
		}
		resp := new(gatewayv1.DisconnectResponse)
		if err := s.ask(ctx, owner, "Disconnect", id, req, resp); err != nil {
			return nil, err
		}
		return &gatewayv1.DisconnectResponse{Sessions: resp.Sessions}, nil
	}
	total := int64(0)
	if local, err := s.localDisconnect(req); err == nil {
		total += int64(local.Sessions)
	} else if status.Code(err) != codes.NotFound {
		return nil, err
	}
	unreachable := gather(ctx, s, "Disconnect", req, func() *gatewayv1.DisconnectResponse { return new(gatewayv1.DisconnectResponse) },
		func(_ string, r *gatewayv1.DisconnectResponse) { total += int64(max(r.Sessions, 0)) }, func(string) {})
	if total == 0 && len(unreachable) == 0 {
		return nil, status.Errorf(codes.NotFound, "no session of user %q", req.GetUserId())
	}
	return &gatewayv1.DisconnectResponse{Sessions: int32(min(total, 1<<31-1)), UnreachableNodes: unreachable}, nil
}

// localDisconnect ends this node's sessions.
func (s *Service) localDisconnect(req *gatewayv1.DisconnectRequest) (*gatewayv1.DisconnectResponse, error) {
	sessions, err := s.targets(req.GetClientId(), req.GetUserId())
	if err != nil {
		return nil, err
	}
	for _, ss := range sessions {
		s.cfg.Logger.Info("session disconnected by the control API", "session", ss.ID(), "user", ss.User(), "reason", req.GetReason())
		ss.Disconnect()
	}
	return &gatewayv1.DisconnectResponse{Sessions: int32(len(sessions))}, nil
}

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// page returns the slice of sorted keys after token, and the next token.
func page(keys []string, size int32, token string) ([]string, string, error) {
	n := int(size)
	switch {
	case n < 0:
		return nil, "", status.Error(codes.InvalidArgument, "page_size must be >= 0")
	case n == 0:
		n = defaultPageSize
	case n > maxPageSize:
		n = maxPageSize
	}
	start := 0
	if token != "" {
		after, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return nil, "", status.Error(codes.InvalidArgument, "bad page_token")
		}
		start, _ = slices.BinarySearch(keys, string(after))
		if start < len(keys) && keys[start] == string(after) {
			start++
		}
	}
	end := min(start+n, len(keys))
	next := ""
	if end < len(keys) {
		next = base64.RawURLEncoding.EncodeToString([]byte(keys[end-1]))
	}
	return keys[start:end], next, nil
}

// ListChannels lists channels, optionally those matching a pattern; on a
// clustered node, every node's.
func (s *Service) ListChannels(ctx context.Context, req *gatewayv1.ListChannelsRequest) (*gatewayv1.ListChannelsResponse, error) {
	local, err := s.localChannels(req)
	if err != nil || s.cfg.Cluster == nil {
		return local, err
	}
	return s.clusterChannels(ctx, req, local), nil
}

// localChannels lists this node's channels.
func (s *Service) localChannels(req *gatewayv1.ListChannelsRequest) (*gatewayv1.ListChannelsResponse, error) {
	pattern := req.GetPattern()
	if pattern != "" {
		p, _, ok := bayeux.ParseChannel(pattern)
		if !ok {
			return nil, status.Errorf(codes.InvalidArgument, "pattern %q is not a channel or pattern", pattern)
		}
		pattern = p
	}
	counts := map[string]int{}
	var names []string
	for _, c := range s.e.Channels() {
		if pattern == "" || c.Name == pattern || bayeux.Match(pattern, c.Name) {
			counts[c.Name] = c.Subscribers
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	names, next, err := page(names, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &gatewayv1.ListChannelsResponse{NextPageToken: next}
	for _, n := range names {
		resp.Channels = append(resp.Channels, &gatewayv1.Channel{Name: n, Subscribers: int32(counts[n])})
	}
	return resp, nil
}

// ListSessions lists sessions, optionally one user's; on a clustered
// node, every node's.
func (s *Service) ListSessions(ctx context.Context, req *gatewayv1.ListSessionsRequest) (*gatewayv1.ListSessionsResponse, error) {
	local, err := s.localSessions(req)
	if err != nil || s.cfg.Cluster == nil {
		return local, err
	}
	return s.clusterSessions(ctx, req, local), nil
}

// localSessions lists this node's sessions.
func (s *Service) localSessions(req *gatewayv1.ListSessionsRequest) (*gatewayv1.ListSessionsResponse, error) {
	var list []*engine.Session
	if u := req.GetUserId(); u != "" {
		list = s.e.UserSessions(u)
	} else {
		list = s.e.Sessions()
	}
	byID := make(map[string]*engine.Session, len(list))
	ids := make([]string, 0, len(list))
	for _, ss := range list {
		byID[ss.ID()] = ss
		ids = append(ids, ss.ID())
	}
	slices.Sort(ids)
	ids, next, err := page(ids, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &gatewayv1.ListSessionsResponse{NextPageToken: next}
	for _, id := range ids {
		d := describe(byID[id])
		d.Node = s.nodeName()
		resp.Sessions = append(resp.Sessions, d)
	}
	return resp, nil
}

// GetSession describes one session; on a clustered node, asks the node
// owning it.
func (s *Service) GetSession(ctx context.Context, req *gatewayv1.GetSessionRequest) (*gatewayv1.Session, error) {
	if owner := s.owner(req.GetClientId()); owner != "" {
		resp := new(gatewayv1.Session)
		if err := s.ask(ctx, owner, "GetSession", req.GetClientId(), req, resp); err != nil {
			return nil, err
		}
		return resp, nil
	}
	return s.localSession(req.GetClientId())
}

// localSession describes one of this node's sessions.
func (s *Service) localSession(id string) (*gatewayv1.Session, error) {
	ss := s.e.Session(id)
	if ss == nil {
		return nil, status.Errorf(codes.NotFound, "no session %q", id)
	}
	d := describe(ss)
	d.Node = s.nodeName()
	return d, nil
}

func describe(ss *engine.Session) *gatewayv1.Session {
	subs := ss.Subscriptions()
	slices.Sort(subs)
	return &gatewayv1.Session{
		ClientId:      ss.ID(),
		UserId:        ss.User(),
		Transport:     ss.Transport(),
		State:         ss.State().String(),
		Subscriptions: subs,
		QueueDepth:    int32(ss.QueueLen()),
		RemoteAddr:    ss.RemoteAddr(),
		Created:       timestamppb.New(ss.Created()),
		AgeSeconds:    time.Since(ss.Created()).Seconds(),
	}
}

// Reload reloads the node's configuration file. A refused one (invalid,
// or no file) is FAILED_PRECONDITION with the errors, one per line; the
// running configuration is then kept.
func (s *Service) Reload(ctx context.Context, _ *gatewayv1.ReloadRequest) (*gatewayv1.ReloadResponse, error) {
	if s.cfg.Reload == nil {
		return nil, status.Error(codes.Unimplemented, "reload is not available on this node")
	}
	applied, restart, err := s.cfg.Reload(ctx)
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &gatewayv1.ReloadResponse{Applied: applied, NeedsRestart: restart}, nil
}

// TLSNames is the on-demand TLS allowlist (see acme.Manager).
type TLSNames interface {
	AllowName(name string) error
	DisallowName(name string)
	Allowed() []string
}

// tlsNames returns the allowlist, or the error to answer without one.
func (s *Service) tlsNames() (TLSNames, error) {
	if s.cfg.TLSNames != nil {
		if n := s.cfg.TLSNames(); n != nil {
			return n, nil
		}
	}
	return nil, status.Error(codes.FailedPrecondition, "on-demand TLS is not enabled on this node (tls.mode auto with tls.acme.onDemand.enabled)")
}

// ListTLSNames lists the on-demand TLS allowlist.
func (s *Service) ListTLSNames(context.Context, *gatewayv1.ListTLSNamesRequest) (*gatewayv1.ListTLSNamesResponse, error) {
	n, err := s.tlsNames()
	if err != nil {
		return nil, err
	}
	return &gatewayv1.ListTLSNamesResponse{Names: n.Allowed()}, nil
}

// AllowTLSName adds a name or pattern to the on-demand TLS allowlist.
func (s *Service) AllowTLSName(_ context.Context, r *gatewayv1.AllowTLSNameRequest) (*gatewayv1.ListTLSNamesResponse, error) {
	n, err := s.tlsNames()
	if err != nil {
		return nil, err
	}
	if err := n.AllowName(r.GetName()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	s.cfg.Logger.Info("on-demand TLS name allowed", "name", r.GetName())
	return &gatewayv1.ListTLSNamesResponse{Names: n.Allowed()}, nil
}

// DisallowTLSName removes a name or pattern from the on-demand TLS
// allowlist.
func (s *Service) DisallowTLSName(_ context.Context, r *gatewayv1.DisallowTLSNameRequest) (*gatewayv1.ListTLSNamesResponse, error) {
	n, err := s.tlsNames()
	if err != nil {
		return nil, err
	}
	n.DisallowName(r.GetName())
	s.cfg.Logger.Info("on-demand TLS name disallowed", "name", r.GetName())
	return &gatewayv1.ListTLSNamesResponse{Names: n.Allowed()}, nil
}

// Stats returns the node's counters; on a clustered node, their sums over
// every node, and each node's.
func (s *Service) Stats(ctx context.Context, _ *gatewayv1.StatsRequest) (*gatewayv1.StatsResponse, error) {
	local := s.localStats()
	if s.cfg.Cluster == nil {
		return local, nil
	}
	return s.clusterStats(ctx, local), nil
}

// localStats returns this node's counters.
func (s *Service) localStats() *gatewayv1.StatsResponse {
	st := s.e.Stats()
	return &gatewayv1.StatsResponse{
		Sessions:             int64(s.e.SessionCount()),
		Channels:             int64(len(s.e.Channels())),
		WebsocketConnections: int64(s.cfg.Conns()),
		Handshakes:           st.Handshakes.Load(),
		Published:            st.Published.Load(),
		Delivered:            st.Delivered.Load(),
		DroppedSlow:          st.Dropped.Load(),
		Expired:              st.Expired.Load(),
		UptimeSeconds:        time.Since(s.started).Seconds(),
		LongPollAnswer:       latencySummary(s.cfg.LongPollAnswers),
	}
}

func latencySummary(f func() metrics.LatencySummary) *gatewayv1.LatencySummary {
	if f == nil {
		return &gatewayv1.LatencySummary{}
	}
	l := f()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	out := &gatewayv1.LatencySummary{Count: l.Count, P50Ms: ms(l.P50), P90Ms: ms(l.P90), P99Ms: ms(l.P99), MaxMs: ms(l.Max)}
	for _, b := range l.Buckets {
		out.Buckets = append(out.Buckets, &gatewayv1.LatencyBucket{UpperMs: ms(b.Upper), Count: b.Count})
	}
	return out
}

// grpcError maps engine and Bayeux errors to gRPC statuses.
func grpcError(err error) error {
	if errors.Is(err, engine.ErrInvalidChannel) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if errors.Is(err, engine.ErrClosing) {
		return status.Error(codes.Unavailable, "gateway shutting down")
	}
	var be *bayeux.Error
	if !errors.As(err, &be) {
		return status.Error(codes.Internal, err.Error())
	}
	code := codes.Internal
	switch be.Code {
	case 400, 405:
		code = codes.InvalidArgument
	case 401:
		code = codes.Unauthenticated
	case 403:
		code = codes.PermissionDenied
	case 404:
		code = codes.FailedPrecondition // vetoed by a handler
	case 429:
		code = codes.ResourceExhausted
	case 503:
		code = codes.Unavailable
	case 504:
		code = codes.DeadlineExceeded
	}
	return status.Error(code, be.Error())
}
