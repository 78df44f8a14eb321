package bayeux_test

import (
	"testing"

	"github.com/cometgate/cometgate/gateway/bayeux"
)

func TestParseChannel(t *testing.T) {
	tests := []struct {
		in   string
		name string
		wild bayeux.Wild
		ok   bool
	}{
		{"/foo", "/foo", bayeux.NotWild, true},
		{"/foo/bar", "/foo/bar", bayeux.NotWild, true},
		{"/foo/", "/foo", bayeux.NotWild, true}, // one trailing slash is stripped
		{"/foo/*", "/foo/*", bayeux.WildOne, true},
		{"/foo/**", "/foo/**", bayeux.WildDeep, true},
		{"/**", "/**", bayeux.WildDeep, true},
		{"/*", "/*", bayeux.WildOne, true},
		{"/a.b/c-d/e_f/g~h/(i)/$j/@k/l!m/n+o/#p", "/a.b/c-d/e_f/g~h/(i)/$j/@k/l!m/n+o/#p", bayeux.NotWild, true},
		{"/", "/", bayeux.NotWild, false},
		{"", "", bayeux.NotWild, false},
		{"foo", "foo", bayeux.NotWild, false},
		{"/a//b", "/a//b", bayeux.NotWild, false},
		{"/a/*/b", "/a/*/b", bayeux.NotWild, false},
		{"/a/b*", "/a/b*", bayeux.NotWild, false},
		{"/a/***", "/a/***", bayeux.NotWild, false},
		{"/bar<script>", "/bar<script>", bayeux.NotWild, false},
		{"/foo<>", "/foo<>", bayeux.NotWild, false},
		{"/a\"b", "/a\"b", bayeux.NotWild, false},
		{"/a/{b}", "/a/{b}", bayeux.NotWild, false}, // template channels are server-side only
	}
	for _, tt := range tests {
		name, wild, ok := bayeux.ParseChannel(tt.in)
		if name != tt.name || wild != tt.wild || ok != tt.ok {
			t.Errorf("ParseChannel(%q) = %q, %v, %v; want %q, %v, %v", tt.in, name, wild, ok, tt.name, tt.wild, tt.ok)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"/foo/*", "/foo/bar", true},
		{"/foo/*", "/foo/boo", true},
		{"/foo/*", "/foo", false},
		{"/foo/*", "/foobar", false},
		{"/foo/*", "/foo/bar/boo", false},
		{"/foo/**", "/foo/bar", true},
		{"/foo/**", "/foo/bar/boo", true},
		{"/foo/**", "/foo", false},
		{"/foo/**", "/foobar/boo", false},
		{"/**", "/x/y", true},
		{"/*", "/x", true},
		{"/*", "/x/y", false},
		{"/foo", "/foo", true},
		{"/foo", "/foo/bar", false},
	}
	for _, tt := range tests {
		if got := bayeux.Match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v; want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		name string
		want bayeux.Kind
	}{
		{"/meta/connect", bayeux.KindMeta},
		{"/meta", bayeux.KindBroadcast},
		{"/service/echo", bayeux.KindService},
		{"/service", bayeux.KindBroadcast},
		{"/chat/demo", bayeux.KindBroadcast},
	}
	for _, tt := range tests {
		if got := bayeux.KindOf(tt.name); got != tt.want {
			t.Errorf("KindOf(%q) = %v; want %v", tt.name, got, tt.want)
		}
	}
}

func FuzzParseChannel(f *testing.F) {
	for _, s := range []string{"/foo", "/foo/*", "/foo/**", "/a//b", "/a/*/b", "", "/", "/meta/connect", "/x/", "/é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, wild, ok := bayeux.ParseChannel(s)
		if !ok {
			return
		}
		// A valid name re-parses to itself and is safe to embed in JSON
		// and JavaScript without escaping.
		again, wild2, ok2 := bayeux.ParseChannel(name)
		if !ok2 || again != name || wild2 != wild {
			t.Fatalf("ParseChannel(%q) = %q, %v; re-parse gives %q, %v, %v", s, name, wild, again, wild2, ok2)
		}
		for i := 0; i < len(name); i++ {
			if c := name[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' {
				t.Fatalf("valid channel %q contains %q", name, c)
			}
		}
		if wild == bayeux.NotWild && !bayeux.Match(name, name) {
			t.Fatalf("Match(%q, itself) = false", name)
		}
	})
}
