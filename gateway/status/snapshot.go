package status

import (
	"cmp"
	"slices"
	"time"
)

// Snapshot is the data of one message on Channel. Rates are per second
// over the time since the previous snapshot sent by the same publisher (0
// in its first).
type Snapshot struct {
	Time        time.Time      `json:"time"`
	Uptime      string         `json:"uptime"`
	Sessions    int            `json:"sessions"`
	ByTransport map[string]int `json:"byTransport"` // "none": handshaken, not connected yet
	Connections int            `json:"connections"`
	Totals      Totals         `json:"totals"`
	Rates       Rates          `json:"rates"`
	TopBySubs   []ChannelStat  `json:"topBySubscribers"`
	TopByRate   []ChannelStat  `json:"topByRate"`
	Backends    []BackendStat  `json:"backends"`
	Errors      []Entry        `json:"errors"`
}

// Totals are the engine's cumulative counters.
type Totals struct {
	Handshakes int64 `json:"handshakes"`
	Published  int64 `json:"published"`
	Delivered  int64 `json:"delivered"`
	Dropped    int64 `json:"dropped"`
	Expired    int64 `json:"expired"`
}

// Rates are Totals' growth per second.
type Rates struct {
	Handshakes float64 `json:"handshakes"`
	Published  float64 `json:"published"`
	Delivered  float64 `json:"delivered"`
}

// ChannelStat is one channel in a top list.
type ChannelStat struct {
	Channel     string  `json:"channel"`
	Subscribers int     `json:"subscribers"`
	Published   int64   `json:"published"`
	Rate        float64 `json:"rate"` // messages per second
}

// BackendStat is one backend's state and call latency.
type BackendStat struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Required bool   `json:"required"`
	State    string `json:"state"`
	Calls    int64  `json:"calls"`
	Failures int64  `json:"failures"`
	// AvgMs is the mean duration of the calls since the previous snapshot,
	// or of all calls when none finished in between; 0 with no call yet.
	AvgMs float64 `json:"avgMs"`
}

// sampler holds the previous snapshot's counters, for rates; owned by one
// publisher goroutine.
type sampler struct {
	at       time.Time
	totals   Totals
	channels map[string]int64 // published, by channel
	backends map[string][2]int64
}

// snapshot builds the current Snapshot and moves smp forward.
func (s *Status) snapshot(smp *sampler, now time.Time) Snapshot {
	e := s.e
	st := e.Stats()
	snap := Snapshot{
		Time:        now.UTC(),
		Uptime:      now.Sub(s.started).Round(time.Second).String(),
		ByTransport: make(map[string]int),
		Connections: s.cfg.Conns(),
		Totals: Totals{
			Handshakes: st.Handshakes.Load(), Published: st.Published.Load(), Delivered: st.Delivered.Load(),
			Dropped: st.Dropped.Load(), Expired: st.Expired.Load(),
		},
		TopBySubs: []ChannelStat{},
		TopByRate: []ChannelStat{},
		Backends:  []BackendStat{},
		Errors:    []Entry{},
	}
	for _, ss := range e.Sessions() {
		t := ss.Transport()
		if t == "" {
			t = "none"
		}
		snap.ByTransport[t]++
		snap.Sessions++
	}
	secs := 0.0
	if !smp.at.IsZero() {
		secs = now.Sub(smp.at).Seconds()
	}
	rate := func(cur, prev int64) float64 {
		if secs <= 0 || cur < prev {
			return 0
		}
		return float64(cur-prev) / secs
	}
	snap.Rates = Rates{
		Handshakes: rate(snap.Totals.Handshakes, smp.totals.Handshakes),
		Published:  rate(snap.Totals.Published, smp.totals.Published),
		Delivered:  rate(snap.Totals.Delivered, smp.totals.Delivered),
	}
	chans := e.Channels()
	counts := make(map[string]int64, len(chans))
	all := make([]ChannelStat, 0, len(chans))
	for _, c := range chans {
		if reserved(c.Name) {
			continue
		}
		counts[c.Name] = c.Published
		prev, seen := smp.channels[c.Name]
		r := 0.0
		if seen {
			r = rate(c.Published, prev)
		}
		all = append(all, ChannelStat{Channel: c.Name, Subscribers: c.Subscribers, Published: c.Published, Rate: r})
	}
	n := s.cfg.TopChannels
	slices.SortFunc(all, func(a, b ChannelStat) int {
		return cmp.Or(cmp.Compare(b.Subscribers, a.Subscribers), cmp.Compare(a.Channel, b.Channel))
	})
	for _, c := range all[:min(n, len(all))] {
		if c.Subscribers > 0 {
			snap.TopBySubs = append(snap.TopBySubs, c)
		}
	}
	slices.SortFunc(all, func(a, b ChannelStat) int {
		return cmp.Or(cmp.Compare(b.Rate, a.Rate), cmp.Compare(b.Published, a.Published), cmp.Compare(a.Channel, b.Channel))
	})
	for _, c := range all[:min(n, len(all))] {
		if c.Published > 0 {
			snap.TopByRate = append(snap.TopByRate, c)
		}
	}
	backends := make(map[string][2]int64)
	for _, b := range s.cfg.Backends() {
		ns := int64(b.CallTime)
		backends[b.Name] = [2]int64{b.Calls, ns}
		bs := BackendStat{Name: b.Name, Kind: b.Kind, Required: b.Required, State: b.State, Calls: b.Calls, Failures: b.Failures}
		if bs.State == "" {
			bs.State = "HTTP"
		}
		prev := smp.backends[b.Name]
		if d := b.Calls - prev[0]; d > 0 && ns >= prev[1] {
			bs.AvgMs = float64(ns-prev[1]) / float64(d) / 1e6
		} else if b.Calls > 0 {
			bs.AvgMs = float64(ns) / float64(b.Calls) / 1e6
		}
		snap.Backends = append(snap.Backends, bs)
	}
	if s.cfg.Errors != nil {
		snap.Errors = s.cfg.Errors.Recent()
	}
	*smp = sampler{at: now, totals: snap.Totals, channels: counts, backends: backends}
	return snap
}
