package agg

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/plan"
)

// DefaultMaxGroups is the group bound used when Options.MaxGroups is 0.
const DefaultMaxGroups = 100_000

// DefaultMaxRows bounds the rows of a sample query when Options.MaxRows is 0 (also
// when the plan asks for more, or has no LIMIT).
const DefaultMaxRows = plan.MaxSampleLimit

// Options bound what Merge, and query/exec's Execute, keep.
type Options struct {
	// MaxGroups is the most groups a partial holds. Past it, rows of new groups are
	// dropped (existing groups still grow) and Partial.Truncated is set. 0 means
	// DefaultMaxGroups.
	MaxGroups int
	// MaxRows is the most rows a sample query keeps, whatever its LIMIT; rows cut
	// for it (not for the LIMIT) set Partial.Truncated. 0 means DefaultMaxRows.
	MaxRows int
}

// Groups returns the effective group bound.
func (o Options) Groups() int {
	if o.MaxGroups <= 0 {
		return DefaultMaxGroups
	}
	return o.MaxGroups
}

// SampleRows returns how many rows a sample query of p keeps: its LIMIT, capped by
// the row bound.
func (o Options) SampleRows(p *plan.Plan) int {
	n := o.MaxRows
	if n <= 0 {
		n = DefaultMaxRows
	}
	if p.Limit >= 0 && p.Limit < n {
		return p.Limit
	}
	return n
}

// Merge merges src into dst with the default Options. See MergeWith.
func Merge(p *plan.Plan, dst, src *Partial) error { return MergeWith(p, dst, src, Options{}) }

// MergeWith merges src's groups into dst's by key (merging the states of groups
// both hold), adds src's coverage counters to dst's and ORs Truncated. For sample
// plans it unites the column lists, concatenates the rows and keeps the best
// opt.SampleRows(p) by the plan's order.
//
// src is consumed: its states may now belong to dst, so it must not be used
// afterwards. src is checked against p first (a malformed partial from a child is an
// error, and leaves dst unchanged). dst keeps a key index between calls, so merging N
// children into one dst costs time proportional to their groups; dst's Keys must not
// be modified between calls.
func MergeWith(p *plan.Plan, dst, src *Partial, opt Options) error {
	if err := CheckPlan(p); err != nil {
		return fmt.Errorf("cannot merge partial states: bad plan: %w", err)
	}
	if err := checkPartial(p, src); err != nil {
		return fmt.Errorf("cannot merge partial states: %w", err)
	}
	if dst.index == nil || dst.indexed != len(dst.Keys) {
		if err := checkPartial(p, dst); err != nil {
			return fmt.Errorf("cannot merge partial states into a malformed one: %w", err)
		}
	}
	dst.LeavesTotal += src.LeavesTotal
	dst.LeavesResponded += src.LeavesResponded
	dst.RowsInRange += src.RowsInRange
	dst.RowsEstimated += src.RowsEstimated
	dst.RowsMatched += src.RowsMatched
	dst.Truncated = dst.Truncated || src.Truncated
	if p.Sample {
		mergeSample(p, dst, src, opt)
		return nil
	}
	dst.buildIndex()
	limit := opt.Groups()
	var buf []byte
	for g, key := range src.Keys {
		buf = AppendGroupKey(buf[:0], key)
		if i, ok := dst.index[string(buf)]; ok {
			for j, s := range dst.States[i] {
				if err := s.Merge(src.States[g][j]); err != nil {
					return fmt.Errorf("cannot merge group %v aggregate %d: %w", key, j, err)
				}
			}
			continue
		}
		if len(dst.Keys) >= limit {
			dst.Truncated = true
			continue
		}
		dst.index[dst.internKey(buf)] = len(dst.Keys)
		dst.Keys = append(dst.Keys, key)
		dst.States = append(dst.States, src.States[g])
		dst.indexed = len(dst.Keys)
	}
	return nil
}

func (p *Partial) buildIndex() {
	if p.index != nil && p.indexed == len(p.Keys) {
		return
	}
	p.index = make(map[string]int, len(p.Keys))
	var buf []byte
	for i, key := range p.Keys {
		buf = AppendGroupKey(buf[:0], key)
		p.index[p.internKey(buf)] = i
	}
	p.indexed = len(p.Keys)
}

// checkPartial checks that part has the shape p implies.
func checkPartial(p *plan.Plan, part *Partial) error {
	if p.Sample {
		if len(part.Keys) != 0 || len(part.States) != 0 {
			return fmt.Errorf("sample query partial has %d groups", len(part.Keys))
		}
		for i, row := range part.Rows {
			if len(row) != len(part.Columns) {
				return fmt.Errorf("row %d has %d values for %d columns", i, len(row), len(part.Columns))
			}
		}
		return nil
	}
	if len(part.Rows) != 0 || len(part.Columns) != 0 {
		return fmt.Errorf("aggregate query partial has %d sample rows", len(part.Rows))
	}
	if len(part.Keys) != len(part.States) {
		return fmt.Errorf("%d group keys but %d state lists", len(part.Keys), len(part.States))
	}
	if len(p.GroupBy) == 0 && len(part.Keys) > 1 {
		return fmt.Errorf("%d groups for a query without GROUP BY", len(part.Keys))
	}
	for g, key := range part.Keys {
		if len(key) != len(p.GroupBy) {
			return fmt.Errorf("group %d has %d key values, want %d", g, len(key), len(p.GroupBy))
		}
		states := part.States[g]
		if len(states) != len(p.Aggs) {
			return fmt.Errorf("group %d has %d states, want %d", g, len(states), len(p.Aggs))
		}
		for j, s := range states {
			if s == nil || s.Func() != p.Aggs[j].Func {
				return fmt.Errorf("group %d state %d is not a %s state: %w", g, j, p.Aggs[j].Func, ErrStateMismatch)
			}
			if ps, ok := s.(*PercentileState); ok && ps.Q != p.Aggs[j].Param {
				return fmt.Errorf("group %d state %d is a percentile(%v) state, want %v: %w", g, j, ps.Q, p.Aggs[j].Param, ErrStateMismatch)
			}
		}
	}
	return nil
}

