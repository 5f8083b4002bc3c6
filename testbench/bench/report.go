package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Files of a report directory.
const (
	ReportMarkdown = "report.md"
	ReportJSON     = "report.json"
)

// Report is the outcome of one bench run, as written to report.json. Sections that do
// not apply to the run's kind are absent.
type Report struct {
	// Kind is the subcommand: load, query-load, chaos, deploy or ingest.
	Kind    string    `json:"kind"`
	Command string    `json:"command,omitempty"`
	Started time.Time `json:"started"`
	Machine string    `json:"machine"`
	// Setup describes the cluster: how many processes of which kind, or the URL used.
	Setup     string  `json:"setup"`
	Table     string  `json:"table,omitempty"`
	DurationS float64 `json:"duration_s"`
	// Dir is the cluster's data dir when it was kept (after a failure, or asked for).
	Dir string `json:"cluster_dir,omitempty"`

	// Summary is the table at the top of report.md, in order.
	Summary []SummaryRow `json:"summary"`
	// Failures says what went wrong; a run passed when it is empty.
	Failures []string `json:"failures,omitempty"`

	Preload *LoadResult   `json:"preload,omitempty"`
	Load    *LoadResult   `json:"load,omitempty"`
	Queries *QueryResult  `json:"queries,omitempty"`
	Faults  []FaultRecord `json:"faults,omitempty"`
	Deploy  *DeployResult `json:"deploy,omitempty"`
	Verify  *Verification `json:"verify,omitempty"`
	Ingest  *IngestResult `json:"ingest,omitempty"`

	// Marks are the events of the run; Timeline its buckets.
	Marks    []Mark  `json:"marks,omitempty"`
	Timeline []Point `json:"timeline,omitempty"`
	// Plots are the PNG files written next to the report.
	Plots []string `json:"plots,omitempty"`
}

// SummaryRow is one line of the summary table.
type SummaryRow struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Passed reports whether the run met every check.
func (r *Report) Passed() bool { return len(r.Failures) == 0 }

func (r *Report) add(name, format string, args ...any) {
	r.Summary = append(r.Summary, SummaryRow{Name: name, Value: fmt.Sprintf(format, args...)})
}

func (r *Report) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// summarize fills in the summary table from the sections.
func (r *Report) summarize() {
	r.Summary = r.Summary[:0]
	r.add("setup", "%s", r.Setup)
	if r.Table != "" {
		r.add("table", "%s", r.Table)
	}
	r.add("duration", "%.1f s", r.DurationS)
	if p := r.Preload; p != nil {
		r.add("preload", "%s rows in %.1f s (%s rows/s)", thousands(p.AcceptedRows), p.ElapsedS, humanCount(p.RowsPerSec))
	}
	if l := r.Load; l != nil {
		target := "as fast as acknowledged"
		if l.TargetRate > 0 {
			target = humanCount(l.TargetRate) + " rows/s"
		}
		r.add("ingest target", "%s, %d-row batches, %d in flight", target, l.BatchRows, l.Concurrency)
		r.add("ingest achieved", "%s rows/s, %.1f MB/s (%s rows acknowledged in %.1f s)", humanCount(l.RowsPerSec), l.MBPerSec, thousands(l.AcceptedRows), l.ElapsedS)
		r.add("batches", "%d sent, %d acknowledged, %d unacknowledged, %d retries, %d duplicates", l.Batches, l.AckedBatches, l.Unacked, l.Retries, l.Duplicates)
		r.add("ingest latency", "p50 %.1f ms, p99 %.1f ms, max %.1f ms", l.P50MS, l.P99MS, l.MaxMS)
	}
	if q := r.Queries; q != nil {
		r.add("queries", "%d by %d clients (%.1f/s), %d errors, %d partial", q.Queries, q.Clients, q.QPS, q.Errors, q.Partial)
		r.add("query latency", "p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms", q.P50MS, q.P95MS, q.P99MS, q.MaxMS)
		r.add("coverage", "lowest %.1f%%, mean %.2f%%", q.CoverageMin, q.CoverageMean)
	}
	if len(r.Faults) > 0 {
		counts := map[string]int{}
		failed := 0
		for _, f := range r.Faults {
			counts[f.Kind]++
			if f.Error != "" {
				failed++
			}
		}
		var parts []string
		for _, k := range []string{FaultKill, FaultStop, FaultRestart} {
			if counts[k] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
			}
		}
		r.add("faults", "%s; %d failed", strings.Join(parts, ", "), failed)
	}
	if d := r.Deploy; d != nil {
		r.add("deploy", "%d leaves in %.2f s (script exit %d)", len(d.Leaves), d.TotalS, d.ExitCode)
		for _, l := range d.Leaves {
			r.add("  "+l.ID, "handoff %.1f ms, exec→ready %.1f ms, not ready for %.0f ms; started from %s in %.1f ms",
				l.HandoffMS, l.ExecReadyMS, l.DownMS, l.StartPath, l.StartMS)
		}
		if d.MinCoverage >= 0 {
			r.add("coverage in deploy", "lowest %.1f%%", d.MinCoverage)
		}
	}
	if v := r.Verify; v != nil {
		r.add("rows lost", "%d", v.Missing)
		r.add("rows duplicated", "%d", v.Duplicated)
		r.add("exactly once", "%s", v)
	}
	if in := r.Ingest; in != nil {
		r.add("dataset", "%s rows, %.0f MB of NDJSON", thousands(in.Rows), in.MB)
		r.add("reef", "%.2f s: %s rows/s, %.0f MB/s (%s)", in.ReefSeconds, humanCount(in.ReefRowsPerSec), in.ReefMBPerSec, in.ReefSetup)
		if len(in.CPU) > 0 {
			r.add("reef CPU time", "%s", cpuString(in.CPU))
		}
		if d := in.DuckDB; d != nil {
			r.add("DuckDB read_json", "%.2f s: %s rows/s, %.0f MB/s (%s)", d.Seconds, humanCount(d.RowsPerSec), d.MBPerSec, d.Setup)
			if d.ProcessCPUSeconds > 0 {
				r.add("DuckDB CPU time", "%.2f s (the whole duckbench process)", d.ProcessCPUSeconds)
			}
			r.add("reef / DuckDB", "%.2f× the rows per second", in.Ratio)
		} else {
			r.add("DuckDB read_json", "not measured: %s", in.DuckDBSkipped)
		}
	}
	if r.Passed() {
		r.add("result", "PASSED")
	} else {
		r.add("result", "FAILED: %s", strings.Join(r.Failures, "; "))
	}
}

