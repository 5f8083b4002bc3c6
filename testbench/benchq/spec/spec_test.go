package spec

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestQueriesAreWellFormed(t *testing.T) {
	qs := Queries(EndUnix)
	if len(qs) != 5 {
		t.Fatalf("got %d queries, want Q1–Q5", len(qs))
	}
	for i, q := range qs {
		if want := "Q" + string(rune('1'+i)); q.ID != want {
			t.Errorf("query %d is %s, want %s", i, q.ID, want)
		}
		if q.Reef == "" || q.DuckDB == "" || len(q.Values) == 0 {
			t.Errorf("%s: incomplete: %+v", q.ID, q)
		}
		hasQuantile := countChecks(q.Values, Quantile) > 0
		if hasQuantile != (q.DuckDBBounds != "") {
			t.Errorf("%s: quantile columns %v but bounds query %q", q.ID, hasQuantile, q.DuckDBBounds)
		}
	}
	// NOW is substituted as a literal: the last hour and the last six hours.
	if !strings.Contains(qs[3].Reef, "time >= 1767222000") || !strings.Contains(qs[3].DuckDB, `"time" >= 1767222000`) {
		t.Errorf("Q4 does not start an hour before NOW: %q / %q", qs[3].Reef, qs[3].DuckDB)
	}
	if !strings.Contains(qs[4].Reef, "time >= 1767204000") || !strings.Contains(qs[4].DuckDB, `"time" >= 1767204000`) {
		t.Errorf("Q5 does not start six hours before NOW: %q / %q", qs[4].Reef, qs[4].DuckDB)
	}
}

func TestDataset(t *testing.T) {
	cfg := Dataset(1000)
	start, end := cfg.Window()
	if end != EndUnix || end-start != int64(Span/time.Second) || cfg.Seed != Seed || cfg.Rows != 1000 {
		t.Errorf("Dataset(1000) = %+v, window [%d, %d)", cfg, start, end)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), c.in...)
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Errorf("Median(%v) reordered its argument", in)
			}
		}
	}
}

