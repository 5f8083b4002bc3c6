package spec

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Agreement is the verdict on two engines' answers to one query.
type Agreement struct {
	// OK is true when the answers agree under the query's checks.
	OK bool
	// Detail says what was compared, or the first difference found.
	Detail string
}

// Compare checks reef's answer against DuckDB's under q's rules (see Check and
// Query.TopK). Rows are matched by their key columns, so the order of groups does not
// matter except for TopK queries.
func Compare(q Query, reef, duck *QueryRun) Agreement {
	fail := func(format string, args ...any) Agreement {
		return Agreement{Detail: fmt.Sprintf(format, args...)}
	}
	if reef == nil || duck == nil {
		return fail("no answer to compare")
	}
	if reef.Error != "" || duck.Error != "" {
		return fail("query failed: reef %q, duckdb %q", reef.Error, duck.Error)
	}
	width := q.Keys + len(q.Values)
	rm, err := index(reef.Rows, q.Keys, width)
	if err != nil {
		return fail("reef answer: %v", err)
	}
	dm, err := index(duck.Rows, q.Keys, width)
	if err != nil {
		return fail("duckdb answer: %v", err)
	}
	var bounds map[string][]any
	if nq := countChecks(q.Values, Quantile); nq > 0 {
		if bounds, err = index(duck.Bounds, q.Keys, q.Keys+2*nq); err != nil {
			return fail("duckdb bounds: %v", err)
		}
	}

	if q.TopK {
		if a := compareTopK(q, reef.Rows, duck.Rows, dm); !a.OK {
			return a
		}
	} else {
		if len(rm) != len(dm) {
			return fail("%d groups vs %d%s", len(rm), len(dm), firstMissing(rm, dm))
		}
		for k := range rm {
			if _, ok := dm[k]; !ok {
				return fail("group %s only in reef's answer", showKey(k))
			}
		}
	}
	compared := 0
	for k, rrow := range rm {
		drow, ok := dm[k]
		if !ok {
			continue // a TopK group tied at the last place (checked above)
		}
		compared++
		qi := 0
		for j, c := range q.Values {
			col := q.Keys + j
			rv, dv := rrow[col], drow[col]
			switch c {
			case Exact:
				if !exactEqual(rv, dv) {
					return fail("group %s column %s: %v vs %v", showKey(k), colName(reef, col), rv, dv)
				}
			case Float:
				if !floatEqual(rv, dv) {
					return fail("group %s column %s: %v vs %v (more than %g apart, relative)", showKey(k), colName(reef, col), rv, dv, FloatTolerance)
				}
			case Quantile:
				b, ok := bounds[k]
				if !ok {
					return fail("group %s: no exact bounds from duckdb", showKey(k))
				}
				lo, hi := b[q.Keys+2*qi], b[q.Keys+2*qi+1]
				qi++
				if !withinQuantile(rv, lo, hi) {
					return fail("group %s column %s: %v outside [%v, %v] ± %g%%", showKey(k), colName(reef, col), rv, lo, hi, 100*QuantileAccuracy)
				}
			}
		}
	}
	return Agreement{OK: true, Detail: describe(q, len(reef.Rows), compared)}
}

// compareTopK checks an ORDER BY value DESC LIMIT answer: the same number of rows,
// the same value sequence in the first value column, and every group whose value is
// above the last place's in both answers.
func compareTopK(q Query, reef, duck [][]any, dm map[string][]any) Agreement {
	if len(reef) != len(duck) {
		return Agreement{Detail: fmt.Sprintf("%d rows vs %d", len(reef), len(duck))}
	}
	if len(reef) == 0 || len(q.Values) == 0 {
		return Agreement{OK: true}
	}
	col := q.Keys
	for i := range reef {
		if !exactEqual(reef[i][col], duck[i][col]) {
			return Agreement{Detail: fmt.Sprintf("place %d: %v vs %v", i+1, reef[i][col], duck[i][col])}
		}
	}
	last := reef[len(reef)-1][col]
	rm, _ := index(reef, q.Keys, len(reef[0]))
	for _, pair := range []struct {
		name string
		a, b map[string][]any
	}{{"reef", rm, dm}, {"duckdb", dm, rm}} {
		for k, row := range pair.a {
			if _, ok := pair.b[k]; !ok && !exactEqual(row[col], last) {
				return Agreement{Detail: fmt.Sprintf("group %s (%v) only in %s's answer, above the last place (%v)", showKey(k), row[col], pair.name, last)}
			}
		}
	}
	return Agreement{OK: true}
}

