// Package plan holds the query plan: what the root aggregator derives from SQL and
// sends, as JSON, to every child (leaf or aggregator). Leaves execute its scan part
// (table, filter, group keys, aggregates) into partial states; aggregators merge those
// states and only the root applies the final part (output columns, ORDER BY, LIMIT).
//
// This package describes plans, builds them from SQL (FromSQL, Build: resolving
// names, aliases and positions, folding constants such as now() - 1h, normalizing
// filters) and checks them (Check for shape, Validate against a table schema).
// Parsing SQL is query/sql's job, execution query/exec's, and partial states
// query/agg's; this package must not execute anything.
package plan

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/reef-db/reef/block"
)

// Kind of a Value.
type Kind uint8

const (
	KindNull Kind = iota
	KindInt
	KindFloat
	KindString
	KindBool
)

// Value is a scalar: a literal in a plan, a group key, or a result cell.
type Value struct {
	Kind Kind
	I    int64
	F    float64
	S    string
	B    bool
}

func Null() Value            { return Value{} }
func Int(i int64) Value      { return Value{Kind: KindInt, I: i} }
func Float(f float64) Value  { return Value{Kind: KindFloat, F: f} }
func String(s string) Value  { return Value{Kind: KindString, S: s} }
func Bool(b bool) Value      { return Value{Kind: KindBool, B: b} }
func (v Value) IsNull() bool { return v.Kind == KindNull }

// AsFloat converts ints and floats to float64.
func (v Value) AsFloat() (float64, bool) {
	switch v.Kind {
	case KindInt:
		return float64(v.I), true
	case KindFloat:
		return v.F, true
	}
	return 0, false
}

// Any returns the value as nil, int64, float64, string or bool (for JSON results).
// NaN and infinities become nil, since JSON cannot carry them.
func (v Value) Any() any {
	switch v.Kind {
	case KindInt:
		return v.I
	case KindFloat:
		if math.IsNaN(v.F) || math.IsInf(v.F, 0) {
			return nil
		}
		return v.F
	case KindString:
		return v.S
	case KindBool:
		return v.B
	}
	return nil
}

func (v Value) String() string {
	switch v.Kind {
	case KindInt:
		return strconv.FormatInt(v.I, 10)
	case KindFloat:
		return strconv.FormatFloat(v.F, 'g', -1, 64)
	case KindString:
		return strconv.Quote(v.S)
	case KindBool:
		return strconv.FormatBool(v.B)
	}
	return "NULL"
}

// Compare orders values: NULL first, then numbers (ints and floats compared by
// value), then strings, then bools. It returns -1, 0 or +1.
func Compare(a, b Value) int {
	rank := func(v Value) int {
		switch v.Kind {
		case KindNull:
			return 0
		case KindInt, KindFloat:
			return 1
		case KindString:
			return 2
		}
		return 3
	}
	ra, rb := rank(a), rank(b)
	if ra != rb {
		return cmpInt(ra, rb)
	}
	switch ra {
	case 1:
		if a.Kind == KindInt && b.Kind == KindInt {
			return cmpInt64(a.I, b.I)
		}
		fa, _ := a.AsFloat()
		fb, _ := b.AsFloat()
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	case 2:
		switch {
		case a.S < b.S:
			return -1
		case a.S > b.S:
			return 1
		}
		return 0
	case 3:
		return cmpInt(b2i(a.B), b2i(b.B))
	}
	return 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
func cmpInt(a, b int) int { return cmpInt64(int64(a), int64(b)) }
func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// valueJSON is Value's wire form: exactly one field set, or none for NULL.
type valueJSON struct {
	I *int64   `json:"i,omitempty"`
	F *float64 `json:"f,omitempty"`
	S *string  `json:"s,omitempty"`
	B *bool    `json:"b,omitempty"`
}

func (v Value) MarshalJSON() ([]byte, error) {
	var j valueJSON
	switch v.Kind {
	case KindInt:
		j.I = &v.I
	case KindFloat:
		j.F = &v.F
	case KindString:
		j.S = &v.S
	case KindBool:
		j.B = &v.B
	}
	return json.Marshal(j)
}

func (v *Value) UnmarshalJSON(data []byte) error {
	var j valueJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("cannot decode value: %w", err)
	}
	switch {
	case j.I != nil:
		*v = Int(*j.I)
	case j.F != nil:
		*v = Float(*j.F)
	case j.S != nil:
		*v = String(*j.S)
	case j.B != nil:
		*v = Bool(*j.B)
	default:
		*v = Null()
	}
	return nil
}

// Op is an expression operator.
type Op string

const (
	OpColumn Op = "col" // Column
	OpLit    Op = "lit" // Value
	OpAnd    Op = "and" // Args...
	OpOr     Op = "or"  // Args...
	OpNot    Op = "not" // Args[0]
	OpEq     Op = "="   // Args[0] (column) op Args[1] (literal); see Expr
	OpNe     Op = "!="
	OpLt     Op = "<"
	OpLe     Op = "<="
	OpGt     Op = ">"
	OpGe     Op = ">="
	OpIn     Op = "in"     // Args[0] IN Values
	OpLike   Op = "like"   // Args[0] LIKE Value.S (% and _ wildcards)
	OpRegex  Op = "regex"  // Args[0] ~ Value.S (Go RE2 syntax)
	OpIsNull Op = "isnull" // Args[0] IS NULL
	OpHas    Op = "has"    // has(set, Value.S)
	OpHasAny Op = "hasany" // has_any(set, Values...)
	OpHasAll Op = "hasall" // has_all(set, Values...)
)

