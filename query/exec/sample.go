package exec

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/plan"
)

// sampler keeps a worker's best rows of a sample query by the plan's order. It
// holds candidates as (block, row) references plus their order-key values, and
// compacts to the best `limit` whenever it holds twice that many, so its memory is
// bounded by the limit. Rows are materialized only at the end.
type sampler struct {
	p      *plan.Plan
	limit  int
	order  []orderCol
	blocks []*block.Block

	cands   []cand
	keys    []plan.Value // order-key values, len(order) per candidate (cand.key)
	tmp     []plan.Value
	full    bool         // cands holds limit rows and worst is the last kept
	worst   []plan.Value // order key of the worst kept row, when full
	seen    int64
	skipped bool // a block was skipped: rows were dropped
	views   []*colView
}

type orderCol struct {
	name string
	desc bool
}

type cand struct {
	key int32 // index into keys / len(order)
	blk int32
	row int32
}

func newSampler(p *plan.Plan, limit int) *sampler {
	s := &sampler{p: p, limit: limit}
	for _, o := range p.OrderBy {
		name, err := agg.SampleOrderColumn(p, o)
		if err != nil {
			continue // agg.CheckPlan rejects such plans
		}
		s.order = append(s.order, orderCol{name: name, desc: o.Desc})
	}
	if len(s.order) == 0 {
		s.order = []orderCol{{name: block.TimeColumn, desc: true}}
	}
	s.tmp = make([]plan.Value, len(s.order))
	s.worst = make([]plan.Value, len(s.order))
	return s
}

// compareKeys orders two order keys (negative: a comes first).
func (s *sampler) compareKeys(a, b []plan.Value) int {
	for j, o := range s.order {
		c := plan.Compare(a[j], b[j])
		if o.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// skip reports whether no row of b can enter the kept rows: the first order key is
// time, the sampler is full, and b's time range lies strictly after the worst row.
func (s *sampler) skip(b *block.Block) bool {
	if !s.full || s.limit == 0 || s.order[0].name != block.TimeColumn || s.worst[0].Kind != plan.KindInt {
		return false
	}
	t := s.worst[0].I
	skip := b.MinTime > t
	if s.order[0].desc {
		skip = b.MaxTime < t
	}
	s.skipped = s.skipped || skip
	return skip
}

func (s *sampler) add(b *block.Block, vs *views, rows []uint32) error {
	n := len(rows)
	if rows == nil {
		n = b.Rows
	}
	s.seen += int64(n)
	if s.limit == 0 {
		return nil
	}
	s.views = s.views[:0]
	for _, o := range s.order {
		v, err := vs.get(o.name)
		if err != nil {
			return err
		}
		s.views = append(s.views, v)
	}
	bi := int32(len(s.blocks))
	used := false
	for k := 0; k < n; k++ {
		i := k
		if rows != nil {
			i = int(rows[k])
		}
		for j, v := range s.views {
			s.tmp[j] = valueAt(v, i)
		}
		if s.full && s.compareKeys(s.tmp, s.worst) >= 0 {
			continue
		}
		s.cands = append(s.cands, cand{key: int32(len(s.cands)), blk: bi, row: int32(i)})
		s.keys = append(s.keys, s.tmp...)
		used = true
		if len(s.cands) >= 2*s.limit+64 {
			s.compact()
		}
	}
	if used {
		s.blocks = append(s.blocks, b)
	}
	return nil
}

// compact keeps the best limit candidates.
func (s *sampler) compact() {
	w := len(s.order)
	key := func(c cand) []plan.Value { return s.keys[int(c.key)*w : int(c.key+1)*w] }
	slices.SortFunc(s.cands, func(a, b cand) int {
		if c := s.compareKeys(key(a), key(b)); c != 0 {
			return c
		}
		if a.blk != b.blk {
			return int(a.blk - b.blk)
		}
		return int(a.row - b.row)
	})
	if len(s.cands) > s.limit {
		s.cands = s.cands[:s.limit]
	}
	keys := make([]plan.Value, 0, len(s.cands)*w)
	for i, c := range s.cands {
		keys = append(keys, key(c)...)
		s.cands[i].key = int32(i)
	}
	s.keys = keys
	if len(s.cands) == s.limit && s.limit > 0 {
		s.full = true
		copy(s.worst, key(s.cands[len(s.cands)-1]))
	}
}

// finish writes the kept rows (and their columns) into out.
func (s *sampler) finish(out *agg.Partial) {
	s.compact()
	if (s.skipped || s.seen > int64(len(s.cands))) && (s.p.Limit < 0 || s.limit < s.p.Limit) {
		out.Truncated = true
	}
	cols := s.p.Columns
	if len(cols) == 0 {
		set := map[string]bool{}
		for _, c := range s.cands {
			for _, col := range s.blocks[c.blk].Columns {
				set[col.Name] = true
			}
		}
		for name := range set {
			if name != block.TimeColumn {
				cols = append(cols, name)
			}
		}
		slices.Sort(cols)
		if set[block.TimeColumn] {
			cols = append([]string{block.TimeColumn}, cols...)
		}
	}
	out.Columns = slices.Clone(cols)
	out.Rows = make([][]plan.Value, len(s.cands))
	for r, c := range s.cands {
		b := s.blocks[c.blk]
		row := make([]plan.Value, len(cols))
		for j, name := range cols {
			if col := b.Column(name); col != nil && col.Arr != nil {
				row[j] = toValue(col.Value(int(c.row)))
			}
		}
		out.Rows[r] = row
	}
	s.blocks, s.cands, s.keys = nil, nil, nil
}

// toValue converts block.Column.Value's result into a plan.Value that does not
// point into the block.
func toValue(x any) plan.Value {
	switch x := x.(type) {
	case int64:
		return plan.Int(x)
	case float64:
		return plan.Float(x)
	case string:
		return plan.String(strings.Clone(x))
	case []string:
		return plan.String(setJSON(x))
	}
	return plan.Null()
}

// setJSON renders a set as a JSON array of strings.
func setJSON(elems []string) string {
	if elems == nil {
		elems = []string{}
	}
	b, _ := json.Marshal(elems)
	return string(b)
}

// valueAt reads row i of a view as a plan.Value; strings point into the block.
func valueAt(v *colView, i int) plan.Value {
	if v.kind == viewMissing || (v.valid != nil && v.valid[i] == 0) || v.nulls >= v.n {
		return plan.Null()
	}
	switch v.kind {
	case viewInt:
		return plan.Int(intAt(v, i))
	case viewFloat:
		return plan.Float(v.f64[i])
	case viewDict:
		return plan.String(v.dict.Value(codeAt(v, i)))
	case viewPlain:
		return plan.String(v.plain.Value(i))
	case viewSet:
		return plan.String(setJSON(v.col.Set(i)))
	}
	return plan.Null()
}

// sortBlocks orders blocks by descending MaxTime.
func sortBlocks(bs []*block.Block) {
	slices.SortStableFunc(bs, func(a, b *block.Block) int {
		switch {
		case a.MaxTime > b.MaxTime:
			return -1
		case a.MaxTime < b.MaxTime:
			return 1
		}
		return 0
	})
}
