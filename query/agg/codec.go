package agg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/axiomhq/hyperloglog"

	"github.com/reef-db/reef/query/plan"
)

// Binary layout of a Partial (version 1). uvarint/varint are encoding/binary's
// (varint is zig-zag), f64 is an IEEE-754 float64 little-endian, all other
// fixed-width integers are little-endian.
//
//	partial  := magic "RFPT" | version u8 (=1) | flags u8 (bit 0: Truncated; others 0)
//	            | uvarint LeavesTotal | uvarint LeavesResponded
//	            | uvarint RowsInRange | uvarint RowsEstimated | uvarint RowsMatched
//	            | uvarint ngroups | group × ngroups
//	            | uvarint ncolumns | string × ncolumns
//	            | uvarint nrows | row × nrows
//	            | crc32c u32 (Castagnoli, over every byte before it)
//	group    := uvarint nkeys | value × nkeys | uvarint nstates | state × nstates
//	row      := uvarint nvalues | value × nvalues
//	string   := uvarint len | len bytes (UTF-8 is not checked)
//	value    := 0x00                  NULL
//	          | 0x01 varint           int
//	          | 0x02 f64              float
//	          | 0x03 string           string
//	          | 0x04 | 0x05           false | true
//	state    := tag u8 | uvarint len | payload (exactly len bytes):
//	  1 count          varint N
//	  2 sum            flags u8 (bit 0 Seen, bit 1 IsFloat) | varint Int | f64 Float
//	  3 avg            f64 Sum | varint Count
//	  4 min, 5 max     value
//	  6 percentile     f64 Q | f64 zero count | bins (positive) | bins (negative)
//	      bins         := uvarint n | (varint index | f64 count) × n, where the first
//	                      index is absolute and later ones are deltas (> 0) from the
//	                      previous; indexes are SketchMapping's; counts finite, > 0
//	  7 count_distinct the HyperLogLog's own binary form (MarshalBinary, version 2,
//	                   precision 14)
//
// The percentile sketch's index mapping (cubically interpolated logarithmic,
// relative accuracy 1%) and the
// distinct-count hashes (hash.go) are fixed by the version: a change to either needs a
// new version number.
//
// Decode checks every length against the bytes left before allocating, so memory
// use is linear in the input's size; it never panics on any input.

// Magic starts every encoded Partial.
const Magic = "RFPT"

// Version is the layout version AppendEncode writes and Decode accepts.
const Version = 1

const flagTruncated = 1

// hllPrecision is the precision of every distinct-count sketch (hyperloglog.New14).
const hllPrecision = 14

