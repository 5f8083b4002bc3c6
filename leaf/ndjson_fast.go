package leaf

import (
	"bytes"
	"encoding/binary"

	"github.com/reef-db/reef/block"
)

// The one-pass path of the NDJSON decoder, tried before the flat path
// (ndjson_flat.go).
//
// A batch's lines mostly have the same keys in the same order, and mostly take the
// plain case of every rule: compact JSON, a key of a column the open block already
// has, a printable ASCII string into a string column, an integer of at most 18
// digits into an int or float column, a short decimal into a float column, null
// (absent, as always).
// fastRow stores such a line while it scans it, with no token list: the k-th key is
// first compared with the k-th key of the last line it stored, `"name":` and all,
// so a key costs one comparison and no lookup. At the first thing that is not the
// plain case — whitespace, an escape, a boolean, a nested value, a new or
// duplicate column, a type to convert, sample_rate, a time that is not a plain
// integer — it drops the row (block.Builder.AbortRow) and the line goes to the
// flat path, which stores or reports it by the full rules. Since fastRow stores only
// what the full rules store in the same way, both give the same rows (FuzzFlatRow
// compares all three paths).

// fastKey is the k-th key of the last line fastRow stored.
type fastKey struct {
	pat []byte  // the key as it appears in the line, quotes and colon included
	col *column // nil: the time field
	// A pat of at most 16 bytes is also kept as two little-endian words w, with
	// masks m of the bytes it has, to compare with one or two loads instead of a
	// call; words is how many words it takes (0: longer).
	words  int
	w0, w1 uint64
	m0, m1 uint64
}

// set makes k the key pat of column col.
func (k *fastKey) set(pat []byte, col *column) {
	k.pat, k.col = append(k.pat[:0], pat...), col
	k.words, k.w0, k.w1, k.m0, k.m1 = 0, 0, 0, 0, 0
	if len(pat) <= 16 {
		var b, m [16]byte
		copy(b[:], pat)
		for i := range pat {
			m[i] = 0xff
		}
		k.words = (len(pat) + 7) / 8
		k.w0, k.w1 = binary.LittleEndian.Uint64(b[:]), binary.LittleEndian.Uint64(b[8:])
		k.m0, k.m1 = binary.LittleEndian.Uint64(m[:]), binary.LittleEndian.Uint64(m[8:])
	}
}

// atEnd reports whether line[i:] starts with k.pat, for a key of more than 16
// bytes or near the end of the line; fastRow compares the others itself, with two
// loads (a call per key would be a tenth of its time).
func (k *fastKey) atEnd(line []byte, i int) bool {
	if k.words == 1 && i+8 <= len(line) {
		return binary.LittleEndian.Uint64(line[i:])&k.m0 == k.w0
	}
	return bytes.HasPrefix(line[i:], k.pat)
}

// fastRow stores line into t in one pass if every field of it takes the plain case
// (see above) and reports whether it did; t.mu is held. When it returns false,
// nothing of the line is stored.
func (d *decoder) fastRow(t *table, line []byte) bool {
	if d.fastTable != t {
		clear(d.fast)
		d.fast, d.fastTable = d.fast[:0], t
	}
	n := len(line)
	if n < 3 || line[0] != '{' || line[1] != '"' {
		return false // not an object, {} or whitespace: the flat path
	}
	b := t.b
	b.BeginRow()
	r := fastState{ts: d.now.Unix()}
	i := 1
	for k := 0; ; k++ {
		// The key, and the column it names.
		var c *column
		absent := false
		hit := false
		if k < len(d.fast) {
			fk := &d.fast[k]
			if b := line[i:]; len(b) >= 16 && fk.words > 0 {
				hit = binary.LittleEndian.Uint64(b)&fk.m0 == fk.w0 && binary.LittleEndian.Uint64(b[8:])&fk.m1 == fk.w1
			} else {
				hit = fk.atEnd(line, i)
			}
		}
		if hit {
			c = d.fast[k].col
			i += len(d.fast[k].pat)
		} else {
			if line[i] != '"' {
				break
			}
			key, ascii, j, ok := scanString(line, i+1)
			if !ok || !ascii || j >= n || line[j] != ':' {
				break
			}
			if string(key) != block.TimeColumn {
				c = t.byName[string(key)]
				if c == nil && len(key) > 0 && hasLiteral(line, j+1, "null") {
					absent = true // null for a column the table lacks: no column
				} else if c == nil || c.name == block.SampleRateColumn {
					break // a new column, or one with rules of its own
				}
			}
			if k < maxHints && !absent {
				for len(d.fast) <= k {
					d.fast = append(d.fast, fastKey{})
				}
				d.fast[k].set(line[i:j+1], c)
			}
			i = j + 1
		}
		if absent {
			i += len("null")
		} else {
			var ok bool
			if i, ok = r.value(b, c, line, i); !ok {
				break
			}
		}

		// What follows the value.
		if i < n && line[i] == ',' && i+1 < n {
			i++
			continue
		}
		if i+1 != n || line[i] != '}' {
			break
		}
		b.SetInt(0, r.ts) // the time column is index 0 of every builder
		b.EndRow()
		d.stored(t, r.ts)
		return true
	}
	b.AbortRow()
	return false
}

// fastState is the row state of fastRow.
type fastState struct {
	ts      int64 // the row's time
	sawTime bool
}

