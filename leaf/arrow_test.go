package leaf

import (
	"bytes"
	"compress/gzip"
	"errors"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/block"
)

// arrowStreamOf writes records built by build (one per call of add) as an Arrow IPC
// stream.
func arrowStreamOf(t testing.TB, schema *arrow.Schema, opts []ipc.Option, fill ...func(b *array.RecordBuilder)) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, append([]ipc.Option{ipc.WithSchema(schema)}, opts...)...)
	for _, f := range fill {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		f(b)
		rec := b.NewRecord()
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		b.Release()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ingestArrowBody decodes an Arrow stream into table "t" of st.
func ingestArrowBody(t *testing.T, st *store, body []byte) (api.IngestResult, error) {
	t.Helper()
	as, err := readArrow(body, st.cfg.MaxBodyBytes)
	if err != nil {
		return api.IngestResult{}, err
	}
	defer as.release()
	var res api.IngestResult
	d := newDecoder(st.cfg)
	d.reset(&res, testNow)
	if err := d.ingestArrow(st, "t", as); err != nil {
		t.Fatalf("ingestArrow: %v", err)
	}
	return res, nil
}

var strList = arrow.ListOf(arrow.BinaryTypes.String)

// wideSchema has one column of every supported type.
var wideSchema = arrow.NewSchema([]arrow.Field{
	{Name: "time", Type: &arrow.TimestampType{Unit: arrow.Millisecond}, Nullable: true},
	{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
	{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
	{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "ls", Type: arrow.BinaryTypes.LargeString, Nullable: true},
	{Name: "dict", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: arrow.BinaryTypes.String}, Nullable: true},
	{Name: "tags", Type: strList, Nullable: true},
	{Name: "ltags", Type: arrow.LargeListOf(&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Uint8, ValueType: arrow.BinaryTypes.String}), Nullable: true},
	{Name: "http", Type: arrow.StructOf(
		arrow.Field{Name: "status", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		arrow.Field{Name: "geo", Type: arrow.StructOf(arrow.Field{Name: "city", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
	), Nullable: true},
	{Name: "seen", Type: &arrow.TimestampType{Unit: arrow.Nanosecond}, Nullable: true},
	{Name: "nothing", Type: arrow.Null, Nullable: true},
	{Name: "sample_rate", Type: arrow.PrimitiveTypes.Uint16, Nullable: true},
}, nil)

func fillWide(b *array.RecordBuilder) {
	// Row 1: every column set. Row 2: every column null (the time too).
	b.Field(0).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{1_700_000_000_500, 0}, []bool{true, false})
	b.Field(1).(*array.Int8Builder).AppendValues([]int8{-8, 0}, []bool{true, false})
	b.Field(2).(*array.Int64Builder).AppendValues([]int64{math.MaxInt64, 0}, []bool{true, false})
	b.Field(3).(*array.Uint32Builder).AppendValues([]uint32{4_000_000_000, 0}, []bool{true, false})
	b.Field(4).(*array.Float32Builder).AppendValues([]float32{1.5, 0}, []bool{true, false})
	b.Field(5).(*array.Float64Builder).AppendValues([]float64{-2.25, 0}, []bool{true, false})
	b.Field(6).(*array.BooleanBuilder).AppendValues([]bool{true, false}, []bool{true, false})
	b.Field(7).(*array.StringBuilder).AppendValues([]string{"hello", ""}, []bool{true, false})
	b.Field(8).(*array.LargeStringBuilder).AppendValues([]string{"large", ""}, []bool{true, false})
	db := b.Field(9).(*array.BinaryDictionaryBuilder)
	_ = db.AppendString("web")
	db.AppendNull()
	lb := b.Field(10).(*array.ListBuilder)
	lb.Append(true)
	vb := lb.ValueBuilder().(*array.StringBuilder)
	vb.AppendValues([]string{"b", "a", "b"}, nil)
	lb.AppendNull()
	llb := b.Field(11).(*array.LargeListBuilder)
	llb.Append(true)
	ldb := llb.ValueBuilder().(*array.BinaryDictionaryBuilder)
	_ = ldb.AppendString("x")
	llb.AppendNull()
	sb := b.Field(12).(*array.StructBuilder)
	sb.Append(true)
	sb.FieldBuilder(0).(*array.Int32Builder).Append(200)
	gb := sb.FieldBuilder(1).(*array.StructBuilder)
	gb.Append(true)
	gb.FieldBuilder(0).(*array.StringBuilder).Append("Oslo")
	sb.AppendNull() // appends nulls to its fields too
	b.Field(13).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{1_600_000_000_999_999_999, 0}, []bool{true, false})
	b.Field(14).(*array.NullBuilder).AppendNulls(2)
	b.Field(15).(*array.Uint16Builder).AppendValues([]uint16{10, 0}, []bool{true, false})
}

func TestArrowTypes(t *testing.T) {
	st := newTestStore(t, testConfig())
	body := arrowStreamOf(t, wideSchema, nil, fillWide)
	res, err := ingestArrowBody(t, st, body)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 2 || res.Rejected != 0 || len(res.Errors) != 0 {
		t.Fatalf("result %+v", res)
	}
	wantTypes := map[string]string{
		"time": "int", "i8": "int", "i64": "int", "u32": "int", "f32": "float", "f64": "float", "ok": "int",
		"s": "string", "ls": "string", "dict": "string", "tags": "set", "ltags": "set",
		"http.status": "int", "http.geo.city": "string", "seen": "int", "sample_rate": "int",
	}
	if got := columnTypes(st, "t"); !equalMaps(got, wantTypes) {
		t.Errorf("column types %v, want %v", got, wantTypes)
	}
	rows := tableRows(t, st, "t")
	want0 := map[string]any{
		"time": int64(1_700_000_000), "i8": int64(-8), "i64": int64(math.MaxInt64), "u32": int64(4_000_000_000),
		"f32": 1.5, "f64": -2.25, "ok": int64(1), "s": "hello", "ls": "large", "dict": "web",
		"tags": []string{"a", "b"}, "ltags": []string{"x"}, "http.status": int64(200), "http.geo.city": "Oslo",
		"seen": int64(1_600_000_000), "sample_rate": int64(10),
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	if !reflect.DeepEqual(rows[0], want0) {
		t.Errorf("row 1:\n got %v\nwant %v", rows[0], want0)
	}
	if want := map[string]any{"time": testNow.Unix()}; !reflect.DeepEqual(rows[1], want) {
		t.Errorf("row 2 (all null): %v, want %v", rows[1], want)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestArrowRowErrors checks that bad values are reported by row number and field,
// and the rest of the rows and fields kept, as for NDJSON.
func TestArrowRowErrors(t *testing.T) {
	cfg := testConfig()
	cfg.MaxColumns = 4
	st := newTestStore(t, cfg)
	// An earlier NDJSON batch fixes the type of "n" to int and "s" to string.
	decodeBody(t, st, `{"n":1,"s":"x"}`)

	deep := arrow.Field{Name: "z", Type: arrow.PrimitiveTypes.Int64, Nullable: true}
	for range MaxDepth {
		deep = arrow.Field{Name: "d", Type: arrow.StructOf(deep), Nullable: true}
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "time", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "n", Type: arrow.BinaryTypes.String, Nullable: true},     // string into an int column
		{Name: "s", Type: arrow.PrimitiveTypes.Float64, Nullable: true}, // number into a string column
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "u", Type: arrow.PrimitiveTypes.Uint64, Nullable: true},
		{Name: "tags", Type: strList, Nullable: true},
		{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		deep,
		{Name: "extra", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, // the 4th and last column
		{Name: "bad", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	long := strings.Repeat("x", MaxStringBytes+1)
	body := arrowStreamOf(t, schema, nil, func(b *array.RecordBuilder) {
		b.Field(0).(*array.Int64Builder).AppendValues([]int64{100, -5, 1_700_000_000_000}, nil)
		b.Field(1).(*array.StringBuilder).AppendValues([]string{"a", "b", ""}, []bool{true, true, false})
		b.Field(2).(*array.Float64Builder).AppendValues([]float64{1, 2, 0}, []bool{true, true, false})
		b.Field(3).(*array.Float64Builder).AppendValues([]float64{math.NaN(), 1, math.Inf(1)}, nil)
		b.Field(4).(*array.Uint64Builder).AppendValues([]uint64{math.MaxUint64, 1, 2}, nil)
		lb := b.Field(5).(*array.ListBuilder)
		vb := lb.ValueBuilder().(*array.StringBuilder)
		lb.Append(true)
		vb.Append("ok")
		vb.AppendNull()
		lb.Append(true) // an empty set
		lb.Append(true)
		vb.Append(long)
		b.Field(6).(*array.Date32Builder).AppendValues([]arrow.Date32{1, 0, 0}, []bool{true, false, false})
		sb := b.Field(7).(*array.StructBuilder)
		sb.AppendNull() // appends nulls to its fields too
		sb.AppendNull()
		sb.Append(true)
		for inner := sb; ; {
			child, ok := inner.FieldBuilder(0).(*array.StructBuilder)
			if !ok {
				inner.FieldBuilder(0).(*array.Int64Builder).Append(1)
				break
			}
			child.Append(true)
			inner = child
		}
		b.Field(8).(*array.Int64Builder).AppendValues([]int64{1, 2, 3}, nil)
		b.Field(9).(*array.StringBuilder).AppendValues([]string{"\xff", "ok", "ok"}, nil)
	})
	res, err := ingestArrowBody(t, st, body)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 2 || res.Rejected != 1 {
		t.Errorf("accepted %d rejected %d, want 2 and 1", res.Accepted, res.Rejected)
	}
	checkErrors(t, res.Errors, []wantErr{
		{1, "n", "cannot store a string in column of type int"},
		{1, "s", "cannot store a number in column of type string"},
		{1, "f", "NaN is not a finite number"},
		{1, "u", "integer 18446744073709551615 is out of the int64 range"},
		{1, "tags", "array element 2 is null"},
		{1, "day", "Arrow type date32 is not supported"},
		{1, "bad", "string is not valid UTF-8"},
		{2, "", `cannot use "time": -5 is before 1970`},
		{3, "f", "+Inf is not a finite number"},
		{3, "u", "already has the maximum of 4 columns"},
		{3, "tags", "array element 1 is 65537 bytes long"},
		{3, "d.d.d.d.d.d.d.d", "objects nest deeper than 8 levels"},
		{3, "bad", "already has the maximum of 4 columns"},
	})
	rows := tableRows(t, st, "t")
	want := []map[string]any{
		{"time": now, "n": int64(1), "s": "x"},
		{"time": int64(100), "extra": int64(1)},
		{"time": int64(1_700_000_000), "extra": int64(3)}, // milliseconds read as seconds
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows stored:\n got %v\nwant %v", rows, want)
	}
}

func TestArrowBadStreams(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)
	good := arrowStreamOf(t, schema, nil, func(b *array.RecordBuilder) {
		b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2, 3}, nil)
	})
	big := arrowStreamOf(t, schema, nil, func(b *array.RecordBuilder) {
		b.Field(0).(*array.Int64Builder).AppendValues(make([]int64, 5000), nil)
	})
	boolSchema := arrow.NewSchema([]arrow.Field{{Name: "b", Type: arrow.FixedWidthTypes.Boolean}}, nil)
	many := arrowStreamOf(t, boolSchema, nil, func(b *array.RecordBuilder) {
		b.Field(0).(*array.BooleanBuilder).AppendValues(make([]bool, 5000), nil)
	})
	lz4 := arrowStreamOf(t, schema, []ipc.Option{ipc.WithLZ4()}, func(b *array.RecordBuilder) {
		b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2, 3}, nil)
	})
	corrupt := bytes.Clone(good)
	// Flip the record batch's metadata: its first bytes after the schema message.
	for i := len(corrupt) / 2; i < len(corrupt)/2+16; i++ {
		corrupt[i] ^= 0xA5
	}
	cases := []struct {
		name string
		body []byte
		err  string
		kind string // "limit", "unsupported" or "" (plain)
	}{
		{"empty", nil, "cannot read Arrow IPC stream", ""},
		{"not arrow", []byte(`{"n":1}` + "\n"), "cannot read Arrow IPC stream", ""},
		{"truncated", good[:len(good)-20], "Arrow", ""},
		{"corrupt", corrupt, "", ""},
		{"file format", append([]byte("ARROW1\x00\x00"), good...), "Arrow IPC file", "unsupported"},
		{"lz4", lz4, "IPC buffer compression", "unsupported"},
		{"too many values", many, "holds more than", "limit"},
		{"too many buffers", big, "more than 4096 bytes of buffers", "limit"},
	}
	for _, c := range cases {
		st := newTestStore(t, Config{MaxBodyBytes: 4096, SealAge: 1 << 40, RetentionInterval: 1 << 40})
		as, err := readArrow(c.body, st.cfg.MaxBodyBytes)
		if err == nil {
			as.release()
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: error %q, want one containing %q", c.name, err, c.err)
		}
		var lim *errArrowLimit
		var uns *errArrowUnsupported
		kind := ""
		switch {
		case errors.As(err, &lim):
			kind = "limit"
		case errors.As(err, &uns):
			kind = "unsupported"
		}
		if kind != c.kind {
			t.Errorf("%s: error kind %q, want %q (%v)", c.name, kind, c.kind, err)
		}
	}
	if _, err := readArrow(good, 1<<20); err != nil {
		t.Errorf("good stream: %v", err)
	}
}

// TestArrowAllocLimit checks that the reader's buffers are bounded.
func TestArrowAllocLimit(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String}}, nil)
	body := arrowStreamOf(t, schema, nil, func(b *array.RecordBuilder) {
		b.Field(0).(*array.StringBuilder).Append(strings.Repeat("x", 10000))
	})
	if _, err := readArrow(body, 4096); err == nil || !strings.Contains(err.Error(), "more than 4096 bytes of buffers") {
		t.Errorf("error %v, want the buffer limit", err)
	}
	as, err := readArrow(body, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	as.release()
}

// TestArrowHTTP posts Arrow streams to a leaf: plain and gzip, and refusals.
func TestArrowHTTP(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 1 << 20
	l := newTestLeaf(t, cfg)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "time", Type: arrow.PrimitiveTypes.Int64},
		{Name: "service", Type: arrow.BinaryTypes.String},
	}, nil)
	body := arrowStreamOf(t, schema, nil, func(b *array.RecordBuilder) {
		b.Field(0).(*array.Int64Builder).AppendValues([]int64{1_700_000_000, 1_700_000_001}, nil)
		b.Field(1).(*array.StringBuilder).AppendValues([]string{"api", "web"}, nil)
	}, func(b *array.RecordBuilder) {
		b.Field(0).(*array.Int64Builder).AppendValues([]int64{1_700_000_002}, nil)
		b.Field(1).(*array.StringBuilder).AppendValues([]string{"api"}, nil)
	})
	r := l.do(t, http.MethodPost, "/v1/ingest/events", body, "Content-Type", api.ContentTypeArrow)
	if r.status != http.StatusOK {
		t.Fatalf("arrow ingest: %d %s", r.status, r.body)
	}
	if res := r.ingestResult(t); res.Accepted != 3 {
		t.Errorf("accepted %d, want 3", res.Accepted)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(body)
	_ = zw.Close()
	r = l.do(t, http.MethodPost, "/v1/ingest/events", gz.Bytes(), "Content-Type", api.ContentTypeArrow, "Content-Encoding", "gzip")
	if r.status != http.StatusOK || r.ingestResult(t).Accepted != 3 {
		t.Errorf("gzip arrow ingest: %d %s", r.status, r.body)
	}
	if res, _ := l.query(t, "SELECT service, count(*) FROM events GROUP BY service"); len(res.Rows) != 2 {
		t.Errorf("query after arrow ingest: %v", cells(res))
	}

	for _, c := range []struct {
		name   string
		body   []byte
		status int
		msg    string
	}{
		{"truncated", body[:len(body)/2], 400, "cannot ingest into \"events\""},
		{"ndjson sent as arrow", []byte(`{"a":1}`), 400, "cannot read Arrow IPC stream"},
		{"over the limit", make([]byte, 2<<20), 413, "the limit is 1048576"},
	} {
		r := l.do(t, http.MethodPost, "/v1/ingest/events", c.body, "Content-Type", api.ContentTypeArrow)
		if msg := r.errorMessage(t); r.status != c.status || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %d %q, want %d containing %q", c.name, r.status, msg, c.status, c.msg)
		}
	}
	st, _ := l.c.Stats(t.Context())
	if st.Rows != 6 {
		t.Errorf("%d rows after refused streams, want 6", st.Rows)
	}
}

