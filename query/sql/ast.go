package sql

import (
	"math"
	"strconv"
	"strings"
)

// Query is a parsed SELECT statement. Clauses that were not written are nil.
type Query struct {
	Select  []SelectItem
	From    *Ident
	Where   Expr
	GroupBy []Expr
	OrderBy []OrderTerm
	Limit   *Literal // a LitInt ≥ 0
}

// SelectItem is one entry of the select list: an expression (a *Star for SELECT *)
// and an optional alias.
type SelectItem struct {
	Expr  Expr
	Alias *Ident
}

// OrderTerm is one ORDER BY term.
type OrderTerm struct {
	Expr Expr
	Desc bool
}

// Expr is an expression node: *Ident, *Literal, *Star, *Call, *Unary, *Binary, *In,
// *Between or *IsNull.
type Expr interface {
	// Pos is the 1-based byte offset of the expression's first token.
	Pos() int
	// String is the expression in canonical SQL: keywords upper case, function
	// names lower case, every operator parenthesised. Parsing it again yields the
	// same tree.
	String() string
	write(b *strings.Builder)
}

// Op is an operator of a *Unary or *Binary expression.
type Op string

const (
	OpAnd      Op = "AND"
	OpOr       Op = "OR"
	OpNot      Op = "NOT" // unary
	OpNeg      Op = "-"   // unary minus
	OpEq       Op = "="
	OpNe       Op = "!=" // also written <>
	OpLt       Op = "<"
	OpLe       Op = "<="
	OpGt       Op = ">"
	OpGe       Op = ">="
	OpMatch    Op = "~" // also written =~
	OpNotMatch Op = "!~"
	OpLike     Op = "LIKE"
	OpNotLike  Op = "NOT LIKE"
	OpAdd      Op = "+"
	OpSub      Op = "-"
	OpMul      Op = "*"
	OpDiv      Op = "/"
)

// Ident is a column, table or alias name. Quoted names were written in double
// quotes; their Name has the quotes removed.
type Ident struct {
	Name   string
	Quoted bool
	At     int
}

// LitKind is the kind of a Literal.
type LitKind uint8

const (
	LitNull LitKind = iota
	LitBool
	LitInt
	LitFloat
	LitString
	LitDuration // Int holds seconds
)

// Literal is a constant written in the query.
type Literal struct {
	Kind  LitKind
	Int   int64 // LitInt, LitDuration (seconds)
	Float float64
	Str   string
	Bool  bool
	At    int
}

// Star is the * of SELECT * and count(*).
type Star struct{ At int }

// Call is a function call. Name is lower case and known to the parser (see
// IsAggregate, PercentileOf); the number of arguments has been checked.
type Call struct {
	Name     string
	Args     []Expr
	Distinct bool // count(DISTINCT x)
	At       int
}

// Unary is NOT x or -x.
type Unary struct {
	Op Op
	X  Expr
	At int
}

// Binary is L Op R.
type Binary struct {
	Op   Op
	L, R Expr
	OpAt int // position of the operator
}

// In is X [NOT] IN (List…).
type In struct {
	X    Expr
	List []Expr
	Not  bool
	OpAt int // position of NOT or IN
}

// Between is X [NOT] BETWEEN Lo AND Hi.
type Between struct {
	X, Lo, Hi Expr
	Not       bool
	OpAt      int
}

// IsNull is X IS [NOT] NULL.
type IsNull struct {
	X    Expr
	Not  bool
	OpAt int
}

func (e *Ident) Pos() int   { return e.At }
func (e *Literal) Pos() int { return e.At }
func (e *Star) Pos() int    { return e.At }
func (e *Call) Pos() int    { return e.At }
func (e *Unary) Pos() int   { return e.At }
func (e *Binary) Pos() int  { return e.L.Pos() }
func (e *In) Pos() int      { return e.X.Pos() }
func (e *Between) Pos() int { return e.X.Pos() }
func (e *IsNull) Pos() int  { return e.X.Pos() }

func str(e Expr) string {
	var b strings.Builder
	e.write(&b)
	return b.String()
}

