package engine

import (
	"context"
	"errors"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/plugins"
)

// Policy decides who may handshake, create channels, subscribe and publish.
// Each method returns nil to allow, or an error to deny: ErrDenied (or an
// error wrapping it) is sent as the operation's CometD error, e.g.
// "403:denied_by_security_policy:subscribe_denied"; a *bayeux.Error is sent
// as is; any other error is logged and treated as ErrDenied. Methods may
// block (to ask a backend) and must honour ctx. In CanHandshake, s is the
// new session, not yet registered; in the others s is nil for operations
// of the server itself (the control API), already authenticated.
type Policy interface {
	CanHandshake(ctx context.Context, s *Session, m *bayeux.Message) error
	CanCreate(ctx context.Context, s *Session, channel string, m *bayeux.Message) error
	CanSubscribe(ctx context.Context, s *Session, channel string, m *bayeux.Message) error
	CanPublish(ctx context.Context, s *Session, channel string, m *bayeux.Message) error
}

// DefaultPolicy is CometD's default: anyone may handshake; remote clients
// may create, subscribe and publish anywhere but on meta channels.
type DefaultPolicy struct{}

var _ Policy = DefaultPolicy{}

// CanHandshake allows every handshake.
func (DefaultPolicy) CanHandshake(context.Context, *Session, *bayeux.Message) error { return nil }

// CanCreate denies meta channels.
func (DefaultPolicy) CanCreate(_ context.Context, _ *Session, ch string, _ *bayeux.Message) error {
	if bayeux.KindOf(ch) == bayeux.KindMeta {
		return ErrDenied
	}
	return nil
}

// CanSubscribe denies meta channels.
func (DefaultPolicy) CanSubscribe(_ context.Context, _ *Session, ch string, _ *bayeux.Message) error {
	if bayeux.KindOf(ch) == bayeux.KindMeta {
		return ErrDenied
	}
	return nil
}

// CanPublish denies meta channels.
func (DefaultPolicy) CanPublish(_ context.Context, _ *Session, ch string, _ *bayeux.Message) error {
	if bayeux.KindOf(ch) == bayeux.KindMeta {
		return ErrDenied
	}
	return nil
}

// Policies is a Policy made of several: an operation is allowed only when
// every one of them allows it. They are asked in order, and the first
// denial ends the check and is the one returned, so a later policy sees
// only what the earlier ones allowed (in CanHandshake, for example, the
// user an earlier policy bound to the session). WithPolicy builds one.
type Policies []Policy

var _ Policy = Policies(nil)

// CanHandshake asks each policy in turn.
func (ps Policies) CanHandshake(ctx context.Context, s *Session, m *bayeux.Message) error {
	for _, p := range ps {
		if err := p.CanHandshake(ctx, s, m); err != nil {
			return err
		}
	}
	return nil
}

// CanCreate asks each policy in turn.
func (ps Policies) CanCreate(ctx context.Context, s *Session, ch string, m *bayeux.Message) error {
	for _, p := range ps {
		if err := p.CanCreate(ctx, s, ch, m); err != nil {
			return err
		}
	}
	return nil
}

// CanSubscribe asks each policy in turn.
func (ps Policies) CanSubscribe(ctx context.Context, s *Session, ch string, m *bayeux.Message) error {
	for _, p := range ps {
		if err := p.CanSubscribe(ctx, s, ch, m); err != nil {
			return err
		}
	}
	return nil
}

// CanPublish asks each policy in turn.
func (ps Policies) CanPublish(ctx context.Context, s *Session, ch string, m *bayeux.Message) error {
	for _, p := range ps {
		if err := p.CanPublish(ctx, s, ch, m); err != nil {
			return err
		}
	}
	return nil
}

// ErrDenied is returned by a Policy to deny with the operation's standard
// error. An error wrapping it that has a method DenyReason() string puts
// that reason in the error's middle part, as CometD's authorizers do
// ("403:reason:subscribe_denied").
var ErrDenied = errors.New("engine: denied by security policy")

// denial turns a policy error into the Bayeux error to send.
func (e *Engine) denial(err error, def *bayeux.Error, op string) *bayeux.Error {
	var be *bayeux.Error
	if errors.As(err, &be) {
		return be
	}
	var dr interface{ DenyReason() string }
	if errors.As(err, &dr) && errors.Is(err, ErrDenied) {
		if r := plugins.SafeReason(dr.DenyReason()); r != "" {
			return def.WithArgs(r) // e.g. 403:criminal_supporter:subscribe_denied
		}
	}
	if !errors.Is(err, ErrDenied) {
		e.log.Warn("policy error", "op", op, "err", err)
	}
	return def
}