const (
	valNull   = 0
	valInt    = 1
	valFloat  = 2
	valString = 3
	valFalse  = 4
	valTrue   = 5
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by every Decode error.
var ErrCorrupt = errors.New("corrupt partial state")

// Encode writes p's binary form to w.
func Encode(w io.Writer, p *Partial) error {
	if _, err := w.Write(AppendEncode(nil, p)); err != nil {
		return fmt.Errorf("cannot write partial state: %w", err)
	}
	return nil
}

// AppendEncode appends p's binary form to dst and returns the extended slice.
func AppendEncode(dst []byte, p *Partial) []byte {
	start := len(dst)
	dst = append(dst, Magic...)
	var flags byte
	if p.Truncated {
		flags |= flagTruncated
	}
	dst = append(dst, Version, flags)
	for _, n := range []int64{int64(p.LeavesTotal), int64(p.LeavesResponded), p.RowsInRange, p.RowsEstimated, p.RowsMatched} {
		dst = binary.AppendUvarint(dst, uint64(max(n, 0)))
	}
	var scratch []byte
	dst = binary.AppendUvarint(dst, uint64(len(p.Keys)))
	for i, key := range p.Keys {
		dst = binary.AppendUvarint(dst, uint64(len(key)))
		for _, v := range key {
			dst = appendValue(dst, v)
		}
		var states []State
		if i < len(p.States) {
			states = p.States[i]
		}
		dst = binary.AppendUvarint(dst, uint64(len(states)))
		for _, s := range states {
			if s == nil {
				dst = append(dst, 0, 0)
				continue
			}
			scratch = s.appendPayload(scratch[:0])
			dst = append(dst, byte(s.tag()))
			dst = binary.AppendUvarint(dst, uint64(len(scratch)))
			dst = append(dst, scratch...)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(p.Columns)))
	for _, c := range p.Columns {
		dst = appendString(dst, c)
	}
	dst = binary.AppendUvarint(dst, uint64(len(p.Rows)))
	for _, row := range p.Rows {
		dst = binary.AppendUvarint(dst, uint64(len(row)))
		for _, v := range row {
			dst = appendValue(dst, v)
		}
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendF64(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

func appendValue(dst []byte, v plan.Value) []byte {
	switch v.Kind {
	case plan.KindInt:
		return binary.AppendVarint(append(dst, valInt), v.I)
	case plan.KindFloat:
		return appendF64(append(dst, valFloat), v.F)
	case plan.KindString:
		return appendString(append(dst, valString), v.S)
	case plan.KindBool:
		if v.B {
			return append(dst, valTrue)
		}
		return append(dst, valFalse)
	}
	return append(dst, valNull)
}

func (s *CountState) appendPayload(dst []byte) []byte { return binary.AppendVarint(dst, s.N) }

func (s *SumState) appendPayload(dst []byte) []byte {
	var flags byte
	if s.Seen {
		flags |= 1
	}
	if s.IsFloat {
		flags |= 2
	}
	dst = binary.AppendVarint(append(dst, flags), s.Int)
	return appendF64(dst, s.Float)
}

func (s *AvgState) appendPayload(dst []byte) []byte {
	return binary.AppendVarint(appendF64(dst, s.Sum), s.Count)
}

func (s *MinState) appendPayload(dst []byte) []byte { return appendValue(dst, s.V) }
func (s *MaxState) appendPayload(dst []byte) []byte { return appendValue(dst, s.V) }

type bin struct {
	index int
	count float64
}

func (s *PercentileState) appendPayload(dst []byte) []byte {
	dst = appendF64(dst, s.Q)
	dst = appendF64(dst, s.Sketch.GetZeroCount())
	dst = appendBins(dst, s.Sketch.GetPositiveValueStore())
	return appendBins(dst, s.Sketch.GetNegativeValueStore())
}

func appendBins(dst []byte, st store.Store) []byte {
	var bins []bin
	st.ForEach(func(index int, count float64) bool {
		if count > 0 {
			bins = append(bins, bin{index, count})
		}
		return false
	})
	slices.SortFunc(bins, func(a, b bin) int { return a.index - b.index })
	dst = binary.AppendUvarint(dst, uint64(len(bins)))
	prev := 0
	for _, b := range bins {
		dst = binary.AppendVarint(dst, int64(b.index-prev))
		dst = appendF64(dst, b.count)
		prev = b.index
	}
	return dst
}

func (s *DistinctState) appendPayload(dst []byte) []byte {
	out, err := s.HLL.AppendBinary(dst)
	if err != nil {
		// Only an uninitialised sketch fails; encode it as an empty one.
		out, _ = hyperloglog.New14().AppendBinary(dst)
	}
	return out
}

// Decode parses a Partial written by AppendEncode. It checks the checksum and every
// length, and fails (wrapping ErrCorrupt) on any malformed input; it never panics.
// The result does not alias data.
func Decode(data []byte) (*Partial, error) {
	if len(data) < len(Magic)+2+4 {
		return nil, fmt.Errorf("cannot decode partial state: %d bytes is too short: %w", len(data), ErrCorrupt)
	}
	body := data[:len(data)-4]
	if want, got := binary.LittleEndian.Uint32(data[len(body):]), crc32.Checksum(body, castagnoli); want != got {
		return nil, fmt.Errorf("cannot decode partial state: checksum %08x, want %08x: %w", got, want, ErrCorrupt)
	}
	return decodeBody(body)
}

// decodeBody parses everything but the trailing checksum.
func decodeBody(body []byte) (*Partial, error) {
	d := &decoder{b: body}
	p, err := d.partial()
	if err != nil {
		return nil, fmt.Errorf("cannot decode partial state: at byte %d: %w", d.pos, err)
	}
	return p, nil
}

type decoder struct {
	b   []byte
	pos int
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrCorrupt)
}

func (d *decoder) left() int { return len(d.b) - d.pos }

func (d *decoder) byte(what string) (byte, error) {
	if d.pos >= len(d.b) {
		return 0, corrupt("truncated before %s", what)
	}
	c := d.b[d.pos]
	d.pos++
	return c, nil
}

func (d *decoder) uvarint(what string) (uint64, error) {
	v, n := binary.Uvarint(d.b[d.pos:])
	if n <= 0 {
		return 0, corrupt("bad or truncated %s", what)
	}
	d.pos += n
	return v, nil
}

func (d *decoder) varint(what string) (int64, error) {
	v, n := binary.Varint(d.b[d.pos:])
	if n <= 0 {
		return 0, corrupt("bad or truncated %s", what)
	}
	d.pos += n
	return v, nil
}

// count reads a uvarint element count and checks that the bytes left can hold that
// many elements of at least minSize bytes each.
func (d *decoder) count(what string, minSize int) (int, error) {
	n, err := d.uvarint(what)
	if err != nil {
		return 0, err
	}
	if n > uint64(d.left()/minSize) {
		return 0, corrupt("%s %d exceeds the %d bytes left", what, n, d.left())
	}
	return int(n), nil
}

// nonNeg reads a uvarint that must fit an int64.
func (d *decoder) nonNeg(what string) (int64, error) {
	v, err := d.uvarint(what)
	if err != nil {
		return 0, err
	}
	if v > math.MaxInt64 {
		return 0, corrupt("%s %d out of range", what, v)
	}
	return int64(v), nil
}

func (d *decoder) f64(what string) (float64, error) {
	if d.left() < 8 {
		return 0, corrupt("truncated %s", what)
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.pos:]))
	d.pos += 8
	return f, nil
}

func (d *decoder) string(what string) (string, error) {
	n, err := d.count(what+" length", 1)
	if err != nil {
		return "", err
	}
	s := string(d.b[d.pos : d.pos+n])
	d.pos += n
	return s, nil
}

func (d *decoder) value() (plan.Value, error) {
	tag, err := d.byte("value")
	if err != nil {
		return plan.Value{}, err
	}
	switch tag {
	case valNull:
		return plan.Null(), nil
	case valInt:
		i, err := d.varint("int value")
		return plan.Int(i), err
	case valFloat:
		f, err := d.f64("float value")
		return plan.Float(f), err
	case valString:
		s, err := d.string("string value")
		return plan.String(s), err
	case valFalse, valTrue:
		return plan.Bool(tag == valTrue), nil
	}
	return plan.Value{}, corrupt("unknown value tag %d", tag)
}

func (d *decoder) values(what string) ([]plan.Value, error) {
	n, err := d.count(what, 1)
	if err != nil {
		return nil, err
	}
	vals := make([]plan.Value, n)
	for i := range vals {
		if vals[i], err = d.value(); err != nil {
			return nil, err
		}
	}
	return vals, nil
}

func (d *decoder) partial() (*Partial, error) {
	if d.left() < len(Magic)+2 || string(d.b[:len(Magic)]) != Magic {
		return nil, corrupt("bad magic")
	}
	d.pos = len(Magic)
	if v := d.b[d.pos]; v != Version {
		return nil, corrupt("unsupported version %d (want %d)", v, Version)
	}
	flags := d.b[d.pos+1]
	if flags&^flagTruncated != 0 {
		return nil, corrupt("unknown flags %#x", flags)
	}
	d.pos += 2
	p := &Partial{Truncated: flags&flagTruncated != 0}
	var cov [5]int64
	for i, what := range []string{"leaves_total", "leaves_responded", "rows_in_range", "rows_estimated", "rows_matched"} {
		v, err := d.nonNeg(what)
		if err != nil {
			return nil, err
		}
		cov[i] = v
	}
	if cov[0] > math.MaxInt32 || cov[1] > math.MaxInt32 {
		return nil, corrupt("leaf counts %d/%d out of range", cov[1], cov[0])
	}
	p.LeavesTotal, p.LeavesResponded = int(cov[0]), int(cov[1])
	p.RowsInRange, p.RowsEstimated, p.RowsMatched = cov[2], cov[3], cov[4]

	ngroups, err := d.count("group count", 2)
	if err != nil {
		return nil, err
	}
	if ngroups > 0 {
		p.Keys = make([][]plan.Value, 0, ngroups)
		p.States = make([][]State, 0, ngroups)
	}
	for g := 0; g < ngroups; g++ {
		key, err := d.values("key length")
		if err != nil {
			return nil, fmt.Errorf("group %d: %w", g, err)
		}
		nstates, err := d.count("state count", 2)
		if err != nil {
			return nil, fmt.Errorf("group %d: %w", g, err)
		}
		states := make([]State, nstates)
		for i := range states {
			if states[i], err = d.state(); err != nil {
				return nil, fmt.Errorf("group %d state %d: %w", g, i, err)
			}
		}
		p.Keys = append(p.Keys, key)
		p.States = append(p.States, states)
	}

	ncols, err := d.count("column count", 1)
	if err != nil {
		return nil, err
	}
	if ncols > 0 {
		p.Columns = make([]string, ncols)
	}
	for i := range p.Columns {
		if p.Columns[i], err = d.string("column name"); err != nil {
			return nil, err
		}
	}
	nrows, err := d.count("row count", 1)
	if err != nil {
		return nil, err
	}
	if nrows > 0 {
		p.Rows = make([][]plan.Value, 0, nrows)
	}
	for r := 0; r < nrows; r++ {
		row, err := d.values("row length")
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", r, err)
		}
		p.Rows = append(p.Rows, row)
	}
	if d.left() != 0 {
		return nil, corrupt("%d trailing bytes", d.left())
	}
	return p, nil
}

