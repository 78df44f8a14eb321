package gatewaytest

import (
	"encoding/json"
	"fmt"
)

// Message is one Bayeux message as a decoded JSON object. JSON numbers are
// float64, as encoding/json decodes them into interfaces.
type Message map[string]any

// Channel returns the "channel" field, or "".
func (m Message) Channel() string { return m.Str("channel") }

// Str returns field key if it is a string, else "".
func (m Message) Str(key string) string {
	s, _ := m[key].(string)
	return s
}

// Obj returns field key if it is a JSON object, else nil.
func (m Message) Obj(key string) Message {
	o, _ := m[key].(map[string]any)
	return o
}

// Has reports whether field key is present (even if null).
func (m Message) Has(key string) bool {
	_, ok := m[key]
	return ok
}

// Successful reports whether the "successful" field is true.
func (m Message) Successful() bool {
	b, _ := m["successful"].(bool)
	return b
}

// IsReply reports whether m is a reply to a request: it carries
// "successful" and no "data" (a publish ack never carries data, which is
// how clients tell it from a delivered event).
func (m Message) IsReply() bool { return m.Has("successful") && !m.Has("data") }

// String renders m as JSON, for failure messages.
func (m Message) String() string {
	b, err := json.Marshal(map[string]any(m))
	if err != nil {
		return fmt.Sprintf("%#v", map[string]any(m))
	}
	return string(b)
}

// Events returns the messages of msgs that are not replies (see IsReply),
// in order.
func Events(msgs []Message) []Message {
	var out []Message
	for _, m := range msgs {
		if !m.IsReply() {
			out = append(out, m)
		}
	}
	return out
}

// FindReply returns the first reply in msgs on channel with id ("" matches
// any id).
func FindReply(msgs []Message, channel, id string) (Message, bool) {
	for _, m := range msgs {
		if m.IsReply() && m.Channel() == channel && (id == "" || m.Str("id") == id) {
			return m, true
		}
	}
	return nil, false
}

// decodeBatch decodes a JSON array of messages.
func decodeBatch(b []byte) ([]Message, error) {
	var msgs []Message
	if err := json.Unmarshal(b, &msgs); err != nil {
		return nil, fmt.Errorf("not a JSON array of messages: %w: %.200q", err, b)
	}
	if msgs == nil {
		return nil, fmt.Errorf("not a JSON array of messages: %.200q", b)
	}
	return msgs, nil
}

// build returns a copy of fields with channel, and id and clientId unless
// fields sets them; a field set to nil in fields is left out.
func build(channel, id, clientID string, fields Message) Message {
	m := Message{"channel": channel, "id": id}
	if clientID != "" && channel != "/meta/handshake" {
		m["clientId"] = clientID
	}
	for k, v := range fields {
		m[k] = v
	}
	for k, v := range m {
		if v == nil {
			delete(m, k)
		}
	}
	return m
}
