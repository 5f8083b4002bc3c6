package exec

import (
	"fmt"
	"math"
	"strings"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/axiomhq/hyperloglog"

	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/plan"
)

// acc holds one aggregate's accumulators for every group of a worker, as arrays
// indexed by gid. Only the arrays its function needs are used.
type acc struct {
	spec aggSpec
	n    []int64   // count; avg: sum of weights
	isum []int64   // sum: integer part
	fsum []float64 // sum: float part; avg: weighted sum
	flag []uint8   // sum: seen|float; min/max: hasInt|hasFloat|hasString
	iv   []int64   // min/max of ints
	fv   []float64 // min/max of floats
	sv   []string  // min/max of strings (pointing into blocks until partial())
	pos  []hist    // percentile: bins of positive values
	neg  []hist    // percentile: bins of negative values, by magnitude
	zero []float64
	pend []binAdd // percentile: queued bin additions (see percentile.go)
	hll  []*hyperloglog.Sketch

	s    *scratch // the worker's buffers
	seen pairSet  // count_distinct: (group, value) pairs already added
}

const (
	fSeen  = 1 // sum: a value was added
	fFloat = 2 // sum: the result is a float

	fInt = 1 // min/max: iv is set
	fFlt = 2 // min/max: fv is set
	fStr = 4 // min/max: sv is set
)

// grow adds accumulators for one more group.
func (a *acc) grow() {
	switch a.spec.fn {
	case plan.AggCount:
		a.n = append(a.n, 0)
	case plan.AggSum:
		a.isum = append(a.isum, 0)
		a.fsum = append(a.fsum, 0)
		a.flag = append(a.flag, 0)
	case plan.AggAvg:
		a.n = append(a.n, 0)
		a.fsum = append(a.fsum, 0)
	case plan.AggMin, plan.AggMax:
		a.flag = append(a.flag, 0)
		a.iv = append(a.iv, 0)
		a.fv = append(a.fv, 0)
		a.sv = append(a.sv, "")
	case plan.AggPercentile:
		a.pos = append(a.pos, hist{})
		a.neg = append(a.neg, hist{})
		a.zero = append(a.zero, 0)
	case plan.AggCountDistinct:
		a.hll = append(a.hll, nil)
	}
}

// fillStates sets out[g-1][j] to the state of group g, for every group 1..len(out).
// States of one function are allocated together. Strings are cloned.
func (a *acc) fillStates(out [][]agg.State, j int) {
	switch a.spec.fn {
	case plan.AggCount:
		slab := make([]agg.CountState, len(out))
		for i := range out {
			slab[i].N = a.n[i+1]
			out[i][j] = &slab[i]
		}
	case plan.AggSum:
		slab := make([]agg.SumState, len(out))
		for i := range out {
			f := a.flag[i+1]
			slab[i] = agg.SumState{Int: a.isum[i+1], Float: a.fsum[i+1], Seen: f&fSeen != 0, IsFloat: f&fFloat != 0}
			out[i][j] = &slab[i]
		}
	case plan.AggAvg:
		slab := make([]agg.AvgState, len(out))
		for i := range out {
			slab[i] = agg.AvgState{Sum: a.fsum[i+1], Count: a.n[i+1]}
			out[i][j] = &slab[i]
		}
	case plan.AggMin:
		slab := make([]agg.MinState, len(out))
		for i := range out {
			a.minMaxValues(i+1, slab[i].Add)
			out[i][j] = &slab[i]
		}
	case plan.AggMax:
		slab := make([]agg.MaxState, len(out))
		for i := range out {
			a.minMaxValues(i+1, slab[i].Add)
			out[i][j] = &slab[i]
		}
	case plan.AggPercentile:
		a.flushBins()
		slab := make([]agg.PercentileState, len(out))
		for i := range out {
			g := i + 1
			sk := ddsketch.NewDDSketch(agg.SketchMapping, a.pos[g].store(), a.neg[g].store())
			if z := a.zero[g]; z > 0 {
				_ = sk.AddWithCount(0, z)
			}
			slab[i] = agg.PercentileState{Q: a.spec.q, Sketch: sk}
			out[i][j] = &slab[i]
		}
	case plan.AggCountDistinct:
		slab := make([]agg.DistinctState, len(out))
		for i := range out {
			h := a.hll[i+1]
			if h == nil {
				h = hyperloglog.New14()
			}
			slab[i].HLL = h
			out[i][j] = &slab[i]
		}
	}
}

// minMaxValues passes group g's candidate minimum (or maximum) values to add.
func (a *acc) minMaxValues(g int, add func(plan.Value)) {
	f := a.flag[g]
	if f&fInt != 0 {
		add(plan.Int(a.iv[g]))
	}
	if f&fFlt != 0 {
		add(plan.Float(a.fv[g]))
	}
	if f&fStr != 0 {
		add(plan.String(strings.Clone(a.sv[g])))
	}
}

