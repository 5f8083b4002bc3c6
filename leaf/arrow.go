package leaf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"
	"unsafe"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/bitutil"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/leaf/wal"
)

// Arrow ingest: POST /v1/ingest/{table} with Content-Type
// application/vnd.apache.arrow.stream (api.ContentTypeArrow) carries an Arrow IPC
// stream. Its rows go into the table through the same decoder and block.Builder
// path as NDJSON lines, with the same row rules and limits; docs/leaf.md maps Arrow
// types to reef's. A row's "line" in errors is its 1-based number in the stream.
//
// The stream is read whole before any row is stored: a stream the leaf cannot read
// (corrupt, truncated, over a limit) is refused whole, with nothing stored.
//
// The body comes from a client, so nothing in it is trusted:
//   - checkArrowFraming walks the messages first and checks every declared length
//     against the body, so the ipc reader allocates nothing larger than the body;
//   - IPC buffer compression (LZ4, ZSTD) is refused: its declared sizes would
//     decide allocations (compress the whole body with Content-Encoding instead);
//   - the reader allocates through arrowAlloc, which holds at most MaxBodyBytes;
//   - every array a row is read from is checked (buffer sizes, offsets, dictionary
//     indices) by checkArray before it is read;
//   - panics inside the arrow library while reading or checking are recovered into
//     an error (the table is not touched until every check passed).

// arrowCellBytes is what one value (row × column) of an Arrow stream is taken to
// cost in the open block: 8 bytes of value and 1 of validity.
const arrowCellBytes = 9

// isArrow reports whether the media type of an ingest body is an Arrow IPC stream.
func isArrow(mediaType string) bool { return mediaType == api.ContentTypeArrow }

// errArrowLimit is a stream over a size limit (413).
type errArrowLimit struct{ msg string }

func (e *errArrowLimit) Error() string { return e.msg }

// errArrowUnsupported is a stream in a form reef does not read (415).
type errArrowUnsupported struct{ msg string }

func (e *errArrowUnsupported) Error() string { return e.msg }

// storeArrow stores the Arrow IPC stream body into the named table: it decodes and
// checks the whole stream, reserves memory for its rows, then appends them.
func (s *Server) storeArrow(w http.ResponseWriter, name string, body []byte, res *api.IngestResult, now time.Time) int {
	st, err := readArrow(body, s.cfg.MaxBodyBytes)
	if err != nil {
		status := http.StatusBadRequest
		var tooLarge *errArrowLimit
		var unsupported *errArrowUnsupported
		switch {
		case errors.As(err, &tooLarge):
			status = http.StatusRequestEntityTooLarge
		case errors.As(err, &unsupported):
			status = http.StatusUnsupportedMediaType
		}
		writeError(w, status, "cannot ingest into %q: %v", name, err)
		return status
	}
	defer st.release()

	// Rows take their body's bytes plus a per-cell estimate of their values and new
	// strings (see commitBatch for the rest of the reservation).
	return s.commitBatch(w, name, res, now, body, wal.FormatArrow, int64(len(body))+st.cells*arrowCellBytes, func(d *decoder) error {
		return d.ingestArrow(s.store, name, st)
	})
}

// arrowStream is a decoded, checked Arrow IPC stream.
type arrowStream struct {
	batches []*arrowBatch
	rows    int64
	cells   int64 // rows × read columns, summed over batches
}

func (st *arrowStream) release() {
	if st == nil {
		return
	}
	for _, b := range st.batches {
		b.rec.Release()
	}
	st.batches = nil
}

// arrowBatch is one record batch and the plan for reading its rows.
type arrowBatch struct {
	rec  arrow.Record
	rows int
	time *arrowCol  // the top-level "time" field; nil: none
	cols []arrowCol // every other field, structs flattened, in schema order
}

// arrowKind says how a column's values are read.
type arrowKind uint8

const (
	akInt       arrowKind = iota // Int8…Int64
	akUint                       // Uint8…Uint64
	akFloat                      // Float32, Float64
	akBool                       // Boolean
	akString                     // String, LargeString, dictionary of either
	akSet                        // List or LargeList of akString values
	akTimestamp                  // Timestamp (any unit): unix seconds
	akReject                     // every non-null value is rejected with reason
)