// FuzzArrowIngest feeds arbitrary bodies to the Arrow decoder: it must never panic,
// and a stream it reads must store exactly its accepted rows. Seeds:
// testdata/arrow/*.arrows (regenerate with REEF_WRITE_ARROW_SEEDS=1 go test -run
// TestArrowSeeds).
func FuzzArrowIngest(f *testing.F) {
	paths, err := filepath.Glob("testdata/arrow/*.arrows")
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds in testdata/arrow (%v)", err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cfg := testConfig()
		cfg.MaxColumns = 64
		cfg.MaxBodyBytes = 64 << 10 // bounds the rows and values of one input
		st := newTestStore(t, cfg)
		as, err := readArrow(body, cfg.MaxBodyBytes)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		defer as.release()
		var res api.IngestResult
		d := newDecoder(st.cfg)
		d.reset(&res, testNow)
		if err := d.ingestArrow(st, "t", as); err != nil {
			t.Fatalf("ingestArrow: %v", err)
		}
		if int64(res.Accepted+res.Rejected) != as.rows {
			t.Fatalf("%d accepted + %d rejected of %d rows", res.Accepted, res.Rejected, as.rows)
		}
		for _, e := range res.Errors {
			if e.Line < 1 || int64(e.Line) > as.rows || e.Reason == "" {
				t.Fatalf("bad error %+v", e)
			}
		}
		if rows := tableRows(t, st, "t"); len(rows) != res.Accepted {
			t.Fatalf("read %d rows back, %d accepted", len(rows), res.Accepted)
		}
	})
}