// update folds the selected rows (rows, with their gids) of the current block into
// the accumulators. rows nil means every row (ident is 0, 1, 2, … for them). wts
// holds each row's weight, or is nil when every weight is 1.
func (a *acc) update(vs *views, rows, ident, gids []uint32, wts []int64) error {
	all := rows == nil
	if all {
		rows = ident[:len(gids)]
	}
	if a.spec.fn == plan.AggCount && a.spec.col == "" {
		countRows(a.n, rows, gids, wts, nil)
		return nil
	}
	v, err := vs.get(a.spec.col)
	if err != nil {
		return err
	}
	if v.allNull() {
		return nil
	}
	if all && a.spec.fn == plan.AggAvg && v.kind == viewFloat && v.valid == nil && wts == nil {
		avgAllFloats(a, v.f64, gids)
		return nil
	}
	switch a.spec.fn {
	case plan.AggCount:
		countRows(a.n, rows, gids, wts, v.valid)
	case plan.AggSum:
		return a.sum(v, rows, gids, wts)
	case plan.AggAvg:
		return a.avg(v, rows, gids, wts)
	case plan.AggMin, plan.AggMax:
		return a.minMax(v, rows, gids)
	case plan.AggPercentile:
		return a.percentile(v, rows, gids, wts)
	case plan.AggCountDistinct:
		return a.distinct(v, rows, gids)
	}
	return nil
}

func typeError(fn plan.AggFunc, v *colView, col string) error {
	return fmt.Errorf("cannot compute %s of %s column %q", fn, v.col.Type, col)
}

func countRows(n []int64, rows, gids []uint32, wts []int64, valid []byte) {
	gids = gids[:len(rows)]
	switch {
	case wts == nil && valid == nil:
		for _, g := range gids {
			n[g]++
		}
	case wts == nil:
		for k, i := range rows {
			n[gids[k]] += int64(valid[i])
		}
	case valid == nil:
		for k, i := range rows {
			n[gids[k]] += wts[i]
		}
	default:
		for k, i := range rows {
			n[gids[k]] += wts[i] * int64(valid[i])
		}
	}
}

type intRaw interface {
	~uint8 | ~uint16 | ~uint32 | ~int64
}

func (a *acc) sum(v *colView, rows, gids []uint32, wts []int64) error {
	switch v.kind {
	case viewInt:
		switch {
		case v.u8 != nil:
			sumInts(a, v.u8, v.base, v.valid, rows, gids, wts)
		case v.u16 != nil:
			sumInts(a, v.u16, v.base, v.valid, rows, gids, wts)
		case v.u32 != nil:
			sumInts(a, v.u32, v.base, v.valid, rows, gids, wts)
		default:
			sumInts(a, v.i64, v.base, v.valid, rows, gids, wts)
		}
	case viewFloat:
		vals, valid := v.f64, v.valid
		for k, i := range rows {
			if valid != nil && valid[i] == 0 {
				continue
			}
			g := gids[k]
			x := vals[i]
			if wts != nil {
				x *= float64(wts[i])
			}
			a.fsum[g] += x
			a.flag[g] |= fSeen | fFloat
		}
	default:
		return typeError(a.spec.fn, v, a.spec.col)
	}
	return nil
}

// sumInts adds value*weight per group, exactly while it fits an int64 and spilling
// the excess into the float part otherwise (see agg.SumState).
func sumInts[T intRaw](a *acc, raw []T, base int64, valid []byte, rows, gids []uint32, wts []int64) {
	isum, fsum, flag := a.isum, a.fsum, a.flag
	for k, i := range rows {
		if valid != nil && valid[i] == 0 {
			continue
		}
		g := gids[k]
		x := int64(raw[i]) + base
		w := int64(1)
		ok := true
		if wts != nil {
			w = wts[i]
			x, ok = agg.MulInt(x, w)
		}
		if ok {
			var s int64
			if s, ok = agg.AddInt(isum[g], x); ok {
				isum[g] = s
				flag[g] |= fSeen
				continue
			}
		}
		fsum[g] += float64(int64(raw[i])+base) * float64(w)
		flag[g] |= fSeen | fFloat
	}
}

func (a *acc) avg(v *colView, rows, gids []uint32, wts []int64) error {
	switch v.kind {
	case viewInt:
		switch {
		case v.u8 != nil:
			avgInts(a, v.u8, v.base, v.valid, rows, gids, wts)
		case v.u16 != nil:
			avgInts(a, v.u16, v.base, v.valid, rows, gids, wts)
		case v.u32 != nil:
			avgInts(a, v.u32, v.base, v.valid, rows, gids, wts)
		default:
			avgInts(a, v.i64, v.base, v.valid, rows, gids, wts)
		}
	case viewFloat:
		avgFloats(a, v.f64, v.valid, rows, gids, wts)
	default:
		return typeError(a.spec.fn, v, a.spec.col)
	}
	return nil
}

