package authz

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/plugins"
	"go.yaml.in/yaml/v3"
)

// newAuthorizer decodes a policy entry through a registry, as the gateway
// does.
func newAuthorizer(t testing.TB, entry string) (*Authorizer, error) {
	t.Helper()
	reg := plugins.NewRegistry()
	for _, m := range Modules() {
		reg.MustRegister(m)
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(entry), &n); err != nil {
		t.Fatal(err)
	}
	_, m, err := reg.Decode(&plugins.Context{Context: context.Background()}, plugins.KindPolicy, n.Content[0])
	if err != nil {
		return nil, err
	}
	return m.(*Authorizer), nil
}

func mustAuthorizer(t testing.TB, entry string) *Authorizer {
	t.Helper()
	a, err := newAuthorizer(t, entry)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return a
}

// Askers.
var (
	anonymous = plugins.Client{ID: "s0"}
	captain   = plugins.Client{ID: "s1", User: "carl", Roles: []string{"captain"}}
	alice     = plugins.Client{ID: "s2", User: "alice"}
	bob       = plugins.Client{ID: "s3", User: "bob", Roles: []string{"player"}}
	eve       = plugins.Client{ID: "s4", User: "eve", Roles: []string{"fan", "criminal_supporter"}}
	server    = plugins.Client{}
)

type check struct {
	op      plugins.Operation
	channel string
	who     plugins.Client
	want    string // "" allowed, else the denial's reason
}

func run(t *testing.T, a *Authorizer, checks []check) {
	t.Helper()
	for _, c := range checks {
		err := a.Authorize(context.Background(), &plugins.Request{Op: c.op, Channel: c.channel, Client: c.who})
		got := ""
		if err != nil {
			var d *Denial
			if !errors.As(err, &d) || !errors.Is(err, ErrDenied) {
				t.Errorf("%s %s by %q: err = %v; want a *Denial wrapping ErrDenied", c.op, c.channel, c.who.User, err)
				continue
			}
			got = d.DenyReason()
		}
		if got != c.want {
			t.Errorf("%s %s by %q: denied %q; want %q", c.op, c.channel, c.who.User, got, c.want)
		}
	}
}

const (
	create    = plugins.OpCreate
	subscribe = plugins.OpSubscribe
	publish   = plugins.OpPublish
	handshake = plugins.OpHandshake
)

// CometD's documented example (java_server_authorizers.adoc, "Example"):
// games that captains create, everyone watches but criminal supporters,
// and players play. The captain's authorizer there grants CREATE on
// direct, non-wild children of /game, which is the pattern /game/*.
func TestCometDGameExample(t *testing.T) {
	a := mustAuthorizer(t, `
module: authorizer
rules:
  - channels: ["/game/**"]
    ignore: [all]
  - channels: ["/game/*"]
    grant: [create]
    roles: [captain]
  - channels: ["/game/**"]
    grant: [subscribe]
    anyone: true
  - channels: ["/game/**"]
    deny: [subscribe]
    roles: [criminal_supporter]
    reason: criminal_supporter
  - channels: ["/game/123"]
    grant: [publish]
    users: [alice, bob]
`)
	run(t, a, []check{
		{create, "/game/123", captain, ""},
		{create, "/game/123", alice, ReasonNotGranting},
		{create, "/game/123/chat", captain, ReasonNotGranting},
		{create, "/game", captain, ""}, // /game is not under /game/**
		{subscribe, "/game/123", alice, ""},
		{subscribe, "/game/123", anonymous, ""},
		{subscribe, "/game/123/chat", anonymous, ""},
		{subscribe, "/game/123", eve, "criminal_supporter"},
		{publish, "/game/123", alice, ""},
		{publish, "/game/123", bob, ""},
		{publish, "/game/123", captain, ReasonNotGranting},
		{publish, "/game/456", alice, ReasonNotGranting},
		{publish, "/game/123", eve, ReasonNotGranting},
		{publish, "/lobby", eve, ""}, // no rule: the policy ignores it
		{subscribe, "/game/*", alice, ""},
		{subscribe, "/game/**", anonymous, ""},
		{subscribe, "/game/*", eve, "criminal_supporter"},
		{subscribe, "/**", eve, "criminal_supporter"}, // CometD would allow this one
	})
}

