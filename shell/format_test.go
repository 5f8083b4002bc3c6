package shell

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reef-db/reef/api"
)

func TestGroupThousands(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := groupThousands(in); got != want {
			t.Errorf("groupThousands(%q) = %q, want %q", in, got, want)
		}
	}
	f("0", "0")
	f("999", "999")
	f("1000", "1,000")
	f("-1234567", "-1,234,567")
	f("1234567.125", "1,234,567.125")
	f("-999.5", "-999.5")
	f("123456", "123,456")
	f("1e+20", "1e+20")
	f("NaN", "NaN")
	f("", "")
}

func TestFormatFloatColumns(t *testing.T) {
	f := func(vals []float64, want ...string) {
		t.Helper()
		dec := floatDecimals(vals)
		var got []string
		for _, v := range vals {
			got = append(got, formatFloat(v, dec))
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("column %v shown as %q, want %q", vals, got, want)
		}
	}
	f([]float64{1, 2, 3000}, "1", "2", "3,000")
	f([]float64{1.5, 1234.5678}, "1.50", "1,234.57")
	f([]float64{0.25, 12}, "0.25", "12.00")
	f([]float64{0.5}, "0.50")
	f([]float64{0.125}, "0.125")
	f([]float64{0.012345}, "0.0123")
	f([]float64{0.0000012345, 1}, "0.000001", "1.000000") // capped at 6 decimals
	f([]float64{1e-12, 5.5}, "1e-12", "5.50")
	f([]float64{2e20, -3.25}, "2e+20", "-3.25")
	f([]float64{0}, "0")
	f([]float64{math.Inf(1)}, "+Inf")
}

func TestHumanCount(t *testing.T) {
	f := func(n int64, want string) {
		t.Helper()
		if got := humanCount(n); got != want {
			t.Errorf("humanCount(%d) = %q, want %q", n, got, want)
		}
	}
	f(0, "0")
	f(999, "999")
	f(1000, "1K")
	f(41_234_567, "41.2M")
	f(3_100_000_000, "3.1B")
	f(7_000_000_000_000, "7T")
}

