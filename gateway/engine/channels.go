package engine

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cometgate/cometgate/gateway/bayeux"
)

// sweepsBeforeRemoval is how many consecutive sweeps a channel must spend
// without subscribers before it is forgotten (CometD uses 3).
const sweepsBeforeRemoval = 3

// channel is one channel name known to the server, wildcard patterns
// included, with its subscribers.
type channel struct {
	name       string
	subs       map[*Session]struct{}
	idle       int          // consecutive sweeps without subscribers
	persistent bool         // never swept (meta channels)
	published  atomic.Int64 // messages fanned out on exactly this name
}

// node is one level of the subscription trie: the channel whose name ends
// here, and the "*" and "**" patterns below it.
type node struct {
	children map[string]*node
	exact    *channel // this name
	star     *channel // this name + "/*"
	dstar    *channel // this name + "/**"
}

// channels is the channel table and subscription trie.
type channels struct {
	mu     sync.RWMutex // guards every field and every channel's subs
	root   node
	byName map[string]*channel
	broker Broker // told of first and last subscribers, under mu; may be nil
}

func newChannels(b Broker) *channels {
	c := &channels{byName: make(map[string]*channel), broker: b}
	for _, m := range []string{bayeux.MetaHandshake, bayeux.MetaConnect, bayeux.MetaDisconnect, bayeux.MetaSubscribe, bayeux.MetaUnsubscribe} {
		c.byName[m] = &channel{name: m, persistent: true}
	}
	return c
}

// exists reports whether the channel name is known.
func (c *channels) exists(name string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byName[name] != nil
}

// create makes sure channel name exists; the name must be valid.
func (c *channels) create(name string) {
	c.mu.Lock()
	c.getLocked(name)
	c.mu.Unlock()
}

// getLocked returns the channel for name, creating it and its trie slot.
func (c *channels) getLocked(name string) *channel {
	if ch := c.byName[name]; ch != nil {
		ch.idle = 0
		return ch
	}
	ch := &channel{name: name}
	c.byName[name] = ch
	n := &c.root
	parts := name[1:]
	last := ""
	for {
		i := strings.IndexByte(parts, '/')
		if i < 0 {
			last = parts
			break
		}
		n = n.child(parts[:i])
		parts = parts[i+1:]
	}
	switch last {
	case "*":
		n.star = ch
	case "**":
		n.dstar = ch
	default:
		n.child(last).exact = ch
	}
	return ch
}

func (n *node) child(seg string) *node {
	if n.children == nil {
		n.children = make(map[string]*node)
	}
	c := n.children[seg]
	if c == nil {
		c = &node{}
		n.children[seg] = c
	}
	return c
}

// subscribe adds s to channel name; it reports whether s was not yet
// subscribed, and the subscriber count.
func (c *channels) subscribe(name string, s *Session) (bool, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.getLocked(name)
	if ch.subs == nil {
		ch.subs = make(map[*Session]struct{})
	}
	_, was := ch.subs[s]
	ch.subs[s] = struct{}{}
	if !was && len(ch.subs) == 1 && c.broker != nil {
		c.broker.Interest(name, true)
	}
	return !was, len(ch.subs)
}

// unsubscribe removes s from channel name and returns whether it was
// subscribed and the remaining count.
func (c *channels) unsubscribe(name string, s *Session) (bool, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.byName[name]
	if ch == nil {
		return false, 0
	}
	_, was := ch.subs[s]
	delete(ch.subs, s)
	if was && len(ch.subs) == 0 && c.broker != nil {
		c.broker.Interest(name, false)
	}
	return was, len(ch.subs)
}

// count returns the number of subscribers of channel name.
func (c *channels) count(name string) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if ch := c.byName[name]; ch != nil {
		return len(ch.subs)
	}
	return 0
}

// ChannelInfo describes one channel for listings.
type ChannelInfo struct {
	Name        string
	Subscribers int
	// Published counts the messages fanned out on exactly this name since
	// the channel became known (a channel forgotten by the sweep starts
	// again from 0).
	Published int64
}

func (c *channels) list() []ChannelInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]ChannelInfo, 0, len(c.byName))
	for name, ch := range c.byName {
		if ch.persistent {
			continue
		}
		out = append(out, ChannelInfo{Name: name, Subscribers: len(ch.subs), Published: ch.published.Load()})
	}
	return out
}

// match appends to dst every session subscribed to a pattern or name that
// matches channel name (not a pattern), each session once. With via not
// "", only the sessions for which via is the first of their matching
// subscriptions, in the order of the walk (/** from the root down, then
// /*, then the name): see Engine.Receive.
func (c *channels) match(name, via string, dst []*Session) []*Session {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var sets [8]*channel
	found := sets[:0]
	add := func(ch *channel) {
		if ch != nil && len(ch.subs) > 0 {
			found = append(found, ch)
		}
	}
	n := &c.root
	parts := name[1:]
	for n != nil {
		add(n.dstar)
		i := strings.IndexByte(parts, '/')
		if i < 0 {
			add(n.star)
			n = n.children[parts]
			if n != nil && n.exact != nil {
				if via == "" || via == name {
					n.exact.published.Add(1) // one add per fan-out, for listings
				}
				add(n.exact)
			}
			break
		}
		n = n.children[parts[:i]]
		parts = parts[i+1:]
	}
	if via != "" {
		return matchVia(found, via, dst)
	}
	switch len(found) {
	case 0:
		return dst
	case 1:
		for s := range found[0].subs {
			dst = append(dst, s)
		}
		return dst
	}
	seen := make(map[*Session]struct{}, len(found[0].subs))
	for _, ch := range found {
		for s := range ch.subs {
			if _, dup := seen[s]; !dup {
				seen[s] = struct{}{}
				dst = append(dst, s)
			}
		}
	}
	return dst
}

// matchVia appends the subscribers of the channel named via among found
// that are subscribed to none of the channels before it.
func matchVia(found []*channel, via string, dst []*Session) []*Session {
	k := -1
	for i, ch := range found {
		if ch.name == via {
			k = i
			break
		}
	}
	if k < 0 {
		return dst
	}
next:
	for s := range found[k].subs {
		for _, ch := range found[:k] {
			if _, dup := ch.subs[s]; dup {
				continue next
			}
		}
		dst = append(dst, s)
	}
	return dst
}

// sweep forgets channels that had no subscribers for several sweeps.
func (c *channels) sweep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, ch := range c.byName {
		if ch.persistent || len(ch.subs) > 0 {
			ch.idle = 0
			continue
		}
		ch.idle++
		if ch.idle >= sweepsBeforeRemoval {
			delete(c.byName, name)
			c.removeLocked(name)
		}
	}
}

// removeLocked clears name's slot in the trie and prunes empty nodes.
func (c *channels) removeLocked(name string) {
	var path []*node
	var segs []string
	n := &c.root
	parts := name[1:]
	for {
		i := strings.IndexByte(parts, '/')
		if i < 0 {
			break
		}
		path = append(path, n)
		segs = append(segs, parts[:i])
		n = n.children[parts[:i]]
		if n == nil {
			return
		}
		parts = parts[i+1:]
	}
	switch parts {
	case "*":
		n.star = nil
	case "**":
		n.dstar = nil
	default:
		path = append(path, n)
		segs = append(segs, parts)
		n = n.children[parts]
		if n == nil {
			return
		}
		n.exact = nil
	}
	for i := len(path) - 1; i >= 0; i-- {
		if n.exact != nil || n.star != nil || n.dstar != nil || len(n.children) > 0 {
			return
		}
		delete(path[i].children, segs[i])
		n = path[i]
	}
}
