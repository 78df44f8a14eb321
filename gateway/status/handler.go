package status

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"

	"github.com/cometgate/cometgate/gateway/internal/cometdjs"
)

// Paths on the API listener.
const (
	// PagePath is the status page.
	PagePath = "/status"
	// BayeuxPath is where the page's Bayeux endpoint is mounted.
	BayeuxPath = "/status/cometd"
	// cookieName holds the token passed once with ?token=.
	cookieName = "cometgate_status_token"
)

//go:embed static
var static embed.FS

var page = template.Must(template.ParseFS(static, "static/index.html"))

// pageData fills static/index.html.
type pageData struct {
	Bayeux  string // BayeuxPath
	Channel string // Channel
	Key     string // the status key
}

// Handler serves the page at PagePath, its scripts under PagePath+"/",
// the CometD client under PagePath+"/js/cometd/", and bayeux (the gateway's
// Bayeux endpoint) at BayeuxPath. Mount it at PagePath and PagePath+"/".
// The page and BayeuxPath answer 401 to a request that Config.Authorize
// refuses, after trying the token of ?token= (page only) or of the cookie
// the page sets; BayeuxPath answers 403 to a request from another origin;
// the scripts, which hold no secret, are served to anyone.
func (s *Status) Handler(bayeux http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PagePath, s.servePage)
	files, _ := fs.Sub(static, "static") // fixed at build time
	mux.Handle("GET "+PagePath+"/status.js", http.StripPrefix(PagePath, http.FileServerFS(files)))
	mux.Handle("GET "+PagePath+"/status.css", http.StripPrefix(PagePath, http.FileServerFS(files)))
	mux.Handle("GET "+PagePath+"/js/cometd/", http.StripPrefix(PagePath+"/js/cometd", cometdjs.Handler()))
	guarded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !sameOrigin(r) {
			s.cfg.Logger.Debug("status page request refused: cross-origin", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"))
			http.Error(w, "cross-origin requests are refused", http.StatusForbidden)
			return
		}
		if !s.authorized(r) {
			s.refuse(w, r)
			return
		}
		bayeux.ServeHTTP(w, r)
	})
	mux.Handle(BayeuxPath, guarded)
	mux.Handle(BayeuxPath+"/", guarded)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether r comes from no browser page or from the
// status page's own origin: the endpoint is the page's, never another
// site's, whatever cors.allowedOrigins says for the public endpoint.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// authorized accepts what the API accepts, or the cookie's token.
func (s *Status) authorized(r *http.Request) bool {
	if s.cfg.Authorize(r) {
		return true
	}
	c, err := r.Cookie(cookieName)
	return err == nil && c.Value != "" && s.withToken(r, c.Value)
}

// withToken reports whether r would be authorized with token as its bearer
// token.
func (s *Status) withToken(r *http.Request, token string) bool {
	r2 := r.Clone(r.Context())
	r2.Header.Set("Authorization", "Bearer "+token)
	return s.cfg.Authorize(r2)
}

func (s *Status) refuse(w http.ResponseWriter, r *http.Request) {
	s.cfg.Logger.Debug("status page request refused: not authenticated", "remote", r.RemoteAddr, "path", r.URL.Path)
	w.Header().Set("WWW-Authenticate", `Bearer realm="cometgate"`)
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "authentication required: send the API token as a bearer token, or open "+PagePath+"?token=TOKEN once", http.StatusUnauthorized)
}

func (s *Status) servePage(w http.ResponseWriter, r *http.Request) {
	if token := r.URL.Query().Get("token"); token != "" {
		if !s.withToken(r, token) {
			s.refuse(w, r)
			return
		}
		// Keep the token in a cookie and drop it from the address bar and
		// the history.
		http.SetCookie(w, &http.Cookie{
			Name: cookieName, Value: token, Path: PagePath,
			HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
		})
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, PagePath, http.StatusSeeOther)
		return
	}
	if !s.authorized(r) {
		s.refuse(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; worker-src blob:; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
	page.Execute(w, pageData{Bayeux: BayeuxPath, Channel: Channel, Key: s.key})
}
