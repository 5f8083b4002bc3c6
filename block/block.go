// Package block defines reef's row block: up to MaxRows rows of one table held as
// columnar Arrow arrays, plus the per-block metadata (row count, time range,
// per-column min/max and null counts) that lets a query skip a block without touching
// its data.
//
// A Block is immutable once built. Its arrays may live in the Go heap (a block just
// sealed) or point straight into a read-only shared-memory mapping (see package shm);
// code that reads a Block must not care which, and must never write to its buffers.
//
// This package knows nothing of HTTP, SQL or files. The leaf builds blocks, package shm
// stores and maps them, and package query/exec scans them.
package block

import (
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
)

// MaxRows is the most rows one block holds (Scuba's row block size).
const MaxRows = 65536

// TimeColumn is the name of the column every row has: unix seconds.
const TimeColumn = "time"

// SampleRateColumn, when present, says how many events a row stands for.
const SampleRateColumn = "sample_rate"

// Type is a column's logical reef type. The physical Arrow type behind it may be
// narrower (see Column).
type Type uint8

const (
	TypeInvalid Type = iota
	TypeInt          // int64 values
	TypeFloat        // float64 values
	TypeString       // UTF-8 strings
	TypeSet          // set of strings (a JSON array of strings)
)

func (t Type) String() string {
	switch t {
	case TypeInt:
		return "int"
	case TypeFloat:
		return "float"
	case TypeString:
		return "string"
	case TypeSet:
		return "set"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ParseType is the inverse of Type.String.
func ParseType(s string) (Type, error) {
	switch s {
	case "int":
		return TypeInt, nil
	case "float":
		return TypeFloat, nil
	case "string":
		return TypeString, nil
	case "set":
		return TypeSet, nil
	}
	return TypeInvalid, fmt.Errorf("unknown column type %q", s)
}

// Column is one column of a block.
//
// Physical Arrow representation by logical type (what Builder makes; readers must
// accept every form listed):
//   - TypeInt:    *array.Uint8/Uint16/Uint32 holding value-Base, narrowed to the
//     smallest width that holds the block's range (Base = the block's minimum), or
//     *array.Int64 with Base 0. Logical value = int64(raw) + Base.
//   - TypeFloat:  *array.Float64.
//   - TypeString: *array.Dictionary with Uint8/Uint16/Uint32 indices over a
//     *array.String dictionary (one final dictionary per block), or a plain
//     *array.String.
//   - TypeSet:    *array.List whose child is such a dictionary (or plain string)
//     array; the list's validity says whether the row has the set at all.
//
// Nulls are Arrow nulls (validity bitmap). A column absent from a block reads as all
// nulls.
type Column struct {
	Name string
	Type Type
	Arr  arrow.Array
	Base int64 // added to narrowed integer values; 0 otherwise

	Stats ColumnStats
}

// ColumnStats summarise a column for block skipping. Min/Max are valid only when
// HasMinMax is set (a column of all nulls has none). For TypeInt the *I fields are
// used, for TypeFloat the *F fields, for TypeString the *S fields; sets keep none.
type ColumnStats struct {
	Nulls     int
	HasMinMax bool
	MinI      int64
	MaxI      int64
	MinF      float64
	MaxF      float64
	MinS      string
	MaxS      string
}

// Block is an immutable row block of one table.
type Block struct {
	Table   string
	Rows    int
	MinTime int64 // smallest value of the time column
	MaxTime int64 // largest value of the time column
	Columns []Column
	// Bytes is the memory the block's buffers occupy (heap or mapping).
	Bytes int64
	// ID is unique per leaf; it names the block's shm file.
	ID uint64
	// release frees the block's memory (unmaps a file); may be nil.
	release func()
}

// Column returns the named column, or nil if the block has no such column.
func (b *Block) Column(name string) *Column {
	for i := range b.Columns {
		if b.Columns[i].Name == name {
			return &b.Columns[i]
		}
	}
	return nil
}

// SetRelease sets the function Release calls (e.g. munmap for a mapped block).
func (b *Block) SetRelease(f func()) { b.release = f }

// Release frees the block's memory. The block must not be used afterwards, and no
// query may still hold it: the leaf drops a block only after the queries that
// took it have finished.
func (b *Block) Release() {
	if b.release != nil {
		b.release()
		b.release = nil
	}
	for i := range b.Columns {
		if b.Columns[i].Arr != nil {
			b.Columns[i].Arr.Release()
		}
	}
}
