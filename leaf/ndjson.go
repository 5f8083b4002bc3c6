package leaf

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/block"
)

// chunkLines is how many lines a writer appends per hold of a table's lock, so that
// a long batch lets queries in between.
const chunkLines = 1024

// decoder turns NDJSON lines into rows of a table's open block. One decoder serves
// one request at a time; its buffers are reused across requests.
//
// The row rules (docs/leaf.md has the full list):
//   - each line is one JSON object; blank lines are skipped; a line that is not
//     a JSON object, or is longer than MaxLineBytes, is rejected whole;
//   - nested objects are flattened with dotted names, at most MaxDepth deep;
//   - JSON integers → int, numbers with a fraction or exponent → float,
//     true/false → int 1/0, strings → string, arrays of strings → set, null → absent;
//   - a value that does not fit its column's type is converted when lossless (int →
//     float column, integral float → int column) and otherwise rejected, field by
//     field: the rest of the row is kept;
//   - time is unix seconds (int, or float truncated), or an RFC 3339 string;
//     values above 1e11 are taken as milliseconds, above 1e14 microseconds, above
//     1e17 nanoseconds; missing or null means the arrival time; an unusable time
//     rejects the row, since it would put the row where no query looks.
type decoder struct {
	p      fastjson.Parser
	name   []byte      // flattened name of the field being decoded
	num    []byte      // raw text of a number
	set    [][]byte    // elements of a set value
	flat   []flatField // members of a flat line (ndjson_flat.go)
	noFlat bool        // tests: the general path only
	noFast bool        // tests: the flat and general paths only

	// The keys of the last line the one-pass path stored, and their table
	// (ndjson_fast.go).
	fast      []fastKey
	fastTable *table

	cfg  *Config
	res  *api.IngestResult
	line int       // 1-based number of the line being decoded
	now  time.Time // arrival time of the batch
	errs int       // field and row errors, including those not listed

	sawTime bool // the current row's top-level object had a time field

	// Rows of a batch mostly have the same fields in the same order: hints[k] is
	// the column that the k-th value of the previous row went to, checked by name
	// before the table's map is consulted.
	hints     []*column
	hintTable *table
	nfield    int // values of the current row so far

	walPos // WAL record of the batch, lines to skip in a replay (persist.go)
}

// maxHints bounds decoder.hints.
const maxHints = 1024

func newDecoder(cfg *Config) *decoder { return &decoder{cfg: cfg} }

// reset prepares d for a new batch whose answer goes to res.
func (d *decoder) reset(res *api.IngestResult, now time.Time) {
	d.res, d.now, d.line, d.errs = res, now, 0, 0
	clear(d.hints)
	d.hints, d.hintTable = d.hints[:0], nil
	d.walPos = walPos{}
}

// ingest decodes body into the named table of st. Rows go in as they are decoded; on
// return every accepted row is visible to queries. It fails only when the table
// cannot be created; rows stored before that stay stored.
func (d *decoder) ingest(st *store, name string, body []byte) error {
	for len(body) > 0 {
		t, err := st.table(name, true)
		if err != nil {
			return err
		}
		t.mu.Lock()
		if t.dropped {
			// Retention removed the table (it had no rows) since the lookup.
			t.mu.Unlock()
			continue
		}
		for n := 0; n < chunkLines && len(body) > 0; n++ {
			var line []byte
			if i := bytes.IndexByte(body, '\n'); i >= 0 {
				line, body = body[:i], body[i+1:]
			} else {
				line, body = body, nil
			}
			d.line++
			d.row(t, line)
		}
		t.account()
		t.mu.Unlock()
	}
	return nil
}

