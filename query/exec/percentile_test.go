package exec

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/plan"
)

// TestSketchIndex checks the inlined index against the mapping's own, over the
// whole indexable range and around bin boundaries.
func TestSketchIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	check := func(x float64) {
		t.Helper()
		if x <= sketchMinValue || x > sketchMaxValue {
			return
		}
		if got, want := sketchIndex(x), agg.SketchMapping.Index(x); got != want {
			t.Fatalf("sketchIndex(%v) = %d, want %d", x, got, want)
		}
	}
	for _, x := range []float64{sketchMinValue, sketchMaxValue, 1, 2, 0.5, 1e-300, 1e300, 3.14, 99.99, 1234.5} {
		check(x)
		check(math.Nextafter(x, 0))
		check(math.Nextafter(x, math.Inf(1)))
	}
	for i := 0; i < 50000; i++ {
		// Uniform in the exponent, then uniform bits of the significand.
		check(math.Ldexp(1+rng.Float64(), rng.IntN(2040)-1020))
		// Values near each bin's lower bound.
		idx := rng.IntN(2000) - 1000
		lb := agg.SketchMapping.LowerBound(idx)
		check(lb)
		check(math.Nextafter(lb, 0))
		check(math.Nextafter(lb, math.Inf(1)))
	}
}

// TestHistCounts checks the 16-bit counters' carries and weighted additions.
func TestHistCounts(t *testing.T) {
	var h hist
	const n = 3*(1<<16) + 5
	for i := 0; i < n; i++ {
		h.inc(100)
	}
	h.inc(40) // grows to the left
	h.add(100, 2.5)
	h.add(300, 7) // grows to the right
	h.inc(300)
	want := map[int]float64{100: n + 2.5, 40: 1, 300: 8}
	s := h.store()
	if got := s.TotalCount(); got != n+2.5+1+8 {
		t.Errorf("total %v, want %v", got, n+2.5+1+8)
	}
	for idx, c := range want {
		if got := h.count(idx - h.off); got != c {
			t.Errorf("bin %d: %v, want %v", idx, got, c)
		}
	}
	lo, _ := s.MinIndex()
	hi, _ := s.MaxIndex()
	if lo != 40 || hi != 300 {
		t.Errorf("store spans [%d, %d], want [40, 300]", lo, hi)
	}
}

// TestPercentileQueue adds more values than one queue holds, across groups and
// signs, and compares each group's sketch with one built value by value.
func TestPercentileQueue(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	s := new(scratch)
	a := acc{spec: aggSpec{fn: plan.AggPercentile, q: 0.5}, s: s}
	const groups = 5
	for g := 0; g <= groups; g++ {
		a.grow()
	}
	want := make([]*agg.PercentileState, groups+1)
	for g := range want {
		want[g] = agg.NewPercentileState(0.5)
	}
	v := &colView{kind: viewFloat}
	for round := 0; round < 5; round++ {
		n := 30000
		v.f64 = make([]float64, n)
		v.n = n
		rows := make([]uint32, n)
		gids := make([]uint32, n)
		for i := range v.f64 {
			x := math.Exp(rng.NormFloat64() * 3)
			switch rng.IntN(10) {
			case 0:
				x = -x
			case 1:
				x = 0
			}
			v.f64[i], rows[i], gids[i] = x, uint32(i), uint32(1+rng.IntN(groups))
			want[gids[i]].Add(x, 1)
		}
		if err := a.percentile(v, rows, gids, nil); err != nil {
			t.Fatal(err)
		}
	}
	out := make([][]agg.State, groups)
	for i := range out {
		out[i] = make([]agg.State, 1)
	}
	a.fillStates(out, 0)
	for g := 1; g <= groups; g++ {
		got := out[g-1][0].(*agg.PercentileState)
		for _, q := range []float64{0, 0.1, 0.5, 0.9, 0.99, 1} {
			x, _ := got.Sketch.GetValueAtQuantile(q)
			y, _ := want[g].Sketch.GetValueAtQuantile(q)
			if x != y {
				t.Errorf("group %d quantile %v: %v, want %v", g, q, x, y)
			}
		}
		if got.Sketch.GetCount() != want[g].Sketch.GetCount() {
			t.Errorf("group %d: count %v, want %v", g, got.Sketch.GetCount(), want[g].Sketch.GetCount())
		}
	}
}
