package cluster

// serveAPI subscribes to the cluster-wide control API's subjects.
func (n *Node) serveAPI() error { return nil }
