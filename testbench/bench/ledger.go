package bench

import (
	"errors"
	"fmt"
	"sync"
)

// MaxBatches bounds the batches recorded by one Ledger (8 bytes each).
const MaxBatches = 4 << 20

// errLedgerFull ends a load that would send more than MaxBatches batches.
var errLedgerFull = errors.New("the load reached its bound of MaxBatches batches")

// Ledger records every batch sent by the loads of one run: its size, and whether the
// cluster acknowledged it and with how many accepted rows. Batch n is sent with the
// batch id "<Prefix>-<n>" and its rows carry n in the `batch` column, so that
// Verify can count the rows of each batch through SQL. Loads that share a ledger
// (a preload and the measured load) share its numbering. It is safe for concurrent
// use.
type Ledger struct {
	// Prefix starts every batch id.
	Prefix string

	mu      sync.Mutex
	batches []entry
}

type entry struct {
	rows  int32 // rows sent
	acked int32 // rows accepted, or -1 while not acknowledged
}

// NewLedger returns an empty ledger whose batch ids start with prefix.
func NewLedger(prefix string) *Ledger { return &Ledger{Prefix: prefix} }

// ID returns the batch id of batch n.
func (l *Ledger) ID(n int64) string { return fmt.Sprintf("%s-%d", l.Prefix, n) }

// next numbers a new batch of rows rows, not yet acknowledged.
func (l *Ledger) next(rows int) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.batches) >= MaxBatches {
		return 0, errLedgerFull
	}
	l.batches = append(l.batches, entry{rows: int32(rows), acked: -1})
	return int64(len(l.batches) - 1), nil
}

// ack records that the cluster acknowledged batch n, accepting rows of its rows.
func (l *Ledger) ack(n int64, rows int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batches[n].acked = int32(rows)
}

// Len returns the number of batches sent (acknowledged or not).
func (l *Ledger) Len() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.batches))
}

// Batch returns the rows sent in batch n, and the rows the cluster accepted of them
// with true, or 0 and false when it did not acknowledge the batch. A batch that was
// never sent has 0 rows.
func (l *Ledger) Batch(n int64) (sent, accepted int, acked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n < 0 || n >= int64(len(l.batches)) {
		return 0, 0, false
	}
	e := l.batches[n]
	return int(e.rows), int(max(e.acked, 0)), e.acked >= 0
}

// Totals returns the numbers of batches and rows sent, acknowledged, and accepted.
func (l *Ledger) Totals() (t LedgerTotals) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.batches {
		t.Batches++
		t.Rows += int64(e.rows)
		if e.acked >= 0 {
			t.AckedBatches++
			t.AcceptedRows += int64(e.acked)
		}
	}
	return t
}

// LedgerTotals sums a Ledger.
type LedgerTotals struct {
	Batches      int64 `json:"batches"`
	Rows         int64 `json:"rows"`
	AckedBatches int64 `json:"acked_batches"`
	AcceptedRows int64 `json:"accepted_rows"`
}
