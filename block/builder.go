package block

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"unsafe"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// Builder accumulates the rows of one table's open block and builds an immutable,
// encoded Block from them. Columns are added as they are first seen; rows that
// predate a column read as null in it.
//
// Use: BeginRow, then per field ColumnIndex/AddColumn and one Set* call, then
// EndRow (or AbortRow to drop the row). A Builder is not safe for concurrent use.
//
// Strings are dictionary-encoded as they arrive, so appending a value already seen
// in this block allocates nothing.
type Builder struct {
	table   string
	cols    []*colBuilder
	index   map[string]int
	rows    int
	inRow   bool
	reserve int // rows columns are allocated for when added (see Reserve)
	// nset counts the columns set in the current row and nsets the set-typed
	// columns: a row that set every column, and has no set column, ends without
	// a look at any column (EndRow).
	nset, nsets int
}

type colBuilder struct {
	name string
	typ  Type
	// valid holds one bool per row (a value's true is appended when it is set)
	// once the column has a null: until then nulls is false, valid is empty and
	// every row has a value, so the common column of no nulls costs no append.
	valid []bool
	nulls bool
	// setIn is the row (rows+1) whose value the column holds last: the column is
	// set in the current row when it equals Builder.rows+1, so nothing resets it.
	setIn int

	ints   []int64
	floats []float64
	codes  []uint32 // TypeString: one per row; TypeSet: flattened elements
	setOff []int32  // TypeSet: len rows+1 offsets into codes
	dict   []string
	dictIx map[string]uint32
	// cache maps a cheap hash of a value to its code+1 (0: empty), checked
	// against dict: most values of a string column come from a few thousand, and
	// one compare costs less than a map lookup (about 25% less CPU per value in
	// a benchmark of service, host and endpoint columns). Allocated on first use.
	cache *[dictCacheSize]uint32
}

// dictCacheSize is the number of entries of colBuilder.cache, a power of two.
const dictCacheSize = 4096

// NewBuilder returns an empty builder for table.
func NewBuilder(table string) *Builder {
	return &Builder{table: table, index: make(map[string]int)}
}

// Reserve sizes the columns added from now on for rows rows (at most MaxRows), so
// that appending that many rows does not grow and copy them: a table whose blocks
// fill up would otherwise copy every column about sixteen times per block.
func (b *Builder) Reserve(rows int) { b.reserve = min(max(rows, 0), MaxRows) }

// Table is the table the builder's rows belong to.
func (b *Builder) Table() string { return b.table }

// Len is the number of complete rows.
func (b *Builder) Len() int { return b.rows }

// NumColumns is the number of columns seen so far.
func (b *Builder) NumColumns() int { return len(b.cols) }

// ColumnIndex returns the index and type of the named column, or -1.
func (b *Builder) ColumnIndex(name string) (int, Type) {
	i, ok := b.index[name]
	if !ok {
		return -1, TypeInvalid
	}
	return i, b.cols[i].typ
}

// AddColumn adds a column of the given type, filled with nulls for earlier rows,
// and returns its index. It fails if the column exists.
func (b *Builder) AddColumn(name string, typ Type) (int, error) {
	if _, ok := b.index[name]; ok {
		return -1, fmt.Errorf("column %q already exists", name)
	}
	if typ < TypeInt || typ > TypeSet {
		return -1, fmt.Errorf("cannot add column %q: invalid type %v", name, typ)
	}
	size := max(b.rows, b.reserve, 64)
	c := &colBuilder{name: name, typ: typ}
	if b.rows > 0 {
		// The rows before it are null in it.
		c.valid, c.nulls = make([]bool, b.rows, size), true
	}
	switch typ {
	case TypeInt:
		c.ints = make([]int64, b.rows, size)
	case TypeFloat:
		c.floats = make([]float64, b.rows, size)
	case TypeString:
		c.codes = make([]uint32, b.rows, size)
		c.dictIx = make(map[string]uint32)
	case TypeSet:
		c.setOff = make([]int32, b.rows+1, size+1)
		c.dictIx = make(map[string]uint32)
	}
	if typ == TypeSet {
		b.nsets++
	}
	b.cols = append(b.cols, c)
	b.index[name] = len(b.cols) - 1
	return len(b.cols) - 1, nil
}

