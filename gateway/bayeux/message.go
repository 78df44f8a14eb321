package bayeux

import (
	"encoding/json"
	"math"
)

// Meta channel names.
const (
	MetaHandshake   = "/meta/handshake"
	MetaConnect     = "/meta/connect"
	MetaDisconnect  = "/meta/disconnect"
	MetaSubscribe   = "/meta/subscribe"
	MetaUnsubscribe = "/meta/unsubscribe"
)

// Values of advice.reconnect.
const (
	ReconnectRetry     = "retry"
	ReconnectHandshake = "handshake"
	ReconnectNone      = "none"
)

// Message is one Bayeux message, as decoded from a client or as built to be
// encoded. Data, Ext and Subscription hold raw JSON and are never parsed by
// this package beyond validation.
type Message struct {
	Channel                  string
	ID                       string // normalized: a JSON number id is kept as its text
	ClientID                 string
	Data                     json.RawMessage
	Ext                      json.RawMessage
	Advice                   *Advice
	Subscription             json.RawMessage // a string or an array of strings
	ConnectionType           string
	SupportedConnectionTypes []string
	Version                  string
	MinimumVersion           string
	Timestamp                string

	// Reply marks a reply: Successful and Error are encoded, Data is not
	// unless set.
	Reply      bool
	Successful bool
	Error      string
	// ExtFields are ext entries added by the server; they are merged with
	// Ext when encoded.
	ExtFields []ExtField

	invalid *Error // set by the decoder when a field had the wrong type
}

// ExtField is one server-added ext entry with a raw JSON value.
type ExtField struct {
	Key   string
	Value json.RawMessage
}

// Invalid reports the problem the decoder found with m, or nil. A message
// with a problem must be answered with that error and not processed.
func (m *Message) Invalid() *Error { return m.invalid }

// Fail turns reply m into a failure carrying err (and err's reconnect advice
// when it has one and m has none).
func (m *Message) Fail(err *Error) {
	m.Reply = true
	m.Successful = false
	m.Error = err.Error()
	if err.Reconnect != "" && m.Advice == nil {
		m.Advice = &Advice{Reconnect: err.Reconnect, Interval: -1, Timeout: -1, MaxInterval: -1}
	}
}

// Advice is the Bayeux advice object. Interval, Timeout and MaxInterval are
// milliseconds; a negative value means the field is absent.
type Advice struct {
	Reconnect       string
	Interval        int64
	Timeout         int64
	MaxInterval     int64
	MultipleClients bool
}

// NewAdvice returns an Advice with every numeric field absent.
func NewAdvice(reconnect string) *Advice {
	return &Advice{Reconnect: reconnect, Interval: -1, Timeout: -1, MaxInterval: -1}
}

// UnmarshalJSON decodes advice leniently: unknown fields are ignored and
// numbers may be fractional (they are truncated to milliseconds).
func (a *Advice) UnmarshalJSON(b []byte) error {
	var w struct {
		Reconnect       string   `json:"reconnect"`
		Interval        *float64 `json:"interval"`
		Timeout         *float64 `json:"timeout"`
		MaxInterval     *float64 `json:"maxInterval"`
		MultipleClients bool     `json:"multiple-clients"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*a = Advice{Reconnect: w.Reconnect, Interval: ms(w.Interval), Timeout: ms(w.Timeout), MaxInterval: ms(w.MaxInterval), MultipleClients: w.MultipleClients}
	return nil
}

func ms(f *float64) int64 {
	if f == nil || math.IsNaN(*f) || *f < 0 {
		return -1
	}
	if *f > math.MaxInt32 {
		return math.MaxInt32
	}
	return int64(*f)
}

// Subscriptions returns the channel names of a subscribe or unsubscribe
// message: the single string or every element of the array. It reports
// ErrSubscriptionMissing or ErrSubscriptionInvalid for a missing field or one
// of another type.
func (m *Message) Subscriptions() ([]string, *Error) {
	raw := trimSpace(m.Subscription)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, ErrSubscriptionMissing
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, ErrSubscriptionInvalid
		}
		return []string{s}, nil
	case '[':
		var list []string
		if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
			return nil, ErrSubscriptionInvalid
		}
		return list, nil
	}
	return nil, ErrSubscriptionInvalid
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// String renders m as JSON for logs.
func (m *Message) String() string {
	return string(AppendMessage(nil, m))
}
