package demo

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
	"github.com/cometgate/cometgate/gateway/internal/cometdjs"
)

//go:embed static
var static embed.FS

// cometdPrefix is where Handler serves the vendored CometD client.
const cometdPrefix = "/js/cometd/"

// Handler serves the demo page, its scripts and, under /js/cometd/, the
// official CometD JavaScript client the page imports (with its LICENSE).
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux := http.NewServeMux()
	mux.Handle(cometdPrefix, http.StripPrefix(strings.TrimSuffix(cometdPrefix, "/"), cometdjs.Handler()))
	mux.Handle("/", http.FileServerFS(sub))
	return mux
}

// Member is one member of a chat room as the member list shows it. A
// member is one session: two sessions that join with the same name are two
// members.
type Member struct {
	// ID identifies the member among the Chat's members; it is not the
	// session's client id, which other members must not learn.
	ID string `json:"id"`
	// Name is the name the member joined with.
	Name string `json:"name"`
	// Label is Name, or "Name #ID" while another member of the room has
	// the same name.
	Label string `json:"label"`
}

// member is a session's membership of one room.
type member struct {
	seq  uint64 // orders members of one name; ID is its decimal form
	id   string
	name string
	room string
	s    *engine.Session
}

// Chat is the server side of the chat room: it tracks which session is a
// member of which room, announces members joining and leaving (also when
// their session is removed because its connection died), and delivers
// private messages. Its methods are safe for concurrent use.
type Chat struct {
	e        *engine.Engine
	mu       sync.Mutex                    // guards rooms, sessions, lastSeq
	rooms    map[string]map[string]*member // room -> member id -> member
	sessions map[*engine.Session]*member   // a session is at most one member
	lastSeq  uint64                        // the last member id given out
}

// maxName bounds a member name.
const maxName = 64

// The service channels the demo answers.
const (
	joinChannel    = "/service/members"
	privateChannel = "/service/privatechat"
	echoChannel    = "/service/echo"
)

// Channels returns the service channels the demo answers.
func Channels() []string {
	return []string{joinChannel, privateChannel, echoChannel}
}

// Register installs the chat and echo services on e.
//
// A publish to /service/members {"user": name, "room": "/chat/x"} makes the
// session a member of the room (leaving the room it was in); it is a remote
// call whose answer, on the same channel and id, is the new Member. The
// room's member list ([]Member) is then published on /members/x and
// "name has joined" on the room. When a member's session is removed
// (disconnect, expiry after its connection died, slow consumer), the room
// is told that it left, with the reason.
func Register(e *engine.Engine) (*Chat, error) {
	c := &Chat{
		e:        e,
		rooms:    make(map[string]map[string]*member),
		sessions: make(map[*engine.Session]*member),
	}
	for ch, fn := range map[string]engine.PublishHandler{
		joinChannel:    c.join,
		privateChannel: c.private,
		echoChannel:    echo,
	} {
		if err := e.HandlePublish(ch, fn); err != nil {
			return nil, err
		}
	}
	e.OnSessionRemoved(c.sessionRemoved)
	return c, nil
}

var errBadRequest = &bayeux.Error{Code: 400, Message: "bad_request"}

type chatData struct {
	User string `json:"user"`
	Room string `json:"room"`
	Chat string `json:"chat"`
	Peer string `json:"peer"` // a member id
}

func parse(m *bayeux.Message) (chatData, *bayeux.Error) {
	var d chatData
	if json.Unmarshal(m.Data, &d) != nil {
		return d, errBadRequest.WithArgs("data")
	}
	if _, _, ok := bayeux.ParseChannel(d.Room); !ok || !strings.HasPrefix(d.Room, "/chat/") || strings.Count(d.Room, "/") != 2 {
		return d, errBadRequest.WithArgs("room")
	}
	return d, nil
}

// membersChannel maps "/chat/demo" to "/members/demo".
func membersChannel(room string) string { return "/members/" + strings.TrimPrefix(room, "/chat/") }

// notice is a membership message published on a room.
type notice struct {
	User       string `json:"user"`   // the member's label
	Member     string `json:"member"` // the member's id
	Membership string `json:"membership"`
	Chat       string `json:"chat"`
	Reason     string `json:"reason,omitempty"` // why a member left
}

func (c *Chat) join(_ context.Context, s *engine.Session, m *bayeux.Message) error {
	d, err := parse(m)
	if err != nil {
		return err
	}
	name := strings.TrimSpace(d.User)
	if name == "" || len(name) > maxName {
		return errBadRequest.WithArgs("user")
	}
	c.mu.Lock()
	old, gone := c.takeLocked(s) // a session is one member of one room
	c.lastSeq++
	mb := &member{seq: c.lastSeq, id: strconv.FormatUint(c.lastSeq, 10), name: name, room: d.Room, s: s}
	room := c.rooms[d.Room]
	if room == nil {
		room = make(map[string]*member)
		c.rooms[d.Room] = room
	}
	room[mb.id] = mb
	c.sessions[s] = mb
	self := c.memberLocked(mb)
	c.mu.Unlock()
	if old != nil {
		c.left(old.room, gone, "")
	}
	if s.State() == engine.StateClosed {
		// The session was removed while joining, perhaps before the
		// removal listener could see the member: take it out again.
		c.leave(s, s.CloseReason().String())
		return nil
	}
	s.SetUser(name)
	data, _ := json.Marshal(self)
	s.Deliver(&bayeux.Message{Channel: m.Channel, ID: m.ID, Data: data, Reply: true, Successful: true})
	c.announce(d.Room)
	c.notify(d.Room, notice{User: self.Label, Member: self.ID, Membership: "join", Chat: self.Label + " has joined"})
	return nil
}