// BeginRow starts a row.
func (b *Builder) BeginRow() {
	if b.inRow {
		panic("BUG: block.Builder.BeginRow inside a row")
	}
	b.inRow = true
	b.nset = 0
}

// mark records that column c gets its value in the current row; it panics if
// it already has one.
func (b *Builder) mark(c *colBuilder, typ Type, op string) {
	if c.typ != typ || c.setIn == b.rows+1 {
		panic("BUG: block.Builder." + op + " on wrong type or twice")
	}
	c.setIn = b.rows + 1
	if c.nulls {
		c.valid = append(c.valid, true)
	}
	b.nset++
}

// SetInt sets column i (TypeInt) of the current row.
func (b *Builder) SetInt(i int, v int64) {
	c := b.cols[i]
	b.mark(c, TypeInt, "SetInt")
	c.ints = append(c.ints, v)
}

// SetFloat sets column i (TypeFloat) of the current row.
func (b *Builder) SetFloat(i int, v float64) {
	c := b.cols[i]
	b.mark(c, TypeFloat, "SetFloat")
	c.floats = append(c.floats, v)
}

// SetString sets column i (TypeString) of the current row. s may be reused by the
// caller after the call.
func (b *Builder) SetString(i int, s []byte) {
	c := b.cols[i]
	b.mark(c, TypeString, "SetString")
	c.codes = append(c.codes, c.code(s))
}

// AppendSetElem adds one element to column i (TypeSet) of the current row; call it
// once per element (zero times for an empty set, then MarkSet).
func (b *Builder) AppendSetElem(i int, s []byte) {
	c := b.cols[i]
	if c.typ != TypeSet {
		panic("BUG: block.Builder.AppendSetElem on wrong type")
	}
	if c.setIn != b.rows+1 {
		b.mark(c, TypeSet, "AppendSetElem")
	}
	c.codes = append(c.codes, c.code(s))
}

// MarkSet marks set column i as present (possibly empty) in the current row.
func (b *Builder) MarkSet(i int) {
	if c := b.cols[i]; c.setIn != b.rows+1 {
		b.mark(c, TypeSet, "MarkSet")
	}
}

// IsSet reports whether column i already has a value in the current row.
func (b *Builder) IsSet(i int) bool { return b.cols[i].setIn == b.rows+1 }

func (c *colBuilder) code(s []byte) uint32 {
	if c.cache == nil {
		c.cache = new([dictCacheSize]uint32)
	}
	h := cacheSlot(s)
	if e := c.cache[h]; e != 0 && c.dict[e-1] == string(s) {
		return e - 1
	}
	k, ok := c.dictIx[string(s)]
	if !ok {
		str := string(s)
		k = uint32(len(c.dict))
		c.dict = append(c.dict, str)
		c.dictIx[str] = k
	}
	c.cache[h] = k + 1
	return k
}

// cacheSlot is a cheap hash of s into [0, dictCacheSize): its length and up to 24
// of its bytes (the first, middle and last eight).
func cacheSlot(s []byte) uint32 {
	n := len(s)
	var x uint64
	switch {
	case n >= 8:
		x = binary.LittleEndian.Uint64(s) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(s[n-8:]), 23)
		if n > 16 {
			x ^= bits.RotateLeft64(binary.LittleEndian.Uint64(s[n/2-4:]), 41)
		}
	case n >= 4:
		x = uint64(binary.LittleEndian.Uint32(s)) | uint64(binary.LittleEndian.Uint32(s[n-4:]))<<32
	case n > 0:
		x = uint64(s[0]) | uint64(s[n/2])<<8 | uint64(s[n-1])<<16
	}
	x = (x ^ uint64(n)) * 0x9e3779b97f4a7c15
	return uint32(x >> (64 - 12)) // dictCacheSize = 1<<12
}

