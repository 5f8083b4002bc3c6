package leaf

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/reef-db/reef/api"
)

// wantErr is an expected RowError: Reason is a substring of the real reason.
type wantErr struct {
	line   int
	field  string
	reason string
}

func checkErrors(t *testing.T, got []api.RowError, want []wantErr) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d errors %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i, w := range want {
		g := got[i]
		if g.Line != w.line || g.Field != w.field || !strings.Contains(g.Reason, w.reason) {
			t.Errorf("error %d = %+v, want line %d field %q reason containing %q", i, g, w.line, w.field, w.reason)
		}
	}
}

func columnTypes(st *store, name string) map[string]string {
	t, _ := st.table(name, false)
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]string{}
	for _, c := range t.stats().Columns {
		out[c.Name] = c.Type
	}
	return out
}

const now = int64(1_700_000_000) // testNow.Unix()

func TestDecodeRows(t *testing.T) {
	cases := []struct {
		name     string
		body     string
		accepted int
		rejected int
		errs     []wantErr
		rows     []map[string]any
		types    map[string]string
	}{
		{
			name:     "flatten nested objects, sets, bools",
			body:     `{"time":1000,"http":{"status":200,"req":{"method":"GET"}},"ok":true,"bad":false,"tags":["b","a","b"],"lat":1.5,"empty":[]}`,
			accepted: 1,
			rows: []map[string]any{{"time": int64(1000), "http.status": int64(200), "http.req.method": "GET",
				"ok": int64(1), "bad": int64(0), "tags": []string{"a", "b"}, "lat": 1.5, "empty": []string{}}},
			types: map[string]string{"time": "int", "http.status": "int", "http.req.method": "string",
				"ok": "int", "bad": "int", "tags": "set", "lat": "float", "empty": "set"},
		},
		{
			name:     "int into float column converts",
			body:     "{\"time\":1,\"x\":1.5}\n{\"time\":2,\"x\":2}\n{\"time\":3,\"x\":true}",
			accepted: 3,
			rows:     []map[string]any{{"time": int64(1), "x": 1.5}, {"time": int64(2), "x": 2.0}, {"time": int64(3), "x": 1.0}},
			types:    map[string]string{"time": "int", "x": "float"},
		},
		{
			name:     "integral float into int column converts, others are rejected",
			body:     "{\"time\":1,\"x\":1}\n{\"time\":2,\"x\":2.0,\"y\":1}\n{\"time\":3,\"x\":2.5,\"y\":2}\n{\"time\":4,\"x\":1e30}",
			accepted: 4,
			errs:     []wantErr{{3, "x", "not a whole number"}, {4, "x", "not a whole number"}},
			rows: []map[string]any{{"time": int64(1), "x": int64(1)}, {"time": int64(2), "x": int64(2), "y": int64(1)},
				{"time": int64(3), "y": int64(2)}, {"time": int64(4)}},
			types: map[string]string{"time": "int", "x": "int", "y": "int"},
		},
		{
			name:     "strings and numbers do not mix",
			body:     "{\"time\":1,\"x\":1,\"s\":\"a\"}\n{\"time\":2,\"x\":\"1\",\"s\":2,\"k\":3}",
			accepted: 2,
			errs:     []wantErr{{2, "x", "cannot store a string in column of type int"}, {2, "s", "cannot store a number in column of type string"}},
			rows:     []map[string]any{{"time": int64(1), "x": int64(1), "s": "a"}, {"time": int64(2), "k": int64(3)}},
		},
		{
			name:     "sets take arrays of strings only",
			body:     "{\"time\":1,\"t\":[\"a\"]}\n{\"time\":2,\"t\":\"a\"}\n{\"time\":3,\"t\":[\"a\",1]}\n{\"time\":4,\"s\":\"x\"}\n{\"time\":5,\"s\":[\"x\"]}",
			accepted: 5,
			errs: []wantErr{{2, "t", "cannot store a string in column of type set"}, {3, "t", "array element 2 is a number"},
				{5, "s", "cannot store an array in column of type string"}},
			rows: []map[string]any{{"time": int64(1), "t": []string{"a"}}, {"time": int64(2)}, {"time": int64(3)},
				{"time": int64(4), "s": "x"}, {"time": int64(5)}},
		},
		{
			name:     "null is absent",
			body:     `{"time":1,"x":null,"y":1,"o":{"z":null}}`,
			accepted: 1,
			rows:     []map[string]any{{"time": int64(1), "y": int64(1)}},
			types:    map[string]string{"time": "int", "y": "int"},
		},
		{
			name: "time forms",
			body: strings.Join([]string{
				`{"time":1700000000}`,
				`{"time":1700000000.9}`,
				`{"time":1700000000123}`,
				`{"time":1700000000123456}`,
				`{"time":1700000000123456789}`,
				`{"time":1.7000000001e12}`,
				`{"time":"2023-11-14T22:13:20Z"}`,
				`{"time":"2023-11-14T23:13:20.5+01:00"}`,
				`{"x":1}`,
				`{"time":null}`,
				`{"time":0}`,
			}, "\n"),
			accepted: 11,
			rows: []map[string]any{{"time": now}, {"time": now}, {"time": now}, {"time": now}, {"time": now},
				{"time": now}, {"time": now}, {"time": now}, {"time": now, "x": int64(1)}, {"time": now}, {"time": int64(0)}},
		},
		{
			name:     "an unusable time rejects the row",
			body:     "{\"time\":\"yesterday\",\"x\":1}\n{\"time\":-5}\n{\"time\":{\"a\":1}}\n{\"time\":true}\n{\"time\":1e400}\n{\"time\":1,\"x\":2}",
			accepted: 1,
			rejected: 5,
			errs: []wantErr{{1, "", "not an RFC 3339 time"}, {2, "", "before 1970"}, {3, "", "object is not a time"},
				{4, "", "true is not a time"}, {5, "", "out of the float64 range"}},
			rows: []map[string]any{{"time": int64(1), "x": int64(2)}},
		},
		{
			name:     "malformed lines are rejected alone",
			body:     "{\"time\":1}\n{bad\n[1,2]\n\n   \n\"str\"\n{\"time\":2}\r\n{\"time\":3}",
			accepted: 3,
			rejected: 3,
			errs:     []wantErr{{2, "", "invalid JSON"}, {3, "", "JSON array, not an object"}, {6, "", "JSON string, not an object"}},
			rows:     []map[string]any{{"time": int64(1)}, {"time": int64(2)}, {"time": int64(3)}},
		},
		{
			name:     "duplicate fields keep the first value",
			body:     "{\"time\":1,\"a\":1,\"a\":2}\n{\"time\":2,\"b.c\":1,\"b\":{\"c\":2}}\n{\"time\":3,\"time\":4}",
			accepted: 3,
			errs:     []wantErr{{1, "a", "duplicate field"}, {2, "b.c", "duplicate field"}, {3, "time", "duplicate field"}},
			rows:     []map[string]any{{"time": int64(1), "a": int64(1)}, {"time": int64(2), "b.c": int64(1)}, {"time": int64(3)}},
		},
		{
			name: "field limits",
			body: strings.Join([]string{
				`{"s":"` + strings.Repeat("x", MaxStringBytes+1) + `","ok":1}`,
				`{"t":[` + strings.Repeat(`"a",`, MaxSetElems) + `"a"]}`,
				`{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}`,
				`{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":1}}}}}}}}`,
				"{\"u\":\"\xff\"}",
				"{\"\xff\":1}",
				`{"":1}`,
				`{"` + strings.Repeat("n", MaxColumnNameBytes+1) + `":1}`,
				`{"e":"\u00e9\ud83d\ude00"}`,
			}, "\n"),
			accepted: 9,
			errs: []wantErr{{1, "s", "65537 bytes long, the limit is 65536"}, {2, "t", "1001 elements, the limit is 1000"},
				{3, "a.b.c.d.e.f.g.h", "deeper than 8 levels"}, {5, "u", "not valid UTF-8"},
				{6, "\xff", "not valid UTF-8"}, {7, "", "empty field name"}, {8, strings.Repeat("n", MaxColumnNameBytes+1), "the limit is 256"}},
			rows: []map[string]any{{"time": now, "ok": int64(1)}, {"time": now}, {"time": now},
				{"time": now, "a.b.c.d.e.f.g.h": int64(1)}, {"time": now}, {"time": now}, {"time": now}, {"time": now},
				{"time": now, "e": "é😀"}},
		},
		{
			name:     "sample_rate is an int of at least 1",
			body:     "{\"time\":1,\"sample_rate\":2.0}\n{\"time\":2,\"sample_rate\":10}\n{\"time\":3,\"sample_rate\":0}\n{\"time\":4,\"sample_rate\":1.5}\n{\"time\":5,\"sample_rate\":\"x\"}",
			accepted: 5,
			errs: []wantErr{{3, "sample_rate", "integer ≥ 1"}, {4, "sample_rate", "integer ≥ 1"},
				{5, "sample_rate", "cannot store a string in column of type int"}},
			rows: []map[string]any{{"time": int64(1), "sample_rate": int64(2)}, {"time": int64(2), "sample_rate": int64(10)},
				{"time": int64(3)}, {"time": int64(4)}, {"time": int64(5)}},
			types: map[string]string{"time": "int", "sample_rate": "int"},
		},
		{
			name:     "numbers outside JSON or out of range",
			body:     "{\"time\":1,\"a\":100000000000000000000,\"b\":1e400,\"c\":NaN,\"d\":-0,\"e\":1E2,\"f\":-Inf,\"g\":01,\"h\":1.}",
			accepted: 1,
			errs: []wantErr{{1, "a", "out of the int64 range"}, {1, "b", "out of the float64 range"}, {1, "c", "invalid JSON number"},
				{1, "f", "invalid JSON number"}, {1, "g", "invalid JSON number"}, {1, "h", "invalid JSON number"}},
			rows: []map[string]any{{"time": int64(1), "d": int64(0), "e": 100.0}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newTestStore(t, testConfig())
			res := decodeBody(t, st, c.body)
			if res.Accepted != c.accepted || res.Rejected != c.rejected {
				t.Errorf("accepted %d rejected %d, want %d and %d (errors %+v)", res.Accepted, res.Rejected, c.accepted, c.rejected, res.Errors)
			}
			checkErrors(t, res.Errors, c.errs)
			if c.rows != nil {
				if got := tableRows(t, st, "t"); !reflect.DeepEqual(got, c.rows) {
					t.Errorf("rows:\n got %v\nwant %v", got, c.rows)
				}
			}
			if c.types != nil {
				if got := columnTypes(st, "t"); !reflect.DeepEqual(got, c.types) {
					t.Errorf("column types %v, want %v", got, c.types)
				}
			}
		})
	}
}