// value stores the value at line[i:] in column c (nil: the time field) if it takes
// the plain case, and returns the index after it.
func (r *fastState) value(b *block.Builder, c *column, line []byte, i int) (int, bool) {
	if i >= len(line) {
		return 0, false
	}
	ch := line[i]
	switch {
	case c == nil: // time
		if r.sawTime || ch < '0' || ch > '9' {
			return 0, false // a duplicate, a negative or not a number: the flat path says why
		}
		v, j, ok := plainInt(line, i)
		if !ok {
			return 0, false
		}
		ts, err := timeFromNumber(number{i: v}, nil)
		if err != nil {
			return 0, false
		}
		r.ts, r.sawTime = ts, true
		return j, true
	case ch == 'n':
		// null: absent, whatever the column (the full rules look no further).
		if !hasLiteral(line, i, "null") {
			return 0, false
		}
		return i + len("null"), true
	case c.bidx < 0 || b.IsSet(c.bidx):
		// The column's first value in this block (the full rules create its
		// builder column), or a duplicate.
		return 0, false
	case ch == '"':
		s, ascii, j, ok := scanString(line, i+1)
		if !ok || !ascii || len(s) > MaxStringBytes || c.typ != block.TypeString {
			return 0, false
		}
		b.SetString(c.bidx, s)
		return j, true
	case ch == '-' || (ch >= '0' && ch <= '9'):
		m, neg, frac, j, ok := plainNumber(line, i)
		if !ok {
			return 0, false
		}
		switch {
		case frac == 0 && c.typ == block.TypeInt:
			b.SetInt(c.bidx, signed(m, neg))
		case frac == 0 && c.typ == block.TypeFloat:
			b.SetFloat(c.bidx, float64(signed(m, neg)))
		case c.typ == block.TypeFloat:
			// Exact: m < 2^53 and 10^frac are exact, and division rounds once
			// (the same value as smallDecimal and strconv.ParseFloat).
			f := float64(m) / pow10[frac]
			if neg {
				f = -f
			}
			b.SetFloat(c.bidx, f)
		default:
			return 0, false
		}
		return j, true
	}
	return 0, false
}

// plainNumber parses the JSON number at line[i:] if it is an integer of at most 18
// digits or a decimal (int.frac) of at most 15, with no exponent, followed by a byte
// that ends a value (',', '}' or the end). It returns its digits as one integer m,
// its sign, the number of digits after the point (0: an integer) and the index
// after it.
func plainNumber(line []byte, i int) (m int64, neg bool, frac, end int, ok bool) {
	neg = line[i] == '-'
	j := i
	if neg {
		j++
	}
	start := j
	for j < len(line) && line[j] >= '0' && line[j] <= '9' {
		m = m*10 + int64(line[j]-'0')
		j++
	}
	digits := j - start
	if digits == 0 || (line[start] == '0' && digits > 1) {
		return 0, false, 0, 0, false
	}
	if j < len(line) && line[j] == '.' {
		j++
		f := j
		for j < len(line) && line[j] >= '0' && line[j] <= '9' {
			m = m*10 + int64(line[j]-'0')
			j++
		}
		frac = j - f
		if frac == 0 || digits+frac > 15 {
			return 0, false, 0, 0, false
		}
	} else if digits > 18 {
		return 0, false, 0, 0, false
	}
	if j < len(line) && line[j] != ',' && line[j] != '}' {
		return 0, false, 0, 0, false
	}
	return m, neg, frac, j, true
}

// signed returns m, negated if neg.
func signed(m int64, neg bool) int64 {
	if neg {
		return -m
	}
	return m
}

// plainInt parses the JSON integer at line[i:] if it has at most 18 digits (it
// cannot overflow) and is followed by a byte that ends a value (',', '}' or the
// end): not a fraction or an exponent. It returns the value and the index after it.
func plainInt(line []byte, i int) (v int64, end int, ok bool) {
	neg := line[i] == '-'
	j := i
	if neg {
		j++
	}
	start := j
	if j+8 <= len(line) {
		// A time has ten digits: take eight at once if there are.
		if x := binary.LittleEndian.Uint64(line[j:]); eightDigits(x) {
			v, j = int64(parseEightDigits(x)), j+8
		}
	}
	for j < len(line) && line[j] >= '0' && line[j] <= '9' {
		v = v*10 + int64(line[j]-'0')
		j++
	}
	digits := j - start
	if digits == 0 || digits > 18 || (line[start] == '0' && digits > 1) {
		return 0, 0, false
	}
	if j < len(line) && line[j] != ',' && line[j] != '}' {
		return 0, 0, false
	}
	if neg {
		v = -v
	}
	return v, j, true
}

// eightDigits reports whether all eight bytes of x are ASCII digits: each has the
// high nibble 3, and adding 6 to it does not carry into the high nibble.
func eightDigits(x uint64) bool {
	const hi, six, three = 0xF0F0F0F0F0F0F0F0, 0x0606060606060606, 0x3030303030303030
	return x&hi == three && (x+six)&hi == three
}

// parseEightDigits returns the value of the eight ASCII digits in x, the first in
// its lowest byte: pairs, then quads, then the whole, in three multiplications
// (D. Lemire, "Faster integer parsing", 2018).
func parseEightDigits(x uint64) uint32 {
	const mask = 0x000000FF000000FF
	const mul1 = 100 + 1000000<<32
	const mul2 = 1 + 10000<<32
	x -= 0x3030303030303030
	x = x*10 + x>>8
	return uint32((x&mask*mul1 + (x>>16)&mask*mul2) >> 32)
}
