package benchq

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reef-db/reef/testbench"
	"github.com/reef-db/reef/testbench/benchq/spec"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if reefBin.dir != "" {
			_ = os.RemoveAll(reefBin.dir)
		}
		os.Exit(code)
	}))
}

var reefBin struct {
	once      sync.Once
	dir, path string
	err       error
	out       []byte
}

// reefBinary builds cmd/reef once per test run.
func reefBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a cluster of real reef processes; skipped with -short")
	}
	reefBin.once.Do(func() {
		if reefBin.dir, reefBin.err = os.MkdirTemp("", "reef-benchq-bin-"); reefBin.err != nil {
			return
		}
		reefBin.path = filepath.Join(reefBin.dir, "reef")
		reefBin.out, reefBin.err = exec.Command("go", "build", "-pgo=off", "-o", reefBin.path, "github.com/reef-db/reef/cmd/reef").CombinedOutput()
	})
	if reefBin.err != nil {
		t.Fatalf("cannot build cmd/reef: %v\n%s", reefBin.err, reefBin.out)
	}
	return reefBin.path
}

// TestRunTiny runs the whole benchmark at a tiny size, with a stand-in for the
// DuckDB side that answers from a plain evaluation of the generated rows: reef's
// answers must agree with it, and the report files must be there.
func TestRunTiny(t *testing.T) {
	const rows = 20_000
	bin := reefBinary(t)
	dir := t.TempDir()
	fake := fakeDuckBench(t, dir, serveScript(t, dir, reference(rows)))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := filepath.Join(dir, "report")
	var progress strings.Builder
	rep, err := Run(ctx, Options{
		Binary:    bin,
		Rows:      rows,
		Runs:      1,
		OutDir:    out,
		WorkDir:   filepath.Join(dir, "work"),
		DuckBench: fake,
		Command:   "reef bench queries --rows 20000 --runs 1",
		Progress:  &progress,
	})
	if err != nil {
		// The work directory goes with the test: show the processes' logs.
		logs, _ := filepath.Glob(filepath.Join(dir, "work", "*", "logs", "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", l, b)
		}
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}

	q1 := rep.Reef.Query("Q1")
	if q1 == nil || len(q1.Rows) != 1 || len(q1.Rows[0]) != 1 || q1.Rows[0][0] != int64(rows) {
		t.Errorf("reef's Q1 answered %+v, want [[%d]]", q1, rows)
	}
	if rep.Reef.Rows != rows || rep.Reef.MemoryBytes <= 0 || rep.Reef.BytesPerRow <= 0 {
		t.Errorf("reef memory not measured: rows %d, bytes %d, bytes/row %.1f", rep.Reef.Rows, rep.Reef.MemoryBytes, rep.Reef.BytesPerRow)
	}
	if len(rep.Results) != 5 {
		t.Fatalf("%d results, want 5", len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.ReefMS <= 0 || r.DuckDBMS <= 0 || r.Ratio <= 0 {
			t.Errorf("%s: times not measured: %+v", r.ID, r)
		}
		if r.Agree == nil || !*r.Agree {
			t.Errorf("%s: reef disagrees with the reference: %s", r.ID, r.Detail)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "work")); !os.IsNotExist(err) {
		t.Errorf("work directory left behind: %v", err)
	}

	// The files: the markdown has the table, the JSON decodes to the same report, the
	// chart is a PNG.
	md, err := os.ReadFile(filepath.Join(out, ReportMarkdown))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| Q1 |", "| bytes/row |", "reef bench queries --rows 20000", "20,000 rows"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	data, err := os.ReadFile(filepath.Join(out, ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	if back.Dataset.Rows != rows || len(back.Results) != 5 || back.DuckDB == nil {
		t.Errorf("report.json does not hold the report: %+v", back)
	}
	checkPNG(t, filepath.Join(out, ReportChart))

	// A second run into the same directory is refused rather than overwriting it.
	if _, err := Run(ctx, Options{Binary: bin, Rows: rows, OutDir: out, NoDuckDB: true}); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Errorf("second Run into %s: %v, want a refusal", out, err)
	}
}

