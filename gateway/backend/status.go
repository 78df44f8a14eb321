package backend

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// httpCodes maps gRPC codes to the three-digit code of the Bayeux error,
// following the HTTP statuses grpc-gateway uses.
var httpCodes = map[codes.Code]int{
	codes.Canceled:           499,
	codes.Unknown:            500,
	codes.InvalidArgument:    400,
	codes.DeadlineExceeded:   504,
	codes.NotFound:           404,
	codes.AlreadyExists:      409,
	codes.PermissionDenied:   403,
	codes.ResourceExhausted:  429,
	codes.FailedPrecondition: 400,
	codes.Aborted:            409,
	codes.OutOfRange:         400,
	codes.Unimplemented:      501,
	codes.Internal:           500,
	codes.Unavailable:        503,
	codes.DataLoss:           500,
	codes.Unauthenticated:    401,
}

// ErrorFromStatus turns a gRPC error into the Bayeux error a client sees:
// "<http-like code>:<gRPC code name>:<status message>", e.g.
// "503:Unavailable:connection refused". It is the only such mapping in the
// gateway.
func ErrorFromStatus(err error) *bayeux.Error {
	st := status.Convert(err)
	code, ok := httpCodes[st.Code()]
	if !ok {
		code = 500
	}
	return &bayeux.Error{Code: code, Args: st.Code().String(), Message: oneLine(st.Message())}
}

// deadlineError gives a call that ran out of time one stable error naming
// its deadline d. gRPC reports such a call in several ways (its own
// deadline message, or a stream reset when the server noticed first), and
// clients should not see which of the two won the race. The clock decides,
// as in grpc-go: the context's timer may not have fired yet.
func deadlineError(ctx context.Context, err error, d time.Duration) error {
	if err == nil {
		return err
	}
	if dl, ok := ctx.Deadline(); !ok || time.Now().Before(dl) {
		return err
	}
	switch status.Code(err) {
	case codes.DeadlineExceeded, codes.Canceled:
		return status.Errorf(codes.DeadlineExceeded, "no reply within %v", d)
	}
	return err
}

// failureData is the data of a failed remote-call reply, so that clients
// can tell errors apart without parsing the error string.
func failureData(err error) json.RawMessage {
	var he *httpError
	if errors.As(err, &he) {
		b, _ := json.Marshal(map[string]any{"status": he.status, "message": he.message})
		return b
	}
	st := status.Convert(err)
	b, _ := json.Marshal(map[string]any{"code": st.Code().String(), "grpcCode": int(st.Code()), "message": st.Message()})
	return b
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
