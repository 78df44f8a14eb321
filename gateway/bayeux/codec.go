package bayeux

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// Decoding errors. They concern the whole request and map to HTTP statuses
// (or websocket close codes) in the transports.
var (
	ErrEmptyBody     = errors.New("bayeux: empty body")
	ErrBadJSON       = errors.New("bayeux: malformed JSON")
	ErrNotMessages   = errors.New("bayeux: body is neither a message nor an array of messages")
	ErrEmptyBatch    = errors.New("bayeux: empty message array")
	ErrBatchTooLarge = errors.New("bayeux: too many messages in one request")
	// ErrInvalidUTF8 reports input that is not valid UTF-8. A websocket
	// transport answers it with close 1007 (invalid frame payload data),
	// the polling transports with HTTP 400.
	ErrInvalidUTF8 = errors.New("bayeux: invalid UTF-8")
)

type wireMessage struct {
	Channel                  string          `json:"channel"`
	ID                       json.RawMessage `json:"id"`
	ClientID                 string          `json:"clientId"`
	Data                     json.RawMessage `json:"data"`
	Ext                      json.RawMessage `json:"ext"`
	Advice                   *Advice         `json:"advice"`
	Subscription             json.RawMessage `json:"subscription"`
	ConnectionType           string          `json:"connectionType"`
	SupportedConnectionTypes []string        `json:"supportedConnectionTypes"`
	Version                  string          `json:"version"`
	MinimumVersion           string          `json:"minimumVersion"`
	Timestamp                string          `json:"timestamp"`
}

// Decode parses a transport payload: a JSON array of messages or a single
// message object. Whole-request problems are reported as ErrEmptyBody,
// ErrInvalidUTF8 (anywhere in data, raw data and ext included: what a
// client sends may be relayed to others, and JSON must be UTF-8),
// ErrBadJSON, ErrNotMessages, ErrEmptyBatch or ErrBatchTooLarge (when more
// than maxBatch messages arrive; maxBatch <= 0 means no limit). A message
// whose fields have the wrong types is still returned, with Invalid() set,
// so that it can be answered with a Bayeux error in its place.
// Unknown fields are ignored. The decoded messages never share memory with
// data. Common messages take a decoder without reflection (decodeFast);
// the rest, and anything unusual, go through encoding/json, with the same
// result.
func Decode(data []byte, maxBatch int) ([]Message, error) {
	data = trimSpace(data)
	if len(data) == 0 {
		return nil, ErrEmptyBody
	}
	if !utf8.Valid(data) {
		return nil, ErrInvalidUTF8
	}
	switch data[0] {
	case '[':
	case '{':
		data = append(append([]byte{'['}, data...), ']')
	default:
		if !json.Valid(data) {
			return nil, ErrBadJSON
		}
		return nil, ErrNotMessages
	}
	if msgs, ok := decodeFast(data, maxBatch); ok {
		return msgs, nil
	}
	return decodeStd(data, maxBatch)
}

// ValidJSON reports whether raw is exactly one JSON value in valid UTF-8,
// which every raw field (data, ext) must be before it may reach a client.
// It returns nil, ErrInvalidUTF8 or ErrBadJSON (also for an empty raw:
// callers decide what absent means). It is the one check for JSON that
// enters from elsewhere than a client's request (control API, backends);
// Decode already applies it to clients' requests. An escaped lone
// surrogate such as "\ud800" passes: it is valid JSON and plain ASCII on
// the wire, and browsers accept it.
func ValidJSON(raw []byte) error {
	if !utf8.Valid(raw) {
		return ErrInvalidUTF8
	}
	if !json.Valid(raw) {
		return ErrBadJSON
	}
	return nil
}

