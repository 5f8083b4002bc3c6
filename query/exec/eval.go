package exec

import (
	"cmp"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/plan"
)

// result is what evaluating a filter node over a block gives: no row, every row,
// or the rows whose byte in the mask is 1.
type result uint8

const (
	rNone result = iota
	rAll
	rMask
	// rTable: the rows whose dictionary code maps to 1 in e.table, codes of
	// e.tableView (8 or 16 bits), NULLs not yet removed. Only when e.wantTable.
	rTable
)

// evaluator evaluates compiled filters over one block at a time. Masks are one byte
// per row (0 or 1); scratch masks are kept per nesting depth and reused.
type evaluator struct {
	vs      *views
	scratch [][]byte
	table   []byte   // per dictionary entry / raw value match table
	codes   []uint32 // set element codes
	stamps  []uint32 // has: literal index per set element code

	wantTable bool     // a dictionary predicate may answer rTable (top-level leaves)
	tableView *colView // the column of an rTable answer
}

func (e *evaluator) mask(depth, n int) []byte {
	for len(e.scratch) <= depth {
		e.scratch = append(e.scratch, make([]byte, block.MaxRows))
	}
	if len(e.scratch[depth]) < n {
		e.scratch[depth] = make([]byte, n)
	}
	return e.scratch[depth][:n]
}

// tableFor returns a zeroed match table with at least n entries.
func (e *evaluator) tableFor(n int) []byte {
	if cap(e.table) < n {
		e.table = make([]byte, n)
	}
	t := e.table[:n]
	clear(t)
	return t
}

// eval evaluates n over the current block into dst (len = rows) when it returns
// rMask.
func (e *evaluator) eval(n *node, dst []byte, depth int) (result, error) {
	switch n.kind {
	case nConst:
		if n.truth {
			return rAll, nil
		}
		return rNone, nil
	case nAnd:
		out := rAll
		for _, k := range n.kids {
			tmp := e.mask(depth+1, len(dst))
			r, err := e.eval(k, tmp, depth+1)
			if err != nil || r == rNone {
				return rNone, err
			}
			if r == rAll {
				continue
			}
			if out == rAll {
				copy(dst, tmp)
				out = rMask
			} else {
				andInto(dst, tmp)
			}
		}
		return out, nil
	case nOr:
		out := rNone
		for _, k := range n.kids {
			tmp := e.mask(depth+1, len(dst))
			r, err := e.eval(k, tmp, depth+1)
			if err != nil || r == rAll {
				return r, err
			}
			if r == rNone {
				continue
			}
			if out == rNone {
				copy(dst, tmp)
				out = rMask
			} else {
				orInto(dst, tmp)
			}
		}
		return out, nil
	}
	// Decide from the block's metadata when possible, without reading values.
	if verdict, ok := prejudge(n, e.vs.blk.Column(n.col), e.vs.blk.Rows); ok {
		if verdict == rNone {
			return rNone, nil
		}
		if c := e.vs.blk.Column(n.col); c == nil || c.Arr == nil || c.Stats.Nulls == 0 {
			return rAll, nil
		}
		// Every non-null row: the validity bitmap is needed.
	}
	v, err := e.vs.get(n.col)
	if err != nil {
		return rNone, err
	}
	if n.kind == nIsNull {
		return evalIsNull(v, n.neg, dst), nil
	}
	if v.allNull() {
		return rNone, nil
	}
	var r result
	switch n.kind {
	case nCmp:
		r = e.evalCmp(n, v, dst)
	case nIntRange:
		if v.kind != viewInt {
			return rNone, nil
		}
		r = evalIntRange(v, n.lo, n.hi, true, dst)
	case nIn:
		r = e.evalIn(n, v, dst)
	case nMatch:
		if v.kind != viewDict && v.kind != viewPlain {
			return rNone, nil
		}
		match, neg := n.match, n.neg
		r = e.evalStrings(v, func(s string) bool { return match(s) != neg }, dst)
	case nHas:
		r = e.evalHas(n, v, dst)
	}
	if r == rMask && v.valid != nil {
		andInto(dst, v.valid)
	}
	return r, nil
}

