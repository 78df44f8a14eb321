package cluster

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/gateway/bayeux"
)

func TestSubjectOf(t *testing.T) {
	for name, want := range map[string]string{
		"/chat/room":      "p.b.chat.room",
		"/chat/*":         "p.b.chat.*",
		"/chat/**":        "p.b.chat.>",
		"/a.b/c d":        "p.b.a_2Eb.c_20d",
		"/under_score":    "p.b.under_5Fscore",
		"/x/a*b":          "p.b.x.a_2Ab",
		"/caf\u00e9/>":    "p.b.caf_C3_A9._3E",
		"/Mixed-Case/123": "p.b.Mixed-Case.123",
	} {
		if got := SubjectOf("p", name); got != want {
			t.Errorf("SubjectOf(%q) = %q, want %q", name, got, want)
		}
	}
}

// FuzzSubjectRoundTrip: every valid channel name maps to a subject whose
// tokens are plain NATS tokens (no wildcard, no blank, no empty token)
// and maps back to the same name; distinct names never share a subject.
func FuzzSubjectRoundTrip(f *testing.F) {
	for _, s := range []string{"/a", "/a/b", "/a.b/c d", "/_/__", "/a/_2E", "/x/y/z/\u00e9", "/a/b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n, wild, ok := bayeux.ParseChannel(name)
		if !ok || wild != bayeux.NotWild || n != name {
			return
		}
		subj := SubjectOf("cg.x", name)
		for _, tok := range strings.Split(subj, ".") {
			if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
				t.Fatalf("SubjectOf(%q) = %q has a bad token %q", name, subj, tok)
			}
		}
		back, err := ChannelOf("cg.x", subj)
		if err != nil || back != name {
			t.Fatalf("ChannelOf(SubjectOf(%q)) = %q, %v", name, back, err)
		}
	})
}

func TestChannelOfRejects(t *testing.T) {
	for _, s := range []string{"p.b", "p.b.", "q.b.a", "p.b.a.*", "p.b.a.>", "p.b.a_2", "p.b.a_zz", "p.b.a..b", "p.b.a b"} {
		if c, err := ChannelOf("p", s); err == nil {
			t.Errorf("ChannelOf(%q) = %q, want an error", s, c)
		}
	}
}

// FuzzFrame: a frame decodes to what was encoded, and any bytes either
// decode into parts that lie within them or fail, never panic.
func FuzzFrame(f *testing.F) {
	f.Add("/a", []byte(`{"x":1}`), []byte(`{"e":true}`), []byte{1, 2, 3})
	f.Add("/a/b", []byte(`null`), []byte(nil), []byte{1, 0x80})
	f.Fuzz(func(t *testing.T, channel string, data, ext, junk []byte) {
		b := appendFrame(nil, channel, data, ext)
		c, d, e, err := parseFrame(b)
		if err != nil || c != channel || !bytes.Equal(d, data) || !bytes.Equal(e, ext) {
			t.Fatalf("round trip: %q %q %q %v", c, d, e, err)
		}
		if c, d, e, err := parseFrame(junk); err == nil && len(c)+len(d)+len(e) > len(junk) {
			t.Fatalf("parts of %q exceed it", junk)
		}
	})
}
