package exec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/reef-db/reef/block"
)

// intView builds an int view of the given width over raw values (value = raw +
// base), with every fifth row NULL when nulls is set.
func intView(rng *rand.Rand, width, n int, base int64, maxRaw uint64, nulls bool) *colView {
	v := &colView{kind: viewInt, n: n, base: base, col: &block.Column{Type: block.TypeInt}}
	raw := make([]uint64, n)
	for i := range raw {
		raw[i] = rng.Uint64N(maxRaw + 1)
	}
	if n > 0 && rng.IntN(4) > 0 { // true statistics (they pick kernels)
		st := &v.col.Stats
		st.HasMinMax, st.MinI, st.MaxI = true, base+int64(slices.Min(raw)), base+int64(slices.Max(raw))
	}
	switch width {
	case 8:
		v.u8 = make([]uint8, n)
		for i, r := range raw {
			v.u8[i] = uint8(r)
		}
	case 16:
		v.u16 = make([]uint16, n)
		for i, r := range raw {
			v.u16[i] = uint16(r)
		}
	case 32:
		v.u32 = make([]uint32, n)
		for i, r := range raw {
			v.u32[i] = uint32(r)
		}
	default:
		v.i64 = make([]int64, n)
		for i, r := range raw {
			v.i64[i] = int64(r)
		}
	}
	if nulls {
		v.valid = make([]byte, n)
		for i := range v.valid {
			if i%5 != 0 {
				v.valid[i] = 1
			} else {
				v.nulls++
			}
		}
	}
	return v
}

// naiveSelect is the reference: the non-null rows among rows (nil: all) whose value
// is inside (or outside) [lo, hi].
func naiveSelect(v *colView, lo, hi int64, inside bool, rows []uint32) []uint32 {
	out := []uint32{}
	test := func(i uint32) {
		if v.valid != nil && v.valid[i] == 0 {
			return
		}
		x := intAt(v, int(i))
		if (x >= lo && x <= hi) == inside {
			out = append(out, i)
		}
	}
	if rows == nil {
		for i := 0; i < v.n; i++ {
			test(uint32(i))
		}
	} else {
		for _, i := range rows {
			test(i)
		}
	}
	return out
}

func TestIntTestKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for it := 0; it < 400; it++ {
		width := []int{8, 16, 32, 64}[it%4]
		n := []int{0, 1, 7, 31, 33, 1000, 1024, 1025, 3000, 5000}[rng.IntN(10)]
		maxRaw := map[int]uint64{8: math.MaxUint8, 16: math.MaxUint16, 32: math.MaxUint32, 64: 1 << 40}[width]
		if rng.IntN(2) == 0 {
			maxRaw = uint64(rng.IntN(40)) // few distinct values: dense and sparse matches
		}
		base := []int64{0, -1000, 1 << 40, math.MinInt64 / 2}[rng.IntN(4)]
		v := intView(rng, width, n, base, maxRaw, rng.IntN(3) == 0)
		// Intervals: a single value (equality), a range, empty, beyond the raw width.
		var lo, hi int64
		switch rng.IntN(4) {
		case 0, 1:
			lo = base + int64(rng.Uint64N(maxRaw+1))
			hi = lo
		case 2:
			lo = base + int64(rng.Uint64N(maxRaw+1))
			hi = lo + int64(rng.IntN(30))
		default:
			lo, hi = base-5, base-1
			if rng.IntN(2) == 0 {
				lo, hi = base+int64(maxRaw)+1, math.MaxInt64
			}
		}
		inside := rng.IntN(4) > 0
		name := fmt.Sprintf("%d/u%d/n=%d/[%d,%d]/inside=%v", it, width, n, lo, hi, inside)
		tt := intTest{v: v, lo: lo, hi: hi, inside: inside}
		got := tt.selectAll(make([]uint32, n))
		if want := naiveSelect(v, lo, hi, inside, nil); !slices.Equal(got, want) {
			t.Fatalf("%s: selectAll got %d rows %v…, want %d rows %v…", name, len(got), head(got), len(want), head(want))
		}
		// refine over a random subset.
		rows := []uint32{} // not nil: nil means every row to naiveSelect
		for i := 0; i < n; i++ {
			if rng.IntN(3) == 0 {
				rows = append(rows, uint32(i))
			}
		}
		want := naiveSelect(v, lo, hi, inside, rows)
		if got := tt.refine(slices.Clone(rows)); !slices.Equal(got, want) {
			t.Fatalf("%s: refine got %v…, want %v…", name, head(got), head(want))
		}
	}
}

