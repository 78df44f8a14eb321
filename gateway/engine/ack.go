package engine

import (
	"bytes"
	"strconv"

	"github.com/cometgate/cometgate/gateway/bayeux"
)

// ackState is the server side of the acknowledged-delivery extension
// ("ack", as CometD's AcknowledgedMessagesExtension): every connect reply
// carries a batch id; the events in it are kept until the client's next
// connect acknowledges that batch, and are sent again if the client reports
// an older batch (the reply was lost). Guarded by the session's mu.
type ackState struct {
	batch   int64      // id of the last batch sent
	unacked []ackBatch // batches sent and not yet acknowledged, oldest first
}

type ackBatch struct {
	id     int64
	events [][]byte
}

// sent records the events going out with connect reply r under a new
// batch id, and stamps r with it.
func (a *ackState) sent(r *bayeux.Message, events [][]byte) {
	a.batch++
	if len(events) > 0 {
		a.unacked = append(a.unacked, ackBatch{id: a.batch, events: append([][]byte(nil), events...)})
	}
	r.ExtFields = append(r.ExtFields, bayeux.ExtField{Key: "ack", Value: strconv.AppendInt(nil, a.batch, 10)})
}

// acknowledge drops every batch up to id and returns the events of later
// batches, which the client never got; they must be sent again.
func (a *ackState) acknowledge(id int64) [][]byte {
	i := 0
	for i < len(a.unacked) && a.unacked[i].id <= id {
		i++
	}
	var lost [][]byte
	for _, b := range a.unacked[i:] {
		lost = append(lost, b.events...)
	}
	a.unacked = nil
	return lost
}

// ackRequested reports whether a handshake ext asks for acknowledgements:
// {"ack":true}.
func ackRequested(ext []byte) bool {
	v, ok := ExtValue(ext, "ack")
	return ok && bytes.Equal(v, []byte("true"))
}

// ackID returns the batch id a connect acknowledges: {"ack":N}.
func ackID(ext []byte) (int64, bool) {
	v, ok := ExtValue(ext, "ack")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(v), 64)
		if ferr != nil {
			return 0, false
		}
		n = int64(f)
	}
	return n, true
}
