package block

import (
	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
)

// This file holds slow, general accessors for one value at a time: for tests,
// sample rows and tools. Query kernels read the arrays directly.

// IsNull reports whether row i of the column is null.
func (c *Column) IsNull(i int) bool { return c.Arr.IsNull(i) }

// Int returns row i of a TypeInt column.
func (c *Column) Int(i int) int64 { return RawInt(c.Arr, i) + c.Base }

// RawInt reads element i of any integer array as int64 (without a Base).
func RawInt(a arrow.Array, i int) int64 {
	switch a := a.(type) {
	case *array.Uint8:
		return int64(a.Value(i))
	case *array.Uint16:
		return int64(a.Value(i))
	case *array.Uint32:
		return int64(a.Value(i))
	case *array.Uint64:
		return int64(a.Value(i))
	case *array.Int8:
		return int64(a.Value(i))
	case *array.Int16:
		return int64(a.Value(i))
	case *array.Int32:
		return int64(a.Value(i))
	case *array.Int64:
		return a.Value(i)
	}
	panic("BUG: block.RawInt on " + a.DataType().String())
}

// Float returns row i of a TypeFloat column.
func (c *Column) Float(i int) float64 { return c.Arr.(*array.Float64).Value(i) }

// String returns row i of a TypeString column.
func (c *Column) String(i int) string { return StringAt(c.Arr, i) }

// StringAt reads element i of a string or dictionary-of-string array.
func StringAt(a arrow.Array, i int) string {
	switch a := a.(type) {
	case *array.String:
		return a.Value(i)
	case *array.Dictionary:
		return a.Dictionary().(*array.String).Value(a.GetValueIndex(i))
	}
	panic("BUG: block.StringAt on " + a.DataType().String())
}

// Set returns row i of a TypeSet column (nil for null).
func (c *Column) Set(i int) []string {
	l := c.Arr.(*array.List)
	if l.IsNull(i) {
		return nil
	}
	start, end := l.ValueOffsets(i)
	out := make([]string, 0, end-start)
	for j := start; j < end; j++ {
		out = append(out, StringAt(l.ListValues(), int(j)))
	}
	return out
}

// Value returns row i as nil, int64, float64, string or []string.
func (c *Column) Value(i int) any {
	if c.IsNull(i) {
		return nil
	}
	switch c.Type {
	case TypeInt:
		return c.Int(i)
	case TypeFloat:
		return c.Float(i)
	case TypeString:
		return c.String(i)
	case TypeSet:
		return c.Set(i)
	}
	return nil
}
