package shm

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/bitutil"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/reef-db/reef/block"
)

// node is one Arrow array of a block file (see "Array node" in the package
// comment): its type, length, null count, buffers and nested array. The writer makes
// nodes from a block's arrays, the reader from a header; both check them with check
// before a byte is written or an array is built.
type node struct {
	typ   uint8 // Arrow type id
	idx   uint8 // dictionary index type id, else 0
	n     int
	nulls int
	bufs  [3][]byte // by position (validity first); nil = absent
	off   [3]int64  // file offsets of bufs
	sub   *node     // list child or dictionary values
}

// checkShape reports whether the node tree is a physical form logical type t may
// take (see block.Column).
func checkShape(t block.Type, nd *node) error {
	ok := false
	switch t {
	case block.TypeInt:
		ok = nd.typ == idUint8 || nd.typ == idUint16 || nd.typ == idUint32 || nd.typ == idInt64
	case block.TypeFloat:
		ok = nd.typ == idFloat64
	case block.TypeString:
		ok = isStringForm(nd)
	case block.TypeSet:
		ok = nd.typ == idList && nd.sub != nil && isStringForm(nd.sub)
	default:
		return fmt.Errorf("unknown logical type %d", uint8(t))
	}
	if !ok {
		return fmt.Errorf("physical form %s is not allowed for logical type %v", nd.form(), t)
	}
	return nil
}

func isStringForm(nd *node) bool {
	if nd.typ == idString {
		return true
	}
	return nd.typ == idDictionary && isIndexType(nd.idx) && nd.sub != nil && nd.sub.typ == idString
}

// form describes the node tree for error messages, e.g.
// "list<dictionary<UINT8,STRING>>".
func (nd *node) form() string {
	switch {
	case nd.typ == idDictionary && nd.sub != nil:
		return fmt.Sprintf("dictionary<%s,%s>", arrow.Type(nd.idx), nd.sub.form())
	case nd.sub != nil:
		return fmt.Sprintf("%s<%s>", arrow.Type(nd.typ), nd.sub.form())
	}
	return arrow.Type(nd.typ).String()
}

// check verifies the rules of the package comment for the node and the nodes nested
// in it: buffer lengths, null counts against validity bitmaps, offsets, dictionary
// indices. It is what makes an array built over a damaged file safe to read: no
// later access can go out of bounds. Cost: O(1) per buffer plus one pass over
// validity, offset and index buffers.
func (nd *node) check() error {
	if err := nd.checkLayout(true); err != nil {
		return err
	}
	return nd.checkData()
}

// checkLayout is the part of check that reads no buffer: array lengths, null count
// ranges, buffer lengths and nesting. An array built over a node that passed it may
// be created and released, but not read, until checkData passed too. The one
// buffer it reads is the last offset of a string array (with readLast), because
// Arrow reads it when it builds the array; a dictionary's values array is built
// only when the dictionary is first used (see buildArray), so its last offset is
// left to checkData.
func (nd *node) checkLayout(readLast bool) error {
	if nd.n < 0 || nd.n > maxElems {
		return fmt.Errorf("%s array length %d out of range", nd.form(), nd.n)
	}
	if nd.nulls < 0 || nd.nulls > nd.n {
		return fmt.Errorf("%s array of length %d has %d nulls", nd.form(), nd.n, nd.nulls)
	}
	if v := nd.bufs[0]; v != nil {
		if len(v) != bitmapLen(nd.n) {
			return fmt.Errorf("validity bitmap is %d bytes, want %d for %d rows", len(v), bitmapLen(nd.n), nd.n)
		}
	} else if nd.nulls != 0 {
		return fmt.Errorf("%d nulls but no validity bitmap", nd.nulls)
	}
	switch nd.typ {
	case idUint8, idUint16, idUint32, idInt64, idFloat64:
		if want := nd.n * fixedWidth(nd.typ); len(nd.bufs[1]) != want {
			return fmt.Errorf("%s values buffer is %d bytes, want %d", nd.form(), len(nd.bufs[1]), want)
		}
		return nil
	case idString:
		if !readLast {
			if want := (nd.n + 1) * 4; len(nd.bufs[1]) != want {
				return fmt.Errorf("string array: offsets buffer is %d bytes, want %d", len(nd.bufs[1]), want)
			}
			return nil
		}
		if err := nd.checkLastOffset(len(nd.bufs[2])); err != nil {
			return fmt.Errorf("string array: %w", err)
		}
		return nil
	case idList:
		if nd.sub == nil {
			return fmt.Errorf("list without child array")
		}
		if err := nd.sub.checkLayout(true); err != nil {
			return fmt.Errorf("list child: %w", err)
		}
		if err := nd.checkLastOffset(nd.sub.n); err != nil {
			return fmt.Errorf("list: %w", err)
		}
		return nil
	case idDictionary:
		w := fixedWidth(nd.idx)
		if !isIndexType(nd.idx) {
			return fmt.Errorf("dictionary index type %s not allowed", arrow.Type(nd.idx))
		}
		if nd.sub == nil || nd.sub.typ != idString {
			return fmt.Errorf("dictionary values must be a string array")
		}
		if err := nd.sub.checkLayout(false); err != nil {
			return fmt.Errorf("dictionary values: %w", err)
		}
		if want := nd.n * w; len(nd.bufs[1]) != want {
			return fmt.Errorf("dictionary indices are %d bytes, want %d", len(nd.bufs[1]), want)
		}
		return nil
	}
	return fmt.Errorf("arrow type %s not allowed", arrow.Type(nd.typ))
}