// The Authorizer javadoc's example: on /television/cnn everyone may
// subscribe, only CNN employees publish. The gateway creates channels on
// first use, so the rule grants create with subscribe.
func TestCometDTelevisionExample(t *testing.T) {
	a := mustAuthorizer(t, `
module: authorizer
rules:
  - channels: ["/television/cnn"]
    grant: [create, subscribe]
    anyone: true
  - channels: ["/television/cnn"]
    grant: [publish]
    roles: [cnn_employee]
`)
	employee := plugins.Client{ID: "s9", User: "wolf", Roles: []string{"anchor", "cnn_employee"}}
	run(t, a, []check{
		{create, "/television/cnn", anonymous, ""},
		{subscribe, "/television/cnn", alice, ""},
		{publish, "/television/cnn", employee, ""},
		{publish, "/television/cnn", alice, ReasonNotGranting},
		{publish, "/television/bbc", alice, ""},
	})
}

// The wire examples of the spec (bayeux-spec.md #67 and #68): a channel
// whose only authorizer ignores denies with denied_by_not_granting; an
// authorizer's deny("vip_only") gives its reason.
func TestCometDWireExamples(t *testing.T) {
	a := mustAuthorizer(t, `
module: authorizer
rules:
  - channels: ["/ignored"]
    ignore: [subscribe]
  - channels: ["/vip"]
    deny: [subscribe]
    anyone: true
    reason: vip_only
`)
	run(t, a, []check{
		{subscribe, "/ignored", alice, ReasonNotGranting},
		{publish, "/ignored", alice, ReasonNotGranting}, // the set is not empty for publish either
		{subscribe, "/vip", alice, "vip_only"},
	})
}

// The union of matching wildcards: rules on the channel, its /* parent
// and every /** ancestor apply; a /* rule does not reach grandchildren;
// any deny wins whatever the order; with rules, one must grant.
func TestWildcardUnion(t *testing.T) {
	a := mustAuthorizer(t, `
module: authorizer
rules:
  - channels: ["/a/b"]
    grant: [publish]
    anyone: true
  - channels: ["/a/b"]
    deny: [publish]
    users: [eve]
  - channels: ["/a/*"]
    grant: [subscribe]
    roles: [player]
  - channels: ["/a/**"]
    grant: [create]
    anyone: true
  - channels: ["/**"]
    deny: [publish]
    roles: [banned]
    reason: banned
`)
	banned := plugins.Client{ID: "s7", User: "mallory", Roles: []string{"banned"}}
	run(t, a, []check{
		{publish, "/a/b", alice, ""},                  // grant on /a/b
		{publish, "/a/b", eve, DefaultDenyReason},     // deny for a user beats grant to anyone
		{publish, "/a/b", banned, "banned"},           // deny on /** reaches /a/b
		{subscribe, "/a/b", bob, ""},                  // grant on /a/* reaches /a/b
		{subscribe, "/a/b", alice, ReasonNotGranting}, // rules apply, none grants her
		{subscribe, "/a/b/c", bob, ReasonNotGranting}, // /a/* does not reach /a/b/c; /a/** and /** apply
		{create, "/a/b/c", alice, ""},                 // /a/** reaches it
		{publish, "/a/b/c", alice, ReasonNotGranting}, // /a/** and /** apply, nothing grants publish
		{publish, "/b", alice, ReasonNotGranting},     // /** applies to every channel
		{publish, "/b", banned, "banned"},
		{subscribe, "/meta/connect", banned, ""}, // never meta channels
		{publish, "/a/b", server, ""},            // never the server
		{handshake, "", banned, ""},              // never handshakes
	})
}

// A channel no rule matches is allowed; a rule's other operations still
// make it apply (a channel with only a publish grant denies subscribe).
func TestNoRuleAndOtherOperations(t *testing.T) {
	a := mustAuthorizer(t, `
module: authorizer
rules:
  - channels: ["/news"]
    grant: [publish]
    anyone: true
`)
	run(t, a, []check{
		{subscribe, "/weather", alice, ""},
		{subscribe, "/news/today", alice, ""},
		{publish, "/news", alice, ""},
		{subscribe, "/news", alice, ReasonNotGranting},
		{create, "/news", alice, ReasonNotGranting},
	})
}

