package engine_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
)

// keeper is an ExtKeeper keeping the ext field "keep".
type keeper struct{}

func (keeper) Incoming(*engine.Exchange) error { return nil }
func (keeper) Outgoing(*engine.Exchange)       {}

func (keeper) KeepExt(ext json.RawMessage) (bayeux.ExtField, bool) {
	v, ok := engine.ExtValue(ext, "keep")
	return bayeux.ExtField{Key: "keep", Value: v}, ok
}

// A connect held for a push transport keeps of its request's ext only
// what ExtKeeper extensions keep, never the rest.
func TestParkPushKeepsOnlyKeptExt(t *testing.T) {
	tests := []struct {
		name string
		opts []engine.Option
		want string // the held request's ext
	}{
		{name: "no keeper", want: ""},
		{name: "a keeper", opts: []engine.Option{engine.WithExtension(keeper{})}, want: `{"keep":{"n":1}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, engine.Config{}, tt.opts...)
			c := &engine.Client{Transport: "websocket", Push: true, Conn: nopConn{}}
			r, b := send(t, e, c, `[{"channel":"/meta/handshake","version":"1.0"}]`)
			b.End()
			id := r[0].ClientID
			_, b = send(t, e, c, `[{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"websocket"}]`)
			b.End()
			ext := `{"pad":"` + strings.Repeat("x", 200<<10) + `","keep":{"n":1}}`
			msgs, err := bayeux.Decode([]byte(`[{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"websocket","id":"7","ext":`+ext+`}]`), 0)
			if err != nil {
				t.Fatal(err)
			}
			b = e.Process(t.Context(), c, msgs)
			b.End()
			x := b.Exchanges[0]
			if x.Hold <= 0 {
				t.Fatalf("second connect not held: %s", x.Reply)
			}
			s := x.Session
			h := s.ParkPush(x)
			if !s.HoldExpired(h) {
				t.Fatal("HoldExpired = false for the held connect")
			}
			_, held := s.Pull(nil, 0, 0)
			if held == nil {
				t.Fatal("Pull returned no connect after the hold expired")
			}
			if got := string(held.Request.Ext); got != tt.want {
				t.Errorf("held request ext = %.80q (%d bytes); want %q", got, len(got), tt.want)
			}
			if held.Request.ID != "7" || held.Reply.ID != "7" {
				t.Errorf("held request id %q, reply id %q; want 7", held.Request.ID, held.Reply.ID)
			}
		})
	}
}
