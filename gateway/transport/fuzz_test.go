package transport_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/cometgate/cometgate/gateway/transport"
)

// FuzzPollRequest sends arbitrary long-polling and callback-polling
// requests (body or message parameter, content type) to the handler. Each
// gets a status from a short list, a 200 carries valid JSON in valid UTF-8
// (or a call of the requested callback with such an argument), and the
// handler keeps answering a clean handshake.
func FuzzPollRequest(f *testing.F) {
	for _, s := range []struct {
		body, ct string
		jsonp    bool
	}{
		{`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]`, "application/json;charset=UTF-8", false},
		{`message=%5B%7B%22channel%22%3A%22%2Fmeta%2Fhandshake%22%7D%5D`, "application/x-www-form-urlencoded", false},
		{`[{"channel":"/meta/connect","clientId":"x","connectionType":"long-polling"}]`, "text/plain; charset=ISO-8859-1", false},
		{`[{"channel":"/meta/handshake","version":"1.0"}]`, "", true},
		{`{"channel":"/x","data":"\u2028"}`, "application/json; charset=utf-16", false},
		{`[]`, "application/json", true},
		{"[{\"channel\":\"/meta/handshake\",\"version\":\"1.0\",\"ext\":{\"k\":\"\xff\xfe\xed\xa0\x80\"}}]", "application/json", false},
		{"[{\"channel\":\"/meta/handshake\",\"version\":\"1.0\",\"ext\":{\"k\":\"\xc0\xaf\"}}]", "", true},
		{"message=%5B%7B%22channel%22%3A%22%2Fmeta%2Fhandshake%22%2C%22ext%22%3A%22%ED%A0%80%22%7D%5D", "application/x-www-form-urlencoded", false},
		{`[{"channel":"/meta/handshake","version":"1.0","ext":{"k":"\ud800"}}]`, "application/json", false},
	} {
		f.Add([]byte(s.body), s.ct, s.jsonp)
	}
	e := engine.New(engine.Config{Timeout: time.Millisecond})
	e.Start(context.Background())
	defer e.Close(context.Background())
	h := transport.NewHandler(e, transport.Config{MaxRequestBytes: 4096})
	f.Fuzz(func(t *testing.T, body []byte, ct string, jsonp bool) {
		var req *http.Request
		if jsonp {
			q := url.Values{"message": {string(body)}, "jsonp": {"cb_1"}}
			req = httptest.NewRequest(http.MethodGet, "/cometd?"+q.Encode(), nil)
		} else {
			req = httptest.NewRequest(http.MethodPost, "/cometd", strings.NewReader(string(body)))
			req.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK:
			out := w.Body.Bytes()
			if !utf8.Valid(out) {
				t.Fatalf("answer %q is not valid UTF-8", out)
			}
			if jsonp {
				s := string(out)
				if !strings.HasPrefix(s, "cb_1(") || !strings.HasSuffix(s, ")") || !json.Valid(out[len("cb_1("):len(out)-1]) {
					t.Fatalf("JSONP answer %q", s)
				}
			} else if !json.Valid(out) {
				t.Fatalf("answer %q is not JSON", out)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusConflict:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		// The handler still serves.
		ok := httptest.NewRecorder()
		hs := httptest.NewRequest(http.MethodPost, "/cometd", strings.NewReader(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]`))
		hs.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(ok, hs)
		if ok.Code != http.StatusOK || !strings.Contains(ok.Body.String(), `"successful":true`) {
			t.Fatalf("handshake after the fuzzed request: %d %s", ok.Code, ok.Body)
		}
	})
}
