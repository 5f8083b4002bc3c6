package benchq

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/reef-db/reef/testbench/benchq/spec"
)

// The files of a report directory.
const (
	ReportMarkdown = "report.md"
	ReportJSON     = "report.json"
	ReportChart    = "chart.png"
)

// Report is the outcome of one benchmark run, as written to report.json.
type Report struct {
	Command string    `json:"command"`
	Started time.Time `json:"started"`
	Machine string    `json:"machine"`
	Dataset Dataset   `json:"dataset"`
	Runs    int       `json:"runs"`
	Leaves  int       `json:"leaves"`
	// LoadAvg is the machine's 1-minute load average when the benchmark started and
	// when it ended (0 where the platform does not tell): other work on the machine
	// slows both engines.
	LoadAvg [2]float64 `json:"load_avg"`

	Reef   spec.Engine  `json:"reef"`
	DuckDB *spec.Engine `json:"duckdb,omitempty"`
	// DuckDBSkipped says why there are no DuckDB numbers.
	DuckDBSkipped string `json:"duckdb_skipped,omitempty"`

	// Results is the table: one row per query.
	Results []Result `json:"results"`
}

// Dataset records which dataset was measured.
type Dataset struct {
	Rows int       `json:"rows"`
	Seed uint64    `json:"seed"`
	End  time.Time `json:"end"`
	Span string    `json:"span"`
	// Now is the queries' NOW, unix seconds.
	Now int64 `json:"now"`
}

