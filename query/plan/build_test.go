package plan_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/plan"
	"github.com/reef-db/reef/query/sql"
	"github.com/reef-db/reef/query/sql/sqltest"
)

// testNow is what now() stands for in testdata: 2023-11-14T22:13:20Z.
const testNow = 1700000000

// testSchema is the schema of every table in testdata "validate" cases.
var testSchema = map[string]block.Type{
	"latency_ms":  block.TypeFloat,
	"status":      block.TypeInt,
	"bytes":       block.TypeInt,
	"service":     block.TypeString,
	"host":        block.TypeString,
	"path":        block.TypeString,
	"user":        block.TypeString,
	"tags":        block.TypeSet,
	"http.status": block.TypeInt,
	"sample_rate": block.TypeInt,
}

// TestPlans runs testdata/*.txt. Directives:
//
//	plan      the plan of the query, one field a line, or the error with a caret
//	json      the plan's wire form (indented JSON)
//	validate  "ok", or the error of Validate against testSchema (or of FromSQL)
//
// Regenerate with: go test ./query/plan -run TestPlans -rewrite
func TestPlans(t *testing.T) {
	sqltest.Run(t, "testdata/*.txt", func(t *testing.T, c sqltest.Case) string {
		t.Helper()
		p, err := plan.FromSQL(c.Input, testNow)
		if err != nil {
			var se *sql.Error
			if !errors.As(err, &se) {
				t.Errorf("line %d: FromSQL error %v is not an *sql.Error", c.Line, err)
			}
			return sqltest.FormatError(c.Input, err)
		}
		checkPlan(t, p)
		switch c.Directive {
		case "plan":
			return formatPlan(p)
		case "json":
			j, err := json.MarshalIndent(p, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			return string(j)
		case "validate":
			if err := p.Validate(testSchema); err != nil {
				return "error: " + err.Error()
			}
			return "ok"
		}
		t.Fatalf("line %d: unknown directive %q", c.Line, c.Directive)
		return ""
	})
}

// checkPlan checks what every built plan must satisfy: it is well formed, it
// survives the JSON round trip unchanged, and Clone is deep.
func checkPlan(t *testing.T, p *plan.Plan) {
	t.Helper()
	if err := p.Check(); err != nil {
		t.Errorf("built plan fails Check: %v", err)
	}
	j, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("cannot encode plan: %v", err)
	}
	var back plan.Plan
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatalf("cannot decode plan: %v", err)
	}
	if !reflect.DeepEqual(p, &back) {
		t.Errorf("plan changed in the JSON round trip:\n%+v\n%+v", p, &back)
	}
	c := p.Clone()
	if !reflect.DeepEqual(p, c) {
		t.Errorf("clone differs:\n%+v\n%+v", p, c)
	}
	if c.Filter != nil && c.Filter == p.Filter {
		t.Error("clone shares the filter")
	}
}

// formatPlan prints the fields of a plan that are set, one a line; lists as JSON,
// the filter as Expr.String.
func formatPlan(p *plan.Plan) string {
	var b strings.Builder
	line := func(name string, v any) {
		j, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(&b, "%s: %s\n", name, j)
	}
	fmt.Fprintf(&b, "table: %s\n", p.Table)
	if p.Sample {
		b.WriteString("sample\n")
	}
	if p.Filter != nil {
		fmt.Fprintf(&b, "filter: %s\n", p.Filter)
	}
	if p.TimeMin != math.MinInt64 || p.TimeMax != math.MaxInt64 {
		bound := func(v int64) string {
			switch v {
			case math.MinInt64:
				return "min"
			case math.MaxInt64:
				return "max"
			}
			return fmt.Sprint(v)
		}
		fmt.Fprintf(&b, "time: [%s, %s]\n", bound(p.TimeMin), bound(p.TimeMax))
	}
	if len(p.Columns) > 0 {
		line("columns", p.Columns)
	}
	if len(p.GroupBy) > 0 {
		line("group_by", p.GroupBy)
	}
	if len(p.Aggs) > 0 {
		line("aggs", p.Aggs)
	}
	if len(p.Outputs) > 0 {
		line("outputs", p.Outputs)
	}
	if len(p.OrderBy) > 0 {
		line("order_by", p.OrderBy)
	}
	fmt.Fprintf(&b, "limit: %d\n", p.Limit)
	fmt.Fprintf(&b, "used: %s", strings.Join(p.UsedColumns(), ", "))
	return b.String()
}

func TestNow(t *testing.T) {
	p, err := plan.FromSQL("SELECT count(*) FROM t WHERE time > now() - 1h", 1000000)
	if err != nil {
		t.Fatal(err)
	}
	if p.Now != 1000000 || p.TimeMin != 1000000-3600+1 || p.TimeMax != math.MaxInt64 {
		t.Errorf("now %d, time range [%d, %d]; want now 1000000, range [996401, max]", p.Now, p.TimeMin, p.TimeMax)
	}
}