// arrowCol is one column of a record batch as reef sees it.
type arrowCol struct {
	name    string
	kind    arrowKind
	arr     arrow.Array
	parents []arrow.Array // enclosing structs: a null struct makes the column absent
	reason  string        // akReject: why its values are rejected
	sample  bool          // the top-level sample_rate column
	unit    arrow.TimeUnit
	elems   arrow.Array // akSet: the list's values
}

// readArrow decodes body, an Arrow IPC stream, holding at most limit bytes of
// Arrow buffers, and checks every array the rows will be read from. Errors are
// *errArrowLimit (over a limit), *errArrowUnsupported, or plain (unreadable).
func readArrow(body []byte, limit int64) (_ *arrowStream, err error) {
	if bytes.HasPrefix(body, []byte("ARROW1")) {
		return nil, &errArrowUnsupported{"the body is an Arrow IPC file (it starts with ARROW1); send the IPC stream format"}
	}
	if err := checkArrowFraming(body); err != nil {
		return nil, err
	}
	alloc := &arrowAlloc{limit: limit}
	st := &arrowStream{}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt Arrow stream: %v", p)
		}
		if err != nil {
			if alloc.over {
				err = &errArrowLimit{fmt.Sprintf("the Arrow stream decodes to more than %d bytes of buffers (the body limit); send smaller batches", limit)}
			}
			st.release()
		}
	}()
	rd, err := ipc.NewReader(bytes.NewReader(body), ipc.WithAllocator(alloc))
	if err != nil {
		return nil, fmt.Errorf("cannot read Arrow IPC stream: %w", err)
	}
	defer rd.Release()
	maxCells := limit
	for n := 1; rd.Next(); n++ {
		rec := rd.Record()
		rec.Retain()
		b := &arrowBatch{rec: rec, rows: int(rec.NumRows())}
		st.batches = append(st.batches, b)
		if err := b.plan(); err != nil {
			return nil, fmt.Errorf("record batch %d: %w", n, err)
		}
		st.rows += int64(b.rows)
		st.cells += int64(b.rows) * int64(len(b.cols)+1)
		if st.cells > maxCells {
			return nil, &errArrowLimit{fmt.Sprintf("the Arrow stream holds more than %d values (rows × columns) by record batch %d; the limit is the body limit, %d; send fewer rows per request",
				st.cells, n, maxCells)}
		}
	}
	if err := rd.Err(); err != nil {
		return nil, fmt.Errorf("cannot read Arrow IPC stream: %w", err)
	}
	return st, nil
}

// plan lists the batch's columns, flattening structs, and checks the arrays that
// will be read.
func (b *arrowBatch) plan() error {
	schema := b.rec.Schema()
	for i, f := range schema.Fields() {
		arr := b.rec.Column(i)
		if arr.Len() != b.rows {
			return fmt.Errorf("column %q has %d values for %d rows", f.Name, arr.Len(), b.rows)
		}
		if f.Name == block.TimeColumn && b.time == nil {
			c := arrowCol{name: f.Name, arr: arr}
			if err := c.classify(f.Type); err != nil {
				return err
			}
			b.time = &c
			continue
		}
		if err := b.addColumn(f.Name, f.Name, arr, nil, 1, f.Name == block.SampleRateColumn); err != nil {
			return err
		}
	}
	return nil
}

