package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	backendv1 "github.com/cometgate/cometgate/proto/gen/cometgate/backend/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	tickInterval = 200 * time.Millisecond
	maxRooms     = 1000 // rooms are created on first use; this bounds them
	keptEvents   = 256  // join events kept per room for resuming streams
	demoToken    = "demo"
)

var (
	roomName   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	stockName  = regexp.MustCompile(`^[A-Z0-9.]{1,12}$`)
	spamWord   = regexp.MustCompile(`(?i)\bspam\b`)
	errBadData = status.Error(codes.InvalidArgument, "data must be a JSON object")
)

// chat implements the Cometgate backend contract: chat rooms with members,
// join events, a moderating publish hook, a token handshake and a ticker.
type chat struct {
	backendv1.UnimplementedBackendServer
	done  <-chan struct{} // closed at shutdown: ends open streams
	log   *slog.Logger
	epoch string // random per instance: the numbering of its room events

	mu    sync.Mutex // guards rooms and their contents
	rooms map[string]*room
}

// room is one chat room. Its events are numbered from 1 (the stream
// offset); changed is closed and replaced when one is added.
type room struct {
	members []string
	events  []roomEvent // the last keptEvents
	last    uint64      // offset of the newest event
	changed chan struct{}
}

type roomEvent struct {
	offset uint64
	data   []byte
}

func newChat(done <-chan struct{}, log *slog.Logger) *chat {
	c := &chat{done: done, log: log, epoch: rand.Text(), rooms: map[string]*room{}}
	for _, name := range []string{"lobby", "random"} {
		c.rooms[name] = &room{changed: make(chan struct{})}
	}
	return c
}

// room returns the named room, creating it; c.mu must be held.
func (c *chat) room(name string) (*room, error) {
	if r := c.rooms[name]; r != nil {
		return r, nil
	}
	if len(c.rooms) >= maxRooms {
		return nil, status.Error(codes.ResourceExhausted, "too many rooms")
	}
	r := &room{changed: make(chan struct{})}
	c.rooms[name] = r
	return r, nil
}

