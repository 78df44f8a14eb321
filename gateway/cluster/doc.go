// Package cluster joins gateway nodes into one over NATS, with no sticky
// sessions and no cluster protocol of its own.
//
// A Node is one gateway's connection to NATS. It is the engine's Broker:
// the node subscribes once per channel or pattern its local sessions use
// (reference-counted by the engine, see engine.Broker.Interest), publishes
// every broadcast that enters the engine on this node, and hands what
// other nodes publish to engine.Receive. Session ids start with the id of
// the node that owns them (engine.WithIDPrefix), so any node can relay a
// polling request to its owner over NATS request/reply, and a node that
// is gone is known at once (NATS "no responders").
//
// Subjects, under the configured prefix P:
//
//	P.b.<channel tokens>     broadcasts: one token per channel segment,
//	                         escaped (see SubjectOf); /a/* and /a/** map to
//	                         a.* and a.>
//	P.n.<node id>.<kind>     requests to one node (relayed polls, API calls,
//	                         narrowcasts to its sessions)
//	P.all.<kind>             requests to every node (cluster-wide API calls,
//	                         narrowcasts to a user)
//	P.presence               each node's heartbeat, for the node list
//
// /meta/ and /service/ channels never go onto broadcast subjects.
package cluster
