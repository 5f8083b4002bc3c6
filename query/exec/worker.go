package exec

import (
	"sync"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/plan"
)

// worker scans blocks one at a time into its own groups and accumulators.
type worker struct {
	q   *query
	opt Options

	*scratch

	groups *groups
	accs   []acc
	sample *sampler

	inRange, matched int64
	broken           bool // a scan panicked: the scratch is not reused
}

// scratch is a worker's reusable buffers, pooled across queries. It never holds
// anything a partial refers to; release drops its references to blocks.
type scratch struct {
	vs views
	ev evaluator
	gr grouper

	sel    []uint32
	ident  []uint32 // 0, 1, 2, … for "every row"
	ones   []uint32 // gid 1 for every row, when there is no GROUP BY
	wts    []int64
	fbuf   []float64 // percentile: the selected values of a block
	hashes []uint64  // count_distinct: per dictionary entry
	stamps []uint32  // count_distinct: per dictionary entry

	dense      *denseScratch // dense grouping on an 8-bit key
	denseKinds []denseKind
	pends      [][]binAdd // percentile queues, for reuse
}

var scratchPool = sync.Pool{New: func() any {
	s := new(scratch)
	s.ev.vs = &s.vs
	return s
}}

// release forgets every reference into blocks and returns s to the pool.
func (s *scratch) release() {
	for _, v := range s.vs.pool {
		*v = colView{}
	}
	s.vs.reset(nil)
	for i := range s.gr.keys {
		k := &s.gr.keys[i]
		k.dict, k.bad = nil, false
		clear(k.vals[:cap(k.vals)])
		clear(k.strIDs)
	}
	clear(s.gr.key)
	if s.dense != nil {
		s.dense.sum.col = nil
	}
	s.ev.tableView = nil
	// A scan stopped by a panic may have left group table entries behind.
	for _, c := range s.gr.dirty {
		s.gr.lut[c] = 0
	}
	s.gr.dirty = s.gr.dirty[:0]
	scratchPool.Put(s)
}

func newWorker(q *query, opt Options, shared *admission) *worker {
	w := &worker{q: q, opt: opt, groups: newGroups(opt.agg().Groups(), shared)}
	w.scratch = scratchPool.Get().(*scratch)
	w.accs = make([]acc, len(q.aggs))
	for i, spec := range q.aggs {
		w.accs[i].spec = spec
		w.accs[i].s = w.scratch
		w.accs[i].grow() // the trash group
	}
	if q.p.Sample {
		w.sample = newSampler(q.p, opt.agg().SampleRows(q.p))
	}
	return w
}

func (w *worker) newGroup() {
	for i := range w.accs {
		w.accs[i].grow()
	}
}

// scan folds one block into the worker's state.
func (w *worker) scan(b *block.Block) error {
	q := w.q
	if b.Rows == 0 || b.MaxTime < q.tmin || b.MinTime > q.tmax {
		return nil
	}
	w.vs.reset(b)
	if err := w.countInRange(b); err != nil {
		return err
	}
	if w.sample != nil && w.sample.skip(b) {
		return nil // every row of b would sort after the rows already kept
	}
	n := b.Rows
	var rows []uint32 // nil: every row
	if q.filter != nil {
		w.sel = growU32(w.sel, n)
		sel, all, err := w.ev.selectRows(q.filter, w.sel)
		if err != nil {
			return err
		}
		if !all {
			if len(sel) == 0 {
				return nil
			}
			if len(sel) < n {
				rows = sel
			}
		}
	}
	if rows == nil {
		w.matched += int64(n)
	} else {
		w.matched += int64(len(rows))
	}
	if w.sample != nil {
		return w.sample.add(b, &w.vs, rows)
	}
	return w.aggregate(b, rows)
}

// countInRange adds the rows of b inside the plan's time range to the coverage.
func (w *worker) countInRange(b *block.Block) error {
	q := w.q
	if b.MinTime >= q.tmin && b.MaxTime <= q.tmax {
		w.inRange += int64(b.Rows)
		return nil
	}
	v, err := w.vs.get(block.TimeColumn)
	if err != nil || v.kind != viewInt {
		return err
	}
	mask := w.ev.mask(0, b.Rows)
	switch evalIntRange(v, q.tmin, q.tmax, true, mask) {
	case rAll:
		w.inRange += int64(b.Rows) - int64(v.nulls)
	case rMask:
		if v.valid != nil {
			andInto(mask, v.valid)
		}
		c := 0
		for _, m := range mask {
			c += int(m)
		}
		w.inRange += int64(c)
	}
	return nil
}

