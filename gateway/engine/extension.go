package engine

import (
	"encoding/json"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
)

// Extension is a server-side Bayeux extension (CometD's
// BayeuxServer.Extension). Extensions see every message a client sends and
// every reply before it is encoded; they run in the order configured.
// Extensions must not keep x after returning.
type Extension interface {
	// Incoming is called for each message received, before it is handled.
	// Returning an error rejects the message: a *bayeux.Error is sent as
	// is, any other error as 404::message_deleted.
	Incoming(x *Exchange) error
	// Outgoing is called for each reply, after it is final and before it
	// is encoded; it may add x.Reply.ExtFields.
	Outgoing(x *Exchange)
}

// Sender is implemented by an Extension that also sees the messages the
// server sends on its own: broadcasts and Session.Deliver. Send is called
// once per message, before it is encoded, and what it changes every
// recipient gets (a broadcast is encoded once for all its subscribers).
type Sender interface {
	Send(m *bayeux.Message)
}

// ExtKeeper is implemented by an Extension whose Outgoing reads the
// request's ext in the reply to a /meta/connect. A connect held for a push
// transport keeps of its request only what the reply needs: the channel,
// the id, and an ext made of the fields that the extensions' KeepExt
// return, so that an idle session does not retain what its client sent
// (see Session.ParkPush). An Extension that is not an ExtKeeper finds no
// ext in the request of a held connect's reply.
type ExtKeeper interface {
	// KeepExt returns the field of the request's ext that Outgoing will
	// need, or false for none. The value must be small and must not share
	// memory with ext.
	KeepExt(ext json.RawMessage) (bayeux.ExtField, bool)
}

// keptExt returns the ext object a held connect keeps of request ext: the
// fields the ExtKeepers keep, or nil.
func (e *Engine) keptExt(ext json.RawMessage) json.RawMessage {
	if len(ext) == 0 {
		return nil
	}
	var out []byte
	for _, k := range e.keepers {
		f, ok := k.KeepExt(ext)
		if !ok {
			continue
		}
		key, err := json.Marshal(f.Key)
		if err != nil || !json.Valid(f.Value) {
			continue
		}
		if out == nil {
			out = append(out, '{')
		} else {
			out = append(out, ',')
		}
		out = append(append(append(out, key...), ':'), f.Value...)
	}
	if out == nil {
		return nil
	}
	return append(out, '}')
}

// Exchange is one request message and its reply.
type Exchange struct {
	Request  *bayeux.Message
	Reply    *bayeux.Message
	Session  *Session  // nil until the session is known
	Client   *Client   // the transport side
	Received time.Time // when the request was decoded
	// Hold, for a /meta/connect, is how long the transport may hold it
	// before replying; 0 means reply now.
	Hold time.Duration
	// AnswerFollows is set by a publish handler that will soon Deliver an
	// answer to this publish (a remote call). A push transport may then
	// hold the publish reply for a moment, so that both travel in one
	// write; it must not hold it longer than it holds broadcasts.
	AnswerFollows bool
}

// IsConnect reports whether x is a /meta/connect exchange.
func (x *Exchange) IsConnect() bool { return x.Request.Channel == bayeux.MetaConnect }

// IsHandshake reports whether x is a /meta/handshake exchange.
func (x *Exchange) IsHandshake() bool { return x.Request.Channel == bayeux.MetaHandshake }

// send runs the Senders on a server message about to be encoded.
func (e *Engine) send(m *bayeux.Message) {
	for _, s := range e.senders {
		s.Send(m)
	}
}

func (e *Engine) outgoing(x *Exchange) {
	for _, ext := range e.extensions {
		ext.Outgoing(x)
	}
}