// row decodes one line into t; t.mu is held.
func (d *decoder) row(t *table, line []byte) {
	if n := len(line); n == 0 || line[n-1] != '}' || line[0] != '{' {
		// Not the usual `{…}`: trim, and skip a blank line.
		line = bytes.TrimRight(line, " \t\r")
		if len(line) == 0 || len(bytes.TrimLeft(line, " \t")) == 0 {
			return
		}
	}
	if d.covered() {
		return // a replay, and the row is in a sealed block already
	}
	if len(line) > d.cfg.MaxLineBytes {
		d.rejectRow("line is %d bytes long, the limit is %d", len(line), d.cfg.MaxLineBytes)
		return
	}
	if !d.noFlat && ((!d.noFast && d.fastRow(t, line)) || d.flatRow(t, line)) {
		return
	}
	v, err := d.p.ParseBytes(line)
	if err != nil {
		d.rejectRow("invalid JSON: %v", err)
		return
	}
	o, err := v.Object()
	if err != nil {
		d.rejectRow("line is a JSON %s, not an object", v.Type())
		return
	}
	ts := d.now.Unix()
	if tv := o.Get(block.TimeColumn); tv != nil && tv.Type() != fastjson.TypeNull {
		if ts, err = d.parseTime(tv); err != nil {
			d.rejectRow("cannot use %q: %v", block.TimeColumn, err)
			return
		}
	}
	d.startRow(t)
	d.object(t, o, 1)
	d.finishRow(t, ts)
}

// startRow begins a row of t: the builder's row and the decoder's per-row state.
func (d *decoder) startRow(t *table) {
	t.b.BeginRow()
	d.name = d.name[:0]
	d.sawTime = false
	d.nfield = 0
	if d.hintTable != t {
		clear(d.hints)
		d.hints, d.hintTable = d.hints[:0], t
	}
}

// finishRow completes the row begun by startRow, with time ts.
func (d *decoder) finishRow(t *table, ts int64) {
	t.b.SetInt(0, ts) // the time column is index 0 of every builder
	t.b.EndRow()
	d.stored(t, ts)
}

// object decodes the fields of o, whose flattened name prefix is in d.name.
func (d *decoder) object(t *table, o *fastjson.Object, depth int) {
	o.Visit(func(key []byte, v *fastjson.Value) {
		d.field(t, key, v, depth)
	})
}

func (d *decoder) field(t *table, key []byte, v *fastjson.Value, depth int) {
	prefix := len(d.name)
	defer func() { d.name = d.name[:prefix] }()
	if depth > 1 {
		d.name = append(d.name, '.')
	}
	d.name = append(d.name, key...)
	if len(key) == 0 {
		d.rejectField("empty field name")
		return
	}
	if depth == 1 && string(key) == block.TimeColumn {
		// Decoded by row (the first occurrence).
		if d.sawTime {
			d.rejectField("duplicate field")
		}
		d.sawTime = true
		return
	}
	switch v.Type() {
	case fastjson.TypeNull:
		// Absent.
	case fastjson.TypeObject:
		if depth >= MaxDepth {
			d.rejectField("objects nest deeper than %d levels", MaxDepth)
			return
		}
		o, _ := v.Object()
		d.object(t, o, depth+1)
	case fastjson.TypeArray:
		d.setField(t, v)
	case fastjson.TypeString:
		s, _ := v.StringBytes()
		d.stringField(t, s)
	case fastjson.TypeNumber:
		d.numberField(t, v, depth == 1 && string(key) == block.SampleRateColumn)
	case fastjson.TypeTrue:
		d.boolField(t, 1)
	case fastjson.TypeFalse:
		d.boolField(t, 0)
	}
}

// column returns the builder index of the column named d.name, adding the column
// with type typ if the table has none of that name. It returns -1 (having reported
// the field) when the column cannot be added or already has a value in this row.
func (d *decoder) column(t *table, typ block.Type) (int, *column) {
	k := d.nfield
	d.nfield++
	var c *column
	if k < len(d.hints) && d.hints[k] != nil && d.hints[k].name == string(d.name) {
		c = d.hints[k]
	} else {
		if c = t.byName[string(d.name)]; c == nil {
			// Names in the schema are valid; a new one is checked once, here.
			switch {
			case !utf8.Valid(d.name):
				d.rejectField("field name is not valid UTF-8")
				return -1, nil
			case len(d.name) > MaxColumnNameBytes:
				d.rejectField("field name is %d bytes long, the limit is %d", len(d.name), MaxColumnNameBytes)
				return -1, nil
			case len(t.cols) >= d.cfg.MaxColumns:
				d.rejectField("table %q already has the maximum of %d columns", t.name, d.cfg.MaxColumns)
				return -1, nil
			}
			c = t.addColumn(string(d.name), typ)
		}
		for len(d.hints) <= k && len(d.hints) < maxHints {
			d.hints = append(d.hints, nil)
		}
		if k < len(d.hints) {
			d.hints[k] = c
		}
	}
	i := t.builderIndex(c)
	if t.b.IsSet(i) {
		d.rejectField("duplicate field")
		return -1, nil
	}
	return i, c
}

