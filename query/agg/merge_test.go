package agg

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/reef-db/reef/query/plan"
)

func countPlan() *plan.Plan {
	return &plan.Plan{
		Table:   "t",
		GroupBy: []plan.GroupKey{{Column: "s"}},
		Aggs:    []plan.Agg{{Func: plan.AggCount}, {Func: plan.AggMax, Column: "x"}},
		Outputs: []plan.Output{{Name: "s", Kind: plan.OutGroup}, {Name: "c", Kind: plan.OutAgg}, {Name: "mx", Kind: plan.OutAgg, Index: 1}},
		Limit:   -1,
	}
}

// groupsOf builds a partial of countPlan: key → count (max = count).
func groupsOf(m map[string]int64) *Partial {
	p := &Partial{LeavesTotal: 1, LeavesResponded: 1}
	for k, n := range m {
		p.Keys = append(p.Keys, []plan.Value{plan.String(k)})
		p.States = append(p.States, []State{&CountState{N: n}, &MaxState{V: plan.Int(n)}})
		p.RowsInRange += n
		p.RowsEstimated += n
		p.RowsMatched += n
	}
	return p
}

func finalRows(t *testing.T, p *plan.Plan, part *Partial) [][]plan.Value {
	t.Helper()
	res, err := Finalize(p, part)
	if err != nil {
		t.Fatal(err)
	}
	return res.Rows
}

func row(vals ...any) []plan.Value {
	out := make([]plan.Value, len(vals))
	for i, v := range vals {
		switch v := v.(type) {
		case int:
			out[i] = plan.Int(int64(v))
		case float64:
			out[i] = plan.Float(v)
		case string:
			out[i] = plan.String(v)
		}
	}
	return out
}

