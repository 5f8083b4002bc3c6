package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
)

// Engine is what one engine's side of the benchmark measured. The DuckDB side prints
// it as JSON on stdout; the reef side builds it in memory; the report holds both.
type Engine struct {
	// Engine is "reef" or "duckdb"; Version says which build ran.
	Engine  string `json:"engine"`
	Version string `json:"version,omitempty"`
	// Setup describes how the engine ran: leaves, threads, …
	Setup string `json:"setup,omitempty"`
	// Rows is how many rows the engine holds after the load.
	Rows int64 `json:"rows"`
	// LoadMS is the wall time of the load; Load says what was timed.
	LoadMS float64 `json:"load_ms"`
	Load   string  `json:"load,omitempty"`
	// MemoryBytes is the memory the engine reports for the table's data, and
	// BytesPerRow that divided by Rows; Memory says where the number comes from.
	MemoryBytes int64   `json:"memory_bytes"`
	BytesPerRow float64 `json:"bytes_per_row"`
	Memory      string  `json:"memory,omitempty"`
	// RSSBytes is the resident memory of the engine's processes after the load
	// (0 where the platform does not tell).
	RSSBytes int64 `json:"rss_bytes,omitempty"`
	// Queries are the measured queries in order.
	Queries []QueryRun `json:"queries"`
}

// QueryRun is one query's measurement and answer.
type QueryRun struct {
	ID  string `json:"id"`
	SQL string `json:"sql"`
	// RunsMS are the wall times of the timed runs, after one untimed warm-up run;
	// MedianMS is their median.
	RunsMS   []float64 `json:"runs_ms"`
	MedianMS float64   `json:"median_ms"`
	// ServerMedianMS is the median of the times the engine itself reports for the
	// timed runs (reef: the aggregator's total), where it reports one.
	ServerMedianMS float64 `json:"server_median_ms,omitempty"`
	// Columns and Rows are the answer of the last run. Cells are strings, int64 or
	// float64 (or nil); after a JSON round trip see Normalize.
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
	// Bounds is the answer of Query.DuckDBBounds, when the query has one.
	Bounds [][]any `json:"bounds,omitempty"`
	// Error is set when the query could not be run; the rest is then empty.
	Error string `json:"error,omitempty"`
}

// Query returns the run with the given id, or nil.
func (e *Engine) Query(id string) *QueryRun {
	for i := range e.Queries {
		if e.Queries[i].ID == id {
			return &e.Queries[i]
		}
	}
	return nil
}

// Median returns the median of ms (the mean of the middle two for an even count),
// or 0 for none.
func Median(ms []float64) float64 {
	if len(ms) == 0 {
		return 0
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Millis returns d in milliseconds.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// MaxEngineJSON bounds the JSON report ReadEngine accepts.
const MaxEngineJSON = 64 << 20

// ReadEngine decodes an Engine report (as the DuckDB side prints it) and normalizes
// its cells: integral numbers without a fraction become int64, other numbers float64.
func ReadEngine(r io.Reader) (*Engine, error) {
	dec := json.NewDecoder(io.LimitReader(r, MaxEngineJSON))
	dec.UseNumber()
	var e Engine
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("cannot decode engine report: %w", err)
	}
	if e.Engine == "" {
		return nil, fmt.Errorf("cannot decode engine report: no engine name")
	}
	for i := range e.Queries {
		e.Queries[i].normalize()
	}
	return &e, nil
}

// ReadQueryRun decodes one QueryRun (as the DuckDB side answers a command in its
// serve mode) and normalizes its cells as ReadEngine does.
func ReadQueryRun(data []byte) (*QueryRun, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var q QueryRun
	if err := dec.Decode(&q); err != nil {
		return nil, fmt.Errorf("cannot decode query answer: %w", err)
	}
	q.normalize()
	return &q, nil
}

func (q *QueryRun) normalize() {
	for _, rows := range [][][]any{q.Rows, q.Bounds} {
		for _, row := range rows {
			for j, c := range row {
				row[j] = Normalize(c)
			}
		}
	}
}

// Normalize turns a decoded JSON number (json.Number) into int64 when it is written
// as an integer that fits, else float64; other values are returned as they are.
func Normalize(v any) any {
	n, ok := v.(json.Number)
	if !ok {
		return v
	}
	if i, err := n.Int64(); err == nil {
		return i
	}
	if f, err := n.Float64(); err == nil {
		return f
	}
	return n.String()
}
