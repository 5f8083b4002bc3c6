// Package spec is the contract of the side-by-side query benchmark (`reef bench
// queries`): the standard dataset, the queries Q1–Q5 written once for reef and once
// for DuckDB, the JSON report each engine's side produces, and the rules by which two
// answers agree.
//
// Both sides import it — package benchq, which drives a reef cluster, and the
// separate module testbench/duckbench, which drives DuckDB — so the two can never
// disagree on the data or the questions. It must stay small and light: no HTTP, no
// processes, no plotting, nothing that would drag more dependencies into the DuckDB
// module.
package spec

import (
	"fmt"
	"time"

	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/testbench"
)

// The standard dataset: the testbench generator's events with a fixed seed and a
// fixed end, so every run of the benchmark, on either engine, sees the same rows.
const (
	// Table is the table both engines load the events into.
	Table = "events"
	// Seed is the generator seed of the standard dataset.
	Seed = 1
	// DefaultRows is the standard dataset's size.
	DefaultRows = 10_000_000
	// EndUnix is the exclusive end of the event times, 2026-01-01T00:00:00Z. The
	// queries' NOW is this instant.
	EndUnix = 1767225600
	// Span is how far the events reach back from EndUnix.
	Span = 24 * time.Hour
)

// Dataset returns the generator configuration of the standard dataset with rows
// events.
func Dataset(rows int) testbench.GenConfig {
	return testbench.GenConfig{Seed: Seed, Rows: rows, End: time.Unix(EndUnix, 0).UTC(), Span: Span}
}

// QuantileAccuracy is the relative accuracy of reef's percentile sketches
// (DDSketch): a percentile agrees when it lies within this fraction of the exact
// order statistics around its rank.
const QuantileAccuracy = agg.SketchRelativeAccuracy

// FloatTolerance is the relative difference allowed between two engines' floating
// point aggregates (sums and averages): they add the same numbers in a different
// order, which changes the last bits and nothing more.
const FloatTolerance = 1e-9

// Check says how one value column of two answers is compared.
type Check int

const (
	// Exact values must be equal (counts).
	Exact Check = iota
	// Float values must be equal within FloatTolerance (relative).
	Float
	// Quantile values are reef's sketch estimate against DuckDB's exact order
	// statistics: they agree when lo·(1−QuantileAccuracy) ≤ reef ≤ hi·(1+QuantileAccuracy),
	// where lo and hi are the values at ranks ⌊q·(n−1)⌋ and ⌈q·(n−1)⌉ of the group's
	// sorted values (Query.DuckDBBounds computes them).
	Quantile
)

func (c Check) String() string {
	switch c {
	case Exact:
		return "exact"
	case Float:
		return "float"
	case Quantile:
		return "quantile"
	}
	return fmt.Sprintf("Check(%d)", int(c))
}

// Query is one benchmark query in both dialects. A result row is Keys key columns
// followed by one value column per entry of Values.
type Query struct {
	// ID is Q1 … Q5.
	ID string
	// Reef is the query in reef's SQL, DuckDB the same question in DuckDB's.
	Reef   string
	DuckDB string
	// DuckDBBounds, for a query with Quantile columns, answers the exact bounds those
	// columns are checked against: one row per group with the key columns, then lo
	// and hi for every Quantile column in order. It is run once, untimed.
	DuckDBBounds string
	// Keys is the number of leading key columns (the group keys).
	Keys int
	// Values says how each value column is compared.
	Values []Check
	// TopK marks an ORDER BY … DESC LIMIT query whose last places may be tied: the
	// value sequences must be equal, and a group must be in both answers unless its
	// value equals the last place's value.
	TopK bool
}

// Queries returns Q1–Q5 of the benchmark, with NOW = now (unix seconds). The reef
// forms are those of the issue that defines the benchmark; the DuckDB forms ask the
// same questions in DuckDB's dialect: quantile_cont for the exact percentile and
// integer division for the time buckets.
func Queries(now int64) []Query {
	hour, sixHours := now-3600, now-21600
	return []Query{{
		ID:     "Q1",
		Reef:   "SELECT count(*) FROM events",
		DuckDB: "SELECT count(*) FROM events",
		Values: []Check{Exact},
	}, {
		ID:     "Q2",
		Reef:   "SELECT service, count(*), avg(latency_ms) FROM events GROUP BY service",
		DuckDB: "SELECT service, count(*), avg(latency_ms) FROM events GROUP BY service",
		Keys:   1,
		Values: []Check{Exact, Float},
	}, {
		ID:     "Q3",
		Reef:   "SELECT endpoint, p99(latency_ms) FROM events WHERE status = 500 GROUP BY endpoint",
		DuckDB: "SELECT endpoint, quantile_cont(latency_ms, 0.99) FROM events WHERE status = 500 GROUP BY endpoint",
		DuckDBBounds: `SELECT endpoint,
       min(latency_ms) FILTER (WHERE i = floor(0.99 * (n - 1))),
       min(latency_ms) FILTER (WHERE i = ceil(0.99 * (n - 1)))
FROM (SELECT endpoint, latency_ms,
             row_number() OVER (PARTITION BY endpoint ORDER BY latency_ms) - 1 AS i,
             count(*) OVER (PARTITION BY endpoint) AS n
      FROM events WHERE status = 500)
GROUP BY endpoint`,
		Keys:   1,
		Values: []Check{Quantile},
	}, {
		ID:     "Q4",
		Reef:   fmt.Sprintf("SELECT host, count(*) AS c FROM events WHERE time >= %d GROUP BY host ORDER BY c DESC LIMIT 10", hour),
		DuckDB: fmt.Sprintf(`SELECT host, count(*) AS c FROM events WHERE "time" >= %d GROUP BY host ORDER BY c DESC LIMIT 10`, hour),
		Keys:   1,
		Values: []Check{Exact},
		TopK:   true,
	}, {
		ID:     "Q5",
		Reef:   fmt.Sprintf("SELECT time(1m), count(*) FROM events WHERE time >= %d AND service = 'svc-03' GROUP BY time(1m)", sixHours),
		DuckDB: fmt.Sprintf(`SELECT "time" // 60 * 60 AS "time", count(*) FROM events WHERE "time" >= %d AND service = 'svc-03' GROUP BY 1`, sixHours),
		Keys:   1,
		Values: []Check{Exact},
	}}
}
