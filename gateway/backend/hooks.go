package backend

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// publishHook asks the backend whether a client's publish may proceed,
// and with which data.
func (r *Router) publishHook(ctx context.Context, rt *route, s *engine.Session, m *bayeux.Message) error {
	d := timeout(rt, m.Ext)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	md := rt.b.metadata(s, m.Channel, engine.ClientFrom(ctx))
	resp, err := rt.b.contract.Publish(metadata.NewOutgoingContext(ctx, md), &backendv1.PublishRequest{
		Channel: m.Channel, Caller: caller(s), Data: m.Data, Ext: m.Ext,
	})
	rt.b.reached(ctx, r.log, err)
	if err != nil {
		err = deadlineError(ctx, err, d)
		rt.b.logFailure(ctx, r.log, "publish hook failed", err, "channel", m.Channel)
		return ErrorFromStatus(err)
	}
	if reason := resp.GetRejectReason(); reason != "" {
		return &bayeux.Error{Code: 403, Args: argSafe(reason), Message: "publish_denied"}
	}
	if d := resp.GetData(); len(d) > 0 {
		if err := bayeux.ValidJSON(d); err != nil {
			err := status.Errorf(codes.Internal, "backend rewrote data to invalid JSON: %v", err)
			rt.b.logFailure(ctx, r.log, "publish hook failed", err, "channel", m.Channel)
			return ErrorFromStatus(err)
		}
		m.Data = d
	}
	return nil
}

// argSafe makes s usable as the args part of a Bayeux error, which ":" and
// "," delimit.
func argSafe(s string) string {
	return strings.NewReplacer(":", " ", ",", " ", "\n", " ").Replace(oneLine(s))
}

// Session attributes set by the auth hook.
const (
	attrPerms        = "cometgate.backend.perms"
	attrHandshakeExt = "cometgate.backend.handshakeExt"
)

type perms struct {
	subscribe, publish []string
}

// CanHandshake sends the handshake to the auth backend, if configured; an
// accepted client gets the returned user id and permissions.
func (r *Router) CanHandshake(ctx context.Context, s *engine.Session, m *bayeux.Message) error {
	g := r.cur.Load()
	auth := g.auth
	if auth == nil {
		return nil
	}
	if !auth.acquire() {
		// Replaced by a reload meanwhile: the new generation's.
		if g = r.cur.Load(); g.auth == nil {
			return nil
		}
		if auth = g.auth; !auth.acquire() {
			return &bayeux.Error{Code: 503, Message: "handshake_failed", Reconnect: bayeux.ReconnectHandshake}
		}
	}
	defer auth.release()
	ctx, cancel := context.WithTimeout(ctx, g.authWait)
	defer cancel()
	c := engine.ClientFrom(ctx)
	req := &backendv1.HandshakeRequest{ClientId: s.ID(), Ext: m.Ext}
	if c != nil {
		req.Transport, req.RemoteAddr = c.Transport, c.RemoteAddr
	}
	md := auth.metadata(nil, bayeux.MetaHandshake, c)
	resp, err := auth.contract.Handshake(metadata.NewOutgoingContext(ctx, md), req)
	err = deadlineError(ctx, err, g.authWait)
	auth.reached(ctx, r.log, err)
	if err != nil {
		st := status.Convert(err)
		switch st.Code() {
		case codes.Unauthenticated, codes.PermissionDenied:
			r.log.Debug("handshake denied by backend", "reason", st.Message())
			return &bayeux.Error{Code: 403, Args: argSafe(st.Message()), Message: "handshake_denied", Reconnect: bayeux.ReconnectNone}
		}
		auth.logFailure(ctx, r.log, "auth backend failed; handshake refused for now", err)
		be := ErrorFromStatus(err)
		return &bayeux.Error{Code: be.Code, Args: be.Args, Message: "handshake_failed", Reconnect: bayeux.ReconnectHandshake}
	}
	if u := resp.GetUserId(); u != "" {
		s.SetUser(u) // else keep what an authenticator plugin bound, if any
	}
	if len(resp.GetSubscribe())+len(resp.GetPublish()) > 0 {
		s.Set(attrPerms, &perms{subscribe: resp.GetSubscribe(), publish: resp.GetPublish()})
	}
	if ext := resp.GetExt(); len(ext) > 0 && bayeux.ValidJSON(ext) == nil {
		s.Set(attrHandshakeExt, json.RawMessage(ext))
	}
	return nil
}

// CanCreate allows: the engine's DefaultPolicy, always asked first, keeps
// clients off meta channels.
func (r *Router) CanCreate(context.Context, *engine.Session, string, *bayeux.Message) error {
	return nil
}

// CanSubscribe applies the session's subscribe permissions.
func (r *Router) CanSubscribe(_ context.Context, s *engine.Session, ch string, _ *bayeux.Message) error {
	if s == nil {
		return nil
	}
	if p, _ := s.Get(attrPerms).(*perms); p != nil && len(p.subscribe) > 0 && !covered(p.subscribe, ch) {
		return &bayeux.Error{Code: 403, Args: "not_permitted", Message: "subscribe_denied"}
	}
	return nil
}

// CanPublish applies the session's publish permissions.
func (r *Router) CanPublish(_ context.Context, s *engine.Session, ch string, _ *bayeux.Message) error {
	if s == nil {
		return nil
	}
	if p, _ := s.Get(attrPerms).(*perms); p != nil && len(p.publish) > 0 && !covered(p.publish, ch) {
		return &bayeux.Error{Code: 403, Args: "not_permitted", Message: "publish_denied"}
	}
	return nil
}

// covered reports whether channel ch (a name or pattern) is within one of
// the allowed patterns: a pattern only covers patterns no broader than
// itself.
func covered(allowed []string, ch string) bool {
	_, wild, _ := bayeux.ParseChannel(ch)
	for _, p := range allowed {
		if p == ch {
			return true
		}
		if wild == bayeux.NotWild {
			if bayeux.Match(p, ch) {
				return true
			}
			continue
		}
		// ch is a pattern: only a "**" pattern at or above its base covers it.
		if strings.HasSuffix(p, "/**") {
			base, pbase := ch[:strings.LastIndexByte(ch, '/')], p[:len(p)-3]
			if base == pbase || strings.HasPrefix(base, pbase+"/") {
				return true
			}
		}
	}
	return false
}

// Incoming accepts every message.
func (r *Router) Incoming(*engine.Exchange) error { return nil }

// Outgoing adds the auth backend's ext to a successful handshake reply.
func (r *Router) Outgoing(x *engine.Exchange) {
	if !x.IsHandshake() || x.Session == nil || !x.Reply.Successful {
		return
	}
	ext, _ := x.Session.Get(attrHandshakeExt).(json.RawMessage)
	if len(ext) == 0 {
		return
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(ext, &fields) != nil {
		return
	}
	for k, v := range fields {
		x.Reply.ExtFields = append(x.Reply.ExtFields, bayeux.ExtField{Key: k, Value: v})
	}
}