// addColumn adds the column name (the flattened name of struct field field, nested
// depth deep inside parents) to the plan.
func (b *arrowBatch) addColumn(name, field string, arr arrow.Array, parents []arrow.Array, depth int, sample bool) error {
	if err := checkBitmap(arr); err != nil {
		return fmt.Errorf("column %q: %w", name, err)
	}
	c := arrowCol{name: name, arr: arr, parents: parents, sample: sample}
	switch {
	case field == "":
		c.kind, c.reason = akReject, "empty field name"
		b.cols = append(b.cols, c)
		return nil
	case arr.DataType().ID() == arrow.NULL:
		return nil // every value is null: absent
	}
	if s, ok := arr.(*array.Struct); ok {
		if depth >= MaxDepth {
			c.kind, c.reason = akReject, fmt.Sprintf("objects nest deeper than %d levels", MaxDepth)
			b.cols = append(b.cols, c)
			return nil
		}
		st := s.DataType().(*arrow.StructType)
		inner := append(parents[:len(parents):len(parents)], arr)
		for i, f := range st.Fields() {
			child := s.Field(i)
			if child.Len() != arr.Len() {
				return fmt.Errorf("column %q: field %q has %d values for %d rows", name, f.Name, child.Len(), arr.Len())
			}
			if err := b.addColumn(name+"."+f.Name, f.Name, child, inner, depth+1, false); err != nil {
				return err
			}
		}
		return nil
	}
	if err := c.classify(arr.DataType()); err != nil {
		return err
	}
	b.cols = append(b.cols, c)
	return nil
}

// classify sets c.kind from the column's type and checks the array's buffers.
func (c *arrowCol) classify(dt arrow.DataType) error {
	fail := func(err error) error { return fmt.Errorf("column %q: %w", c.name, err) }
	if err := checkBitmap(c.arr); err != nil {
		return fail(err)
	}
	switch dt.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
		c.kind = akInt
	case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		c.kind = akUint
	case arrow.FLOAT32, arrow.FLOAT64:
		c.kind = akFloat
	case arrow.TIMESTAMP:
		c.kind = akTimestamp
		c.unit = dt.(*arrow.TimestampType).Unit
	case arrow.BOOL:
		c.kind = akBool
	case arrow.STRING, arrow.LARGE_STRING, arrow.DICTIONARY:
		if !isStringArray(c.arr) {
			c.kind, c.reason = akReject, fmt.Sprintf("Arrow type %s is not supported; send strings, string dictionaries or lists of strings", dt)
			return nil
		}
		c.kind = akString
	case arrow.LIST, arrow.LARGE_LIST:
		var elems arrow.Array
		switch l := c.arr.(type) {
		case *array.List:
			elems = l.ListValues()
		case *array.LargeList:
			elems = l.ListValues()
		}
		if elems == nil || !isStringArray(elems) {
			c.kind, c.reason = akReject, fmt.Sprintf("Arrow type %s is not supported; only lists of strings (sets) are stored", dt)
			return nil
		}
		c.kind, c.elems = akSet, elems
		if err := checkArray(elems); err != nil {
			return fail(fmt.Errorf("list values: %w", err))
		}
	default:
		c.kind, c.reason = akReject, fmt.Sprintf("Arrow type %s is not supported", dt)
		return nil
	}
	if err := checkArray(c.arr); err != nil {
		return fail(err)
	}
	return nil
}

// isStringArray reports whether a holds strings: String, LargeString, or a
// dictionary of either.
func isStringArray(a arrow.Array) bool {
	switch a := a.(type) {
	case *array.String, *array.LargeString:
		return true
	case *array.Dictionary:
		switch a.DataType().(*arrow.DictionaryType).ValueType.ID() {
		case arrow.STRING, arrow.LARGE_STRING:
			return true
		}
	}
	return false
}

// checkBitmap checks that a's validity bitmap, if it has one, covers its values.
func checkBitmap(a arrow.Array) error {
	d := a.Data()
	bufs := d.Buffers()
	if len(bufs) == 0 || bufs[0] == nil || bufs[0].Len() == 0 || d.Len() == 0 {
		return nil
	}
	if need := bitutil.BytesForBits(int64(d.Offset() + d.Len())); int64(bufs[0].Len()) < need {
		return fmt.Errorf("validity bitmap has %d bytes, %d values need %d", bufs[0].Len(), d.Len(), need)
	}
	return nil
}