func avgInts[T intRaw](a *acc, raw []T, base int64, valid []byte, rows, gids []uint32, wts []int64) {
	n, sum := a.n, a.fsum
	for k, i := range rows {
		if valid != nil && valid[i] == 0 {
			continue
		}
		g := gids[k]
		x := float64(int64(raw[i]) + base)
		if wts != nil {
			w := wts[i]
			sum[g] += x * float64(w)
			n[g] += w
		} else {
			sum[g] += x
			n[g]++
		}
	}
}

// avgAllFloats is avgFloats over every row, without NULLs or weights.
func avgAllFloats(a *acc, vals []float64, gids []uint32) {
	n, sum := a.n, a.fsum
	vals = vals[:len(gids)]
	for i, g := range gids {
		sum[g] += vals[i]
		n[g]++
	}
}

func avgFloats(a *acc, vals []float64, valid []byte, rows, gids []uint32, wts []int64) {
	n, sum := a.n, a.fsum
	gids = gids[:len(rows)]
	if valid == nil && wts == nil {
		for k, i := range rows {
			g := gids[k]
			sum[g] += vals[i]
			n[g]++
		}
		return
	}
	for k, i := range rows {
		if valid != nil && valid[i] == 0 {
			continue
		}
		g := gids[k]
		w := int64(1)
		if wts != nil {
			w = wts[i]
		}
		sum[g] += vals[i] * float64(w)
		n[g] += w
	}
}

func (a *acc) minMax(v *colView, rows, gids []uint32) error {
	isMin := a.spec.fn == plan.AggMin
	switch v.kind {
	case viewInt:
		switch {
		case v.u8 != nil:
			minMaxInts(a, v.u8, v.base, v.valid, rows, gids, isMin)
		case v.u16 != nil:
			minMaxInts(a, v.u16, v.base, v.valid, rows, gids, isMin)
		case v.u32 != nil:
			minMaxInts(a, v.u32, v.base, v.valid, rows, gids, isMin)
		default:
			minMaxInts(a, v.i64, v.base, v.valid, rows, gids, isMin)
		}
	case viewFloat:
		vals, valid, fv, flag := v.f64, v.valid, a.fv, a.flag
		for k, i := range rows {
			x := vals[i]
			if (valid != nil && valid[i] == 0) || x != x {
				continue
			}
			g := gids[k]
			if flag[g]&fFlt == 0 || (isMin && x < fv[g]) || (!isMin && x > fv[g]) {
				fv[g] = x
				flag[g] |= fFlt
			}
		}
	case viewDict, viewPlain:
		valid, sv, flag := v.valid, a.sv, a.flag
		for k, i := range rows {
			if valid != nil && valid[i] == 0 {
				continue
			}
			var s string
			if v.kind == viewDict {
				s = v.dict.Value(codeAt(v, int(i)))
			} else {
				s = v.plain.Value(int(i))
			}
			g := gids[k]
			if flag[g]&fStr == 0 || (isMin && s < sv[g]) || (!isMin && s > sv[g]) {
				sv[g] = s
				flag[g] |= fStr
			}
		}
	default:
		return typeError(a.spec.fn, v, a.spec.col)
	}
	return nil
}

func minMaxInts[T intRaw](a *acc, raw []T, base int64, valid []byte, rows, gids []uint32, isMin bool) {
	iv, flag := a.iv, a.flag
	for k, i := range rows {
		if valid != nil && valid[i] == 0 {
			continue
		}
		g := gids[k]
		x := int64(raw[i]) + base
		if flag[g]&fInt == 0 || (isMin && x < iv[g]) || (!isMin && x > iv[g]) {
			iv[g] = x
			flag[g] |= fInt
		}
	}
}

// codeAt is the dictionary code of row i of a viewDict.
func codeAt(v *colView, i int) int {
	switch {
	case v.c8 != nil:
		return int(v.c8[i])
	case v.c16 != nil:
		return int(v.c16[i])
	}
	return int(v.c32[i])
}

