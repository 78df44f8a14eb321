package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
)

// recordingPolicy allows everything but what deny names (an operation
// "handshake", or a channel), and records what it was asked.
type recordingPolicy struct {
	name  string
	deny  string
	asked *[]string
}

func (p recordingPolicy) check(what string) error {
	*p.asked = append(*p.asked, p.name+":"+what)
	if what == p.deny {
		return &bayeux.Error{Code: 403, Args: p.name, Message: "denied"}
	}
	return nil
}

func (p recordingPolicy) CanHandshake(context.Context, *engine.Session, *bayeux.Message) error {
	return p.check("handshake")
}

func (p recordingPolicy) CanCreate(_ context.Context, _ *engine.Session, ch string, _ *bayeux.Message) error {
	return p.check("create " + ch)
}

func (p recordingPolicy) CanSubscribe(_ context.Context, _ *engine.Session, ch string, _ *bayeux.Message) error {
	return p.check(ch)
}

func (p recordingPolicy) CanPublish(_ context.Context, _ *engine.Session, ch string, _ *bayeux.Message) error {
	return p.check(ch)
}

// Policies added with WithPolicy compose: each is asked in the order
// added, every one must allow, and the first denial is the one sent.
func TestPoliciesCompose(t *testing.T) {
	tests := []struct {
		name      string
		denyA     string
		denyB     string
		channel   string // subscribed, or "" for the handshake alone
		wantErr   string
		wantAsked string
	}{
		{name: "both allow", channel: "/x", wantAsked: "a:handshake b:handshake a:create /x b:create /x a:/x b:/x"},
		{name: "first denies the handshake", denyA: "handshake", wantErr: "403:a:denied", wantAsked: "a:handshake"},
		{name: "second denies the handshake", denyB: "handshake", wantErr: "403:b:denied", wantAsked: "a:handshake b:handshake"},
		{name: "second denies a subscribe", denyB: "/x", channel: "/x", wantErr: "403:b:denied", wantAsked: "a:handshake b:handshake a:create /x b:create /x a:/x b:/x"},
		{name: "first denies a subscribe", denyA: "/x", channel: "/x", wantErr: "403:a:denied", wantAsked: "a:handshake b:handshake a:create /x b:create /x a:/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked []string
			e := newEngine(t, engine.Config{},
				engine.WithPolicy(recordingPolicy{name: "a", deny: tt.denyA, asked: &asked}),
				engine.WithPolicy(recordingPolicy{name: "b", deny: tt.denyB, asked: &asked}))
			c := lpClient("A")
			r, b := send(t, e, c, `[{"channel":"/meta/handshake","version":"1.0"}]`)
			b.End()
			last := r[0]
			if last.Successful && tt.channel != "" {
				r, b = send(t, e, c, `[{"channel":"/meta/subscribe","clientId":"`+r[0].ClientID+`","subscription":"`+tt.channel+`"}]`)
				b.End()
				last = r[0]
			}
			if got := last.Error; got != tt.wantErr {
				t.Errorf("error = %q; want %q", got, tt.wantErr)
			}
			if got := strings.Join(asked, " "); got != tt.wantAsked {
				t.Errorf("policies asked %q; want %q", got, tt.wantAsked)
			}
		})
	}
}

// A policy that allows everything cannot open meta channels: the
// protocol's rule (DefaultPolicy) is always asked first.
func TestPolicyCannotAllowMetaChannels(t *testing.T) {
	var asked []string
	e := newEngine(t, engine.Config{}, engine.WithPolicy(recordingPolicy{name: "open", asked: &asked}))
	c := lpClient("A")
	r, b := send(t, e, c, `[{"channel":"/meta/handshake","version":"1.0"}]`)
	b.End()
	id := r[0].ClientID
	for _, msg := range []string{
		`[{"channel":"/meta/subscribe","clientId":"` + id + `","subscription":"/meta/custom"}]`,
		`[{"channel":"/meta/custom","clientId":"` + id + `","data":1}]`,
	} {
		r, b := send(t, e, c, msg)
		b.End()
		if r[0].Successful || !strings.HasPrefix(r[0].Error, "403:") {
			t.Errorf("%s: %+v; want a 403 denial", msg, r[0])
		}
	}
}