// prejudge decides a leaf predicate for a whole block from the column's metadata
// (type, statistics, null count): rNone, or rAll meaning every non-null row (every
// row for IS NULL). ok is false when the values must be read.
func prejudge(n *node, c *block.Column, rows int) (verdict result, ok bool) {
	if c == nil || c.Arr == nil || c.Stats.Nulls >= rows {
		if n.kind == nIsNull && !n.neg {
			return rAll, true
		}
		return rNone, true
	}
	st := c.Stats
	switch n.kind {
	case nIsNull:
		if st.Nulls == 0 {
			if n.neg {
				return rAll, true
			}
			return rNone, true
		}
	case nCmp:
		switch c.Type {
		case block.TypeInt:
			lo, hi, inside, ok := intInterval(n.op, n.lit)
			if !ok {
				return rNone, true
			}
			return intVerdict(st, lo, hi, inside)
		case block.TypeFloat:
			f, ok := n.lit.AsFloat()
			if !ok {
				return rNone, true
			}
			if st.HasMinMax && !math.IsNaN(st.MinF) && !math.IsNaN(st.MaxF) {
				return prune(n.op, f, st.MinF, st.MaxF)
			}
		case block.TypeString:
			if n.lit.Kind != plan.KindString {
				return rNone, true
			}
			if st.HasMinMax {
				return prune(n.op, n.lit.S, st.MinS, st.MaxS)
			}
		default:
			return rNone, true
		}
	case nIntRange:
		if c.Type != block.TypeInt {
			return rNone, true
		}
		return intVerdict(st, n.lo, n.hi, true)
	case nIn:
		switch c.Type {
		case block.TypeInt:
			if n.neg && len(n.strs) > 0 {
				return rNone, true
			}
			if st.HasMinMax {
				i, _ := slices.BinarySearch(n.ints, st.MinI)
				if i == len(n.ints) || n.ints[i] > st.MaxI { // no literal in [min, max]
					if n.neg {
						return rAll, true
					}
					return rNone, true
				}
			}
		case block.TypeSet:
			return rNone, true
		}
	case nMatch:
		if c.Type != block.TypeString {
			return rNone, true
		}
	case nHas:
		if c.Type != block.TypeSet {
			return rNone, true
		}
	}
	return rNone, false
}

// intVerdict decides "x inside (or outside) [lo, hi]" from an int column's
// statistics, when it can.
func intVerdict(st block.ColumnStats, lo, hi int64, inside bool) (result, bool) {
	if r, _, _ := narrowRange(st, lo, hi, inside); r != rMask {
		return r, true
	}
	return rNone, false
}

// allValid is the result "every non-null row".
func allValid(v *colView, dst []byte) result {
	if v.valid == nil {
		return rAll
	}
	copy(dst, v.valid)
	return rMask
}

func evalIsNull(v *colView, neg bool, dst []byte) result {
	switch {
	case v.kind == viewMissing || v.nulls >= v.n:
		if neg {
			return rNone
		}
		return rAll
	case v.nulls == 0:
		if neg {
			return rAll
		}
		return rNone
	case neg:
		copy(dst, v.valid)
	default:
		for i, b := range v.valid {
			dst[i] = b ^ 1
		}
	}
	return rMask
}

func (e *evaluator) evalCmp(n *node, v *colView, dst []byte) result {
	switch v.kind {
	case viewInt:
		lo, hi, inside, ok := intInterval(n.op, n.lit)
		if !ok {
			return rNone
		}
		return evalIntRange(v, lo, hi, inside, dst)
	case viewFloat:
		f, ok := n.lit.AsFloat()
		if !ok {
			return rNone
		}
		st := v.col.Stats
		if st.HasMinMax && !math.IsNaN(st.MinF) && !math.IsNaN(st.MaxF) {
			if r, ok := prune(n.op, f, st.MinF, st.MaxF); ok {
				return resolve(r, v, dst)
			}
		}
		floatCmp(v.f64, n.op, f, dst)
		return rMask
	case viewDict, viewPlain:
		if n.lit.Kind != plan.KindString {
			return rNone
		}
		s := n.lit.S
		if st := v.col.Stats; st.HasMinMax {
			if r, ok := prune(n.op, s, st.MinS, st.MaxS); ok {
				return resolve(r, v, dst)
			}
		}
		op := n.op
		return e.evalStrings(v, func(x string) bool { return cmpOp(op, cmp.Compare(x, s)) }, dst)
	}
	return rNone
}

// resolve turns a pruning verdict (rNone or rAll over non-null rows) into a result.
func resolve(r result, v *colView, dst []byte) result {
	if r == rNone {
		return rNone
	}
	return allValid(v, dst)
}