// Markdown returns the report as a markdown document: the summary table, the plots,
// and the details of every section.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# reef bench %s\n\n", r.Kind)
	if r.Command != "" {
		fmt.Fprintf(&b, "`%s`\n\n", r.Command)
	}
	fmt.Fprintf(&b, "%s, on %s.\n\n", r.Started.Format(time.RFC3339), r.Machine)
	b.WriteString("| | |\n|---|---|\n")
	for _, s := range r.Summary {
		fmt.Fprintf(&b, "| %s | %s |\n", escapeCell(s.Name), escapeCell(s.Value))
	}
	b.WriteString("\n")
	for _, p := range r.Plots {
		fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(p, ".png"), p)
	}
	if q := r.Queries; q != nil && len(q.PerQuery) > 0 {
		b.WriteString("## Queries\n\n| query | runs | errors | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n")
		for _, s := range q.PerQuery {
			fmt.Fprintf(&b, "| `%s` | %d | %d | %.1f | %.1f | %.1f |\n", escapeCell(s.SQL), s.Queries, s.Errors, s.P50MS, s.P99MS, s.MaxMS)
		}
		b.WriteString("\n")
		if q.FirstError != "" {
			fmt.Fprintf(&b, "First query error: %s\n\n", q.FirstError)
		}
	}
	if len(r.Faults) > 0 {
		b.WriteString("## Faults\n\n| at s | fault | leaf | recovered after s | error |\n|---|---|---|---|---|\n")
		for _, f := range r.Faults {
			fmt.Fprintf(&b, "| %.1f | %s | %s | %.2f | %s |\n", f.AtS, f.Kind, f.Leaf, f.RecoveredS, escapeCell(f.Error))
		}
		b.WriteString("\n")
	}
	if d := r.Deploy; d != nil {
		b.WriteString("## Deploy\n\n")
		fmt.Fprintf(&b, "`%s` ran from %.1f s to %.1f s (%.2f s, exit %d).\n\n", d.Command, d.StartS, d.StartS+d.TotalS, d.TotalS, d.ExitCode)
		b.WriteString("| leaf | handoff ms | exit ms | exec→ready ms | not ready ms | start path | start ms | rows handed over | rows after |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, l := range d.Leaves {
			fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.1f | %.0f | %s | %.1f | %d | %d |\n",
				l.ID, l.HandoffMS, l.ExitMS, l.ExecReadyMS, l.DownMS, l.StartPath, l.StartMS, l.RowsHanded, l.RowsAfter)
		}
		b.WriteString("\nhandoff, exit and exec→ready are the script's own timeline; not ready is how long the leaf's `/readyz` failed, polled every 10 ms from outside; start path and start ms are what the new process reports in its stats.\n")
		b.WriteString("\n")
		if d.OutputTail != "" {
			fmt.Fprintf(&b, "End of the script's output:\n\n```\n%s\n```\n\n", d.OutputTail)
		}
	}
	if v := r.Verify; v != nil && len(v.Problems) > 0 {
		b.WriteString("## Batches with wrong row counts (first ones)\n\n| batch | acknowledged | want | found |\n|---|---|---|---|\n")
		for _, p := range v.Problems {
			fmt.Fprintf(&b, "| %d | %v | %d | %d |\n", p.Batch, p.Acked, p.Want, p.Got)
		}
		b.WriteString("\n")
	}
	if len(r.Marks) > 0 {
		b.WriteString("## Events\n\n| at s | event |\n|---|---|\n")
		for _, m := range r.Marks {
			fmt.Fprintf(&b, "| %.2f | %s |\n", m.At, escapeCell(m.What))
		}
		b.WriteString("\n")
	}
	b.WriteString(methodNote(r.Kind))
	return b.String()
}

