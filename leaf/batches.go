package leaf

import (
	"context"
	"sync"
	"time"

	"github.com/reef-db/reef/api"
)

// batchLog remembers the ids of recent ingest batches so that a retried batch (the
// router resends a batch whose answer it did not get) is acknowledged again without
// storing its rows twice. It holds at most max ids, each for at most ttl; the oldest
// are forgotten first.
//
// A batch is pending while its first request stores it. A repeat that arrives then
// waits for the outcome: if the rows were stored it is a duplicate, otherwise it
// takes over and stores them itself.
type batchLog struct {
	max int
	ttl time.Duration

	mu    sync.Mutex
	byID  map[string]*batch
	order []batchEntry // FIFO by arrival: order[head:] are live
	head  int
}

type batchEntry struct {
	id string
	b  *batch
}

type batch struct {
	at   time.Time
	done chan struct{} // closed when the first request finished
	ok   bool          // the rows were stored (valid after done)
	res  api.IngestResult
}

func newBatchLog(max int, ttl time.Duration) *batchLog {
	return &batchLog{max: max, ttl: ttl, byID: make(map[string]*batch)}
}

// begin claims id for the caller. It returns (b, false) when the caller is to store
// the batch (and then call finish), or (b, true) when the batch was already stored,
// b.res being the original answer. It waits while another request holds the claim
// and fails only when ctx ends first.
func (l *batchLog) begin(ctx context.Context, id string, now time.Time) (*batch, bool, error) {
	for {
		l.mu.Lock()
		l.expire(now)
		b := l.byID[id]
		if b == nil {
			b = &batch{at: now, done: make(chan struct{})}
			l.byID[id] = b
			l.order = append(l.order, batchEntry{id, b})
			l.mu.Unlock()
			return b, false, nil
		}
		l.mu.Unlock()
		select {
		case <-b.done:
			if b.ok {
				return b, true, nil
			}
			// The first attempt failed and forgot the id: claim it anew.
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// finish records the outcome of a claimed batch. A failed batch (ok false) is
// forgotten, so that a retry stores it.
func (l *batchLog) finish(id string, b *batch, res *api.IngestResult, ok bool) {
	l.mu.Lock()
	b.ok = ok
	if ok {
		b.res = *res
		b.res.Errors = nil // a repeat is told the counts, not the details again
	} else if l.byID[id] == b {
		delete(l.byID, id)
	}
	l.mu.Unlock()
	close(b.done)
}

// expire forgets ids past the bounds; l.mu is held.
func (l *batchLog) expire(now time.Time) {
	for l.head < len(l.order) {
		e := l.order[l.head]
		live := len(l.order) - l.head
		if live < l.max && now.Sub(e.b.at) < l.ttl {
			break
		}
		if l.byID[e.id] == e.b {
			delete(l.byID, e.id)
		}
		l.order[l.head] = batchEntry{}
		l.head++
	}
	// Compact once the dead prefix is as long as the live part.
	if l.head > 0 && l.head >= len(l.order)-l.head {
		n := copy(l.order, l.order[l.head:])
		clear(l.order[n:])
		l.order = l.order[:n]
		l.head = 0
	}
}

// len is the number of ids remembered.
func (l *batchLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byID)
}
