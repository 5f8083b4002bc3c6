package shm

import (
	"fmt"
	"hash/crc32"
	"math"
	"reflect"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/reef-db/reef/block"
)

// testCol declares a column and its value in each row: nil for null, else int64,
// float64, string or []string (an empty slice is an empty set).
type testCol struct {
	name string
	typ  block.Type
	vals []any
}

// buildBlock builds a block with block.Builder. Every column is declared up front,
// so a column of all nulls exists. All columns must have the same number of rows.
func buildBlock(t testing.TB, table string, id uint64, cols []testCol) *block.Block {
	t.Helper()
	bl := block.NewBuilder(table)
	idx := make([]int, len(cols))
	for i, c := range cols {
		var err error
		if idx[i], err = bl.AddColumn(c.name, c.typ); err != nil {
			t.Fatal(err)
		}
	}
	rows := len(cols[0].vals)
	for r := range rows {
		bl.BeginRow()
		for i, c := range cols {
			switch v := c.vals[r].(type) {
			case nil:
			case int64:
				bl.SetInt(idx[i], v)
			case float64:
				bl.SetFloat(idx[i], v)
			case string:
				bl.SetString(idx[i], []byte(v))
			case []string:
				bl.MarkSet(idx[i])
				for _, e := range v {
					bl.AppendSetElem(idx[i], []byte(e))
				}
			default:
				t.Fatalf("column %s row %d: unsupported value %T", c.name, r, v)
			}
		}
		bl.EndRow()
	}
	b, err := bl.Build(id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// times returns n time values starting at t0.
func times(t0 int64, n int) []any {
	v := make([]any, n)
	for i := range v {
		v[i] = t0 + int64(i%60)
	}
	return v
}

// gen returns n values made by f.
func gen(n int, f func(i int) any) []any {
	v := make([]any, n)
	for i := range v {
		v[i] = f(i)
	}
	return v
}

// sameBlock fails the test unless got equals want in metadata, column types,
// physical forms, stats and every value.
func sameBlock(t testing.TB, want, got *block.Block) {
	t.Helper()
	if got.Table != want.Table || got.Rows != want.Rows || got.ID != want.ID ||
		got.MinTime != want.MinTime || got.MaxTime != want.MaxTime {
		t.Fatalf("block meta: got table %q rows %d id %d time [%d,%d], want %q %d %d [%d,%d]",
			got.Table, got.Rows, got.ID, got.MinTime, got.MaxTime,
			want.Table, want.Rows, want.ID, want.MinTime, want.MaxTime)
	}
	if len(got.Columns) != len(want.Columns) {
		t.Fatalf("got %d columns, want %d", len(got.Columns), len(want.Columns))
	}
	for i := range want.Columns {
		w, g := &want.Columns[i], &got.Columns[i]
		if g.Name != w.Name || g.Type != w.Type || g.Base != w.Base {
			t.Fatalf("column %d: got %q %v base %d, want %q %v base %d", i, g.Name, g.Type, g.Base, w.Name, w.Type, w.Base)
		}
		if !arrow.TypeEqual(g.Arr.DataType(), w.Arr.DataType()) {
			t.Errorf("column %q: physical type %v, want %v", w.Name, g.Arr.DataType(), w.Arr.DataType())
		}
		if g.Arr.NullN() != w.Arr.NullN() {
			t.Errorf("column %q: %d nulls, want %d", w.Name, g.Arr.NullN(), w.Arr.NullN())
		}
		if !reflect.DeepEqual(g.Stats, w.Stats) {
			t.Errorf("column %q: stats %+v, want %+v", w.Name, g.Stats, w.Stats)
		}
		for r := range want.Rows {
			gv, wv := g.Value(r), w.Value(r)
			if !reflect.DeepEqual(gv, wv) {
				t.Fatalf("column %q row %d: got %#v, want %#v", w.Name, r, gv, wv)
			}
		}
	}
}

// touchAll reads every value of every column and every dictionary entry, as a
// query might; on a block that passed the open checks it must not panic.
func touchAll(b *block.Block) int {
	n := 0
	for i := range b.Columns {
		c := &b.Columns[i]
		for r := range b.Rows {
			if v := c.Value(r); v != nil {
				n++
			}
		}
		n += touchArray(c.Arr)
	}
	return n
}

func touchArray(a arrow.Array) int {
	n := 0
	switch a := a.(type) {
	case *array.Dictionary:
		for i := range a.Len() {
			n += a.GetValueIndex(i) & 1
		}
		n += touchArray(a.Dictionary())
	case *array.String:
		for i := range a.Len() {
			n += len(a.Value(i))
		}
	case *array.List:
		for i := range a.Len() {
			s, e := a.ValueOffsets(i)
			n += int(e - s)
		}
		n += touchArray(a.ListValues())
	}
	return n
}

// mixedBlock is a block with every column form: narrowed ints of each width,
// int64, floats with nulls, dictionary strings, a set and all-null columns.
func mixedBlock(t testing.TB, id uint64, rows int) *block.Block {
	t.Helper()
	return buildBlock(t, "events", id, []testCol{
		{"time", block.TypeInt, times(1_700_000_000, rows)},
		{"u8", block.TypeInt, gen(rows, func(i int) any { return int64(i%200) - 50 })},
		{"u16", block.TypeInt, gen(rows, func(i int) any {
			if i%7 == 3 {
				return nil
			}
			return int64(i%60000) * 1
		})},
		{"u32", block.TypeInt, gen(rows, func(i int) any { return int64(i) * 65599 })},
		{"i64", block.TypeInt, gen(rows, func(i int) any {
			if i%2 == 0 {
				return int64(math.MinInt64 + i)
			}
			return int64(math.MaxInt64 - i)
		})},
		{"f", block.TypeFloat, gen(rows, func(i int) any {
			switch i % 5 {
			case 0:
				return nil
			case 1:
				return math.Inf(-1)
			}
			return float64(i) * 0.25
		})},
		{"s", block.TypeString, gen(rows, func(i int) any {
			if i%11 == 0 {
				return nil
			}
			return fmt.Sprintf("host-%d", i%17)
		})},
		{"tags", block.TypeSet, gen(rows, func(i int) any {
			switch i % 4 {
			case 0:
				return nil
			case 1:
				return []string{}
			}
			return []string{"a", fmt.Sprintf("t%d", i%5), ""}
		})},
		{"none_i", block.TypeInt, gen(rows, func(int) any { return nil })},
		{"none_f", block.TypeFloat, gen(rows, func(int) any { return nil })},
		{"none_s", block.TypeString, gen(rows, func(int) any { return nil })},
		{"none_set", block.TypeSet, gen(rows, func(int) any { return nil })},
	})
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