func (e *Ident) String() string   { return str(e) }
func (e *Literal) String() string { return str(e) }
func (e *Star) String() string    { return "*" }
func (e *Call) String() string    { return str(e) }
func (e *Unary) String() string   { return str(e) }
func (e *Binary) String() string  { return str(e) }
func (e *In) String() string      { return str(e) }
func (e *Between) String() string { return str(e) }
func (e *IsNull) String() string  { return str(e) }

// isBareIdent reports whether s can be written without double quotes.
func isBareIdent(s string) bool {
	if s == "" || !isIdentStart(s[0]) || IsKeyword(s) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	return true
}

// QuoteIdent writes name as an identifier: bare when it may be, else in double
// quotes.
func QuoteIdent(name string) string {
	if isBareIdent(name) {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// QuoteString writes s as a single-quoted string literal.
func QuoteString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func (e *Ident) write(b *strings.Builder) { b.WriteString(QuoteIdent(e.Name)) }

func (e *Literal) write(b *strings.Builder) {
	switch e.Kind {
	case LitNull:
		b.WriteString("NULL")
	case LitBool:
		if e.Bool {
			b.WriteString("TRUE")
		} else {
			b.WriteString("FALSE")
		}
	case LitInt:
		b.WriteString(strconv.FormatInt(e.Int, 10))
	case LitFloat:
		b.WriteString(FormatFloat(e.Float))
	case LitString:
		b.WriteString(QuoteString(e.Str))
	case LitDuration:
		b.WriteString(FormatDuration(e.Int))
	}
}

// FormatFloat writes f so that it reads back as the same float (never as an
// integer): 0.5, 2.0, 1e+21.
func FormatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eIN") {
		s += ".0"
	}
	return s
}

// FormatDuration writes seconds as a duration literal with the largest units first:
// 90 → 1m30s, 3600 → 1h, 0 → 0s.
func FormatDuration(secs int64) string {
	if secs == 0 {
		return "0s"
	}
	var b []byte
	u := uint64(secs)
	if secs < 0 {
		b = append(b, '-')
		u = uint64(-(secs + 1)) + 1 // also right for math.MinInt64
	}
	for _, unit := range [...]struct {
		secs uint64
		name byte
	}{{7 * 86400, 'w'}, {86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}} {
		if u >= unit.secs {
			b = strconv.AppendUint(b, u/unit.secs, 10)
			b = append(b, unit.name)
			u %= unit.secs
		}
	}
	return string(b)
}

func (e *Call) write(b *strings.Builder) {
	b.WriteString(e.Name)
	b.WriteByte('(')
	if e.Distinct {
		b.WriteString("DISTINCT ")
	}
	for i, a := range e.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		a.write(b)
	}
	b.WriteByte(')')
}

func (e *Star) write(b *strings.Builder) { b.WriteByte('*') }

func (e *Unary) write(b *strings.Builder) {
	if e.Op == OpNot {
		b.WriteString("NOT ")
		e.X.write(b)
		return
	}
	// -(x): a bare "-" before a negative literal would read as a -- comment.
	b.WriteString(string(e.Op))
	b.WriteByte('(')
	e.X.write(b)
	b.WriteByte(')')
}

func (e *Binary) write(b *strings.Builder) {
	b.WriteByte('(')
	e.L.write(b)
	b.WriteByte(' ')
	b.WriteString(string(e.Op))
	b.WriteByte(' ')
	e.R.write(b)
	b.WriteByte(')')
}

func (e *In) write(b *strings.Builder) {
	b.WriteByte('(')
	e.X.write(b)
	if e.Not {
		b.WriteString(" NOT")
	}
	b.WriteString(" IN (")
	for i, x := range e.List {
		if i > 0 {
			b.WriteString(", ")
		}
		x.write(b)
	}
	b.WriteString("))")
}

func (e *Between) write(b *strings.Builder) {
	b.WriteByte('(')
	e.X.write(b)
	if e.Not {
		b.WriteString(" NOT")
	}
	b.WriteString(" BETWEEN ")
	e.Lo.write(b)
	b.WriteString(" AND ")
	e.Hi.write(b)
	b.WriteByte(')')
}