func TestParseTimestamp(t *testing.T) {
	f := func(s string, want int64) {
		t.Helper()
		got, err := plan.ParseTimestamp(s)
		if err != nil {
			t.Fatalf("ParseTimestamp(%q): %v", s, err)
		}
		if got != want {
			t.Errorf("ParseTimestamp(%q) = %d, want %d", s, got, want)
		}
	}
	f("2026-11-29T10:00:00Z", 1795946400)
	f("2026-11-29T10:00:00.999Z", 1795946400)
	f("2026-11-29T11:00:00+01:00", 1795946400)
	f("2026-11-29T10:00:00", 1795946400)
	f("2026-11-29 10:00:00", 1795946400)
	f("2026-11-29 10:00:00Z", 1795946400)
	f("2026-11-29 10:00", 1795946400)
	f("2026-11-29T10:00", 1795946400)
	f("2026-11-29", 1795910400)
	f(" 2026-11-29 ", 1795910400)
	f("1970-01-01", 0)
	f("1969-12-31 23:59:59", -1)
	for _, bad := range []string{"", "yesterday", "2026-13-01", "2026-11-29 25:00", "1700000000", "29/11/2026"} {
		if _, err := plan.ParseTimestamp(bad); err == nil {
			t.Errorf("ParseTimestamp(%q) succeeded", bad)
		}
	}
}

func TestCheckRejectsMalformedPlans(t *testing.T) {
	col := func(name string) []*plan.Expr { return []*plan.Expr{{Op: plan.OpColumn, Column: name}} }
	base := func() *plan.Plan {
		return &plan.Plan{
			Table:   "t",
			GroupBy: []plan.GroupKey{{Column: "a"}},
			Aggs:    []plan.Agg{{Func: plan.AggCount}},
			Outputs: []plan.Output{{Name: "a", Kind: plan.OutGroup}, {Name: "n", Kind: plan.OutAgg}},
			OrderBy: []plan.Order{{Output: 1}},
			Limit:   -1,
		}
	}
	if err := base().Check(); err != nil {
		t.Fatalf("base plan: %v", err)
	}
	f := func(name string, mutate func(p *plan.Plan)) {
		t.Helper()
		p := base()
		mutate(p)
		if err := p.Check(); err == nil {
			t.Errorf("%s: Check accepted the plan", name)
		}
	}
	f("no table", func(p *plan.Plan) { p.Table = "" })
	f("output index", func(p *plan.Plan) { p.Outputs[1].Index = 1 })
	f("output kind", func(p *plan.Plan) { p.Outputs[0].Kind = "bogus" })
	f("order index", func(p *plan.Plan) { p.OrderBy[0].Output = 2 })
	f("negative order", func(p *plan.Plan) { p.OrderBy[0].Output = -1 })
	f("agg func", func(p *plan.Plan) { p.Aggs[0].Func = "median" })
	f("sum without column", func(p *plan.Plan) { p.Aggs[0].Func = plan.AggSum })
	f("percentile param", func(p *plan.Plan) { p.Aggs[0] = plan.Agg{Func: plan.AggPercentile, Column: "x", Param: 99} })
	f("percentile NaN", func(p *plan.Plan) { p.Aggs[0] = plan.Agg{Func: plan.AggPercentile, Column: "x", Param: math.NaN()} })
	f("negative bucket", func(p *plan.Plan) { p.GroupBy[0].Bucket = -60 })
	f("empty group column", func(p *plan.Plan) { p.GroupBy[0].Column = "" })
	f("columns in aggregate plan", func(p *plan.Plan) { p.Columns = []string{"a"} })
	f("sample with aggs", func(p *plan.Plan) { p.Sample = true })
	f("unknown op", func(p *plan.Plan) { p.Filter = &plan.Expr{Op: "xor", Args: col("a")} })
	f("literal filter", func(p *plan.Plan) { p.Filter = &plan.Expr{Op: plan.OpLit, Value: plan.Bool(true)} })
	f("empty and", func(p *plan.Plan) { p.Filter = &plan.Expr{Op: plan.OpAnd} })
	f("nil arg", func(p *plan.Plan) { p.Filter = &plan.Expr{Op: plan.OpAnd, Args: []*plan.Expr{nil}} })
	f("not arity", func(p *plan.Plan) { p.Filter = &plan.Expr{Op: plan.OpNot} })
	f("compare literal on left", func(p *plan.Plan) {
		p.Filter = &plan.Expr{Op: plan.OpEq, Args: []*plan.Expr{{Op: plan.OpLit, Value: plan.Int(1)}}, Value: plan.Int(1)}
	})
	f("compare with null", func(p *plan.Plan) { p.Filter = &plan.Expr{Op: plan.OpEq, Args: col("a")} })
	f("like int", func(p *plan.Plan) { p.Filter = &plan.Expr{Op: plan.OpLike, Args: col("a"), Value: plan.Int(1)} })
	f("bad regex", func(p *plan.Plan) { p.Filter = &plan.Expr{Op: plan.OpRegex, Args: col("a"), Value: plan.String("(")} })
	f("has_any empty", func(p *plan.Plan) { p.Filter = &plan.Expr{Op: plan.OpHasAny, Args: col("a")} })
	f("has_all int", func(p *plan.Plan) {
		p.Filter = &plan.Expr{Op: plan.OpHasAll, Args: col("a"), Values: []plan.Value{plan.Int(1)}}
	})
	f("in null", func(p *plan.Plan) {
		p.Filter = &plan.Expr{Op: plan.OpIn, Args: col("a"), Values: []plan.Value{plan.Null()}}
	})
	deep := &plan.Expr{Op: plan.OpIsNull, Args: col("a")}
	for range 2000 {
		deep = &plan.Expr{Op: plan.OpNot, Args: []*plan.Expr{deep}}
	}
	f("deep filter", func(p *plan.Plan) { p.Filter = deep })

	sample := func() *plan.Plan {
		return &plan.Plan{
			Table: "t", Sample: true, Columns: []string{"a", "time"},
			Outputs: []plan.Output{{Name: "a", Kind: plan.OutColumn}},
			OrderBy: []plan.Order{{Output: -1, Column: "time", Desc: true}},
			Limit:   100,
		}
	}
	if err := sample().Check(); err != nil {
		t.Fatalf("sample plan: %v", err)
	}
	g := func(name string, mutate func(p *plan.Plan)) {
		t.Helper()
		p := sample()
		mutate(p)
		if err := p.Check(); err == nil {
			t.Errorf("%s: Check accepted the sample plan", name)
		}
	}
	g("output kind", func(p *plan.Plan) { p.Outputs[0].Kind = plan.OutGroup })
	g("output index", func(p *plan.Plan) { p.Outputs[0].Index = 2 })
	g("order column not fetched", func(p *plan.Plan) { p.OrderBy[0].Column = "b" })
	g("order without column", func(p *plan.Plan) { p.OrderBy[0].Column = "" })
	g("order output mismatch", func(p *plan.Plan) { p.OrderBy[0].Output = 0 })
	g("group keys", func(p *plan.Plan) { p.GroupBy = []plan.GroupKey{{Column: "a"}} })
	g("empty column", func(p *plan.Plan) { p.Columns[0] = "" })
}

