package exec

import (
	"math"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/plan"
)

// Dense grouping on an 8-bit key.
//
// When the only GROUP BY key of a block is 8 bits wide and has no NULLs — a
// dictionary string column of at most 256 entries (its codes) or an int column
// stored as uint8 (its raw values) — the block is folded without a group id per
// row: one pass counts the rows per code and sums a value column per code into
// arrays indexed by the code, then every code present is looked up once and its
// totals are added to its group. Four copies of the arrays, used round-robin by
// row, keep a run of one code from waiting on its own previous addition.
//
// count(*), count(col) and sum/avg of a float or narrow int column without NULLs
// (and no sample_rate) are folded this way; any other aggregate of the block gets
// group ids from the same per-code table and runs its usual kernel. A block none of
// whose aggregates folds per code takes the usual path.

const denseLanes = 4

// denseScratch is a worker's per-block arrays for dense grouping.
type denseScratch struct {
	cnt  [denseLanes][256]uint32
	fsum [denseLanes][256]float64
	isum [denseLanes][256]uint64
	rows [256]int64  // selected rows per code
	gid  [256]uint32 // group of each code present
	sum  denseSum
}

// denseSum is the per-code sum of one value column over the block's selected rows.
type denseSum struct {
	col  *colView
	f    [256]float64 // float column
	raw  [256]uint64  // int column: sum of raw values (less than 2^48)
	base int64        // int column: value = raw + base
}

// denseKind says how an aggregate folds per code.
type denseKind uint8

const (
	denseNo   denseKind = iota // needs a group id per row
	denseRows                  // adds the row counts
	denseNone                  // adds nothing (count of an all-NULL column)
	denseSums                  // adds a column's sums
)