func (e *IsNull) write(b *strings.Builder) {
	b.WriteByte('(')
	e.X.write(b)
	if e.Not {
		b.WriteString(" IS NOT NULL)")
	} else {
		b.WriteString(" IS NULL)")
	}
}

// String is the query in canonical SQL (see Expr.String).
func (q *Query) String() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, it := range q.Select {
		if i > 0 {
			b.WriteString(", ")
		}
		it.Expr.write(&b)
		if it.Alias != nil {
			b.WriteString(" AS ")
			it.Alias.write(&b)
		}
	}
	if q.From != nil {
		b.WriteString(" FROM ")
		q.From.write(&b)
	}
	if q.Where != nil {
		b.WriteString(" WHERE ")
		q.Where.write(&b)
	}
	for i, g := range q.GroupBy {
		if i == 0 {
			b.WriteString(" GROUP BY ")
		} else {
			b.WriteString(", ")
		}
		g.write(&b)
	}
	for i, o := range q.OrderBy {
		if i == 0 {
			b.WriteString(" ORDER BY ")
		} else {
			b.WriteString(", ")
		}
		o.Expr.write(&b)
		if o.Desc {
			b.WriteString(" DESC")
		}
	}
	if q.Limit != nil {
		b.WriteString(" LIMIT ")
		q.Limit.write(&b)
	}
	return b.String()
}

// Aggregate functions, by name, with whether they take count's * and DISTINCT.
// Percentile shorthands (p50, p999, …) are recognised by PercentileOf.
type funcInfo struct {
	minArgs, maxArgs int // maxArgs < 0: no upper bound
	agg              bool
	star             bool // count(*)
	distinct         bool // count(DISTINCT x)
}

var funcs = map[string]funcInfo{
	"count":          {minArgs: 1, maxArgs: 1, agg: true, star: true, distinct: true},
	"sum":            {minArgs: 1, maxArgs: 1, agg: true},
	"avg":            {minArgs: 1, maxArgs: 1, agg: true},
	"min":            {minArgs: 1, maxArgs: 1, agg: true},
	"max":            {minArgs: 1, maxArgs: 1, agg: true},
	"count_distinct": {minArgs: 1, maxArgs: 1, agg: true},
	"percentile":     {minArgs: 2, maxArgs: 2, agg: true},
	"time":           {minArgs: 1, maxArgs: 1},
	"now":            {minArgs: 0, maxArgs: 0},
	"has":            {minArgs: 2, maxArgs: 2},
	"has_any":        {minArgs: 2, maxArgs: -1},
	"has_all":        {minArgs: 2, maxArgs: -1},
}

var percentileInfo = funcInfo{minArgs: 1, maxArgs: 1, agg: true}

// lookupFunc returns what the parser knows of a lower-case function name.
func lookupFunc(name string) (funcInfo, bool) {
	if fi, ok := funcs[name]; ok {
		return fi, true
	}
	if _, ok := PercentileOf(name); ok {
		return percentileInfo, true
	}
	return funcInfo{}, false
}

// IsAggregate reports whether the lower-case function name is an aggregate.
func IsAggregate(name string) bool {
	fi, ok := lookupFunc(name)
	return ok && fi.agg
}

// PercentileOf returns the quantile a percentile shorthand stands for: two digits
// are a percentage (p50 → 0.5, p05 → 0.05), longer names that start with 99 are
// read as a fraction (p999 → 0.999, p9999 → 0.9999, p995 → 0.995).
func PercentileOf(name string) (float64, bool) {
	if len(name) < 3 || len(name) > 7 || name[0] != 'p' {
		return 0, false
	}
	digits := name[1:]
	for i := 0; i < len(digits); i++ {
		if !isDigit(digits[i]) {
			return 0, false
		}
	}
	if len(digits) > 2 && digits[:2] != "99" {
		return 0, false
	}
	q, err := strconv.ParseFloat("0."+digits, 64)
	if err != nil || math.IsNaN(q) {
		return 0, false
	}
	return q, true
}