// checkData is the part of check that reads buffers: null counts against validity
// bitmaps, offsets, dictionary indices. The node must have passed checkLayout.
func (nd *node) checkData() error {
	if v := nd.bufs[0]; v != nil {
		// The rules below lean on the null count (an all-null array may have
		// an empty dictionary), so it must be the bitmap's.
		if nulls := nd.n - bitutil.CountSetBits(v, 0, nd.n); nulls != nd.nulls {
			return fmt.Errorf("validity bitmap has %d nulls, header says %d", nulls, nd.nulls)
		}
	}
	switch nd.typ {
	case idString:
		if err := checkOffsets(nd.bufs[1], nd.n, len(nd.bufs[2])); err != nil {
			return fmt.Errorf("string array: %w", err)
		}
	case idList:
		if err := nd.sub.checkData(); err != nil {
			return fmt.Errorf("list child: %w", err)
		}
		if err := checkOffsets(nd.bufs[1], nd.n, nd.sub.n); err != nil {
			return fmt.Errorf("list: %w", err)
		}
	case idDictionary:
		if err := nd.sub.checkData(); err != nil {
			return fmt.Errorf("dictionary values: %w", err)
		}
		return checkIndices(nd.bufs[1], nd.idx, nd.n, nd.nulls, nd.sub.n)
	}
	return nil
}

// checkLastOffset checks the length of the node's offsets buffer (n+1 int32
// offsets) and that the last one equals end: the O(1) part of checkOffsets.
func (nd *node) checkLastOffset(end int) error {
	b, n := nd.bufs[1], nd.n
	if len(b) != (n+1)*4 {
		return fmt.Errorf("offsets buffer is %d bytes, want %d", len(b), (n+1)*4)
	}
	if last := int32(binary.LittleEndian.Uint32(b[4*n:])); int64(last) != int64(end) {
		return fmt.Errorf("last offset is %d, want %d (the data length)", last, end)
	}
	return nil
}

