package api_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/cometgate/cometgate/gateway"
	gatewayv1 "github.com/cometgate/cometgate/proto/gen/cometgate/gateway/v1"
)

// TestExactData checks that message data reaches a websocket subscriber
// byte for byte as the API caller sent it: over REST in the body's "data"
// (which would otherwise go through google.protobuf.Value's float64),
// over gRPC in data_json; for Publish and Deliver.
func TestExactData(t *testing.T) {
	const exact = `{"id":9007199254740993,"f":1.0000000000000001,"s":"\u00e9"}`
	const array = `[100000000000000000000000000001,-0,1E+2,"\ud83d\ude00"]`
	bothAPIs(t, nil, func(t *testing.T, ctx context.Context, srv *gateway.Server, c apiConn) {
		ws := newWS(t, ctx, srv)
		ws.subscribe(t, ctx, "/exact")

		var want []string
		if c.rest {
			rc := newREST("http://"+apiAddr(t, srv), nil, "")
			post := func(path, body string) {
				t.Helper()
				code, _, b, err := rc.do(ctx, http.MethodPost, path, []byte(body))
				if err != nil || code != http.StatusOK {
					t.Fatalf("POST %s %s: %d %s %v", path, body, code, b, err)
				}
			}
			post("/v1/publish", `{"channel":"/exact","data":`+exact+`}`)
			// Indented, data first: whitespace between tokens goes, the rest stays.
			post("/v1/publish", "{\n  \"data\": {\n    \"id\": 9007199254740993,\n    \"f\": 1.0000000000000001,\n    \"s\": \"\\u00e9\"\n  },\n  \"channel\": \"/exact\"\n}")
			post("/v1/publish", `{"channel":"/exact","ext":{"n":1},"data":`+array+`}`)
			post("/v1/clients/"+ws.id+":deliver", `{"channel":"/exact","data":`+exact+`}`)
			want = []string{exact, exact, array, exact}
		} else {
			if _, err := c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/exact", DataJson: []byte(exact)}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if _, err := c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/exact", DataJson: []byte(array)}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if _, err := c.Deliver(ctx, &gatewayv1.DeliverRequest{ClientId: ws.id, Channel: "/exact", DataJson: []byte(exact)}); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			want = []string{exact, array, exact}
		}
		for i, w := range want {
			if got := ws.receive(t, ctx, "/exact")["data"]; !bytes.Equal(got, []byte(w)) {
				t.Errorf("message %d over %s: data %s, want %s exactly", i, c.name, got, w)
			}
		}
	})
}