func TestNormalize(t *testing.T) {
	p := &plan.Plan{Table: "t", TimeMax: 5}
	p.Normalize()
	if p.TimeMin != math.MinInt64 || p.TimeMax != 5 {
		t.Errorf("time range [%d, %d] after Normalize, want [min, 5]", p.TimeMin, p.TimeMax)
	}
}

func TestExprString(t *testing.T) {
	p, err := plan.FromSQL(`SELECT a FROM t WHERE a = 1.0 AND b IN ('x', 'it''s') AND NOT c IS NULL AND has_all(tags, 'a', 'b') AND d ~ '^x' AND e = TRUE`, testNow)
	if err != nil {
		t.Fatal(err)
	}
	const want = `(a = 1.0 AND b IN ('x', 'it''s') AND NOT (c IS NULL) AND has_all(tags, 'a', 'b') AND d ~ '^x' AND e = TRUE)`
	if got := p.Filter.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func FuzzFromSQL(f *testing.F) {
	for _, pattern := range []string{"testdata/*.txt", "../sql/testdata/*.txt"} {
		seeds, err := sqltest.Inputs(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, s := range seeds {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, q string) {
		p, err := plan.FromSQL(q, testNow)
		if err != nil {
			var se *sql.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not an *sql.Error", err)
			}
			if se.Pos < 0 || se.Pos > len(q)+1 {
				t.Fatalf("error position %d outside the query (length %d): %v", se.Pos, len(q), err)
			}
			return
		}
		checkPlan(t, p)
		_ = p.Validate(testSchema)
		if used := p.UsedColumns(); !slices.IsSorted(used) {
			t.Fatalf("UsedColumns not sorted: %q", used)
		}
		if p.Sample && (p.Limit < 0 || p.Limit > plan.MaxSampleLimit) {
			t.Fatalf("sample limit %d", p.Limit)
		}
	})
}

func BenchmarkFromSQL(b *testing.B) {
	const q = `SELECT service, time(1m), count(*), p99(latency_ms) AS p99, avg(bytes)
		FROM events
		WHERE time >= now() - 1h AND status IN (500, 502, 503) AND NOT has(tags, 'canary')
		  AND host LIKE 'web-%' AND path !~ '^/health'
		GROUP BY service, time(1m) ORDER BY p99 DESC LIMIT 20`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := plan.FromSQL(q, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
