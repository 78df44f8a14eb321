package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/gateway"
	gatewayv1 "github.com/cometgate/cometgate/proto/gen/cometgate/gateway/v1"
	"google.golang.org/grpc/codes"
)

// The control API refuses message data that is not UTF-8 with
// InvalidArgument (HTTP 400), for Publish and Deliver, over gRPC and REST;
// a subscriber gets only the valid message that follows.
func TestInvalidUTF8Data(t *testing.T) {
	bothAPIs(t, nil, func(t *testing.T, ctx context.Context, srv *gateway.Server, c apiConn) {
		lp := newLP(t, ctx, srv)
		lp.subscribe(t, ctx, "/news")
		for name, bad := range map[string]string{
			"raw bytes":            `{"t":"` + "\xff\xfe\xed\xa0\x80" + `"}`,
			"overlong":             `"` + "\xc0\xaf" + `"`,
			"lone surrogate bytes": `["` + "\xed\xa0\x80" + `"]`,
		} {
			_, err := c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/news", DataJson: []byte(bad)})
			c.wantErr(t, "Publish with data_json of "+name, err, codes.InvalidArgument, http.StatusBadRequest)
			if err != nil && !strings.Contains(err.Error(), "invalid UTF-8") {
				t.Errorf("Publish with data_json of %s over %s: %v; want the error to name invalid UTF-8", name, c.name, err)
			}
			_, err = c.Deliver(ctx, &gatewayv1.DeliverRequest{ClientId: lp.id, Channel: "/news", DataJson: []byte(bad)})
			c.wantErr(t, "Deliver with data_json of "+name, err, codes.InvalidArgument, http.StatusBadRequest)
		}
		if c.rest {
			// Raw bytes in the request's own JSON: protojson refuses them.
			rc := newREST("http://"+apiAddr(t, srv), nil, "")
			for _, body := range []string{
				`{"channel":"/news","data":{"t":"` + "\xff" + `"}}`,
				`{"channel":"/news","data":1,"ext":{"k":"` + "\xed\xa0\x80" + `"}}`,
			} {
				code, _, b, err := rc.do(ctx, http.MethodPost, "/v1/publish", []byte(body))
				if err != nil || code != http.StatusBadRequest {
					t.Errorf("REST publish %q: %d %s %v; want 400", body, code, b, err)
				}
			}
		}
		// An escaped lone surrogate is valid JSON, ASCII on the wire: it passes.
		if _, err := c.Publish(ctx, &gatewayv1.PublishRequest{Channel: "/news", DataJson: []byte(`{"ok":"\ud800"}`)}); err != nil {
			t.Fatalf("valid Publish over %s: %v", c.name, err)
		}
		checkEvent(t, "subscriber", lp.receive(t, ctx, "/news"), "/news", `{"ok":"\ud800"}`, "")
	})
}
