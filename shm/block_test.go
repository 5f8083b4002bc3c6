package shm

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/reef-db/reef/block"
)

func TestArrowTypeIDs(t *testing.T) {
	// The layout stores Arrow type ids; these numbers are part of the file format.
	for _, tc := range []struct {
		got  uint8
		want uint8
	}{
		{idUint8, 2}, {idUint16, 4}, {idUint32, 6}, {idInt64, 9},
		{idFloat64, 12}, {idString, 13}, {idList, 25}, {idDictionary, 29},
	} {
		if tc.got != tc.want {
			t.Errorf("arrow type id %s = %d, the layout says %d", arrow.Type(tc.got), tc.got, tc.want)
		}
	}
}

// roundTrip writes b in every form and reads it back each way, comparing with b.
func roundTrip(t *testing.T, b *block.Block) {
	t.Helper()
	dir := t.TempDir()
	fi, err := WriteBlock(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Path != filepath.Join(dir, FileName(b.ID)) || fi.Rows != b.Rows || fi.SchemaHash != SchemaHash(b) {
		t.Fatalf("file info %+v", fi)
	}
	if st, err := os.Stat(fi.Path); err != nil || st.Size() != fi.Size {
		t.Fatalf("stat %s: %v, size %d, info says %d", fi.Path, err, st.Size(), fi.Size)
	}
	if err := VerifyBlock(fi.Path); err != nil {
		t.Fatal(err)
	}

	mapped, err := OpenBlock(fi.Path)
	if err != nil {
		t.Fatal(err)
	}
	sameBlock(t, b, mapped)
	if mapped.Bytes != fi.Size {
		t.Errorf("mapped block Bytes = %d, want the file size %d", mapped.Bytes, fi.Size)
	}
	mapped.Release()

	heap, err := ReadBlockFile(fi.Path)
	if err != nil {
		t.Fatal(err)
	}
	sameBlock(t, b, heap)
	heap.Release()

	cfi, err := Writer{}.WriteCompressed(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	if cfi.CRC32C != fi.CRC32C || cfi.Path != filepath.Join(dir, CompressedFileName(b.ID)) {
		t.Fatalf("compressed info %+v, shm info %+v", cfi, fi)
	}
	comp, err := ReadCompressed(cfi.Path)
	if err != nil {
		t.Fatal(err)
	}
	sameBlock(t, b, comp)
	comp.Release()
}

func TestRoundTripForms(t *testing.T) {
	const n = 300
	manyStrings := func(k int) func(int) any {
		return func(i int) any { return fmt.Sprintf("v%06d", i%k) }
	}
	for _, tc := range []struct {
		name string
		cols []testCol
		// want physical type id of column 1 (after time)
		want arrow.DataType
	}{
		{"uint8 with base", []testCol{{"x", block.TypeInt, gen(n, func(i int) any { return int64(i%256) - 1000 })}},
			arrow.PrimitiveTypes.Uint8},
		{"uint16 with nulls", []testCol{{"x", block.TypeInt, gen(n, func(i int) any {
			if i%3 == 0 {
				return nil
			}
			return int64(i) * 200
		})}}, arrow.PrimitiveTypes.Uint16},
		{"uint32", []testCol{{"x", block.TypeInt, gen(n, func(i int) any { return int64(i)*1_000_000 + 5 })}},
			arrow.PrimitiveTypes.Uint32},
		{"int64 extremes", []testCol{{"x", block.TypeInt, gen(n, func(i int) any {
			return []int64{math.MinInt64, math.MaxInt64, 0, -1}[i%4]
		})}}, arrow.PrimitiveTypes.Int64},
		{"floats with nulls", []testCol{{"x", block.TypeFloat, gen(n, func(i int) any {
			switch i % 4 {
			case 0:
				return nil
			case 1:
				return math.Inf(1)
			case 2:
				return math.Copysign(0, -1)
			}
			return -float64(i) / 3
		})}}, arrow.PrimitiveTypes.Float64},
		{"dictionary uint8", []testCol{{"x", block.TypeString, gen(n, func(i int) any {
			if i%5 == 0 {
				return nil
			}
			return []string{"", "é", "a\x00b", "long " + string(make([]byte, 100))}[i%4]
		})}}, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Uint8, ValueType: arrow.BinaryTypes.String}},
		{"dictionary uint16 (>256 entries)", []testCol{{"x", block.TypeString, gen(n, manyStrings(290))}},
			&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Uint16, ValueType: arrow.BinaryTypes.String}},
		{"set with empty and null rows", []testCol{{"x", block.TypeSet, gen(n, func(i int) any {
			switch i % 3 {
			case 0:
				return nil
			case 1:
				return []string{}
			}
			return []string{"x", fmt.Sprint(i % 7), "x"}
		})}}, arrow.ListOf(&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Uint8, ValueType: arrow.BinaryTypes.String})},
		{"all null int", []testCol{{"x", block.TypeInt, gen(n, func(int) any { return nil })}}, arrow.PrimitiveTypes.Uint8},
		{"all null float", []testCol{{"x", block.TypeFloat, gen(n, func(int) any { return nil })}}, arrow.PrimitiveTypes.Float64},
		{"all null string", []testCol{{"x", block.TypeString, gen(n, func(int) any { return nil })}},
			&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Uint8, ValueType: arrow.BinaryTypes.String}},
		{"all null set", []testCol{{"x", block.TypeSet, gen(n, func(int) any { return nil })}},
			arrow.ListOf(&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Uint8, ValueType: arrow.BinaryTypes.String})},
		{"all empty sets", []testCol{{"x", block.TypeSet, gen(n, func(int) any { return []string{} })}},
			arrow.ListOf(&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Uint8, ValueType: arrow.BinaryTypes.String})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cols := append([]testCol{{"time", block.TypeInt, times(1000, n)}}, tc.cols...)
			b := buildBlock(t, "t", 42, cols)
			defer b.Release()
			if got := b.Columns[1].Arr.DataType(); !arrow.TypeEqual(got, tc.want) {
				t.Fatalf("test block has physical type %v, want %v", got, tc.want)
			}
			roundTrip(t, b)
		})
	}
}