// checkArray checks the buffers of an array of a supported kind, so that reading
// any of its values stays within them.
func checkArray(a arrow.Array) error {
	if err := checkBitmap(a); err != nil {
		return err
	}
	d := a.Data()
	n := d.Offset() + d.Len()
	if d.Len() == 0 {
		return nil
	}
	bufs := d.Buffers()
	buf := func(i int) []byte {
		if i < len(bufs) && bufs[i] != nil {
			return bufs[i].Bytes()
		}
		return nil
	}
	fixed := func(width int) error {
		if len(buf(1)) < n*width {
			return fmt.Errorf("value buffer has %d bytes, %d values of %d bytes need %d", len(buf(1)), n, width, n*width)
		}
		return nil
	}
	switch a := a.(type) {
	case *array.Boolean:
		if need := int(bitutil.BytesForBits(int64(n))); len(buf(1)) < need {
			return fmt.Errorf("value bitmap has %d bytes, %d values need %d", len(buf(1)), n, need)
		}
	case *array.Int8, *array.Uint8:
		return fixed(1)
	case *array.Int16, *array.Uint16:
		return fixed(2)
	case *array.Int32, *array.Uint32, *array.Float32:
		return fixed(4)
	case *array.Int64, *array.Uint64, *array.Float64, *array.Timestamp:
		return fixed(8)
	case *array.String:
		offs := arrow.Int32Traits.CastFromBytes(buf(1))
		return checkOffsets(func(i int) int64 { return int64(offs[i]) }, len(offs), d.Offset(), d.Len(), int64(len(buf(2))))
	case *array.LargeString:
		offs := arrow.Int64Traits.CastFromBytes(buf(1))
		return checkOffsets(func(i int) int64 { return offs[i] }, len(offs), d.Offset(), d.Len(), int64(len(buf(2))))
	case *array.List:
		offs := arrow.Int32Traits.CastFromBytes(buf(1))
		return checkOffsets(func(i int) int64 { return int64(offs[i]) }, len(offs), d.Offset(), d.Len(), int64(a.ListValues().Len()))
	case *array.LargeList:
		offs := arrow.Int64Traits.CastFromBytes(buf(1))
		return checkOffsets(func(i int) int64 { return offs[i] }, len(offs), d.Offset(), d.Len(), int64(a.ListValues().Len()))
	case *array.Dictionary:
		if err := checkArray(a.Indices()); err != nil {
			return fmt.Errorf("dictionary indices: %w", err)
		}
		dict := a.Dictionary()
		if err := checkArray(dict); err != nil {
			return fmt.Errorf("dictionary: %w", err)
		}
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				if k := a.GetValueIndex(i); k < 0 || k >= dict.Len() {
					return fmt.Errorf("dictionary index %d of value %d is outside the dictionary of %d", k, i+1, dict.Len())
				}
			}
		}
	default:
		return fmt.Errorf("unexpected array type %s", a.DataType())
	}
	return nil
}

// checkOffsets checks the n+1 offsets of values off…off+n (offset(i) reads offset
// i of count): non-decreasing, from 0 or more, up to at most size.
func checkOffsets(offset func(int) int64, count, off, n int, size int64) error {
	if count < off+n+1 {
		return fmt.Errorf("offset buffer has %d offsets, %d values need %d", count, n, off+n+1)
	}
	prev := offset(off)
	if prev < 0 {
		return fmt.Errorf("offset %d is negative", prev)
	}
	for i := off + 1; i <= off+n; i++ {
		o := offset(i)
		if o < prev {
			return fmt.Errorf("offsets decrease at value %d (%d after %d)", i-off, o, prev)
		}
		prev = o
	}
	if prev > size {
		return fmt.Errorf("offsets reach %d, past the %d values they index", prev, size)
	}
	return nil
}

// ingestArrow stores the rows of st into the named table of st, as ingest does for
// NDJSON lines; d.line is a row's 1-based number in the stream.
func (d *decoder) ingestArrow(s *store, name string, st *arrowStream) error {
	for _, b := range st.batches {
		for row := 0; row < b.rows; {
			t, err := s.table(name, true)
			if err != nil {
				return err
			}
			t.mu.Lock()
			if t.dropped {
				t.mu.Unlock()
				continue
			}
			for n := 0; n < chunkLines && row < b.rows; n++ {
				d.line++
				d.arrowRow(t, b, row)
				row++
			}
			t.account()
			t.mu.Unlock()
		}
	}
	return nil
}

