package exec

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/plan"
)

// fixedBlock is a small block with known values:
//
//	row time  n     x     s      tags
//	0   100   1     0.5   "api"  ["a","b"]
//	1   101   NULL  1.5   "web"  []
//	2   102   3     NULL  NULL   NULL
//	3   103   -4    -2    "api"  ["c"]
//	4   104   5     2.5   "db"   ["a"]
func fixedBlock(t *testing.T) *block.Block {
	t.Helper()
	b := block.NewBuilder("t")
	ti, _ := b.AddColumn("time", block.TypeInt)
	ni, _ := b.AddColumn("n", block.TypeInt)
	xi, _ := b.AddColumn("x", block.TypeFloat)
	si, _ := b.AddColumn("s", block.TypeString)
	gi, _ := b.AddColumn("tags", block.TypeSet)
	n := []any{int64(1), nil, int64(3), int64(-4), int64(5)}
	x := []any{0.5, 1.5, nil, -2.0, 2.5}
	s := []any{"api", "web", nil, "api", "db"}
	tags := []any{[]string{"a", "b"}, []string{}, nil, []string{"c"}, []string{"a"}}
	for r := 0; r < 5; r++ {
		b.BeginRow()
		b.SetInt(ti, int64(100+r))
		if v, ok := n[r].(int64); ok {
			b.SetInt(ni, v)
		}
		if v, ok := x[r].(float64); ok {
			b.SetFloat(xi, v)
		}
		if v, ok := s[r].(string); ok {
			b.SetString(si, []byte(v))
		}
		if v, ok := tags[r].([]string); ok {
			for _, e := range v {
				b.AppendSetElem(gi, []byte(e))
			}
			b.MarkSet(gi)
		}
		b.EndRow()
	}
	blk, err := b.Build(1)
	if err != nil {
		t.Fatal(err)
	}
	return blk
}

func cmpE(op plan.Op, col string, v plan.Value) *plan.Expr {
	return &plan.Expr{Op: op, Args: []*plan.Expr{colExpr(col)}, Value: v}
}

func listE(op plan.Op, col string, vs ...plan.Value) *plan.Expr {
	return &plan.Expr{Op: op, Args: []*plan.Expr{colExpr(col)}, Values: vs}
}

func notE(e *plan.Expr) *plan.Expr { return &plan.Expr{Op: plan.OpNot, Args: []*plan.Expr{e}} }