func TestDecodeSchemaGrowth(t *testing.T) {
	st := newTestStore(t, testConfig())
	decodeBody(t, st, `{"time":1,"a":1}`)
	decodeBody(t, st, `{"time":2,"b":"x","a":2}`)
	decodeBody(t, st, `{"time":3,"c":[]}`)
	want := []map[string]any{
		{"time": int64(1), "a": int64(1)},
		{"time": int64(2), "a": int64(2), "b": "x"},
		{"time": int64(3), "c": []string{}},
	}
	if got := tableRows(t, st, "t"); !reflect.DeepEqual(got, want) {
		t.Errorf("rows:\n got %v\nwant %v", got, want)
	}
	tb, _ := st.table("t", false)
	tb.mu.Lock()
	got := tb.stats().Columns
	tb.mu.Unlock()
	if want := cols("time", "int", "a", "int", "b", "string", "c", "set"); !reflect.DeepEqual(got, want) {
		t.Errorf("columns %v, want %v (in first-seen order)", got, want)
	}
}

func TestDecodeLimits(t *testing.T) {
	t.Run("line length", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxLineBytes = 20
		st := newTestStore(t, cfg)
		res := decodeBody(t, st, "{\"time\":1,\"x\":\"0123456789\"}\n{\"time\":2}")
		if res.Accepted != 1 || res.Rejected != 1 {
			t.Errorf("accepted %d rejected %d, want 1 and 1", res.Accepted, res.Rejected)
		}
		checkErrors(t, res.Errors, []wantErr{{1, "", "line is 27 bytes long, the limit is 20"}})
	})
	t.Run("columns per table", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxColumns = 3
		st := newTestStore(t, cfg)
		res := decodeBody(t, st, "{\"time\":1,\"a\":1,\"b\":2,\"c\":3}\n{\"time\":2,\"b\":3,\"d\":4}")
		checkErrors(t, res.Errors, []wantErr{{1, "c", "maximum of 3 columns"}, {2, "d", "maximum of 3 columns"}})
		want := []map[string]any{{"time": int64(1), "a": int64(1), "b": int64(2)}, {"time": int64(2), "b": int64(3)}}
		if got := tableRows(t, st, "t"); !reflect.DeepEqual(got, want) {
			t.Errorf("rows %v, want %v", got, want)
		}
	})
	t.Run("reported errors are capped", func(t *testing.T) {
		st := newTestStore(t, testConfig())
		res := decodeBody(t, st, strings.Repeat("x\n", maxReportedErrors+5)+`{"time":1}`)
		if res.Rejected != maxReportedErrors+5 || res.Accepted != 1 {
			t.Errorf("accepted %d rejected %d", res.Accepted, res.Rejected)
		}
		if len(res.Errors) != maxReportedErrors || !res.ErrorsCut {
			t.Errorf("%d errors listed, cut %v; want %d and cut", len(res.Errors), res.ErrorsCut, maxReportedErrors)
		}
	})
	t.Run("tables per leaf", func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxTables = 2
		st := newTestStore(t, cfg)
		for i, name := range []string{"a", "b", "a"} {
			if _, err := st.table(name, true); err != nil {
				t.Fatalf("table %d: %v", i, err)
			}
		}
		_, err := st.table("c", true)
		if err == nil || !strings.Contains(err.Error(), "maximum of 2 tables") {
			t.Errorf("third table: err %v, want the table limit", err)
		}
	})
}

