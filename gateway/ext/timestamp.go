package ext

import (
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
)

// TimestampLayout is the format of the timestamp extension's field, as
// CometD's server writes it (Java's "EEE MMM dd HH:mm:ss zzz yyyy"), in
// UTC: "Fri Mar 01 09:59:05 UTC 2024".
const TimestampLayout = "Mon Jan 02 15:04:05 MST 2006"

// Timestamp is the server side of the "timestamp" extension: every message
// the server sends, replies and events alike, carries a top-level
// "timestamp" field with the time it was sent. A broadcast is stamped once,
// when it is encoded for all its subscribers. Clients may stamp their own
// messages (CometD's JavaScript extension writes toUTCString()); those are
// accepted as they are.
type Timestamp struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

var (
	_ engine.Extension = (*Timestamp)(nil)
	_ engine.Sender    = (*Timestamp)(nil)
)

// Incoming accepts every message.
func (t *Timestamp) Incoming(*engine.Exchange) error { return nil }

// Outgoing stamps a reply.
func (t *Timestamp) Outgoing(x *engine.Exchange) { t.Send(x.Reply) }

// Send stamps a message the server sends on its own.
func (t *Timestamp) Send(m *bayeux.Message) {
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	m.Timestamp = now().UTC().Format(TimestampLayout)
}
