package cluster

// serveRelay subscribes to this node's relayed-poll subject.
func (n *Node) serveRelay() error { return nil }
