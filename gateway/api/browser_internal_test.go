package api

import "testing"

// TestHostAllowed checks the Host rule alone, including the listen
// address's own name, which an end-to-end test cannot listen on.
func TestHostAllowed(t *testing.T) {
	s := New(nil, Config{Listen: "gw.example:8081", AllowedHosts: []string{"Ops.Internal."}})
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"gw.example:8081", true},
		{"gw.example", true},
		{"GW.EXAMPLE.:9", true},
		{"ops.internal", true},
		{"ops.internal.:8081", true},
		{"localhost:8081", true},
		{"127.0.0.1:8081", true},
		{"10.0.0.5", true},
		{"[::1]:8081", true},
		{"[::1]", true},
		{"[fe80::1%25eth0]:8081", true},
		{"", false},
		{":8081", false},
		{"evil.example:8081", false},
		{"gw.example.evil.example", false},
		{"x.gw.example", false},
		{"localhost.evil.example", false},
		{"app.localhost:8081", false},
	} {
		if got := s.hostAllowed(tc.host); got != tc.want {
			t.Errorf("hostAllowed(%q) = %v; want %v", tc.host, got, tc.want)
		}
	}
}
