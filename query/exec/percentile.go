package exec

import (
	"math"

	"github.com/DataDog/sketches-go/ddsketch/store"

	"github.com/reef-db/reef/query/agg"
)

// Percentiles.
//
// A worker keeps, per group, counts per sketch bin (hist) over the index range of
// agg.SketchMapping, and turns them into DDSketch stores once, when it hands its
// groups over. Per block it first gathers the selected values into a dense buffer
// (independent loads, which the memory system overlaps) and computes their bin
// indexes. Unweighted values are then queued as (group, bin) pairs and added in
// batches of pendingBins: the value column streaming through the cache between two
// blocks would otherwise evict the bins of every group each block, and a batch
// touches each hot bin many times per fetch.

// pendingBins is how many (group, bin) additions a percentile queues before adding
// them (8 bytes each).
const pendingBins = 1 << 16

// negBins marks a queued addition to a group's bins of negative values.
const negBins = 1 << 31

// binAdd is a queued addition of one to bin i of group g (negBins set: of its
// negative values).
type binAdd struct {
	g uint32
	i int32
}

var (
	sketchMinValue = agg.SketchMapping.MinIndexableValue()
	sketchMaxValue = agg.SketchMapping.MaxIndexableValue()
)

func (a *acc) percentile(v *colView, rows, gids []uint32, wts []int64) error {
	// NULLs become NaN, which the sketch ignores.
	if cap(a.s.fbuf) < len(rows) {
		a.s.fbuf = make([]float64, len(rows), max(len(rows), block64k))
	}
	buf := a.s.fbuf[:len(rows)]
	switch v.kind {
	case viewInt:
		switch {
		case v.u8 != nil:
			gatherFloats(v.u8, v.base, rows, buf)
		case v.u16 != nil:
			gatherFloats(v.u16, v.base, rows, buf)
		case v.u32 != nil:
			gatherFloats(v.u32, v.base, rows, buf)
		default:
			gatherFloats(v.i64, v.base, rows, buf)
		}
	case viewFloat:
		vals := v.f64
		for k, i := range rows {
			buf[k] = vals[i]
		}
	default:
		return typeError(a.spec.fn, v, a.spec.col)
	}
	if v.valid != nil {
		for k, i := range rows {
			if v.valid[i] == 0 {
				buf[k] = math.NaN()
			}
		}
	}
	gids = gids[:len(buf)]
	if wts != nil {
		for k, x := range buf {
			a.addSketch(gids[k], x, float64(wts[rows[k]]))
		}
		return nil
	}
	if len(a.pend)+len(buf) > cap(a.pend) {
		a.flushBins()
		if cap(a.pend) < len(buf) {
			a.pend = a.s.pendBuf(len(buf))
		}
	}
	pend := a.pend
	for k, x := range buf {
		g := gids[k]
		switch {
		case g >= negBins: // beyond what a queued addition can name
			a.addSketch(g, x, 1)
		case x > sketchMinValue:
			if x <= sketchMaxValue {
				pend = append(pend, binAdd{g, int32(sketchIndex(x))})
			}
		case x < -sketchMinValue:
			if x >= -sketchMaxValue {
				pend = append(pend, binAdd{g | negBins, int32(sketchIndex(-x))})
			}
		case x == x:
			a.zero[g]++
		}
	}
	a.pend = pend
	return nil
}

// pendBuf returns an empty queue for at least n additions, reusing one of the
// scratch's.
func (s *scratch) pendBuf(n int) []binAdd {
	for len(s.pends) > 0 {
		p := s.pends[len(s.pends)-1]
		s.pends = s.pends[:len(s.pends)-1]
		if cap(p) >= n {
			return p[:0]
		}
	}
	return make([]binAdd, 0, max(pendingBins, n))
}

// keepPendBuf hands a percentile's queue back to the scratch for reuse (at most
// maxPendBufs are kept).
func (s *scratch) keepPendBuf(p []binAdd) {
	if cap(p) > 0 && len(s.pends) < maxPendBufs {
		s.pends = append(s.pends, p[:0])
	}
}

const maxPendBufs = 4

// flushBins adds the queued additions to the groups' bins.
func (a *acc) flushBins() {
	for _, p := range a.pend {
		if p.g < negBins {
			a.pos[p.g].inc(int(p.i))
		} else {
			a.neg[p.g&^negBins].inc(int(p.i))
		}
	}
	a.pend = a.pend[:0]
}

func gatherFloats[T intRaw](raw []T, base int64, rows []uint32, buf []float64) {
	buf = buf[:len(rows)]
	for k, i := range rows {
		buf[k] = float64(int64(raw[i]) + base)
	}
}