func TestRoundTripWide(t *testing.T) {
	// A set whose dictionary has more than 65536 entries (uint32 indices), next
	// to a string dictionary of more than 256 (uint16 indices).
	const n = 3000
	b := buildBlock(t, "wide", 1<<40, []testCol{
		{"time", block.TypeInt, times(1_700_000_000, n)},
		{"s", block.TypeString, gen(n, func(i int) any { return fmt.Sprintf("s%d", i) })},
		{"tags", block.TypeSet, gen(n, func(i int) any {
			if i%100 == 0 {
				return nil
			}
			set := make([]string, 23)
			for k := range set {
				set[k] = fmt.Sprintf("%d.%d", i, k)
			}
			return set
		})},
	})
	defer b.Release()
	if it := b.Column("s").Arr.DataType().(*arrow.DictionaryType).IndexType; it.ID() != arrow.UINT16 {
		t.Fatalf("s index type %v", it)
	}
	child := b.Column("tags").Arr.(*array.List).ListValues()
	if it := child.DataType().(*arrow.DictionaryType).IndexType; it.ID() != arrow.UINT32 {
		t.Fatalf("tags index type %v (dictionary of %d)", it, child.(*array.Dictionary).Dictionary().Len())
	}
	roundTrip(t, b)
}

func TestRoundTripMixed(t *testing.T) {
	b := mixedBlock(t, 3, 5000)
	defer b.Release()
	roundTrip(t, b)
}

// handBlock builds a block whose string column has uint32 dictionary indices and
// whose set column holds plain strings: forms block.Builder does not make but
// readers must accept.
func handBlock(t testing.TB) *block.Block {
	t.Helper()
	tb := array.NewUint8Builder(memory.DefaultAllocator)
	defer tb.Release()
	tb.AppendValues([]uint8{0, 1, 2, 3}, nil)
	timeArr := tb.NewArray()

	db := array.NewDictionaryBuilder(memory.DefaultAllocator,
		&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Uint32, ValueType: arrow.BinaryTypes.String}).(*array.BinaryDictionaryBuilder)
	defer db.Release()
	for _, s := range []string{"b", "a", "b", ""} {
		db.AppendString(s)
	}
	dictArr := db.NewArray()

	lb := array.NewListBuilder(memory.DefaultAllocator, arrow.BinaryTypes.String)
	defer lb.Release()
	vb := lb.ValueBuilder().(*array.StringBuilder)
	lb.Append(true)
	vb.Append("x")
	vb.Append("y")
	lb.AppendNull()
	lb.Append(true)
	lb.Append(true)
	vb.Append("z")
	listArr := lb.NewArray()

	sb := array.NewStringBuilder(memory.DefaultAllocator)
	defer sb.Release()
	sb.AppendValues([]string{"p", "", "q", "p"}, []bool{true, false, true, true})
	strArr := sb.NewArray()

	return &block.Block{
		Table: "hand", Rows: 4, MinTime: 100, MaxTime: 103, ID: 9,
		Columns: []block.Column{
			{Name: "time", Type: block.TypeInt, Arr: timeArr, Base: 100,
				Stats: block.ColumnStats{HasMinMax: true, MinI: 100, MaxI: 103}},
			{Name: "s32", Type: block.TypeString, Arr: dictArr,
				Stats: block.ColumnStats{HasMinMax: true, MinS: "", MaxS: "b"}},
			{Name: "plainset", Type: block.TypeSet, Arr: listArr, Stats: block.ColumnStats{Nulls: 1}},
			{Name: "plain", Type: block.TypeString, Arr: strArr,
				Stats: block.ColumnStats{Nulls: 1, HasMinMax: true, MinS: "p", MaxS: "q"}},
		},
	}
}