func (a *acc) distinct(v *colView, rows, gids []uint32) error {
	valid := v.valid
	if len(a.seen.used) > maxSeenPairs {
		a.seen.reset()
	}
	switch v.kind {
	case viewInt:
		for k, i := range rows {
			if valid != nil && valid[i] == 0 {
				continue
			}
			a.addHashOnce(gids[k], agg.HashInt(intAt(v, int(i))))
		}
	case viewFloat:
		for k, i := range rows {
			if valid != nil && valid[i] == 0 {
				continue
			}
			a.addHashOnce(gids[k], agg.HashFloat(v.f64[i]))
		}
	case viewDict:
		h := a.dictHashes(v)
		// last[code] is gid+1 of the code's previous row: a cheap filter before the
		// pair set, exact when every code belongs to one group.
		last := growU32(a.s.stamps, len(h))
		clear(last)
		a.s.stamps = last
		for k, i := range rows {
			if valid != nil && valid[i] == 0 {
				continue
			}
			c, g := codeAt(v, int(i)), gids[k]
			if last[c] == g+1 {
				continue
			}
			last[c] = g + 1
			a.addHashOnce(g, h[c])
		}
	case viewPlain:
		for k, i := range rows {
			if valid != nil && valid[i] == 0 {
				continue
			}
			a.addHashOnce(gids[k], agg.HashString(v.plain.Value(int(i))))
		}
	case viewSet:
		// count_distinct of a set column counts distinct elements.
		el := v.elem
		var h []uint64
		if el.kind == viewDict {
			h = a.dictHashes(el)
		}
		for k, i := range rows {
			if valid != nil && valid[i] == 0 {
				continue
			}
			for j := v.offs[i]; j < v.offs[i+1]; j++ {
				if h != nil {
					a.addHashOnce(gids[k], h[codeAt(el, int(j))])
				} else {
					a.addHashOnce(gids[k], agg.HashString(el.plain.Value(int(j))))
				}
			}
		}
	}
	return nil
}

// dictHashes hashes every dictionary entry of v once.
func (a *acc) dictHashes(v *colView) []uint64 {
	nd := v.dictLen()
	if cap(a.s.hashes) < nd {
		a.s.hashes = make([]uint64, nd)
	}
	h := a.s.hashes[:nd]
	for k := range h {
		h[k] = agg.HashString(v.dict.Value(k))
	}
	return h
}

// maxSeenPairs bounds the pairs a count_distinct remembers (8 MiB); past it the
// memory starts over, which only costs speed.
const maxSeenPairs = 1 << 20

// addHashOnce adds hash h to group g's sketch unless the worker already added the
// pair: inserting into a sparse HyperLogLog costs far more than the probe, and most
// rows repeat a pair seen before.
func (a *acc) addHashOnce(g uint32, h uint64) {
	if a.seen.add(h ^ (uint64(g)+1)*0x9e3779b97f4a7c15) {
		a.addHash(g, h)
	}
}

func (a *acc) addHash(g uint32, h uint64) {
	s := a.hll[g]
	if s == nil {
		s = hyperloglog.New14()
		a.hll[g] = s
	}
	s.InsertHash(h)
}

// weights fills wts with each row's weight from the sample_rate column (1 for NULL
// or < 1), or returns nil when the block has no such column.
func weights(v *colView, wts []int64) []int64 {
	if v.allNull() || (v.kind != viewInt && v.kind != viewFloat) {
		return nil
	}
	wts = wts[:v.n]
	for i := range wts {
		if v.valid != nil && v.valid[i] == 0 {
			wts[i] = 1
			continue
		}
		if v.kind == viewInt {
			wts[i] = agg.Weight(intAt(v, i))
		} else {
			wts[i] = agg.Weight(clampInt(math.Floor(v.f64[i])))
		}
	}
	return wts
}

// pairSet is a set of 64-bit keys with open addressing. Two pairs may share a key with probability
// about 2^-64 per pair; one of them is then not counted, which is far below a
// HyperLogLog's own error.
type pairSet struct {
	slots []uint64 // 0: empty (key 0 is stored as 1)
	used  []uint32
}

func (s *pairSet) reset() {
	if len(s.used) > len(s.slots)/4 {
		clear(s.slots)
	} else {
		for _, i := range s.used {
			s.slots[i] = 0
		}
	}
	s.used = s.used[:0]
}

// add reports whether k was not in the set, adding it.
func (s *pairSet) add(k uint64) bool {
	if k == 0 {
		k = 1
	}
	if 2*(len(s.used)+1) > len(s.slots) {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := (k ^ k>>31) & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case k:
			return false
		case 0:
			s.slots[i] = k
			s.used = append(s.used, uint32(i))
			return true
		}
	}
}

func (s *pairSet) grow() {
	old := s.slots
	s.slots = make([]uint64, max(1024, 2*len(old)))
	s.used = s.used[:0]
	mask := uint64(len(s.slots) - 1)
	for _, k := range old {
		if k == 0 {
			continue
		}
		i := (k ^ k>>31) & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = k
		s.used = append(s.used, uint32(i))
	}
}
