package exec

import (
	"math"
	"math/bits"

	"github.com/reef-db/reef/block"
)

// Selection vectors straight from the filter.
//
// Most filters are one comparison or a conjunction of a few. selectRows turns them
// into the ascending list of selected row indexes without a byte mask where it can:
// an integer comparison runs on the raw narrowed values straight into the list, a
// string predicate over 8- or 16-bit dictionary codes maps each row's code through
// its per-entry table into the list, and each further conjunct of an AND only tests
// the rows still selected. Any other filter is evaluated into a mask (eval) and
// converted (selection).

// selectRows evaluates filter f over the current block. all reports that every row
// passes; otherwise rows holds the passing rows (possibly none) in sel's memory,
// which must have room for every row of the block.
func (e *evaluator) selectRows(f *node, sel []uint32) (rows []uint32, all bool, err error) {
	if f.kind == nAnd {
		all = true
		for _, k := range f.kids {
			if all {
				rows, all, err = e.selectRows(k, sel)
			} else {
				rows, err = e.refine(k, rows)
			}
			if err != nil {
				return nil, false, err
			}
			if !all && len(rows) == 0 {
				return rows, false, nil
			}
		}
		return rows, all, nil
	}
	t, r, ok, err := e.intTest(f)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		if r, err = e.evalLeaf(f); err != nil {
			return nil, false, err
		}
	}
	switch {
	case r == rNone:
		return sel[:0], false, nil
	case r == rAll && (t.v == nil || t.v.valid == nil):
		return nil, true, nil
	case r == rAll: // every non-null row
		return selection(t.v.valid, sel), false, nil
	case ok:
		return t.selectAll(sel), false, nil
	case r == rTable:
		v := e.tableView
		sel = selectCodes(v, e.table, sel[:v.n])
		if v.valid != nil {
			sel = keepMarked(sel, v.valid)
		}
		return sel, false, nil
	}
	return selection(e.mask(0, e.vs.blk.Rows), sel), false, nil
}

// evalLeaf evaluates f into the depth-0 mask; a dictionary predicate at the top
// may answer rTable instead.
func (e *evaluator) evalLeaf(f *node) (result, error) {
	e.wantTable = f.kind != nAnd && f.kind != nOr
	r, err := e.eval(f, e.mask(0, e.vs.blk.Rows), 0)
	e.wantTable = false
	return r, err
}

// refine keeps the rows (ascending) that pass f, in place.
func (e *evaluator) refine(f *node, rows []uint32) ([]uint32, error) {
	if f.kind == nAnd {
		for _, k := range f.kids {
			var err error
			if rows, err = e.refine(k, rows); err != nil || len(rows) == 0 {
				return rows, err
			}
		}
		return rows, nil
	}
	t, r, ok, err := e.intTest(f)
	if err != nil {
		return nil, err
	}
	if ok {
		switch r {
		case rNone:
			return rows[:0], nil
		case rAll:
			if t.v == nil || t.v.valid == nil {
				return rows, nil
			}
			return keepMarked(rows, t.v.valid), nil
		}
		return t.refine(rows), nil
	}
	switch r, err = e.evalLeaf(f); {
	case err != nil || r == rNone:
		return rows[:0], err
	case r == rAll:
		return rows, nil
	case r == rTable:
		v := e.tableView
		rows = refineCodes(v, e.table, rows)
		if v.valid != nil {
			rows = keepMarked(rows, v.valid)
		}
		return rows, nil
	}
	return keepMarked(rows, e.mask(0, e.vs.blk.Rows)), nil
}

// selectCodes returns the rows whose code (8 or 16 bits) maps to 1 in table t
// (sized for every code), branch-free, in sel's memory.
func selectCodes(v *colView, t []byte, sel []uint32) []uint32 {
	k := 0
	if v.c8 != nil {
		tt := (*[1 << 8]byte)(t)
		for i, c := range v.c8 {
			sel[k] = uint32(i)
			k += int(tt[c])
		}
		return sel[:k]
	}
	tt := (*[1 << 16]byte)(t)
	for i, c := range v.c16 {
		sel[k] = uint32(i)
		k += int(tt[c])
	}
	return sel[:k]
}

