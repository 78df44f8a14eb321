package api

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"unicode/utf8"

	gatewayv1 "github.com/cometgate/cometgate/proto/gen/cometgate/gateway/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Cluster is what the API needs of the cluster its node belongs to
// (gateway/cluster.Node implements it). With a Cluster, ListSessions,
// ListChannels, Stats, GetSession, Disconnect and Deliver answer for the
// whole cluster: this node answers for itself, and the others through
// Gather or Ask.
type Cluster interface {
	// ID returns this node's id; Name, its name.
	ID() string
	Name() string
	// OwnerOf returns the id of the node owning a session id, or "".
	OwnerOf(clientID string) string
	// Gather sends a request to every other live node and calls each with
	// every answer, until all have answered or the cluster's request
	// timeout; it returns the nodes that did not answer.
	Gather(ctx context.Context, method string, req []byte, each func(node string, reply []byte)) (unreachable []string)
	// Ask sends a request to one node. When the node is gone, the error
	// has a method Gone() bool that reports true.
	Ask(ctx context.Context, node, method string, req []byte) ([]byte, error)
	// HandleAPI sets what answers the other nodes' requests.
	HandleAPI(h func(ctx context.Context, method string, req []byte) []byte)
}

// A reply between nodes is one byte, a gRPC code, then the encoded
// response (code OK) or the error message.

// encodeReply encodes a local answer for another node.
func encodeReply(m proto.Message, err error) []byte {
	if err != nil {
		st := status.Convert(err)
		msg := st.Message()
		if len(msg) > 1024 {
			msg = strings.ToValidUTF8(msg[:1024], "")
		}
		return append([]byte{byte(st.Code())}, msg...)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return append([]byte{byte(codes.Internal)}, "cannot encode the reply"...)
	}
	return append([]byte{byte(codes.OK)}, b...)
}

// errBadPeerReply: a reply from another node was not well formed.
var errBadPeerReply = errors.New("api: malformed reply from another node")

// decodeReply decodes another node's reply into m, or returns its error
// as a gRPC status error.
func decodeReply(b []byte, m proto.Message) error {
	if len(b) == 0 || b[0] > byte(codes.Unauthenticated) {
		return errBadPeerReply
	}
	if c := codes.Code(b[0]); c != codes.OK {
		msg := string(b[1:])
		if !utf8.ValidString(msg) || len(msg) > 1024 {
			return errBadPeerReply
		}
		return status.Error(c, msg)
	}
	if err := proto.Unmarshal(b[1:], m); err != nil {
		return errBadPeerReply
	}
	return nil
}

// nodeName returns the name of this node when clustered, or "".
func (s *Service) nodeName() string {
	if s.cfg.Cluster == nil {
		return ""
	}
	return s.cfg.Cluster.Name()
}

// answerPeer answers another node's request from the local engine. What
// comes from another node is checked as a request from a client is
// (channels, data as JSON in UTF-8 within MaxDataBytes).
func (s *Service) answerPeer(ctx context.Context, method string, req []byte) []byte {
	switch method {
	case "ListSessions":
		return answerWith(req, new(gatewayv1.ListSessionsRequest), s.localSessions)
	case "ListChannels":
		return answerWith(req, new(gatewayv1.ListChannelsRequest), s.localChannels)
	case "Stats":
		return encodeReply(s.localStats(), nil)
	case "GetSession":
		return answerWith(req, new(gatewayv1.GetSessionRequest), func(r *gatewayv1.GetSessionRequest) (*gatewayv1.Session, error) {
			return s.localSession(r.GetClientId())
		})
	case "Deliver":
		return answerWith(req, new(gatewayv1.DeliverRequest), s.localDeliver)
	case "Disconnect":
		return answerWith(req, new(gatewayv1.DisconnectRequest), s.localDisconnect)
	}
	return encodeReply(nil, status.Errorf(codes.Unimplemented, "no method %q between nodes", method))
}

// answerWith decodes another node's request into r and encodes fn's answer.
func answerWith[Req, Resp proto.Message](req []byte, r Req, fn func(Req) (Resp, error)) []byte {
	if proto.Unmarshal(req, r) != nil {
		return encodeReply(nil, status.Error(codes.InvalidArgument, "bad request"))
	}
	resp, err := fn(r)
	return encodeReply(resp, err)
}

// gather asks every other node and decodes each answer with newReply; a
// node whose answer is an error (other than NOT_FOUND, which is
// notFound's) or malformed counts as unreachable.
func gather[T proto.Message](ctx context.Context, s *Service, method string, req proto.Message, newReply func() T, each func(node string, r T), notFound func(node string)) []string {
	b, err := proto.Marshal(req)
	if err != nil {
		return nil
	}
	var failed []string
	unreachable := s.cfg.Cluster.Gather(ctx, method, b, func(node string, reply []byte) {
		r := newReply()
		err := decodeReply(reply, r)
		switch {
		case err == nil:
			each(node, r)
		case notFound != nil && status.Code(err) == codes.NotFound:
			notFound(node)
		default:
			s.cfg.Logger.Warn("control API: a node answered with an error", "method", method, "peer", node, "err", err)
			failed = append(failed, node)
		}
	})
	out := append(unreachable, failed...)
	slices.Sort(out)
	return out
}

// pageSize is the page size page uses for a requested size.
func pageSize(size int32) int {
	switch {
	case size <= 0:
		return defaultPageSize
	case size > maxPageSize:
		return maxPageSize
	}
	return int(size)
}

