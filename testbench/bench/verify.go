package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/reef-db/reef/api"
)

// Verification defaults and bounds.
const (
	// DefaultVerifyTimeout bounds the wait for every leaf to answer again, and each
	// verification query.
	DefaultVerifyTimeout = time.Minute
	// verifyWindow is how many batch numbers one verification query covers, below the
	// groups a query may return.
	verifyWindow = 50_000
	// maxProblems bounds the batches a Verification lists.
	maxProblems = 20
)

// Verification is the outcome of checking that every acknowledged row is present
// exactly once: the rows of each batch, counted through SQL by the `batch` column,
// against the Ledger.
type Verification struct {
	Table string `json:"table"`
	// Batches were sent, AckedBatches acknowledged with AckedRows accepted rows.
	Batches      int64 `json:"batches"`
	AckedBatches int64 `json:"acked_batches"`
	AckedRows    int64 `json:"acked_rows"`
	// TableRows is count(*) of the table; FoundRows the rows of acknowledged batches
	// that were found (each counted at most once).
	TableRows int64 `json:"table_rows"`
	FoundRows int64 `json:"found_rows"`
	// Missing are acknowledged rows not found: lost. Duplicated are rows found more
	// often than they were sent or accepted. UnackedFound are rows of unacknowledged
	// batches that were found (allowed: the cluster may have stored a batch whose
	// answer was lost). Unknown are rows whose batch was never sent.
	Missing      int64 `json:"missing"`
	Duplicated   int64 `json:"duplicated"`
	UnackedFound int64 `json:"unacked_found"`
	Unknown      int64 `json:"unknown"`
	// Problems lists the first batches with missing or duplicated rows.
	Problems []BatchProblem `json:"problems,omitempty"`
	// OK: nothing missing, duplicated or unknown.
	OK bool `json:"ok"`
}

// BatchProblem is one batch whose row count is wrong.
type BatchProblem struct {
	Batch int64 `json:"batch"`
	Acked bool  `json:"acked"`
	Want  int   `json:"want"` // accepted rows if acked, else at most the rows sent
	Got   int64 `json:"got"`
}

// String sums up v in one line.
func (v *Verification) String() string {
	verdict := "OK: every acknowledged row is present exactly once"
	if !v.OK {
		verdict = fmt.Sprintf("FAILED: %d acknowledged rows missing, %d duplicated, %d of unknown batches", v.Missing, v.Duplicated, v.Unknown)
	}
	return fmt.Sprintf("%s (%d of %d batches acknowledged, %d rows; table holds %d rows, %d of them from unacknowledged batches)",
		verdict, v.AckedBatches, v.Batches, v.AckedRows, v.TableRows, v.UnackedFound)
}

// Verify counts the rows of table per batch through client's SQL and checks them
// against l: every acknowledged batch must be there with exactly its accepted rows,
// an unacknowledged one at most with the rows sent, and no other rows may exist. It
// first waits, up to timeout (default DefaultVerifyTimeout), until a query has full
// coverage, and it only uses answers with full coverage. An error means it could not
// verify; a verification that found problems is not an error (check OK).
func Verify(ctx context.Context, client *api.Client, table string, l *Ledger, timeout time.Duration) (*Verification, error) {
	if timeout <= 0 {
		timeout = DefaultVerifyTimeout
	}
	totals := l.Totals()
	v := &Verification{Table: table, Batches: totals.Batches, AckedBatches: totals.AckedBatches, AckedRows: totals.AcceptedRows}

	res, err := fullQuery(ctx, client, fmt.Sprintf("SELECT count(*) FROM %s", table), timeout)
	if err != nil {
		return nil, err
	}
	if v.TableRows, err = cellInt(res, 0, 0); err != nil {
		return nil, fmt.Errorf("cannot verify %s: count(*): %w", table, err)
	}

	var inRange int64 // rows whose batch number is one the ledger sent
	n := l.Len()
	seen := make([]int64, verifyWindow)
	for lo := int64(0); lo < n; lo += verifyWindow {
		hi := min(lo+verifyWindow, n)
		clear(seen)
		q := fmt.Sprintf("SELECT %s, count(*) FROM %s WHERE %s >= %d AND %s < %d GROUP BY %s",
			BatchColumn, table, BatchColumn, lo, BatchColumn, hi, BatchColumn)
		res, err := fullQuery(ctx, client, q, timeout)
		if err != nil {
			return nil, err
		}
		for r := range res.Rows {
			b, err1 := cellInt(res, r, 0)
			c, err2 := cellInt(res, r, 1)
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("cannot verify %s: %s: row %d: %w", table, q, r, err)
			}
			if b < lo || b >= hi {
				return nil, fmt.Errorf("cannot verify %s: %s answered batch %d", table, q, b)
			}
			seen[b-lo] = c
			inRange += c
		}
		for b := lo; b < hi; b++ {
			v.check(l, b, seen[b-lo])
		}
	}
	v.Unknown = v.TableRows - inRange
	v.OK = v.Missing == 0 && v.Duplicated == 0 && v.Unknown == 0
	return v, nil
}

// check compares the got rows of batch b with the ledger.
func (v *Verification) check(l *Ledger, b, got int64) {
	sent, accepted, acked := l.Batch(b)
	want := int64(accepted)
	switch {
	case acked && got < want:
		v.Missing += want - got
		v.FoundRows += got
	case acked:
		v.Duplicated += got - want
		v.FoundRows += want
	case got > int64(sent):
		v.Duplicated += got - int64(sent)
		v.UnackedFound += int64(sent)
	default:
		v.UnackedFound += got
		return
	}
	if got != want && len(v.Problems) < maxProblems {
		w := accepted
		if !acked {
			w = sent
		}
		v.Problems = append(v.Problems, BatchProblem{Batch: b, Acked: acked, Want: w, Got: got})
	}
}

// fullQuery runs q until it answers with full coverage, for at most timeout.
func fullQuery(ctx context.Context, client *api.Client, q string, timeout time.Duration) (*api.QueryResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		res, err := client.SQL(ctx, api.QueryRequest{SQL: q, TimeoutMS: timeout.Milliseconds()})
		switch {
		case err != nil:
			last = err
		case res.Partial || res.Coverage.Percent < 100:
			last = fmt.Errorf("partial answer: coverage %.1f%%, %d of %d leaves answered", res.Coverage.Percent, res.Coverage.LeavesResponded, res.Coverage.LeavesTotal)
		case res.Truncated:
			return nil, fmt.Errorf("cannot verify: %s: answer truncated at a bound", q)
		default:
			return res, nil
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("cannot verify: %s: no answer with full coverage within %v: %w", q, timeout, last)
		}
	}
}

// cellInt returns the integer in row r, column c of res.
func cellInt(res *api.QueryResult, r, c int) (int64, error) {
	if r >= len(res.Rows) || c >= len(res.Rows[r]) {
		return 0, fmt.Errorf("no cell (%d, %d) in an answer of %d rows", r, c, len(res.Rows))
	}
	switch x := res.Rows[r][c].(type) {
	case int64:
		return x, nil
	case float64:
		if x == float64(int64(x)) {
			return int64(x), nil
		}
	}
	return 0, fmt.Errorf("cell (%d, %d) is %v (%T), not an integer", r, c, res.Rows[r][c], res.Rows[r][c])
}
