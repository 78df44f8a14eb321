package engine

import (
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