func TestFormatPercentAndDuration(t *testing.T) {
	if got := formatPercent(100, true); got != "100%" {
		t.Errorf("complete = %q", got)
	}
	if got := formatPercent(99.97, false); got != "99.9%" {
		t.Errorf("partial 99.97 = %q, must not read as complete", got)
	}
	if got := formatPercent(87.5, false); got != "87.5%" {
		t.Errorf("87.5 = %q", got)
	}
	for d, want := range map[time.Duration]string{
		400 * time.Microsecond:  "0.4 ms",
		23 * time.Millisecond:   "23 ms",
		1240 * time.Millisecond: "1.24 s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestSanitize(t *testing.T) {
	if got := sanitize("a\nb\tc\x1b[31m"); got != `a\nb\tc\x1b[31m` {
		t.Errorf("sanitize = %q", got)
	}
	long := strings.Repeat("é", maxCellRunes+5)
	if got := sanitize(long); width(got) != maxCellRunes+1 || !strings.HasSuffix(got, "…") {
		t.Errorf("long cell cut to %d runes", width(got))
	}
}

func TestRenderTable(t *testing.T) {
	res := &api.QueryResult{
		Columns: []api.ResultColumn{{Name: "time", Type: "int"}, {Name: "tags", Type: "set"}, {Name: "n", Type: "int"}, {Name: "ok", Type: "bool"}},
		Rows: [][]any{
			{int64(0), []any{"a", "b"}, int64(-1500), true},
			{nil, []any{}, nil, false},
			{int64(86400)}, // short row
		},
	}
	var b bytes.Buffer
	renderTable(&b, res)
	want := ` time                | tags      |      n | ok
---------------------+-----------+--------+-------
 1970-01-01 00:00:00 | ["a","b"] | -1,500 | true
 NULL                | []        |   NULL | false
 1970-01-02 00:00:00 | NULL      |   NULL | NULL
`
	if got := b.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestSplitter(t *testing.T) {
	cases := []struct {
		name    string
		lines   []string
		stmts   []string
		pending string
	}{
		{"one", []string{"SELECT 1;"}, []string{"SELECT 1"}, ""},
		{"two on a line", []string{"SELECT 1; SELECT 2 ;  "}, []string{"SELECT 1", "SELECT 2"}, ""},
		{"multi-line", []string{"SELECT a,", "  b", "FROM t;"}, []string{"SELECT a,\n  b\nFROM t"}, ""},
		{"semicolon in string", []string{"SELECT 1 WHERE s = 'a;b''c;';"}, []string{"SELECT 1 WHERE s = 'a;b''c;'"}, ""},
		{"string over lines", []string{"SELECT 'a", ";b';"}, []string{"SELECT 'a\n;b'"}, ""},
		{"quoted identifier", []string{`SELECT "x;y" FROM t;`}, []string{`SELECT "x;y" FROM t`}, ""},
		{"line comment", []string{"SELECT 1 -- no; not here", "FROM t;"}, []string{"SELECT 1 -- no; not here\nFROM t"}, ""},
		{"block comment", []string{"SELECT /* ; */ 1;"}, []string{"SELECT /* ; */ 1"}, ""},
		{"only comments", []string{"-- hello", ";", "/* x */ ;"}, nil, ""},
		{"empty statements", []string{";;", " ; "}, nil, ""},
		{"pending", []string{"SELECT 1; SELECT", "2"}, []string{"SELECT 1"}, "SELECT\n2\n"},
		{"minus is code", []string{"SELECT 1 - 2;"}, []string{"SELECT 1 - 2"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sp splitter
			var got []string
			for _, l := range tc.lines {
				got = append(got, sp.feed(l+"\n")...)
			}
			if !reflect.DeepEqual(got, tc.stmts) {
				t.Errorf("statements %q, want %q", got, tc.stmts)
			}
			if p := sp.pending(); strings.TrimSpace(p) != strings.TrimSpace(tc.pending) {
				t.Errorf("pending %q, want %q", p, tc.pending)
			}
		})
	}
}

func TestCaretLines(t *testing.T) {
	cases := []struct {
		sql  string
		pos  int
		want []string
	}{
		{"SELECT x FROM t", 8, []string{"  SELECT x FROM t", "         ^"}},
		{"SELECT x FROM t", 1, []string{"  SELECT x FROM t", "  ^"}},
		{"SELECT x FROM", 14, []string{"  SELECT x FROM", "               ^"}}, // end of input
		{"SELECT x\nFROM t\nWHERE", 12, []string{"LINE 2: FROM t", "          ^"}},
		{"SELECT x\nFROM t\nWHERE", 16, []string{"LINE 2: FROM t", "              ^"}}, // the newline itself
		{"SELECT x\nFROM t\nWHERE", 22, []string{"LINE 3: WHERE", "             ^"}},
		{"SELECT 'é' x", 13, []string{"  SELECT 'é' x", "             ^"}},
		{"SELECT 'é' x", 10, []string{"  SELECT 'é' x", "          ^"}}, // inside é: its start
		{"\tSELECT x", 9, []string{"  \tSELECT x", "  \t       ^"}},
		{"SELECT x", 0, nil},
		{"SELECT x", 10, nil},
		{"", 1, []string{"  ", "  ^"}},
	}
	for _, tc := range cases {
		if got := caretLines(tc.sql, tc.pos); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("caretLines(%q, %d) =\n%q\nwant\n%q", tc.sql, tc.pos, got, tc.want)
		}
	}
	// A long line is cut to a window around the caret.
	long := strings.Repeat("a", 500) + "X" + strings.Repeat("b", 500)
	got := caretLines(long, 501)
	if len(got) != 2 || width(got[0]) > 2*caretContext+10 || width(got[1]) != width(got[0][:strings.Index(got[0], "X")])+1 {
		t.Errorf("long line: %q", got)
	}
}

func TestSparkline(t *testing.T) {
	series := func(rows ...[]any) *api.QueryResult {
		return &api.QueryResult{Columns: []api.ResultColumn{{Name: "time", Type: "int"}, {Name: "avg", Type: "float"}}, Rows: rows}
	}
	cases := []struct {
		name  string
		res   *api.QueryResult
		width int
		want  string
	}{
		{"rising, unordered rows", series([]any{int64(120), 3.0}, []any{int64(0), 1.0}, []any{int64(60), 2.0}), 80,
			"▁▅█  avg min 1 · max 3"},
		{"gap", series([]any{int64(0), 1.0}, []any{int64(180), 2.0}, []any{int64(60), 1.5}), 80,
			"▁▅ █  avg min 1.00 · max 2.00"},
		{"flat", series([]any{int64(0), 5.0}, []any{int64(60), 5.0}), 80, "▅▅  avg min 5 · max 5"},
		{"downsampled", series([]any{int64(0), 0.0}, []any{int64(1), 0.0}, []any{int64(2), 10.0}, []any{int64(3), 10.0}), 2,
			"▁█  avg min 0 · max 10"},
		{"one point", series([]any{int64(0), 5.0}), 80, ""},
		{"not a series", &api.QueryResult{Columns: []api.ResultColumn{{Name: "host", Type: "string"}, {Name: "n", Type: "int"}},
			Rows: [][]any{{"a", int64(1)}, {"b", int64(2)}}}, 80, ""},
	}
	for _, tc := range cases {
		if got := sparkline(tc.res, tc.width); got != tc.want {
			t.Errorf("%s: sparkline = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func FuzzSplitter(f *testing.F) {
	f.Add("SELECT 1; SELECT 'a;b' -- c;\n/* ; */;")
	f.Add("'unterminated;")
	f.Add("/* unterminated ;")
	f.Fuzz(func(t *testing.T, in string) {
		var sp splitter
		total := 0
		for _, line := range strings.Split(in, "\n") {
			for _, st := range sp.feed(line + "\n") {
				if st == "" || st != strings.TrimSpace(st) {
					t.Fatalf("bad statement %q", st)
				}
				total += len(st)
			}
		}
		if total+sp.size() > len(in)+strings.Count(in, "\n")+1 {
			t.Fatalf("statements hold more than the input")
		}
	})
}

func FuzzCaretLines(f *testing.F) {
	f.Add("SELECT x\nFROM t", 3)
	f.Add("é\té", 2)
	f.Add("", 1)
	f.Fuzz(func(t *testing.T, sql string, pos int) {
		lines := caretLines(sql, pos)
		if lines != nil && (len(lines) != 2 || !strings.HasSuffix(lines[1], "^")) {
			t.Fatalf("caretLines(%q, %d) = %q", sql, pos, lines)
		}
	})
}

// FuzzRender feeds any decodable result to every renderer: none may panic.
func FuzzRender(f *testing.F) {
	f.Add([]byte(groupByResult))
	f.Add([]byte(seriesResult))
	f.Add([]byte(`{"columns":[{"name":"time","type":"int"},{"name":"v","type":"float"}],"rows":[[-9223372036854775808,1],[9223372036854775807,2e308]]}`))
	f.Add([]byte(`{"columns":[{"name":"time"}],"rows":[[1,2,3],[],[{"a":[1]}]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := api.DecodeQueryResult(bytes.NewReader(data))
		if err != nil {
			return
		}
		var b bytes.Buffer
		renderTable(&b, res)
		renderExpanded(&b, res)
		sparkline(res, 40)
		if err := writeCSV(&b, res); err != nil {
			t.Fatalf("csv: %v", err)
		}
		writeNDJSON(&b, res)
		writeJSON(&b, res)
	})
}

// benchResult is a 10,000-row group-by answer.
func benchResult() *api.QueryResult {
	res := &api.QueryResult{Columns: []api.ResultColumn{
		{Name: "host", Type: "string"}, {Name: "count", Type: "int"}, {Name: "p99", Type: "float"},
	}}
	for i := range 10_000 {
		res.Rows = append(res.Rows, []any{"web-" + strings.Repeat("x", i%7), int64(i * 977), float64(i) / 7})
	}
	return res
}

func BenchmarkRenderTable(b *testing.B) {
	res := benchResult()
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		renderTable(&buf, res)
	}
	b.SetBytes(int64(buf.Len()))
}
