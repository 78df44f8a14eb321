package api

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc/codes"
)

// preflightMaxAge is how long, in seconds, a browser may cache the answer
// to a CORS preflight.
const preflightMaxAge = "600"

// Refused counts REST requests refused by the browser checks (see
// Service.Refused), by reason.
type Refused struct {
	// Host counts requests whose Host header names no allowed host (DNS
	// rebinding).
	Host int64
	// Origin counts requests, preflights included, whose Origin header is
	// not in Config.AllowedOrigins.
	Origin int64
	// ContentType counts POST, PUT, PATCH and DELETE requests not declared
	// application/json.
	ContentType int64
}

// refusals holds the counters behind Refused.
type refusals struct {
	host, origin, contentType atomic.Int64
}

// Refused returns how many REST requests the browser checks have refused
// since the Service was created. It may be called concurrently.
func (s *Service) Refused() Refused {
	return Refused{
		Host:        s.refused.host.Load(),
		Origin:      s.refused.origin.Load(),
		ContentType: s.refused.contentType.Load(),
	}
}

// allowedHostNames lists the host names, besides IP addresses and
// "localhost", that a REST request's Host header may carry: the listen
// address's host and cfg.AllowedHosts, lowercased and without a final dot.
func allowedHostNames(cfg Config) []string {
	var names []string
	if h, _, err := net.SplitHostPort(cfg.Listen); err == nil && h != "" {
		names = append(names, h)
	}
	names = append(names, cfg.AllowedHosts...)
	for i, n := range names {
		names[i] = strings.ToLower(strings.TrimSuffix(n, "."))
	}
	return names
}

// hostAllowed reports whether a Host header value (host or host:port) may
// reach the API. The port is not checked: the connection has already
// reached this listener, and what DNS rebinding changes is the name. IP
// addresses cannot be rebound, and "localhost" is resolved by browsers and
// hosts without DNS; anything else must be listed.
func (s *Service) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), ".")
	if host == "" {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = strings.ToLower(host)
	if host == "localhost" {
		return true
	}
	for _, n := range s.hosts {
		if n == host {
			return true
		}
	}
	return false
}

// allowOrigin returns the Access-Control-Allow-Origin value for an Origin
// header value, and whether that origin may use the API.
func (s *Service) allowOrigin(origin string) (string, bool) {
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" {
			return "*", true
		}
		if strings.EqualFold(o, origin) {
			return origin, true
		}
	}
	return "", false
}

// needsJSON reports whether a request of this method must declare a JSON
// body: every method that may change something, with or without a body,
// so that a browser cannot send one without a CORS preflight.
func needsJSON(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// isJSON reports whether a Content-Type value is application/json, with
// any parameters (charset=utf-8).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// browserGuard keeps web pages out of the REST API. A page can make the
// browser of someone on the gateway's host send requests to a loopback
// address; these checks refuse them before authentication:
//
//   - Host must be an IP address, "localhost", the listen address's host
//     or one of Config.AllowedHosts (DNS rebinding: 403);
//   - a request with an Origin header must come from one of
//     Config.AllowedOrigins (403); their CORS preflights are answered
//     here, with 204;
//   - POST, PUT, PATCH and DELETE must be application/json (415), which
//     browsers never send cross-origin without a preflight.
//
// Non-browser clients (curl, SDKs, fetch in Node) send no Origin and pass.
func (s *Service) browserGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Origin")
		if !s.hostAllowed(r.Host) {
			s.refuse(w, r, &s.refused.host, http.StatusForbidden, codes.PermissionDenied,
				fmt.Sprintf("host %q is not allowed: list it in api.allowedHosts", r.Host))
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			allow, ok := s.allowOrigin(origin)
			if !ok {
				s.refuse(w, r, &s.refused.origin, http.StatusForbidden, codes.PermissionDenied,
					fmt.Sprintf("origin %q is not allowed: list it in api.allowedOrigins", origin))
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", allow)
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				h.Set("Access-Control-Max-Age", preflightMaxAge)
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if needsJSON(r.Method) && !isJSON(r.Header.Get("Content-Type")) {
			s.refuse(w, r, &s.refused.contentType, http.StatusUnsupportedMediaType, codes.InvalidArgument,
				fmt.Sprintf("%s needs Content-Type: application/json, not %q", r.Method, r.Header.Get("Content-Type")))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refuse counts, logs at debug and answers a request refused by
// browserGuard.
func (s *Service) refuse(w http.ResponseWriter, r *http.Request, counter *atomic.Int64, httpStatus int, code codes.Code, msg string) {
	counter.Add(1)
	s.cfg.Logger.Debug("control API request refused", "reason", msg, "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
	writeJSONError(w, httpStatus, code, msg)
}