// Expr is a boolean filter expression over one row, in a normalized form that leaves
// can evaluate column-at-a-time: every comparison has a column on the left
// (Args[0].Op == OpColumn) and a literal on the right (Value, or Values for IN and
// the set functions). The planner flips `1 < x` into `x > 1`.
type Expr struct {
	Op     Op      `json:"op"`
	Args   []*Expr `json:"args,omitempty"`
	Column string  `json:"column,omitempty"`
	Value  Value   `json:"value,omitzero"`
	Values []Value `json:"values,omitempty"`
}

// GroupKey is one GROUP BY key: a column, or the time column bucketed into
// intervals of Bucket seconds (GROUP BY time(1m) → Column "time", Bucket 60). Bucket
// keys are aligned to multiples of Bucket since the unix epoch.
type GroupKey struct {
	Column string `json:"column"`
	Bucket int64  `json:"bucket,omitempty"`
}

// AggFunc names an aggregate function.
type AggFunc string

const (
	AggCount         AggFunc = "count"          // count(*) when Column == ""; count(col) counts non-nulls
	AggSum           AggFunc = "sum"            // weighted by sample_rate
	AggAvg           AggFunc = "avg"            // weighted by sample_rate
	AggMin           AggFunc = "min"            //
	AggMax           AggFunc = "max"            //
	AggPercentile    AggFunc = "percentile"     // Param in [0,1]; p50(x) → Param 0.5
	AggCountDistinct AggFunc = "count_distinct" // approximate (HyperLogLog)
)

// Agg is one aggregate to compute per group.
type Agg struct {
	Func   AggFunc `json:"func"`
	Column string  `json:"column,omitempty"`
	Param  float64 `json:"param,omitempty"`
}

// OutputKind says where an output column comes from.
type OutputKind string

const (
	OutGroup  OutputKind = "group"  // Index into Plan.GroupBy
	OutAgg    OutputKind = "agg"    // Index into Plan.Aggs
	OutColumn OutputKind = "column" // sample queries: Index into Plan.Columns
)

// Output is one column of the final result, in SELECT order.
type Output struct {
	Name  string     `json:"name"`
	Kind  OutputKind `json:"kind"`
	Index int        `json:"index"`
}

// Order is one ORDER BY term over the output columns.
//
// In a sample query Column names the column to sort by, which is one of Columns (or
// any column when Columns is empty), and Output is its index in Outputs, or -1 when
// the column is fetched only to sort by (SELECT a FROM t ORDER BY time).
type Order struct {
	Output int    `json:"output"` // index into Plan.Outputs
	Desc   bool   `json:"desc,omitempty"`
	Column string `json:"column,omitempty"` // sample queries only
}

// Plan is a parsed, validated query.
//
// An aggregate query (one with aggregates or GROUP BY) has its group keys in GroupBy,
// its aggregates (each computed once, however often the query names it) in Aggs, and
// its result columns in Outputs, in SELECT order. OrderBy sorts the result; without an
// ORDER BY clause it sorts by the group keys that are outputs, ascending, in SELECT
// order.
//
// A query without aggregates and without GROUP BY (`SELECT a, b FROM t …` or
// `SELECT * …`) is a sample query: Columns names what leaves return (empty means every
// column): the selected columns in SELECT order, then any column needed only by ORDER
// BY. Outputs are the selected columns (kind OutColumn), empty for SELECT *. Leaves
// return up to Limit matching rows each, first by OrderBy, and the root keeps the
// first Limit by OrderBy and drops columns that are not outputs. OrderBy is always
// set (default time DESC) and names its columns (Order.Column).
type Plan struct {
	Table   string     `json:"table"`
	Filter  *Expr      `json:"filter,omitempty"`
	GroupBy []GroupKey `json:"group_by,omitempty"`
	Aggs    []Agg      `json:"aggs,omitempty"`
	Outputs []Output   `json:"outputs,omitempty"`
	OrderBy []Order    `json:"order_by,omitempty"`
	Limit   int        `json:"limit"` // < 0: no limit

	// Sample queries only (Aggs and GroupBy empty).
	Sample  bool     `json:"sample,omitempty"`
	Columns []string `json:"columns,omitempty"`

	// TimeMin/TimeMax bound the time column as implied by Filter (inclusive), so
	// leaves skip blocks and aggregators estimate coverage; Filter still holds the
	// conditions they come from. math.MinInt64 / math.MaxInt64 mean unbounded; a
	// hand-written plan may leave them zero, which Normalize turns into unbounded.
	// TimeMin > TimeMax means no row can match.
	TimeMin int64 `json:"time_min"`
	TimeMax int64 `json:"time_max"`
	// Now is the unix time `now()` was resolved to.
	Now int64 `json:"now"`
}