func (d *decoder) state() (State, error) {
	tag, err := d.byte("state tag")
	if err != nil {
		return nil, err
	}
	n, err := d.count("state length", 1)
	if err != nil {
		return nil, err
	}
	sub := &decoder{b: d.b[d.pos : d.pos+n]}
	s, err := sub.statePayload(Tag(tag))
	if err != nil {
		d.pos += sub.pos
		return nil, err
	}
	if sub.left() != 0 {
		d.pos += sub.pos
		return nil, corrupt("%d bytes left over in state payload", sub.left())
	}
	d.pos += n
	return s, nil
}

func (d *decoder) statePayload(tag Tag) (State, error) {
	switch tag {
	case TagCount:
		n, err := d.varint("count")
		return &CountState{N: n}, err
	case TagSum:
		flags, err := d.byte("sum flags")
		if err != nil {
			return nil, err
		}
		if flags&^3 != 0 {
			return nil, corrupt("unknown sum flags %#x", flags)
		}
		s := &SumState{Seen: flags&1 != 0, IsFloat: flags&2 != 0}
		if s.Int, err = d.varint("sum int"); err != nil {
			return nil, err
		}
		s.Float, err = d.f64("sum float")
		return s, err
	case TagAvg:
		s := &AvgState{}
		var err error
		if s.Sum, err = d.f64("avg sum"); err != nil {
			return nil, err
		}
		s.Count, err = d.varint("avg count")
		return s, err
	case TagMin:
		v, err := d.value()
		return &MinState{V: v}, err
	case TagMax:
		v, err := d.value()
		return &MaxState{V: v}, err
	case TagPercentile:
		return d.percentile()
	case TagDistinct:
		if d.left() >= 2 && d.b[d.pos+1] != hllPrecision {
			return nil, corrupt("distinct-count sketch of precision %d, want %d", d.b[d.pos+1], hllPrecision)
		}
		hll := new(hyperloglog.Sketch)
		if err := hll.UnmarshalBinary(d.b[d.pos:]); err != nil {
			return nil, corrupt("bad distinct-count sketch: %v", err)
		}
		d.pos = len(d.b)
		return &DistinctState{HLL: hll}, nil
	}
	return nil, corrupt("unknown state tag %d", tag)
}