// Result is one row of the table.
type Result struct {
	ID  string `json:"id"`
	SQL string `json:"sql"`
	// ReefMS and DuckDBMS are median wall times; Ratio is ReefMS/DuckDBMS. A missing
	// side is 0.
	ReefMS   float64 `json:"reef_ms"`
	DuckDBMS float64 `json:"duckdb_ms,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	// Agree is nil when there was nothing to compare; Detail says what was compared
	// or where the answers differ.
	Agree  *bool  `json:"agree,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// compare fills in Results from the two engines' runs.
func (r *Report) compare() {
	r.Results = r.Results[:0]
	for _, q := range spec.Queries(r.Dataset.Now) {
		res := Result{ID: q.ID, SQL: q.Reef}
		rq := r.Reef.Query(q.ID)
		if rq != nil {
			res.ReefMS = rq.MedianMS
			if rq.Error != "" {
				res.Detail = "reef: " + rq.Error
			}
		}
		if r.DuckDB != nil {
			dq := r.DuckDB.Query(q.ID)
			if dq != nil {
				res.DuckDBMS = dq.MedianMS
				if rq != nil && rq.Error == "" && res.DuckDBMS > 0 {
					res.Ratio = res.ReefMS / res.DuckDBMS
				}
				a := spec.Compare(q, rq, dq)
				res.Agree, res.Detail = &a.OK, a.Detail
			}
		}
		r.Results = append(r.Results, res)
	}
}

// Markdown returns the report as a markdown document: the table, bytes per row, the
// loads, and how it was measured.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# reef bench queries\n\n")
	if r.Command != "" {
		fmt.Fprintf(&b, "`%s`, %s, on %s.\n\n", r.Command, r.Started.Format(time.DateOnly), r.Machine)
	}
	b.WriteString(r.Table())
	b.WriteString("\n")
	fmt.Fprintf(&b, "Dataset: the testbench generator's %s rows over %s (seed %d, ending %s; NOW = %d). ",
		thousands(int64(r.Dataset.Rows)), r.Dataset.Span, r.Dataset.Seed, r.Dataset.End.Format(time.RFC3339), r.Dataset.Now)
	fmt.Fprintf(&b, "Times are the median wall time of %d warm runs after one untimed run, the two engines taking turns query by query, measured by the client: "+
		"reef through its aggregator over HTTP (%s), DuckDB through database/sql in its own process. "+
		"Below the table: the aggregator's own time (parse, fan-out to the leaves, merge; no client HTTP and JSON), "+
		"and each engine's best run, the one least disturbed by other work on the machine.\n\n", r.Runs, r.Reef.Setup)
	fmt.Fprintf(&b, "Agreement: counts must be equal; averages equal within %g (relative: the engines add in a different order); "+
		"reef's p99 (DDSketch, relative accuracy %g%%) must lie within %g%% of the exact values at ranks ⌊0.99·(n−1)⌋ and ⌈0.99·(n−1)⌉ "+
		"that DuckDB computes; Q4's last places may be tied, so hosts tied with the 10th may differ.\n\n",
		spec.FloatTolerance, 100*spec.QuantileAccuracy, 100*spec.QuantileAccuracy)
	if r.LoadAvg != [2]float64{} {
		fmt.Fprintf(&b, "The machine's 1-minute load average was %.1f when the benchmark started and %.1f when it ended; anything else running on the machine slows the measured times.\n\n", r.LoadAvg[0], r.LoadAvg[1])
	}
	b.WriteString(r.engineLines())
	if r.DuckDBSkipped != "" {
		fmt.Fprintf(&b, "\nDuckDB was not measured: %s.\n", r.DuckDBSkipped)
	}
	b.WriteString("\n| query | reef SQL | reef ms at the aggregator | best reef ms | best DuckDB ms | agreement |\n|---|---|---:|---:|---:|---|\n")
	for _, res := range r.Results {
		server, bestReef, bestDuck := "—", "—", "—"
		if q := r.Reef.Query(res.ID); q != nil {
			server, bestReef = ms(q.ServerMedianMS), ms(best(q.RunsMS))
		}
		if r.DuckDB != nil {
			if q := r.DuckDB.Query(res.ID); q != nil {
				bestDuck = ms(best(q.RunsMS))
			}
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %s |\n", res.ID, res.SQL, server, bestReef, bestDuck, escapeCell(res.Detail))
	}
	return b.String()
}

// Table returns the comparison table in markdown: one row per query, then memory
// per row.
func (r *Report) Table() string {
	var b strings.Builder
	b.WriteString("| query | reef ms | DuckDB ms | reef/DuckDB | agree? |\n|---|---:|---:|---:|:---:|\n")
	for _, res := range r.Results {
		reef := ms(res.ReefMS)
		if q := r.Reef.Query(res.ID); q != nil && q.Error != "" {
			reef = "failed"
		}
		duck, ratio, agree := "—", "—", "—"
		if r.DuckDB != nil {
			duck = ms(res.DuckDBMS)
			if q := r.DuckDB.Query(res.ID); q != nil && q.Error != "" {
				duck = "failed"
			}
		}
		if res.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f×", res.Ratio)
		}
		if res.Agree != nil {
			agree = "yes"
			if !*res.Agree {
				agree = "**no**"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", res.ID, reef, duck, ratio, agree)
	}
	duckBPR, bprRatio := "—", "—"
	if r.DuckDB != nil && r.DuckDB.BytesPerRow > 0 {
		duckBPR = fmt.Sprintf("%.1f", r.DuckDB.BytesPerRow)
		bprRatio = fmt.Sprintf("%.2f×", r.Reef.BytesPerRow/r.DuckDB.BytesPerRow)
	}
	fmt.Fprintf(&b, "| bytes/row | %.1f | %s | %s | |\n", r.Reef.BytesPerRow, duckBPR, bprRatio)
	return b.String()
}

// engineLines describes each engine's load and memory.
func (r *Report) engineLines() string {
	var b strings.Builder
	for _, e := range []*spec.Engine{&r.Reef, r.DuckDB} {
		if e == nil {
			continue
		}
		name := e.Engine
		if e.Version != "" {
			name += " " + e.Version
		}
		fmt.Fprintf(&b, "* **%s** (%s): holds %s rows in %s (%.1f bytes/row; %s)", name, e.Setup,
			thousands(e.Rows), mb(e.MemoryBytes), e.BytesPerRow, e.Memory)
		if e.RSSBytes > 0 {
			fmt.Fprintf(&b, ", resident memory %s", mb(e.RSSBytes))
		}
		if e.LoadMS > 0 {
			fmt.Fprintf(&b, "; load %.1f s (%s rows/s: %s)", e.LoadMS/1000, thousands(int64(float64(e.Rows)/(e.LoadMS/1000))), e.Load)
		}
		b.WriteString(".\n")
	}
	return b.String()
}

// Write writes report.md, report.json and chart.png into dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot write the report: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode the report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ReportJSON), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write the report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ReportMarkdown), []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("cannot write the report: %w", err)
	}
	if err := r.Chart(filepath.Join(dir, ReportChart)); err != nil {
		return fmt.Errorf("cannot draw the chart: %w", err)
	}
	return nil
}

// best returns the smallest of v, or 0 for none.
func best(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Min(v)
}

func ms(v float64) string {
	switch {
	case v == 0:
		return "—"
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func mb(n int64) string { return fmt.Sprintf("%.0f MB", float64(n)/1e6) }

// thousands writes n with comma separators: 10,000,000.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func escapeCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
