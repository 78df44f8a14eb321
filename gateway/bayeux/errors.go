package bayeux

import "strconv"

// Error is a Bayeux protocol error, rendered on the wire as
// "code:args:message" (e.g. "402::session_unknown"). Reconnect, when set, is
// the advice.reconnect sent with the error.
type Error struct {
	Code      int    // three-digit Bayeux error code
	Args      string // comma-separated arguments, usually empty
	Message   string // CometD-style tag, e.g. "session_unknown"
	Reconnect string // advice.reconnect to send with the error, or ""
}

// Error renders e in wire form.
func (e *Error) Error() string {
	return strconv.Itoa(e.Code) + ":" + e.Args + ":" + e.Message
}

// WithArgs returns a copy of e with Args set.
func (e *Error) WithArgs(args string) *Error {
	c := *e
	c.Args = args
	return &c
}

// Predeclared errors, with CometD 5+ wire strings.
var (
	ErrSessionUnknown      = &Error{Code: 402, Message: "session_unknown"}
	ErrHandshakeDenied     = &Error{Code: 403, Message: "handshake_denied", Reconnect: ReconnectNone}
	ErrChannelMissing      = &Error{Code: 400, Message: "channel_missing"}
	ErrChannelInvalid      = &Error{Code: 405, Message: "channel_invalid"}
	ErrMessageIDInvalid    = &Error{Code: 405, Message: "message_id_invalid"}
	ErrMessageDeleted      = &Error{Code: 404, Message: "message_deleted"}
	ErrSubscriptionMissing = &Error{Code: 403, Message: "subscription_missing"}
	ErrSubscriptionInvalid = &Error{Code: 403, Message: "subscription_invalid"}
	ErrSubscribeDenied     = &Error{Code: 403, Args: "denied_by_security_policy", Message: "subscribe_denied"}
	ErrCreateDenied        = &Error{Code: 403, Args: "denied_by_security_policy", Message: "create_denied"}
	ErrChannelCreateDenied = &Error{Code: 403, Args: "denied_by_security_policy", Message: "channel_create_denied"}
	ErrPublishDenied       = &Error{Code: 403, Args: "denied_by_security_policy", Message: "publish_denied"}
	ErrUnsubscribeFailed   = &Error{Code: 403, Message: "unsubscribe_failed"}
	ErrFieldInvalid        = &Error{Code: 400, Message: "field_invalid"}
	ErrInternal            = &Error{Code: 500, Message: "internal_error"}
)
