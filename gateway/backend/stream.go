package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Pauses before a broken stream is reopened: from streamBackoffMin,
// doubling up to the backend's ReconnectMaxDelay while it keeps breaking
// before it was healthy (delivered a message, or stayed open
// streamHealthyAfter, since streams may be silent for long), and
// streamPermanentPause after an error that a quick retry cannot fix. A
// stream opened while the backend is unreachable waits for the connection
// (gRPC's wait-for-ready), so that it reopens as soon as the backend is
// back, within the connection backoff.
const (
	streamBackoffMin     = 100 * time.Millisecond
	streamPermanentPause = 10 * time.Second
	streamHealthyAfter   = 10 * time.Second
)

// streamKey names one upstream stream: per subscribed channel for contract
// routes, one per route (channel "") for method routes.
type streamKey struct {
	rt      *route
	channel string
}

// activeStream is an open upstream stream and who needs it.
type activeStream struct {
	key      streamKey
	channels map[string]int // subscribed channels it feeds -> subscriptions
	refs     int
	cancel   context.CancelFunc
}

func keyFor(rt *route, channel string) streamKey {
	if rt.method != nil {
		return streamKey{rt: rt}
	}
	return streamKey{rt: rt, channel: channel}
}

// Subscribed opens the stream feeding channel on its first subscriber.
func (r *Router) Subscribed(_ *engine.Session, channel string, _ int) {
	if len(r.cur.Load().streams) == 0 {
		return // the common case, without the lock
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subscribedLocked(channel, 1)
}

// subscribedLocked counts n subscriptions to channel on the stream route
// now in force that matches it, if any, opening its stream on the first.
func (r *Router) subscribedLocked(channel string, n int) {
	rt := r.cur.Load().streams.matchSubscription(channel)
	if rt == nil || r.ctx.Err() != nil {
		return
	}
	key := keyFor(rt, channel)
	st := r.open[key]
	if st == nil {
		ctx, cancel := context.WithCancel(r.ctx)
		st = &activeStream{key: key, channels: map[string]int{}, cancel: cancel}
		r.open[key] = st
		r.wg.Add(1)
		go r.runStream(ctx, st)
		r.log.Debug("backend stream opened", "channel", channel, "route", rt.pattern, "backend", rt.Backend)
	}
	st.refs += n
	st.channels[channel] += n
}

// Unsubscribed cancels the stream after its last subscriber leaves.
func (r *Router) Unsubscribed(_ *engine.Session, channel string, _ int) {
	if len(r.cur.Load().streams) == 0 {
		return // no stream route, hence no stream open (Reload closed them)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rt := r.cur.Load().streams.matchSubscription(channel)
	if rt == nil {
		return
	}
	key := keyFor(rt, channel)
	st := r.open[key]
	if st == nil {
		return
	}
	if st.channels[channel]--; st.channels[channel] <= 0 {
		delete(st.channels, channel)
	}
	if st.refs--; st.refs <= 0 {
		st.cancel()
		delete(r.open, key)
		r.log.Debug("backend stream closed", "channel", channel, "route", rt.pattern)
	}
}

// OpenStreams returns the number of upstream streams open, for tests and
// stats.
func (r *Router) OpenStreams() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.open)
}

// runStream keeps one upstream stream open until ctx ends, reopening it
// with exponential backoff and jitter when it breaks. The first break
// after a healthy stream is logged as a warning, further ones at debug
// level.
func (r *Router) runStream(ctx context.Context, st *activeStream) {
	defer r.wg.Done()
	var pos position
	reopened := false
	maxBackoff := st.key.rt.b.spec.ReconnectMaxDelay
	backoff := min(streamBackoffMin, maxBackoff)
	fails := 0
	for {
		if reopened {
			r.counts.streamReopens.Add(1)
		} else {
			r.counts.streamOpens.Add(1)
		}
		healthy, err := r.pump(ctx, st, &pos, reopened)
		if ctx.Err() != nil {
			return
		}
		if healthy {
			st.key.rt.b.reached(ctx, r.log, nil)
		} else {
			st.key.rt.b.reached(ctx, r.log, err)
		}
		if healthy {
			backoff, fails = min(streamBackoffMin, maxBackoff), 0
		}
		pause := backoff/2 + rand.N(backoff/2+1)
		if permanent(err) {
			// Retrying soon cannot help; keep trying slowly in case the
			// backend is fixed or redeployed.
			pause = streamPermanentPause
		}
		fails++
		level := slog.LevelDebug
		if fails == 1 {
			level = slog.LevelWarn
		}
		r.log.Log(ctx, level, "backend stream broke; reopening", "route", st.key.rt.pattern, "channel", st.key.channel, "backend", st.key.rt.Backend, "err", err, "in", pause, "failures", fails)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		backoff = min(2*backoff, maxBackoff)
		reopened = true
	}
}

