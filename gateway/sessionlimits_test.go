package gateway_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway/gatewaytest"
)

// A client's advice.interval is honoured up to what the server lets a
// session go without a connect (the larger of interval and maxInterval),
// as its advice.timeout is honoured up to the server's timeout: a huge
// interval no longer keeps a session alive for weeks.
func TestConnectClientIntervalCapped(t *testing.T) {
	t.Parallel()
	const maxInterval = 500 * time.Millisecond
	srv := newServer(t, longT, func(c *config.Config) {
		c.Bayeux.MaxInterval = config.Duration(maxInterval)
		c.Bayeux.SweepPeriod = config.Duration(50 * time.Millisecond)
	})
	tests := []struct {
		name     string
		interval any
		want     float64 // advice.interval in the reply
	}{
		{name: "huge", interval: 1e12, want: 500},
		{name: "beyond int64", interval: json.RawMessage("1e300"), want: 500},
		{name: "just over", interval: 501, want: 500},
		{name: "shorter, fractional", interval: 300.9, want: 300},
		{name: "negative is ignored", interval: -5, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, srv)
			c.handshake(nil)
			r, _ := c.connect(M{"advice": M{"timeout": 0, "interval": tt.interval}})
			wantSuccess(t, r)
			if got := r.Obj("advice")["interval"]; got != tt.want {
				t.Errorf("advice.interval = %v; want %v", got, tt.want)
			}
			// Without another connect the session expires within
			// interval + maxInterval of the reply (plus a sweep).
			id := c.ClientID
			gatewaytest.Eventually(t, 10*time.Second, func() error {
				if srv.Engine().Session(id) != nil {
					return fmt.Errorf("session %s still alive", id)
				}
				return nil
			})
		})
	}
}