// Call serves the remote calls on /service/rooms/*, and /service/echo,
// which returns its data (the benchmarks' remote call).
func (c *chat) Call(_ context.Context, req *backendv1.CallRequest) (*backendv1.CallResponse, error) {
	if req.GetChannel() == "/service/echo" {
		return &backendv1.CallResponse{Data: req.GetData()}, nil
	}
	var in struct {
		Room string `json:"room"`
		User string `json:"user"`
	}
	var out any
	switch ch := req.GetChannel(); ch {
	case "/service/rooms/list":
		c.mu.Lock()
		names := make([]string, 0, len(c.rooms))
		for name := range c.rooms {
			names = append(names, name)
		}
		c.mu.Unlock()
		slices.Sort(names)
		out = map[string]any{"rooms": names}
	case "/service/rooms/join":
		if err := decode(req.GetData(), &in); err != nil {
			return nil, err
		}
		if in.User == "" {
			in.User = req.GetCaller().GetUserId() // bound by the handshake hook, if enabled
		}
		if err := checkRoom(in.Room); err != nil {
			return nil, err
		}
		if in.User == "" || len(in.User) > 64 {
			return nil, status.Error(codes.InvalidArgument, "user must be 1 to 64 bytes")
		}
		members, err := c.join(in.Room, in.User)
		if err != nil {
			return nil, err
		}
		out = map[string]any{"room": in.Room, "members": members}
	case "/service/rooms/members":
		if err := decode(req.GetData(), &in); err != nil {
			return nil, err
		}
		if err := checkRoom(in.Room); err != nil {
			return nil, err
		}
		c.mu.Lock()
		r := c.rooms[in.Room]
		var members []string
		if r != nil {
			members = slices.Clone(r.members)
		}
		c.mu.Unlock()
		if r == nil {
			return nil, status.Errorf(codes.NotFound, "no room %q", in.Room)
		}
		out = map[string]any{"room": in.Room, "members": nonNil(members)}
	default:
		return nil, status.Errorf(codes.NotFound, "no method on %s", ch)
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &backendv1.CallResponse{Data: data}, nil
}

// join adds user to the room (once) and records a join event.
func (c *chat) join(name, user string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.room(name)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(r.members, user) {
		r.members = append(r.members, user)
		r.last++
		data, _ := json.Marshal(map[string]any{"type": "join", "room": name, "user": user, "members": r.members})
		r.events = append(r.events, roomEvent{offset: r.last, data: data})
		if len(r.events) > keptEvents {
			r.events = slices.Delete(r.events, 0, len(r.events)-keptEvents)
		}
		close(r.changed)
		r.changed = make(chan struct{})
		c.log.Info("joined", "room", name, "user", user, "members", len(r.members))
	}
	return slices.Clone(r.members), nil
}

// Subscribe feeds /stocks/<SYMBOL> with ticks and /rooms/<room>/events
// with join events. The gateway opens one stream per subscribed channel,
// and also one for a subscription to a route's own pattern (/stocks/*,
// /rooms/**); those, like the chat channels /rooms/<room> where clients
// publish, get an open stream that carries nothing: a pattern subscriber
// receives what the streams of the channels it matches carry. (An error
// would make the gateway reopen the stream again and again.)
func (c *chat) Subscribe(req *backendv1.SubscribeRequest, stream grpc.ServerStreamingServer[backendv1.StreamMessage]) error {
	ch := req.GetChannel()
	if strings.HasSuffix(ch, "/*") || strings.HasSuffix(ch, "/**") {
		return c.wait(stream.Context())
	}
	if sym, ok := strings.CutPrefix(ch, "/stocks/"); ok {
		if !stockName.MatchString(sym) {
			return status.Errorf(codes.NotFound, "no stock %q", sym)
		}
		return c.ticks(stream, sym, req.GetResumeAfter())
	}
	if rest, ok := strings.CutPrefix(ch, "/rooms/"); ok {
		if name, ok := strings.CutSuffix(rest, "/events"); ok && roomName.MatchString(name) {
			return c.roomEvents(stream, name, req.GetResumeAfter(), req.GetResumeEpoch())
		}
		return c.wait(stream.Context())
	}
	return status.Errorf(codes.NotFound, "nothing to stream on %s", ch)
}

// ticks streams {"symbol","price","seq"} every tickInterval, seq being the
// offset, starting right after resumeAfter. The series is a function of seq
// alone, so any instance resumes it exactly: ticks carry no epoch.
func (c *chat) ticks(stream grpc.ServerStreamingServer[backendv1.StreamMessage], symbol string, resumeAfter uint64) error {
	c.log.Info("ticker stream opened", "symbol", symbol, "from", resumeAfter+1)
	defer c.log.Info("ticker stream closed", "symbol", symbol)
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for seq := resumeAfter + 1; ; seq++ {
		data, _ := json.Marshal(map[string]any{"symbol": symbol, "price": price(symbol, seq), "seq": seq})
		if err := stream.Send(&backendv1.StreamMessage{Data: data, Offset: seq}); err != nil {
			return err
		}
		select {
		case <-t.C:
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		case <-c.done:
			return status.Error(codes.Unavailable, "backend shutting down")
		}
	}
}

// roomEvents streams a room's join events, then each new one: only new
// ones on a fresh stream; those after resumeAfter that are still kept on a
// stream resumed in this instance's epoch; and every kept one when
// resumeAfter counts another instance's events (this process restarted:
// its events are numbered from 1 again, and skipping up to resumeAfter
// would lose them; the gateway sees the new epoch and tells its clients of
// the gap). An empty resumeEpoch (a gateway that predates epochs) is taken
// as this instance's unless resumeAfter is beyond its newest event.
func (c *chat) roomEvents(stream grpc.ServerStreamingServer[backendv1.StreamMessage], name string, resumeAfter uint64, resumeEpoch string) error {
	c.mu.Lock()
	r, err := c.room(name)
	next := resumeAfter + 1
	switch {
	case err != nil:
	case resumeAfter == 0:
		next = r.last + 1
	case resumeEpoch != c.epoch && (resumeEpoch != "" || resumeAfter > r.last):
		next = 1
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.log.Info("room events stream opened", "room", name, "from", next)
	defer c.log.Info("room events stream closed", "room", name)
	for {
		c.mu.Lock()
		var batch []roomEvent
		for _, e := range r.events {
			if e.offset >= next {
				batch = append(batch, e)
			}
		}
		changed := r.changed
		c.mu.Unlock()
		for _, e := range batch {
			if err := stream.Send(&backendv1.StreamMessage{Data: e.data, Offset: e.offset, Epoch: c.epoch}); err != nil {
				return err
			}
			next = e.offset + 1
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		case <-c.done:
			return status.Error(codes.Unavailable, "backend shutting down")
		}
	}
}

// wait holds a stream that has nothing to send open until it is cancelled
// or the backend shuts down.
func (c *chat) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-c.done:
		return status.Error(codes.Unavailable, "backend shutting down")
	}
}