// EndRow completes the current row: columns not set in it become null.
func (b *Builder) EndRow() {
	if b.nset != len(b.cols) || b.nsets > 0 {
		row := b.rows + 1
		for _, c := range b.cols {
			if c.setIn != row {
				c.nullAt(b.rows)
				c.appendZero()
			}
			if c.typ == TypeSet {
				c.setOff = append(c.setOff, int32(len(c.codes)))
			}
		}
	}
	b.rows++
	b.inRow = false
}

// AbortRow drops the current row's values.
func (b *Builder) AbortRow() {
	for _, c := range b.cols {
		if c.setIn == b.rows+1 {
			switch c.typ {
			case TypeInt:
				c.ints = c.ints[:b.rows]
			case TypeFloat:
				c.floats = c.floats[:b.rows]
			case TypeString:
				c.codes = c.codes[:b.rows]
			case TypeSet:
				c.codes = c.codes[:c.setOff[b.rows]]
			}
			if c.nulls {
				c.valid = c.valid[:b.rows]
			}
			c.setIn = 0
		}
	}
	// Columns created during the aborted row stay (all null so far); harmless.
	b.nset = 0
	b.inRow = false
}

// nullAt records that row (the current one, after rows rows) has no value.
func (c *colBuilder) nullAt(row int) {
	if !c.nulls {
		// Every earlier row has a value.
		c.valid = make([]bool, row, max(row+1, cap(c.ints), cap(c.floats), cap(c.codes), cap(c.setOff)))
		for i := range c.valid {
			c.valid[i] = true
		}
		c.nulls = true
	}
	c.valid = append(c.valid, false)
}

// validRows returns one bool per row of the n rows, whether it has a value.
func (c *colBuilder) validRows(n int) []bool {
	if c.nulls {
		return c.valid
	}
	v := make([]bool, n)
	for i := range v {
		v[i] = true
	}
	return v
}

func (c *colBuilder) appendZero() {
	switch c.typ {
	case TypeInt:
		c.ints = append(c.ints, 0)
	case TypeFloat:
		c.floats = append(c.floats, 0)
	case TypeString:
		c.codes = append(c.codes, 0)
	}
}

// HeapBytes estimates the builder's memory use, for accounting.
func (b *Builder) HeapBytes() int64 {
	var n int64
	for _, c := range b.cols {
		n += int64(cap(c.valid)) + int64(cap(c.ints))*8 + int64(cap(c.floats))*8 +
			int64(cap(c.codes))*4 + int64(cap(c.setOff))*4
		for _, s := range c.dict {
			n += int64(len(s)) + 48 // string bytes + map entry and header, roughly
		}
		if c.cache != nil {
			n += dictCacheSize * 4
		}
	}
	return n
}

// Build encodes the rows into an immutable Block with the given id. The builder is
// left unchanged; callers normally discard it. It fails if there are no rows or a
// row lacks the time column.
func (b *Builder) Build(id uint64) (*Block, error) {
	if b.inRow {
		return nil, fmt.Errorf("cannot build block of %q: a row is open", b.table)
	}
	if b.rows == 0 {
		return nil, fmt.Errorf("cannot build block of %q: no rows", b.table)
	}
	if b.rows > MaxRows {
		return nil, fmt.Errorf("cannot build block of %q: %d rows, limit %d", b.table, b.rows, MaxRows)
	}
	blk := &Block{Table: b.table, Rows: b.rows, ID: id}
	for _, c := range b.cols {
		col := c.build(b.rows)
		WarmDictionaries(col.Arr)
		blk.Columns = append(blk.Columns, col)
		blk.Bytes += arrayBytes(col.Arr.Data())
	}
	tc := blk.Column(TimeColumn)
	if tc == nil || tc.Type != TypeInt || tc.Stats.Nulls != 0 {
		blk.Release()
		return nil, fmt.Errorf("cannot build block of %q: every row needs an integer %q", b.table, TimeColumn)
	}
	blk.MinTime, blk.MaxTime = tc.Stats.MinI, tc.Stats.MaxI
	return blk, nil
}

func arrayBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, buf := range d.Buffers() {
		if buf != nil {
			n += int64(buf.Len())
		}
	}
	for _, ch := range d.Children() {
		n += arrayBytes(ch)
	}
	if dd, ok := d.(*array.Data); ok {
		if dict, _ := dd.Dictionary().(*array.Data); dict != nil {
			n += arrayBytes(dict)
		}
	}
	return n
}

// validity returns the Arrow validity bitmap (nil when there are no nulls) and the
// null count.
func validity(valid []bool) (*memory.Buffer, int) {
	nulls := 0
	for _, v := range valid {
		if !v {
			nulls++
		}
	}
	if nulls == 0 {
		return nil, 0
	}
	bm := make([]byte, (len(valid)+7)/8)
	for i, v := range valid {
		if v {
			bm[i/8] |= 1 << (i % 8)
		}
	}
	return memory.NewBufferBytes(bm), nulls
}

func (c *colBuilder) build(n int) Column {
	valid := c.validRows(n)
	var vb *memory.Buffer
	nulls := 0
	if c.nulls {
		vb, nulls = validity(valid)
	}
	col := Column{Name: c.name, Type: c.typ}
	col.Stats.Nulls = nulls
	switch c.typ {
	case TypeInt:
		col.Arr, col.Base = buildInts(c.ints, valid, vb, nulls, &col.Stats)
	case TypeFloat:
		first := true
		for i, v := range c.floats {
			if !valid[i] {
				continue
			}
			if first || v < col.Stats.MinF {
				col.Stats.MinF = v
			}
			if first || v > col.Stats.MaxF {
				col.Stats.MaxF = v
			}
			first = false
		}
		col.Stats.HasMinMax = !first
		vals := append([]float64(nil), c.floats...)
		d := array.NewData(arrow.PrimitiveTypes.Float64, n,
			[]*memory.Buffer{vb, memory.NewBufferBytes(f64Bytes(vals))}, nil, nulls, 0)
		col.Arr = array.MakeFromData(d)
		d.Release()
	case TypeString:
		used := make([]bool, len(c.dict))
		for i, k := range c.codes {
			if valid[i] {
				used[k] = true
			}
		}
		for k, s := range c.dict {
			if !used[k] {
				continue
			}
			if !col.Stats.HasMinMax || s < col.Stats.MinS {
				col.Stats.MinS = s
			}
			if !col.Stats.HasMinMax || s > col.Stats.MaxS {
				col.Stats.MaxS = s
			}
			col.Stats.HasMinMax = true
		}
		d := dictData(c.codes, c.dict, vb, nulls)
		col.Arr = array.MakeFromData(d)
		d.Release()
	case TypeSet:
		child := dictData(c.codes, c.dict, nil, 0)
		offs := append([]int32(nil), c.setOff...)
		d := array.NewData(arrow.ListOf(child.DataType()), n,
			[]*memory.Buffer{vb, memory.NewBufferBytes(i32Bytes(offs))},
			[]arrow.ArrayData{child}, nulls, 0)
		child.Release()
		col.Arr = array.MakeFromData(d)
		d.Release()
	}
	return col
}

// DictIndexType returns the narrowest unsigned index type for a dictionary of n
// entries.
func DictIndexType(n int) arrow.DataType {
	switch {
	case n <= math.MaxUint8+1:
		return arrow.PrimitiveTypes.Uint8
	case n <= math.MaxUint16+1:
		return arrow.PrimitiveTypes.Uint16
	}
	return arrow.PrimitiveTypes.Uint32
}