func (d *decoder) stringField(t *table, s []byte) {
	if reason := checkString(s); reason != "" {
		d.rejectField("string %s", reason)
		return
	}
	d.putString(t, s)
}

// putString stores s, checked, in the column named d.name.
func (d *decoder) putString(t *table, s []byte) {
	i, c := d.column(t, block.TypeString)
	switch {
	case i < 0:
	case c.typ == block.TypeString:
		t.b.SetString(i, s)
	default:
		d.typeMismatch(c, "a string")
	}
}

// checkString returns why s cannot be stored, or "".
func checkString(s []byte) string {
	if len(s) > MaxStringBytes {
		return fmt.Sprintf("is %d bytes long, the limit is %d", len(s), MaxStringBytes)
	}
	if !utf8.Valid(s) {
		return "is not valid UTF-8"
	}
	return ""
}

func (d *decoder) setField(t *table, v *fastjson.Value) {
	elems, _ := v.Array()
	if len(elems) > MaxSetElems {
		d.rejectField("array has %d elements, the limit is %d", len(elems), MaxSetElems)
		return
	}
	d.set = d.set[:0]
	for k, e := range elems {
		if e.Type() != fastjson.TypeString {
			d.rejectField("array element %d is a %s; only arrays of strings (sets) are stored", k+1, e.Type())
			return
		}
		s, _ := e.StringBytes()
		if reason := checkString(s); reason != "" {
			d.rejectField("array element %d %s", k+1, reason)
			return
		}
		d.set = append(d.set, s)
	}
	d.putSet(t)
}

// putSet stores the elements in d.set, all checked, as the set value of the column
// named d.name.
func (d *decoder) putSet(t *table) {
	i, c := d.column(t, block.TypeSet)
	switch {
	case i < 0:
	case c.typ == block.TypeSet:
		// A set holds each element once; sorted, so equal sets are stored alike.
		slices.SortFunc(d.set, bytes.Compare)
		t.b.MarkSet(i)
		for k, s := range d.set {
			if k == 0 || !bytes.Equal(s, d.set[k-1]) {
				t.b.AppendSetElem(i, s)
			}
		}
	default:
		d.typeMismatch(c, "an array")
	}
	clear(d.set) // drop references into the parser's buffer
}

func (d *decoder) numberField(t *table, v *fastjson.Value, sampleRate bool) {
	d.num = v.MarshalTo(d.num[:0])
	n, err := parseNumber(d.num)
	if err != nil {
		d.rejectField("%v", err)
		return
	}
	d.putNumber(t, n, d.num, sampleRate)
}

// putNumber stores n in the column named d.name, converted to the column's type
// when that is lossless; raw is n's text for error messages (nil: n formatted).
func (d *decoder) putNumber(t *table, n number, raw []byte, sampleRate bool) {
	text := func() []byte {
		if raw == nil {
			return n.appendText(d.num[:0])
		}
		return raw
	}
	if sampleRate {
		// sample_rate is always an int column of values ≥ 1.
		r, ok := n.asInt()
		if !ok || r < 1 {
			d.rejectField("%s must be an integer ≥ 1, not %s", block.SampleRateColumn, text())
			return
		}
		n = number{i: r}
	}
	typ := block.TypeInt
	if n.isFloat {
		typ = block.TypeFloat
	}
	i, c := d.column(t, typ)
	if i < 0 {
		return
	}
	switch c.typ {
	case block.TypeInt:
		x, ok := n.asInt()
		if !ok {
			d.rejectField("column is int and %s is not a whole number in the int64 range", text())
			return
		}
		t.b.SetInt(i, x)
	case block.TypeFloat:
		t.b.SetFloat(i, n.asFloat())
	default:
		d.typeMismatch(c, "a number")
	}
}

