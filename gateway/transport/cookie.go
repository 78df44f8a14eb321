package transport

import (
	"net/http"
	"strings"
	"sync"
	"time"
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

// minted remembers the browser ids made for websocket upgrades in the last
// window, so that an HTTP request carrying one is known to come from a
// client that has just opened its websocket (engine.Client.NewBrowser).
// It holds at most max ids; when full, new ids are not remembered (their
// clients handshake again if they hit the race this serves).
type minted struct {
	window time.Duration
	max    int
	mu     sync.Mutex // guards ids, order
	ids    map[string]time.Time
	order  []string // oldest first
}

// add remembers id as made now.
func (m *minted) add(id string) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expireLocked(now)
	if len(m.ids) >= m.max {
		return
	}
	if m.ids == nil {
		m.ids = make(map[string]time.Time)
	}
	m.ids[id] = now
	m.order = append(m.order, id)
}

// fresh reports whether id was made within the window.
func (m *minted) fresh(id string) bool {
	if id == "" {
		return false
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expireLocked(now)
	_, ok := m.ids[id]
	return ok
}

func (m *minted) expireLocked(now time.Time) {
	n := 0
	for n < len(m.order) && now.Sub(m.ids[m.order[n]]) > m.window {
		delete(m.ids, m.order[n])
		n++
	}
	if n > 0 {
		rest := copy(m.order, m.order[n:])
		clear(m.order[rest:])
		m.order = m.order[:rest]
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
