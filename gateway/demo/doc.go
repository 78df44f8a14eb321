// Package demo is the built-in demo: the classic Bayeux chat room page
// (static files embedded in the binary, with a small Bayeux client of our
// own) and its server side written against the engine's Go API:
// /service/members, /service/privatechat and the /service/echo remote
// call.
package demo