func TestFilterOperators(t *testing.T) {
	blk := fixedBlock(t)
	S, I, F, N := plan.String, plan.Int, plan.Float, plan.Null()
	cases := []struct {
		filter *plan.Expr
		rows   []int64 // selected rows, by time-100
	}{
		{cmpE(plan.OpEq, "n", I(3)), []int64{2}},
		{cmpE(plan.OpNe, "n", I(3)), []int64{0, 3, 4}},
		{cmpE(plan.OpLt, "n", I(3)), []int64{0, 3}},
		{cmpE(plan.OpLe, "n", F(3)), []int64{0, 2, 3}},
		{cmpE(plan.OpGt, "n", F(2.5)), []int64{2, 4}},
		{cmpE(plan.OpGe, "n", I(-4)), []int64{0, 2, 3, 4}},
		{cmpE(plan.OpEq, "n", F(3.5)), nil},
		{cmpE(plan.OpNe, "n", F(3.5)), []int64{0, 2, 3, 4}},
		{cmpE(plan.OpEq, "n", S("3")), nil},
		{notE(cmpE(plan.OpEq, "n", S("3"))), nil},
		{cmpE(plan.OpEq, "n", N), nil},
		{notE(cmpE(plan.OpEq, "n", N)), nil},
		{notE(cmpE(plan.OpEq, "n", I(3))), []int64{0, 3, 4}},
		{cmpE(plan.OpLt, "x", I(1)), []int64{0, 3}},
		{cmpE(plan.OpGe, "x", F(1.5)), []int64{1, 4}},
		{cmpE(plan.OpEq, "s", S("api")), []int64{0, 3}},
		{cmpE(plan.OpNe, "s", S("api")), []int64{1, 4}},
		{cmpE(plan.OpGt, "s", S("b")), []int64{1, 4}},
		{cmpE(plan.OpLt, "s", S("b")), []int64{0, 3}},
		{cmpE(plan.OpEq, "s", I(1)), nil},
		{listE(plan.OpIn, "s", S("db"), S("web"), S("nope")), []int64{1, 4}},
		{notE(listE(plan.OpIn, "s", S("db"), S("web"))), []int64{0, 3}},
		{notE(listE(plan.OpIn, "s", S("db"), N)), nil},
		{listE(plan.OpIn, "s", S("db"), N), []int64{4}},
		{listE(plan.OpIn, "n", I(1), F(5), S("x")), []int64{0, 4}},
		{notE(listE(plan.OpIn, "n", I(1), I(5))), []int64{2, 3}},
		{listE(plan.OpIn, "x", F(0.5), I(-2)), []int64{0, 3}},
		{cmpE(plan.OpLike, "s", S("a%")), []int64{0, 3}},
		{cmpE(plan.OpLike, "s", S("_b")), []int64{4}},
		{notE(cmpE(plan.OpLike, "s", S("%b%"))), []int64{0, 3}},
		{cmpE(plan.OpRegex, "s", S("^(web|db)$")), []int64{1, 4}},
		{cmpE(plan.OpRegex, "s", S("p")), []int64{0, 3}},
		{&plan.Expr{Op: plan.OpIsNull, Args: []*plan.Expr{colExpr("n")}}, []int64{1}},
		{notE(&plan.Expr{Op: plan.OpIsNull, Args: []*plan.Expr{colExpr("s")}}), []int64{0, 1, 3, 4}},
		{&plan.Expr{Op: plan.OpIsNull, Args: []*plan.Expr{colExpr("missing")}}, []int64{0, 1, 2, 3, 4}},
		{cmpE(plan.OpEq, "missing", I(1)), nil},
		{notE(cmpE(plan.OpEq, "missing", I(1))), nil},
		{cmpE(plan.OpHas, "tags", S("a")), []int64{0, 4}},
		{notE(cmpE(plan.OpHas, "tags", S("a"))), []int64{1, 3}},
		{listE(plan.OpHasAny, "tags", S("b"), S("c")), []int64{0, 3}},
		{listE(plan.OpHasAll, "tags", S("a"), S("b")), []int64{0}},
		{listE(plan.OpHasAll, "tags"), []int64{0, 1, 3, 4}},
		{notE(listE(plan.OpHasAll, "tags", S("a"))), []int64{1, 3}},
		{cmpE(plan.OpHas, "s", S("api")), nil},
		{&plan.Expr{Op: plan.OpAnd, Args: []*plan.Expr{cmpE(plan.OpEq, "s", S("api")), cmpE(plan.OpGt, "n", I(0))}}, []int64{0}},
		{&plan.Expr{Op: plan.OpOr, Args: []*plan.Expr{cmpE(plan.OpEq, "s", S("db")), cmpE(plan.OpLt, "n", I(0))}}, []int64{3, 4}},
		// NOT (n > 0 OR s = 'web'): rows where both are FALSE (not UNKNOWN).
		{notE(&plan.Expr{Op: plan.OpOr, Args: []*plan.Expr{cmpE(plan.OpGt, "n", I(0)), cmpE(plan.OpEq, "s", S("web"))}}), []int64{3}},
		{&plan.Expr{Op: plan.OpLit, Value: plan.Bool(false)}, nil},
		{notE(&plan.Expr{Op: plan.OpLit, Value: plan.Bool(false)}), []int64{0, 1, 2, 3, 4}},
		{&plan.Expr{Op: plan.OpEq, Args: []*plan.Expr{colExpr("n"), {Op: plan.OpLit, Value: I(5)}}}, []int64{4}},
	}
	for _, c := range cases {
		p := &plan.Plan{Table: "t", Sample: true, Filter: c.filter, Columns: []string{"time"}, Limit: -1,
			OrderBy: []plan.Order{{Output: -1, Column: "time"}}}
		part, err := Execute(context.Background(), p, []*block.Block{blk}, Options{})
		if err != nil {
			t.Errorf("%s: %v", exprString(c.filter), err)
			continue
		}
		var got []int64
		for _, r := range part.Rows {
			got = append(got, r[0].I-100)
		}
		if !slices.Equal(got, c.rows) || part.RowsMatched != int64(len(c.rows)) {
			t.Errorf("%s: rows %v (matched %d), want %v", exprString(c.filter), got, part.RowsMatched, c.rows)
		}
	}
}