// TestArrowSeeds checks that the fuzz seeds are what the generators write, and
// rewrites them with REEF_WRITE_ARROW_SEEDS=1.
func TestArrowSeeds(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "time", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
		{Name: "tags", Type: arrow.ListOf(&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}), Nullable: true},
	}, nil)
	seeds := map[string][]byte{
		"wide.arrows": arrowStreamOf(t, wideSchema, nil, fillWide, fillWide),
		"rfc3339.arrows": arrowStreamOf(t, schema, nil, func(b *array.RecordBuilder) {
			b.Field(0).(*array.StringBuilder).AppendValues([]string{"2023-11-14T22:13:20Z", "yesterday", ""}, []bool{true, true, false})
			b.Field(1).(*array.Int16Builder).AppendValues([]int16{1, -1, 0}, []bool{true, true, false})
			lb := b.Field(2).(*array.ListBuilder)
			vb := lb.ValueBuilder().(*array.BinaryDictionaryBuilder)
			lb.Append(true)
			_ = vb.AppendString("a")
			_ = vb.AppendString("b")
			lb.Append(true)
			lb.AppendNull()
		}),
		"empty.arrows": arrowStreamOf(t, schema, nil),
	}
	dir := filepath.Join("testdata", "arrow")
	if os.Getenv("REEF_WRITE_ARROW_SEEDS") != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range seeds {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, data := range seeds {
		st := newTestStore(t, testConfig())
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("seed %s: %v (write the seeds with REEF_WRITE_ARROW_SEEDS=1)", name, err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("seed %s differs from what the generator writes now (rewrite with REEF_WRITE_ARROW_SEEDS=1)", name)
		}
		if _, err := ingestArrowBody(t, st, got); err != nil {
			t.Errorf("seed %s does not decode: %v", name, err)
		}
	}
}