// prune decides `x op lit` for a whole block from the block's [mn, mx], when it can:
// rAll (true for every non-null row) or rNone.
func prune[T cmp.Ordered](op plan.Op, lit, mn, mx T) (result, bool) {
	switch op {
	case plan.OpEq:
		if lit < mn || lit > mx {
			return rNone, true
		}
		if mn == mx {
			return rAll, true
		}
	case plan.OpNe:
		if lit < mn || lit > mx {
			return rAll, true
		}
		if mn == mx {
			return rNone, true
		}
	case plan.OpLt:
		if mx < lit {
			return rAll, true
		}
		if mn >= lit {
			return rNone, true
		}
	case plan.OpLe:
		if mx <= lit {
			return rAll, true
		}
		if mn > lit {
			return rNone, true
		}
	case plan.OpGt:
		if mn > lit {
			return rAll, true
		}
		if mx <= lit {
			return rNone, true
		}
	case plan.OpGe:
		if mn >= lit {
			return rAll, true
		}
		if mx < lit {
			return rNone, true
		}
	}
	return rNone, false
}

func cmpOp(op plan.Op, c int) bool {
	switch op {
	case plan.OpEq:
		return c == 0
	case plan.OpNe:
		return c != 0
	case plan.OpLt:
		return c < 0
	case plan.OpLe:
		return c <= 0
	case plan.OpGt:
		return c > 0
	}
	return c >= 0
}

func floatCmp(vals []float64, op plan.Op, f float64, dst []byte) {
	dst = dst[:len(vals)]
	switch op {
	case plan.OpEq:
		for i, x := range vals {
			dst[i] = b2u8(x == f)
		}
	case plan.OpNe:
		for i, x := range vals {
			dst[i] = b2u8(x != f)
		}
	case plan.OpLt:
		for i, x := range vals {
			dst[i] = b2u8(x < f)
		}
	case plan.OpLe:
		for i, x := range vals {
			dst[i] = b2u8(x <= f)
		}
	case plan.OpGt:
		for i, x := range vals {
			dst[i] = b2u8(x > f)
		}
	default:
		for i, x := range vals {
			dst[i] = b2u8(x >= f)
		}
	}
}

// evalIntRange selects the rows of an int column inside [lo, hi] (or outside it,
// when !inside), using the column statistics first and the raw narrowed values
// otherwise. NULL rows are cleared by the caller.
func evalIntRange(v *colView, lo, hi int64, inside bool, dst []byte) result {
	var r result
	switch r, lo, hi = narrowRange(v.col.Stats, lo, hi, inside); r {
	case rNone:
		return rNone
	case rAll:
		return allValid(v, dst)
	}
	switch {
	case v.u8 != nil:
		rangeMask(v.u8, lo, hi, v.base, inside, dst)
	case v.u16 != nil:
		rangeMask(v.u16, lo, hi, v.base, inside, dst)
	case v.u32 != nil:
		rangeMask(v.u32, lo, hi, v.base, inside, dst)
	default:
		// value = raw + base (base is normally 0 here); compare in the value domain.
		l, w, base := uint64(lo), uint64(hi)-uint64(lo), v.base
		dst = dst[:len(v.i64)]
		if inside {
			for i, r := range v.i64 {
				dst[i] = b2u8(uint64(r+base)-l <= w)
			}
		} else {
			for i, r := range v.i64 {
				dst[i] = b2u8(uint64(r+base)-l > w)
			}
		}
	}
	return rMask
}

type unsignedRaw interface{ ~uint8 | ~uint16 | ~uint32 }

// rangeMask writes whether raw+base is inside (or outside) [lo, hi], comparing raw
// values against lo-base and hi-base: one subtraction and one unsigned compare per
// row.
func rangeMask[T unsignedRaw](raw []T, lo, hi, base int64, inside bool, dst []byte) {
	dst = dst[:len(raw)]
	rlo, rhi := satSub(lo, base), satSub(hi, base)
	maxT := int64(^T(0))
	rlo, rhi = max(rlo, 0), min(rhi, maxT)
	if rlo > rhi {
		fill(dst, b2u8(!inside))
		return
	}
	l, w := T(rlo), T(rhi-rlo)
	if inside {
		for i, r := range raw {
			dst[i] = b2u8(r-l <= w)
		}
	} else {
		for i, r := range raw {
			dst[i] = b2u8(r-l > w)
		}
	}
}