func TestBadPlans(t *testing.T) {
	blk := fixedBlock(t)
	cases := map[string]*plan.Plan{
		"bad regex":         {Filter: cmpE(plan.OpRegex, "s", plan.String("(")), Aggs: []plan.Agg{{Func: plan.AggCount}}},
		"like a number":     {Filter: cmpE(plan.OpLike, "s", plan.Int(1)), Aggs: []plan.Agg{{Func: plan.AggCount}}},
		"unknown operator":  {Filter: cmpE("~~", "s", plan.Int(1)), Aggs: []plan.Agg{{Func: plan.AggCount}}},
		"literal left":      {Filter: &plan.Expr{Op: plan.OpEq, Args: []*plan.Expr{{Op: plan.OpLit, Value: plan.Int(1)}}}, Aggs: []plan.Agg{{Func: plan.AggCount}}},
		"not a condition":   {Filter: colExpr("s"), Aggs: []plan.Agg{{Func: plan.AggCount}}},
		"empty and":         {Filter: &plan.Expr{Op: plan.OpAnd}, Aggs: []plan.Agg{{Func: plan.AggCount}}},
		"unknown aggregate": {Aggs: []plan.Agg{{Func: "median", Column: "n"}}},
		"sum of strings":    {Aggs: []plan.Agg{{Func: plan.AggSum, Column: "s"}}},
		"group by a set":    {GroupBy: []plan.GroupKey{{Column: "tags"}}, Aggs: []plan.Agg{{Func: plan.AggCount}}},
		"bucket a string":   {GroupBy: []plan.GroupKey{{Column: "s", Bucket: 60}}, Aggs: []plan.Agg{{Func: plan.AggCount}}},
		"has a number":      {Filter: cmpE(plan.OpHas, "tags", plan.Int(1)), Aggs: []plan.Agg{{Func: plan.AggCount}}},
	}
	deep := cmpE(plan.OpEq, "n", plan.Int(1))
	for i := 0; i < 1000; i++ {
		deep = notE(deep)
	}
	cases["too deep"] = &plan.Plan{Filter: deep, Aggs: []plan.Agg{{Func: plan.AggCount}}}
	for name, p := range cases {
		p.Table, p.Limit = "t", -1
		if _, err := Execute(context.Background(), p, []*block.Block{blk}, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// brokenBlock has column "n" whose array is the wrong length, so any attempt to read
// it fails; its statistics and time range are intact.
func brokenBlock(t *testing.T) *block.Block {
	t.Helper()
	b := fixedBlock(t)
	c := b.Column("n")
	c.Arr = array.NewUint8Data(array.NewData(c.Arr.DataType(), 1, c.Arr.Data().Buffers(), nil, 0, 0))
	return b
}

func TestBlockSkipping(t *testing.T) {
	blk := brokenBlock(t)
	count := []plan.Agg{{Func: plan.AggCount}, {Func: plan.AggSum, Column: "n"}}
	skipped := []*plan.Plan{
		{TimeMin: 200, TimeMax: 300},                       // time range misses
		{Filter: cmpE(plan.OpGt, "n", plan.Int(5))},        // stats: max is 5
		{Filter: cmpE(plan.OpEq, "n", plan.Int(-10))},      // stats: min is -4
		{Filter: listE(plan.OpIn, "n", plan.Int(9))},       // no literal in [min, max]
		{Filter: cmpE(plan.OpEq, "s", plan.String("zzz"))}, // string stats
		{Filter: &plan.Expr{Op: plan.OpAnd, Args: []*plan.Expr{cmpE(plan.OpLt, "time", plan.Int(50)), cmpE(plan.OpEq, "n", plan.Int(1))}}},
	}
	for i, p := range skipped {
		p.Table, p.Limit, p.Aggs = "t", -1, count
		part, err := Execute(context.Background(), p, []*block.Block{blk}, Options{})
		if err != nil {
			t.Errorf("plan %d read the block: %v", i, err)
			continue
		}
		if part.RowsMatched != 0 || len(part.Keys) != 0 {
			t.Errorf("plan %d matched %d rows", i, part.RowsMatched)
		}
	}
	// Control: a filter the statistics cannot decide reads the column and fails.
	p := &plan.Plan{Table: "t", Limit: -1, Aggs: count, Filter: cmpE(plan.OpEq, "n", plan.Int(3))}
	if _, err := Execute(context.Background(), p, []*block.Block{blk}, Options{}); err == nil {
		t.Error("broken column read without error")
	}
}

func TestCoverageAndMetadata(t *testing.T) {
	blk := fixedBlock(t)
	// count(*) and min/max over whole blocks come from metadata (the broken column
	// is never read), and RowsInRange counts only rows in the time range.
	p := &plan.Plan{Table: "t", Limit: -1, TimeMin: 101, TimeMax: 103,
		Aggs: []plan.Agg{{Func: plan.AggCount}, {Func: plan.AggMin, Column: "n"}, {Func: plan.AggMax, Column: "s"}}}
	part, res := run(t, p, []*block.Block{blk, fixedBlock(t)}, Options{})
	if part.RowsInRange != 6 || part.RowsMatched != 6 || part.LeavesTotal != 1 || part.RowsEstimated != 6 {
		t.Errorf("coverage %+v", part)
	}
	if want := []plan.Value{plan.Int(6), plan.Int(-4), plan.String("web")}; !reflect.DeepEqual(res.Rows[0], want) {
		t.Errorf("got %v, want %v", res.Rows[0], want)
	}
	p = &plan.Plan{Table: "t", Limit: -1, Aggs: []plan.Agg{{Func: plan.AggCount}, {Func: plan.AggCount, Column: "n"}, {Func: plan.AggMax, Column: "x"}}}
	_, res = run(t, p, []*block.Block{brokenBlock(t)}, Options{})
	if want := []plan.Value{plan.Int(5), plan.Int(4), plan.Float(2.5)}; !reflect.DeepEqual(res.Rows[0], want) {
		t.Errorf("metadata answer %v, want %v", res.Rows[0], want)
	}
}

func TestMaxGroups(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	blocks := genBlocks(t, rng, genConfig{blocks: 4, maxRows: 500})
	p := &plan.Plan{Table: "t", Limit: -1, GroupBy: []plan.GroupKey{{Column: "w"}}, Aggs: []plan.Agg{{Func: plan.AggCount}}}
	part, err := Execute(context.Background(), p, blocks, Options{MaxGroups: 10, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(part.Keys) != 10 || !part.Truncated {
		t.Errorf("%d groups, truncated %v; want 10, true", len(part.Keys), part.Truncated)
	}
	ref := reference(t, p, blocks)
	counts := map[string]int64{}
	for _, g := range ref.groups {
		counts[string(agg.AppendGroupKey(nil, g.key))] = g.accs[0].n
	}
	// The groups kept are complete.
	for g, key := range part.Keys {
		if got, want := part.States[g][0].Result().I, counts[string(agg.AppendGroupKey(nil, key))]; got != want {
			t.Errorf("group %v: count %d, want %d", key, got, want)
		}
	}
}

func TestCancel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	blocks := genBlocks(t, rng, genConfig{blocks: 3, maxRows: 10})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := &plan.Plan{Table: "t", Limit: -1, Aggs: []plan.Agg{{Func: plan.AggCount}}}
	if _, err := Execute(ctx, p, blocks, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// TestMergeAcrossLeaves splits the blocks over several leaves, sends each leaf's
// partial through the codec, merges, and expects the answer of one leaf holding
// everything.
func TestMergeAcrossLeaves(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for it := 0; it < 40; it++ {
		blocks := genBlocks(t, rng, genConfig{blocks: 2 + rng.IntN(6), maxRows: 200})
		p := genPlan(rng)
		_, want := run(t, p, blocks, Options{Parallelism: 1})
		leaves := 1 + rng.IntN(4)
		merged := &agg.Partial{}
		for l := 0; l < leaves; l++ {
			var mine []*block.Block
			for i, b := range blocks {
				if i%leaves == l {
					mine = append(mine, b)
				}
			}
			part, err := Execute(context.Background(), p, mine, Options{Parallelism: 2})
			if err != nil {
				t.Fatal(err)
			}
			dec, err := agg.Decode(agg.AppendEncode(nil, part))
			if err != nil {
				t.Fatal(err)
			}
			if err := agg.Merge(p, merged, dec); err != nil {
				t.Fatal(err)
			}
		}
		if merged.LeavesTotal != leaves || merged.LeavesResponded != leaves {
			t.Errorf("leaves %d/%d, want %d", merged.LeavesResponded, merged.LeavesTotal, leaves)
		}
		got, err := agg.Finalize(p, merged)
		if err != nil {
			t.Fatal(err)
		}
		if !sameResult(got, want) {
			t.Fatalf("plan %s:\nmerged %v\nsingle %v", planString(p), got.Rows, want.Rows)
		}
	}
}

// sameResult compares results exactly, except floats within 1e-9 relative (sums
// in another order).
func sameResult(a, b *agg.Result) bool {
	if len(a.Rows) != len(b.Rows) || !reflect.DeepEqual(a.Columns, b.Columns) {
		return false
	}
	for i := range a.Rows {
		for j := range a.Rows[i] {
			x, y := a.Rows[i][j], b.Rows[i][j]
			if x.Kind == plan.KindFloat && y.Kind == plan.KindFloat {
				if math.Abs(x.F-y.F) > 1e-9*math.Max(math.Abs(x.F), math.Abs(y.F))+1e-12 {
					return false
				}
				continue
			}
			if plan.Compare(x, y) != 0 || x.Kind != y.Kind {
				return false
			}
		}
	}
	return true
}

func TestSampleQueries(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for it := 0; it < 60; it++ {
		blocks := genBlocks(t, rng, genConfig{blocks: 1 + rng.IntN(5), maxRows: 200})
		p := &plan.Plan{Table: "t", Sample: true, Limit: []int{0, 1, 5, 50, -1}[rng.IntN(5)]}
		if rng.IntN(2) == 0 {
			p.Filter = genFilter(rng, 2)
		}
		desc := rng.IntN(2) == 0
		if rng.IntN(2) == 0 {
			p.Columns = []string{"time", "s", "tags"}
			p.Outputs = []plan.Output{{Name: "time", Kind: plan.OutColumn}, {Name: "s", Kind: plan.OutColumn, Index: 1}, {Name: "tags", Kind: plan.OutColumn, Index: 2}}
			p.OrderBy = []plan.Order{{Output: 0, Column: "time", Desc: desc}}
		} else {
			p.OrderBy = []plan.Order{{Output: -1, Column: "time", Desc: desc}}
		}
		part, res := run(t, p, blocks, Options{Parallelism: 1 + rng.IntN(3), MaxRows: 40})
		// Reference: every matching row's time and s, best first.
		type rr struct {
			time int64
			s    any
		}
		var all []rr
		for _, b := range blocks {
			for i := 0; i < b.Rows; i++ {
				r := rowOf(b, i)
				if p.Filter == nil || refEval(t, p.Filter, r) == tTrue {
					all = append(all, rr{r["time"].(int64), r["s"]})
				}
			}
		}
		slices.SortStableFunc(all, func(a, b rr) int {
			if desc {
				return cmpI(b.time, a.time)
			}
			return cmpI(a.time, b.time)
		})
		limit := min(40, len(all))
		if p.Limit >= 0 {
			limit = min(limit, p.Limit)
		}
		if len(res.Rows) != limit {
			t.Fatalf("it %d: %d rows, want %d", it, len(res.Rows), limit)
		}
		if wantTrunc := len(all) > 40 && (p.Limit < 0 || p.Limit > 40); part.Truncated != wantTrunc {
			t.Errorf("it %d: truncated %v, want %v", it, part.Truncated, wantTrunc)
		}
		ti := slices.IndexFunc(res.Columns, func(c agg.ResultColumn) bool { return c.Name == "time" })
		si := slices.IndexFunc(res.Columns, func(c agg.ResultColumn) bool { return c.Name == "s" })
		for k, row := range res.Rows {
			if row[ti].I != all[k].time {
				t.Fatalf("it %d row %d: time %v, want %d", it, k, row[ti], all[k].time)
			}
			// The row exists among the matching rows with that time.
			found := false
			for _, a := range all {
				if a.time == row[ti].I && reflect.DeepEqual(toPlanValue(a.s), row[si]) {
					found = true
				}
			}
			if !found {
				t.Fatalf("it %d row %d: %v matches no row", it, k, row)
			}
		}
		if p.Columns == nil && len(res.Rows) > 0 && res.Columns[0].Name != "time" {
			t.Errorf("SELECT * columns %v do not start with time", res.Columns)
		}
	}
}

func TestSampleValues(t *testing.T) {
	p := &plan.Plan{Table: "t", Sample: true, Limit: 1, OrderBy: []plan.Order{{Output: -1, Column: "time", Desc: true}}}
	_, res := run(t, p, []*block.Block{fixedBlock(t)}, Options{})
	var names []string
	for _, c := range res.Columns {
		names = append(names, c.Name+":"+c.Type)
	}
	if got := strings.Join(names, " "); got != "time:int n:int s:string tags:string x:float" {
		t.Errorf("columns %s", got)
	}
	want := []plan.Value{plan.Int(104), plan.Int(5), plan.String("db"), plan.String(`["a"]`), plan.Float(2.5)}
	if !reflect.DeepEqual(res.Rows[0], want) {
		t.Errorf("row %v, want %v", res.Rows[0], want)
	}
}

func TestDistinctLarge(t *testing.T) {
	var blocks []*block.Block
	const perBlock, nblocks = 20000, 5
	for bi := 0; bi < nblocks; bi++ {
		b := block.NewBuilder("t")
		ti, _ := b.AddColumn("time", block.TypeInt)
		ui, _ := b.AddColumn("u", block.TypeString)
		ii, _ := b.AddColumn("i", block.TypeInt)
		for r := 0; r < perBlock; r++ {
			b.BeginRow()
			b.SetInt(ti, int64(r))
			v := bi*perBlock/2 + r // half of each block overlaps the previous one
			b.SetString(ui, []byte(fmt.Sprint("user-", v)))
			b.SetInt(ii, int64(v)*7919)
			b.EndRow()
		}
		blk, err := b.Build(uint64(bi))
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, blk)
	}
	p := &plan.Plan{Table: "t", Limit: -1, Aggs: []plan.Agg{{Func: plan.AggCountDistinct, Column: "u"}, {Func: plan.AggCountDistinct, Column: "i"}}}
	_, res := run(t, p, blocks, Options{})
	want := float64((nblocks + 1) * perBlock / 2)
	for j, v := range res.Rows[0] {
		if math.Abs(float64(v.I)-want) > 0.02*want {
			t.Errorf("distinct %d = %v, want %v ±2%%", j, v, want)
		}
	}
}
