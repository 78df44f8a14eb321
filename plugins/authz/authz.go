package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/plugins"
)

// Reasons of denials that no rule names.
const (
	// ReasonNotGranting is CometD's reason when rules apply to a channel
	// but none grants the operation.
	ReasonNotGranting = "denied_by_not_granting"
	// DefaultDenyReason is a deny rule's reason when it names none.
	DefaultDenyReason = "denied_by_authorizer"
)

// ErrDenied is wrapped by every denial of the policy: plugins.ErrDenied,
// which the gateway answers with the operation's standard error (its
// reason in the middle part).
var ErrDenied = plugins.ErrDenied

// Denial is the policy's refusal of an operation. It wraps ErrDenied; its
// Reason goes in the middle of the Bayeux error
// ("403:<reason>:subscribe_denied").
type Denial struct {
	Op      plugins.Operation
	Channel string
	Reason  string
}

func (d *Denial) Error() string {
	return fmt.Sprintf("authz: %s on %s denied: %s", d.Op, d.Channel, d.Reason)
}

// Unwrap returns ErrDenied.
func (d *Denial) Unwrap() error { return ErrDenied }

// DenyReason returns the reason for the Bayeux error's middle part. Code
// that does not import this package finds it with errors.As and an
// interface{ DenyReason() string }.
func (d *Denial) DenyReason() string { return d.Reason }

// Modules lists the package's modules.
func Modules() []plugins.ModuleInfo {
	return []plugins.ModuleInfo{{
		Kind: plugins.KindPolicy,
		Name: "authorizer",
		New:  func() any { return new(Authorizer) },
		Doc:  "CometD's channel authorizers: grant/deny/ignore create, subscribe, publish by channel pattern, user, role or anyone",
	}}
}

// Authorizer is the "authorizer" policy module. Its option is the list of
// rules; see the package documentation. After Provision it is read only
// and safe for concurrent use.
type Authorizer struct {
	// Rules are the authorizers, at least one. Their order does not
	// matter.
	Rules []Rule `yaml:"rules"`

	rules []*rule
}

var (
	_ plugins.Policy      = (*Authorizer)(nil)
	_ plugins.Provisioner = (*Authorizer)(nil)
)

// Rule is one authorizer: on the channels of its patterns, it grants,
// denies or ignores its operations for the askers it names, and ignores
// everything else.
type Rule struct {
	// Channels are channel names or patterns ("/chat/*", "/chat/**"), not
	// meta channels. At least one.
	Channels []string `yaml:"channels"`
	// Grant, Deny and Ignore list operations: create, subscribe, publish,
	// or all. A rule has exactly one of them.
	Grant  []string `yaml:"grant"`
	Deny   []string `yaml:"deny"`
	Ignore []string `yaml:"ignore"`
	// Anyone, Users and Roles name whom a grant or deny rule applies to:
	// anyone, or the sessions whose user is in Users or which have a role
	// in Roles (Users and Roles may be combined). An ignore rule names no
	// one.
	Anyone bool     `yaml:"anyone"`
	Users  []string `yaml:"users"`
	Roles  []string `yaml:"roles"`
	// Reason is a deny rule's reason, sent to the client in the error.
	// Default "denied_by_authorizer".
	Reason string `yaml:"reason"`
}

// rule is a Rule compiled.
type rule struct {
	patterns []pattern
	ops      [plugins.OpPublish + 1]bool // by Operation
	effect   effect
	anyone   bool
	users    map[string]struct{}
	roles    map[string]struct{}
	reason   string
}

type effect uint8

const (
	ignore effect = iota
	grant
	deny
)

// Provision checks and compiles the rules.
func (a *Authorizer) Provision(*plugins.Context) error {
	if len(a.Rules) == 0 {
		return errors.New("rules: at least one rule is needed")
	}
	a.rules = make([]*rule, 0, len(a.Rules))
	for i := range a.Rules {
		r, err := a.Rules[i].compile()
		if err != nil {
			return fmt.Errorf("rules[%d].%w", i, err)
		}
		a.rules = append(a.rules, r)
	}
	return nil
}