// satSub is a-b saturated to int64's range.
func satSub(a, b int64) int64 {
	d := a - b
	if (a^b) < 0 && (a^d) < 0 { // signs differ and the result's sign is wrong
		if a < 0 {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return d
}

// evalStrings evaluates pred once per dictionary entry and maps it over the codes
// (or, for a plain string column, once per row).
func (e *evaluator) evalStrings(v *colView, pred func(string) bool, dst []byte) result {
	if v.kind == viewPlain {
		for i := range dst {
			dst[i] = b2u8(pred(v.plain.Value(i)))
		}
		return rMask
	}
	nd := v.dictLen()
	t := e.tableFor(tableSize(v, nd))
	some, all := false, true
	for k := 0; k < nd; k++ {
		m := pred(v.dict.Value(k))
		t[k] = b2u8(m)
		some = some || m
		all = all && m
	}
	if !some {
		return rNone
	}
	if all && nd > 0 {
		return allValid(v, dst)
	}
	if e.wantTable && (v.c8 != nil || v.c16 != nil) {
		e.tableView = v
		return rTable
	}
	gatherCodes(v, t, dst)
	return rMask
}

// tableSize is the size of a per-code table for v: the whole code range for 8- and
// 16-bit codes (so no code can index past it), else the dictionary size.
func tableSize(v *colView, nd int) int {
	switch {
	case v.c8 != nil:
		return max(nd, 1<<8)
	case v.c16 != nil:
		return max(nd, 1<<16)
	}
	return nd
}

// gatherCodes sets dst[i] = t[code of row i].
func gatherCodes(v *colView, t []byte, dst []byte) {
	switch {
	case v.c8 != nil:
		tt := (*[1 << 8]byte)(t)
		dst = dst[:len(v.c8)]
		for i, c := range v.c8 {
			dst[i] = tt[c]
		}
	case v.c16 != nil:
		tt := (*[1 << 16]byte)(t)
		dst = dst[:len(v.c16)]
		for i, c := range v.c16 {
			dst[i] = tt[c]
		}
	default:
		dst = dst[:len(v.c32)]
		for i, c := range v.c32 {
			if int(c) < len(t) {
				dst[i] = t[c]
			} else {
				dst[i] = 0
			}
		}
	}
}

func (e *evaluator) evalIn(n *node, v *colView, dst []byte) result {
	// A literal of another kind compares UNKNOWN, so NOT IN can never be TRUE.
	if n.neg {
		switch v.kind {
		case viewInt, viewFloat:
			if len(n.strs) > 0 {
				return rNone
			}
		case viewDict, viewPlain:
			if len(n.floats) > 0 {
				return rNone
			}
		}
	}
	switch v.kind {
	case viewInt:
		return e.evalIntIn(n, v, dst)
	case viewFloat:
		lits, neg := n.floats, n.neg
		if len(lits) == 0 {
			if neg {
				return allValid(v, dst)
			}
			return rNone
		}
		negb := b2u8(neg)
		for i, x := range v.f64 {
			dst[i] = b2u8(slices.Contains(lits, x)) ^ negb
		}
		return rMask
	case viewDict, viewPlain:
		strs, neg := n.strs, n.neg
		return e.evalStrings(v, func(s string) bool {
			_, ok := strs[s]
			return ok != neg
		}, dst)
	}
	return rNone
}

func (e *evaluator) evalIntIn(n *node, v *colView, dst []byte) result {
	lits := n.ints
	st := v.col.Stats
	if st.HasMinMax {
		lo, _ := slices.BinarySearch(lits, st.MinI)
		hi, _ := slices.BinarySearch(lits, st.MaxI+1)
		if st.MaxI == math.MaxInt64 {
			hi = len(lits)
		}
		lits = lits[lo:hi]
	}
	if len(lits) == 0 {
		if n.neg {
			return allValid(v, dst)
		}
		return rNone
	}
	negb := b2u8(n.neg)
	switch {
	case v.u8 != nil:
		t := e.rawTable(lits, v.base, 1<<8)
		tt := (*[1 << 8]byte)(t)
		for i, r := range v.u8 {
			dst[i] = tt[r] ^ negb
		}
	case v.u16 != nil:
		t := e.rawTable(lits, v.base, 1<<16)
		tt := (*[1 << 16]byte)(t)
		for i, r := range v.u16 {
			dst[i] = tt[r] ^ negb
		}
	case v.u32 != nil:
		for i, r := range v.u32 {
			_, ok := slices.BinarySearch(lits, int64(r)+v.base)
			dst[i] = b2u8(ok) ^ negb
		}
	default:
		for i, r := range v.i64 {
			_, ok := slices.BinarySearch(lits, r+v.base)
			dst[i] = b2u8(ok) ^ negb
		}
	}
	return rMask
}

// rawTable marks the raw values (literal - base) of lits in a table of size n.
func (e *evaluator) rawTable(lits []int64, base int64, n int) []byte {
	t := e.tableFor(n)
	for _, l := range lits {
		if r := satSub(l, base); r >= 0 && r < int64(n) {
			t[r] = 1
		}
	}
	return t
}

func (e *evaluator) evalHas(n *node, v *colView, dst []byte) result {
	if v.kind != viewSet {
		return rNone
	}
	el := v.elem
	// Per element: the index+1 of the literal it equals, or 0.
	var ne int
	var lit func(k int) string
	if el.kind == viewDict {
		ne = el.dictLen()
		lit = el.dict.Value
	} else {
		ne = el.n
		lit = el.plain.Value
	}
	codes := e.elemCodes(el)
	idx := e.stampsFor(ne)
	for k := 0; k < ne; k++ {
		if j, ok := slices.BinarySearch(n.vals, lit(k)); ok {
			idx[k] = uint32(j + 1)
		}
	}
	negb := b2u8(n.neg)
	offs := v.offs
	if n.setOp == plan.OpHasAll {
		want := len(n.vals)
		seen := make([]int, want) // last row that found literal j, +1
		for i := 0; i < v.n; i++ {
			found := 0
			for _, c := range codes[offs[i]:offs[i+1]] {
				if j := idx[c]; j != 0 && seen[j-1] != i+1 {
					seen[j-1] = i + 1
					found++
				}
			}
			dst[i] = b2u8(found == want) ^ negb
		}
		return rMask
	}
	for i := 0; i < v.n; i++ {
		var hit byte
		for _, c := range codes[offs[i]:offs[i+1]] {
			hit |= b2u8(idx[c] != 0)
		}
		dst[i] = hit ^ negb
	}
	return rMask
}

// elemCodes returns, per set element, its dictionary code (for a plain child, its
// own position).
func (e *evaluator) elemCodes(el *colView) []uint32 {
	e.codes = slices.Grow(e.codes[:0], el.n)[:el.n]
	switch {
	case el.kind == viewPlain:
		for i := range e.codes {
			e.codes[i] = uint32(i)
		}
	case el.c8 != nil:
		for i, c := range el.c8 {
			e.codes[i] = uint32(c)
		}
	case el.c16 != nil:
		for i, c := range el.c16 {
			e.codes[i] = uint32(c)
		}
	default:
		copy(e.codes, el.c32)
	}
	nd := el.n
	if el.kind == viewDict {
		nd = el.dictLen()
	}
	for i, c := range e.codes {
		if int(c) >= nd {
			e.codes[i] = 0 // a corrupt code; never index past the tables
		}
	}
	return e.codes
}

// stampsFor returns a zeroed table of at least one and n entries.
func (e *evaluator) stampsFor(n int) []uint32 {
	e.stamps = slices.Grow(e.stamps[:0], max(n, 1))[:max(n, 1)]
	clear(e.stamps)
	return e.stamps
}

func andInto(dst, src []byte) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] &= src[i]
	}
}

func orInto(dst, src []byte) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] |= src[i]
	}
}

func fill(dst []byte, b byte) {
	for i := range dst {
		dst[i] = b
	}
}

func b2u8(b bool) byte {
	var x byte
	if b {
		x = 1
	}
	return x
}

// selection converts a mask into the ascending list of selected row indexes. It
// reads the mask eight bytes at a time and skips all-zero words, so sparse masks
// cost little.
func selection(mask []byte, sel []uint32) []uint32 {
	sel = slices.Grow(sel[:0], len(mask))[:len(mask)]
	k, i := 0, 0
	for ; i+8 <= len(mask); i += 8 {
		w := binary.LittleEndian.Uint64(mask[i : i+8])
		for w != 0 { // each byte is 0 or 1: one set bit per selected row
			sel[k] = uint32(i + bits.TrailingZeros64(w)>>3)
			k++
			w &= w - 1
		}
	}
	for ; i < len(mask); i++ {
		sel[k] = uint32(i)
		k += int(mask[i])
	}
	return sel[:k]
}
