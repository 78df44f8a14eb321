package gateway_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/cometgate/cometgate/gateway/gatewaytest"
)

// #20: a handshake whose supportedConnectionTypes shares nothing with the
// server's fails, as the Bayeux spec requires ("MUST"), with no clientId
// and no cookie. Deliberate deviation: CometD accepts it; Faye refuses it
// with 301, as here (the error tag is CometD-style). A missing list (Dojo
// 1.7) and Faye's lists still succeed.
func TestHandshakeConnectionTypes(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	faye := []string{"websocket", "eventsource", "long-polling", "cross-origin-long-polling", "callback-polling", "in-process"}
	tests := []struct {
		name   string
		fields M
		ok     bool
	}{
		{name: "no common type", fields: M{"supportedConnectionTypes": []string{"carrier-pigeon"}}},
		{name: "empty list", fields: M{"supportedConnectionTypes": []string{}}},
		{name: "only Faye's unsupported types", fields: M{"supportedConnectionTypes": []string{"eventsource", "in-process"}}},
		{name: "one common type among others", fields: M{"supportedConnectionTypes": []string{"carrier-pigeon", "callback-polling"}}, ok: true},
		{name: "missing list (Dojo 1.7)", fields: M{"supportedConnectionTypes": nil}, ok: true},
		{name: "null list", fields: M{"supportedConnectionTypes": json.RawMessage("null")}, ok: true},
		{name: "Faye's list", fields: M{"supportedConnectionTypes": faye}, ok: true},
		{name: "Faye's cross-origin-long-polling alone", fields: M{"supportedConnectionTypes": []string{"cross-origin-long-polling"}}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, srv)
			fields := M{"version": "1.0"}
			for k, v := range tt.fields {
				fields[k] = v
			}
			msgs, resp, err := c.Send(c.ctx, c.NewMessage("/meta/handshake", fields))
			if err != nil {
				t.Fatal(err)
			}
			r, found := gatewaytest.FindReply(msgs, "/meta/handshake", "")
			if !found {
				t.Fatalf("no handshake reply in %v", msgs)
			}
			if tt.ok {
				wantSuccess(t, r)
				want := []any{"websocket", "long-polling", "callback-polling"}
				if !reflect.DeepEqual(r["supportedConnectionTypes"], want) {
					t.Errorf("supportedConnectionTypes = %v; want the server's %v", r["supportedConnectionTypes"], want)
				}
				return
			}
			wantFailure(t, r, "301::connection_types_unsupported")
			if got := r.Obj("advice").Str("reconnect"); got != "none" {
				t.Errorf("advice.reconnect = %q; want none (the same handshake cannot succeed)", got)
			}
			if r.Has("clientId") {
				t.Errorf("failed handshake reply carries clientId: %v", r)
			}
			if got := setCookies(resp, "BAYEUX_BROWSER"); len(got) != 0 {
				t.Errorf("failed handshake set cookie %v", got)
			}
		})
	}
}

// A websocket handshake offering no type the server has fails the same
// way, and the connection stays usable for a handshake that does.
func TestHandshakeConnectionTypesWebSocket(t *testing.T) {
	t.Parallel()
	srv := newServer(t, longT, nil)
	ws, _, err := gatewaytest.DialWebSocket(gatewaytest.Context(t), srv.WSURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	r, _, err := ws.Handshake(prompt, M{"supportedConnectionTypes": []string{"carrier-pigeon"}})
	if err != nil {
		t.Fatal(err)
	}
	wantFailure(t, r, "301::connection_types_unsupported")
	if r.Has("clientId") || ws.ClientID != "" {
		t.Fatalf("failed handshake gave a clientId: %v", r)
	}
	if n := srv.Engine().SessionCount(); n != 0 {
		t.Errorf("SessionCount() = %d after a refused handshake; want 0", n)
	}
	r, _, err = ws.Handshake(prompt, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantSuccess(t, r)
}
