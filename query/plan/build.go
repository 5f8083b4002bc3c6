package plan

import (
	"errors"
	"math"
	"regexp"
	"regexp/syntax"
	"strings"
	"time"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/sql"
)

// Limits of sample queries: rows returned without LIMIT, and the most rows LIMIT
// may ask for (larger values are lowered to it).
const (
	DefaultSampleLimit = 100
	MaxSampleLimit     = 100000
)

// FromSQL parses q and builds its plan. now is the unix time (seconds) that now()
// stands for. Errors are *sql.Error, with the position of the offending token.
func FromSQL(q string, now int64) (*Plan, error) {
	ast, err := sql.Parse(q)
	if err != nil {
		return nil, err
	}
	return Build(ast, now)
}

// Build turns a parsed query into a plan: it resolves aliases and positions in GROUP
// BY and ORDER BY, folds constants (now(), durations, timestamps, arithmetic),
// normalizes the filter (column on the left, literal on the right), and derives the
// time range. It does not know the table's schema; see Validate. Errors are
// *sql.Error.
func Build(q *sql.Query, now int64) (*Plan, error) {
	if q == nil || q.From == nil || len(q.Select) == 0 {
		return nil, sql.Errorf(0, "cannot build a plan from an incomplete query")
	}
	b := &builder{now: now}
	p := &Plan{
		Table:   q.From.Name,
		Now:     now,
		TimeMin: math.MinInt64,
		TimeMax: math.MaxInt64,
	}
	if q.Where != nil {
		f, err := b.cond(q.Where)
		if err != nil {
			return nil, err
		}
		p.Filter = f
		p.TimeMin, p.TimeMax = timeRange(f)
	}
	items := make([]item, len(q.Select))
	aggregate := len(q.GroupBy) > 0
	for i, si := range q.Select {
		it, err := b.selectItem(si)
		if err != nil {
			return nil, err
		}
		items[i] = it
		aggregate = aggregate || it.kind == itemAgg
	}
	var err error
	if aggregate {
		err = b.aggregatePlan(p, q, items)
	} else {
		err = b.samplePlan(p, q, items)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

type builder struct {
	now int64
}

type itemKind uint8

const (
	itemStar   itemKind = iota // *
	itemColumn                 // a column; key is its group key
	itemBucket                 // time(…); key is its group key
	itemAgg                    // an aggregate; agg says which
)

// item is one resolved entry of the select list.
type item struct {
	kind  itemKind
	expr  sql.Expr
	name  string // output name: the alias, or the expression as written canonically
	alias bool   // name is an alias
	key   GroupKey
	agg   Agg
}

func (b *builder) selectItem(si sql.SelectItem) (item, error) {
	it := item{expr: si.Expr}
	switch e := si.Expr.(type) {
	case *sql.Star:
		it.kind = itemStar
		if si.Alias != nil {
			return item{}, sql.Errorf(si.Alias.At, "SELECT * cannot have an alias")
		}
		return it, nil
	case *sql.Ident:
		it.kind, it.key, it.name = itemColumn, GroupKey{Column: e.Name}, e.Name
	case *sql.Call:
		switch {
		case e.Name == "time":
			key, err := b.bucket(e)
			if err != nil {
				return item{}, err
			}
			it.kind, it.key, it.name = itemBucket, key, block.TimeColumn
		case sql.IsAggregate(e.Name):
			a, err := b.agg(e)
			if err != nil {
				return item{}, err
			}
			it.kind, it.agg, it.name = itemAgg, a, e.String()
		default:
			return item{}, sql.Errorf(e.At, "%s() cannot be a result column; select columns, aggregates or time(…)", e.Name)
		}
	default:
		return item{}, sql.Errorf(e.Pos(), "cannot select %s: select columns, aggregates or time(…)", e.String())
	}
	if si.Alias != nil {
		it.name, it.alias = si.Alias.Name, true
	}
	return it, nil
}

// bucket resolves time(interval) into a group key.
func (b *builder) bucket(c *sql.Call) (GroupKey, error) {
	arg := c.Args[0]
	v, err := b.constant(arg)
	if err != nil {
		return GroupKey{}, err
	}
	if v.Kind != KindInt {
		return GroupKey{}, sql.Errorf(arg.Pos(), "time() takes a duration such as 1m or a whole number of seconds, not %s", arg)
	}
	if v.I < 1 {
		return GroupKey{}, sql.Errorf(arg.Pos(), "time bucket must be at least 1s, got %s", arg)
	}
	return GroupKey{Column: block.TimeColumn, Bucket: v.I}, nil
}

// agg resolves an aggregate call.
func (b *builder) agg(c *sql.Call) (Agg, error) {
	if _, ok := c.Args[0].(*sql.Star); ok { // count(*), the only call the parser lets take *
		return Agg{Func: AggCount}, nil
	}
	col, ok := c.Args[0].(*sql.Ident)
	if !ok {
		if inner, ok := c.Args[0].(*sql.Call); ok && sql.IsAggregate(inner.Name) {
			return Agg{}, sql.Errorf(inner.At, "aggregate functions cannot be nested")
		}
		return Agg{}, sql.Errorf(c.Args[0].Pos(), "the argument of %s must be a column, not %s", c.Name, c.Args[0])
	}
	switch c.Name {
	case "count":
		if c.Distinct {
			return Agg{Func: AggCountDistinct, Column: col.Name}, nil
		}
		return Agg{Func: AggCount, Column: col.Name}, nil
	case "sum":
		return Agg{Func: AggSum, Column: col.Name}, nil
	case "avg":
		return Agg{Func: AggAvg, Column: col.Name}, nil
	case "min":
		return Agg{Func: AggMin, Column: col.Name}, nil
	case "max":
		return Agg{Func: AggMax, Column: col.Name}, nil
	case "count_distinct":
		return Agg{Func: AggCountDistinct, Column: col.Name}, nil
	case "percentile":
		arg := c.Args[1]
		v, err := b.constant(arg)
		if err != nil {
			return Agg{}, err
		}
		q, ok := v.AsFloat()
		if !ok || q < 0 || q > 1 {
			return Agg{}, sql.Errorf(arg.Pos(), "percentile must be a number between 0 and 1 (0.99 for the 99th), got %s", arg)
		}
		return Agg{Func: AggPercentile, Column: col.Name, Param: q}, nil
	}
	if q, ok := sql.PercentileOf(c.Name); ok {
		return Agg{Func: AggPercentile, Column: col.Name, Param: q}, nil
	}
	panic("BUG: aggregate " + c.Name + " known to the parser but not to the planner")
}

// groupKey resolves one GROUP BY term: a column, time(…), an output alias, or a
// 1-based position in the select list. An alias wins over a column of the same name.
func (b *builder) groupKey(e sql.Expr, items []item) (GroupKey, error) {
	var it *item
	switch e := e.(type) {
	case *sql.Literal:
		n, err := position(e, len(items), "GROUP BY")
		if err != nil {
			return GroupKey{}, err
		}
		it = &items[n]
	case *sql.Ident:
		for i := range items {
			if items[i].alias && items[i].name == e.Name {
				it = &items[i]
				break
			}
		}
		if it == nil {
			return GroupKey{Column: e.Name}, nil
		}
	case *sql.Call:
		if e.Name == "time" {
			return b.bucket(e)
		}
		if sql.IsAggregate(e.Name) {
			return GroupKey{}, sql.Errorf(e.At, "aggregate functions are not allowed in GROUP BY")
		}
		return GroupKey{}, sql.Errorf(e.At, "cannot group by %s(): GROUP BY takes columns, time(…), output names or positions", e.Name)
	default:
		return GroupKey{}, sql.Errorf(e.Pos(), "cannot group by %s: GROUP BY takes columns, time(…), output names or positions", e)
	}
	switch it.kind {
	case itemAgg:
		return GroupKey{}, sql.Errorf(e.Pos(), "cannot group by aggregate %s", it.expr)
	case itemStar:
		return GroupKey{}, sql.Errorf(e.Pos(), "cannot group by *")
	}
	return it.key, nil
}

// position reads a 1-based position into a list of n entries; it returns the
// 0-based index.
func position(e *sql.Literal, n int, clause string) (int, error) {
	if e.Kind != sql.LitInt {
		return 0, sql.Errorf(e.At, "%s takes columns, output names or positions, not %s", clause, e)
	}
	if e.Int < 1 || e.Int > int64(n) {
		return 0, sql.Errorf(e.At, "%s position %d is not in the select list (1 to %d)", clause, e.Int, n)
	}
	return int(e.Int - 1), nil
}

func (b *builder) aggregatePlan(p *Plan, q *sql.Query, items []item) error {
	for _, g := range q.GroupBy {
		key, err := b.groupKey(g, items)
		if err != nil {
			return err
		}
		if indexOfKey(p.GroupBy, key) < 0 {
			p.GroupBy = append(p.GroupBy, key)
		}
	}
	for _, it := range items {
		switch it.kind {
		case itemStar:
			return sql.Errorf(it.expr.Pos(), "SELECT * cannot be combined with aggregates or GROUP BY")
		case itemAgg:
			p.Outputs = append(p.Outputs, Output{Name: it.name, Kind: OutAgg, Index: addAgg(p, it.agg)})
		default:
			k := indexOfKey(p.GroupBy, it.key)
			if k < 0 {
				if it.kind == itemBucket {
					return sql.Errorf(it.expr.Pos(), "%s must appear in GROUP BY", it.expr)
				}
				return sql.Errorf(it.expr.Pos(), "column %q must appear in GROUP BY or in an aggregate function", it.key.Column)
			}
			p.Outputs = append(p.Outputs, Output{Name: it.name, Kind: OutGroup, Index: k})
		}
	}
	for _, t := range q.OrderBy {
		out, err := b.aggregateOrder(t.Expr, p, items)
		if err != nil {
			return err
		}
		p.OrderBy = append(p.OrderBy, Order{Output: out, Desc: t.Desc})
	}
	if len(q.OrderBy) == 0 {
		for i, o := range p.Outputs {
			if o.Kind == OutGroup {
				p.OrderBy = append(p.OrderBy, Order{Output: i})
			}
		}
	}
	p.Limit = -1
	if q.Limit != nil {
		p.Limit = int(q.Limit.Int)
	}
	return nil
}

func indexOfKey(keys []GroupKey, k GroupKey) int {
	for i, x := range keys {
		if x == k {
			return i
		}
	}
	return -1
}

// addAgg returns the index of a in p.Aggs, appending it if it is new.
func addAgg(p *Plan, a Agg) int {
	for i, x := range p.Aggs {
		if x == a {
			return i
		}
	}
	p.Aggs = append(p.Aggs, a)
	return len(p.Aggs) - 1
}

// aggregateOrder resolves an ORDER BY term of an aggregate query to an output: by
// position, by output name, by a group key column, or by an aggregate or time(…) as
// written in the select list.
func (b *builder) aggregateOrder(e sql.Expr, p *Plan, items []item) (int, error) {
	switch e := e.(type) {
	case *sql.Literal:
		return position(e, len(items), "ORDER BY")
	case *sql.Ident:
		found := -1
		for i, o := range p.Outputs {
			if o.Name != e.Name {
				continue
			}
			if found >= 0 && (p.Outputs[found].Kind != o.Kind || p.Outputs[found].Index != o.Index) {
				return 0, sql.Errorf(e.At, "ORDER BY %s is ambiguous: more than one result column has that name", e)
			}
			if found < 0 {
				found = i
			}
		}
		if found >= 0 {
			return found, nil
		}
		for i, o := range p.Outputs {
			if o.Kind == OutGroup && p.GroupBy[o.Index].Column == e.Name {
				return i, nil
			}
		}
		return 0, sql.Errorf(e.At, "cannot order by %s: it is not a column of the result", e)
	case *sql.Call:
		var want Output
		switch {
		case e.Name == "time":
			key, err := b.bucket(e)
			if err != nil {
				return 0, err
			}
			k := indexOfKey(p.GroupBy, key)
			if k < 0 {
				return 0, sql.Errorf(e.At, "cannot order by %s: it is not a column of the result", e)
			}
			want = Output{Kind: OutGroup, Index: k}
		case sql.IsAggregate(e.Name):
			a, err := b.agg(e)
			if err != nil {
				return 0, err
			}
			want = Output{Kind: OutAgg, Index: -1}
			for i, x := range p.Aggs {
				if x == a {
					want.Index = i
				}
			}
		default:
			return 0, sql.Errorf(e.At, "cannot order by %s()", e.Name)
		}
		for i, o := range p.Outputs {
			if o.Kind == want.Kind && o.Index == want.Index {
				return i, nil
			}
		}
		return 0, sql.Errorf(e.At, "cannot order by %s: it must also be in the select list", e)
	}
	return 0, sql.Errorf(e.Pos(), "cannot order by %s: ORDER BY takes result column names, positions, or aggregates from the select list", e)
}

func (b *builder) samplePlan(p *Plan, q *sql.Query, items []item) error {
	p.Sample = true
	star := false
	for _, it := range items {
		switch it.kind {
		case itemStar:
			if len(items) > 1 {
				return sql.Errorf(it.expr.Pos(), "SELECT * cannot be combined with other columns")
			}
			star = true
		case itemBucket:
			return sql.Errorf(it.expr.Pos(), "%s needs GROUP BY %s: a time bucket is a group key", it.expr, it.expr)
		case itemColumn:
			p.Outputs = append(p.Outputs, Output{Name: it.name, Kind: OutColumn, Index: addColumn(p, it.key.Column)})
		}
	}
	// order adds an ORDER BY term on the named column, fetching the column if it is
	// not an output.
	order := func(out int, col string, desc bool) {
		if out < 0 {
			for i, o := range p.Outputs {
				if p.Columns[o.Index] == col {
					out = i
					break
				}
			}
		}
		if out < 0 && !star {
			addColumn(p, col)
		}
		p.OrderBy = append(p.OrderBy, Order{Output: out, Desc: desc, Column: col})
	}
	for _, t := range q.OrderBy {
		switch e := t.Expr.(type) {
		case *sql.Literal:
			if star {
				return sql.Errorf(e.At, "ORDER BY position needs a list of columns, not SELECT *")
			}
			n, err := position(e, len(items), "ORDER BY")
			if err != nil {
				return err
			}
			order(n, p.Columns[p.Outputs[n].Index], t.Desc)
		case *sql.Ident:
			out := -1
			for i, o := range p.Outputs {
				if o.Name != e.Name {
					continue
				}
				if out >= 0 && p.Outputs[out].Index != o.Index {
					return sql.Errorf(e.At, "ORDER BY %s is ambiguous: more than one result column has that name", e)
				}
				if out < 0 {
					out = i
				}
			}
			col := e.Name
			if out >= 0 {
				col = p.Columns[p.Outputs[out].Index]
			}
			order(out, col, t.Desc)
		default:
			return sql.Errorf(e.Pos(), "cannot order by %s: without aggregates, ORDER BY takes column names or positions", e)
		}
	}
	if len(q.OrderBy) == 0 {
		order(-1, block.TimeColumn, true)
	}
	p.Limit = DefaultSampleLimit
	if q.Limit != nil {
		p.Limit = int(min(q.Limit.Int, MaxSampleLimit))
	}
	return nil
}

// addColumn returns the index of col in p.Columns, appending it if it is new.
func addColumn(p *Plan, col string) int {
	for i, c := range p.Columns {
		if c == col {
			return i
		}
	}
	p.Columns = append(p.Columns, col)
	return len(p.Columns) - 1
}

// cond builds a filter from a WHERE expression.
func (b *builder) cond(e sql.Expr) (*Expr, error) {
	switch e := e.(type) {
	case *sql.Binary:
		switch e.Op {
		case sql.OpAnd, sql.OpOr:
			l, err := b.cond(e.L)
			if err != nil {
				return nil, err
			}
			r, err := b.cond(e.R)
			if err != nil {
				return nil, err
			}
			op := OpAnd
			if e.Op == sql.OpOr {
				op = OpOr
			}
			return junction(op, l, r), nil
		case sql.OpEq, sql.OpNe, sql.OpLt, sql.OpLe, sql.OpGt, sql.OpGe:
			return b.compare(e)
		case sql.OpMatch, sql.OpNotMatch, sql.OpLike, sql.OpNotLike:
			return b.match(e)
		}
	case *sql.Unary:
		if e.Op == sql.OpNot {
			x, err := b.cond(e.X)
			if err != nil {
				return nil, err
			}
			return not(x), nil
		}
	case *sql.In:
		return b.in(e)
	case *sql.Between:
		return b.between(e)
	case *sql.IsNull:
		col, err := b.column(e.X, "IS NULL")
		if err != nil {
			return nil, err
		}
		x := &Expr{Op: OpIsNull, Args: []*Expr{col}}
		if e.Not {
			return not(x), nil
		}
		return x, nil
	case *sql.Call:
		switch {
		case e.Name == "has" || e.Name == "has_any" || e.Name == "has_all":
			return b.has(e)
		case sql.IsAggregate(e.Name):
			return nil, aggInWhere(e)
		case e.Name == "time":
			return nil, sql.Errorf(e.At, "time(…) buckets are only allowed in SELECT and GROUP BY")
		}
	case *sql.Ident:
		return nil, sql.Errorf(e.At, "expected a condition, found column %q", e.Name)
	}
	return nil, sql.Errorf(e.Pos(), "expected a condition, found %s", e)
}

func aggInWhere(c *sql.Call) error {
	return sql.Errorf(c.At, "aggregate functions are not allowed in WHERE")
}

// junction joins l and r with AND or OR, flattening nested terms of the same kind.
func junction(op Op, l, r *Expr) *Expr {
	x := &Expr{Op: op}
	for _, e := range [2]*Expr{l, r} {
		if e.Op == op {
			x.Args = append(x.Args, e.Args...)
		} else {
			x.Args = append(x.Args, e)
		}
	}
	return x
}

// not negates x; NOT NOT x is x.
func not(x *Expr) *Expr {
	if x.Op == OpNot {
		return x.Args[0]
	}
	return &Expr{Op: OpNot, Args: []*Expr{x}}
}

// column reads the column operand of a condition.
func (b *builder) column(e sql.Expr, what string) (*Expr, error) {
	if id, ok := e.(*sql.Ident); ok {
		return &Expr{Op: OpColumn, Column: id.Name}, nil
	}
	return nil, operandError(e, "the left side of "+what+" must be a column")
}

// noAggregates reports the first aggregate call in e, which a condition may not
// hold.
func noAggregates(e sql.Expr) error {
	var bad error
	walk(e, func(x sql.Expr) {
		if c, ok := x.(*sql.Call); ok && bad == nil && sql.IsAggregate(c.Name) {
			bad = aggInWhere(c)
		}
	})
	return bad
}

// operandError explains why e is not a column operand.
func operandError(e sql.Expr, msg string) error {
	if err := noAggregates(e); err != nil {
		return err
	}
	if _, ok := e.(*sql.Ident); !ok && hasColumn(e) {
		return sql.Errorf(e.Pos(), "cannot compute %s: conditions compare a column with a constant", e)
	}
	return sql.Errorf(e.Pos(), "%s, not %s", msg, e)
}

// walk calls f on e and every expression under it.
func walk(e sql.Expr, f func(sql.Expr)) {
	f(e)
	switch e := e.(type) {
	case *sql.Call:
		for _, a := range e.Args {
			walk(a, f)
		}
	case *sql.Unary:
		walk(e.X, f)
	case *sql.Binary:
		walk(e.L, f)
		walk(e.R, f)
	case *sql.In:
		walk(e.X, f)
		for _, a := range e.List {
			walk(a, f)
		}
	case *sql.Between:
		walk(e.X, f)
		walk(e.Lo, f)
		walk(e.Hi, f)
	case *sql.IsNull:
		walk(e.X, f)
	}
}

func hasColumn(e sql.Expr) bool {
	found := false
	walk(e, func(x sql.Expr) {
		if _, ok := x.(*sql.Ident); ok {
			found = true
		}
	})
	return found
}

var flipped = map[sql.Op]Op{
	sql.OpEq: OpEq, sql.OpNe: OpNe,
	sql.OpLt: OpGt, sql.OpLe: OpGe, sql.OpGt: OpLt, sql.OpGe: OpLe,
}

var comparisons = map[sql.Op]Op{
	sql.OpEq: OpEq, sql.OpNe: OpNe,
	sql.OpLt: OpLt, sql.OpLe: OpLe, sql.OpGt: OpGt, sql.OpGe: OpGe,
}

// compare builds `column op constant` from a comparison with the column on either
// side.
func (b *builder) compare(e *sql.Binary) (*Expr, error) {
	if err := noAggregates(e); err != nil {
		return nil, err
	}
	lcol, lok := e.L.(*sql.Ident)
	rcol, rok := e.R.(*sql.Ident)
	op, col, lit := comparisons[e.Op], lcol, e.R
	switch {
	case lok && rok:
		return nil, sql.Errorf(e.R.Pos(), "cannot compare column %q with column %q: one side must be a constant", lcol.Name, rcol.Name)
	case rok:
		op, col, lit = flipped[e.Op], rcol, e.L
	case !lok:
		if hasColumn(e.L) || !hasColumn(e.R) {
			return nil, operandError(e.L, "a comparison needs a column on one side")
		}
		return nil, operandError(e.R, "a comparison needs a column on one side")
	}
	v, err := b.value(lit, col.Name)
	if err != nil {
		return nil, err
	}
	return &Expr{Op: op, Args: []*Expr{{Op: OpColumn, Column: col.Name}}, Value: v}, nil
}

// value evaluates the constant side of a condition on column col: NULL is
// rejected, and strings compared with the time column are read as timestamps.
func (b *builder) value(e sql.Expr, col string) (Value, error) {
	v, err := b.constant(e)
	if err != nil {
		return Value{}, err
	}
	switch {
	case v.Kind == KindNull:
		return Value{}, sql.Errorf(e.Pos(), "comparison with NULL is never true; use IS NULL or IS NOT NULL")
	case v.Kind == KindString && col == block.TimeColumn:
		t, err := ParseTimestamp(v.S)
		if err != nil {
			return Value{}, sql.Errorf(e.Pos(), "%v", err)
		}
		return Int(t), nil
	}
	return v, nil
}

// match builds LIKE and regular-expression conditions.
func (b *builder) match(e *sql.Binary) (*Expr, error) {
	what, op := "LIKE", OpLike
	if e.Op == sql.OpMatch || e.Op == sql.OpNotMatch {
		what, op = string(e.Op), OpRegex
	}
	col, err := b.column(e.L, what)
	if err != nil {
		return nil, err
	}
	v, err := b.constant(e.R)
	if err != nil {
		return nil, err
	}
	if v.Kind != KindString {
		return nil, sql.Errorf(e.R.Pos(), "the pattern of %s must be a string, not %s", what, e.R)
	}
	if op == OpRegex {
		if _, err := regexp.Compile(v.S); err != nil {
			return nil, sql.Errorf(e.R.Pos(), "cannot compile regular expression %s: %s", e.R, regexpError(err))
		}
	}
	x := &Expr{Op: op, Args: []*Expr{col}, Value: v}
	if e.Op == sql.OpNotMatch || e.Op == sql.OpNotLike {
		return not(x), nil
	}
	return x, nil
}

// regexpError drops the "error parsing regexp: " prefix Go puts on every error.
func regexpError(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return string(se.Code) + ": `" + se.Expr + "`"
	}
	return err.Error()
}

func (b *builder) in(e *sql.In) (*Expr, error) {
	col, err := b.column(e.X, "IN")
	if err != nil {
		return nil, err
	}
	x := &Expr{Op: OpIn, Args: []*Expr{col}, Values: make([]Value, 0, len(e.List))}
	seen := make(map[Value]struct{}, len(e.List))
	for _, le := range e.List {
		v, err := b.value(le, col.Column)
		if err != nil {
			return nil, err
		}
		if _, dup := seen[v]; dup {
			continue
		}
		seen[v] = struct{}{}
		x.Values = append(x.Values, v)
	}
	if e.Not {
		return not(x), nil
	}
	return x, nil
}

// between builds x >= lo AND x <= hi.
func (b *builder) between(e *sql.Between) (*Expr, error) {
	col, err := b.column(e.X, "BETWEEN")
	if err != nil {
		return nil, err
	}
	lo, err := b.value(e.Lo, col.Column)
	if err != nil {
		return nil, err
	}
	hi, err := b.value(e.Hi, col.Column)
	if err != nil {
		return nil, err
	}
	x := &Expr{Op: OpAnd, Args: []*Expr{
		{Op: OpGe, Args: []*Expr{col}, Value: lo},
		{Op: OpLe, Args: []*Expr{{Op: OpColumn, Column: col.Column}}, Value: hi},
	}}
	if e.Not {
		return not(x), nil
	}
	return x, nil
}

// has builds has(set, 'x'), has_any(set, 'a', …) and has_all(set, 'a', …).
func (b *builder) has(c *sql.Call) (*Expr, error) {
	col, ok := c.Args[0].(*sql.Ident)
	if !ok {
		return nil, sql.Errorf(c.Args[0].Pos(), "the first argument of %s must be a set column, not %s", c.Name, c.Args[0])
	}
	x := &Expr{Op: OpHas, Args: []*Expr{{Op: OpColumn, Column: col.Name}}}
	switch c.Name {
	case "has_any":
		x.Op = OpHasAny
	case "has_all":
		x.Op = OpHasAll
	}
	for _, a := range c.Args[1:] {
		v, err := b.constant(a)
		if err != nil {
			return nil, err
		}
		if v.Kind != KindString {
			return nil, sql.Errorf(a.Pos(), "%s takes string values, not %s", c.Name, a)
		}
		if x.Op == OpHas {
			x.Value = v
		} else if !containsValue(x.Values, v) {
			x.Values = append(x.Values, v)
		}
	}
	return x, nil
}

func containsValue(vs []Value, v Value) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// constant evaluates a constant expression: literals (durations as seconds),
// now(), unary minus, and + - * / over numbers.
func (b *builder) constant(e sql.Expr) (Value, error) {
	switch e := e.(type) {
	case *sql.Literal:
		switch e.Kind {
		case sql.LitBool:
			return Bool(e.Bool), nil
		case sql.LitInt, sql.LitDuration:
			return Int(e.Int), nil
		case sql.LitFloat:
			return Float(e.Float), nil
		case sql.LitString:
			return String(e.Str), nil
		}
		return Null(), nil
	case *sql.Call:
		if e.Name == "now" {
			return Int(b.now), nil
		}
		if sql.IsAggregate(e.Name) {
			return Value{}, sql.Errorf(e.At, "aggregate function %s is not allowed here", e.Name)
		}
	case *sql.Unary:
		if e.Op == sql.OpNeg {
			v, err := b.constant(e.X)
			if err != nil {
				return Value{}, err
			}
			switch {
			case v.Kind == KindInt && v.I != math.MinInt64:
				return Int(-v.I), nil
			case v.Kind == KindFloat:
				return Float(-v.F), nil
			case v.Kind == KindInt:
				return Value{}, sql.Errorf(e.At, "integer overflow in %s", e)
			}
			return Value{}, sql.Errorf(e.At, "cannot negate %s", e.X)
		}
	case *sql.Binary:
		switch e.Op {
		case sql.OpAdd, sql.OpSub, sql.OpMul, sql.OpDiv:
			l, err := b.constant(e.L)
			if err != nil {
				return Value{}, err
			}
			r, err := b.constant(e.R)
			if err != nil {
				return Value{}, err
			}
			return arith(e, l, r)
		}
	case *sql.Ident:
		return Value{}, sql.Errorf(e.At, "expected a constant, found column %q", e.Name)
	}
	return Value{}, sql.Errorf(e.Pos(), "expected a constant, found %s", e)
}

// arith folds l op r. Integer arithmetic is exact (division truncates) and fails on
// overflow; a float on either side makes the result a float.
func arith(e *sql.Binary, l, r Value) (Value, error) {
	for i, v := range [2]Value{l, r} {
		if v.Kind != KindInt && v.Kind != KindFloat {
			operand := e.L
			if i == 1 {
				operand = e.R
			}
			return Value{}, sql.Errorf(operand.Pos(), "cannot apply %s to %s: arithmetic takes numbers and durations", e.Op, operand)
		}
	}
	if l.Kind == KindInt && r.Kind == KindInt {
		a, c := l.I, r.I
		var v int64
		ok := true
		switch e.Op {
		case sql.OpAdd:
			v = a + c
			ok = (c >= 0) == (v >= a)
		case sql.OpSub:
			v = a - c
			ok = (c >= 0) == (v <= a)
		case sql.OpMul:
			v = a * c
			ok = a == 0 || (v/a == c && !(a == -1 && c == math.MinInt64))
		case sql.OpDiv:
			if c == 0 {
				return Value{}, sql.Errorf(e.OpAt, "division by zero")
			}
			ok = !(a == math.MinInt64 && c == -1)
			if ok {
				v = a / c
			}
		}
		if !ok {
			return Value{}, sql.Errorf(e.OpAt, "integer overflow in %s", e)
		}
		return Int(v), nil
	}
	a, _ := l.AsFloat()
	c, _ := r.AsFloat()
	var v float64
	switch e.Op {
	case sql.OpAdd:
		v = a + c
	case sql.OpSub:
		v = a - c
	case sql.OpMul:
		v = a * c
	case sql.OpDiv:
		if c == 0 {
			return Value{}, sql.Errorf(e.OpAt, "division by zero")
		}
		v = a / c
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return Value{}, sql.Errorf(e.OpAt, "%s is out of range", e)
	}
	return Float(v), nil
}

// timestampLayouts are the forms of a timestamp string compared with the time
// column. Without a zone the time is UTC; fractions of a second are accepted
// (time.Parse allows them after the seconds) and dropped.
var timestampLayouts = [...]string{
	time.RFC3339,                // 2026-11-29T10:00:00Z, 2026-11-29T10:00:00+01:00
	"2006-01-02T15:04:05",       // 2026-11-29T10:00:00
	"2006-01-02 15:04:05Z07:00", // 2026-11-29 10:00:00Z
	"2006-01-02 15:04:05",       // 2026-11-29 10:00:00
	"2006-01-02T15:04",          // 2026-11-29T10:00
	"2006-01-02 15:04",          // 2026-11-29 10:00
	"2006-01-02",                // 2026-11-29
}

// ParseTimestamp reads a timestamp string as unix seconds.
func ParseTimestamp(s string) (int64, error) {
	s = strings.TrimSpace(s)
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix(), nil
		}
	}
	return 0, errors.New("cannot read " + sql.QuoteString(s) + " as a timestamp; write e.g. '2026-11-29T10:00:00Z', '2026-11-29 10:00:00' or '2026-11-29' (UTC)")
}

