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
// frame, the acknowledgement first: one write instead of two. The ack
// waits for the answer at most the flush delay, 100ms here so that a slow
// test machine still answers in time.
func TestRemoteCallAckAndAnswerShareAFrame(t *testing.T) {
	srv := startRPCGateway(t, startEchoBackend(t, 0), 100*time.Millisecond)
	c, err := dialCaller("ws://" + srv.Addr().String() + "/cometd")
	if err != nil {
		t.Fatal(err)
	}
	defer c.ws.Close()
	for i := range 20 {
		id := string(rune('a' + i))
		c.publish(t, id, `{"n":`+strings.Repeat("1", i+1)+`}`)
		msgs := c.readFrame(t)
		if len(msgs) != 2 {
			t.Fatalf("call %s: frame of %d messages %+v; want the ack and the answer", id, len(msgs), msgs)
		}
		ack, answer := msgs[0], msgs[1]
		if ack.ID != id || ack.Successful == nil || !*ack.Successful || ack.Data != nil {
			t.Errorf("call %s: first message %+v; want the ack", id, ack)
		}
		if answer.ID != id || answer.Successful == nil || !*answer.Successful || string(answer.Data) != `{"n":`+strings.Repeat("1", i+1)+`}` {
			t.Errorf("call %s: second message %+v; want the answer", id, answer)
		}
	}
}

// A slow backend does not hold the acknowledgement longer than the flush
// delay (500µs by default): it comes alone, and the answer a second later.
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