func (d *decoder) percentile() (State, error) {
	q, err := d.f64("quantile")
	if err != nil {
		return nil, err
	}
	if !(q >= 0 && q <= 1) {
		return nil, corrupt("quantile %v outside [0, 1]", q)
	}
	zero, err := d.f64("zero count")
	if err != nil {
		return nil, err
	}
	if !(zero >= 0 && zero <= math.MaxFloat64) {
		return nil, corrupt("bad zero count %v", zero)
	}
	// Decoded sketches use sparse stores: memory proportional to the bins present,
	// whatever their indexes.
	sk := ddsketch.NewDDSketch(SketchMapping, store.NewSparseStore(), store.NewSparseStore())
	for _, st := range []store.Store{sk.GetPositiveValueStore(), sk.GetNegativeValueStore()} {
		if err := d.bins(st); err != nil {
			return nil, err
		}
	}
	if zero > 0 {
		if err := sk.AddWithCount(0, zero); err != nil {
			return nil, corrupt("bad zero count %v: %v", zero, err)
		}
	}
	return &PercentileState{Q: q, Sketch: sk}, nil
}

func (d *decoder) bins(st store.Store) error {
	n, err := d.count("bin count", 9)
	if err != nil {
		return err
	}
	index := int64(0)
	for i := 0; i < n; i++ {
		delta, err := d.varint("bin index")
		if err != nil {
			return err
		}
		if i > 0 && delta <= 0 {
			return corrupt("bin %d: indexes must increase", i)
		}
		if delta < int64(sketchMinIndex)-index || delta > int64(sketchMaxIndex)-index {
			return corrupt("bin %d: index out of range", i)
		}
		index += delta
		c, err := d.f64("bin count")
		if err != nil {
			return err
		}
		if !(c > 0 && c <= math.MaxFloat64) {
			return corrupt("bin %d: bad count %v", i, c)
		}
		st.AddWithCount(int(index), c)
	}
	return nil
}
