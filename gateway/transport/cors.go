package transport

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// originAllowed reports whether a request from origin may use the
// endpoint: no Origin header (not a browser), the same host, or an allowed
// origin.
func (h *Handler) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if u, err := url.Parse(origin); err == nil && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range h.live.Load().AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// cors adds the CORS response headers for an allowed cross-origin request.
// Credentials are allowed, so the origin is echoed rather than "*".
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	hd := w.Header()
	hd.Add("Vary", "Origin")
	hd.Set("Access-Control-Allow-Origin", origin)
	hd.Set("Access-Control-Allow-Credentials", "true")
}

// preflight answers an OPTIONS request: 200 with an empty body, plus the
// CORS headers when the origin is allowed.
func (h *Handler) preflight(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Origin") != "" && h.originAllowed(r) {
		h.cors(w, r)
		hd := w.Header()
		hd.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			hd.Set("Access-Control-Allow-Headers", req)
		}
		hd.Set("Access-Control-Max-Age", strconv.Itoa(int(h.live.Load().CORSMaxAge.Seconds())))
	}
	w.WriteHeader(http.StatusOK)
}