func TestStartDuckDBFailures(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Rows: 10, Runs: 1, Progress: &lockedWriter{w: &strings.Builder{}}}
	f := func(name, script, want string) {
		t.Helper()
		opts.DuckBench = fakeDuckBench(t, dir, script)
		d, why := startDuckDB(context.Background(), opts, dir)
		if d != nil || !strings.Contains(why, want) {
			t.Errorf("%s: startDuckDB = %v, %q; want no side and %q", name, d, why, want)
		}
	}
	f("exit status", "echo cannot load >&2; exit 3", "exit status 3")
	f("not JSON", "echo hello", "printed no report")
	f("no engine", `echo '{"rows": 1}'`, "no engine name")

	opts.DuckBench = filepath.Join(dir, "missing")
	if d, why := startDuckDB(context.Background(), opts, dir); d != nil || !strings.Contains(why, "cannot start") {
		t.Errorf("missing program: %v, %q", d, why)
	}
	// Without a prebuilt program, a source directory without the module is reported.
	opts.DuckBench, opts.DuckBenchSource = "", dir
	if d, why := startDuckDB(context.Background(), opts, dir); d != nil || !strings.Contains(why, "cannot build") {
		t.Errorf("no module: %v, %q", d, why)
	}
}

// TestDuckDBSideStopsAnswering checks the two ways a loaded DuckDB side can fail: it
// exits, or it hangs (and is killed).
func TestDuckDBSideStopsAnswering(t *testing.T) {
	dir := t.TempDir()
	header := `echo '{"engine":"duckdb","rows":10}'`
	opts := Options{Rows: 10, Runs: 1, Progress: &lockedWriter{w: &strings.Builder{}}}

	opts.DuckBench = fakeDuckBench(t, dir, header+"; read cmd; exit 4")
	d, why := startDuckDB(context.Background(), opts, dir)
	if d == nil {
		t.Fatalf("startDuckDB: %s", why)
	}
	if _, err := d.ask("run Q1"); err == nil {
		t.Error("ask of an exited side succeeded")
	}
	if err := d.stop(nil); err == nil || !strings.Contains(err.Error(), "exit status 4") {
		t.Errorf("stop = %v, want exit status 4", err)
	}
	if err2 := d.stop(nil); err2 == nil {
		t.Error("second stop forgot the first one's result")
	}

	opts.DuckBench = fakeDuckBench(t, dir, header+"; sleep 60")
	if d, why = startDuckDB(context.Background(), opts, dir); d == nil {
		t.Fatalf("startDuckDB: %s", why)
	}
	if _, err := io.WriteString(d.in, "run Q1\n"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := d.next(100 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "no answer within") {
		t.Errorf("next on a hung side = %v", err)
	}
	_ = d.stop(nil)
	if el := time.Since(t0); el > 20*time.Second {
		t.Errorf("a hung side took %v to stop", el)
	}
}

// TestReportWithoutDuckDB writes a report of reef alone: the table marks the DuckDB
// columns as missing and says why.
func TestReportWithoutDuckDB(t *testing.T) {
	ref := reference(1000)
	ref.Engine = "reef"
	rep := &Report{Dataset: Dataset{Rows: 1000, Now: spec.EndUnix, Span: "24h"}, Runs: 1, Reef: *ref, DuckDBSkipped: "not asked for"}
	rep.compare()
	dir := t.TempDir()
	if err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, ReportMarkdown))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| Q1 | 1.00 | — | — | — |", "DuckDB was not measured: not asked for"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	checkPNG(t, filepath.Join(dir, ReportChart))
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 10_000_000: "10,000,000", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// serveScript writes e's header and answers into dir and returns a shell script body
// that speaks the duckbench serve protocol with them.
func serveScript(t *testing.T, dir string, e *spec.Engine) string {
	t.Helper()
	ans := filepath.Join(dir, "answers")
	if err := os.MkdirAll(ans, 0o755); err != nil {
		t.Fatal(err)
	}
	header := *e
	header.Queries = nil
	writeJSON(t, filepath.Join(ans, "header.json"), &header)
	for _, q := range e.Queries {
		writeJSON(t, filepath.Join(ans, "run-"+q.ID+".json"), spec.QueryRun{ID: q.ID, RunsMS: []float64{1}, Columns: q.Columns, Rows: q.Rows})
		if q.Bounds != nil {
			writeJSON(t, filepath.Join(ans, "bounds-"+q.ID+".json"), spec.QueryRun{ID: q.ID, Bounds: q.Bounds})
		}
	}
	return fmt.Sprintf(`cd '%s' || exit 1
cat header.json
while read verb id; do
	if [ -f "$verb-$id.json" ]; then cat "$verb-$id.json"; else echo '{"error":"no such command"}'; fi
done`, ans)
}