// refineCodes keeps the rows (in place) whose code maps to 1 in table t.
func refineCodes(v *colView, t []byte, rows []uint32) []uint32 {
	k := 0
	if v.c8 != nil {
		tt := (*[1 << 8]byte)(t)
		for _, i := range rows {
			rows[k] = i
			k += int(tt[v.c8[i]])
		}
		return rows[:k]
	}
	tt := (*[1 << 16]byte)(t)
	for _, i := range rows {
		rows[k] = i
		k += int(tt[v.c16[i]])
	}
	return rows[:k]
}

// keepMarked keeps the rows whose byte in mask is 1, in place.
func keepMarked(rows []uint32, mask []byte) []uint32 {
	k := 0
	for _, i := range rows {
		rows[k] = i
		k += int(mask[i])
	}
	return rows[:k]
}

// intTest is an integer comparison (or time range) prepared for the current block:
// a non-null row passes when its value is inside [lo, hi] (or outside, when
// !inside).
type intTest struct {
	v      *colView
	lo, hi int64
	inside bool
}

// intTest prepares leaf f when it compares an int column of the current block.
// verdict is rNone (no row passes), rAll (every non-null row passes) or rMask (the
// values must be tested). ok is false when f is not such a leaf; the caller then
// evaluates it into a mask. The column's values are not read when its statistics
// decide (t.v is then nil unless the column has NULLs).
func (e *evaluator) intTest(f *node) (t intTest, verdict result, ok bool, err error) {
	if f.kind != nCmp && f.kind != nIntRange {
		return t, rNone, false, nil
	}
	rows := e.vs.blk.Rows
	c := e.vs.blk.Column(f.col)
	if c == nil || c.Arr == nil || c.Type != block.TypeInt {
		return t, rNone, false, nil
	}
	if c.Stats.Nulls >= rows {
		return t, rNone, true, nil
	}
	lo, hi, inside := f.lo, f.hi, true
	if f.kind == nCmp {
		var numeric bool
		if lo, hi, inside, numeric = intInterval(f.op, f.lit); !numeric {
			return t, rNone, true, nil
		}
	}
	verdict, lo, hi = narrowRange(c.Stats, lo, hi, inside)
	if verdict == rNone || (verdict == rAll && c.Stats.Nulls == 0) {
		return t, verdict, true, nil
	}
	v, err := e.vs.get(f.col)
	if err != nil || v.kind != viewInt {
		return t, rNone, false, err
	}
	if v.allNull() {
		return t, rNone, true, nil
	}
	return intTest{v: v, lo: lo, hi: hi, inside: inside}, verdict, true, nil
}

// narrowRange decides "x inside (or outside) [lo, hi]" from an int column's
// statistics when it can: rNone (no value passes) or rAll (every non-null value
// does). Otherwise it returns rMask and the interval clipped to the column's range.
func narrowRange(st block.ColumnStats, lo, hi int64, inside bool) (result, int64, int64) {
	empty, full := lo > hi, false
	if st.HasMinMax && !empty {
		lo, hi = max(lo, st.MinI), min(hi, st.MaxI)
		empty = lo > hi
		full = lo == st.MinI && hi == st.MaxI
	}
	switch {
	case empty && inside, full && !inside:
		return rNone, lo, hi
	case empty, full:
		return rAll, lo, hi
	}
	return rMask, lo, hi
}

// rawInterval turns "lo <= value <= hi" over int view v into "raw - l <= w" over its
// raw values, computed in uint64 with wrap-around (value = raw + base). empty
// reports that no raw value of the view's width can be in the interval.
func rawInterval(v *colView, lo, hi int64) (l, w uint64, empty bool) {
	var maxRaw int64
	switch {
	case v.u8 != nil:
		maxRaw = math.MaxUint8
	case v.u16 != nil:
		maxRaw = math.MaxUint16
	case v.u32 != nil:
		maxRaw = math.MaxUint32
	default:
		// Every int64 is a possible raw value: shift the interval by base, wrapping.
		return uint64(lo) - uint64(v.base), uint64(hi) - uint64(lo), false
	}
	rlo, rhi := max(satSub(lo, v.base), 0), min(satSub(hi, v.base), maxRaw)
	if rlo > rhi {
		return 0, 0, true
	}
	return uint64(rlo), uint64(rhi - rlo), false
}