func (d *decoder) boolField(t *table, x int64) {
	i, c := d.column(t, block.TypeInt)
	switch {
	case i < 0:
	case c.typ == block.TypeInt:
		t.b.SetInt(i, x)
	case c.typ == block.TypeFloat:
		t.b.SetFloat(i, float64(x))
	default:
		d.typeMismatch(c, "a boolean")
	}
}

func (d *decoder) typeMismatch(c *column, what string) {
	hint := ""
	switch c.typ {
	case block.TypeSet:
		hint = " (send an array of strings)"
	case block.TypeString:
		hint = " (send a JSON string)"
	}
	d.rejectField("cannot store %s in column of type %s%s", what, c.typ, hint)
}

func (d *decoder) rejectRow(format string, args ...any) {
	d.res.Rejected++
	d.report(api.RowError{Line: d.line, Reason: fmt.Sprintf(format, args...)})
}

func (d *decoder) rejectField(format string, args ...any) {
	d.report(api.RowError{Line: d.line, Field: string(d.name), Reason: fmt.Sprintf(format, args...)})
}

func (d *decoder) report(e api.RowError) {
	d.errs++
	if len(d.res.Errors) >= maxReportedErrors {
		d.res.ErrorsCut = true
		return
	}
	d.res.Errors = append(d.res.Errors, e)
}

// number is a JSON number: an int, or a float when it has a fraction or exponent.
type number struct {
	i       int64
	f       float64
	isFloat bool
}

// asInt returns the number as an int64 if it is a whole number in range.
func (n number) asInt() (int64, bool) {
	if !n.isFloat {
		return n.i, true
	}
	// 2^63 is exactly representable; every float below it in magnitude converts.
	if n.f != math.Trunc(n.f) || n.f < -(1<<63) || n.f >= 1<<63 {
		return 0, false
	}
	return int64(n.f), true
}

// appendText appends n as text to b.
func (n number) appendText(b []byte) []byte {
	if n.isFloat {
		return strconv.AppendFloat(b, n.f, 'g', -1, 64)
	}
	return strconv.AppendInt(b, n.i, 10)
}

func (n number) asFloat() float64 {
	if n.isFloat {
		return n.f
	}
	return float64(n.i)
}

var errBadNumber = errors.New("invalid JSON number")

// parseNumber parses raw, the text of a JSON number. fastjson lets through forms JSON
// does not have (NaN, Inf, "+1", "1-2"); they are refused here.
func parseNumber(raw []byte) (number, error) {
	if i, ok := smallInt(raw); ok {
		return number{i: i}, nil
	}
	if f, ok := smallDecimal(raw); ok {
		return number{f: f, isFloat: true}, nil
	}
	isFloat, ok := jsonNumber(raw)
	if !ok {
		return number{}, fmt.Errorf("%w %q", errBadNumber, raw)
	}
	s := unsafe.String(unsafe.SliceData(raw), len(raw)) // not retained: errors are formatted from raw
	if !isFloat {
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return number{}, fmt.Errorf("integer %s is out of the int64 range", raw)
		}
		return number{i: i}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return number{}, fmt.Errorf("number %s is out of the float64 range", raw)
	}
	return number{f: f, isFloat: true}, nil
}

// smallInt parses raw if it is a JSON integer of at most 18 digits (which cannot
// overflow), the common case, faster than the general path.
func smallInt(raw []byte) (int64, bool) {
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 || (digits[0] == '0' && len(digits) > 1) {
		return 0, false
	}
	var v int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if len(digits) < len(raw) {
		v = -v
	}
	return v, true
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// smallDecimal parses raw if it is a JSON number of the form -?int.frac with at most
// 15 digits in all, the common case of a float field. Both the digits as an integer
// and the power of ten are exact float64s then, and one IEEE division rounds
// correctly, so the result equals strconv.ParseFloat's.
func smallDecimal(raw []byte) (float64, bool) {
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) < 3 || len(digits) > 16 || (digits[0] == '0' && digits[1] != '.') {
		return 0, false
	}
	var m uint64
	frac := -1 // digits after the point; -1 before it
	for k, c := range digits {
		switch {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			if frac >= 0 {
				frac++
			}
		case c == '.' && frac < 0 && k > 0:
			frac = 0
		default:
			return 0, false
		}
	}
	if frac <= 0 {
		return 0, false
	}
	f := float64(m) / pow10[frac]
	if len(digits) < len(raw) {
		f = -f
	}
	return f, true
}