// ColumnType is a column of a table schema.
type ColumnType struct {
	Name string     `json:"name"`
	Type block.Type `json:"-"`
}

// Normalize makes a hand-written or decoded plan explicit: a zero TimeMin or TimeMax
// becomes unbounded. Widening the range is always safe, since Filter still holds
// every time condition. Plans from Build are already normal.
func (p *Plan) Normalize() {
	if p.TimeMin == 0 {
		p.TimeMin = math.MinInt64
	}
	if p.TimeMax == 0 {
		p.TimeMax = math.MaxInt64
	}
}

// Clone returns a deep copy of p.
func (p *Plan) Clone() *Plan {
	c := *p
	c.Filter = p.Filter.Clone()
	c.GroupBy = slices.Clone(p.GroupBy)
	c.Aggs = slices.Clone(p.Aggs)
	c.Outputs = slices.Clone(p.Outputs)
	c.OrderBy = slices.Clone(p.OrderBy)
	c.Columns = slices.Clone(p.Columns)
	return &c
}

// Clone returns a deep copy of e (nil for nil).
func (e *Expr) Clone() *Expr {
	if e == nil {
		return nil
	}
	c := *e
	c.Values = slices.Clone(e.Values)
	if e.Args != nil {
		c.Args = make([]*Expr, len(e.Args))
		for i, a := range e.Args {
			c.Args[i] = a.Clone()
		}
	}
	return &c
}

// String renders e for humans, logs and tests in SQL-like syntax, e.g.
// (time >= 1700000000 AND service IN ('api', 'web') AND NOT (latency < 2.0)).
// Floats always carry a decimal point, so every value shows its kind.
func (e *Expr) String() string {
	var b strings.Builder
	e.write(&b)
	return b.String()
}

func (e *Expr) write(b *strings.Builder) {
	if e == nil {
		b.WriteString("<nil>")
		return
	}
	arg := func(i int) {
		if i < len(e.Args) {
			e.Args[i].write(b)
		} else {
			b.WriteString("<missing>")
		}
	}
	values := func() {
		for i, v := range e.Values {
			if i > 0 {
				b.WriteString(", ")
			}
			writeValue(b, v)
		}
	}
	switch e.Op {
	case OpColumn:
		b.WriteString(e.Column)
	case OpLit:
		writeValue(b, e.Value)
	case OpAnd, OpOr:
		b.WriteByte('(')
		for i := range e.Args {
			if i > 0 {
				b.WriteString(" " + strings.ToUpper(string(e.Op)) + " ")
			}
			arg(i)
		}
		b.WriteByte(')')
	case OpNot:
		if len(e.Args) > 0 && e.Args[0] != nil && (e.Args[0].Op == OpAnd || e.Args[0].Op == OpOr) {
			b.WriteString("NOT ") // already in parentheses
			arg(0)
			break
		}
		b.WriteString("NOT (")
		arg(0)
		b.WriteByte(')')
	case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe:
		arg(0)
		b.WriteString(" " + string(e.Op) + " ")
		writeValue(b, e.Value)
	case OpLike:
		arg(0)
		b.WriteString(" LIKE ")
		writeValue(b, e.Value)
	case OpRegex:
		arg(0)
		b.WriteString(" ~ ")
		writeValue(b, e.Value)
	case OpIsNull:
		arg(0)
		b.WriteString(" IS NULL")
	case OpIn:
		arg(0)
		b.WriteString(" IN (")
		values()
		b.WriteByte(')')
	case OpHas:
		b.WriteString("has(")
		arg(0)
		b.WriteString(", ")
		writeValue(b, e.Value)
		b.WriteByte(')')
	case OpHasAny, OpHasAll:
		if e.Op == OpHasAny {
			b.WriteString("has_any(")
		} else {
			b.WriteString("has_all(")
		}
		arg(0)
		b.WriteString(", ")
		values()
		b.WriteByte(')')
	default:
		fmt.Fprintf(b, "%s(", strconv.Quote(string(e.Op)))
		for i := range e.Args {
			if i > 0 {
				b.WriteString(", ")
			}
			arg(i)
		}
		b.WriteByte(')')
	}
}

// sqlValue returns v as SQL: NULL, TRUE, 42, 2.0, 'text' (a quote in text doubled).
func sqlValue(v Value) string {
	var b strings.Builder
	writeValue(&b, v)
	return b.String()
}

// writeValue writes v as SQL (see sqlValue).
func writeValue(b *strings.Builder, v Value) {
	switch v.Kind {
	case KindNull:
		b.WriteString("NULL")
	case KindBool:
		b.WriteString(strings.ToUpper(strconv.FormatBool(v.B)))
	case KindInt:
		b.WriteString(strconv.FormatInt(v.I, 10))
	case KindFloat:
		s := strconv.FormatFloat(v.F, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eIN") {
			s += ".0"
		}
		b.WriteString(s)
	case KindString:
		b.WriteString("'" + strings.ReplaceAll(v.S, "'", "''") + "'")
	}
}