// present reports whether the column has a value in row: neither it nor an
// enclosing struct is null there.
func (c *arrowCol) present(row int) bool {
	if c.arr.IsNull(row) {
		return false
	}
	for _, p := range c.parents {
		if p.IsNull(row) {
			return false
		}
	}
	return true
}

// arrowRow decodes one row of b into t; t.mu is held.
func (d *decoder) arrowRow(t *table, b *arrowBatch, row int) {
	if d.covered() {
		return // a replay, and the row is in a sealed block already
	}
	ts := d.now.Unix()
	if c := b.time; c != nil && c.present(row) {
		var err error
		if ts, err = c.timeValue(row); err != nil {
			d.rejectRow("cannot use %q: %v", block.TimeColumn, err)
			return
		}
	}
	t.b.BeginRow()
	if d.hintTable != t {
		clear(d.hints)
		d.hints, d.hintTable = d.hints[:0], t
	}
	for k := range b.cols {
		c := &b.cols[k]
		if !c.present(row) {
			continue
		}
		d.name = append(d.name[:0], c.name...)
		d.nfield = k
		d.arrowField(t, c, row)
	}
	t.b.SetInt(0, ts) // the time column is index 0 of every builder
	t.b.EndRow()
	d.stored(t, ts)
}

// arrowField stores the value of c in row, named d.name.
func (d *decoder) arrowField(t *table, c *arrowCol, row int) {
	switch c.kind {
	case akInt:
		d.putNumber(t, number{i: block.RawInt(c.arr, row)}, nil, c.sample)
	case akUint:
		u := uintValue(c.arr, row)
		if u > math.MaxInt64 {
			d.rejectField("integer %d is out of the int64 range", u)
			return
		}
		d.putNumber(t, number{i: int64(u)}, nil, c.sample)
	case akFloat:
		f := floatValue(c.arr, row)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.rejectField("%v is not a finite number", f)
			return
		}
		d.putNumber(t, number{f: f, isFloat: true}, nil, c.sample)
	case akTimestamp:
		d.putNumber(t, number{i: timestampSeconds(c.arr.(*array.Timestamp).Value(row), c.unit)}, nil, c.sample)
	case akBool:
		x := int64(0)
		if c.arr.(*array.Boolean).Value(row) {
			x = 1
		}
		if c.sample {
			d.putNumber(t, number{i: x}, nil, true)
			return
		}
		d.boolField(t, x)
	case akString:
		s, ok := stringValue(c.arr, row)
		if !ok {
			return // a null dictionary entry: absent
		}
		if c.sample {
			d.rejectField("%s must be an integer ≥ 1, not a string", block.SampleRateColumn)
			return
		}
		d.stringField(t, s)
	case akSet:
		d.arrowSet(t, c, row)
	case akReject:
		d.rejectField("%s", c.reason)
	}
}

// arrowSet stores a list of strings as a set, with the checks of setField.
func (d *decoder) arrowSet(t *table, c *arrowCol, row int) {
	var lo, hi int64
	switch l := c.arr.(type) {
	case *array.List:
		lo, hi = l.ValueOffsets(row)
	case *array.LargeList:
		lo, hi = l.ValueOffsets(row)
	}
	if hi-lo > MaxSetElems {
		d.rejectField("array has %d elements, the limit is %d", hi-lo, MaxSetElems)
		return
	}
	d.set = d.set[:0]
	for k := lo; k < hi; k++ {
		s, ok := []byte(nil), c.elems.IsValid(int(k))
		if ok {
			s, ok = stringValue(c.elems, int(k))
		}
		if !ok {
			d.rejectField("array element %d is null; only arrays of strings (sets) are stored", k-lo+1)
			return
		}
		if reason := checkString(s); reason != "" {
			d.rejectField("array element %d %s", k-lo+1, reason)
			return
		}
		d.set = append(d.set, s)
	}
	d.putSet(t)
}

