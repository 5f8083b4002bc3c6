package leaf

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/reef-db/reef/block"
)

// The flat fast path of the NDJSON decoder.
//
// Most events are flat objects: keys without escapes, values that are strings
// without escapes, numbers, booleans or null. For such a line the decoder does not
// build fastjson's tree (its values, then a visit with a closure per field, then the
// number re-serialized to be parsed): scanFlat tokenizes the line in one pass into
// d.flat, and flatRow stores the members with the same per-field rules, messages and
// column hints as the general path (decoder.field at depth 1). A line that is
// anything else — nested objects, arrays, escapes, control characters in strings,
// numbers outside JSON's grammar, invalid JSON — is left to the general path
// untouched, so both paths accept, store and report exactly the same things
// (FuzzFlatRow checks this).

// flatField is one member of a flat object: its key and value as they appear in the
// line (a string without its quotes).
type flatField struct {
	key   []byte
	val   []byte
	kind  flatKind
	ascii bool // a string of printable ASCII: valid UTF-8 without checking
}

type flatKind uint8

const (
	flatNull flatKind = iota
	flatString
	flatNumber
	flatTrue
	flatFalse
)

// maxFlatFields bounds decoder.flat; a line with more members takes the general
// path.
const maxFlatFields = 256

// flatRow stores line into t if it is a flat object and reports whether it was;
// t.mu is held. A line it does not take is left untouched for the general path.
func (d *decoder) flatRow(t *table, line []byte) bool {
	if !d.scanFlat(line) {
		return false
	}
	defer clear(d.flat) // drop the references into the body
	ts := d.now.Unix()
	for k := range d.flat {
		// The first time member, as fastjson's Object.Get finds it.
		f := &d.flat[k]
		if string(f.key) != block.TimeColumn {
			continue
		}
		var err error
		switch f.kind {
		case flatNull:
		case flatNumber:
			var n number
			if n, err = parseNumber(f.val); err == nil {
				ts, err = timeFromNumber(n, f.val)
			}
		case flatString:
			ts, err = timeFromString(f.val)
		case flatTrue, flatFalse:
			err = fmt.Errorf("a %s is not a time; send unix seconds or an RFC 3339 string", f.kind)
		}
		if err != nil {
			d.rejectRow("cannot use %q: %v", block.TimeColumn, err)
			return true
		}
		break
	}
	d.startRow(t)
	for k := range d.flat {
		f := &d.flat[k]
		d.name = append(d.name[:0], f.key...)
		switch {
		case len(f.key) == 0:
			d.rejectField("empty field name")
			continue
		case string(f.key) == block.TimeColumn:
			// Decoded above (the first occurrence).
			if d.sawTime {
				d.rejectField("duplicate field")
			}
			d.sawTime = true
			continue
		}
		switch f.kind {
		case flatNull:
			// Absent.
		case flatString:
			if f.ascii && len(f.val) <= MaxStringBytes {
				d.putString(t, f.val)
			} else {
				d.stringField(t, f.val)
			}
		case flatNumber:
			n, err := parseNumber(f.val)
			if err != nil {
				d.rejectField("%v", err)
				continue
			}
			d.putNumber(t, n, f.val, string(f.key) == block.SampleRateColumn)
		case flatTrue:
			d.boolField(t, 1)
		case flatFalse:
			d.boolField(t, 0)
		}
	}
	d.name = d.name[:0]
	d.finishRow(t, ts)
	return true
}

// String names the kind as fastjson's Type does, for messages.
func (k flatKind) String() string {
	switch k {
	case flatString:
		return "string"
	case flatNumber:
		return "number"
	case flatTrue:
		return "true"
	case flatFalse:
		return "false"
	}
	return "null"
}

