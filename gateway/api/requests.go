package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// countUnary reports each gRPC call to Config.ObserveRequest, with its
// full method name and status code name.
func (s *Service) countUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	s.cfg.ObserveRequest("grpc", info.FullMethod, status.Code(err).String())
	return resp, err
}

// restRoute is where restPattern leaves the route a REST request matched.
type restRoute struct{ method string }

type restRouteKey struct{}

// restPattern is a REST mux middleware that names the route a request
// matched ("POST /v1/publish", its path pattern, never the path itself).
func restPattern(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if rr, ok := r.Context().Value(restRouteKey{}).(*restRoute); ok {
			if p, ok := runtime.HTTPPattern(r.Context()); ok {
				rr.method = r.Method + " " + p.String()
			}
		}
		next(w, r, params)
	}
}

// countREST reports each REST request to Config.ObserveRequest, with the
// route it matched ("other" if none: refused before routing, or unknown)
// and the HTTP status.
func (s *Service) countREST(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rr := &restRoute{method: "other"}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), restRouteKey{}, rr)))
		s.cfg.ObserveRequest("rest", rr.method, strconv.Itoa(sw.status))
	})
}

// statusWriter remembers the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Authorized reports whether r carries the API's credentials (a bearer
// token or a verified client certificate), or none are required: the
// server guards its /metrics endpoint on the API listener with it.
func (s *Service) Authorized(r *http.Request) bool {
	return s.authorized(r.Header.Get("Authorization"), r.TLS)
}
