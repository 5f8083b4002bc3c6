package exec

import (
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/reef-db/reef/block"
)

// colView is one column of the block being scanned, unpacked once: typed slices of
// its raw values and a byte-per-row validity mask. Exactly one group of fields is
// set, by kind.
type colView struct {
	kind  viewKind
	col   *block.Column
	n     int
	nulls int
	valid []byte // 1 per non-null row; nil when there are no nulls

	// viewInt: exactly one of the raw slices; value = raw + base.
	u8   []uint8
	u16  []uint16
	u32  []uint32
	i64  []int64
	base int64

	f64 []float64 // viewFloat

	// viewDict: codes (one slice set) into dict; viewPlain: plain strings.
	dict  *array.String
	c8    []uint8
	c16   []uint16
	c32   []uint32
	plain *array.String

	// viewSet: row i holds elements offs[i]..offs[i+1] of elem (a viewDict or
	// viewPlain view without nulls).
	offs []int32
	elem *colView
}

type viewKind uint8

const (
	viewMissing viewKind = iota // the block has no such column: all NULL
	viewInt
	viewFloat
	viewDict
	viewPlain
	viewSet
)

// dictLen is the number of dictionary entries of a viewDict.
func (v *colView) dictLen() int { return v.dict.Len() }

// allNull reports whether no row has a value.
func (v *colView) allNull() bool { return v.kind == viewMissing || v.nulls >= v.n }

// views caches the colViews of the block being scanned.
type views struct {
	blk    *block.Block
	byName map[string]*colView
	pool   []*colView
	used   int
	masks  [][]byte // validity buffers, reused
	nmask  int
}

func (vs *views) reset(b *block.Block) {
	vs.blk = b
	if vs.byName == nil {
		vs.byName = make(map[string]*colView)
	}
	clear(vs.byName)
	vs.used, vs.nmask = 0, 0
}

func (vs *views) alloc() *colView {
	if vs.used == len(vs.pool) {
		vs.pool = append(vs.pool, new(colView))
	}
	v := vs.pool[vs.used]
	vs.used++
	*v = colView{}
	return v
}

func (vs *views) validBuf(n int) []byte {
	if vs.nmask == len(vs.masks) {
		vs.masks = append(vs.masks, make([]byte, block.MaxRows))
	}
	m := vs.masks[vs.nmask]
	vs.nmask++
	if len(m) < n {
		m = make([]byte, n)
		vs.masks[vs.nmask-1] = m
	}
	return m[:n]
}

// get returns the view of the named column (a viewMissing view if absent).
func (vs *views) get(name string) (*colView, error) {
	if v, ok := vs.byName[name]; ok {
		return v, nil
	}
	v := vs.alloc()
	v.n = vs.blk.Rows
	if c := vs.blk.Column(name); c != nil && c.Arr != nil {
		if err := vs.unpack(v, c); err != nil {
			return nil, fmt.Errorf("column %q: %w", name, err)
		}
	}
	vs.byName[name] = v
	return v, nil
}

func (vs *views) unpack(v *colView, c *block.Column) error {
	a := c.Arr
	if a.Len() != v.n {
		return fmt.Errorf("has %d rows, block has %d", a.Len(), v.n)
	}
	v.col = c
	v.nulls = a.NullN()
	if v.nulls > 0 && v.nulls < v.n {
		v.valid = vs.validBuf(v.n)
		fillValid(v.valid, a)
	}
	switch c.Type {
	case block.TypeInt:
		v.kind, v.base = viewInt, c.Base
		switch a := a.(type) {
		case *array.Uint8:
			v.u8 = a.Uint8Values()
		case *array.Uint16:
			v.u16 = a.Uint16Values()
		case *array.Uint32:
			v.u32 = a.Uint32Values()
		case *array.Int64:
			v.i64 = a.Int64Values()
		default:
			return fmt.Errorf("int column stored as %s", a.DataType())
		}
	case block.TypeFloat:
		f, ok := a.(*array.Float64)
		if !ok {
			return fmt.Errorf("float column stored as %s", a.DataType())
		}
		v.kind, v.f64 = viewFloat, f.Float64Values()
	case block.TypeString:
		return unpackStrings(v, a)
	case block.TypeSet:
		l, ok := a.(*array.List)
		if !ok {
			return fmt.Errorf("set column stored as %s", a.DataType())
		}
		off := l.Offsets()
		if len(off) < l.Offset()+v.n+1 {
			return fmt.Errorf("set column has %d offsets for %d rows", len(off), v.n)
		}
		v.kind, v.offs = viewSet, off[l.Offset():l.Offset()+v.n+1]
		elems := l.ListValues()
		v.elem = vs.alloc()
		v.elem.n = elems.Len()
		if err := unpackStrings(v.elem, elems); err != nil {
			return fmt.Errorf("set elements: %w", err)
		}
		for i := 1; i < len(v.offs); i++ {
			if v.offs[i] < v.offs[i-1] {
				return fmt.Errorf("set offsets decrease at row %d", i)
			}
		}
		if v.offs[0] < 0 || int(v.offs[v.n]) > v.elem.n {
			return fmt.Errorf("set offsets [%d, %d] outside %d elements", v.offs[0], v.offs[v.n], v.elem.n)
		}
	default:
		return fmt.Errorf("unknown column type %v", c.Type)
	}
	return nil
}

func unpackStrings(v *colView, a arrow.Array) error {
	switch a := a.(type) {
	case *array.String:
		v.kind, v.plain = viewPlain, a
	case *array.Dictionary:
		d, ok := a.Dictionary().(*array.String)
		if !ok {
			return fmt.Errorf("dictionary of %s", a.Dictionary().DataType())
		}
		v.kind, v.dict = viewDict, d
		switch ix := a.Indices().(type) {
		case *array.Uint8:
			v.c8 = ix.Uint8Values()
		case *array.Uint16:
			v.c16 = ix.Uint16Values()
		case *array.Uint32:
			v.c32 = ix.Uint32Values()
			for _, c := range v.c32 {
				if int(c) >= d.Len() && c != 0 {
					return fmt.Errorf("dictionary code %d beyond %d entries", c, d.Len())
				}
			}
		default:
			return fmt.Errorf("dictionary indices of %s", ix.DataType())
		}
	default:
		return fmt.Errorf("string column stored as %s", a.DataType())
	}
	return nil
}

// fillValid writes 1 for every valid row of a into dst.
func fillValid(dst []byte, a arrow.Array) {
	bm, off := a.NullBitmapBytes(), a.Data().Offset()
	if len(bm) == 0 {
		for i := range dst {
			dst[i] = 1
		}
		return
	}
	for i := range dst {
		j := off + i
		dst[i] = (bm[j>>3] >> (j & 7)) & 1
	}
}