func (rc *Rule) compile() (*rule, error) {
	r := &rule{}
	if len(rc.Channels) == 0 {
		return nil, errors.New("channels: at least one channel pattern is needed")
	}
	for j, p := range rc.Channels {
		name, _, ok := bayeux.ParseChannel(p)
		if !ok {
			return nil, fmt.Errorf("channels[%d]: %q: not a channel name or pattern", j, p)
		}
		if bayeux.KindOf(name) == bayeux.KindMeta {
			return nil, fmt.Errorf("channels[%d]: %q: authorizers do not apply to meta channels", j, p)
		}
		r.patterns = append(r.patterns, parsePattern(name))
	}
	var ops []string
	set := 0
	for _, e := range []struct {
		ops    []string
		effect effect
	}{{rc.Grant, grant}, {rc.Deny, deny}, {rc.Ignore, ignore}} {
		if e.ops != nil {
			set++
			ops, r.effect = e.ops, e.effect
		}
	}
	if set != 1 {
		return nil, errors.New("grant, deny, ignore: a rule has exactly one of them")
	}
	field := [...]string{ignore: "ignore", grant: "grant", deny: "deny"}[r.effect]
	if len(ops) == 0 {
		return nil, fmt.Errorf("%s: at least one operation is needed", field)
	}
	for j, o := range ops {
		switch op, _ := plugins.ParseOperation(o); {
		case o == "all":
			r.ops[plugins.OpCreate], r.ops[plugins.OpSubscribe], r.ops[plugins.OpPublish] = true, true, true
		case op == plugins.OpHandshake:
			return nil, fmt.Errorf("%s[%d]: %q: authorizers do not decide handshakes (use an authenticator)", field, j, o)
		case op != 0:
			r.ops[op] = true
		default:
			return nil, fmt.Errorf("%s[%d]: %q: want create, subscribe, publish or all", field, j, o)
		}
	}
	who := rc.Anyone || len(rc.Users) > 0 || len(rc.Roles) > 0
	switch {
	case r.effect == ignore && (who || rc.Reason != ""):
		return nil, errors.New("ignore: an ignore rule applies to everyone; remove anyone, users, roles and reason")
	case r.effect != ignore && !who:
		return nil, fmt.Errorf("%s: name whom: anyone: true, users or roles", field)
	case rc.Anyone && (len(rc.Users) > 0 || len(rc.Roles) > 0):
		return nil, errors.New("anyone: true is exclusive with users and roles")
	case r.effect == grant && rc.Reason != "":
		return nil, errors.New("reason: only a deny rule has a reason")
	}
	r.anyone = rc.Anyone
	r.users = set2(rc.Users)
	r.roles = set2(rc.Roles)
	r.reason = rc.Reason
	if r.effect == deny && r.reason == "" {
		r.reason = DefaultDenyReason
	}
	if r.reason != "" && (plugins.SafeReason(r.reason) != r.reason || strings.ContainsRune(r.reason, ' ')) {
		return nil, fmt.Errorf("reason: %q: want one word without ':' or ','", rc.Reason)
	}
	return r, nil
}

func set2(l []string) map[string]struct{} {
	if len(l) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(l))
	for _, s := range l {
		m[s] = struct{}{}
	}
	return m
}

// Authorize decides r by the rules: nil to allow, a *Denial to deny.
func (a *Authorizer) Authorize(_ context.Context, r *plugins.Request) error {
	switch r.Op {
	case plugins.OpCreate, plugins.OpSubscribe, plugins.OpPublish:
	default:
		return nil
	}
	if r.Client.ID == "" || bayeux.KindOf(r.Channel) == bayeux.KindMeta {
		return nil
	}
	if strings.HasSuffix(r.Channel, "/*") || strings.HasSuffix(r.Channel, "/**") {
		return a.authorizePattern(r)
	}
	applies, granted := false, false
	for _, rl := range a.rules {
		if !rl.matches(r.Channel) {
			continue
		}
		applies = true
		switch rl.decide(r) {
		case deny:
			return &Denial{Op: r.Op, Channel: r.Channel, Reason: rl.reason}
		case grant:
			granted = true
		}
	}
	if applies && !granted {
		return &Denial{Op: r.Op, Channel: r.Channel, Reason: ReasonNotGranting}
	}
	return nil
}

// authorizePattern decides an operation on a wildcard pattern (a
// subscription to "/a/*" or "/a/**"): it is allowed only when the same
// operation on each channel the pattern matches would be. So a deny on
// any pattern overlapping it denies; if rules cover the whole pattern,
// one of them must grant; otherwise each part of the pattern that a rule
// not granting applies to must be covered by a rule granting.
func (a *Authorizer) authorizePattern(r *plugins.Request) error {
	c := parsePattern(r.Channel)
	covered, coverGranted := false, false
	var grants, needGrant []pattern
	for _, rl := range a.rules {
		d := rl.decide(r)
		for _, p := range rl.patterns {
			in, ok := intersect(p, c)
			if !ok {
				continue
			}
			switch {
			case d == deny:
				return &Denial{Op: r.Op, Channel: r.Channel, Reason: rl.reason}
			case in.same(c):
				covered = true
				coverGranted = coverGranted || d == grant
			case d == grant:
				grants = append(grants, p)
			default:
				needGrant = append(needGrant, in)
			}
		}
	}
	if covered {
		if coverGranted {
			return nil
		}
		return &Denial{Op: r.Op, Channel: r.Channel, Reason: ReasonNotGranting}
	}
next:
	for _, part := range needGrant {
		for _, g := range grants {
			if in, ok := intersect(g, part); ok && in.same(part) {
				continue next
			}
		}
		return &Denial{Op: r.Op, Channel: r.Channel, Reason: ReasonNotGranting}
	}
	return nil
}

// matches reports whether one of the rule's patterns matches channel ch
// (not a pattern).
func (rl *rule) matches(ch string) bool {
	for _, p := range rl.patterns {
		if p.matchName(ch) {
			return true
		}
	}
	return false
}

// decide returns what the rule says about r: its effect if it concerns
// r's operation and asker, else ignore.
func (rl *rule) decide(r *plugins.Request) effect {
	if rl.effect == ignore || !rl.ops[r.Op] || !rl.covers(&r.Client) {
		return ignore
	}
	return rl.effect
}

// covers reports whether the rule applies to c.
func (rl *rule) covers(c *plugins.Client) bool {
	if rl.anyone {
		return true
	}
	if _, ok := rl.users[c.User]; ok && c.User != "" {
		return true
	}
	for _, role := range c.Roles {
		if _, ok := rl.roles[role]; ok {
			return true
		}
	}
	return false
}
