package api

import "testing"

func TestCutData(t *testing.T) {
	for _, tc := range []struct {
		body, data, rest string
		ok               bool
	}{
		{`{"channel":"/a","data":{"n":9007199254740993}}`, `{"n":9007199254740993}`, `{"channel":"/a"}`, true},
		{`{"data":null}`, `null`, `{}`, true},
		{` { "d\u0061ta" : [1, 2] , "ext" : { } } trailing`, `[1, 2]`, `{"ext":{ }}`, true},
		{`{"dataJson":"MQ==","data":1}`, `1`, `{"dataJson":"MQ=="}`, true},
		{`{"channel":"/a"}`, ``, ``, false},    // no data
		{`{"data":1,"data":2}`, ``, ``, false}, // duplicate
		{`[{"data":1}]`, ``, ``, false},        // not an object
		{`{"data":1`, ``, ``, false},           // truncated
		{`{"data":{"a":}}`, ``, ``, false},     // malformed
		{`{"channel":"/a","data":"\u00e9"}`, `"\u00e9"`, `{"channel":"/a"}`, true},
	} {
		data, rest, ok := cutData([]byte(tc.body))
		if ok != tc.ok || string(data) != tc.data || string(rest) != tc.rest {
			t.Errorf("cutData(%s) = %s, %s, %v; want %s, %s, %v", tc.body, data, rest, ok, tc.data, tc.rest, tc.ok)
		}
	}
}