func head(s []uint32) []uint32 { return s[:min(len(s), 8)] }

// TestZeroLanes checks the SWAR equality against a per-lane comparison, including
// values with their high bit set and words with several matches.
func TestZeroLanes(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for it := 0; it < 20000; it++ {
		x := rng.Uint64()
		if it%3 == 0 { // plant matches
			x &= 0x00ff00ff00ff00ff
		}
		l8, l16 := uint8(rng.Uint32()), uint16(rng.Uint32())
		if it%2 == 0 {
			l8, l16 = uint8(x>>8), uint16(x>>16)
		}
		m8 := zeroLanes8(x ^ uint64(l8)*0x0101010101010101)
		for j := 0; j < 8; j++ {
			if want := uint8(x>>(8*j)) == l8; (m8>>(8*j+7)&1 == 1) != want {
				t.Fatalf("zeroLanes8(%#x, %#x) lane %d: got %#x", x, l8, j, m8)
			}
		}
		m16 := zeroLanes16(x ^ uint64(l16)*0x0001000100010001)
		for j := 0; j < 4; j++ {
			if want := uint16(x>>(16*j)) == l16; (m16>>(16*j+15)&1 == 1) != want {
				t.Fatalf("zeroLanes16(%#x, %#x) lane %d: got %#x", x, l16, j, m16)
			}
		}
		// Narrow: values and literal below half the lane's range.
		xn, ln8, ln16 := x&0x7f7f7f7f7f7f7f7f, l8&0x7f, l16&0x7fff
		m8 = zeroLanesNarrow8(xn ^ uint64(ln8)*0x0101010101010101)
		m16 = zeroLanesNarrow16(xn ^ uint64(ln16)*0x0001000100010001)
		for j := 0; j < 8; j++ {
			if want := uint8(xn>>(8*j)) == ln8; (m8>>(8*j+7)&1 == 1) != want {
				t.Fatalf("zeroLanesNarrow8(%#x, %#x) lane %d: got %#x", xn, ln8, j, m8)
			}
		}
		for j := 0; j < 4; j++ {
			if want := uint16(xn>>(16*j)) == ln16; (m16>>(16*j+15)&1 == 1) != want {
				t.Fatalf("zeroLanesNarrow16(%#x, %#x) lane %d: got %#x", xn, ln16, j, m16)
			}
		}
	}
}

func TestNarrowRange(t *testing.T) {
	st := block.ColumnStats{HasMinMax: true, MinI: 10, MaxI: 20}
	cases := []struct {
		lo, hi     int64
		inside     bool
		want       result
		wlo, whi   int64
		noStatsToo bool
	}{
		{0, 5, true, rNone, 0, 0, false},
		{0, 5, false, rAll, 0, 0, false},
		{0, 30, true, rAll, 0, 0, false},
		{10, 20, false, rNone, 0, 0, false},
		{12, 30, true, rMask, 12, 20, false},
		{5, 12, false, rMask, 10, 12, false},
		{7, 3, true, rNone, 0, 0, true},
		{7, 3, false, rAll, 0, 0, true},
	}
	for _, c := range cases {
		r, lo, hi := narrowRange(st, c.lo, c.hi, c.inside)
		if r != c.want || (r == rMask && (lo != c.wlo || hi != c.whi)) {
			t.Errorf("narrowRange([%d,%d], inside=%v) = %v [%d,%d], want %v [%d,%d]", c.lo, c.hi, c.inside, r, lo, hi, c.want, c.wlo, c.whi)
		}
		if c.noStatsToo {
			if r, _, _ := narrowRange(block.ColumnStats{}, c.lo, c.hi, c.inside); r != c.want {
				t.Errorf("narrowRange without stats([%d,%d], inside=%v) = %v, want %v", c.lo, c.hi, c.inside, r, c.want)
			}
		}
	}
}

func BenchmarkSelectEqual16(b *testing.B) {
	for _, pct := range []int{1, 3, 10, 50, 90} {
		rng := rand.New(rand.NewPCG(1, uint64(pct)))
		raw := make([]uint16, block.MaxRows)
		for i := range raw {
			if rng.IntN(100) < pct {
				raw[i] = 300
			} else {
				raw[i] = uint16(rng.IntN(2) * 204)
			}
		}
		sel := make([]uint32, len(raw))
		b.Run(fmt.Sprintf("%d%%", pct), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				selectEqual(raw, 300, true, sel, swarEqual16)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(raw)), "ns/row")
		})
	}
}