// decodeStd is Decode with encoding/json, for what decodeFast leaves.
func decodeStd(data []byte, maxBatch int) ([]Message, error) {
	var wire []wireMessage
	err := json.Unmarshal(data, &wire)
	if err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return nil, ErrBadJSON
		}
		return decodeSlow(data, maxBatch)
	}
	if len(wire) == 0 {
		return nil, ErrEmptyBatch
	}
	if maxBatch > 0 && len(wire) > maxBatch {
		return nil, ErrBatchTooLarge
	}
	msgs := make([]Message, len(wire))
	for i := range wire {
		fromWire(&msgs[i], &wire[i])
	}
	return msgs, nil
}

// decodeSlow decodes element by element so that a type error marks only
// the message that has it.
func decodeSlow(data []byte, maxBatch int) ([]Message, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return nil, ErrBadJSON
	}
	if len(raws) == 0 {
		return nil, ErrEmptyBatch
	}
	if maxBatch > 0 && len(raws) > maxBatch {
		return nil, ErrBatchTooLarge
	}
	msgs := make([]Message, len(raws))
	for i, raw := range raws {
		var w wireMessage
		err := json.Unmarshal(raw, &w)
		fromWire(&msgs[i], &w)
		if err == nil {
			continue
		}
		field := "message"
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			field = te.Field
		}
		msgs[i].invalid = ErrFieldInvalid.WithArgs(field)
		if field == "channel" {
			msgs[i].invalid = ErrChannelMissing
		}
	}
	return msgs, nil
}

func fromWire(m *Message, w *wireMessage) {
	*m = Message{
		Channel:                  w.Channel,
		ClientID:                 w.ClientID,
		Data:                     w.Data,
		Ext:                      w.Ext,
		Advice:                   w.Advice,
		Subscription:             w.Subscription,
		ConnectionType:           w.ConnectionType,
		SupportedConnectionTypes: w.SupportedConnectionTypes,
		Version:                  w.Version,
		MinimumVersion:           w.MinimumVersion,
		Timestamp:                w.Timestamp,
	}
	id := trimSpace(w.ID)
	if len(id) == 0 || string(id) == "null" {
		return
	}
	switch {
	case id[0] == '"':
		if json.Unmarshal(id, &m.ID) != nil {
			m.invalid = ErrMessageIDInvalid
		}
	case id[0] == '-' || id[0] >= '0' && id[0] <= '9':
		m.ID = string(id)
	default:
		m.invalid = ErrMessageIDInvalid
		return
	}
	if !ValidMessageID(m.ID) {
		m.invalid = ErrMessageIDInvalid
	}
}

// AppendBatch appends the JSON array of the already-encoded messages.
func AppendBatch(dst []byte, encoded ...[]byte) []byte {
	dst = append(dst, '[')
	for i, e := range encoded {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, e...)
	}
	return append(dst, ']')
}

// AppendMessage appends the JSON encoding of m to dst. The output is always
// valid UTF-8: strings are made so by AppendString, and raw fields (Data,
// Ext, Subscription, ExtFields), which are checked where they enter
// (Decode, ValidJSON), get a last line of defence in appendRaw. AppendMessage
// does not check that raw fields are JSON.
func AppendMessage(dst []byte, m *Message) []byte {
	dst = append(dst, `{"channel":`...)
	dst = AppendString(dst, m.Channel)
	if m.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = AppendString(dst, m.ID)
	}
	if m.ClientID != "" {
		dst = append(dst, `,"clientId":`...)
		dst = AppendString(dst, m.ClientID)
	}
	if m.Reply {
		if m.Successful {
			dst = append(dst, `,"successful":true`...)
		} else {
			dst = append(dst, `,"successful":false`...)
		}
		if m.Error != "" {
			dst = append(dst, `,"error":`...)
			dst = AppendString(dst, m.Error)
		}
	}
	if len(m.Subscription) > 0 {
		dst = append(dst, `,"subscription":`...)
		dst = appendRaw(dst, m.Subscription)
	}
	if m.Version != "" {
		dst = append(dst, `,"version":`...)
		dst = AppendString(dst, m.Version)
	}
	if m.MinimumVersion != "" {
		dst = append(dst, `,"minimumVersion":`...)
		dst = AppendString(dst, m.MinimumVersion)
	}
	if m.SupportedConnectionTypes != nil {
		dst = append(dst, `,"supportedConnectionTypes":[`...)
		for i, t := range m.SupportedConnectionTypes {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, t)
		}
		dst = append(dst, ']')
	}
	if len(m.Data) > 0 {
		dst = append(dst, `,"data":`...)
		dst = appendRaw(dst, m.Data)
	}
	if m.Advice != nil {
		dst = append(dst, `,"advice":`...)
		dst = appendAdvice(dst, m.Advice)
	}
	dst = appendExt(dst, m.Ext, m.ExtFields)
	if m.Timestamp != "" {
		dst = append(dst, `,"timestamp":`...)
		dst = AppendString(dst, m.Timestamp)
	}
	return append(dst, '}')
}