// Publish moderates messages published to /rooms/<room>: it rejects those
// containing the word "spam" and marks the others' {text} as moderated.
// The event channels are read-only to clients.
func (c *chat) Publish(_ context.Context, req *backendv1.PublishRequest) (*backendv1.PublishResponse, error) {
	rest, ok := strings.CutPrefix(req.GetChannel(), "/rooms/")
	switch {
	case !ok:
		return &backendv1.PublishResponse{}, nil // not ours to moderate
	case strings.HasSuffix(rest, "/events"):
		return &backendv1.PublishResponse{RejectReason: "read_only"}, nil
	case !roomName.MatchString(rest):
		return &backendv1.PublishResponse{RejectReason: "no_such_room"}, nil
	}
	var v any
	if len(req.GetData()) > 0 && json.Unmarshal(req.GetData(), &v) != nil {
		return nil, status.Error(codes.InvalidArgument, "data is not JSON")
	}
	if hasWord(v, spamWord) {
		return &backendv1.PublishResponse{RejectReason: "spam"}, nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(req.GetData(), &fields) != nil {
		return &backendv1.PublishResponse{}, nil
	}
	var text string
	if raw, ok := fields["text"]; !ok || json.Unmarshal(raw, &text) != nil {
		return &backendv1.PublishResponse{}, nil
	}
	fields["moderated"] = json.RawMessage("true")
	data, err := json.Marshal(fields)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &backendv1.PublishResponse{Data: data}, nil
}

// Handshake accepts ext {"auth":{"token":"demo","user":"alice"}}; the user
// defaults to "guest". The reply's ext tells the client its user id.
func (c *chat) Handshake(_ context.Context, req *backendv1.HandshakeRequest) (*backendv1.HandshakeResponse, error) {
	var ext struct {
		Auth struct {
			Token string `json:"token"`
			User  string `json:"user"`
		} `json:"auth"`
	}
	if len(req.GetExt()) == 0 || json.Unmarshal(req.GetExt(), &ext) != nil || ext.Auth.Token != demoToken {
		return nil, status.Error(codes.Unauthenticated, "bad token")
	}
	user := ext.Auth.User
	if user == "" {
		user = "guest"
	}
	if len(user) > 64 {
		return nil, status.Error(codes.Unauthenticated, "user id too long")
	}
	out, _ := json.Marshal(map[string]any{"auth": map[string]string{"user": user}})
	return &backendv1.HandshakeResponse{UserId: user, Ext: out}, nil
}

// decode unmarshals JSON object data into v, as InvalidArgument on error.
func decode(data []byte, v any) error {
	if data = bytes.TrimSpace(data); len(data) == 0 || data[0] != '{' {
		return errBadData
	}
	if err := json.Unmarshal(data, v); err != nil {
		return status.Errorf(codes.InvalidArgument, "bad data: %v", err)
	}
	return nil
}

func checkRoom(name string) error {
	if !roomName.MatchString(name) {
		return status.Errorf(codes.InvalidArgument, "room must match %s", roomName)
	}
	return nil
}

// hasWord reports whether any string in the JSON value v matches re.
func hasWord(v any, re *regexp.Regexp) bool {
	switch x := v.(type) {
	case string:
		return re.MatchString(x)
	case []any:
		return slices.ContainsFunc(x, func(e any) bool { return hasWord(e, re) })
	case map[string]any:
		for _, e := range x {
			if hasWord(e, re) {
				return true
			}
		}
	}
	return false
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