// timeRange derives the inclusive range of the time column that f allows, from
// its top-level AND terms on time.
func timeRange(f *Expr) (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	terms := []*Expr{f}
	if f.Op == OpAnd {
		terms = f.Args
	}
	for _, t := range terms {
		if len(t.Args) != 1 || t.Args[0].Op != OpColumn || t.Args[0].Column != block.TimeColumn {
			continue
		}
		l, h := int64(math.MinInt64), int64(math.MaxInt64)
		switch t.Op {
		case OpEq, OpGe, OpGt, OpLe, OpLt:
			l, h = compareRange(t.Op, t.Value)
		case OpIn:
			if len(t.Values) == 0 {
				continue
			}
			l, h = math.MaxInt64, math.MinInt64
			for _, v := range t.Values {
				vl, vh := compareRange(OpEq, v)
				if vl <= vh { // an empty range (1.5) widens nothing
					l, h = min(l, vl), max(h, vh)
				}
			}
		}
		lo, hi = max(lo, l), min(hi, h)
	}
	return lo, hi
}

// compareRange returns the inclusive range of integer times t for which `t op v`
// holds; lo > hi when there are none. Values that are not numbers give the whole
// range.
func compareRange(op Op, v Value) (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	switch v.Kind {
	case KindInt:
		x := v.I
		switch op {
		case OpEq:
			return x, x
		case OpGe:
			lo = x
		case OpGt:
			if x == math.MaxInt64 {
				return math.MaxInt64, math.MinInt64
			}
			lo = x + 1
		case OpLe:
			hi = x
		case OpLt:
			if x == math.MinInt64 {
				return math.MaxInt64, math.MinInt64
			}
			hi = x - 1
		}
	case KindFloat:
		f := v.F
		if math.IsNaN(f) {
			return lo, hi
		}
		switch op {
		case OpEq:
			if f != math.Trunc(f) {
				return math.MaxInt64, math.MinInt64
			}
			return clampInt(f), clampInt(f)
		case OpGe:
			lo = clampInt(math.Ceil(f))
		case OpGt:
			lo = clampInt(math.Floor(f) + 1)
		case OpLe:
			hi = clampInt(math.Floor(f))
		case OpLt:
			hi = clampInt(math.Ceil(f) - 1)
		}
	}
	return lo, hi
}

// clampInt converts a whole float to int64, saturating at the int64 range (which
// only ever widens a time range).
func clampInt(f float64) int64 {
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}
