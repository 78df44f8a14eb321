// Package jwtauth is the "jwt" handshake authenticator: it verifies a JSON
// Web Token carried by a Bayeux handshake and binds the session to the
// user and roles named by its claims, as Centrifugo's connection token
// does.
//
// # Algorithms and keys
//
// HS256 verifies with a shared secret (option secret, or secretEnv naming
// an environment variable, so the secret need not be in the file; at
// least 32 bytes). RS256 and ES256 verify with public keys: from a PEM
// file (publicKeyFile: PKIX "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY" or
// "CERTIFICATE" blocks; RSA of at least 2048 bits, EC on P-256) and/or
// from a JWKS endpoint (jwksURL). The accepted "alg" values default to
// those the configured keys allow; "none" and every other algorithm are
// refused. A key is chosen by the token's algorithm family, never by
// what the token claims about the key, so an HS256 token can only meet
// the secret and an RS256 or ES256 token only public keys of its own type:
// algorithm confusion (an HS256 token "signed" with the RSA public key's
// bytes) cannot verify.
//
// # JWKS
//
// The key set is fetched at Provision (a failure fails Provision unless
// jwksRequired is false), then refreshed by one background goroutine
// every jwksRefresh (default 1h) until Cleanup. A token whose "kid" is not
// in the cached set triggers one more fetch, at most once per
// jwksMinRefresh (default 30s) however many such tokens arrive;
// concurrent handshakes wait for the same fetch. A failed fetch keeps the
// last good keys. Fetches time out after jwksTimeout (default 10s) and
// read at most jwksMaxBytes (default 256 KiB). Keys with "use" other than
// "sig", an "alg" other than RS256/ES256, or another key type or curve,
// are skipped; a set with no usable key counts as a failed fetch.
//
// # Checks
//
// exp is required (requireExp, default true) and must not have passed;
// nbf and iat must not be in the future; each with leeway (default 30s).
// With audience set (a string or a list), the token's aud must name one
// of them; with issuer set, iss must equal it.
//
// # Where the token is read
//
// The from option lists the places tried in order; the first one present
// is used (a bad token there is refused; the next places are not tried).
// "ext:<path>" is a dotted path of object keys in the handshake's ext;
// "header:<Name>" is an HTTP header of the handshake request (or of the
// websocket upgrade), whose value may carry a "Bearer " prefix, which the
// Authorization header requires. The default is
//
//	from: ["ext:token", "ext:authentication.token", "header:Authorization"]
//
// which suits CometD clients (cometd.handshake({ext: {authentication:
// {token: t}}}) or an extension adding ext.token), Faye clients (an
// outgoing extension setting message.ext.token on /meta/handshake), and
// non-browser clients that set the Authorization header. Browsers cannot
// set headers on a websocket upgrade, so browser clients use ext.
//
// # Outcome
//
// The identity's user is the claim userClaim (default "sub", a non-empty
// string), its roles the claim rolesClaim (default "roles": a list of
// strings or one space-separated string; missing means none), and its
// Expires the exp claim. Claim names may be dotted paths
// ("realm_access.roles"). A handshake carrying no token gives
// plugins.ErrNoCredentials (the next authenticator is asked); a refused
// token gives a plugins.Rejection with one of the reasons token_expired,
// token_not_yet_valid, wrong_audience, wrong_issuer, unknown_key or
// invalid_token (the token itself is never echoed or logged); a JWKS
// endpoint that cannot be reached when no cached key can decide gives a
// plain error, which denies the handshake with advice to retry.
//
// # Example
//
//	authenticators:
//	  - module: jwt
//	    secretEnv: COMETGATE_JWT_SECRET     # HS256
//	    jwksURL: https://id.example.com/.well-known/jwks.json
//	    audience: [chat]
//	    issuer: https://id.example.com/
//	    rolesClaim: realm_access.roles
package jwtauth
