package ext

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
)

// Timesync is the server side of the "timesync" extension: for a meta
// message carrying ext.timesync {tc, l, o}, the reply carries
// {tc, ts, p, a}, where ts is when the request arrived, p how long the
// server took and a the client's estimated offset error; the field is left
// out when the client is already accurate to within AccuracyTarget.
type Timesync struct {
	// AccuracyTarget is the offset error below which no timesync reply is
	// sent. Default 25ms, as CometD.
	AccuracyTarget time.Duration
}

var (
	_ engine.Extension = (*Timesync)(nil)
	_ engine.ExtKeeper = (*Timesync)(nil)
)

// Incoming accepts every message.
func (t *Timesync) Incoming(*engine.Exchange) error { return nil }

// timesyncRequest is the client's ext.timesync.
type timesyncRequest struct {
	TC *float64 `json:"tc"`
	L  *float64 `json:"l"`
	O  *float64 `json:"o"`
}

func parseTimesync(ext json.RawMessage) (timesyncRequest, bool) {
	var in timesyncRequest
	raw, ok := engine.ExtValue(ext, "timesync")
	if !ok || json.Unmarshal(raw, &in) != nil || in.TC == nil {
		return in, false
	}
	return in, true
}

// KeepExt keeps, for the reply to a held connect, the numbers of
// ext.timesync that Outgoing uses, re-encoded, and nothing else.
func (t *Timesync) KeepExt(ext json.RawMessage) (bayeux.ExtField, bool) {
	in, ok := parseTimesync(ext)
	if !ok {
		return bayeux.ExtField{}, false
	}
	out := append(make([]byte, 0, 80), `{"tc":`...)
	out = strconv.AppendFloat(out, *in.TC, 'g', -1, 64)
	if in.L != nil {
		out = strconv.AppendFloat(append(out, `,"l":`...), *in.L, 'g', -1, 64)
	}
	if in.O != nil {
		out = strconv.AppendFloat(append(out, `,"o":`...), *in.O, 'g', -1, 64)
	}
	return bayeux.ExtField{Key: "timesync", Value: append(out, '}')}, true
}

// Outgoing adds ext.timesync to meta replies that asked for it.
func (t *Timesync) Outgoing(x *engine.Exchange) {
	if bayeux.KindOf(x.Request.Channel) != bayeux.KindMeta {
		return
	}
	in, ok := parseTimesync(x.Request.Ext)
	if !ok {
		return
	}
	tc := int64(*in.TC)
	ts := x.Received.UnixMilli()
	p := time.Now().UnixMilli() - ts
	out := make([]byte, 0, 96)
	out = append(out, `{"tc":`...)
	out = strconv.AppendInt(out, tc, 10)
	out = append(out, `,"ts":`...)
	out = strconv.AppendInt(out, ts, 10)
	out = append(out, `,"p":`...)
	out = strconv.AppendInt(out, p, 10)
	if in.L != nil {
		var o float64
		if in.O != nil {
			o = *in.O
		}
		a := tc + int64(o) + int64(*in.L) - ts
		target := t.AccuracyTarget
		if target <= 0 {
			target = 25 * time.Millisecond
		}
		if *in.L != 0 && abs(a) < target.Milliseconds() {
			return
		}
		out = append(out, `,"a":`...)
		out = strconv.AppendInt(out, a, 10)
	}
	out = append(out, '}')
	x.Reply.ExtFields = append(x.Reply.ExtFields, bayeux.ExtField{Key: "timesync", Value: out})
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