func TestRoundTripHandBuiltForms(t *testing.T) {
	b := handBlock(t)
	defer b.Release()
	roundTrip(t, b)
}

func TestZeroCopy(t *testing.T) {
	b := mixedBlock(t, 5, 1000)
	defer b.Release()
	dir := t.TempDir()
	fi, err := WriteBlock(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	got, data, err := openBlock(fi.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	hi := lo + uintptr(len(data))
	var check func(col string, d arrow.ArrayData)
	checked := 0
	check = func(col string, d arrow.ArrayData) {
		for i, buf := range d.Buffers() {
			if buf == nil || buf.Len() == 0 {
				continue
			}
			p := uintptr(unsafe.Pointer(unsafe.SliceData(buf.Bytes())))
			if p < lo || p+uintptr(buf.Len()) > hi {
				t.Errorf("column %q buffer %d at %#x is outside the mapping [%#x,%#x)", col, i, p, lo, hi)
			}
			if p%bufAlign != 0 {
				t.Errorf("column %q buffer %d at %#x is not 64-byte aligned", col, i, p)
			}
			checked++
		}
		for _, ch := range d.Children() {
			check(col, ch)
		}
		if dd := d.(*array.Data).Dictionary(); dd != nil && dd.(*array.Data) != nil {
			check(col, dd)
		}
	}
	for _, c := range got.Columns {
		check(c.Name, c.Arr.Data())
	}
	if checked < len(got.Columns) {
		t.Fatalf("only %d buffers checked", checked)
	}
}

func TestWriteRejectsBadBlocks(t *testing.T) {
	good := func() *block.Block { return buildBlock(t, "t", 1, []testCol{{"time", block.TypeInt, times(5, 10)}}) }
	for _, tc := range []struct {
		name   string
		modify func(b *block.Block)
	}{
		{"no rows", func(b *block.Block) { b.Rows = 0 }},
		{"too many rows", func(b *block.Block) { b.Rows = block.MaxRows + 1 }},
		{"row count mismatch", func(b *block.Block) { b.Rows = 9 }},
		{"no time column", func(b *block.Block) { b.Columns[0].Name = "t" }},
		{"time range disagrees", func(b *block.Block) { b.MaxTime++ }},
		{"wrong logical type", func(b *block.Block) { b.Columns[0].Type = block.TypeFloat }},
		{"null count disagrees", func(b *block.Block) { b.Columns[0].Stats.Nulls = 3 }},
		{"duplicate column", func(b *block.Block) { b.Columns = append(b.Columns, b.Columns[0]) }},
		{"missing array", func(b *block.Block) { b.Columns[0].Arr = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := good()
			tc.modify(b)
			dir := t.TempDir()
			if _, err := WriteBlock(dir, b); err == nil {
				t.Fatal("write succeeded")
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Fatalf("failed write left %d files", len(ents))
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	b := mixedBlock(t, 1, 50)
	defer b.Release()
	dir := t.TempDir()
	fi, err := WriteBlock(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(fi.Path)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(d []byte) []byte) string {
		d := f(append([]byte(nil), orig...))
		p := filepath.Join(t.TempDir(), "x.blk")
		if err := os.WriteFile(p, d, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		path string
		want error
	}{
		{"missing file", filepath.Join(dir, "nope.blk"), os.ErrNotExist},
		{"empty file", edit(func(d []byte) []byte { return nil }), ErrCorrupt},
		{"one byte", edit(func(d []byte) []byte { return d[:1] }), ErrCorrupt},
		{"fixed header only", edit(func(d []byte) []byte { return d[:fixedHeaderLen] }), ErrCorrupt},
		{"truncated by one", edit(func(d []byte) []byte { return d[:len(d)-1] }), ErrCorrupt},
		{"no trailer", edit(func(d []byte) []byte { return d[:len(d)-trailerLen] }), ErrCorrupt},
		{"half", edit(func(d []byte) []byte { return d[:len(d)/2] }), ErrCorrupt},
		{"extended", edit(func(d []byte) []byte { return append(d, 0) }), ErrCorrupt},
		{"wrong magic", edit(func(d []byte) []byte { d[0] = 'X'; return d }), ErrCorrupt},
		{"version 2", edit(func(d []byte) []byte { d[8] = 2; return d }), ErrVersion},
		{"version 0", edit(func(d []byte) []byte { d[8] = 0; return d }), ErrVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for name, open := range map[string]func(string) (*block.Block, error){
				"OpenBlock": OpenBlock, "ReadBlockFile": ReadBlockFile,
			} {
				got, err := open(tc.path)
				if err == nil {
					got.Release()
					t.Fatalf("%s succeeded", name)
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("%s: %v, want %v", name, err, tc.want)
				}
			}
			if tc.want != os.ErrNotExist {
				if err := VerifyBlock(tc.path); !IsCorrupt(err) {
					t.Fatalf("VerifyBlock: %v", err)
				}
			}
		})
	}
}

func TestCompressedDamage(t *testing.T) {
	b := mixedBlock(t, 1, 500)
	defer b.Release()
	dir := t.TempDir()
	fi, err := WriteCompressed(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(fi.Path)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "damaged.blk.sz")
	// Bytes of the compressed file, flipped: snappy's chunk checksums or the
	// layout's own checks must catch it, unless the damage does not change the
	// uncompressed bytes (a copy redirected to equal bytes).
	step := max(1, len(orig)/300)
	for i := 0; i < len(orig); i += step {
		d := append([]byte(nil), orig...)
		d[i] ^= 0x20
		if err := os.WriteFile(p, d, 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := ReadCompressed(p); err == nil {
			sameBlock(t, b, got)
			got.Release()
		} else if !IsCorrupt(err) {
			t.Fatalf("flipped byte %d: error %v wraps neither ErrCorrupt nor ErrVersion", i, err)
		}
	}
	for _, n := range []int{0, 10, len(orig) / 2, len(orig) - 1} {
		if err := os.WriteFile(p, orig[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := ReadCompressed(p); err == nil {
			got.Release()
			t.Fatalf("truncated to %d bytes: read succeeded", n)
		}
	}
}

// fixHeaderCRC recomputes the header checksum of a (damaged) file, when its header
// length field still makes sense, so the checks behind the checksum get exercised.
func fixHeaderCRC(d []byte) bool {
	if len(d) < minFileLen {
		return false
	}
	h := int(uint32(d[12]) | uint32(d[13])<<8 | uint32(d[14])<<16 | uint32(d[15])<<24)
	if h < fixedHeaderLen+4 || h > len(d) {
		return false
	}
	crc := crc32c(d[:h-4])
	d[h-4], d[h-3], d[h-2], d[h-1] = byte(crc), byte(crc>>8), byte(crc>>16), byte(crc>>24)
	return true
}

// openDamaged decodes d from aligned heap memory; if that succeeds it touches
// every value. It reports whether decode succeeded.
func openDamaged(d []byte) bool {
	buf := alignedBytes(len(d))
	copy(buf, d)
	// The deferred path (layout now, data later) must agree with the full one.
	lazy := alignedBytes(len(d))
	copy(lazy, d)
	lb, nodes, lerr := decode(lazy, true)
	if lerr == nil {
		lerr = checkNodesData(lb, nodes)
		lb.Release()
	}
	b, _, err := decode(buf, false)
	if (err == nil) != (lerr == nil) {
		panic(fmt.Sprintf("full decode says %v, layout-only decode then data checks say %v", err, lerr))
	}
	if err != nil {
		if !IsCorrupt(err) {
			panic(fmt.Sprintf("decode error wraps neither ErrCorrupt nor ErrVersion: %v", err))
		}
		return false
	}
	touchAll(b)
	b.Release()
	return true
}

func TestEveryByteFlipped(t *testing.T) {
	b := buildBlock(t, "t", 77, []testCol{
		{"time", block.TypeInt, times(10, 6)},
		{"n", block.TypeInt, []any{int64(-1), nil, int64(5), int64(1 << 40), int64(0), int64(3)}},
		{"f", block.TypeFloat, []any{1.5, nil, 2.5, nil, 0.0, -1.0}},
		{"s", block.TypeString, []any{"a", "bb", nil, "a", "", "ccc"}},
		{"tags", block.TypeSet, []any{[]string{"x"}, nil, []string{}, []string{"y", "x"}, nil, []string{"z"}}},
		{"empty", block.TypeString, []any{nil, nil, nil, nil, nil, nil}},
	})
	defer b.Release()
	fi, err := WriteBlock(t.TempDir(), b)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(fi.Path)
	if err != nil {
		t.Fatal(err)
	}
	hlen := int(uint32(orig[12]) | uint32(orig[13])<<8)
	opened, openedFixed := 0, 0
	for i := range orig {
		for _, bit := range []byte{0x01, 0x80} {
			d := append([]byte(nil), orig...)
			d[i] ^= bit
			ok := openDamaged(d)
			if ok {
				opened++
				if i < hlen {
					t.Fatalf("flipped header byte %d (bit %#x) opened", i, bit)
				}
			}
			if _, err := verifyData(d); err == nil {
				t.Fatalf("flipped byte %d (bit %#x): file checksum still matches", i, bit)
			}
			// With the header checksum repaired, only the structural checks
			// stand between the damage and a query: they must hold.
			if i < hlen && fixHeaderCRC(d) && openDamaged(d) {
				openedFixed++
			}
		}
	}
	t.Logf("%d-byte file (header %d): %d damaged copies opened, %d with a repaired header checksum",
		len(orig), hlen, opened, openedFixed)
}

func TestVerifyDetectsDataDamage(t *testing.T) {
	b := mixedBlock(t, 1, 2000)
	defer b.Release()
	dir := t.TempDir()
	fi, err := WriteBlock(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	d, err := os.ReadFile(fi.Path)
	if err != nil {
		t.Fatal(err)
	}
	// A float value byte: opening cannot see it, the checksum can.
	got, data, err := openBlock(fi.Path)
	if err != nil {
		t.Fatal(err)
	}
	vals := got.Column("f").Arr.Data().Buffers()[1].Bytes()
	off := uintptr(unsafe.Pointer(unsafe.SliceData(vals))) - uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	got.Release()
	d[off+8*3] ^= 0xff
	if err := os.WriteFile(fi.Path, d, 0o600); err != nil {
		t.Fatal(err)
	}
	opened, err := OpenBlock(fi.Path)
	if err != nil {
		t.Fatalf("damage in float data should pass the open checks: %v", err)
	}
	opened.Release()
	if err := VerifyBlock(fi.Path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("VerifyBlock: %v", err)
	}
	if _, err := ReadBlockFile(fi.Path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadBlockFile: %v", err)
	}
}

func TestOverwriteAndNoTempLeft(t *testing.T) {
	dir := t.TempDir()
	a := buildBlock(t, "t", 1, []testCol{{"time", block.TypeInt, times(5, 3)}})
	b := buildBlock(t, "t", 1, []testCol{{"time", block.TypeInt, times(9, 4)}})
	if _, err := (Writer{Sync: true}).WriteBlock(dir, a); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteBlock(dir, b); err != nil {
		t.Fatal(err)
	}
	got, err := OpenBlock(filepath.Join(dir, FileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	sameBlock(t, b, got)
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d files, want 1", len(ents))
	}
}

func TestFileNames(t *testing.T) {
	for _, tc := range []struct {
		name       string
		id         uint64
		compressed bool
		ok         bool
	}{
		{FileName(0), 0, false, true},
		{FileName(math.MaxUint64), math.MaxUint64, false, true},
		{CompressedFileName(0xabc), 0xabc, true, true},
		{"0000000000000001.blk", 1, false, true},
		{"1.blk", 0, false, false},
		{"000000000000000g.blk", 0, false, false},
		{"../00000000000001.blk", 0, false, false},
		{"0000000000000001.blk.tmp", 0, false, false},
		{"MANIFEST", 0, false, false},
	} {
		id, c, ok := ParseFileName(tc.name)
		if ok != tc.ok || (ok && (id != tc.id || c != tc.compressed)) {
			t.Errorf("ParseFileName(%q) = %d, %v, %v; want %d, %v, %v", tc.name, id, c, ok, tc.id, tc.compressed, tc.ok)
		}
	}
}
