// Package authz is the "authorizer" policy: CometD's channel Authorizers
// as configuration. Each rule is one authorizer on one or more channel
// patterns; for an operation on a channel, the rules of every pattern
// matching the channel are consulted: the channel itself, its "/*"
// parent and every "/**" ancestor ("/a/b/c": /a/b/c, /a/b/*, /a/b/**,
// /a/**, /**), the union CometD calls the channel's authorizer set.
//
// The decision follows CometD's algorithm (Authorizer, BayeuxServerImpl):
//
//   - no rule matches the channel: allowed (the policy ignores it);
//   - any matching rule denies the operation to the asker: denied, with the
//     rule's reason (the order of rules does not matter);
//   - otherwise, at least one matching rule must grant the operation to the
//     asker, or it is denied with "denied_by_not_granting".
//
// A rule that matches the channel takes part even when its operations are
// others: a channel whose only rule grants publish denies subscribe, as a
// CometD channel with only GrantAuthorizer.GRANT_PUBLISH does. An ignore
// rule grants and denies nothing; it only makes the set non-empty, like
// GrantAuthorizer.GRANT_NONE on "/game/**", so that something else must
// grant.
//
// The gateway creates a channel on its first subscribe or publish and asks
// create then; CometD applications usually create the channels they put
// authorizers on at start-up, so theirs rarely see create. Grant create
// with subscribe or publish where clients may be first on a channel, e.g.
// grant: [create, subscribe].
//
// Operations are create, subscribe and publish ("all" for the three).
// Like CometD's authorizers the policy never decides handshakes (use an
// authenticator or another policy), meta channels, unsubscribes, or the
// server's own operations (a zero plugins.Client: the control API, backend
// streams), which it always allows. Service channels are authorized like
// broadcast channels.
//
// A subscription to a wildcard pattern ("/chat/*", "/chat/**") is
// allowed only when a subscription to each channel the pattern matches
// would be: a deny on any pattern overlapping it denies it; when rules
// cover the whole pattern (rules on the pattern itself or on "/**"
// ancestors, e.g. "/chat/**" and "/**" for "/chat/*"), one of them must
// grant; otherwise each part of the pattern that some rule applies to
// without granting must be covered by a granting rule. This departs from
// CometD on purpose: CometD consults only the authorizers on the wildcard
// channel itself, so there a deny on "/chat/**" or a grant-only rule on
// "/admin/**" does not stop a subscription to "/chat/*" or "/**", which
// then receives what those rules protect. For a channel name the
// decision is exactly CometD's.
//
// # Denials
//
// A denial is a *Denial, which wraps ErrDenied and carries the reason
// CometD puts in the middle of its error: the gateway answers
// "403:<reason>:subscribe_denied" (publish_denied, channel_create_denied
// or create_denied), exactly as CometD does for Authorizer.Result.deny.
// Callers that do not import this package find the reason through the
// method DenyReason() string.
//
// # Example
//
// CometD's game example (the authorizers documentation) as rules:
//
//	policies:
//	  - module: authorizer
//	    rules:
//	      - channels: ["/game/**"]         # GRANT_NONE: something must grant
//	        ignore: [all]
//	      - channels: ["/game/*"]          # captains create games
//	        grant: [create]
//	        roles: [captain]
//	      - channels: ["/game/**"]         # everyone watches
//	        grant: [subscribe]
//	        anyone: true
//	      - channels: ["/game/**"]         # except criminal supporters
//	        deny: [subscribe]
//	        roles: [criminal_supporter]
//	        reason: criminal_supporter
//	      - channels: ["/game/123"]        # players play
//	        grant: [publish]
//	        users: [alice, bob]
package authz
