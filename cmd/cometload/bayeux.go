package main

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// wireMsg holds the fields of a received Bayeux message that the tool
// acts on. Data is only checked for presence: delivered payloads are
// accounted for by scanning the raw bytes (see payloadScanner).
type wireMsg struct {
	Channel    string   `json:"channel"`
	ID         msgID    `json:"id"`
	ClientID   string   `json:"clientId"`
	Successful *bool    `json:"successful"`
	Error      string   `json:"error"`
	Advice     *advice  `json:"advice"`
	Data       presence `json:"data"`
}

// ok reports whether the message is a successful reply.
func (m *wireMsg) ok() bool { return m.Successful != nil && *m.Successful }

// isReply reports whether the message answers a request (it has
// "successful"), as opposed to a delivered event.
func (m *wireMsg) isReply() bool { return m.Successful != nil }

// advice is a server's reconnect advice. Absent durations are nil.
type advice struct {
	Reconnect string `json:"reconnect"`
	Interval  *int64 `json:"interval"`
	Timeout   *int64 `json:"timeout"`
}

// msgID accepts a message id sent as a JSON string or number.
type msgID string

func (id *msgID) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = msgID(s)
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		*id = ""
		return nil
	}
	*id = msgID(b)
	return nil
}

// presence records whether a field holds a non-null value, without
// copying it.
type presence bool

func (p *presence) UnmarshalJSON(b []byte) error {
	*p = presence(!bytes.Equal(b, []byte("null")))
	return nil
}

// decodeBatch decodes a frame or body: a JSON array of messages, or a
// single message.
func decodeBatch(b []byte, into []wireMsg) ([]wireMsg, error) {
	b = bytes.TrimSpace(b)
	// encoding/json decodes into the existing elements of a reused slice
	// without zeroing them: clear them, or absent fields keep old values.
	clear(into[:cap(into)])
	into = into[:0]
	if len(b) > 0 && b[0] == '{' {
		var m wireMsg
		err := json.Unmarshal(b, &m)
		return append(into, m), err
	}
	err := json.Unmarshal(b, &into)
	return into, err
}

// needsDecode reports whether a frame holds anything but delivered events:
// replies carry "successful", meta messages a /meta/ channel. Frames
// without either take the fast path: payload scanning only.
func needsDecode(b []byte) bool {
	return bytes.Contains(b, []byte(`"successful"`)) || bytes.Contains(b, []byte(`"/meta/`))
}

// Messages the client sends. They are built by hand: publishes are on the
// hot path, and meta messages are few.

func appendHandshake(b []byte, id string, connType string) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"channel":"/meta/handshake","version":"1.0","minimumVersion":"1.0","supportedConnectionTypes":[`...)
	b = strconv.AppendQuote(b, connType)
	return append(b, `]}`...)
}

func appendConnect(b []byte, id, clientID, connType string, first bool) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"channel":"/meta/connect","clientId":`...)
	b = strconv.AppendQuote(b, clientID)
	b = append(b, `,"connectionType":`...)
	b = strconv.AppendQuote(b, connType)
	if first {
		b = append(b, `,"advice":{"timeout":0}`...)
	}
	return append(b, '}')
}

func appendSubscribe(b []byte, id, clientID, channel string) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"channel":"/meta/subscribe","clientId":`...)
	b = strconv.AppendQuote(b, clientID)
	b = append(b, `,"subscription":`...)
	b = strconv.AppendQuote(b, channel)
	return append(b, '}')
}

func appendDisconnect(b []byte, id, clientID string) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"channel":"/meta/disconnect","clientId":`...)
	b = strconv.AppendQuote(b, clientID)
	return append(b, '}')
}

// appendPublish appends a publish of raw JSON data.
func appendPublish(b []byte, id, clientID, channel string, data []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"channel":`...)
	b = strconv.AppendQuote(b, channel)
	b = append(b, `,"clientId":`...)
	b = strconv.AppendQuote(b, clientID)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}')
}