// scanFlat tokenizes line into d.flat if it is a flat object (see the top of this
// file) and reports whether it was. It accepts only strict JSON, a subset of what
// fastjson accepts.
func (d *decoder) scanFlat(line []byte) bool {
	d.flat = d.flat[:0]
	i := skipWS(line, 0)
	if i >= len(line) || line[i] != '{' {
		return false
	}
	i = skipWS(line, i+1)
	if i < len(line) && line[i] == '}' {
		return skipWS(line, i+1) == len(line)
	}
	for len(d.flat) < maxFlatFields {
		if i >= len(line) || line[i] != '"' {
			return false
		}
		key, _, j, ok := scanString(line, i+1)
		if !ok {
			return false
		}
		i = skipWS(line, j)
		if i >= len(line) || line[i] != ':' {
			return false
		}
		i = skipWS(line, i+1)
		if i >= len(line) {
			return false
		}
		f := flatField{key: key}
		switch c := line[i]; {
		case c == '"':
			if f.val, f.ascii, i, ok = scanString(line, i+1); !ok {
				return false
			}
			f.kind = flatString
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(line) && numberByte[line[j]] {
				j++
			}
			if _, ok := jsonNumber(line[i:j]); !ok {
				return false
			}
			f.kind, f.val, i = flatNumber, line[i:j], j
		case c == 't' && hasLiteral(line, i, "true"):
			f.kind, i = flatTrue, i+len("true")
		case c == 'f' && hasLiteral(line, i, "false"):
			f.kind, i = flatFalse, i+len("false")
		case c == 'n' && hasLiteral(line, i, "null"):
			f.kind, i = flatNull, i+len("null")
		default:
			return false
		}
		d.flat = append(d.flat, f)
		i = skipWS(line, i)
		if i >= len(line) {
			return false
		}
		switch line[i] {
		case ',':
			i = skipWS(line, i+1)
		case '}':
			return skipWS(line, i+1) == len(line)
		default:
			return false
		}
	}
	return false
}

// scanString scans a JSON string whose opening quote is before line[i]. It returns
// its contents, whether they are printable ASCII, and the index after the closing
// quote; ok is false for a string with an escape or a control character, or without
// an end.
func scanString(line []byte, i int) (s []byte, ascii bool, end int, ok bool) {
	ascii = true
	j := i
	// Eight bytes at a time while they are all plain (printable ASCII, no '"' or
	// '\\'); the byte loop below takes the first one that is not, and the tail.
	for ; j+8 <= len(line); j += 8 {
		x := binary.LittleEndian.Uint64(line[j:])
		if np := notPlain(x); np != 0 {
			// The lowest flagged byte is the first that is not plain (a borrow
			// only flags bytes above it).
			j += bits.TrailingZeros64(np) >> 3
			break
		}
	}
	for ; j < len(line); j++ {
		switch c := line[j]; {
		case plainString[c]:
		case c == '"':
			return line[i:j], ascii, j + 1, true
		case c >= 0x80:
			ascii = false
		default: // '\\' or a control character
			return nil, false, 0, false
		}
	}
	return nil, false, 0, false
}

// notPlain returns a word with the high bit set in each byte of x that is a
// control character, '"', '\\' or not ASCII (and possibly in bytes above such a
// one), or 0 when all eight bytes are plain. A byte b is below 0x20 when b - 0x20
// borrows into its high bit while b's own is clear; b equals c when b^c is zero,
// found the same way with 1.
func notPlain(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ ('"' * ones)
	b := x ^ ('\\' * ones)
	return ((x-0x20*ones)&^x | (q-ones)&^q | (b-ones)&^b | x) & highs
}

// skipWS returns the index of the first byte at or after i that is not JSON
// whitespace.
func skipWS(line []byte, i int) int {
	for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\n' || line[i] == '\r') {
		i++
	}
	return i
}

// hasLiteral reports whether line[i:] starts with lit.
func hasLiteral(line []byte, i int, lit string) bool {
	return len(line)-i >= len(lit) && string(line[i:i+len(lit)]) == lit
}

var (
	// plainString marks the bytes a JSON string holds as they are, in ASCII:
	// printable characters other than '"' and '\\'.
	plainString [256]bool
	// numberByte marks the bytes of JSON's number grammar.
	numberByte [256]bool
)

func init() {
	for c := 0x20; c < 0x80; c++ {
		plainString[c] = c != '"' && c != '\\'
	}
	for _, c := range []byte("0123456789+-.eE") {
		numberByte[c] = true
	}
}