// BenchmarkIngestArrow is BenchmarkIngestNDJSON/small for an Arrow stream of the
// same shape (time, three low-cardinality dictionary strings, an int, a float):
// one op decodes, checks and stores one full block.
func BenchmarkIngestArrow(b *testing.B) {
	dict := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "time", Type: &arrow.TimestampType{Unit: arrow.Second}},
		{Name: "service", Type: dict}, {Name: "host", Type: dict}, {Name: "path", Type: dict},
		{Name: "status", Type: arrow.PrimitiveTypes.Int16},
		{Name: "latency", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	body := arrowStreamOf(b, schema, nil, func(rb *array.RecordBuilder) {
		for i := range block.MaxRows {
			rb.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000 + i))
			_ = rb.Field(1).(*array.BinaryDictionaryBuilder).AppendString([]string{"api", "web", "auth"}[i%3])
			_ = rb.Field(2).(*array.BinaryDictionaryBuilder).AppendString([]string{"h1", "h2", "h3", "h4"}[i%4])
			_ = rb.Field(3).(*array.BinaryDictionaryBuilder).AppendString([]string{"/", "/a", "/b"}[i%3])
			rb.Field(4).(*array.Int16Builder).Append(int16(200 + i%5))
			rb.Field(5).(*array.Float64Builder).Append(float64(i%1000) / 4)
		}
	})
	cfg, _ := testConfig().withDefaults()
	m := newMetrics()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		as, err := readArrow(body, cfg.MaxBodyBytes)
		if err != nil {
			b.Fatal(err)
		}
		st := newStore(&cfg, heapStore{}, m)
		var res api.IngestResult
		d := newDecoder(&cfg)
		d.reset(&res, testNow)
		if err := d.ingestArrow(st, "web", as); err != nil {
			b.Fatal(err)
		}
		if res.Accepted != block.MaxRows || len(res.Errors) != 0 {
			b.Fatalf("accepted %d, errors %+v", res.Accepted, res.Errors)
		}
		as.release()
		st.close()
	}
	b.ReportMetric(float64(block.MaxRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