// checkOffsets checks n+1 int32 offsets: the first is 0, none is smaller than the
// one before, the last equals end. The common case is one branch-free pass.
func checkOffsets(b []byte, n, end int) error {
	if len(b) != (n+1)*4 {
		return fmt.Errorf("offsets buffer is %d bytes, want %d", len(b), (n+1)*4)
	}
	o := arrow.Int32Traits.CastFromBytes(b)
	if o[0] != 0 {
		return fmt.Errorf("first offset is %d, want 0", o[0])
	}
	// Each step's difference, widened so it cannot overflow, is ORed into neg:
	// its sign bit ends up set if any step went down.
	next := o[1:]
	prev := o[:len(next)]
	var neg int64
	for i := range next {
		neg |= int64(next[i]) - int64(prev[i])
	}
	if neg < 0 {
		for i := 1; i < len(o); i++ {
			if o[i] < o[i-1] {
				return fmt.Errorf("offset %d (%d) is below offset %d (%d)", i, o[i], i-1, o[i-1])
			}
		}
	}
	if last := o[n]; int64(last) != int64(end) {
		return fmt.Errorf("last offset is %d, want %d (the data length)", last, end)
	}
	return nil
}

// checkIndices checks that every dictionary index, null rows included, is below
// dictLen, so a kernel may read an index before it looks at validity. The one
// exception is an empty dictionary, whose rows must all be null. The cost is one
// branch-free pass over the buffer, or nothing when the index type cannot exceed
// the dictionary.
func checkIndices(b []byte, idx uint8, n, nulls, dictLen int) error {
	bits := uint(8 * fixedWidth(idx))
	if uint64(dictLen) > 1<<bits-1 || n == 0 {
		return nil
	}
	if dictLen == 0 {
		if nulls != n {
			return fmt.Errorf("empty dictionary but %d of %d rows are not null", n-nulls, n)
		}
		return nil
	}
	if anyLaneAbove(b, bits, uint64(dictLen-1)) {
		for i := range n {
			if k := indexAt(b, idx, i); k >= uint64(dictLen) {
				return fmt.Errorf("dictionary index %d at row %d is not below the dictionary length %d", k, i, dictLen)
			}
		}
	}
	return nil
}

// anyLaneAbove reports whether any unsigned little-endian lane of the given width
// (8, 16 or 32 bits) in b is above limit (< 1<<bits). It tests eight bytes at a
// time without branches (SWAR, after "Bit Twiddling Hacks": hasmore):
//
//   - limit < half (the lane's top bit): adding half-limit to a lane sets its top
//     bit exactly when the lane is above limit or already had the top bit set; a
//     carry into the next lane only comes from a lane that is above limit.
//   - limit >= half: a lane is above limit when its top bit is set and its low
//     bits plus (2·half-1-limit) reach half; the low bits cannot carry.
func anyLaneAbove(b []byte, bits uint, limit uint64) bool {
	var ones uint64
	for i := uint(0); i < 64; i += bits {
		ones |= 1 << i
	}
	half := uint64(1)<<(bits-1) - 1 // largest value without the top bit
	top := ones << (bits - 1)
	low := top - ones // every bit but the lanes' top bits
	// Unaligned little-endian loads: the writer checks heap slices whose
	// alignment is only their element type's.
	rest := b
	var acc uint64
	if limit <= half {
		k := ones * (half - limit)
		for ; len(rest) >= 8; rest = rest[8:] {
			x := binary.LittleEndian.Uint64(rest)
			acc |= (x + k) | x
		}
	} else {
		k := ones * (2*half + 1 - limit)
		for ; len(rest) >= 8; rest = rest[8:] {
			x := binary.LittleEndian.Uint64(rest)
			acc |= ((x & low) + k) & x
		}
	}
	if acc&top != 0 {
		return true
	}
	w := int(bits / 8)
	for ; len(rest) >= w; rest = rest[w:] {
		var v uint64
		for j := range w {
			v |= uint64(rest[j]) << (8 * j)
		}
		if v > limit {
			return true
		}
	}
	return false
}

func indexAt(b []byte, idx uint8, i int) uint64 {
	switch idx {
	case idUint8:
		return uint64(b[i])
	case idUint16:
		return uint64(arrow.Uint16Traits.CastFromBytes(b)[i])
	}
	return uint64(arrow.Uint32Traits.CastFromBytes(b)[i])
}