// timeValue reads the time column in row as unix seconds.
func (c *arrowCol) timeValue(row int) (int64, error) {
	switch c.kind {
	case akTimestamp:
		ts := timestampSeconds(c.arr.(*array.Timestamp).Value(row), c.unit)
		if ts < 0 {
			return 0, fmt.Errorf("%d is before 1970", ts)
		}
		return ts, nil
	case akInt:
		return timeFromNumber(number{i: block.RawInt(c.arr, row)}, nil)
	case akUint:
		u := uintValue(c.arr, row)
		if u > math.MaxInt64 {
			return 0, fmt.Errorf("%d is out of range; send unix seconds", u)
		}
		return timeFromNumber(number{i: int64(u)}, nil)
	case akFloat:
		return timeFromNumber(number{f: floatValue(c.arr, row), isFloat: true}, nil)
	case akString:
		s, ok := stringValue(c.arr, row)
		if !ok {
			return 0, errors.New("a null dictionary entry is not a time")
		}
		return timeFromString(s)
	}
	return 0, fmt.Errorf("a value of Arrow type %s is not a time; send a timestamp, unix seconds or an RFC 3339 string", c.arr.DataType())
}

// timestampSeconds converts a timestamp of the given unit to unix seconds, rounding
// down.
func timestampSeconds(v arrow.Timestamp, unit arrow.TimeUnit) int64 {
	per := int64(1)
	switch unit {
	case arrow.Millisecond:
		per = 1e3
	case arrow.Microsecond:
		per = 1e6
	case arrow.Nanosecond:
		per = 1e9
	}
	s := int64(v) / per
	if int64(v)%per < 0 {
		s--
	}
	return s
}

func uintValue(a arrow.Array, i int) uint64 {
	switch a := a.(type) {
	case *array.Uint8:
		return uint64(a.Value(i))
	case *array.Uint16:
		return uint64(a.Value(i))
	case *array.Uint32:
		return uint64(a.Value(i))
	case *array.Uint64:
		return a.Value(i)
	}
	return 0
}

func floatValue(a arrow.Array, i int) float64 {
	switch a := a.(type) {
	case *array.Float32:
		return float64(a.Value(i))
	case *array.Float64:
		return a.Value(i)
	}
	return 0
}

// stringValue returns the string in row i of a string array (String, LargeString
// or a dictionary of either) without copying; ok is false for a null dictionary
// entry.
func stringValue(a arrow.Array, i int) (s []byte, ok bool) {
	var v string
	switch a := a.(type) {
	case *array.String:
		v = a.Value(i)
	case *array.LargeString:
		v = a.Value(i)
	case *array.Dictionary:
		k := a.GetValueIndex(i)
		dict := a.Dictionary()
		if dict.IsNull(k) {
			return nil, false
		}
		return stringValue(dict, k)
	}
	return unsafe.Slice(unsafe.StringData(v), len(v)), true
}

// arrowAlloc is the allocator of one Arrow ingest request: Go memory, at most limit
// bytes held at once. Past the limit it panics, which the ipc reader turns into an
// error, and readArrow into an *errArrowLimit.
type arrowAlloc struct {
	mem   memory.GoAllocator
	used  int64
	limit int64
	over  bool
}

func (a *arrowAlloc) grow(n int) {
	if n < 0 || a.used+int64(n) > a.limit {
		a.over = true
		panic(fmt.Sprintf("Arrow buffers over %d bytes", a.limit))
	}
	a.used += int64(n)
}

func (a *arrowAlloc) Allocate(size int) []byte {
	a.grow(size)
	return a.mem.Allocate(size)
}

func (a *arrowAlloc) Reallocate(size int, b []byte) []byte {
	a.grow(size - len(b))
	return a.mem.Reallocate(size, b)
}

func (a *arrowAlloc) Free(b []byte) {
	a.used -= int64(len(b))
	a.mem.Free(b)
}