// dictData builds a dictionary<uintN, utf8> array over codes into dict.
func dictData(codes []uint32, dict []string, vb *memory.Buffer, nulls int) *array.Data {
	it := DictIndexType(len(dict))
	var idx []byte
	switch it.ID() {
	case arrow.UINT8:
		v := make([]uint8, len(codes))
		for i, k := range codes {
			v[i] = uint8(k)
		}
		idx = v
	case arrow.UINT16:
		v := make([]uint16, len(codes))
		for i, k := range codes {
			v[i] = uint16(k)
		}
		idx = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*2)
	default:
		v := append([]uint32(nil), codes...)
		idx = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*4)
	}
	offs := make([]int32, len(dict)+1)
	size := 0
	for _, s := range dict {
		size += len(s)
	}
	data := make([]byte, 0, size)
	for i, s := range dict {
		data = append(data, s...)
		offs[i+1] = int32(len(data))
	}
	dd := array.NewData(arrow.BinaryTypes.String, len(dict),
		[]*memory.Buffer{nil, memory.NewBufferBytes(i32Bytes(offs)), memory.NewBufferBytes(data)}, nil, 0, 0)
	typ := &arrow.DictionaryType{IndexType: it, ValueType: arrow.BinaryTypes.String}
	d := array.NewDataWithDictionary(typ, len(codes), []*memory.Buffer{vb, memory.NewBufferBytes(idx)}, nulls, 0, dd)
	dd.Release()
	return d
}

// buildInts narrows ints to the smallest unsigned width that holds max-min, storing
// value-Base with Base = min; a column that needs 64 bits stays Int64 with Base 0.
func buildInts(vals []int64, valid []bool, vb *memory.Buffer, nulls int, st *ColumnStats) (arrow.Array, int64) {
	first := true
	for i, v := range vals {
		if !valid[i] {
			continue
		}
		if first || v < st.MinI {
			st.MinI = v
		}
		if first || v > st.MaxI {
			st.MaxI = v
		}
		first = false
	}
	st.HasMinMax = !first
	n := len(vals)
	base := st.MinI
	span := uint64(st.MaxI) - uint64(st.MinI)
	var typ arrow.DataType
	var buf []byte
	switch {
	case span <= math.MaxUint8:
		v := make([]uint8, n)
		for i, x := range vals {
			if valid[i] {
				v[i] = uint8(x - base)
			}
		}
		typ, buf = arrow.PrimitiveTypes.Uint8, v
	case span <= math.MaxUint16:
		v := make([]uint16, n)
		for i, x := range vals {
			if valid[i] {
				v[i] = uint16(x - base)
			}
		}
		typ, buf = arrow.PrimitiveTypes.Uint16, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), n*2)
	case span <= math.MaxUint32:
		v := make([]uint32, n)
		for i, x := range vals {
			if valid[i] {
				v[i] = uint32(x - base)
			}
		}
		typ, buf = arrow.PrimitiveTypes.Uint32, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), n*4)
	default:
		v := append([]int64(nil), vals...)
		typ, buf, base = arrow.PrimitiveTypes.Int64, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), n*8), 0
	}
	d := array.NewData(typ, n, []*memory.Buffer{vb, memory.NewBufferBytes(buf)}, nil, nulls, 0)
	defer d.Release()
	return array.MakeFromData(d), base
}

func f64Bytes(v []float64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*8)
}

func i32Bytes(v []int32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*4)
}

// WarmDictionaries materializes the lazily built dictionary arrays inside a (which
// arrow/go creates on first use without locking), so that concurrent readers of a
// block never race to build them. Every code path that makes a block calls it.
func WarmDictionaries(a arrow.Array) {
	switch a := a.(type) {
	case *array.Dictionary:
		a.Dictionary()
	case *array.List:
		WarmDictionaries(a.ListValues())
	}
}