func TestJSONNumber(t *testing.T) {
	f := func(s string, isFloat, ok bool) {
		t.Helper()
		gf, gok := jsonNumber([]byte(s))
		if gf != isFloat || gok != ok {
			t.Errorf("jsonNumber(%q) = %v, %v; want %v, %v", s, gf, gok, isFloat, ok)
		}
	}
	f("0", false, true)
	f("-0", false, true)
	f("123", false, true)
	f("1.5", true, true)
	f("-1.5e-3", true, true)
	f("1E+2", true, true)
	f("", false, false)
	f("-", false, false)
	f("01", false, false)
	f("1.", false, false)
	f(".5", false, false)
	f("1e", false, false)
	f("+1", false, false)
	f("1-2", false, false)
	f("NaN", false, false)
	f("Inf", false, false)
}

func TestDecodeManyColumnsAcrossBlocks(t *testing.T) {
	// A column's type holds across blocks: after a seal, the new open block gets it
	// again even if the value would have suggested another type.
	st := newTestStore(t, testConfig())
	decodeBody(t, st, `{"time":1,"x":1.5}`)
	st.sealAll()
	res := decodeBody(t, st, `{"time":2,"x":3}`)
	if len(res.Errors) != 0 {
		t.Fatalf("errors %+v", res.Errors)
	}
	want := []map[string]any{{"time": int64(1), "x": 1.5}, {"time": int64(2), "x": 3.0}}
	if got := tableRows(t, st, "t"); !reflect.DeepEqual(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	snap := st.snapshot("t")
	defer snap.release()
	if len(snap.blocks) != 2 {
		t.Fatalf("%d blocks, want 2", len(snap.blocks))
	}
	for _, b := range snap.blocks {
		if c := b.Column("x"); c == nil || c.Type.String() != "float" {
			t.Errorf("block %d: column x is %v, want float", b.ID, c)
		}
	}
	if snap.blocks[0].ID == snap.blocks[1].ID {
		t.Errorf("blocks share id %d", snap.blocks[0].ID)
	}
}

func TestSmallDecimal(t *testing.T) {
	for _, s := range []string{"0.5", "-0.5", "12.345", "1.0", "0.1", "0.3", "123456789.123456", "-99999999999999.9",
		"1.7976931348623", "0.00000000000001", "3.14159265358979"} {
		f, ok := smallDecimal([]byte(s))
		want, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || f != want {
			t.Errorf("smallDecimal(%q) = %v, %v; want %v", s, f, ok, want)
		}
	}
	for _, s := range []string{"1", "-1", "1.", ".5", "01.5", "1e5", "1.5e3", "1..5", "-", "", "--1.5", "1.2.3", "3.141592653589793", "12345678901234567.5"} {
		if f, ok := smallDecimal([]byte(s)); ok {
			t.Errorf("smallDecimal(%q) = %v, want no fast path", s, f)
		}
	}
}