// selectAll returns the rows of the block that pass t (NULLs never do), in sel's
// memory.
func (t *intTest) selectAll(sel []uint32) []uint32 {
	v := t.v
	sel = sel[:v.n]
	l, w, empty := rawInterval(v, t.lo, t.hi)
	var k int
	switch {
	case empty && t.inside:
		return sel[:0]
	case empty:
		if v.valid == nil {
			return allRows(sel)
		}
		return selection(v.valid, sel)
	case v.u8 != nil && w == 0 && t.inside:
		k = selectEqual(v.u8, uint8(l), rawBelow(v, 1<<7), sel, swarEqual8)
	case v.u16 != nil && w == 0 && t.inside:
		k = selectEqual(v.u16, uint16(l), rawBelow(v, 1<<15), sel, swarEqual16)
	case v.u8 != nil:
		k = appendInterval(v.u8, 0, l, w, t.inside, sel, 0)
	case v.u16 != nil:
		k = appendInterval(v.u16, 0, l, w, t.inside, sel, 0)
	case v.u32 != nil:
		k = appendInterval(v.u32, 0, l, w, t.inside, sel, 0)
	default:
		k = appendInterval(v.i64, 0, l, w, t.inside, sel, 0)
	}
	if v.valid != nil {
		return keepMarked(sel[:k], v.valid)
	}
	return sel[:k]
}

// refine keeps the rows (ascending, in place) that pass t.
func (t *intTest) refine(rows []uint32) []uint32 {
	v := t.v
	l, w, empty := rawInterval(v, t.lo, t.hi)
	switch {
	case empty && t.inside:
		return rows[:0]
	case empty:
	case v.u8 != nil:
		rows = refineInterval(v.u8, l, w, t.inside, rows)
	case v.u16 != nil:
		rows = refineInterval(v.u16, l, w, t.inside, rows)
	case v.u32 != nil:
		rows = refineInterval(v.u32, l, w, t.inside, rows)
	default:
		rows = refineInterval(v.i64, l, w, t.inside, rows)
	}
	if v.valid != nil {
		return keepMarked(rows, v.valid)
	}
	return rows
}

// allRows fills sel with 0, 1, 2, ….
func allRows(sel []uint32) []uint32 {
	for i := range sel {
		sel[i] = uint32(i)
	}
	return sel
}

// appendInterval writes to sel[k:] the indexes (plus off) of the raw values r with
// (uint64(r) - l <= w) == inside, without a branch per row, and returns the new
// length. sel must have room for every row.
func appendInterval[T intRaw](raw []T, off int, l, w uint64, inside bool, sel []uint32, k int) int {
	if inside {
		for i, r := range raw {
			sel[k] = uint32(off + i)
			k += int(b2u8(uint64(r)-l <= w))
		}
		return k
	}
	for i, r := range raw {
		sel[k] = uint32(off + i)
		k += int(b2u8(uint64(r)-l > w))
	}
	return k
}

func refineInterval[T intRaw](raw []T, l, w uint64, inside bool, rows []uint32) []uint32 {
	k := 0
	for _, i := range rows {
		rows[k] = i
		k += int(b2u8((uint64(raw[i])-l <= w) == inside))
	}
	return rows[:k]
}

// selectChunk is the number of rows after which selectEqual reconsiders its kernel.
const selectChunk = 1024

// selectEqual writes the indexes of the raw values equal to l into sel and returns
// their count. It reads the values a 64-bit word at a time (swar), which is fast
// while few rows match; in stretches where more than one row in 16 matches, the
// branch-free loop is faster, so it switches per chunk. narrow says that every raw
// value (and l) is below half the type's range.
func selectEqual[T uint8 | uint16](raw []T, l T, narrow bool, sel []uint32, swar func([]T, int, T, bool, []uint32, int) (int, int)) int {
	k := 0
	for start := 0; start < len(raw); start += selectChunk {
		end := min(start+selectChunk, len(raw))
		k0 := k
		if i, n := swar(raw[:end], start, l, narrow, sel, k); i < end {
			k = appendInterval(raw[i:end], i, uint64(l), 0, true, sel, n)
		} else {
			k = n
		}
		if (k-k0)*16 > end-start {
			// Dense: finish the block with the branch-free loop.
			return appendInterval(raw[end:], end, uint64(l), 0, true, sel, k)
		}
	}
	return k
}

// rawBelow reports whether the statistics put every raw value of int view v below
// limit.
func rawBelow(v *colView, limit int64) bool {
	st := v.col.Stats
	return st.HasMinMax && st.MinI >= v.base && satSub(st.MaxI, v.base) < limit
}