// addSketch adds x with weight w to group g's sketch, as DDSketch.AddWithCount
// would, but into the worker's own bins (no interface call per value).
func (a *acc) addSketch(g uint32, x, w float64) {
	switch {
	case x > sketchMinValue:
		if x > sketchMaxValue {
			return
		}
		a.pos[g].add(sketchIndex(x), w)
	case x < -sketchMinValue:
		if x < -sketchMaxValue {
			return
		}
		a.neg[g].add(sketchIndex(-x), w)
	case x == x:
		a.zero[g] += w
	}
}

// sketchMultiplier is agg.SketchMapping's: 1/log2(gamma), gamma computed as
// mapping.NewCubicallyInterpolatedMapping does.
var sketchMultiplier = 1 / math.Log2(math.Pow((1+agg.SketchRelativeAccuracy)/(1-agg.SketchRelativeAccuracy), 10*math.Ln2/7))

// sketchIndex is agg.SketchMapping.Index(x) for x in the indexable range, spelled
// out so that it inlines into the loops above: the exponent of x plus a cubic
// approximation of log2 of its significand, times the mapping's multiplier,
// floored. The same operations in the same order give the same index (a test
// checks it).
func sketchIndex(x float64) int {
	const (
		a = 6.0 / 35.0
		b = -3.0 / 5.0
		c = 10.0 / 7.0
	)
	bits := math.Float64bits(x)
	e := float64(int((bits&0x7ff0000000000000)>>52) - 1023)
	s := math.Float64frombits(bits&0x000fffffffffffff|0x3ff0000000000000) - 1
	index := (((a*s+b)*s+c)*s + e) * sketchMultiplier
	if index >= 0 {
		return int(index)
	}
	return int(index) - 1
}

// hist counts values per sketch bin index over a contiguous range that grows by
// doubling. Unweighted additions go to 16-bit counters (2 bytes per bin keep a
// group's bins small enough to stay in the cache), whose wrap-arounds are carried
// into wide; weighted additions go to wide directly. It becomes a DDSketch store
// once, when the worker hands over its groups.
type hist struct {
	off    int      // index of counts[0]
	counts []uint16 // unweighted additions, modulo 2^16
	wide   []float64
}

// inc adds one value to bin index.
func (h *hist) inc(index int) {
	j := index - h.off
	if uint(j) >= uint(len(h.counts)) {
		j = h.grow(index)
	}
	h.counts[j]++
	if h.counts[j] == 0 {
		h.carry(j)
	}
}

func (h *hist) carry(j int) {
	if h.wide == nil {
		h.wide = make([]float64, len(h.counts))
	}
	h.wide[j] += 1 << 16
}

// add adds weight w to bin index.
func (h *hist) add(index int, w float64) {
	j := index - h.off
	if uint(j) >= uint(len(h.counts)) {
		j = h.grow(index)
	}
	if h.wide == nil {
		h.wide = make([]float64, len(h.counts))
	}
	h.wide[j] += w
}

// grow extends the range to include index and returns its position.
func (h *hist) grow(index int) int {
	if len(h.counts) == 0 {
		h.counts = make([]uint16, 128)
		h.off = index - 64
		return 64
	}
	lo, hi := min(h.off, index), max(h.off+len(h.counts)-1, index)
	n := max(2*len(h.counts), hi-lo+1)
	// Leave room on the side that grew.
	if index < h.off {
		lo = hi - n + 1
	}
	counts := make([]uint16, n)
	copy(counts[h.off-lo:], h.counts)
	if h.wide != nil {
		wide := make([]float64, n)
		copy(wide[h.off-lo:], h.wide)
		h.wide = wide
	}
	h.counts, h.off = counts, lo
	return index - lo
}

// count is the total in bin position j.
func (h *hist) count(j int) float64 {
	c := float64(h.counts[j])
	if h.wide != nil {
		c += h.wide[j]
	}
	return c
}

// store returns the counts as a DDSketch dense store, allocated once at its final
// size (adding the extreme bins first).
func (h *hist) store() *store.DenseStore {
	s := store.NewDenseStore()
	first, last := -1, -1
	for j := range h.counts {
		if h.count(j) > 0 {
			if first < 0 {
				first = j
			}
			last = j
		}
	}
	if first < 0 {
		return s
	}
	s.AddWithCount(h.off+last, h.count(last))
	if first != last {
		s.AddWithCount(h.off+first, h.count(first))
	}
	for j := first + 1; j < last; j++ {
		if c := h.count(j); c > 0 {
			s.AddWithCount(h.off+j, c)
		}
	}
	return s
}
