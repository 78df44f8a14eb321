// Package demo is the built-in demo: the classic Bayeux chat room page
// (static files embedded in the binary, running the official CometD
// JavaScript client from gateway/internal/cometdjs) and its server side
// written against the engine's Go API: /service/members (join, a remote
// call answered with the member's id), /service/privatechat and the
// /service/echo remote call. Members are sessions, not names; a member
// whose session is removed, however that happens, is announced as leaving.
package demo
