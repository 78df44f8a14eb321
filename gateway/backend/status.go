package backend

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
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

// publicMessages replaces the status message of the codes whose text is
// written by gRPC itself or by a backend's internals rather than by its
// application: dial errors with addresses ("connection error: desc =
// transport: Error while dialing: dial tcp 10.0.0.5:9090: connect:
// connection refused"), a Go error returned as is (Unknown), decoding
// failures. Clients get the short text; the detail goes to the log. Other
// codes (NotFound, InvalidArgument, PermissionDenied...) carry the
// backend's message to its client, as the contract promises.
var publicMessages = map[codes.Code]string{
	codes.Canceled:         "canceled",
	codes.Unknown:          "backend error",
	codes.DeadlineExceeded: "deadline exceeded",
	codes.Unimplemented:    "not implemented",
	codes.Internal:         "backend error",
	codes.Unavailable:      "backend unavailable",
	codes.DataLoss:         "backend error",
}

// publicStatus is a status the gateway wrote for clients, whose message is
// therefore shown as is ("no reply within 5s").
type publicStatus struct{ st *status.Status }

func (e *publicStatus) Error() string              { return e.st.Err().Error() }
func (e *publicStatus) GRPCStatus() *status.Status { return e.st }

// errShuttingDown answers calls made while the gateway shuts down.
var errShuttingDown = &publicStatus{status.New(codes.Unavailable, "gateway shutting down")}

// clientStatus returns the code of err and the message its client may see.
func clientStatus(err error) (codes.Code, string) {
	st := status.Convert(err)
	var ps *publicStatus
	if errors.As(err, &ps) {
		return st.Code(), oneLine(st.Message())
	}
	if m, ok := publicMessages[st.Code()]; ok {
		return st.Code(), m
	}
	return st.Code(), oneLine(st.Message())
}

// ErrorFromStatus turns a gRPC error into the Bayeux error a client sees:
// "<http-like code>:<gRPC code name>:<message>", e.g.
// "404:NotFound:no such room" or "503:Unavailable:backend unavailable". The
// message is the backend's, except for codes whose text may reveal
// internal detail (see publicMessages), which get a fixed one. It is the
// only such mapping in the gateway.
func ErrorFromStatus(err error) *bayeux.Error {
	c, msg := clientStatus(err)
	code, ok := httpCodes[c]
	if !ok {
		code = 500
	}
	return &bayeux.Error{Code: code, Args: c.String(), Message: msg}
}

// serverFault reports failures that say something is wrong with a backend
// or the way to it, rather than with the request: worth a warning.
func serverFault(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		return he.status == 0 || he.status >= 500
	}
	switch status.Code(err) {
	case codes.Unknown, codes.DeadlineExceeded, codes.Unimplemented, codes.Internal, codes.Unavailable, codes.DataLoss:
		return true
	}
	return false
}

// failureWarnEvery spaces the warnings about one backend's failures; the
// failures in between are logged at debug level.
const failureWarnEvery = 10 * time.Second

// logFailure logs a failed request to b with its whole detail (which its
// client does not see): as a warning for a server fault if b has not
// warned within failureWarnEvery, with the number of faults since the
// previous warning; otherwise at debug level.
func (b *backendConn) logFailure(ctx context.Context, log *slog.Logger, msg string, err error, args ...any) {
	args = append(args, "backend", b.name, "err", err)
	if serverFault(err) {
		now := time.Now().UnixNano()
		last := b.lastWarn.Load()
		if now-last >= int64(failureWarnEvery) && b.lastWarn.CompareAndSwap(last, now) {
			log.WarnContext(ctx, msg, append(args, "faultsSinceLastWarning", b.faults.Swap(0))...)
			return
		}
		b.faults.Add(1)
	}
	log.DebugContext(ctx, msg, args...)
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
		return &publicStatus{status.Newf(codes.DeadlineExceeded, "no reply within %v", d)}
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
	code, msg := clientStatus(err)
	b, _ := json.Marshal(map[string]any{"code": code.String(), "grpcCode": int(code), "message": msg})
	return b
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
