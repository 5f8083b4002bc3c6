package agg

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/plan"
)

// ResultColumn names and types one result column. Type is int, float, string, bool
// or null (every value NULL and nothing else known).
type ResultColumn struct {
	Name string
	Type string
}

// Result is a finalized answer.
type Result struct {
	Columns []ResultColumn
	Rows    [][]plan.Value
	// Truncated is set when groups or rows were cut at a bound (Options); a LIMIT
	// is not truncation.
	Truncated bool
}

// Finalize turns the merged partial of plan p into the answer: one row per group
// (or the sample rows), the plan's Outputs as columns, ordered by OrderBy and cut at
// Limit. Ties in the order are broken by the group key (sample rows: by all their
// values), so equal inputs give equal answers. Without ORDER BY, groups come in
// ascending key order and sample rows newest first.
//
// An aggregate query without GROUP BY always answers one row, even over no rows:
// count 0, count_distinct 0, NULL for the rest. A column mixing ints and floats
// (a sum that overflowed in some groups, or a column typed differently on different
// blocks) is all floats.
func Finalize(p *plan.Plan, part *Partial) (*Result, error) {
	if err := CheckPlan(p); err != nil {
		return nil, fmt.Errorf("cannot finalize: bad plan: %w", err)
	}
	if err := checkPartial(p, part); err != nil {
		return nil, fmt.Errorf("cannot finalize: %w", err)
	}
	if p.Sample {
		return finalizeSample(p, part)
	}
	outputs := p.Outputs
	if len(outputs) == 0 {
		outputs = DefaultOutputs(p)
	}
	keys, states := part.Keys, part.States
	if len(p.GroupBy) == 0 && len(keys) == 0 {
		keys, states = [][]plan.Value{{}}, [][]State{NewStates(p)}
	}
	res := &Result{Truncated: part.Truncated, Columns: make([]ResultColumn, len(outputs))}
	rows := make([][]plan.Value, len(keys))
	no := len(outputs)
	cells := make([]plan.Value, len(keys)*no)
	for g, key := range keys {
		row := cells[g*no : (g+1)*no : (g+1)*no]
		for i, o := range outputs {
			if o.Kind == plan.OutGroup {
				row[i] = key[o.Index]
			} else {
				row[i] = states[g][o.Index].Result()
			}
		}
		rows[g] = row
	}
	// Ties are broken by the group key, unless the order already covers every key
	// (keys are unique, so there are no ties then).
	covered := make([]bool, len(p.GroupBy))
	for _, o := range p.OrderBy {
		if out := outputs[o.Output]; out.Kind == plan.OutGroup {
			covered[out.Index] = true
		}
	}
	tieBreak := slices.Contains(covered, false)
	cmpRows := func(a, b int) int {
		for _, o := range p.OrderBy {
			c := compareValue(rows[a][o.Output], rows[b][o.Output])
			if o.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		if !tieBreak {
			return 0
		}
		return compareValues(keys[a], keys[b])
	}
	order := topK(len(rows), p.Limit, cmpRows)
	res.Rows = make([][]plan.Value, len(order))
	for i, g := range order {
		res.Rows[i] = rows[g]
	}
	for i, o := range outputs {
		fallback := "null"
		if o.Kind == plan.OutAgg {
			switch p.Aggs[o.Index].Func {
			case plan.AggCount, plan.AggCountDistinct:
				fallback = "int"
			case plan.AggAvg, plan.AggPercentile:
				fallback = "float"
			}
		}
		res.Columns[i] = ResultColumn{Name: o.Name, Type: columnType(res.Rows, i, fallback)}
	}
	return res, nil
}

// DefaultOutputs are the outputs of a plan that lists none: every group key, then
// every aggregate, named as in SQL (time(60), count(*), sum(x), percentile(x, 0.99)…).
func DefaultOutputs(p *plan.Plan) []plan.Output {
	out := make([]plan.Output, 0, len(p.GroupBy)+len(p.Aggs))
	for i, g := range p.GroupBy {
		name := g.Column
		if g.Bucket > 0 {
			name = g.Column + "(" + strconv.FormatInt(g.Bucket, 10) + ")"
		}
		out = append(out, plan.Output{Name: name, Kind: plan.OutGroup, Index: i})
	}
	for i, a := range p.Aggs {
		out = append(out, plan.Output{Name: AggName(a), Kind: plan.OutAgg, Index: i})
	}
	return out
}

// AggName is a's name as SQL would print it.
func AggName(a plan.Agg) string {
	col := a.Column
	if col == "" {
		col = "*"
	}
	if a.Func == plan.AggPercentile {
		return "percentile(" + col + ", " + strconv.FormatFloat(a.Param, 'g', -1, 64) + ")"
	}
	return string(a.Func) + "(" + col + ")"
}

// columnType names the type of column i of rows; a column of ints and floats is
// converted to all floats.
func columnType(rows [][]plan.Value, i int, fallback string) string {
	var ints, floats, strs, bools int
	for _, row := range rows {
		switch row[i].Kind {
		case plan.KindInt:
			ints++
		case plan.KindFloat:
			floats++
		case plan.KindString:
			strs++
		case plan.KindBool:
			bools++
		}
	}
	switch {
	case strs > 0:
		return "string"
	case bools > 0 && ints+floats == 0:
		return "bool"
	case floats > 0:
		if ints > 0 {
			for _, row := range rows {
				if row[i].Kind == plan.KindInt {
					row[i] = plan.Float(float64(row[i].I))
				}
			}
		}
		return "float"
	case ints > 0:
		return "int"
	}
	return fallback
}

func finalizeSample(p *plan.Plan, part *Partial) (*Result, error) {
	keys, err := SampleOrder(p, part.Columns)
	if err != nil {
		return nil, fmt.Errorf("cannot finalize: %w", err)
	}
	rows := slices.Clone(part.Rows)
	slices.SortFunc(rows, func(a, b []plan.Value) int { return CompareRows(keys, a, b) })
	if p.Limit >= 0 && len(rows) > p.Limit {
		rows = rows[:p.Limit]
	}
	// Project onto the outputs (every column of the partial for SELECT *), copying:
	// the partial is left unchanged.
	var names, srcs []string
	switch {
	case len(p.Outputs) > 0:
		for _, o := range p.Outputs {
			src := o.Name
			if o.Kind == plan.OutColumn && o.Index >= 0 && o.Index < len(p.Columns) {
				src = p.Columns[o.Index]
			}
			names, srcs = append(names, o.Name), append(srcs, src)
		}
	case len(p.Columns) > 0:
		names, srcs = p.Columns, p.Columns
	default:
		names, srcs = part.Columns, part.Columns
	}
	pos := make([]int, len(srcs))
	for i, c := range srcs {
		pos[i] = slices.Index(part.Columns, c)
	}
	for r, row := range rows {
		out := make([]plan.Value, len(srcs))
		for i, j := range pos {
			if j >= 0 {
				out[i] = row[j]
			}
		}
		rows[r] = out
	}
	res := &Result{Truncated: part.Truncated, Rows: rows, Columns: make([]ResultColumn, len(names))}
	for i, name := range names {
		fallback := "null"
		if srcs[i] == block.TimeColumn {
			fallback = "int"
		}
		res.Columns[i] = ResultColumn{Name: name, Type: columnType(rows, i, fallback)}
	}
	return res, nil
}

// topK returns the indexes 0..n-1 in cmp order, cut at limit (< 0: all). The order
// is total (ties are broken by group key), so no stability is needed; a small limit
// keeps a bounded heap instead of sorting everything.
func topK(n, limit int, cmp func(a, b int) int) []int {
	if limit < 0 || limit > n {
		limit = n
	}
	if limit == 0 {
		return nil
	}
	if limit*4 >= n {
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, cmp)
		return order[:limit]
	}
	// h is a max-heap (by cmp) of the best limit seen so far: h[0] is the worst.
	h := make([]int, 0, limit)
	less := func(a, b int) bool { return cmp(h[a], h[b]) > 0 }
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			m := l
			if r := l + 1; r < len(h) && less(r, l) {
				m = r
			}
			if !less(m, i) {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for i := 0; i < n; i++ {
		if len(h) < limit {
			h = append(h, i)
			for j := len(h) - 1; j > 0; {
				parent := (j - 1) / 2
				if !less(j, parent) {
					break
				}
				h[j], h[parent] = h[parent], h[j]
				j = parent
			}
			continue
		}
		if cmp(i, h[0]) < 0 {
			h[0] = i
			down(0)
		}
	}
	slices.SortFunc(h, cmp)
	return h
}
