package engine

import "encoding/json"

// ExtValue returns the raw JSON value of key in a message's ext object, for
// extensions and handlers. It reports false when ext is not an object or
// lacks key.
func ExtValue(ext json.RawMessage, key string) (json.RawMessage, bool) {
	if len(ext) == 0 {
		return nil, false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(ext, &obj) != nil {
		return nil, false
	}
	v, ok := obj[key]
	return v, ok
}
