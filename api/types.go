// Package api holds the wire types every reef process shares — the JSON shapes of the
// HTTP API and the partial-query envelope — and Client, the small Go client that the
// shell, the aggregator and the testbench use to talk to leaves and aggregators.
//
// It must not import leaf or aggregator; the HTTP routes themselves are served there.
// docs/http-api.md describes every route.
package api

import (
	"github.com/reef-db/reef/query/plan"
)

// Header names.
const (
	// HeaderBatchID carries a writer- or router-chosen id for an ingest batch; a leaf
	// that already holds a batch with this id acknowledges it again without adding rows.
	HeaderBatchID = "X-Reef-Batch-Id"
	// ContentTypePartial is the media type of a binary partial-state response.
	ContentTypePartial = "application/vnd.reef.partial"
	ContentTypeArrow   = "application/vnd.apache.arrow.stream"
)

// RowError reports one rejected row or field of an ingest batch. Line is 1-based
// within the request body. A row whose Field is set was kept without that field.
type RowError struct {
	Line   int    `json:"line"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// IngestResult answers POST /v1/ingest/{table}.
type IngestResult struct {
	Table     string     `json:"table"`
	Accepted  int        `json:"accepted"` // rows stored
	Rejected  int        `json:"rejected"` // rows refused whole
	Errors    []RowError `json:"errors,omitempty"`
	ErrorsCut bool       `json:"errors_truncated,omitempty"` // more errors than listed
	Leaf      string     `json:"leaf,omitempty"`             // leaf that holds the rows
	BatchID   string     `json:"batch_id,omitempty"`
	Duplicate bool       `json:"duplicate,omitempty"` // batch id seen before; nothing added
}

// ColumnInfo describes one column of a table.
type ColumnInfo struct {
	Name string `json:"name"`
	Type string `json:"type"` // int, float, string, set
}

// TableStats is what a leaf (or, summed, an aggregator) knows of one table.
type TableStats struct {
	Name    string       `json:"name"`
	Rows    int64        `json:"rows"`
	Bytes   int64        `json:"bytes"`
	Blocks  int          `json:"blocks"`
	MinTime int64        `json:"min_time"`
	MaxTime int64        `json:"max_time"`
	Columns []ColumnInfo `json:"columns"`
}

// StartInfo says how a leaf came up: "empty", "shm" (handoff attach), "crash"
// (shm validated + WAL replay), or "disk" (disk blocks + WAL).
type StartInfo struct {
	Path       string  `json:"path"`
	DurationMS float64 `json:"duration_ms"`
	Blocks     int     `json:"blocks"`
	Rows       int64   `json:"rows"`
	// Tables holds the rows of each table when the leaf became ready, before any
	// new ingest: what a rolling deploy compares with the rows the previous process
	// handed over.
	Tables map[string]int64 `json:"tables,omitempty"`
}

// Stats answers GET /v1/stats on a leaf, and on an aggregator (summed over its
// children as last seen).
type Stats struct {
	LeafID      string                `json:"leaf_id"`
	Ready       bool                  `json:"ready"`
	Rows        int64                 `json:"rows"`
	Bytes       int64                 `json:"bytes"`
	MemoryLimit int64                 `json:"memory_limit"`
	FreeBytes   int64                 `json:"free_bytes"`
	Tables      map[string]TableStats `json:"tables"`
	Start       StartInfo             `json:"start"`
	// Leaves is the number of leaves the stats cover: 1 for a leaf, the sum over
	// children for an aggregator.
	Leaves int `json:"leaves"`
}

// PartialRequest is the body of POST /v1/partial (leaf and aggregator alike).
type PartialRequest struct {
	Plan      plan.Plan `json:"plan"`
	TimeoutMS int64     `json:"timeout_ms"` // the child's own budget; 0: server default
}

// QueryRequest is the JSON body of POST /v1/sql. GET /v1/sql takes the same fields as
// URL parameters: q, timeout_ms, min_coverage, format.
type QueryRequest struct {
	SQL         string  `json:"sql"`
	TimeoutMS   int64   `json:"timeout_ms,omitempty"`
	MinCoverage float64 `json:"min_coverage,omitempty"` // percent, 0–100
	Format      string  `json:"format,omitempty"`       // json (default), csv, ndjson, arrow
}

// Coverage says how much of the data an answer covers.
//
//	percent = 100 * rows_scanned / rows_estimated_total
//
// where rows_scanned counts the rows in the query's time range on the leaves that
// answered and rows_estimated_total adds, for every leaf that did not, its rows in
// that range estimated from its last reported stats. With no rows anywhere, percent is
// 100 when every leaf answered and leaves_responded/leaves_total otherwise.
type Coverage struct {
	LeavesTotal        int     `json:"leaves_total"`
	LeavesResponded    int     `json:"leaves_responded"`
	RowsScanned        int64   `json:"rows_scanned"`
	RowsEstimatedTotal int64   `json:"rows_estimated_total"`
	Percent            float64 `json:"percent"`
}

// NodeError is a child (leaf or aggregator) that did not answer, and why.
type NodeError struct {
	Node  string `json:"node"`
	Error string `json:"error"`
}

// ResultColumn names and types one result column.
type ResultColumn struct {
	Name string `json:"name"`
	Type string `json:"type"` // int, float, string, bool, null
}

// Timings of a query, in milliseconds.
type Timings struct {
	ParseMS float64 `json:"parse_ms"`
	ScanMS  float64 `json:"scan_ms"` // fan-out until the last child answered or the deadline
	MergeMS float64 `json:"merge_ms"`
	TotalMS float64 `json:"total_ms"`
}

// QueryResult answers POST /v1/sql with format json.
type QueryResult struct {
	Columns   []ResultColumn `json:"columns"`
	Rows      [][]any        `json:"rows"`
	Coverage  Coverage       `json:"coverage"`
	Partial   bool           `json:"partial"`
	Truncated bool           `json:"truncated,omitempty"` // rows or groups cut at a limit
	Errors    []NodeError    `json:"errors,omitempty"`
	Timings   Timings        `json:"timings"`
}

// Error is the JSON body of every 4xx/5xx answer.
type Error struct {
	Status   int    `json:"-"`
	Message  string `json:"error"`
	Position int    `json:"position,omitempty"` // 1-based byte offset into the SQL, 0 if none
	Query    string `json:"query,omitempty"`
}

func (e *Error) Error() string { return e.Message }