// checkArrowFraming walks the messages of an Arrow IPC stream before the ipc reader
// does, and checks that each message's metadata and body lie within data and that
// no batch uses IPC buffer compression.
//
// Stream layout (Arrow columnar format, "encapsulated message format"), little
// endian:
//
//	message = [0xFFFFFFFF] | int32 metadata length m | m bytes: flatbuffer Message | Message.bodyLength bytes of body
//	end     = 0xFFFFFFFF 0x00000000 | 0x00000000 | end of data
//
// (streams before Arrow 0.15 have no 0xFFFFFFFF marker). Message is the table
// {version: short, header_type: ubyte, header: union, bodyLength: long, …}; a
// RecordBatch header is {length, nodes, buffers, compression, …} and a
// DictionaryBatch header is {id, data: RecordBatch, isDelta}.
func checkArrowFraming(data []byte) error {
	off := 0
	for n := 1; off < len(data); n++ {
		at := off
		bad := func(format string, args ...any) error {
			return fmt.Errorf("cannot read Arrow IPC stream: message %d at byte %d: %s", n, at, fmt.Sprintf(format, args...))
		}
		if len(data)-off < 4 {
			return bad("truncated")
		}
		v := binary.LittleEndian.Uint32(data[off:])
		off += 4
		if v == 0xFFFFFFFF {
			if len(data)-off < 4 {
				return bad("truncated")
			}
			v = binary.LittleEndian.Uint32(data[off:])
			off += 4
		}
		if v == 0 {
			return nil // end of stream
		}
		metaLen := int64(int32(v))
		if metaLen < 4 || metaLen > int64(len(data)-off) {
			return bad("metadata length %d is outside the %d bytes left", metaLen, len(data)-off)
		}
		meta := data[off : off+int(metaLen)]
		off += int(metaLen)
		bodyLen, compressed, err := messageInfo(meta)
		if err != nil {
			return bad("%v", err)
		}
		if compressed {
			return &errArrowUnsupported{"the Arrow stream uses IPC buffer compression (LZ4/ZSTD), which reef does not read; send uncompressed buffers and compress the body with Content-Encoding gzip or snappy"}
		}
		if bodyLen < 0 || bodyLen > int64(len(data)-off) {
			return bad("body length %d is outside the %d bytes left", bodyLen, len(data)-off)
		}
		off += int(bodyLen)
	}
	return nil
}

// messageInfo reads a flatbuffer Message's body length and whether its batch (or
// dictionary batch) declares buffer compression, and checks the vectors whose
// lengths the ipc reader allocates by: the message's and the schema's custom
// metadata and every field's children and custom metadata (checkFieldsFB).
func messageInfo(meta []byte) (bodyLen int64, compressed bool, err error) {
	msg, err := fbRoot(meta)
	if err != nil {
		return 0, false, err
	}
	bodyLen, err = msg.int64(3)
	if err != nil {
		return 0, false, err
	}
	if _, _, err := msg.vector(4, 4); err != nil { // custom_metadata
		return 0, false, err
	}
	typ, err := msg.uint8(1)
	if err != nil {
		return 0, false, err
	}
	header, ok, err := msg.table(2)
	if err != nil || !ok {
		return bodyLen, false, err
	}
	switch typ {
	case 1: // Schema {endianness, fields: [Field], custom_metadata, features}
		if _, _, err := header.vector(2, 4); err != nil {
			return bodyLen, false, err
		}
		budget := maxSchemaFields
		return bodyLen, false, checkFieldsFB(header, 1, 1, &budget)
	case 2: // DictionaryBatch: its data is a RecordBatch
		if header, ok, err = header.table(1); err != nil || !ok {
			return bodyLen, false, err
		}
		fallthrough
	case 3: // RecordBatch: field 3 is compression
		_, compressed, err = header.table(3)
	}
	return bodyLen, compressed, err
}

// Bounds on the schema of an Arrow stream, checked before the ipc reader walks it
// (recursively, allocating by the declared vector lengths).
const (
	maxSchemaFields = 10_000
	maxSchemaDepth  = 32
)