// Users and roles: either grants; a user rule does not match anonymous
// sessions.
func TestUsersAndRoles(t *testing.T) {
	a := mustAuthorizer(t, `
module: authorizer
rules:
  - channels: ["/staff/**"]
    grant: [all]
    users: [alice]
    roles: [captain]
`)
	run(t, a, []check{
		{publish, "/staff/x", alice, ""},
		{subscribe, "/staff/x", captain, ""},
		{create, "/staff/x/y", captain, ""},
		{publish, "/staff/x", bob, ReasonNotGranting},
		{publish, "/staff/x", anonymous, ReasonNotGranting},
	})
}

// A subscription to a wildcard pattern is allowed only when one to each
// channel it matches would be.
func TestWildcardSubscriptions(t *testing.T) {
	a := mustAuthorizer(t, `
module: authorizer
rules:
  - channels: ["/chat/*"]
    grant: [subscribe]
    anyone: true
  - channels: ["/chat/private/**"]
    grant: [subscribe]
    roles: [captain]
  - channels: ["/chat/**"]
    deny: [subscribe]
    users: [eve]
  - channels: ["/admin/**"]
    grant: [subscribe]
    roles: [captain]
  - channels: ["/ops/*"]
    grant: [subscribe]
    anyone: true
`)
	run(t, a, []check{
		{subscribe, "/chat/*", alice, ""},                        // covered by /chat/*, granted
		{subscribe, "/chat/*", eve, DefaultDenyReason},           // the deny on /chat/** covers it
		{subscribe, "/chat/**", alice, ReasonNotGranting},        // /chat/* reaches only one level
		{subscribe, "/chat/private/*", captain, ""},              // covered by /chat/private/**
		{subscribe, "/chat/private/*", alice, ReasonNotGranting}, // the only covering rule does not grant her
		{subscribe, "/**", alice, ReasonNotGranting},             // /admin/** applies to part of it without granting
		{subscribe, "/**", captain, ReasonNotGranting},           // /chat/** (deny for eve) grants no one
		{subscribe, "/**", eve, DefaultDenyReason},               // a deny under it denies
		{subscribe, "/admin/*", captain, ""},
		{subscribe, "/admin/*", alice, ReasonNotGranting},
		{subscribe, "/ops/**", alice, ""},  // the part /ops/* is granted; deeper channels have no rule
		{subscribe, "/other/*", alice, ""}, // no rule overlaps
		{subscribe, "/*", alice, ""},       // /chat/*, /admin/**... are all deeper than one segment
	})
}

func TestIntersect(t *testing.T) {
	tests := []struct {
		p, q string
		want string // "" for no channel in common
	}{
		{"/a/b", "/a/b", "/a/b"},
		{"/a/b", "/a/c", ""},
		{"/a/*", "/a/b", "/a/b"},
		{"/a/*", "/a/b/c", ""},
		{"/a/**", "/a/b/c", "/a/b/c"},
		{"/a/**", "/a", ""},
		{"/a/*", "/a/**", "/a/*"},
		{"/a/**", "/a/b/**", "/a/b/**"},
		{"/a/**", "/a/b/*", "/a/b/*"},
		{"/a/*", "/a/b/*", ""},
		{"/a/*", "/a/b/**", ""},
		{"/*", "/a/*", ""},
		{"/*", "/a", "/a"},
		{"/**", "/a/*", "/a/*"},
		{"/**", "/*", "/*"},
		{"/*", "/**", "/*"},
		{"/ab/**", "/a/*", ""},
		{"/a/b/*", "/a/b/**", "/a/b/*"},
	}
	for _, tt := range tests {
		for _, pq := range [][2]string{{tt.p, tt.q}, {tt.q, tt.p}} {
			in, ok := intersect(parsePattern(pq[0]), parsePattern(pq[1]))
			got := ""
			if ok {
				got = in.String()
			}
			if got != tt.want {
				t.Errorf("intersect(%s, %s) = %q; want %q", pq[0], pq[1], got, tt.want)
			}
		}
	}
}

