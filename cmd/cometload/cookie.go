package main

import (
	"net/http"
	"net/url"
	"sync"
	"time"
)

// cookieJar is the cookie jar of one long-polling client. A client talks
// to one server, under one path, so the jar keeps cookies by name only
// and returns them all: far cheaper per request than
// net/http/cookiejar's domain and path matching, which showed in the
// tool's profile.
type cookieJar struct {
	mu      sync.Mutex
	cookies []*http.Cookie
}

// SetCookies implements http.CookieJar.
func (j *cookieJar) SetCookies(_ *url.URL, cookies []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	// Copy on write: Cookies hands out the slice itself.
	j.cookies = append([]*http.Cookie(nil), j.cookies...)
	for _, c := range cookies {
		expired := c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(time.Now()))
		i := 0
		for ; i < len(j.cookies) && j.cookies[i].Name != c.Name; i++ {
		}
		switch {
		case expired && i < len(j.cookies):
			j.cookies = append(j.cookies[:i], j.cookies[i+1:]...)
		case expired:
		case i < len(j.cookies):
			j.cookies[i] = &http.Cookie{Name: c.Name, Value: c.Value}
		default:
			j.cookies = append(j.cookies, &http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
}

// Cookies implements http.CookieJar.
func (j *cookieJar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cookies // SetCookies never modifies a slice handed out
}