// permanent reports stream errors that a quick retry cannot fix.
func permanent(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.Unimplemented, codes.PermissionDenied, codes.Unauthenticated, codes.FailedPrecondition:
		return true
	}
	return false
}

// upstream is one message received on a backend stream.
type upstream struct {
	data, ext             []byte
	channel, client, user string
	offset                uint64
	epoch                 string
}

// position is where a stream stands: the offset and epoch of the last
// message received that had an offset.
type position struct {
	offset uint64
	epoch  string
}

// followedBy reports whether u continues the stream exactly after p: the
// next offset of the same epoch. Anything else, a restarted backend (a new
// epoch) included, may have lost messages.
func (p position) followedBy(u *upstream) bool {
	return p.offset != 0 && u.offset == p.offset+1 && u.epoch == p.epoch
}

// pump opens the stream once and relays its messages until it ends,
// advancing pos. A reopened stream whose first message does not follow pos
// exactly is preceded by a gap notice. It reports whether the stream was
// healthy: it delivered a message or stayed open streamHealthyAfter.
func (r *Router) pump(ctx context.Context, st *activeStream, pos *position, reopened bool) (bool, error) {
	rt := st.key.rt
	md := rt.b.metadata(nil, st.key.channel, nil)
	ctx = metadata.NewOutgoingContext(ctx, md)
	var recv func() (*upstream, error)
	if rt.method != nil {
		req, err := rt.method.request(rt.Request)
		if err != nil {
			return false, err
		}
		cs, err := rt.b.grpc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, rt.method.fullName, grpc.WaitForReady(true))
		if err != nil {
			return false, err
		}
		if err := cs.SendMsg(req); err != nil {
			return false, err
		}
		if err := cs.CloseSend(); err != nil {
			return false, err
		}
		recv = func() (*upstream, error) {
			resp := rt.method.response()
			if err := cs.RecvMsg(resp); err != nil {
				return nil, err
			}
			data, err := marshalJSON.Marshal(resp)
			if err != nil {
				// protojson refuses strings that are not valid UTF-8:
				// drop this message, keep the stream.
				r.invalid.Add(1)
				r.log.Warn("stream message dropped: cannot map it to JSON", "route", rt.pattern, "err", err)
				return &upstream{}, nil
			}
			ch, err := expand(rt, data)
			if err != nil {
				r.log.Warn("stream message has no channel", "route", rt.pattern, "err", err)
				return &upstream{}, nil
			}
			return &upstream{data: data, channel: ch}, nil
		}
	} else {
		cs, err := rt.b.contract.Subscribe(ctx, &backendv1.SubscribeRequest{Channel: st.key.channel, ResumeAfter: pos.offset, ResumeEpoch: pos.epoch}, grpc.WaitForReady(true))
		if err != nil {
			return false, err
		}
		recv = func() (*upstream, error) {
			m, err := cs.Recv()
			if err != nil {
				return nil, err
			}
			return &upstream{data: m.GetData(), ext: m.GetExt(), channel: m.GetChannel(), client: m.GetClientId(), user: m.GetUserId(), offset: m.GetOffset(), epoch: m.GetEpoch()}, nil
		}
	}
	opened := time.Now()
	got := false
	for {
		u, err := recv()
		if err != nil {
			if isEOF(err) {
				err = errStreamEnded
			}
			return got || time.Since(opened) >= streamHealthyAfter, err
		}
		if u.channel == "" && u.data == nil {
			continue // dropped (already logged)
		}
		if reopened && !got && !pos.followedBy(u) {
			r.gap(st)
		}
		got = true
		if u.offset != 0 {
			*pos = position{offset: u.offset, epoch: u.epoch}
		}
		r.relay(st, u)
	}
}

