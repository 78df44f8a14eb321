package main

import (
	"net/http"
	"testing"
)

func TestCookieJar(t *testing.T) {
	var j cookieJar
	j.SetCookies(nil, []*http.Cookie{{Name: "BAYEUX_BROWSER", Value: "a", Path: "/", HttpOnly: true}, {Name: "x", Value: "1"}})
	before := j.Cookies(nil)
	j.SetCookies(nil, []*http.Cookie{{Name: "BAYEUX_BROWSER", Value: "b"}, {Name: "x", MaxAge: -1}})
	got := j.Cookies(nil)
	if len(got) != 1 || got[0].Name != "BAYEUX_BROWSER" || got[0].Value != "b" {
		t.Errorf("cookies %v", got)
	}
	if len(before) != 2 || before[0].Value != "a" {
		t.Errorf("a slice handed out changed: %v", before)
	}
}