// jsonNumber checks raw against JSON's number grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and reports whether it has a
// fraction or exponent.
func jsonNumber(raw []byte) (isFloat, ok bool) {
	i := 0
	if i < len(raw) && raw[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
			i++
			n++
		}
		return n
	}
	start := i
	n := digits()
	if n == 0 || (n > 1 && raw[start] == '0') {
		return false, false
	}
	if i < len(raw) && raw[i] == '.' {
		i++
		if digits() == 0 {
			return false, false
		}
		isFloat = true
	}
	if i < len(raw) && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		if i < len(raw) && (raw[i] == '+' || raw[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false, false
		}
		isFloat = true
	}
	return isFloat, i == len(raw)
}

// Thresholds above which a numeric time is taken to be in a finer unit than seconds.
// 1e11 seconds is in the year 5138; 1e11 milliseconds is in 1973.
const (
	msThreshold = 1e11
	usThreshold = 1e14
	nsThreshold = 1e17
)

// parseTime reads a time value: unix seconds (int, or float truncated; larger values
// scaled down from milliseconds, microseconds or nanoseconds), or an RFC 3339 string.
func (d *decoder) parseTime(v *fastjson.Value) (int64, error) {
	switch v.Type() {
	case fastjson.TypeNumber:
		d.num = v.MarshalTo(d.num[:0])
		raw := d.num
		n, err := parseNumber(raw)
		if err != nil {
			return 0, err
		}
		return timeFromNumber(n, raw)
	case fastjson.TypeString:
		s, _ := v.StringBytes()
		return timeFromString(s)
	}
	return 0, fmt.Errorf("a %s is not a time; send unix seconds or an RFC 3339 string", v.Type())
}

// timeFromNumber reads a numeric time: unix seconds (a float is truncated), or a
// larger value scaled down from milliseconds, microseconds or nanoseconds. raw is
// the number's text for errors (nil: n formatted).
func timeFromNumber(n number, raw []byte) (int64, error) {
	if n.isFloat {
		f := n.f
		switch {
		case f > nsThreshold:
			f /= 1e9
		case f > usThreshold:
			f /= 1e6
		case f > msThreshold:
			f /= 1e3
		}
		if f < 0 || f >= 1<<63 || math.IsNaN(f) {
			if raw == nil {
				raw = n.appendText(nil)
			}
			return 0, fmt.Errorf("%s is out of range; send unix seconds", raw)
		}
		return int64(f), nil
	}
	i := n.i
	switch {
	case i > nsThreshold:
		i /= 1e9
	case i > usThreshold:
		i /= 1e6
	case i > msThreshold:
		i /= 1e3
	}
	if i < 0 {
		return 0, fmt.Errorf("%d is before 1970; send unix seconds", i)
	}
	return i, nil
}

// timeFromString reads an RFC 3339 time as unix seconds.
func timeFromString(s []byte) (int64, error) {
	if len(s) > 64 {
		return 0, fmt.Errorf("a %d-byte string is not an RFC 3339 time", len(s))
	}
	// time.Parse keeps no reference to its input once it returned (its error
	// does, but the error is dropped here), so the caller's bytes can be lent.
	tm, err := time.Parse(time.RFC3339Nano, unsafe.String(unsafe.SliceData(s), len(s)))
	if err != nil {
		return 0, fmt.Errorf("%q is not an RFC 3339 time (like 2006-01-02T15:04:05Z)", s)
	}
	if tm.Unix() < 0 {
		return 0, fmt.Errorf("%q is before 1970", s)
	}
	return tm.Unix(), nil
}
