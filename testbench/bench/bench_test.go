package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"
	"go.uber.org/goleak"
	"gonum.org/v1/plot/vg"

	"github.com/reef-db/reef/testbench"
)

func TestMain(m *testing.M) {
	// Tiny plots: drawing a full-size PNG takes seconds under the race detector.
	plotWidth, plotHeight = 3*vg.Inch, 1.5*vg.Inch
	goleak.VerifyTestMain(m)
}

func TestRowPoolBatch(t *testing.T) {
	p, err := newRowPool(testbench.GenConfig{Seed: 3, Rows: 5, End: time.Unix(1_700_000_000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if p.rows() != 5 {
		t.Fatalf("pool has %d rows, want 5", p.rows())
	}
	// 7 lines from line 3: lines 3, 4, 0, 1, 2, 3, 4 of the pool.
	data := p.appendBatch(nil, 3, 7, 42)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d lines, want 7:\n%s", len(lines), data)
	}
	var events []testbench.Event
	for e := range testbench.Events(testbench.GenConfig{Seed: 3, Rows: 5, End: time.Unix(1_700_000_000, 0)}) {
		events = append(events, e)
	}
	for k, line := range lines {
		v, err := fastjson.Parse(line)
		if err != nil {
			t.Fatalf("line %d %q: %v", k, line, err)
		}
		if got := v.GetInt64(BatchColumn); got != 42 {
			t.Errorf("line %d: batch %d, want 42", k, got)
		}
		want := events[(3+k)%5]
		if got := string(v.GetStringBytes("host")); got != want.Host || v.GetInt64("time") != want.Time {
			t.Errorf("line %d = %s, want the pool's event %d (%+v)", k, line, (3+k)%5, want)
		}
	}
	if _, err := newRowPool(testbench.GenConfig{Rows: 0}); err == nil {
		t.Error("an empty pool was made")
	}
}

func TestLedger(t *testing.T) {
	l := NewLedger("p")
	for _, rows := range []int{10, 20, 5} {
		if _, err := l.next(rows); err != nil {
			t.Fatal(err)
		}
	}
	l.ack(0, 10)
	l.ack(2, 4)
	for _, tc := range []struct {
		n                  int64
		sent, accepted     int
		acked              bool
		wantID, wantString string
	}{
		{0, 10, 10, true, "p-0", ""},
		{1, 20, 0, false, "p-1", ""},
		{2, 5, 4, true, "p-2", ""},
		{3, 0, 0, false, "p-3", ""},
		{-1, 0, 0, false, "p--1", ""},
	} {
		sent, accepted, acked := l.Batch(tc.n)
		if sent != tc.sent || accepted != tc.accepted || acked != tc.acked || l.ID(tc.n) != tc.wantID {
			t.Errorf("batch %d: %d sent, %d accepted, acked %v, id %s; want %d, %d, %v, %s",
				tc.n, sent, accepted, acked, l.ID(tc.n), tc.sent, tc.accepted, tc.acked, tc.wantID)
		}
	}
	want := LedgerTotals{Batches: 3, Rows: 35, AckedBatches: 2, AcceptedRows: 14}
	if got := l.Totals(); got != want {
		t.Errorf("totals %+v, want %+v", got, want)
	}
}

func TestTimeline(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	tl := NewTimeline(start)
	tl.Ingest(start.Add(100*time.Millisecond), 1000, 150_000, 20*time.Millisecond)
	tl.Ingest(start.Add(900*time.Millisecond), 1000, 150_000, 40*time.Millisecond)
	tl.IngestRetry(start.Add(1500 * time.Millisecond))
	tl.Query(start.Add(1200*time.Millisecond), 10*time.Millisecond, 100, false, nil)
	tl.Query(start.Add(1300*time.Millisecond), 30*time.Millisecond, 50, true, nil)
	tl.Query(start.Add(1400*time.Millisecond), time.Second, 0, false, context.DeadlineExceeded)
	tl.Mark(start.Add(1250*time.Millisecond), MarkFault, "kill -9 leaf-1")

	pts := tl.Points(start.Add(2500 * time.Millisecond))
	if len(pts) != 3 {
		t.Fatalf("%d points, want 3: %+v", len(pts), pts)
	}
	p0, p1, p2 := pts[0], pts[1], pts[2]
	if p0.RowsPerSec != 2000 || p0.MBPerSec != 0.3 || p0.Batches != 2 || p0.IngestP99MS == nil || p0.Queries != 0 || p0.P50MS != nil {
		t.Errorf("bucket 0 = %+v", p0)
	}
	if p1.Retries != 1 || p1.Queries != 3 || p1.QueryErrors != 1 || p1.Partial != 1 ||
		*p1.CoverageMin != 50 || *p1.CoverageMean != 75 || *p1.MaxMS != 30 {
		t.Errorf("bucket 1 = %+v", p1)
	}
	if p2.T != 2 || p2.Width != 0.5 || p2.Queries != 0 || p2.CoverageMin != nil {
		t.Errorf("bucket 2 (cut short at 2.5 s) = %+v", p2)
	}
	if m := tl.Marks(); len(m) != 1 || m[0].At != 1.25 || m[0].Kind != MarkFault {
		t.Errorf("marks %+v", m)
	}

	// Far past maxBuckets one-second buckets, the width doubles and totals stay.
	late := start.Add(3 * maxBuckets * time.Second)
	tl.Ingest(late, 500, 1, time.Millisecond)
	pts = tl.Points(late.Add(time.Second))
	if len(pts) > maxBuckets {
		t.Fatalf("%d points, more than %d", len(pts), maxBuckets)
	}
	var rows, queries int64
	for _, p := range pts {
		if p.Width != 4 && p != pts[len(pts)-1] {
			t.Fatalf("bucket width %v, want 4 s after coarsening", p.Width)
		}
		rows += p.Rows
		queries += p.Queries
	}
	if rows != 2500 || queries != 3 {
		t.Errorf("after coarsening: %d rows, %d queries; want 2500 and 3", rows, queries)
	}
}

func TestRunLoadRowsAndConcurrency(t *testing.T) {
	f := newFakeAggregator(t)
	l := NewLedger("t1")
	tl := NewTimeline(time.Now())
	start := time.Now()
	res, err := RunLoad(context.Background(), LoadConfig{Client: f.client(), Table: "ev", Ledger: l,
		Rows: 2500, BatchRows: 1000, Concurrency: 2, Rate: 25_000, Timeline: tl})
	if err != nil {
		t.Fatal(err)
	}
	// Batch 2 is due after 2000 rows at 25k rows/s: 80 ms after the start.
	if took := time.Since(start); took < 80*time.Millisecond {
		t.Errorf("2500 rows at 25k rows/s took %v: batches went out before they were due", took)
	}
	if res.Batches != 3 || res.AckedBatches != 3 || res.AcceptedRows != 2500 || res.Unacked != 0 || res.Bytes == 0 {
		t.Errorf("result %+v", res)
	}
	for b, want := range []int64{1000, 1000, 500} {
		if got := f.stored(int64(b)); got != want {
			t.Errorf("batch %d: %d rows stored, want %d", b, got, want)
		}
	}
	if f.maxIn > 2 {
		t.Errorf("%d requests in flight, concurrency is 2", f.maxIn)
	}
	if tot := l.Totals(); tot.AcceptedRows != 2500 || tot.AckedBatches != 3 {
		t.Errorf("ledger %+v", tot)
	}
	var rows int64
	for _, p := range tl.Points(time.Now()) {
		rows += p.Rows
	}
	if rows != 2500 {
		t.Errorf("timeline holds %d rows, want 2500", rows)
	}
}

func TestRunLoadRetriesKeepExactlyOnce(t *testing.T) {
	f := newFakeAggregator(t)
	f.refuse = func(n int) int {
		if n == 1 || n == 2 {
			return http.StatusServiceUnavailable
		}
		return 0
	}
	f.loseAnswer = func(n int) bool { return n == 4 }
	l := NewLedger("t2")
	res, err := RunLoad(context.Background(), LoadConfig{Client: f.client(), Table: "ev", Ledger: l, Rows: 3000, BatchRows: 500, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Retries != 3 || res.Duplicates != 1 || res.AckedBatches != 6 || res.AcceptedRows != 3000 {
		t.Errorf("result %+v; want 3 retries, 1 duplicate, 6 batches, 3000 rows", res)
	}
	v, err := Verify(context.Background(), f.client(), "ev", l, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK || v.AckedRows != 3000 || v.FoundRows != 3000 || v.TableRows != 3000 {
		t.Errorf("verification %+v", v)
	}
}

func TestRunLoadStopsOnClientError(t *testing.T) {
	f := newFakeAggregator(t)
	f.refuse = func(n int) int { return http.StatusBadRequest }
	res, err := RunLoad(context.Background(), LoadConfig{Client: f.client(), Table: "ev", Ledger: NewLedger("t3"), Rows: 1000, BatchRows: 100})
	if err == nil || !strings.Contains(err.Error(), "400") && !strings.Contains(err.Error(), "refused") {
		t.Fatalf("error %v, want the 400", err)
	}
	if res == nil || res.AckedBatches != 0 || res.FirstError == "" {
		t.Errorf("result %+v", res)
	}
}

func TestRunLoadGivesUpAfterDrain(t *testing.T) {
	f := newFakeAggregator(t)
	f.refuse = func(n int) int {
		if n > 2 {
			return http.StatusServiceUnavailable
		}
		return 0
	}
	l := NewLedger("t4")
	// Every sender ends up retrying a refused batch; the load must still end, giving
	// them up DrainTimeout after its Duration.
	res, err := RunLoad(context.Background(), LoadConfig{Client: f.client(), Table: "ev", Ledger: l, PoolRows: 100,
		Duration: 200 * time.Millisecond, BatchRows: 100, Concurrency: 4, DrainTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.AckedBatches != 2 || res.Unacked != res.Batches-2 || res.Unacked == 0 || res.FirstError == "" {
		t.Errorf("result %+v; want 2 acknowledged and the rest given up", res)
	}
	if tot := l.Totals(); tot.AckedBatches != 2 || tot.Batches != res.Batches {
		t.Errorf("ledger %+v", tot)
	}
}

func TestRunLoadBadConfig(t *testing.T) {
	f := newFakeAggregator(t)
	for _, cfg := range []LoadConfig{
		{Table: "ev", Ledger: NewLedger("x"), Rows: 1},
		{Client: f.client(), Table: "ev", Rows: 1},
		{Client: f.client(), Table: "ev", Ledger: NewLedger("x")},
		{Client: f.client(), Table: "9bad", Ledger: NewLedger("x"), Rows: 1},
		{Client: f.client(), Table: "ev", Ledger: NewLedger("x"), Rows: 1, Rate: -1},
	} {
		if _, err := RunLoad(context.Background(), cfg); err == nil {
			t.Errorf("RunLoad(%+v) did not fail", cfg)
		}
	}
}

func TestVerifyFindsLostDuplicatedAndUnknownRows(t *testing.T) {
	f := newFakeAggregator(t)
	f.mangle = func(b, rows int64) int64 {
		switch b {
		case 1:
			return rows - 3 // lost
		case 2:
			return 2 * rows // stored twice
		}
		return rows
	}
	l := NewLedger("t5")
	if _, err := RunLoad(context.Background(), LoadConfig{Client: f.client(), Table: "ev", Ledger: l, Rows: 400, BatchRows: 100, Concurrency: 1}); err != nil {
		t.Fatal(err)
	}
	// A batch sent but never acknowledged may be there with some of its rows; rows
	// of a batch never sent may not.
	n, _ := l.next(100)
	f.mu.Lock()
	f.perBatch[n] += 60
	f.perBatch[n+5] += 7
	f.rows += 67
	f.mu.Unlock()

	v, err := Verify(context.Background(), f.client(), "ev", l, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v.OK || v.Missing != 3 || v.Duplicated != 100 || v.UnackedFound != 60 || v.Unknown != 7 ||
		v.AckedRows != 400 || v.FoundRows != 397 || v.TableRows != 564 || v.Batches != 5 {
		t.Errorf("verification %+v", v)
	}
	if len(v.Problems) != 2 || v.Problems[0] != (BatchProblem{Batch: 1, Acked: true, Want: 100, Got: 97}) ||
		v.Problems[1] != (BatchProblem{Batch: 2, Acked: true, Want: 100, Got: 200}) {
		t.Errorf("problems %+v", v.Problems)
	}
	if !strings.Contains(v.String(), "FAILED") {
		t.Errorf("String() = %q", v.String())
	}
}

func TestVerifyNeedsFullCoverage(t *testing.T) {
	f := newFakeAggregator(t)
	f.coverage = 50
	l := NewLedger("t6")
	_, err := Verify(context.Background(), f.client(), "ev", l, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "full coverage") {
		t.Fatalf("error %v, want no answer with full coverage", err)
	}
}

func TestRunQueries(t *testing.T) {
	f := newFakeAggregator(t)
	f.coverage = 80
	tl := NewTimeline(time.Now())
	res, err := RunQueries(context.Background(), QueryConfig{Client: f.client(), Table: "ev", Clients: 3,
		Duration: 150 * time.Millisecond, Timeline: tl, Queries: []string{"SELECT a FROM {table}", "SELECT b FROM {table}"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Queries == 0 || res.Errors != 0 || res.Partial != res.Queries || res.CoverageMin != 80 || res.CoverageMean != 80 ||
		res.P50MS <= 0 || res.P99MS < res.P50MS || res.MaxMS <= 0 || len(res.PerQuery) != 2 {
		t.Errorf("result %+v", res)
	}
	if sum := res.PerQuery[0].Queries + res.PerQuery[1].Queries; sum != res.Queries || res.PerQuery[0].SQL != "SELECT a FROM ev" {
		t.Errorf("per query %+v, total %d", res.PerQuery, res.Queries)
	}
	var n int64
	for _, p := range tl.Points(time.Now()) {
		n += p.Queries
	}
	if n != res.Queries {
		t.Errorf("timeline holds %d queries, the result %d", n, res.Queries)
	}
}

func TestRunQueriesCountsErrors(t *testing.T) {
	f := newFakeAggregator(t)
	stop := make(chan struct{})
	go func() {
		time.Sleep(50 * time.Millisecond)
		close(stop)
	}()
	f.srv.Close() // every query fails to connect
	res, err := RunQueries(context.Background(), QueryConfig{Client: f.client(), Table: "ev", Clients: 1, Stop: stop, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Queries == 0 || res.Errors != res.Queries || res.FirstError == "" {
		t.Errorf("result %+v", res)
	}
}

func TestParseFaultKinds(t *testing.T) {
	got, err := ParseFaultKinds(" kill, stop,,restart ")
	if err != nil || strings.Join(got, ",") != "kill,stop,restart" {
		t.Errorf("ParseFaultKinds = %v, %v", got, err)
	}
	if _, err := ParseFaultKinds("kill,explode"); err == nil || !strings.Contains(err.Error(), "explode") {
		t.Errorf("error %v, want one naming the unknown fault", err)
	}
	if _, err := (FaultConfig{Kinds: []string{"boom"}}).resolve(); err == nil {
		t.Error("an unknown fault kind was accepted")
	}
}

// TestReportWrite writes a report with every section at tiny size: the markdown and
// JSON files and the PNG plots must exist, and the plots must decode.
func TestReportWrite(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	tl := NewTimeline(start)
	for s := range 6 {
		at := start.Add(time.Duration(s)*time.Second + 100*time.Millisecond)
		tl.Ingest(at, 1000, 140_000, 15*time.Millisecond)
		cov := 100.0
		if s == 3 {
			cov = 66.7
		}
		tl.Query(at, time.Duration(5+s)*time.Millisecond, cov, cov < 100, nil)
	}
	tl.Mark(start.Add(3*time.Second), MarkFault, "kill -9 leaf-1")
	tl.Mark(start.Add(4*time.Second), MarkRecover, "leaf-1 started again and ready")
	rep := &Report{
		Kind: "chaos", Command: "reef bench chaos --duration 6s", Started: start.UTC(), Machine: "test",
		Setup: "3 leaves + 1 aggregator", Table: "chaos_x", DurationS: 6,
		Load:     &LoadResult{BatchRows: 1000, Concurrency: 4, Batches: 6, AckedBatches: 6, AcceptedRows: 6000, RowsPerSec: 1000},
		Queries:  &QueryResult{Clients: 1, Queries: 6, CoverageMin: 66.7, CoverageMean: 94.4, PerQuery: []QueryStats{{SQL: "SELECT count(*) FROM chaos_x", Queries: 6}}},
		Faults:   []FaultRecord{{AtS: 3, Kind: FaultKill, Leaf: "leaf-1", RecoveredS: 1}},
		Verify:   &Verification{Batches: 6, AckedBatches: 6, AckedRows: 6000, TableRows: 6000, FoundRows: 6000, OK: true},
		Ingest:   &IngestResult{Rows: 6000, MB: 0.84, ReefSetup: "2 leaves", ReefSeconds: 1, ReefRowsPerSec: 6000, DuckDB: &DuckDBIngest{Seconds: 2, RowsPerSec: 3000}},
		Timeline: tl.Points(start.Add(6 * time.Second)),
		Marks:    tl.Marks(),
	}
	dir := t.TempDir()
	if err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	wantPlots := []string{PlotIngest, PlotThroughput, PlotQueries, PlotLatency, PlotCoverage}
	if strings.Join(rep.Plots, ",") != strings.Join(wantPlots, ",") {
		t.Errorf("plots %v, want %v", rep.Plots, wantPlots)
	}
	md, err := os.ReadFile(filepath.Join(dir, ReportMarkdown))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# reef bench chaos", "`reef bench chaos --duration 6s`", "| rows lost | 0 |", "| result | PASSED |",
		"![coverage](coverage.png)", "| 3.0 | kill | leaf-1 |", "kill -9 leaf-1"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, ReportJSON))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	if back.Kind != "chaos" || len(back.Timeline) != 6 || back.Verify == nil || !back.Verify.OK || len(back.Summary) == 0 {
		t.Errorf("report.json read back: %+v", back)
	}
	for _, p := range wantPlots {
		f, err := os.Open(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 50 {
			t.Errorf("%s is %v", p, b)
		}
	}
	if err := PrepareOutDir(dir); err == nil {
		t.Error("PrepareOutDir accepted a directory that holds a report")
	}
}

// TestRunScenario runs a whole scenario against the fake aggregator: load, queries,
// verification, report.
func TestRunScenario(t *testing.T) {
	f := newFakeAggregator(t)
	out := filepath.Join(t.TempDir(), "out")
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Scenario{
		Kind:          "load",
		Target:        Target{URL: f.srv.URL},
		Duration:      300 * time.Millisecond,
		Preload:       1000,
		Load:          &LoadConfig{Rate: 10_000, BatchRows: 200, PoolRows: 1000},
		Queries:       &QueryConfig{Clients: 1, Interval: 20 * time.Millisecond},
		Verify:        true,
		CoverageFloor: 90,
		OutDir:        out,
		Progress:      &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed() {
		t.Fatalf("run failed: %v\n%s", rep.Failures, progress.String())
	}
	if rep.Preload == nil || rep.Preload.AcceptedRows != 1000 || rep.Load == nil || rep.Load.AcceptedRows == 0 ||
		rep.Queries == nil || rep.Queries.Queries == 0 || rep.Verify == nil ||
		rep.Verify.AckedRows != rep.Preload.AcceptedRows+rep.Load.AcceptedRows {
		t.Errorf("report %+v", rep)
	}
	if !strings.HasPrefix(rep.Table, "load_") {
		t.Errorf("table %q, want a load_<time> table", rep.Table)
	}
	for _, name := range []string{ReportMarkdown, ReportJSON, PlotThroughput, PlotQueries, PlotLatency, PlotCoverage} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Error(err)
		}
	}

	// The coverage floor fails a run whose answers fell below it.
	f.coverage = 50
	rep, err = Run(context.Background(), Scenario{Kind: "query-load", Target: Target{URL: f.srv.URL}, Table: "ev",
		Duration: 100 * time.Millisecond, Queries: &QueryConfig{Clients: 1}, CoverageFloor: 90, OutDir: filepath.Join(t.TempDir(), "q")})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Passed() || !strings.Contains(strings.Join(rep.Failures, ";"), "below the floor") {
		t.Errorf("failures %v, want the coverage floor", rep.Failures)
	}
}

func TestScenarioNeedsACluster(t *testing.T) {
	_, err := Run(context.Background(), Scenario{Kind: "chaos", Target: Target{URL: "http://127.0.0.1:1"},
		Load: &LoadConfig{}, Faults: &FaultConfig{}, OutDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "starts itself") {
		t.Errorf("error %v, want faults to need a cluster of the run's own", err)
	}
}

func TestParseDeployOutput(t *testing.T) {
	out := `rolling deploy of 2 leaves, 1 at a time (cluster /tmp/x/cluster.json)
leaf         handoff_ms  exit_ms  exec_ready_ms  start   rows_before  rows_handed
leaf-0             12.3      1.2           45.6  shm            1000         1001
leaf-1              9.0      0.8           30.1  wal             500          500
FAILED leaf-2: not ready within 60s
total 120.5 ms for 2 leaves, 0 rows lost
`
	got := parseDeployOutput(out)
	want := map[string]DeployLeaf{
		"leaf-0": {HandoffMS: 12.3, ExitMS: 1.2, ExecReadyMS: 45.6, RowsHanded: 1001},
		"leaf-1": {HandoffMS: 9, ExitMS: 0.8, ExecReadyMS: 30.1, RowsHanded: 500},
	}
	if len(got) != len(want) {
		t.Fatalf("parsed %+v, want %+v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %+v, want %+v", id, got[id], w)
		}
	}
}
