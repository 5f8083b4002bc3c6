package plan

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/reef-db/reef/block"
)

// maxExprDepth bounds the nesting of a filter that Check accepts.
const maxExprDepth = 1000

// Check reports whether p is well formed: indexes in range, known functions and
// operators, filter expressions in the documented shape, regular expressions that
// compile. It needs no schema, so a leaf runs it on every plan it receives before
// executing it (a leaf may not have seen every column of the table yet; absent
// columns read as nulls there). Plans from Build always pass.
func (p *Plan) Check() error {
	if p.Table == "" {
		return errors.New("invalid plan: no table")
	}
	for _, k := range p.GroupBy {
		if k.Column == "" {
			return errors.New("invalid plan: group key without a column")
		}
		if k.Bucket < 0 {
			return fmt.Errorf("invalid plan: negative time bucket %d", k.Bucket)
		}
	}
	for _, a := range p.Aggs {
		if err := a.check(); err != nil {
			return fmt.Errorf("invalid plan: %w", err)
		}
	}
	if p.Sample {
		if err := p.checkSample(); err != nil {
			return fmt.Errorf("invalid plan: %w", err)
		}
	} else if err := p.checkAggregate(); err != nil {
		return fmt.Errorf("invalid plan: %w", err)
	}
	if p.Filter != nil {
		if err := p.Filter.check(0); err != nil {
			return fmt.Errorf("invalid plan filter: %w", err)
		}
	}
	return nil
}

func (a Agg) check() error {
	switch a.Func {
	case AggCount:
		return nil
	case AggSum, AggAvg, AggMin, AggMax, AggCountDistinct:
	case AggPercentile:
		if !(a.Param >= 0 && a.Param <= 1) {
			return fmt.Errorf("percentile %v is not between 0 and 1", a.Param)
		}
	default:
		return fmt.Errorf("unknown aggregate function %q", a.Func)
	}
	if a.Column == "" {
		return fmt.Errorf("aggregate %s without a column", a.Func)
	}
	return nil
}

func (p *Plan) checkSample() error {
	if len(p.Aggs) > 0 || len(p.GroupBy) > 0 {
		return errors.New("sample plan with aggregates or group keys")
	}
	if len(p.Columns) == 0 && len(p.Outputs) > 0 {
		return errors.New("sample plan with outputs but no columns")
	}
	for _, c := range p.Columns {
		if c == "" {
			return errors.New("sample plan with an empty column name")
		}
	}
	for _, o := range p.Outputs {
		if o.Kind != OutColumn || o.Index < 0 || o.Index >= len(p.Columns) {
			return fmt.Errorf("sample plan output %q is not one of its columns", o.Name)
		}
	}
	for _, o := range p.OrderBy {
		if o.Column == "" {
			return errors.New("sample plan ORDER BY without a column")
		}
		if len(p.Columns) > 0 && !slices.Contains(p.Columns, o.Column) {
			return fmt.Errorf("sample plan orders by %q, which it does not fetch", o.Column)
		}
		if o.Output < -1 || o.Output >= len(p.Outputs) {
			return fmt.Errorf("sample plan ORDER BY output %d out of range", o.Output)
		}
		if o.Output >= 0 && p.Columns[p.Outputs[o.Output].Index] != o.Column {
			return fmt.Errorf("sample plan ORDER BY output %d is not column %q", o.Output, o.Column)
		}
	}
	return nil
}

func (p *Plan) checkAggregate() error {
	if len(p.Columns) > 0 {
		return errors.New("aggregate plan with sample columns")
	}
	for _, o := range p.Outputs {
		n := 0
		switch o.Kind {
		case OutGroup:
			n = len(p.GroupBy)
		case OutAgg:
			n = len(p.Aggs)
		default:
			return fmt.Errorf("output %q of unknown kind %q", o.Name, o.Kind)
		}
		if o.Index < 0 || o.Index >= n {
			return fmt.Errorf("output %q index %d out of range", o.Name, o.Index)
		}
	}
	for _, o := range p.OrderBy {
		if o.Output < 0 || o.Output >= len(p.Outputs) {
			return fmt.Errorf("ORDER BY output %d out of range", o.Output)
		}
	}
	return nil
}

