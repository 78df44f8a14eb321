package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
)

// errDataExclusive is a REST body with both data and data_json.
var errDataExclusive = errors.New("data and data_json are exclusive")

// exactDataJSON is the REST API's marshaler: runtime.JSONPb, except that
// the "data" of a request body reaches the service as the JSON text the
// caller sent rather than through google.protobuf.Value, whose numbers
// are float64 (9007199254740993 would arrive as 9007199254740992). It
// applies to any request message with a google.protobuf.Value field
// "data" and a bytes field "data_json" (PublishRequest, DeliverRequest):
// the body's data is cut out, compacted (whitespace between tokens
// removed; numbers, escapes and key order kept byte for byte), and set as
// data_json; the rest of the body is decoded by protojson as before.
type exactDataJSON struct {
	*runtime.JSONPb
}

var _ runtime.Marshaler = exactDataJSON{}

// NewDecoder returns a decoder of one request body read from r.
func (m exactDataJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		p, ok := v.(proto.Message)
		if !ok {
			return m.JSONPb.NewDecoder(r).Decode(v)
		}
		dataJSON := rawDataField(p.ProtoReflect().Descriptor())
		if dataJSON == nil {
			return m.JSONPb.NewDecoder(r).Decode(v)
		}
		// One JSON value, as runtime.JSONPb reads (io.EOF when empty).
		var body json.RawMessage
		if err := json.NewDecoder(r).Decode(&body); err != nil {
			return err
		}
		data, rest, ok := cutData(body)
		if !ok {
			return m.Unmarshal(body, p)
		}
		if err := m.Unmarshal(rest, p); err != nil {
			return err
		}
		if len(p.ProtoReflect().Get(dataJSON).Bytes()) > 0 {
			return errDataExclusive
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, data); err != nil {
			return err
		}
		p.ProtoReflect().Set(dataJSON, protoreflect.ValueOfBytes(compact.Bytes()))
		return nil
	})
}

// rawDataField returns the data_json field of a message that has one
// beside a google.protobuf.Value field named data, or nil.
func rawDataField(md protoreflect.MessageDescriptor) protoreflect.FieldDescriptor {
	fields := md.Fields()
	data, raw := fields.ByName("data"), fields.ByName("data_json")
	if data == nil || raw == nil || raw.Kind() != protoreflect.BytesKind || raw.IsList() ||
		data.Message() == nil || data.Message().FullName() != (&structpb.Value{}).ProtoReflect().Descriptor().FullName() {
		return nil
	}
	return raw
}

// cutData splits a JSON object into the raw value of its "data" member and
// the object without it. ok is false if body is not an object with
// exactly one "data" member: protojson then decodes (or refuses) the
// whole body as before.
func cutData(body []byte) (data json.RawMessage, rest []byte, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, false
	}
	rest = append(make([]byte, 0, len(body)), '{')
	for dec.More() {
		tok, err := dec.Token()
		key, isKey := tok.(string)
		if err != nil || !isKey {
			return nil, nil, false
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, nil, false
		}
		if key == "data" {
			if data != nil {
				return nil, nil, false // duplicate: protojson says so
			}
			data = value
			continue
		}
		if len(rest) > 1 {
			rest = append(rest, ',')
		}
		k, _ := json.Marshal(key) // a string always encodes
		rest = append(append(append(rest, k...), ':'), value...)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') || data == nil {
		return nil, nil, false
	}
	return data, append(rest, '}'), true
}