// checkFieldsFB checks the vector of Field tables in field i of t, and their
// children, recursively: Field is {name, nullable, type_type, type, dictionary,
// children: [Field], custom_metadata: [KeyValue]}. budget counts the fields left
// to visit: offsets may point back into the schema, so a few bytes can describe a
// tree of any size.
func checkFieldsFB(t fbTable, i, depth int, budget *int) error {
	start, n, err := t.vector(i, 4)
	if err != nil || n == 0 {
		return err
	}
	if depth > maxSchemaDepth {
		return fmt.Errorf("the schema nests deeper than %d levels", maxSchemaDepth)
	}
	for k := 0; k < n; k++ {
		if *budget--; *budget < 0 {
			return fmt.Errorf("the schema has more than %d fields", maxSchemaFields)
		}
		p := start + 4*k
		f, err := fbAt(t.b, int64(p)+int64(binary.LittleEndian.Uint32(t.b[p:])))
		if err != nil {
			return err
		}
		if _, _, err := f.vector(6, 4); err != nil {
			return err
		}
		if err := checkFieldsFB(f, 5, depth+1, budget); err != nil {
			return err
		}
	}
	return nil
}

// fbTable is a flatbuffer table at pos in b, with its vtable at vt (vtLen bytes).
type fbTable struct {
	b              []byte
	pos, vt, vtLen int
}

var errFlatbuffer = errors.New("malformed message metadata")

func fbRoot(b []byte) (fbTable, error) {
	if len(b) < 4 {
		return fbTable{}, errFlatbuffer
	}
	return fbAt(b, int64(binary.LittleEndian.Uint32(b)))
}

func fbAt(b []byte, pos int64) (fbTable, error) {
	if pos < 0 || pos > int64(len(b))-4 {
		return fbTable{}, errFlatbuffer
	}
	vt := pos - int64(int32(binary.LittleEndian.Uint32(b[pos:])))
	if vt < 0 || vt > int64(len(b))-4 {
		return fbTable{}, errFlatbuffer
	}
	vtLen := int64(binary.LittleEndian.Uint16(b[vt:]))
	if vtLen < 4 || vt+vtLen > int64(len(b)) {
		return fbTable{}, errFlatbuffer
	}
	return fbTable{b: b, pos: int(pos), vt: int(vt), vtLen: int(vtLen)}, nil
}

// field returns the position of field i and the bytes left from there, or 0 when
// the field is absent.
func (t fbTable) field(i int) (int, int) {
	o := 4 + 2*i
	if o+2 > t.vtLen {
		return 0, 0
	}
	off := int(binary.LittleEndian.Uint16(t.b[t.vt+o:]))
	if off == 0 {
		return 0, 0
	}
	p := t.pos + off
	if p > len(t.b) {
		return p, 0
	}
	return p, len(t.b) - p
}

func (t fbTable) int64(i int) (int64, error) {
	p, left := t.field(i)
	switch {
	case p == 0:
		return 0, nil
	case left < 8:
		return 0, errFlatbuffer
	}
	return int64(binary.LittleEndian.Uint64(t.b[p:])), nil
}

func (t fbTable) uint8(i int) (uint8, error) {
	p, left := t.field(i)
	switch {
	case p == 0:
		return 0, nil
	case left < 1:
		return 0, errFlatbuffer
	}
	return t.b[p], nil
}

func (t fbTable) table(i int) (fbTable, bool, error) {
	p, left := t.field(i)
	switch {
	case p == 0:
		return fbTable{}, false, nil
	case left < 4:
		return fbTable{}, false, errFlatbuffer
	}
	sub, err := fbAt(t.b, int64(p)+int64(binary.LittleEndian.Uint32(t.b[p:])))
	return sub, err == nil, err
}

// vector returns the position of the first element of the vector in field i and
// its length, after checking that its elements (elem bytes each) lie within the
// buffer; 0, 0 when the field is absent.
func (t fbTable) vector(i, elem int) (start, n int, err error) {
	p, left := t.field(i)
	switch {
	case p == 0:
		return 0, 0, nil
	case left < 4:
		return 0, 0, errFlatbuffer
	}
	vec := int64(p) + int64(binary.LittleEndian.Uint32(t.b[p:]))
	if vec < 0 || vec > int64(len(t.b))-4 {
		return 0, 0, errFlatbuffer
	}
	count := int64(binary.LittleEndian.Uint32(t.b[vec:]))
	if vec+4+count*int64(elem) > int64(len(t.b)) {
		return 0, 0, fmt.Errorf("%w: a vector of %d elements overruns the %d-byte metadata", errFlatbuffer, count, len(t.b))
	}
	return int(vec + 4), int(count), nil
}