// methodNote says how the numbers of a kind of run were measured.
func methodNote(kind string) string {
	switch kind {
	case "ingest":
		return "How: the dataset is generated and encoded as NDJSON in memory before the clock starts; " +
			"reef's time runs from the first request to the last acknowledgement of the batches, posted as the setup says; " +
			"DuckDB's is `CREATE TABLE AS SELECT * FROM read_json(file)` of the same bytes written to a file, " +
			"timed inside the duckbench program.\n"
	default:
		return "How: every batch carries a batch id (`X-Reef-Batch-Id`) and every row its batch number in the " +
			"`batch` column; the run records which batches were acknowledged and afterwards counts rows per batch " +
			"with `SELECT batch, count(*) … GROUP BY batch` at full coverage. Rates and latencies are per " +
			"second of the run (buckets widen on long runs); latency is the client's wall time; coverage is " +
			"the answers' `coverage.percent`.\n"
	}
}

func escapeCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// Write writes report.md, report.json and the plots into dir, which must exist.
func (r *Report) Write(dir string) error {
	r.summarize()
	r.Plots = r.Plots[:0]
	title := func(what string) string { return fmt.Sprintf("reef bench %s: %s", r.Kind, what) }
	type plotFn func() error
	var plots []struct {
		file string
		draw plotFn
	}
	addPlot := func(file string, draw plotFn) {
		plots = append(plots, struct {
			file string
			draw plotFn
		}{file, draw})
	}
	hasQueries, hasIngest := false, false
	for _, p := range r.Timeline {
		hasQueries = hasQueries || p.Queries > 0
		hasIngest = hasIngest || p.Batches > 0
	}
	if r.Ingest != nil {
		addPlot(PlotIngest, func() error { return plotIngest(filepath.Join(dir, PlotIngest), r.Ingest) })
	}
	if hasIngest {
		addPlot(PlotThroughput, func() error {
			return plotThroughput(filepath.Join(dir, PlotThroughput), title("ingest throughput"), r.Timeline, r.Marks)
		})
	}
	if hasQueries {
		addPlot(PlotQueries, func() error {
			return plotQueries(filepath.Join(dir, PlotQueries), title("queries"), r.Timeline, r.Marks)
		})
		addPlot(PlotLatency, func() error {
			return plotLatency(filepath.Join(dir, PlotLatency), title("query latency"), r.Timeline, r.Marks)
		})
		addPlot(PlotCoverage, func() error {
			return plotCoverage(filepath.Join(dir, PlotCoverage), title("coverage"), r.Timeline, r.Marks)
		})
	}
	for _, p := range plots {
		if err := p.draw(); err != nil {
			return err
		}
		r.Plots = append(r.Plots, p.file)
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
	return nil
}

// PrepareOutDir creates dir, refusing one that already holds a report.
func PrepareOutDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("cannot write a report: no directory given")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create the report directory: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ReportJSON)); err == nil {
		return fmt.Errorf("cannot write the report: %s already holds one", dir)
	}
	return nil
}

// DefaultOutDir returns bench-results/<kind>-<YYYYMMDD-HHMMSS>.
func DefaultOutDir(kind string, now time.Time) string {
	return filepath.Join("bench-results", kind+"-"+now.Format("20060102-150405"))
}

// Machine describes the computer a run is on: OS, cores, CPU model, memory and Go
// version.
func Machine() string {
	s := fmt.Sprintf("%s/%s, %d cores", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				s += ", " + strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err == nil {
			s += fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
		}
	}
	return s + ", " + runtime.Version()
}
