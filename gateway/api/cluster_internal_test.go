package api

import (
	"errors"
	"testing"

	gatewayv1 "github.com/cometgate/cometgate/proto/gen/cometgate/gateway/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestPeerReplies: replies between nodes round-trip, and malformed ones
// (empty, unknown code, bad UTF-8 message, bad protobuf) are refused.
func TestPeerReplies(t *testing.T) {
	var got gatewayv1.DeliverResponse
	if err := decodeReply(encodeReply(&gatewayv1.DeliverResponse{Sessions: 3}, nil), &got); err != nil || got.Sessions != 3 {
		t.Errorf("decodeReply(ok) = %v, %v; want 3 sessions", &got, err)
	}
	err := decodeReply(encodeReply(nil, status.Error(codes.NotFound, "no session")), &got)
	if status.Code(err) != codes.NotFound || status.Convert(err).Message() != "no session" {
		t.Errorf("decodeReply(not found) = %v; want NotFound", err)
	}
	for name, b := range map[string][]byte{
		"empty":        nil,
		"unknown code": {200},
		"bad UTF-8":    {byte(codes.NotFound), 0xff},
		"bad protobuf": {byte(codes.OK), 0xff, 0xff},
	} {
		if err := decodeReply(b, &got); !errors.Is(err, errBadPeerReply) {
			t.Errorf("%s: decodeReply(%x) = %v; want errBadPeerReply", name, b, err)
		}
	}
}