// relay delivers one upstream message to its channel or its addressee.
func (r *Router) relay(st *activeStream, u *upstream) {
	rt := st.key.rt
	ch := u.channel
	if ch == "" {
		ch = st.key.channel
	}
	name, wild, ok := bayeux.ParseChannel(ch)
	if !ok || wild != bayeux.NotWild || !bayeux.Match(rt.pattern, name) {
		r.log.Warn("stream message for a channel outside its route dropped", "route", rt.pattern, "channel", ch)
		return
	}
	data := u.data
	if len(data) == 0 {
		data = []byte("null")
	}
	if err := validUpstream(data, u.ext); err != nil {
		r.invalid.Add(1)
		r.log.Warn("stream message dropped", "route", rt.pattern, "channel", name, "err", err)
		return
	}
	switch {
	case u.client != "":
		if s := r.e.Session(u.client); s != nil {
			s.Deliver(&bayeux.Message{Channel: name, Data: data, Ext: u.ext})
		}
	case u.user != "":
		m := &bayeux.Message{Channel: name, Data: data, Ext: u.ext}
		for _, s := range r.e.UserSessions(u.user) {
			s.Deliver(m)
		}
	default:
		if _, err := r.e.PublishLocal(name, data, u.ext); err != nil && !errors.Is(err, engine.ErrClosing) {
			r.log.Debug("stream message refused", "route", rt.pattern, "channel", name, "err", err)
		}
	}
}

// InvalidDropped returns how many stream messages were dropped because
// their data or ext was not JSON in valid UTF-8.
func (r *Router) InvalidDropped() int64 { return r.invalid.Load() }

// validUpstream checks the data and ext (empty: none) of a stream message:
// both must be JSON in valid UTF-8 (bayeux.ValidJSON) before they may reach
// a client. A message that fails is dropped and logged, without a gap
// notice: nothing was lost in transit, the backend sent something no
// client could read.
func validUpstream(data, ext []byte) error {
	if err := bayeux.ValidJSON(data); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if len(ext) > 0 {
		if err := bayeux.ValidJSON(ext); err != nil {
			return fmt.Errorf("ext: %w", err)
		}
	}
	return nil
}

// gapExt marks the notice sent when a reopened stream may have lost
// messages.
var gapExt = json.RawMessage(`{"cometgate":{"gap":true}}`)

// gap tells the subscribers of a reopened stream that messages may have
// been lost: a message with null data and ext {"cometgate":{"gap":true}}
// on every channel the stream feeds.
func (r *Router) gap(st *activeStream) {
	r.counts.gaps.Add(1)
	r.mu.Lock()
	var chans []string
	for ch := range st.channels {
		if _, wild, _ := bayeux.ParseChannel(ch); wild == bayeux.NotWild {
			chans = append(chans, ch)
		}
	}
	r.mu.Unlock()
	for _, ch := range chans {
		r.e.PublishLocal(ch, json.RawMessage("null"), gapExt)
	}
}

// expand fills a route's channel template from a message's JSON fields.
func expand(rt *route, data []byte) (string, error) {
	tpl := rt.ChannelTemplate
	if tpl == "" {
		return rt.pattern, nil
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		return "", err
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(tpl, '{')
		if i < 0 {
			b.WriteString(tpl)
			break
		}
		j := strings.IndexByte(tpl[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("unclosed placeholder in %q", rt.ChannelTemplate)
		}
		b.WriteString(tpl[:i])
		field := tpl[i+1 : i+j]
		v, ok := fields[field]
		if !ok {
			return "", fmt.Errorf("field %q missing", field)
		}
		b.WriteString(fmt.Sprint(v))
		tpl = tpl[i+j+1:]
	}
	return b.String(), nil
}