// aggregateDense folds the selected rows (nil: every row) of the current block when
// its single GROUP BY key qualifies (see above). handled is false, with nothing
// changed, when it does not.
func (w *worker) aggregateDense(rows []uint32, wts []int64) (handled bool, err error) {
	gb := w.q.p.GroupBy
	if len(gb) != 1 || gb[0].Bucket != 0 || wts != nil {
		return false, nil
	}
	v, err := w.vs.get(gb[0].Column)
	if err != nil || v.nulls > 0 || v.n > block.MaxRows { // per-code totals assume a block's size
		return false, err
	}
	if len(w.gr.keys) < 1 {
		w.gr.keys, w.gr.key = make([]keyCol, 1), make([]plan.Value, 1)
	}
	var codes []uint8
	k := &w.gr.keys[0]
	k.vals = k.vals[:0]
	switch {
	case v.kind == viewDict && v.c8 != nil:
		codes = v.c8
		k.kind, k.dict = kDict, v.dict
		k.nullID, k.card = math.MaxUint32, 256 // no NULLs: every code must name an entry
	case v.kind == viewInt && v.u8 != nil:
		codes = v.u8
		k.kind, k.base = kRaw, v.base
		k.nullID, k.card = 256, 257
	default:
		return false, nil
	}
	if w.dense == nil {
		w.dense = new(denseScratch)
	}
	d := w.dense
	kinds := w.denseKinds[:0]
	some := false
	for i := range w.accs {
		kind, err := w.denseKind(&w.accs[i])
		if err != nil {
			return true, err
		}
		kinds = append(kinds, kind)
		some = some || kind != denseNo
	}
	w.denseKinds = kinds
	if !some {
		// Every aggregate needs a group per row: resolving codes lazily while
		// assigning them (grouper.assign) saves the counting pass.
		return false, nil
	}

	// Count the rows per code, summing the first summed column on the way.
	d.cnt = [denseLanes][256]uint32{}
	sum := &d.sum
	sum.col = nil
	for i, kind := range kinds {
		if kind == denseSums {
			w.denseSumOf(w.vs.byName[w.accs[i].spec.col], codes, rows)
			break
		}
	}
	if sum.col == nil {
		countCodes(&d.cnt, codes, rows)
	}
	var present [256]uint8
	np := 0
	for c := range d.rows {
		n := int64(d.cnt[0][c]) + int64(d.cnt[1][c]) + int64(d.cnt[2][c]) + int64(d.cnt[3][c])
		d.rows[c] = n
		if n > 0 {
			present[np] = uint8(c)
			np++
		}
	}
	for _, c := range present[:np] {
		d.gid[c] = w.gr.resolve(gb, uint64(c), w.groups, w.newGroup)
	}
	if err := w.gr.checkKeys(gb); err != nil {
		return true, err
	}

	var gids []uint32 // per selected row, built when some aggregate needs them
	for i, kind := range kinds {
		a := &w.accs[i]
		switch kind {
		case denseNone:
		case denseRows:
			for _, c := range present[:np] {
				a.n[d.gid[c]] += d.rows[c]
			}
		case denseSums:
			if col := w.vs.byName[a.spec.col]; col != sum.col {
				w.denseSumOf(col, codes, rows)
			}
			a.foldDense(sum, d, present[:np])
		default:
			if gids == nil {
				gids = denseGids(w, codes, rows, d)
			}
			if err := a.update(&w.vs, rows, w.identity(len(codes)), gids, nil); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

// denseKind says how aggregate a folds over the current block.
func (w *worker) denseKind(a *acc) (denseKind, error) {
	fn := a.spec.fn
	if fn == plan.AggCount && a.spec.col == "" {
		return denseRows, nil
	}
	if fn != plan.AggCount && fn != plan.AggSum && fn != plan.AggAvg {
		return denseNo, nil
	}
	v, err := w.vs.get(a.spec.col)
	switch {
	case err != nil:
		return denseNo, err
	case v.allNull():
		return denseNone, nil
	case v.nulls > 0:
		return denseNo, nil
	case fn == plan.AggCount:
		return denseRows, nil
	case v.kind == viewFloat || (v.kind == viewInt && v.i64 == nil):
		return denseSums, nil
	}
	return denseNo, nil // a wide int (overflow per row) or a type error
}

// denseSumOf sums column v per code over the selected rows into the scratch's
// denseSum (counting the rows per code into its lanes too).
func (w *worker) denseSumOf(v *colView, codes []uint8, rows []uint32) {
	d := w.dense
	s := &d.sum
	s.col, s.base = v, v.base
	if v.kind == viewFloat {
		d.fsum = [denseLanes][256]float64{}
		sumCodes(&d.cnt, &d.fsum, codes, v.f64, rows)
		for c := range s.f {
			s.f[c] = (d.fsum[0][c] + d.fsum[1][c]) + (d.fsum[2][c] + d.fsum[3][c])
		}
		return
	}
	d.isum = [denseLanes][256]uint64{}
	switch {
	case v.u8 != nil:
		sumCodes(&d.cnt, &d.isum, codes, v.u8, rows)
	case v.u16 != nil:
		sumCodes(&d.cnt, &d.isum, codes, v.u16, rows)
	default:
		sumCodes(&d.cnt, &d.isum, codes, v.u32, rows)
	}
	for c := range s.raw {
		s.raw[c] = d.isum[0][c] + d.isum[1][c] + d.isum[2][c] + d.isum[3][c]
	}
}

// foldDense adds the per-code sums (and row counts) to the groups of sum or avg a.
func (a *acc) foldDense(s *denseSum, d *denseScratch, present []uint8) {
	avg := a.spec.fn == plan.AggAvg
	isFloat := s.col.kind == viewFloat
	for _, c := range present {
		g, n := d.gid[c], d.rows[c]
		if isFloat {
			a.fsum[g] += s.f[c]
			if avg {
				a.n[g] += n
			} else {
				a.flag[g] |= fSeen | fFloat
			}
			continue
		}
		// The values' sum is raw + base*n, exact while it fits an int64.
		x, ok := agg.MulInt(s.base, n)
		if ok {
			x, ok = agg.AddInt(int64(s.raw[c]), x)
		}
		xf := float64(s.raw[c]) + float64(s.base)*float64(n)
		if avg {
			if ok {
				xf = float64(x)
			}
			a.fsum[g] += xf
			a.n[g] += n
			continue
		}
		if ok {
			var t int64
			if t, ok = agg.AddInt(a.isum[g], x); ok {
				a.isum[g] = t
				a.flag[g] |= fSeen
				continue
			}
		}
		a.fsum[g] += xf
		a.flag[g] |= fSeen | fFloat
	}
}

// denseGids returns each selected row's group from the per-code table.
func denseGids(w *worker, codes []uint8, rows []uint32, d *denseScratch) []uint32 {
	n := len(rows)
	if rows == nil {
		n = len(codes)
	}
	w.gr.gids = growU32(w.gr.gids, n)
	gids, gid := w.gr.gids, &d.gid
	if rows == nil {
		for i, c := range codes {
			gids[i] = gid[c]
		}
		return gids
	}
	for k, i := range rows {
		gids[k] = gid[codes[i]]
	}
	return gids
}

// countCodes counts the selected rows (nil: every row) per code, round-robin over
// the lanes.
func countCodes(cnt *[denseLanes][256]uint32, codes []uint8, rows []uint32) {
	c0, c1, c2, c3 := &cnt[0], &cnt[1], &cnt[2], &cnt[3]
	if rows == nil {
		i := 0
		for ; i+4 <= len(codes); i += 4 {
			r := codes[i : i+4 : i+4]
			c0[r[0]]++
			c1[r[1]]++
			c2[r[2]]++
			c3[r[3]]++
		}
		for _, c := range codes[i:] {
			c0[c]++
		}
		return
	}
	k := 0
	for ; k+4 <= len(rows); k += 4 {
		r := rows[k : k+4 : k+4]
		c0[codes[r[0]]]++
		c1[codes[r[1]]]++
		c2[codes[r[2]]]++
		c3[codes[r[3]]]++
	}
	for _, i := range rows[k:] {
		c0[codes[i]]++
	}
}

// sumCodes counts the selected rows (nil: every row) and adds their values per
// code, round-robin over the lanes.
func sumCodes[V float64 | uint8 | uint16 | uint32, S float64 | uint64](cnt *[denseLanes][256]uint32, sum *[denseLanes][256]S, codes []uint8, vals []V, rows []uint32) {
	c0, c1, c2, c3 := &cnt[0], &cnt[1], &cnt[2], &cnt[3]
	s0, s1, s2, s3 := &sum[0], &sum[1], &sum[2], &sum[3]
	if rows == nil {
		vals = vals[:len(codes)]
		i := 0
		for ; i+4 <= len(codes); i += 4 {
			r := codes[i : i+4 : i+4]
			x := vals[i : i+4 : i+4]
			c0[r[0]]++
			s0[r[0]] += S(x[0])
			c1[r[1]]++
			s1[r[1]] += S(x[1])
			c2[r[2]]++
			s2[r[2]] += S(x[2])
			c3[r[3]]++
			s3[r[3]] += S(x[3])
		}
		for ; i < len(codes); i++ {
			c0[codes[i]]++
			s0[codes[i]] += S(vals[i])
		}
		return
	}
	k := 0
	for ; k+4 <= len(rows); k += 4 {
		r := rows[k : k+4 : k+4]
		a, b, c, d := codes[r[0]], codes[r[1]], codes[r[2]], codes[r[3]]
		c0[a]++
		s0[a] += S(vals[r[0]])
		c1[b]++
		s1[b] += S(vals[r[1]])
		c2[c]++
		s2[c] += S(vals[r[2]])
		c3[d]++
		s3[d] += S(vals[r[3]])
	}
	for _, i := range rows[k:] {
		c0[codes[i]]++
		s0[codes[i]] += S(vals[i])
	}
}
