package agg

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/reef-db/reef/query/plan"
)

func TestFinalizeEmptyAggregate(t *testing.T) {
	// SELECT count(*), sum(x), avg(x), min(x), p50(x), count_distinct(x) FROM t WHERE false
	p := &plan.Plan{Table: "t", Limit: -1, Aggs: []plan.Agg{
		{Func: plan.AggCount}, {Func: plan.AggSum, Column: "x"}, {Func: plan.AggAvg, Column: "x"},
		{Func: plan.AggMin, Column: "x"}, {Func: plan.AggPercentile, Column: "x", Param: 0.5},
		{Func: plan.AggCountDistinct, Column: "x"},
	}}
	res, err := Finalize(p, &Partial{})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]plan.Value{{plan.Int(0), plan.Null(), plan.Null(), plan.Null(), plan.Null(), plan.Int(0)}}
	if !reflect.DeepEqual(res.Rows, want) {
		t.Errorf("rows %v, want %v", res.Rows, want)
	}
	names := []string{"count(*)", "sum(x)", "avg(x)", "min(x)", "percentile(x, 0.5)", "count_distinct(x)"}
	types := []string{"int", "null", "float", "null", "float", "int"}
	for i, c := range res.Columns {
		if c.Name != names[i] || c.Type != types[i] {
			t.Errorf("column %d = %+v, want %s %s", i, c, names[i], types[i])
		}
	}
	// With GROUP BY, no groups means no rows.
	p.GroupBy = []plan.GroupKey{{Column: "s"}}
	if res, err := Finalize(p, &Partial{}); err != nil || len(res.Rows) != 0 {
		t.Errorf("grouped empty: %v %v", res, err)
	}
}

func TestFinalizeOrderLimit(t *testing.T) {
	base := countPlan()
	part := func() *Partial {
		return groupsOf(map[string]int64{"a": 3, "b": 1, "c": 3, "d": 2, "e": 3})
	}
	cases := []struct {
		name    string
		orderBy []plan.Order
		limit   int
		want    [][]plan.Value
	}{
		{"by key", nil, -1, [][]plan.Value{row("a", 3, 3), row("b", 1, 1), row("c", 3, 3), row("d", 2, 2), row("e", 3, 3)}},
		{"count desc, ties by key", []plan.Order{{Output: 1, Desc: true}}, -1,
			[][]plan.Value{row("a", 3, 3), row("c", 3, 3), row("e", 3, 3), row("d", 2, 2), row("b", 1, 1)}},
		{"count asc limit", []plan.Order{{Output: 1}}, 2, [][]plan.Value{row("b", 1, 1), row("d", 2, 2)}},
		{"key desc", []plan.Order{{Output: 0, Desc: true}}, 1, [][]plan.Value{row("e", 3, 3)}},
		{"limit 0", nil, 0, [][]plan.Value{}},
	}
	for _, c := range cases {
		p := *base
		p.OrderBy, p.Limit = c.orderBy, c.limit
		for i := 0; i < 3; i++ { // the answer does not depend on group order
			got := finalRows(t, &p, part())
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			}
		}
	}
}

func TestFinalizeMixedNumbers(t *testing.T) {
	p := &plan.Plan{Table: "t", Limit: -1, GroupBy: []plan.GroupKey{{Column: "s"}}, Aggs: []plan.Agg{{Func: plan.AggSum, Column: "x"}}}
	part := &Partial{
		Keys:   [][]plan.Value{{plan.String("a")}, {plan.String("b")}},
		States: [][]State{{&SumState{Int: 2, Seen: true}}, {&SumState{Float: 0.5, IsFloat: true, Seen: true}}},
	}
	res, err := Finalize(p, part)
	if err != nil {
		t.Fatal(err)
	}
	if res.Columns[1].Type != "float" || res.Rows[0][1] != plan.Float(2) {
		t.Errorf("mixed column: %v %v", res.Columns, res.Rows)
	}
	if res.Columns[0] != (ResultColumn{Name: "s", Type: "string"}) {
		t.Errorf("key column %v", res.Columns[0])
	}
}

func TestFinalizeRejects(t *testing.T) {
	p := countPlan()
	p.OrderBy = []plan.Order{{Output: 7}}
	if _, err := Finalize(p, &Partial{}); err == nil {
		t.Error("order by a missing output accepted")
	}
	p = countPlan()
	p.Outputs[0].Index = 3
	if _, err := Finalize(p, &Partial{}); err == nil {
		t.Error("output of a missing group key accepted")
	}
	if _, err := Finalize(countPlan(), &Partial{Keys: [][]plan.Value{{}}, States: [][]State{{}}}); err == nil {
		t.Error("malformed partial accepted")
	}
}

func TestFinalizeSelectStar(t *testing.T) {
	p := &plan.Plan{Table: "t", Sample: true, Limit: 2, OrderBy: []plan.Order{{Output: -1, Column: "time", Desc: true}}}
	part := &Partial{Columns: []string{"time", "x"}, Rows: [][]plan.Value{row(1, 2.5), row(3, 1), row(2, 0.5)}}
	res, err := Finalize(p, part)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]plan.Value{row(3, 1.0), row(2, 0.5)}
	if !reflect.DeepEqual(res.Rows, want) || res.Columns[1].Type != "float" {
		t.Errorf("got %v %v, want %v", res.Columns, res.Rows, want)
	}
	if part.Rows[1][1] != plan.Int(1) {
		t.Error("Finalize changed the partial")
	}
}

func TestTopK(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for it := 0; it < 200; it++ {
		n := rng.IntN(200)
		vals := make([]int, n)
		for i := range vals {
			vals[i] = rng.IntN(50)
		}
		cmp := func(a, b int) int { // by value desc, then index: a total order
			if vals[a] != vals[b] {
				return vals[b] - vals[a]
			}
			return a - b
		}
		limit := rng.IntN(n+10) - 5
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		slices.SortFunc(want, cmp)
		if limit >= 0 && limit < n {
			want = want[:limit]
		}
		if got := topK(n, limit, cmp); !slices.Equal(got, want) && len(got)+len(want) > 0 {
			t.Fatalf("topK(%d, %d) = %v, want %v", n, limit, got, want)
		}
	}
}
