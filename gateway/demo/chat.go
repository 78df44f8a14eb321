package demo

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/cometgate/cometgate/gateway/bayeux"
	"github.com/cometgate/cometgate/gateway/engine"
)

//go:embed static
var static embed.FS

// Handler serves the demo page and its scripts.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.FileServerFS(sub)
}

// Chat is the server side of the chat room: it tracks who is in which room
// and delivers private messages.
type Chat struct {
	e     *engine.Engine
	mu    sync.Mutex                                         // guards rooms
	rooms map[string]map[string]map[*engine.Session]struct{} // room -> name -> sessions
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
func Register(e *engine.Engine) (*Chat, error) {
	c := &Chat{e: e, rooms: make(map[string]map[string]map[*engine.Session]struct{})}
	for ch, fn := range map[string]engine.PublishHandler{
		joinChannel:    c.join,
		privateChannel: c.private,
		echoChannel:    echo,
	} {
		if err := e.HandlePublish(ch, fn); err != nil {
			return nil, err
		}
	}
	e.OnSessionRemoved(func(s *engine.Session, _ engine.CloseReason) { c.leave(s) })
	return c, nil
}

var errBadRequest = &bayeux.Error{Code: 400, Message: "bad_request"}

type chatData struct {
	User string `json:"user"`
	Room string `json:"room"`
	Chat string `json:"chat"`
	Peer string `json:"peer"`
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

func (c *Chat) join(_ context.Context, s *engine.Session, m *bayeux.Message) error {
	d, err := parse(m)
	if err != nil {
		return err
	}
	name := strings.TrimSpace(d.User)
	if name == "" || len(name) > maxName {
		return errBadRequest.WithArgs("user")
	}
	c.leave(s) // a session is one member of one room
	c.mu.Lock()
	members := c.rooms[d.Room]
	if members == nil {
		members = make(map[string]map[*engine.Session]struct{})
		c.rooms[d.Room] = members
	}
	if members[name] == nil {
		members[name] = make(map[*engine.Session]struct{})
	}
	members[name][s] = struct{}{}
	c.mu.Unlock()
	s.Set("chat.room", d.Room)
	s.Set("chat.name", name)
	s.SetUser(name)
	c.announce(d.Room)
	return nil
}

// leave removes s from its room, if any, and announces the new list.
func (c *Chat) leave(s *engine.Session) {
	room, _ := s.Get("chat.room").(string)
	name, _ := s.Get("chat.name").(string)
	if room == "" {
		return
	}
	c.mu.Lock()
	if members := c.rooms[room]; members != nil {
		delete(members[name], s)
		if len(members[name]) == 0 {
			delete(members, name)
		}
		if len(members) == 0 {
			delete(c.rooms, room)
		}
	}
	c.mu.Unlock()
	s.Set("chat.room", "")
	c.announce(room)
}

// Members returns the sorted member names of room.
func (c *Chat) Members(room string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.rooms[room]))
	for n := range c.rooms[room] {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (c *Chat) announce(room string) {
	data, _ := json.Marshal(c.Members(room))
	c.e.Publish(membersChannel(room), data, nil)
}

func (c *Chat) private(_ context.Context, s *engine.Session, m *bayeux.Message) error {
	d, err := parse(m)
	if err != nil {
		return err
	}
	from, _ := s.Get("chat.name").(string)
	room, _ := s.Get("chat.room").(string)
	if from == "" || room != d.Room {
		return &bayeux.Error{Code: 403, Message: "not_a_member"}
	}
	c.mu.Lock()
	var peers []*engine.Session
	for p := range c.rooms[d.Room][d.Peer] {
		peers = append(peers, p)
	}
	c.mu.Unlock()
	if len(peers) == 0 {
		data, _ := json.Marshal(map[string]string{"user": "system", "chat": d.Peer + " is not in the room", "scope": "error"})
		s.DeliverData(d.Room, data, "")
		return nil
	}
	data, _ := json.Marshal(map[string]string{"user": from, "chat": d.Chat, "peer": d.Peer, "scope": "private"})
	for _, p := range peers {
		p.DeliverData(d.Room, data, "")
	}
	if !slices.Contains(peers, s) {
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
