package gateway_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type frameMsg struct {
	ID         string
	Channel    string
	Successful *bool
	Data       json.RawMessage
	Error      string
}

// readFrame reads one websocket frame of the caller.
func (c *wsCaller) readFrame(t *testing.T) []frameMsg {
	t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, raw, err := c.ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var msgs []frameMsg
	if err := json.Unmarshal(raw, &msgs); err != nil {
		t.Fatalf("frame %s: %v", raw, err)
	}
	return msgs
}

func (c *wsCaller) publish(t *testing.T, id, data string) {
	t.Helper()
	frame := `[{"id":"` + id + `","channel":"/service/rpc","clientId":"` + c.id + `","data":` + data + `}]`
	if err := c.ws.WriteMessage(1, []byte(frame)); err != nil {
		t.Fatal(err)
	}
}

// A fast backend's answer and the publish acknowledgement travel in one
// frame: one write instead of two. The ack waits for the answer at most
// transports.websocket.answerWait (100ms). Any flush of the connection meanwhile takes the ack with it, so a
// call may still see two frames; each message must arrive exactly once,
// the ack first when they are apart.
func TestRemoteCallAckAndAnswerShareAFrame(t *testing.T) {
	srv := startRPCGateway(t, startEchoBackend(t, 0), 0)
	c, err := dialCaller("ws://" + srv.Addr().String() + "/cometd")
	if err != nil {
		t.Fatal(err)
	}
	defer c.ws.Close()
	// Let the flush scheduled when the held connect was parked pass.
	time.Sleep(200 * time.Millisecond)
	const calls = 20
	shared := 0
	for i := range calls {
		id := string(rune('a' + i))
		data := `{"n":` + strings.Repeat("1", i+1) + `}`
		c.publish(t, id, data)
		var ack, answer *frameMsg
		for ack == nil || answer == nil {
			msgs := c.readFrame(t)
			for j := range msgs {
				m := &msgs[j]
				switch {
				case m.ID != id || m.Successful == nil || !*m.Successful:
					t.Fatalf("call %s: unexpected message %+v", id, *m)
				case m.Data == nil && ack == nil:
					ack = m
				case string(m.Data) == data && answer == nil:
					if ack == nil && len(msgs) == 1 {
						t.Fatalf("call %s: the answer came before the ack, in its own frame", id)
					}
					answer = m
				default:
					t.Fatalf("call %s: extra message %+v", id, *m)
				}
			}
			if len(msgs) == 2 {
				shared++
			}
		}
	}
	if shared < calls*3/4 {
		t.Errorf("%d of %d calls had the ack and the answer in one frame; want most", shared, calls)
	}
}

// A slow backend does not hold the acknowledgement longer than answerWait
// (100ms by default): it comes alone, and the answer a second later.
func TestRemoteCallAckDoesNotWaitForASlowAnswer(t *testing.T) {
	srv := startRPCGateway(t, startEchoBackend(t, time.Second), 0)
	c, err := dialCaller("ws://" + srv.Addr().String() + "/cometd")
	if err != nil {
		t.Fatal(err)
	}
	defer c.ws.Close()
	c.publish(t, "1", `{"x":1}`)
	first := c.readFrame(t)
	if len(first) != 1 || first[0].ID != "1" || first[0].Data != nil || first[0].Successful == nil || !*first[0].Successful {
		t.Fatalf("first frame %+v; want the ack alone", first)
	}
	second := c.readFrame(t)
	if len(second) != 1 || second[0].ID != "1" || string(second[0].Data) != `{"x":1}` {
		t.Fatalf("second frame %+v; want the answer", second)
	}
}
