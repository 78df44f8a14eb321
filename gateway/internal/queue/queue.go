// Package queue provides the bounded FIFO of encoded messages that every
// session owns. It is not safe for concurrent use; the owner locks.
package queue

// Queue is a FIFO of shared, read-only encoded messages bounded in count and
// bytes. The zero value is an empty queue that holds no memory.
type Queue struct {
	items [][]byte // items[head:] are queued
	head  int
	bytes int // total length of queued items
}

// Len returns the number of queued items.
func (q *Queue) Len() int { return len(q.items) - q.head }

// Bytes returns the total size of the queued items.
func (q *Queue) Bytes() int { return q.bytes }

// Push appends b unless that would exceed maxLen items or maxBytes bytes, in
// which case it returns false and leaves the queue unchanged. A single item
// larger than maxBytes is accepted into an empty queue so that a big message
// can still be delivered.
func (q *Queue) Push(b []byte, maxLen, maxBytes int) bool {
	n := q.Len()
	if n >= maxLen || (n > 0 && q.bytes+len(b) > maxBytes) {
		return false
	}
	if q.head > 0 && len(q.items) == cap(q.items) {
		// Slide down instead of growing.
		copied := copy(q.items, q.items[q.head:])
		clear(q.items[copied:])
		q.items = q.items[:copied]
		q.head = 0
	}
	q.items = append(q.items, b)
	q.bytes += len(b)
	return true
}

// PushFront puts items back at the head of the queue, in order, ignoring the
// bounds (they were accepted once already).
func (q *Queue) PushFront(items [][]byte) {
	if len(items) == 0 {
		return
	}
	rest := q.items[q.head:]
	merged := make([][]byte, 0, len(items)+len(rest))
	merged = append(merged, items...)
	merged = append(merged, rest...)
	q.items, q.head = merged, 0
	for _, b := range items {
		q.bytes += len(b)
	}
}

// Take moves up to max items (max <= 0: all) whose total size stays within
// maxBytes (maxBytes <= 0: no limit; the first item is always taken) onto
// dst and returns it.
func (q *Queue) Take(dst [][]byte, max, maxBytes int) [][]byte {
	size, n := 0, 0
	for q.head < len(q.items) && (max <= 0 || n < max) {
		b := q.items[q.head]
		if n > 0 && maxBytes > 0 && size+len(b) > maxBytes {
			break
		}
		dst = append(dst, b)
		size += len(b)
		n++
		q.bytes -= len(b)
		q.items[q.head] = nil
		q.head++
	}
	if q.head == len(q.items) {
		if cap(q.items) > 128 {
			q.items = nil // give back memory a burst made us grow
		} else {
			q.items = q.items[:0]
		}
		q.head = 0
	}
	return dst
}

// Clear drops every item.
func (q *Queue) Clear() {
	q.items, q.head, q.bytes = nil, 0, 0
}
