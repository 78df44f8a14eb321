package transport

import "testing"

// TestValidRelayResponse: what another node answers reaches a client only
// if it is a poll's status with, for 200, a JSON array in UTF-8.
func TestValidRelayResponse(t *testing.T) {
	for _, tc := range []struct {
		name string
		resp RelayResponse
		want bool
	}{
		{"array", RelayResponse{Status: 200, Body: []byte(`[{"channel":"/meta/connect","successful":true}]`)}, true},
		{"empty array", RelayResponse{Status: 200, Body: []byte(`[]`)}, true},
		{"client gone", RelayResponse{Status: 0}, true},
		{"superseded", RelayResponse{Status: 500}, true},
		{"refused", RelayResponse{Status: 503}, true},
		{"object", RelayResponse{Status: 200, Body: []byte(`{"channel":"/x"}`)}, false},
		{"script", RelayResponse{Status: 200, Body: []byte(`[1]);alert(1);([`)}, false},
		{"bad UTF-8", RelayResponse{Status: 200, Body: []byte("[\"\xff\"]")}, false},
		{"empty body", RelayResponse{Status: 200}, false},
		{"redirect", RelayResponse{Status: 302}, false},
		{"cookie injection", RelayResponse{Status: 200, Body: []byte(`[]`), Browser: "x; Domain=evil"}, false},
		{"cookie", RelayResponse{Status: 200, Body: []byte(`[]`), Browser: "abc123XYZ"}, true},
	} {
		if got := validRelayResponse(&tc.resp); got != tc.want {
			t.Errorf("%s: validRelayResponse(%d, %q) = %v; want %v", tc.name, tc.resp.Status, tc.resp.Body, got, tc.want)
		}
	}
}

// TestBatchSourceArray: the messages of several message= values are
// relayed as one array that decodes to the same messages.
func TestBatchSourceArray(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  batchSource
		want string
	}{
		{"body", batchSource{body: []byte(`{"channel":"/a"}`)}, `{"channel":"/a"}`},
		{"one value", batchSource{vals: []string{`[{"channel":"/a"}]`}}, `[{"channel":"/a"}]`},
		{"values", batchSource{vals: []string{` [{"channel":"/a"},{"channel":"/b"}] `, `{"channel":"/c"}`, `[ ]`, `[{"channel":"/d"}]`}},
			`[{"channel":"/a"},{"channel":"/b"},{"channel":"/c"},{"channel":"/d"}]`},
	} {
		if got := string(tc.src.array()); got != tc.want {
			t.Errorf("%s: array() = %s; want %s", tc.name, got, tc.want)
		}
	}
}