func TestReadEngineNormalizesNumbers(t *testing.T) {
	in := `{"engine":"duckdb","rows":3,"queries":[{"id":"Q2","sql":"x","runs_ms":[1.5],"median_ms":1.5,
		"columns":["service","count","avg"],"rows":[["svc-00",2,1.25],["svc-01",1,3.0]],"bounds":[["a",1e400]]}]}`
	e, err := ReadEngine(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	q := e.Query("Q2")
	if q == nil || e.Query("Q9") != nil {
		t.Fatalf("Query lookup wrong: %v", e.Queries)
	}
	row := q.Rows[0]
	if _, ok := row[1].(int64); !ok {
		t.Errorf("count cell is %T, want int64", row[1])
	}
	if _, ok := row[2].(float64); !ok {
		t.Errorf("avg cell is %T, want float64", row[2])
	}
	if f, ok := q.Rows[1][2].(float64); !ok || f != 3 {
		t.Errorf("3.0 decoded as %T %v, want float64 3", q.Rows[1][2], q.Rows[1][2])
	}
	if s, ok := q.Bounds[0][1].(string); !ok || s != "1e400" {
		t.Errorf("out-of-range number decoded as %T %v, want its digits", q.Bounds[0][1], q.Bounds[0][1])
	}

	for _, bad := range []string{``, `{`, `{"rows":1}`, `[1,2]`} {
		if _, err := ReadEngine(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadEngine(%q) accepted it", bad)
		}
	}
}

// run builds a QueryRun with the given rows.
func run(rows ...[]any) *QueryRun { return &QueryRun{Rows: rows} }

func TestCompare(t *testing.T) {
	qs := Queries(EndUnix)
	q1, q2, q3, q4, q5 := qs[0], qs[1], qs[2], qs[3], qs[4]
	withBounds := func(r *QueryRun, b ...[]any) *QueryRun { r.Bounds = b; return r }
	f := func(name string, q Query, reef, duck *QueryRun, wantOK bool, wantDetail string) {
		t.Helper()
		a := Compare(q, reef, duck)
		if a.OK != wantOK || !strings.Contains(a.Detail, wantDetail) {
			t.Errorf("%s: Compare = %+v, want ok=%v with %q", name, a, wantOK, wantDetail)
		}
	}

	f("count equal", q1, run([]any{int64(10)}), run([]any{int64(10)}), true, "1 row: counts equal")
	f("count int vs integral float", q1, run([]any{int64(10)}), run([]any{10.0}), true, "counts equal")
	f("count differs", q1, run([]any{int64(10)}), run([]any{int64(11)}), false, "10 vs 11")
	f("nil answer", q1, nil, run([]any{int64(10)}), false, "no answer")
	f("failed query", q1, &QueryRun{Error: "boom"}, run([]any{int64(1)}), false, "boom")
	f("wrong width", q1, run([]any{int64(1), int64(2)}), run([]any{int64(1)}), false, "2 columns, want 1")

	f("groups in any order", q2,
		run([]any{"a", int64(1), 2.0}, []any{"b", int64(3), 4.0}),
		run([]any{"b", int64(3), 4.0}, []any{"a", int64(1), 2.0}), true, "2 groups")
	f("avg within tolerance", q2,
		run([]any{"a", int64(1), 0.1 + 0.2}), run([]any{"a", int64(1), 0.3}), true, "averages within")
	f("avg beyond tolerance", q2,
		run([]any{"a", int64(1), 1.0}), run([]any{"a", int64(1), 1.0001}), false, "column 3")
	f("missing group", q2,
		run([]any{"a", int64(1), 1.0}), run([]any{"a", int64(1), 1.0}, []any{"b", int64(1), 1.0}), false, "1 groups vs 2")
	f("other group", q2,
		run([]any{"a", int64(1), 1.0}), run([]any{"b", int64(1), 1.0}), false, "only in")
	f("repeated group", q2,
		run([]any{"a", int64(1), 1.0}, []any{"a", int64(1), 1.0}), run([]any{"a", int64(1), 1.0}), false, "repeats group")

	duck3 := func() *QueryRun {
		return withBounds(run([]any{"/x", 101.0}), []any{"/x", 100.0, 102.0})
	}
	f("p99 inside the bounds", q3, run([]any{"/x", 101.5}), duck3(), true, "percentiles within 1%")
	f("p99 within 1% below lo", q3, run([]any{"/x", 99.01}), duck3(), true, "")
	f("p99 within 1% above hi", q3, run([]any{"/x", 103.01}), duck3(), true, "")
	f("p99 too low", q3, run([]any{"/x", 98.9}), duck3(), false, "outside [100, 102]")
	f("p99 too high", q3, run([]any{"/x", 103.1}), duck3(), false, "outside")
	f("p99 without bounds", q3, run([]any{"/x", 101.0}), run([]any{"/x", 101.0}), false, "no exact bounds")
	f("p99 null on both", q3, run([]any{"/x", nil}), withBounds(run([]any{"/x", nil}), []any{"/x", nil, nil}), true, "")

	top := func(rows ...[]any) *QueryRun { return run(rows...) }
	f("top-k same", q4,
		top([]any{"h1", int64(9)}, []any{"h2", int64(5)}),
		top([]any{"h1", int64(9)}, []any{"h2", int64(5)}), true, "2 rows, the same groups")
	f("top-k tie at last place", q4,
		top([]any{"h1", int64(9)}, []any{"h2", int64(5)}),
		top([]any{"h1", int64(9)}, []any{"h3", int64(5)}), true, "2 rows, 1 groups in both")
	f("top-k differs above the last place", q4,
		top([]any{"h1", int64(9)}, []any{"h2", int64(5)}),
		top([]any{"h4", int64(9)}, []any{"h2", int64(5)}), false, "above the last place")
	f("top-k counts differ", q4,
		top([]any{"h1", int64(9)}, []any{"h2", int64(5)}),
		top([]any{"h1", int64(9)}, []any{"h2", int64(6)}), false, "place 2")
	f("top-k lengths differ", q4,
		top([]any{"h1", int64(9)}), top([]any{"h1", int64(9)}, []any{"h2", int64(5)}), false, "1 rows vs 2")

	f("time buckets as int and float", q5,
		run([]any{int64(1767204000), int64(3)}), run([]any{1767204000.0, int64(3)}), true, "1 groups")
}

// FuzzReadEngine feeds arbitrary reports to ReadEngine and compares what it decodes:
// neither may panic.
func FuzzReadEngine(f *testing.F) {
	seed := Engine{Engine: "duckdb", Rows: 2, Queries: []QueryRun{
		{ID: "Q1", Rows: [][]any{{int64(2)}}},
		{ID: "Q3", Rows: [][]any{{"/x", 1.5}}, Bounds: [][]any{{"/x", 1.0, 2.0}}},
		{ID: "Q4", Rows: [][]any{{"h", int64(1)}, {"g"}}},
	}}
	data, err := json.Marshal(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"engine":"x","queries":[{"id":"Q4","rows":[[],[null,"a"],[1e308,-0]]}]}`))
	f.Add([]byte(`{"engine":"x","queries":[{"id":"Q3","rows":[["a",1]],"bounds":[["a"]]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ReadEngine(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, q := range Queries(EndUnix) {
			_ = Compare(q, e.Query(q.ID), e.Query(q.ID))
		}
	})
}