// SWAR equality: in y = x ^ broadcast(l), a lane is zero where the value equals l.
// ^(((y & low) + low) | y) & high then has exactly the high bits of those lanes set
// (low: every lane's bits but its highest; high: only its highest): adding low
// carries into a lane's high bit unless the lane's other bits are all zero, and the
// OR brings in the lane's own high bit. No carry crosses a lane. When no lane of y
// has its high bit set (narrow values), ^(y + low) & high says the same in two
// operations fewer.
const (
	high8  = 0x8080808080808080
	low8   = 0x7f7f7f7f7f7f7f7f
	high16 = 0x8000800080008000
	low16  = 0x7fff7fff7fff7fff
)

func zeroLanes8(y uint64) uint64        { return ^(((y & low8) + low8) | y) & high8 }
func zeroLanes16(y uint64) uint64       { return ^(((y & low16) + low16) | y) & high16 }
func zeroLanesNarrow8(y uint64) uint64  { return ^(y + low8) & high8 }
func zeroLanesNarrow16(y uint64) uint64 { return ^(y + low16) & high16 }

// swarEqual8 appends to sel[k:] the indexes of the bytes of raw[i:] equal to l, 32
// at a time, starting at i; it returns where it stopped (fewer than 32 values left)
// and the new length.
func swarEqual8(raw []uint8, i int, l uint8, narrow bool, sel []uint32, k int) (int, int) {
	b := uint64(l) * 0x0101010101010101
	for ; i+32 <= len(raw); i += 32 {
		r := raw[i : i+32]
		y0, y1, y2, y3 := le64(r[0:8])^b, le64(r[8:16])^b, le64(r[16:24])^b, le64(r[24:32])^b
		var m0, m1, m2, m3 uint64
		if narrow {
			m0, m1, m2, m3 = zeroLanesNarrow8(y0), zeroLanesNarrow8(y1), zeroLanesNarrow8(y2), zeroLanesNarrow8(y3)
		} else {
			m0, m1, m2, m3 = zeroLanes8(y0), zeroLanes8(y1), zeroLanes8(y2), zeroLanes8(y3)
		}
		if m0|m1|m2|m3 == 0 {
			continue
		}
		k = appendLanes(sel, k, i, m0, 3)
		k = appendLanes(sel, k, i+8, m1, 3)
		k = appendLanes(sel, k, i+16, m2, 3)
		k = appendLanes(sel, k, i+24, m3, 3)
	}
	return i, k
}

// swarEqual16 is swarEqual8 for 16-bit values, 16 at a time.
func swarEqual16(raw []uint16, i int, l uint16, narrow bool, sel []uint32, k int) (int, int) {
	b := uint64(l) * 0x0001000100010001
	for ; i+16 <= len(raw); i += 16 {
		r := raw[i : i+16]
		y0, y1, y2, y3 := le64x4(r[0:4])^b, le64x4(r[4:8])^b, le64x4(r[8:12])^b, le64x4(r[12:16])^b
		var m0, m1, m2, m3 uint64
		if narrow {
			m0, m1, m2, m3 = zeroLanesNarrow16(y0), zeroLanesNarrow16(y1), zeroLanesNarrow16(y2), zeroLanesNarrow16(y3)
		} else {
			m0, m1, m2, m3 = zeroLanes16(y0), zeroLanes16(y1), zeroLanes16(y2), zeroLanes16(y3)
		}
		if m0|m1|m2|m3 == 0 {
			continue
		}
		k = appendLanes(sel, k, i, m0, 4)
		k = appendLanes(sel, k, i+4, m1, 4)
		k = appendLanes(sel, k, i+8, m2, 4)
		k = appendLanes(sel, k, i+12, m3, 4)
	}
	return i, k
}

// appendLanes appends i + lane for every lane whose high bit is set in m (lanes of
// 1<<shift bits).
func appendLanes(sel []uint32, k, i int, m uint64, shift uint) int {
	for m != 0 {
		sel[k] = uint32(i + bits.TrailingZeros64(m)>>shift)
		k++
		m &= m - 1
	}
	return k
}

// le64 reads 8 bytes as a little-endian word (one load).
func le64(b []uint8) uint64 {
	b = b[:8]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// le64x4 reads four 16-bit values as one little-endian word (one load).
func le64x4(r []uint16) uint64 {
	r = r[:4]
	return uint64(r[0]) | uint64(r[1])<<16 | uint64(r[2])<<32 | uint64(r[3])<<48
}