// fakeDuckBench writes a shell script standing in for the duckbench program.
func fakeDuckBench(t *testing.T, dir, body string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "fake-duckbench-*.sh")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("#!/bin/sh\n" + body + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f.Name(), 0o755); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
		t.Errorf("%s is %v: too small for a chart", path, b)
	}
}

// reference answers Q1–Q5 over the standard dataset of n rows by plain evaluation of
// the generated events, as a DuckDB report would (every time 1 ms).
func reference(n int) *spec.Engine {
	hour, sixHours := int64(spec.EndUnix-3600), int64(spec.EndUnix-21600)
	type svcAgg struct {
		n   int64
		sum float64
	}
	services := map[string]*svcAgg{}
	lat500 := map[string][]float64{}
	hosts := map[string]int64{}
	buckets := map[int64]int64{}
	for e := range testbench.Events(spec.Dataset(n)) {
		s := services[e.Service]
		if s == nil {
			s = &svcAgg{}
			services[e.Service] = s
		}
		s.n++
		s.sum += e.LatencyMS
		if e.Status == 500 {
			lat500[e.Endpoint] = append(lat500[e.Endpoint], e.LatencyMS)
		}
		if e.Time >= hour {
			hosts[e.Host]++
		}
		if e.Time >= sixHours && e.Service == "svc-03" {
			buckets[e.Time/60*60]++
		}
	}

	ans := map[string]*spec.QueryRun{
		"Q1": {Rows: [][]any{{int64(n)}}},
		"Q2": {}, "Q3": {}, "Q4": {}, "Q5": {},
	}
	for name, s := range services {
		ans["Q2"].Rows = append(ans["Q2"].Rows, []any{name, s.n, s.sum / float64(s.n)})
	}
	for ep, v := range lat500 {
		slices.Sort(v)
		h := 0.99 * float64(len(v)-1)
		lo, hi := v[int(math.Floor(h))], v[int(math.Ceil(h))]
		ans["Q3"].Rows = append(ans["Q3"].Rows, []any{ep, lo})
		ans["Q3"].Bounds = append(ans["Q3"].Bounds, []any{ep, lo, hi})
	}
	var top [][]any
	for h, c := range hosts {
		top = append(top, []any{h, c})
	}
	slices.SortFunc(top, func(a, b []any) int {
		if c := b[1].(int64) - a[1].(int64); c != 0 {
			return int(c)
		}
		return strings.Compare(a[0].(string), b[0].(string))
	})
	ans["Q4"].Rows = top[:min(10, len(top))]
	for t, c := range buckets {
		ans["Q5"].Rows = append(ans["Q5"].Rows, []any{t, c})
	}

	e := &spec.Engine{Engine: "duckdb", Version: "reference", Rows: int64(n), MemoryBytes: int64(n) * 100, BytesPerRow: 100}
	for _, q := range spec.Queries(spec.EndUnix) {
		a := ans[q.ID]
		a.ID, a.SQL, a.RunsMS, a.MedianMS = q.ID, q.DuckDB, []float64{1}, 1
		e.Queries = append(e.Queries, *a)
	}
	return e
}