// sessionRemoved is the engine's removal listener: a member whose session
// ends leaves its room, and the room is told why.
func (c *Chat) sessionRemoved(s *engine.Session, reason engine.CloseReason) {
	if reason == engine.CloseShutdown {
		c.mu.Lock()
		c.takeLocked(s)
		c.mu.Unlock()
		return // nobody is left to tell
	}
	c.leave(s, reason.String())
}

// leave removes s from its room, if any, and tells the room; reason is the
// session's close reason.
func (c *Chat) leave(s *engine.Session, reason string) {
	c.mu.Lock()
	mb, gone := c.takeLocked(s)
	c.mu.Unlock()
	if mb != nil {
		c.left(mb.room, gone, reason)
	}
}

// takeLocked removes s's membership, if any, from the tables and returns
// it with the Member the others knew (label included). c.mu must be held.
func (c *Chat) takeLocked(s *engine.Session) (*member, Member) {
	mb := c.sessions[s]
	if mb == nil {
		return nil, Member{}
	}
	gone := c.memberLocked(mb)
	delete(c.sessions, s)
	room := c.rooms[mb.room]
	delete(room, mb.id)
	if len(room) == 0 {
		delete(c.rooms, mb.room)
	}
	return mb, gone
}

// left announces that gone left room: the new member list, then a notice
// saying why (reason is a close reason, or "" for a member that joined
// again).
func (c *Chat) left(room string, gone Member, reason string) {
	text := gone.Label + " has left"
	switch reason {
	case "", engine.CloseDisconnect.String():
	case engine.CloseExpired.String():
		text += " (connection lost)"
	case engine.CloseSlow.String():
		text += " (connection too slow)"
	default:
		text += " (disconnected by the server)"
	}
	c.announce(room)
	c.notify(room, notice{User: gone.Label, Member: gone.ID, Membership: "leave", Chat: text, Reason: reason})
}

// memberLocked returns mb as listed, labelled among its room's members.
// c.mu must be held.
func (c *Chat) memberLocked(mb *member) Member {
	label := mb.name
	for _, o := range c.rooms[mb.room] {
		if o != mb && o.name == mb.name {
			label = mb.name + " #" + mb.id
			break
		}
	}
	return Member{ID: mb.id, Name: mb.name, Label: label}
}

// Members returns the members of room, sorted by name and then by when
// they joined.
func (c *Chat) Members(room string) []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	ms := make([]*member, 0, len(c.rooms[room]))
	for _, mb := range c.rooms[room] {
		ms = append(ms, mb)
	}
	slices.SortFunc(ms, func(a, b *member) int {
		return cmp.Or(strings.Compare(a.name, b.name), cmp.Compare(a.seq, b.seq))
	})
	list := make([]Member, len(ms))
	for i, mb := range ms {
		list[i] = c.memberLocked(mb)
	}
	return list
}

// announce publishes the member list of room on its members channel.
func (c *Chat) announce(room string) {
	data, _ := json.Marshal(c.Members(room))
	c.e.Publish(membersChannel(room), data, nil)
}

// notify publishes a membership notice on room.
func (c *Chat) notify(room string, n notice) {
	data, _ := json.Marshal(n)
	c.e.Publish(room, data, nil)
}

// privateMessage is a private message as both ends receive it, on the room
// channel.
type privateMessage struct {
	User       string `json:"user"`   // the sender's label
	Member     string `json:"member"` // the sender's id
	Chat       string `json:"chat"`
	Peer       string `json:"peer"`       // the recipient's label
	PeerMember string `json:"peerMember"` // the recipient's id
	Scope      string `json:"scope"`
}

func (c *Chat) private(_ context.Context, s *engine.Session, m *bayeux.Message) error {
	d, err := parse(m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	from := c.sessions[s]
	if from == nil || from.room != d.Room {
		c.mu.Unlock()
		return &bayeux.Error{Code: 403, Message: "not_a_member"}
	}
	to := c.rooms[d.Room][d.Peer]
	var msg privateMessage
	if to != nil {
		sender, peer := c.memberLocked(from), c.memberLocked(to)
		msg = privateMessage{User: sender.Label, Member: sender.ID, Chat: d.Chat, Peer: peer.Label, PeerMember: peer.ID, Scope: "private"}
	}
	c.mu.Unlock()
	if to == nil {
		data, _ := json.Marshal(map[string]string{"user": "system", "chat": "the recipient is not in the room", "scope": "error"})
		s.DeliverData(d.Room, data, "")
		return nil
	}
	data, _ := json.Marshal(msg)
	to.s.DeliverData(d.Room, data, "")
	if to.s != s {
		s.DeliverData(d.Room, data, "")
	}
	return nil
}

// echo answers a remote call with its own data, to the caller alone, on
// the same channel and with the same id.
func echo(_ context.Context, s *engine.Session, m *bayeux.Message) error {
	s.Deliver(&bayeux.Message{Channel: m.Channel, ID: m.ID, Data: m.Data, Reply: true, Successful: true})
	return nil
}