func (w *worker) aggregate(b *block.Block, rows []uint32) error {
	p := w.q.p
	sr, err := w.vs.get(block.SampleRateColumn)
	if err != nil {
		return err
	}
	weighted := !sr.allNull()
	if len(p.GroupBy) == 0 && rows == nil && !weighted && w.fromMetadata(b) {
		return nil
	}
	var wts []int64
	if weighted {
		if cap(w.wts) < b.Rows {
			w.wts = make([]int64, block.MaxRows)
		}
		wts = weights(sr, w.wts[:b.Rows])
	}
	if handled, err := w.aggregateDense(rows, wts); handled || err != nil {
		return err
	}
	ident := w.identity(b.Rows)
	n := len(rows)
	if rows == nil {
		n = b.Rows
	}
	var gids []uint32
	if len(p.GroupBy) == 0 {
		w.singleGroup()
		gids = w.onesFor(n)
	} else {
		gids, err = w.gr.assign(p.GroupBy, &w.vs, rows, ident, w.groups, w.newGroup)
		if err != nil {
			return err
		}
	}
	for i := range w.accs {
		if err := w.accs[i].update(&w.vs, rows, ident, gids, wts); err != nil {
			return err
		}
	}
	return nil
}

// singleGroup makes sure group 1, the only group of a query without GROUP BY,
// exists.
func (w *worker) singleGroup() {
	if w.groups.n() == 1 {
		w.groups.lookup(nil)
		w.newGroup()
	}
}

// fromMetadata answers count and min/max over a whole block from its metadata
// (no GROUP BY, every row selected, no sample_rate), without reading values. It
// reports false, having changed nothing, when some aggregate needs the data.
func (w *worker) fromMetadata(b *block.Block) bool {
	for _, s := range w.q.aggs {
		switch s.fn {
		case plan.AggCount:
		case plan.AggMin, plan.AggMax:
			c := b.Column(s.col)
			if c != nil && c.Type != block.TypeInt && c.Type != block.TypeFloat && c.Type != block.TypeString {
				return false
			}
		default:
			return false
		}
	}
	w.singleGroup()
	for i := range w.accs {
		a := &w.accs[i]
		if a.spec.col == "" {
			a.n[1] += int64(b.Rows)
			continue
		}
		c := b.Column(a.spec.col)
		if c == nil || c.Arr == nil {
			continue
		}
		nulls := c.Stats.Nulls
		if a.spec.fn == plan.AggCount {
			a.n[1] += int64(b.Rows - nulls)
			continue
		}
		st := c.Stats
		if !st.HasMinMax || nulls == b.Rows {
			continue
		}
		isMin := a.spec.fn == plan.AggMin
		switch c.Type {
		case block.TypeInt:
			x := st.MaxI
			if isMin {
				x = st.MinI
			}
			if a.flag[1]&fInt == 0 || (isMin && x < a.iv[1]) || (!isMin && x > a.iv[1]) {
				a.iv[1] = x
				a.flag[1] |= fInt
			}
		case block.TypeFloat:
			x := st.MaxF
			if isMin {
				x = st.MinF
			}
			if x != x {
				continue
			}
			if a.flag[1]&fFlt == 0 || (isMin && x < a.fv[1]) || (!isMin && x > a.fv[1]) {
				a.fv[1] = x
				a.flag[1] |= fFlt
			}
		case block.TypeString:
			x := st.MaxS
			if isMin {
				x = st.MinS
			}
			if a.flag[1]&fStr == 0 || (isMin && x < a.sv[1]) || (!isMin && x > a.sv[1]) {
				a.sv[1] = x
				a.flag[1] |= fStr
			}
		}
	}
	return true
}

// identity returns 0, 1, …, n-1.
func (w *worker) identity(n int) []uint32 {
	if len(w.ident) < n {
		w.ident = make([]uint32, max(n, block.MaxRows))
		for i := range w.ident {
			w.ident[i] = uint32(i)
		}
	}
	return w.ident[:n]
}

// onesFor returns n gids of group 1.
func (w *worker) onesFor(n int) []uint32 {
	if len(w.ones) < n {
		w.ones = make([]uint32, max(n, block.MaxRows))
		for i := range w.ones {
			w.ones[i] = 1
		}
	}
	return w.ones[:n]
}

// partial hands the worker's groups over as an agg.Partial.
func (w *worker) partial() (*agg.Partial, error) {
	out := &agg.Partial{RowsInRange: w.inRange, RowsMatched: w.matched}
	if w.sample != nil {
		w.sample.finish(out)
		return out, nil
	}
	out.Truncated = w.groups.truncated
	ng := w.groups.n() - 1
	out.Keys = w.groups.keys[1:]
	out.States = make([][]agg.State, ng)
	na := len(w.accs)
	slab := make([]agg.State, ng*na)
	for i := range out.States {
		out.States[i] = slab[i*na : (i+1)*na : (i+1)*na]
	}
	for j := range w.accs {
		a := &w.accs[j]
		a.fillStates(out.States, j)
		w.scratch.keepPendBuf(a.pend)
		a.pend = nil
	}
	return out, nil
}