// AppendGroupKey appends a byte string that identifies key as a group: equal keys
// give equal bytes. Numbers are identified by value, so an integral float and the
// equal int are one group (and -0 is 0); all NaNs are one group.
func AppendGroupKey(dst []byte, key []plan.Value) []byte {
	for _, v := range key {
		switch v.Kind {
		case plan.KindInt:
			dst = binary.LittleEndian.AppendUint64(append(dst, valInt), uint64(v.I))
		case plan.KindFloat:
			if i, ok := exactInt(v.F); ok {
				dst = binary.LittleEndian.AppendUint64(append(dst, valInt), uint64(i))
				continue
			}
			bits := math.Float64bits(v.F)
			if v.F != v.F {
				bits = 0x7ff8000000000001
			}
			dst = binary.LittleEndian.AppendUint64(append(dst, valFloat), bits)
		case plan.KindString:
			dst = appendString(append(dst, valString), v.S)
		case plan.KindBool:
			if v.B {
				dst = append(dst, valTrue)
			} else {
				dst = append(dst, valFalse)
			}
		default:
			dst = append(dst, valNull)
		}
	}
	return dst
}

// SortKey is one term of a sample query's order: a column of Partial.Columns (-1:
// the column is absent, every value NULL) and its direction.
type SortKey struct {
	Column int
	Desc   bool
}

// SampleOrder resolves the order of sample plan p against columns: each term's
// Order.Column (or, in plans that leave it empty, the column its Output names in
// p.Columns or p.Outputs). Without ORDER BY the order is time descending.
func SampleOrder(p *plan.Plan, columns []string) ([]SortKey, error) {
	if len(p.OrderBy) == 0 {
		return []SortKey{{Column: slices.Index(columns, block.TimeColumn), Desc: true}}, nil
	}
	keys := make([]SortKey, len(p.OrderBy))
	for i, o := range p.OrderBy {
		name, err := SampleOrderColumn(p, o)
		if err != nil {
			return nil, fmt.Errorf("order term %d: %w", i, err)
		}
		keys[i] = SortKey{Column: slices.Index(columns, name), Desc: o.Desc}
	}
	return keys, nil
}

// SampleOrderColumn names the column a sample plan's order term sorts by.
func SampleOrderColumn(p *plan.Plan, o plan.Order) (string, error) {
	switch {
	case o.Column != "":
		return o.Column, nil
	case o.Output >= 0 && o.Output < len(p.Outputs):
		out := p.Outputs[o.Output]
		if out.Kind == plan.OutColumn && out.Index >= 0 && out.Index < len(p.Columns) {
			return p.Columns[out.Index], nil
		}
		return out.Name, nil
	case o.Output >= 0 && o.Output < len(p.Columns):
		return p.Columns[o.Output], nil
	}
	return "", fmt.Errorf("output %d does not exist", o.Output)
}

// CompareRows orders two sample rows by keys, then by all their values, so that
// the order is total and results are deterministic.
func CompareRows(keys []SortKey, a, b []plan.Value) int {
	for _, k := range keys {
		if k.Column < 0 {
			continue
		}
		c := plan.Compare(a[k.Column], b[k.Column])
		if k.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return compareValues(a, b)
}

func compareValues(a, b []plan.Value) int {
	for i := range min(len(a), len(b)) {
		if c := compareValue(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// compareValue is plan.Compare with a fast path for two values of the same
// common kind.
func compareValue(a, b plan.Value) int {
	if a.Kind == b.Kind {
		switch a.Kind {
		case plan.KindString:
			return strings.Compare(a.S, b.S)
		case plan.KindInt:
			return cmp.Compare(a.I, b.I)
		case plan.KindNull:
			return 0
		}
	}
	return plan.Compare(a, b)
}

func mergeSample(p *plan.Plan, dst, src *Partial, opt Options) {
	if len(dst.Columns) == 0 && len(dst.Rows) == 0 {
		dst.Columns = src.Columns
	} else if !slices.Equal(dst.Columns, src.Columns) {
		cols := slices.Clone(dst.Columns)
		for _, c := range src.Columns {
			if !slices.Contains(cols, c) {
				cols = append(cols, c)
			}
		}
		dst.Rows = remap(dst.Rows, dst.Columns, cols)
		src.Rows = remap(src.Rows, src.Columns, cols)
		dst.Columns = cols
	}
	dst.Rows = append(dst.Rows, src.Rows...)
	keys, err := SampleOrder(p, dst.Columns)
	if err != nil {
		keys = nil // CheckPlan accepted p; order by all values.
	}
	slices.SortFunc(dst.Rows, func(a, b []plan.Value) int { return CompareRows(keys, a, b) })
	if n := opt.SampleRows(p); len(dst.Rows) > n {
		if n < p.Limit || p.Limit < 0 {
			dst.Truncated = true
		}
		clear(dst.Rows[n:])
		dst.Rows = dst.Rows[:n]
	}
}

// remap rewrites rows over columns from into rows over columns to (a superset).
func remap(rows [][]plan.Value, from, to []string) [][]plan.Value {
	pos := make([]int, len(from))
	for i, c := range from {
		pos[i] = slices.Index(to, c)
	}
	for r, row := range rows {
		out := make([]plan.Value, len(to))
		for i, v := range row {
			out[pos[i]] = v
		}
		rows[r] = out
	}
	return rows
}