func appendAdvice(dst []byte, a *Advice) []byte {
	dst = append(dst, '{')
	n := len(dst)
	sep := func() {
		if len(dst) > n {
			dst = append(dst, ',')
		}
	}
	if a.Reconnect != "" {
		dst = append(dst, `"reconnect":`...)
		dst = AppendString(dst, a.Reconnect)
	}
	if a.Interval >= 0 {
		sep()
		dst = append(dst, `"interval":`...)
		dst = strconv.AppendInt(dst, a.Interval, 10)
	}
	if a.Timeout >= 0 {
		sep()
		dst = append(dst, `"timeout":`...)
		dst = strconv.AppendInt(dst, a.Timeout, 10)
	}
	if a.MaxInterval >= 0 {
		sep()
		dst = append(dst, `"maxInterval":`...)
		dst = strconv.AppendInt(dst, a.MaxInterval, 10)
	}
	if a.MultipleClients {
		sep()
		dst = append(dst, `"multiple-clients":true`...)
	}
	return append(dst, '}')
}

// appendExt writes "ext" merging the raw object with server-added fields.
func appendExt(dst []byte, raw json.RawMessage, fields []ExtField) []byte {
	raw = trimSpace(raw)
	if len(fields) == 0 {
		if len(raw) > 0 {
			dst = append(dst, `,"ext":`...)
			dst = appendRaw(dst, raw)
		}
		return dst
	}
	dst = append(dst, `,"ext":{`...)
	if len(raw) > 1 && raw[0] == '{' {
		inner := trimSpace(raw[1 : len(raw)-1])
		if len(inner) > 0 {
			dst = appendRaw(dst, inner)
			dst = append(dst, ',')
		}
	}
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, f.Key)
		dst = append(dst, ':')
		dst = appendRaw(dst, f.Value)
	}
	return append(dst, '}')
}

// appendRaw appends a raw JSON value. Bytes that are not valid UTF-8 are
// written as U+FFFD, as encoding/json does inside strings, so that no
// client ever receives an invalid text frame, whatever slipped past the
// checks at the edges (a filter or extension setting raw bytes, say). In
// JSON text such bytes can only stand inside strings, so valid JSON stays
// valid. The check costs one utf8.Valid per raw field, once per broadcast.
func appendRaw(dst, raw []byte) []byte {
	if utf8.Valid(raw) {
		return append(dst, raw...)
	}
	for len(raw) > 0 {
		r, size := utf8.DecodeRune(raw)
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, raw[:size]...)
		}
		raw = raw[size:]
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Besides the mandatory escapes it
// escapes U+2028 and U+2029 so that the output is also valid JavaScript
// (callback-polling), and replaces invalid UTF-8 with U+FFFD.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// EscapeJS rewrites raw U+2028/U+2029 in valid JSON text as \u escapes so the
// text is also a valid JavaScript expression (for callback-polling). It
// returns b unchanged when there is nothing to escape.
func EscapeJS(b []byte) []byte {
	if !bytes.Contains(b, []byte("\u2028")) && !bytes.Contains(b, []byte("\u2029")) {
		return b
	}
	b = bytes.ReplaceAll(b, []byte("\u2028"), []byte(`\u2028`))
	return bytes.ReplaceAll(b, []byte("\u2029"), []byte(`\u2029`))
}