func describe(q Query, rows, groups int) string {
	var parts []string
	if countChecks(q.Values, Exact) > 0 {
		parts = append(parts, "counts equal")
	}
	if countChecks(q.Values, Float) > 0 {
		parts = append(parts, fmt.Sprintf("averages within %g", FloatTolerance))
	}
	if countChecks(q.Values, Quantile) > 0 {
		parts = append(parts, fmt.Sprintf("percentiles within %g%% of the exact ranks", 100*QuantileAccuracy))
	}
	what := fmt.Sprintf("%d groups", groups)
	switch {
	case q.Keys == 0:
		what = "1 row"
	case q.TopK:
		what = fmt.Sprintf("%d rows, %d groups in both (the rest tied at the last place)", rows, groups)
		if groups == rows {
			what = fmt.Sprintf("%d rows, the same groups", rows)
		}
	}
	return what + ": " + strings.Join(parts, ", ")
}

func countChecks(cs []Check, c Check) int {
	n := 0
	for _, x := range cs {
		if x == c {
			n++
		}
	}
	return n
}

// index maps each row's key (its first keys cells) to the row, checking that every
// row has width cells and that no key repeats.
func index(rows [][]any, keys, width int) (map[string][]any, error) {
	m := make(map[string][]any, len(rows))
	for i, row := range rows {
		if len(row) != width {
			return nil, fmt.Errorf("row %d has %d columns, want %d", i+1, len(row), width)
		}
		k := key(row[:keys])
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("row %d repeats group %s", i+1, showKey(k))
		}
		m[k] = row
	}
	return m, nil
}

// key joins the key cells into a map key. Integral floats are written as integers,
// so a time bucket is the same key whether it came back as 1.7e9 or 1700000000.
func key(cells []any) string {
	var b strings.Builder
	for i, c := range cells {
		if i > 0 {
			b.WriteByte(0)
		}
		switch v := c.(type) {
		case nil:
			b.WriteString("NULL")
		case string:
			b.WriteString(strconv.Quote(v))
		case float64:
			if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
				b.WriteString(strconv.FormatInt(int64(v), 10))
			} else {
				b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			}
		default:
			fmt.Fprint(&b, v)
		}
	}
	return b.String()
}

func showKey(k string) string {
	if k == "" {
		return "(all)"
	}
	return strings.ReplaceAll(k, "\x00", ",")
}

func colName(r *QueryRun, i int) string {
	if i < len(r.Columns) {
		return r.Columns[i]
	}
	return strconv.Itoa(i + 1)
}

func firstMissing(a, b map[string][]any) string {
	for k := range a {
		if _, ok := b[k]; !ok {
			return "; " + showKey(k) + " only in reef's answer"
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			return "; " + showKey(k) + " only in duckdb's answer"
		}
	}
	return ""
}

// number returns v as a float64, and whether it is a number.
func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

func exactEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ai, aok := a.(int64)
	bi, bok := b.(int64)
	if aok && bok {
		return ai == bi
	}
	af, aok := number(a)
	bf, bok := number(b)
	return aok && bok && af == bf
}

func floatEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	af, aok := number(a)
	bf, bok := number(b)
	if !aok || !bok {
		return false
	}
	return math.Abs(af-bf) <= FloatTolerance*math.Max(math.Abs(af), math.Abs(bf))
}

// withinQuantile reports whether v lies in [lo, hi] widened by QuantileAccuracy
// relative to each end.
func withinQuantile(v, lo, hi any) bool {
	fv, ok1 := number(v)
	flo, ok2 := number(lo)
	fhi, ok3 := number(hi)
	if !ok1 || !ok2 || !ok3 {
		return v == nil && lo == nil && hi == nil
	}
	a := math.Min(flo*(1-QuantileAccuracy), flo*(1+QuantileAccuracy))
	b := math.Max(fhi*(1-QuantileAccuracy), fhi*(1+QuantileAccuracy))
	return a <= fv && fv <= b
}
