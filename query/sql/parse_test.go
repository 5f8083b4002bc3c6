package sql_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/reef-db/reef/query/sql"
	"github.com/reef-db/reef/query/sql/sqltest"
)

// TestParse runs testdata/*.txt: "parse" cases print the query in canonical form
// (every operator parenthesised) or the error with a caret under its position.
// Regenerate with: go test ./query/sql -run TestParse -rewrite
func TestParse(t *testing.T) {
	sqltest.Run(t, "testdata/*.txt", func(t *testing.T, c sqltest.Case) string {
		t.Helper()
		if c.Directive != "parse" {
			t.Fatalf("line %d: unknown directive %q", c.Line, c.Directive)
		}
		q, err := sql.Parse(c.Input)
		if err != nil {
			return sqltest.FormatError(c.Input, err)
		}
		s := q.String()
		checkRoundTrip(t, s)
		return s
	})
}

// checkRoundTrip checks that the canonical form parses to itself.
func checkRoundTrip(t *testing.T, canonical string) {
	t.Helper()
	q, err := sql.Parse(canonical)
	if err != nil {
		t.Errorf("canonical form %q does not parse: %v", canonical, err)
		return
	}
	if again := q.String(); again != canonical {
		t.Errorf("canonical form is not stable:\n%s\n%s", canonical, again)
	}
}

func TestErrorFormat(t *testing.T) {
	f := func(err *sql.Error, want string) {
		t.Helper()
		if got := err.Error(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	f(&sql.Error{Pos: 23, Msg: `expected FROM, found "FORM"`, Syntax: true}, `syntax error at position 23: expected FROM, found "FORM"`)
	f(&sql.Error{Pos: 8, Msg: `unknown function "cnt"`}, `unknown function "cnt" at position 8`)
	f(&sql.Error{Msg: "query is too long"}, "query is too long")
	f(&sql.Error{Msg: "bad", Syntax: true}, "syntax error: bad")
}

func TestPositions(t *testing.T) {
	f := func(q string, pos int) {
		t.Helper()
		_, err := sql.Parse(q)
		var se *sql.Error
		if !errors.As(err, &se) {
			t.Fatalf("Parse(%q) = %v, want an *sql.Error", q, err)
		}
		if se.Pos != pos {
			t.Errorf("Parse(%q): error %q at %d, want %d", q, se.Msg, se.Pos, pos)
		}
	}
	f("SELECT count(*) AS n FORM events", 22)
	f("SELECT cnt(*) FROM t", 8)
	f("SELECT a FROM t WHERE a = 'abc", 27)
	f("SELECT a FROM t WHERE a = 1 GARBAGE", 29)
	f("SELECT a FROM t\nWHERE a = #", 27)
	f("", 1)
	f("SELECT a FROM t WHERE a = 'caf\xe9'", 31)
	f("SELECT a FROM t /* never closed", 17)
	f("SELECT a FROM t WHERE "+strings.Repeat("(", 1000)+"a = 1"+strings.Repeat(")", 1000), 223)
	f("SELECT a FROM t WHERE "+strings.Repeat("NOT ", 1000)+"a = 1", 819)
	f("SELECT a FROM t WHERE a = "+strings.Repeat("- ", 1000)+"1", 425)
}

func TestLimits(t *testing.T) {
	if _, err := sql.Parse("SELECT a FROM t WHERE a IN (" + strings.Repeat("1,", sql.MaxQueryLen/2) + "1)"); err == nil {
		t.Error("a query longer than MaxQueryLen parsed")
	}
	in := "SELECT a FROM t WHERE a IN (" + strings.Repeat("1,", 10000) + "1)"
	q, err := sql.Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(q.Where.(*sql.In).List); n != 10001 {
		t.Errorf("IN list has %d entries, want 10001", n)
	}
}

func TestPercentileOf(t *testing.T) {
	f := func(name string, want float64, ok bool) {
		t.Helper()
		got, gotOK := sql.PercentileOf(name)
		if got != want || gotOK != ok {
			t.Errorf("PercentileOf(%q) = %v, %v; want %v, %v", name, got, gotOK, want, ok)
		}
	}
	f("p50", 0.5, true)
	f("p99", 0.99, true)
	f("p05", 0.05, true)
	f("p999", 0.999, true)
	f("p9999", 0.9999, true)
	f("p995", 0.995, true)
	f("p5", 0, false)
	f("p100", 0, false)
	f("p", 0, false)
	f("pxx", 0, false)
	f("q50", 0, false)
	f("p99999999", 0, false)
}

func TestFormatDuration(t *testing.T) {
	f := func(secs int64, want string) {
		t.Helper()
		if got := sql.FormatDuration(secs); got != want {
			t.Errorf("FormatDuration(%d) = %q, want %q", secs, got, want)
		}
	}
	f(0, "0s")
	f(59, "59s")
	f(90, "1m30s")
	f(3600, "1h")
	f(8*86400+1, "1w1d1s")
	f(-300, "-5m")
	f(-9223372036854775808, "-15250284452471w3d15h30m8s")
}

func FuzzParse(f *testing.F) {
	seeds, err := sqltest.Inputs("testdata/*.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		ast, err := sql.Parse(q)
		if err != nil {
			var se *sql.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not an *sql.Error", err)
			}
			if se.Pos < 0 || se.Pos > len(q)+1 {
				t.Fatalf("error position %d outside the query (length %d): %v", se.Pos, len(q), err)
			}
			return
		}
		checkRoundTrip(t, ast.String())
	})
}

func BenchmarkParse(b *testing.B) {
	const q = `SELECT service, time(1m), count(*), p99(latency_ms) AS p99, avg(bytes)
		FROM events
		WHERE time >= now() - 1h AND status IN (500, 502, 503) AND NOT has(tags, 'canary')
		  AND host LIKE 'web-%' AND path !~ '^/health'
		GROUP BY service, time(1m) ORDER BY p99 DESC LIMIT 20`
	b.ReportAllocs()
	b.SetBytes(int64(len(q)))
	for b.Loop() {
		if _, err := sql.Parse(q); err != nil {
			b.Fatal(err)
		}
	}
}