func TestMergeByKey(t *testing.T) {
	p := countPlan()
	dst := groupsOf(map[string]int64{"a": 1, "b": 2})
	for _, src := range []*Partial{groupsOf(map[string]int64{"b": 5, "c": 3}), groupsOf(map[string]int64{"a": 10}), {LeavesTotal: 1}} {
		if err := Merge(p, dst, src); err != nil {
			t.Fatal(err)
		}
	}
	if dst.LeavesTotal != 4 || dst.LeavesResponded != 3 || dst.RowsMatched != 21 || dst.RowsInRange != 21 {
		t.Errorf("coverage: %+v", dst)
	}
	want := [][]plan.Value{row("a", 11, 10), row("b", 7, 5), row("c", 3, 3)}
	if got := finalRows(t, p, dst); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestMergeMaxGroups(t *testing.T) {
	p := countPlan()
	dst := groupsOf(map[string]int64{"a": 1, "b": 1})
	src := groupsOf(map[string]int64{"a": 1, "c": 1, "d": 1})
	if err := MergeWith(p, dst, src, Options{MaxGroups: 3}); err != nil {
		t.Fatal(err)
	}
	if len(dst.Keys) != 3 || !dst.Truncated {
		t.Errorf("groups %d truncated %v, want 3 true", len(dst.Keys), dst.Truncated)
	}
	res, _ := Finalize(p, dst)
	if !res.Truncated || res.Rows[0][1] != plan.Int(2) {
		t.Errorf("result %+v", res)
	}
}

func TestMergeRejectsMalformed(t *testing.T) {
	p := countPlan()
	cases := map[string]*Partial{
		"states missing":   {Keys: [][]plan.Value{{plan.String("a")}}},
		"key too long":     {Keys: [][]plan.Value{{plan.String("a"), plan.Int(1)}}, States: [][]State{{&CountState{}, &MaxState{}}}},
		"too few states":   {Keys: [][]plan.Value{{plan.String("a")}}, States: [][]State{{&CountState{}}}},
		"wrong state":      {Keys: [][]plan.Value{{plan.String("a")}}, States: [][]State{{&SumState{}, &MaxState{}}}},
		"nil state":        {Keys: [][]plan.Value{{plan.String("a")}}, States: [][]State{{nil, &MaxState{}}}},
		"rows in agg plan": {Columns: []string{"x"}, Rows: [][]plan.Value{{plan.Int(1)}}},
	}
	for name, src := range cases {
		dst := groupsOf(map[string]int64{"a": 1})
		if err := Merge(p, dst, src); err == nil {
			t.Errorf("%s: merged", name)
		}
		if got := finalRows(t, p, dst); !reflect.DeepEqual(got, [][]plan.Value{row("a", 1, 1)}) {
			t.Errorf("%s: dst changed to %v", name, got)
		}
	}
	pp := &plan.Plan{Table: "t", Aggs: []plan.Agg{{Func: plan.AggPercentile, Column: "x", Param: 0.5}}}
	err := Merge(pp, &Partial{}, &Partial{Keys: [][]plan.Value{{}}, States: [][]State{{NewPercentileState(0.9)}}})
	if !errors.Is(err, ErrStateMismatch) {
		t.Errorf("percentile parameter mismatch: %v", err)
	}
}

func samplePlan(limit int) *plan.Plan {
	return &plan.Plan{
		Table:   "t",
		Sample:  true,
		Columns: []string{"time", "s"},
		Outputs: []plan.Output{{Name: "time", Kind: plan.OutColumn, Index: 0}, {Name: "label", Kind: plan.OutColumn, Index: 1}},
		OrderBy: []plan.Order{{Output: 0, Desc: true, Column: "time"}},
		Limit:   limit,
	}
}

func TestMergeSample(t *testing.T) {
	p := samplePlan(3)
	dst := &Partial{Columns: []string{"time", "s"}, Rows: [][]plan.Value{row(5, "a"), row(1, "b")}}
	src := &Partial{Columns: []string{"s", "time"}, Rows: [][]plan.Value{row("c", 7), row("d", 3), row("e", 0)}}
	if err := Merge(p, dst, src); err != nil {
		t.Fatal(err)
	}
	if dst.Truncated {
		t.Error("cut at LIMIT marked truncated")
	}
	want := [][]plan.Value{row(7, "c"), row(5, "a"), row(3, "d")}
	if got := finalRows(t, p, dst); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	res, _ := Finalize(p, dst)
	if res.Columns[1] != (ResultColumn{Name: "label", Type: "string"}) || res.Columns[0].Type != "int" {
		t.Errorf("columns %v", res.Columns)
	}

	// A bound below the LIMIT truncates.
	p = samplePlan(-1)
	dst = &Partial{Columns: []string{"time"}, Rows: [][]plan.Value{row(1), row(2)}}
	if err := MergeWith(p, dst, &Partial{Columns: []string{"time"}, Rows: [][]plan.Value{row(3)}}, Options{MaxRows: 2}); err != nil {
		t.Fatal(err)
	}
	if !dst.Truncated || len(dst.Rows) != 2 || dst.Rows[0][0] != plan.Int(3) {
		t.Errorf("bounded merge: %+v", dst)
	}
}

func TestAppendGroupKey(t *testing.T) {
	same := [][2][]plan.Value{
		{{plan.Int(5)}, {plan.Float(5)}},
		{{plan.Int(0)}, {plan.Float(math.Copysign(0, -1))}},
		{{plan.String("a"), plan.Null()}, {plan.String("a"), plan.Null()}},
	}
	for _, c := range same {
		if string(AppendGroupKey(nil, c[0])) != string(AppendGroupKey(nil, c[1])) {
			t.Errorf("%v and %v are different groups", c[0], c[1])
		}
	}
	diff := [][2][]plan.Value{
		{{plan.Int(5)}, {plan.Float(5.5)}},
		{{plan.String("ab"), plan.String("c")}, {plan.String("a"), plan.String("bc")}},
		{{plan.Null()}, {plan.String("")}},
		{{plan.Int(1)}, {plan.String("1")}},
		{{plan.Bool(true)}, {plan.Bool(false)}},
	}
	for _, c := range diff {
		if string(AppendGroupKey(nil, c[0])) == string(AppendGroupKey(nil, c[1])) {
			t.Errorf("%v and %v are one group", c[0], c[1])
		}
	}
}