// nodeOf makes the node of an in-memory array, trimming each buffer to the bytes
// its array uses and dropping the validity bitmap of an array without nulls.
func nodeOf(d arrow.ArrayData) (*node, error) {
	if d.Offset() != 0 {
		return nil, fmt.Errorf("sliced array (offset %d) cannot be stored", d.Offset())
	}
	id := d.DataType().ID()
	if id > math.MaxUint8 || numBuffers(uint8(id)) == 0 {
		return nil, fmt.Errorf("arrow type %s cannot be stored", d.DataType())
	}
	nd := &node{typ: uint8(id), n: d.Len(), nulls: d.NullN()}
	bufs := d.Buffers()
	if len(bufs) < numBuffers(nd.typ) {
		return nil, fmt.Errorf("%s array has %d buffers, want %d", d.DataType(), len(bufs), numBuffers(nd.typ))
	}
	take := func(i, n int) ([]byte, error) {
		var b []byte
		if bufs[i] != nil {
			b = bufs[i].Bytes()
		}
		if len(b) < n {
			return nil, fmt.Errorf("%s array buffer %d is %d bytes, needs %d", d.DataType(), i, len(b), n)
		}
		if n == 0 {
			return nil, nil
		}
		return b[:n], nil
	}
	var err error
	if nd.nulls > 0 {
		if nd.bufs[0], err = take(0, bitmapLen(nd.n)); err != nil {
			return nil, err
		}
	}
	switch nd.typ {
	case idUint8, idUint16, idUint32, idInt64, idFloat64:
		nd.bufs[1], err = take(1, nd.n*fixedWidth(nd.typ))
	case idString:
		if nd.bufs[1], err = take(1, (nd.n+1)*4); err != nil {
			return nil, err
		}
		last := arrow.Int32Traits.CastFromBytes(nd.bufs[1])[nd.n]
		if last < 0 {
			return nil, fmt.Errorf("string array ends at negative offset %d", last)
		}
		nd.bufs[2], err = take(2, int(last))
	case idList:
		if nd.bufs[1], err = take(1, (nd.n+1)*4); err != nil {
			return nil, err
		}
		if len(d.Children()) != 1 {
			return nil, fmt.Errorf("list array has %d children, want 1", len(d.Children()))
		}
		nd.sub, err = nodeOf(d.Children()[0])
	case idDictionary:
		dt := d.DataType().(*arrow.DictionaryType)
		nd.idx = uint8(dt.IndexType.ID())
		if !isIndexType(nd.idx) {
			return nil, fmt.Errorf("dictionary index type %s cannot be stored", dt.IndexType)
		}
		if nd.bufs[1], err = take(1, nd.n*fixedWidth(nd.idx)); err != nil {
			return nil, err
		}
		var dict *array.Data
		if dd, ok := d.(*array.Data); ok {
			dict, _ = dd.Dictionary().(*array.Data) // a nil *Data when there is none
		}
		if dict == nil {
			return nil, fmt.Errorf("dictionary array without dictionary")
		}
		nd.sub, err = nodeOf(dict)
	}
	if err != nil {
		return nil, err
	}
	return nd, nil
}

// arrayData builds Arrow array data over the node's buffers without copying them.
// The node must have passed check.
func (nd *node) arrayData() *array.Data {
	bufs := make([]*memory.Buffer, numBuffers(nd.typ))
	for i := range bufs {
		if nd.bufs[i] != nil || i > 0 {
			bufs[i] = memory.NewBufferBytes(nd.bufs[i])
		}
	}
	switch nd.typ {
	case idString:
		return array.NewData(arrow.BinaryTypes.String, nd.n, bufs, nil, nd.nulls, 0)
	case idList:
		child := nd.sub.arrayData()
		defer child.Release()
		return array.NewData(arrow.ListOf(child.DataType()), nd.n, bufs, []arrow.ArrayData{child}, nd.nulls, 0)
	case idDictionary:
		dict := nd.sub.arrayData()
		defer dict.Release()
		typ := &arrow.DictionaryType{IndexType: primitiveType(nd.idx), ValueType: arrow.BinaryTypes.String}
		return array.NewDataWithDictionary(typ, nd.n, bufs, nd.nulls, 0, dict)
	}
	return array.NewData(primitiveType(nd.typ), nd.n, bufs, nil, nd.nulls, 0)
}