// pageToken returns the token of the page after key.
func pageToken(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

// clusterSessions merges every node's page of sessions: each node answers
// its first page after the token, so the cluster's page is the first
// page_size of their union.
func (s *Service) clusterSessions(ctx context.Context, req *gatewayv1.ListSessionsRequest, local *gatewayv1.ListSessionsResponse) *gatewayv1.ListSessionsResponse {
	all := local.Sessions
	more := local.NextPageToken != ""
	byID := make(map[string]bool, len(all))
	for _, ss := range all {
		byID[ss.ClientId] = true
	}
	limit := pageSize(req.GetPageSize())
	unreachable := gather(ctx, s, "ListSessions", req, func() *gatewayv1.ListSessionsResponse { return new(gatewayv1.ListSessionsResponse) },
		func(node string, r *gatewayv1.ListSessionsResponse) {
			if len(r.Sessions) > limit {
				r.Sessions = r.Sessions[:limit]
			}
			for _, ss := range r.Sessions {
				if byID[ss.ClientId] {
					continue
				}
				byID[ss.ClientId] = true
				ss.Node = node
				all = append(all, ss)
			}
			more = more || r.NextPageToken != ""
		}, nil)
	slices.SortFunc(all, func(a, b *gatewayv1.Session) int { return strings.Compare(a.ClientId, b.ClientId) })
	resp := &gatewayv1.ListSessionsResponse{UnreachableNodes: unreachable}
	if len(all) > limit {
		all, more = all[:limit], true
	}
	resp.Sessions = all
	if more && len(all) > 0 {
		resp.NextPageToken = pageToken(all[len(all)-1].ClientId)
	}
	return resp
}

// clusterChannels merges every node's page of channels, summing the
// subscriber counts of a channel held by several nodes.
func (s *Service) clusterChannels(ctx context.Context, req *gatewayv1.ListChannelsRequest, local *gatewayv1.ListChannelsResponse) *gatewayv1.ListChannelsResponse {
	counts := make(map[string]int64, len(local.Channels))
	for _, c := range local.Channels {
		counts[c.Name] += int64(c.Subscribers)
	}
	more := local.NextPageToken != ""
	limit := pageSize(req.GetPageSize())
	unreachable := gather(ctx, s, "ListChannels", req, func() *gatewayv1.ListChannelsResponse { return new(gatewayv1.ListChannelsResponse) },
		func(node string, r *gatewayv1.ListChannelsResponse) {
			if len(r.Channels) > limit {
				r.Channels = r.Channels[:limit]
			}
			for _, c := range r.Channels {
				if c.Subscribers < 0 {
					continue
				}
				counts[c.Name] += int64(c.Subscribers)
			}
			more = more || r.NextPageToken != ""
		}, nil)
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) > limit {
		names, more = names[:limit], true
	}
	resp := &gatewayv1.ListChannelsResponse{UnreachableNodes: unreachable}
	for _, name := range names {
		resp.Channels = append(resp.Channels, &gatewayv1.Channel{Name: name, Subscribers: int32(min(counts[name], 1<<31-1))})
	}
	if more && len(names) > 0 {
		resp.NextPageToken = pageToken(names[len(names)-1])
	}
	return resp
}

// clusterStats sums every node's counters and lists each node's.
func (s *Service) clusterStats(ctx context.Context, local *gatewayv1.StatsResponse) *gatewayv1.StatsResponse {
	self := proto.Clone(local).(*gatewayv1.StatsResponse)
	self.Node = s.nodeName()
	var others []*gatewayv1.StatsResponse
	unreachable := gather(ctx, s, "Stats", &gatewayv1.StatsRequest{}, func() *gatewayv1.StatsResponse { return new(gatewayv1.StatsResponse) },
		func(node string, r *gatewayv1.StatsResponse) {
			r.Node, r.Nodes, r.UnreachableNodes = node, nil, nil
			others = append(others, r)
		}, nil)
	slices.SortFunc(others, func(a, b *gatewayv1.StatsResponse) int { return strings.Compare(a.Node, b.Node) })
	resp := local
	resp.Nodes = append([]*gatewayv1.StatsResponse{self}, others...)
	resp.UnreachableNodes = unreachable
	for _, r := range others {
		resp.Sessions += r.Sessions
		resp.Channels += r.Channels
		resp.WebsocketConnections += r.WebsocketConnections
		resp.Handshakes += r.Handshakes
		resp.Published += r.Published
		resp.Delivered += r.Delivered
		resp.DroppedSlow += r.DroppedSlow
		resp.Expired += r.Expired
	}
	return resp
}

// owned returns the node owning clientID, or "" for this node.
func (s *Service) owner(clientID string) string {
	if s.cfg.Cluster == nil {
		return ""
	}
	o := s.cfg.Cluster.OwnerOf(clientID)
	if o == s.cfg.Cluster.ID() {
		return ""
	}
	return o
}

// ask sends req to node and decodes its answer into resp. A node gone
// means the session is gone: NOT_FOUND; no answer: UNAVAILABLE.
func (s *Service) ask(ctx context.Context, node, method, clientID string, req, resp proto.Message) error {
	b, err := proto.Marshal(req)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	reply, err := s.cfg.Cluster.Ask(ctx, node, method, b)
	var g interface{ Gone() bool }
	switch {
	case errors.As(err, &g) && g.Gone():
		return status.Errorf(codes.NotFound, "no session %q (its node is gone)", clientID)
	case err != nil:
		return status.Errorf(codes.Unavailable, "the node of session %q did not answer: %v", clientID, err)
	}
	if err := decodeReply(reply, resp); err != nil {
		if errors.Is(err, errBadPeerReply) {
			return status.Errorf(codes.Unavailable, "the node of session %q answered badly", clientID)
		}
		return err
	}
	return nil
}