// check checks the shape of a filter expression (see Expr).
func (e *Expr) check(depth int) error {
	if e == nil {
		return errors.New("missing expression")
	}
	if depth > maxExprDepth {
		return fmt.Errorf("nested more than %d levels deep", maxExprDepth)
	}
	switch e.Op {
	case OpAnd, OpOr:
		if len(e.Args) == 0 {
			return fmt.Errorf("%s without arguments", e.Op)
		}
		for _, a := range e.Args {
			if err := a.check(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case OpNot:
		if len(e.Args) != 1 {
			return fmt.Errorf("not with %d arguments", len(e.Args))
		}
		return e.Args[0].check(depth + 1)
	case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe, OpIn, OpLike, OpRegex, OpIsNull, OpHas, OpHasAny, OpHasAll:
	default:
		return fmt.Errorf("unknown operator %q", e.Op)
	}
	if len(e.Args) != 1 || e.Args[0] == nil || e.Args[0].Op != OpColumn || e.Args[0].Column == "" {
		return fmt.Errorf("%s needs one column argument", e.Op)
	}
	switch e.Op {
	case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe:
		if e.Value.IsNull() {
			return fmt.Errorf("%s %s NULL", e.Args[0].Column, e.Op)
		}
	case OpIn:
		for _, v := range e.Values {
			if v.IsNull() {
				return fmt.Errorf("%s IN with NULL", e.Args[0].Column)
			}
		}
	case OpLike, OpHas:
		if e.Value.Kind != KindString {
			return fmt.Errorf("%s needs a string, not %s", e.Op, sqlValue(e.Value))
		}
	case OpRegex:
		if e.Value.Kind != KindString {
			return fmt.Errorf("regex needs a string, not %s", sqlValue(e.Value))
		}
		if _, err := regexp.Compile(e.Value.S); err != nil {
			return fmt.Errorf("cannot compile regular expression %q: %s", e.Value.S, regexpError(err))
		}
	case OpHasAny, OpHasAll:
		if len(e.Values) == 0 {
			return fmt.Errorf("%s without values", e.Op)
		}
		for _, v := range e.Values {
			if v.Kind != KindString {
				return fmt.Errorf("%s needs strings, not %s", e.Op, sqlValue(v))
			}
		}
	}
	return nil
}

// Validate checks p against the schema of its table (column name → type): every
// column must exist (time always does) and have a type its use allows. It runs
// Check first. Whether the table exists is the caller's question.
func (p *Plan) Validate(schema map[string]block.Type) error {
	if err := p.Check(); err != nil {
		return err
	}
	v := validator{table: p.Table, schema: schema}
	for _, c := range p.Columns {
		if _, err := v.typeOf(c); err != nil {
			return err
		}
	}
	for _, k := range p.GroupBy {
		t, err := v.typeOf(k.Column)
		if err != nil {
			return err
		}
		switch {
		case t == block.TypeSet:
			return fmt.Errorf("cannot group by column %q of type set", k.Column)
		case k.Bucket > 0 && t != block.TypeInt:
			return fmt.Errorf("cannot bucket column %q of type %s by time", k.Column, t)
		}
	}
	for _, a := range p.Aggs {
		if err := v.agg(a); err != nil {
			return err
		}
	}
	if p.Filter != nil {
		if err := v.expr(p.Filter); err != nil {
			return err
		}
	}
	for _, o := range p.OrderBy {
		if o.Column == "" {
			continue
		}
		t, err := v.typeOf(o.Column)
		if err != nil {
			return err
		}
		if t == block.TypeSet {
			return fmt.Errorf("cannot order by column %q of type set", o.Column)
		}
	}
	return nil
}

type validator struct {
	table  string
	schema map[string]block.Type
}

func (v *validator) typeOf(col string) (block.Type, error) {
	if col == block.TimeColumn {
		return block.TypeInt, nil
	}
	if t, ok := v.schema[col]; ok {
		return t, nil
	}
	msg := fmt.Sprintf("unknown column %q in table %s", col, v.table)
	if s := v.suggest(col); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return block.TypeInvalid, errors.New(msg)
}

// suggest returns the one column whose name is closest to col, within two edits,
// or "" when there is none or more than one.
func (v *validator) suggest(col string) string {
	const far = 3
	best, bestDist, tie := "", far, false
	consider := func(name string) {
		d := editDistance(strings.ToLower(col), strings.ToLower(name), far)
		switch {
		case d >= far:
		case d < bestDist:
			best, bestDist, tie = name, d, false
		case d == bestDist:
			tie = true
		}
	}
	consider(block.TimeColumn)
	for name := range v.schema {
		if name != block.TimeColumn {
			consider(name)
		}
	}
	if tie {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, or limit when it is at
// least limit (names much longer than each other are not compared at all).
func editDistance(a, b string, limit int) int {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) >= limit || len(b) > 64 {
		return limit
	}
	var rowBuf [65]int
	row := rowBuf[:len(a)+1]
	for i := range row {
		row[i] = i
	}
	for j := 1; j <= len(b); j++ {
		prev := row[0]
		row[0] = j
		rowMin := row[0]
		for i := 1; i <= len(a); i++ {
			cur := row[i]
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			row[i] = min(row[i]+1, row[i-1]+1, prev+cost)
			prev = cur
			rowMin = min(rowMin, row[i])
		}
		if rowMin >= limit {
			return limit
		}
	}
	return min(row[len(a)], limit)
}

var aggVerb = map[AggFunc]string{
	AggSum:           "sum",
	AggAvg:           "average",
	AggPercentile:    "compute a percentile of",
	AggMin:           "compute min of",
	AggMax:           "compute max of",
	AggCountDistinct: "count distinct values of",
}

func (v *validator) agg(a Agg) error {
	if a.Func == AggCount && a.Column == "" {
		return nil
	}
	t, err := v.typeOf(a.Column)
	if err != nil {
		return err
	}
	ok := true
	switch a.Func {
	case AggSum, AggAvg, AggPercentile, AggMin, AggMax:
		ok = t == block.TypeInt || t == block.TypeFloat
	case AggCountDistinct:
		ok = t != block.TypeSet
	}
	if !ok {
		return fmt.Errorf("cannot %s column %q of type %s", aggVerb[a.Func], a.Column, t)
	}
	return nil
}

var setFuncName = map[Op]string{OpHas: "has", OpHasAny: "has_any", OpHasAll: "has_all"}

func (v *validator) expr(e *Expr) error {
	switch e.Op {
	case OpAnd, OpOr, OpNot:
		for _, a := range e.Args {
			if err := v.expr(a); err != nil {
				return err
			}
		}
		return nil
	}
	col := e.Args[0].Column
	t, err := v.typeOf(col)
	if err != nil {
		return err
	}
	switch e.Op {
	case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe:
		return compatible(col, t, e.Value)
	case OpIn:
		for _, x := range e.Values {
			if err := compatible(col, t, x); err != nil {
				return err
			}
		}
	case OpLike, OpRegex:
		if t != block.TypeString {
			what := "LIKE"
			if e.Op == OpRegex {
				what = "a regular expression"
			}
			return fmt.Errorf("cannot match column %q of type %s with %s: it needs a string column", col, t, what)
		}
	case OpHas, OpHasAny, OpHasAll:
		if t != block.TypeSet {
			return fmt.Errorf("cannot use %s() on column %q of type %s: it needs a set column", setFuncName[e.Op], col, t)
		}
	}
	return nil
}

// compatible reports whether a column of type t can be compared with x.
func compatible(col string, t block.Type, x Value) error {
	ok := false
	switch t {
	case block.TypeInt, block.TypeFloat:
		ok = x.Kind == KindInt || x.Kind == KindFloat
	case block.TypeString:
		ok = x.Kind == KindString
	case block.TypeSet:
		return fmt.Errorf("cannot compare column %q of type set with %s; use has(%s, …)", col, sqlValue(x), col)
	}
	if !ok {
		return fmt.Errorf("cannot compare column %q of type %s with %s", col, t, sqlValue(x))
	}
	return nil
}

// UsedColumns returns, sorted and once each, the columns the plan reads: in the
// filter, the group keys, the aggregates, the sample columns and the sort columns.
// A sample plan with no Columns (SELECT *) reads every column besides these, and
// weighted aggregates also read sample_rate when the table has it; neither is
// listed.
func (p *Plan) UsedColumns() []string {
	var cols []string
	add := func(c string) {
		if c != "" {
			cols = append(cols, c)
		}
	}
	var walk func(e *Expr, depth int)
	walk = func(e *Expr, depth int) {
		if e == nil || depth > maxExprDepth {
			return
		}
		if e.Op == OpColumn {
			add(e.Column)
		}
		for _, a := range e.Args {
			walk(a, depth+1)
		}
	}
	walk(p.Filter, 0)
	for _, k := range p.GroupBy {
		add(k.Column)
	}
	for _, a := range p.Aggs {
		add(a.Column)
	}
	for _, c := range p.Columns {
		add(c)
	}
	for _, o := range p.OrderBy {
		add(o.Column)
	}
	slices.Sort(cols)
	return slices.Compact(cols)
}
