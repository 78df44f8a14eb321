package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// callInput is what a remote call keeps of the publish that started it.
type callInput struct {
	channel string
	id      string
	data    []byte
	ext     []byte
	md      metadata.MD
	caller  *backendv1.Caller
}

// startCall acknowledges the publish at once (as CometD does) and runs the
// call in the background; its answer is delivered to s alone. The caller
// has acquired rt's backend, which startCall releases when the call ends.
func (r *Router) startCall(ctx context.Context, rt *route, s *engine.Session, m *bayeux.Message) error {
	if r.ctx.Err() != nil {
		rt.b.release()
		return ErrorFromStatus(errShuttingDown)
	}
	if !r.acquireCall(s) {
		rt.b.release()
		r.counts.callsLimited.Add(1)
		return errTooManyCalls
	}
	in := callInput{
		channel: m.Channel, id: m.ID, data: m.Data, ext: m.Ext,
		md:     rt.b.metadata(s, m.Channel, engine.ClientFrom(ctx)),
		caller: caller(s),
	}
	if x := engine.ExchangeFrom(ctx); x != nil {
		x.AnswerFollows = true
	}
	r.wg.Add(1)
	r.callers.Go(func() {
		defer r.wg.Done()
		defer r.releaseCall(s)
		defer rt.b.release()
		data, err := r.call(rt, in)
		reply := &bayeux.Message{Channel: in.channel, ID: in.id, Reply: true, Successful: err == nil, Data: data}
		if err != nil {
			reply.Error = r.callError(rt, in, err).Error()
			reply.Data = failureData(err)
		}
		s.Deliver(reply)
	})
	return nil
}

// callError logs a failed call with its detail and returns the error its
// client sees, which has none.
func (r *Router) callError(rt *route, in callInput, err error) *bayeux.Error {
	rt.b.logFailure(r.ctx, r.log, "remote call failed", err, "channel", in.channel)
	var he *httpError
	if errors.As(err, &he) {
		return &bayeux.Error{Code: he.status, Args: "http", Message: oneLine(he.message)}
	}
	return ErrorFromStatus(err)
}

// caller identifies session s to a backend; nil for the server itself.
func caller(s *engine.Session) *backendv1.Caller {
	if s == nil {
		return nil
	}
	return &backendv1.Caller{ClientId: s.ID(), UserId: s.User(), Transport: s.Transport(), RemoteAddr: s.RemoteAddr()}
}

// call performs one remote call with its deadline, retrying unavailable
// backends on idempotent routes.
func (r *Router) call(rt *route, in callInput) (data []byte, err error) {
	defer rt.b.countCall(time.Now(), &err)
	if f := r.cfg.ObserveCall; f != nil {
		start := time.Now()
		defer func() { f(rt.pattern, rt.Backend, callCode(err), time.Since(start)) }()
	}
	d := timeout(rt, in.ext)
	ctx, cancel := context.WithTimeout(r.ctx, d)
	defer cancel()
	attempts := 1
	if rt.Idempotent {
		attempts = rt.b.spec.RetryAttempts
	}
	backoff := rt.b.spec.RetryBackoff
	for try := 1; ; try++ {
		data, err := r.callOnce(ctx, rt, in)
		rt.b.reached(ctx, r.log, err)
		if err == nil || try >= attempts || !retryable(err) {
			return data, deadlineError(ctx, err, d)
		}
		pause := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil, deadlineError(ctx, err, d)
		case <-time.After(pause):
		}
		backoff = min(2*backoff, rt.b.spec.RetryMaxBackoff)
	}
}

// callCode names the outcome of a call for metrics: "OK", a gRPC code
// name, or "HTTP 502" for an HTTP backend's status.
func callCode(err error) string {
	var he *httpError
	if errors.As(err, &he) {
		return "HTTP " + strconv.Itoa(he.status)
	}
	return status.Code(err).String()
}

func retryable(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		return he.status == 502 || he.status == 503 || he.status == 504 || he.status == 0
	}
	return status.Code(err) == codes.Unavailable
}

func (r *Router) callOnce(ctx context.Context, rt *route, in callInput) ([]byte, error) {
	switch {
	case rt.b.http != nil:
		return r.callHTTP(ctx, rt, in)
	case rt.method != nil:
		req, err := rt.method.request(in.data)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		resp := rt.method.response()
		if err := rt.b.grpc.Invoke(metadata.NewOutgoingContext(ctx, in.md), rt.method.fullName, req, resp); err != nil {
			return nil, err
		}
		out, err := marshalJSON.Marshal(resp)
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		return out, nil
	default:
		resp, err := rt.b.contract.Call(metadata.NewOutgoingContext(ctx, in.md), &backendv1.CallRequest{
			Channel: in.channel, Caller: in.caller, Data: in.data, Ext: in.ext, MessageId: in.id,
		})
		if err != nil {
			return nil, err
		}
		if len(resp.GetData()) == 0 {
			return []byte("null"), nil
		}
		if err := bayeux.ValidJSON(resp.GetData()); err != nil {
			return nil, status.Errorf(codes.Internal, "backend replied with data that is not JSON: %v", err)
		}
		return resp.GetData(), nil
	}
}

// msgUnavailable is the message of an HTTP call that reached no server.
const msgUnavailable = "backend unavailable"

// httpError is a failed HTTP backend call: a status >= 400, or 0 when the
// request itself failed. message is for the client; detail, for the log,
// may name addresses.
type httpError struct {
	status  int
	message string
	detail  string
}

func (e *httpError) Error() string {
	if e.detail != "" {
		return fmt.Sprintf("HTTP %d: %s: %s", e.status, e.message, e.detail)
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, e.message)
}

// callHTTP POSTs the message data to a legacy HTTP service and returns its
// JSON response.
func (r *Router) callHTTP(ctx context.Context, rt *route, in callInput) ([]byte, error) {
	body := in.data
	if len(body) == 0 {
		body = []byte("null")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rt.b.spec.URL, bytes.NewReader(body))
	if err != nil {
		return nil, &httpError{message: "bad request", detail: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	for k, vals := range in.md {
		for _, v := range vals {
			req.Header.Add(k, v)
		}
	}
	if in.id != "" {
		req.Header.Set("Cometgate-Message-Id", in.id)
	}
	resp, err := rt.b.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &httpError{status: 504, message: "deadline exceeded", detail: err.Error()}
		}
		return nil, &httpError{status: 502, message: msgUnavailable, detail: err.Error()}
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, int64(rt.b.spec.MaxMessageBytes)+1))
	if err != nil {
		return nil, &httpError{status: 502, message: "backend error", detail: err.Error()}
	}
	if len(out) > rt.b.spec.MaxMessageBytes {
		return nil, &httpError{status: 502, message: "response too large"}
	}
	if resp.StatusCode >= 400 {
		return nil, &httpError{status: resp.StatusCode, message: http.StatusText(resp.StatusCode)}
	}
	out = bytes.TrimSpace(out)
	if len(out) == 0 {
		return []byte("null"), nil
	}
	if err := bayeux.ValidJSON(out); err != nil {
		return nil, &httpError{status: 502, message: "response is not JSON: " + err.Error()}
	}
	return out, nil
}
