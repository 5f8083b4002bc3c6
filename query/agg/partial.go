package agg

import (
	"unsafe"

	"github.com/reef-db/reef/query/plan"
)

// Partial is the partial result of a plan on one child (a leaf, or an aggregator
// that merged its own children): per group, the group key values and one mergeable
// State per plan.Aggs entry; for sample queries, rows. It also carries the counts that
// coverage is computed from, so that coverage composes through aggregator levels.
type Partial struct {
	// Groups in no particular order. Keys[i] has len(plan.GroupBy) values (the bucket
	// start for time buckets); States[i] has len(plan.Aggs) states.
	Keys   [][]plan.Value
	States [][]State

	// Sample queries: the column names and up to plan.Limit rows.
	Columns []string
	Rows    [][]plan.Value

	// Truncated is set when groups or rows were cut at a limit.
	Truncated bool

	// Coverage counts (see api.Coverage).
	LeavesTotal     int
	LeavesResponded int
	RowsInRange     int64 // rows in the plan's time range on the leaves that answered
	RowsEstimated   int64 // RowsInRange plus estimates for leaves that did not answer
	RowsMatched     int64 // rows that passed the filter

	// index maps AppendGroupKey(Keys[i]) to i for the first indexed groups; Merge
	// keeps it so that merging many children into one Partial is linear.
	index   map[string]int
	indexed int
	keyMem  []byte // backs the index's key strings
}

// internKey returns b as a string stored in p's key memory (one allocation per
// 32 KiB of keys instead of one per key).
func (p *Partial) internKey(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(p.keyMem)-len(p.keyMem) < len(b) {
		p.keyMem = make([]byte, 0, max(len(b), 32<<10))
	}
	start := len(p.keyMem)
	p.keyMem = append(p.keyMem, b...)
	return unsafe.String(&p.keyMem[start], len(b))
}