// matchName is bayeux.Match.
func TestMatchName(t *testing.T) {
	patterns := []string{"/a", "/a/b", "/a/*", "/a/**", "/*", "/**", "/a/b/*", "/a/b/**", "/ab/*"}
	names := []string{"/a", "/b", "/a/b", "/a/c", "/ab", "/ab/c", "/a/b/c", "/a/b/c/d", "/a/bc"}
	for _, p := range patterns {
		for _, n := range names {
			if got, want := parsePattern(p).matchName(n), bayeux.Match(p, n); got != want {
				t.Errorf("matchName(%s, %s) = %v; want %v", p, n, got, want)
			}
		}
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // "" for success, else a substring of the error
	}{
		{"grant", "rules: [{channels: [/a], grant: [publish], anyone: true}]", ""},
		{"deny with reason", "rules: [{channels: [/a/**], deny: [all], roles: [x], reason: no_x}]", ""},
		{"ignore", "rules: [{channels: [/a/*], ignore: [all]}]", ""},
		{"service channel", "rules: [{channels: [/service/**], grant: [publish], users: [a]}]", ""},
		{"unknown option", "rules: [{channels: [/a], grant: [publish], anyone: true, everyone: true}]", "everyone"},
		{"no rules", "rules: []", "at least one rule"},
		{"no channels", "rules: [{grant: [publish], anyone: true}]", "channels"},
		{"bad pattern", "rules: [{channels: ['/a/*/b'], grant: [publish], anyone: true}]", `"/a/*/b"`},
		{"meta channel", "rules: [{channels: [/meta/subscribe], grant: [publish], anyone: true}]", "meta"},
		{"handshake", "rules: [{channels: [/a], grant: [handshake], anyone: true}]", "handshake"},
		{"unknown operation", "rules: [{channels: [/a], grant: [read], anyone: true}]", `"read"`},
		{"two effects", "rules: [{channels: [/a], grant: [publish], deny: [subscribe], anyone: true}]", "exactly one"},
		{"no effect", "rules: [{channels: [/a], anyone: true}]", "exactly one"},
		{"no operations", "rules: [{channels: [/a], grant: [], anyone: true}]", "at least one operation"},
		{"no one", "rules: [{channels: [/a], grant: [publish]}]", "name whom"},
		{"anyone and users", "rules: [{channels: [/a], grant: [publish], anyone: true, users: [a]}]", "exclusive"},
		{"ignore naming someone", "rules: [{channels: [/a], ignore: [publish], users: [a]}]", "applies to everyone"},
		{"grant with reason", "rules: [{channels: [/a], grant: [publish], anyone: true, reason: x}]", "only a deny"},
		{"reason with a colon", "rules: [{channels: [/a], deny: [publish], anyone: true, reason: 'a:b'}]", "reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newAuthorizer(t, "module: authorizer\n"+tt.yaml)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Decode: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Decode: err = %v; want one containing %q", err, tt.want)
			}
		})
	}
}

func BenchmarkAuthorize(b *testing.B) {
	a := mustAuthorizer(b, `
module: authorizer
rules:
  - {channels: ["/**"], ignore: [all]}
  - {channels: ["/chat/*"], grant: [create, subscribe, publish], anyone: true}
  - {channels: ["/chat/**"], deny: [publish], roles: [banned]}
  - {channels: ["/game/**"], grant: [subscribe], anyone: true}
  - {channels: ["/game/*"], grant: [create], roles: [captain]}
  - {channels: ["/game/123"], grant: [publish], users: [alice, bob]}
  - {channels: ["/admin/**"], grant: [all], roles: [admin]}
  - {channels: ["/service/**"], grant: [publish], anyone: true}
`)
	for _, bc := range []struct {
		name string
		r    plugins.Request
	}{
		{"publish", plugins.Request{Op: publish, Channel: "/chat/room", Client: bob}},
		{"subscribe-pattern", plugins.Request{Op: subscribe, Channel: "/game/*", Client: bob}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				if err := a.Authorize(ctx, &bc.r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
