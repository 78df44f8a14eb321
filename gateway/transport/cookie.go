package transport

import (
	"net/http"
	"strings"
	"sync"
)

// browserID returns the BAYEUX_BROWSER cookie value of r, or "".
func (h *Handler) browserID(r *http.Request) string {
	c, err := r.Cookie(h.live.Load().Cookie.Name)
	if err != nil {
		return ""
	}
	return c.Value
}

// setBrowserCookie adds the Set-Cookie header binding id to this browser.
func (h *Handler) setBrowserCookie(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, h.browserCookie(r, id))
}

// browserCookie returns the BAYEUX_BROWSER cookie binding id to the
// browser that sent r.
func (h *Handler) browserCookie(r *http.Request, id string) *http.Cookie {
	cc := h.live.Load().Cookie
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
	return c
}

// minted remembers the browser ids made for websocket upgrades that have
// not yet been on the handshake clock for HandshakeTimeout, so that an HTTP
// request carrying one is known to come from a client that has just opened
// its websocket (engine.Client.NewBrowser). The handshake clock forgets
// each id when its connection's time is up. It holds at most max ids; when
// full, new ids are not remembered (their clients handshake again if they
// hit the race this serves).
type minted struct {
	max int
	mu  sync.Mutex // guards ids
	ids map[string]struct{}
}

// add remembers id; it reports false when full.
func (m *minted) add(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.ids) >= m.max {
		return false
	}
	if m.ids == nil {
		m.ids = make(map[string]struct{})
	}
	m.ids[id] = struct{}{}
	return true
}

// fresh reports whether id is remembered.
func (m *minted) fresh(id string) bool {
	if id == "" {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.ids[id]
	return ok
}

// forget drops id, and the map once empty (a map never shrinks).
func (m *minted) forget(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.ids, id)
	if len(m.ids) == 0 {
		m.ids = nil
	}
}

// browsers tracks which sessions of each browser hold a long poll, for the
// multiple-clients advice.
type browsers struct {
	max  int                       // -1: unlimited
	mu   sync.Mutex                // guards held
	held map[string]map[string]int // browser id -> session id -> held polls
}

// acquire reserves a held long poll for session sid of browser id. It
// reports false when other sessions of the browser already hold the
// maximum; a session that already holds one may always hold another (the
// newer supersedes the older).
func (b *browsers) acquire(id, sid string) bool {
	if b.max < 0 || id == "" {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	sessions := b.held[id]
	if sessions[sid] == 0 && len(sessions) >= b.max {
		return false
	}
	if sessions == nil {
		sessions = make(map[string]int)
		b.held[id] = sessions
	}
	sessions[sid]++
	return true
}

func (b *browsers) release(id, sid string) {
	if b.max < 0 || id == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	sessions := b.held[id]
	if sessions[sid]--; sessions[sid] <= 0 {
		delete(sessions, sid)
	}
	if len(sessions) == 0 {
		delete(b.held, id)
	}
}
