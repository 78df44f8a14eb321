package transport

import (
	"net/http"
	"strings"
	"sync"
)

// browserID returns the BAYEUX_BROWSER cookie value of r, or "".
func (h *Handler) browserID(r *http.Request) string {
	c, err := r.Cookie(h.cfg.Cookie.Name)
	if err != nil {
		return ""
	}
	return c.Value
}

// setBrowserCookie adds the Set-Cookie header binding id to this browser.
func (h *Handler) setBrowserCookie(w http.ResponseWriter, r *http.Request, id string) {
	cc := h.cfg.Cookie
	c := &http.Cookie{
		Name:     cc.Name,
		Value:    id,
		Path:     cc.Path,
		Domain:   cc.Domain,
		MaxAge:   cc.MaxAge,
		Secure:   cc.Secure && r.TLS != nil,
		HttpOnly: cc.HTTPOnly,
	}
	switch strings.ToLower(cc.SameSite) {
	case "lax":
		c.SameSite = http.SameSiteLaxMode
	case "strict":
		c.SameSite = http.SameSiteStrictMode
	case "none":
		c.SameSite = http.SameSiteNoneMode
	}
	http.SetCookie(w, c)
}

// browsers counts the long polls each browser holds, for the
// multiple-clients advice.
type browsers struct {
	max  int            // -1: unlimited
	mu   sync.Mutex     // guards held
	held map[string]int // browser id -> held long polls
}

// acquire reserves a held long poll for browser id; it reports false when
// the browser already holds its maximum.
func (b *browsers) acquire(id string) bool {
	if b.max < 0 || id == "" {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held[id] >= b.max {
		return false
	}
	b.held[id]++
	return true
}

func (b *browsers) release(id string) {
	if b.max < 0 || id == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held[id]--; b.held[id] <= 0 {
		delete(b.held, id)
	}
}
