package queue

import (
	"fmt"
	"testing"
)

func TestQueueBoundsAndOrder(t *testing.T) {
	var q Queue
	for i := 0; i < 3; i++ {
		if !q.Push([]byte(fmt.Sprint(i)), 3, 100) {
			t.Fatalf("Push(%d) refused below the bound", i)
		}
	}
	if q.Push([]byte("x"), 3, 100) {
		t.Fatal("Push accepted a 4th item with maxLen 3")
	}
	got := q.Take(nil, 2, 0)
	if len(got) != 2 || string(got[0]) != "0" || string(got[1]) != "1" {
		t.Fatalf("Take(max 2) = %q", got)
	}
	q.PushFront([][]byte{[]byte("a"), []byte("b")})
	got = q.Take(nil, 0, 0)
	if fmt.Sprintf("%s", got) != "[a b 2]" {
		t.Fatalf("Take(all) = %s; want [a b 2]", got)
	}
	if q.Len() != 0 || q.Bytes() != 0 {
		t.Fatalf("empty queue: Len %d Bytes %d", q.Len(), q.Bytes())
	}
}

func TestQueueByteBound(t *testing.T) {
	var q Queue
	big := make([]byte, 50)
	if !q.Push(big, 10, 10) {
		t.Fatal("a single oversized item must be accepted into an empty queue")
	}
	if q.Push([]byte("x"), 10, 10) {
		t.Fatal("Push accepted beyond maxBytes")
	}
	q.Take(nil, 0, 0)
	for i := 0; i < 5; i++ {
		q.Push([]byte("abcd"), 10, 100)
	}
	if got := q.Take(nil, 0, 9); len(got) != 2 {
		t.Fatalf("Take(maxBytes 9) took %d items of 4 bytes; want 2", len(got))
	}
	if got := q.Take(nil, 0, 1); len(got) != 1 {
		t.Fatalf("Take(maxBytes 1) took %d; the first item is always taken", len(got))
	}
}

func TestQueueReusesSpace(t *testing.T) {
	var q Queue
	for i := 0; i < 1000; i++ {
		q.Push([]byte("m"), 4, 100)
		q.Push([]byte("n"), 4, 100)
		if got := q.Take(nil, 1, 0); string(got[0]) != "m" {
			t.Fatalf("round %d: got %q", i, got[0])
		}
		q.Take(nil, 1, 0)
	}
	if cap(q.items) > 8 {
		t.Errorf("steady push/take grew the queue to cap %d", cap(q.items))
	}
}
