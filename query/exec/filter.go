package exec

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/reef-db/reef/query/plan"
)

// node is a compiled filter expression with NOT pushed down to the leaves: neg on a
// leaf means "the negated predicate", which in three-valued logic is still UNKNOWN
// (never selected) on NULL.
type node struct {
	kind nodeKind
	neg  bool
	kids []*node // nAnd, nOr
	col  string

	truth bool // nConst: every row (true) or none

	op  plan.Op    // nCmp: = != < <= > >= (already negated)
	lit plan.Value // nCmp

	lo, hi int64 // nIntRange: lo <= col <= hi

	// nIn
	ints    []int64   // integral numeric literals, sorted
	floats  []float64 // numeric literals as floats
	strs    map[string]struct{}
	hasNull bool // a NULL or boolean literal: never equal, so NOT IN is never TRUE

	match func(string) bool // nMatch

	setOp plan.Op  // nHas: OpHas, OpHasAny, OpHasAll
	vals  []string // nHas literals, deduplicated
}

type nodeKind uint8

const (
	nConst nodeKind = iota
	nAnd
	nOr
	nCmp
	nIntRange
	nIn
	nMatch
	nIsNull
	nHas
)

// maxFilterDepth bounds the nesting of a filter, so that no plan can exhaust the
// stack.
const maxFilterDepth = 256

func compileFilter(e *plan.Expr) (*node, error) {
	if e == nil {
		return nil, nil
	}
	return compileNode(e, false, 0)
}

func compileNode(e *plan.Expr, neg bool, depth int) (*node, error) {
	if e == nil {
		return nil, fmt.Errorf("missing expression")
	}
	if depth > maxFilterDepth {
		return nil, fmt.Errorf("nested more than %d levels deep", maxFilterDepth)
	}
	switch e.Op {
	case plan.OpAnd, plan.OpOr:
		if len(e.Args) == 0 {
			return nil, fmt.Errorf("%s without operands", e.Op)
		}
		kind := nAnd
		if (e.Op == plan.OpOr) != neg {
			kind = nOr
		}
		n := &node{kind: kind}
		for _, a := range e.Args {
			k, err := compileNode(a, neg, depth+1)
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, k)
		}
		return n, nil
	case plan.OpNot:
		if len(e.Args) != 1 {
			return nil, fmt.Errorf("not takes one operand, has %d", len(e.Args))
		}
		return compileNode(e.Args[0], !neg, depth+1)
	case plan.OpLit:
		switch e.Value.Kind {
		case plan.KindBool:
			return &node{kind: nConst, truth: e.Value.B != neg}, nil
		case plan.KindNull:
			return &node{kind: nConst}, nil // UNKNOWN either way
		}
		return nil, fmt.Errorf("literal %v is not a condition", e.Value)
	case plan.OpColumn:
		return nil, fmt.Errorf("column %q is not a condition", e.Column)
	}
	col, err := leftColumn(e)
	if err != nil {
		return nil, err
	}
	n := &node{col: col, neg: neg}
	switch e.Op {
	case plan.OpEq, plan.OpNe, plan.OpLt, plan.OpLe, plan.OpGt, plan.OpGe:
		lit, err := literal(e)
		if err != nil {
			return nil, err
		}
		n.kind, n.op, n.lit, n.neg = nCmp, e.Op, lit, false
		if neg {
			n.op = negateOp(e.Op)
		}
		if lit.IsNull() || (lit.Kind == plan.KindFloat && math.IsNaN(lit.F)) {
			return &node{kind: nConst}, nil
		}
	case plan.OpIn:
		n.kind = nIn
		for _, v := range literals(e) {
			switch v.Kind {
			case plan.KindNull, plan.KindBool:
				n.hasNull = true
			case plan.KindInt:
				n.ints = append(n.ints, v.I)
				n.floats = append(n.floats, float64(v.I))
			case plan.KindFloat:
				if i, ok := exactInt(v.F); ok {
					n.ints = append(n.ints, i)
				}
				n.floats = append(n.floats, v.F)
			case plan.KindString:
				if n.strs == nil {
					n.strs = make(map[string]struct{})
				}
				n.strs[v.S] = struct{}{}
			}
		}
		slices.Sort(n.ints)
		n.ints = slices.Compact(n.ints)
		// x NOT IN (…, NULL, …) is never TRUE: x = NULL is UNKNOWN (so is x = true).
		if neg && n.hasNull {
			return &node{kind: nConst}, nil
		}
	case plan.OpLike, plan.OpRegex:
		lit, err := literal(e)
		if err != nil {
			return nil, err
		}
		if lit.Kind != plan.KindString {
			return nil, fmt.Errorf("%s needs a string pattern, got %v", e.Op, lit)
		}
		n.kind = nMatch
		if e.Op == plan.OpLike {
			n.match = likeMatcher(lit.S)
		} else {
			re, err := regexp.Compile(lit.S)
			if err != nil {
				return nil, fmt.Errorf("cannot compile regular expression %q: %w", lit.S, err)
			}
			n.match = re.MatchString
		}
	case plan.OpIsNull:
		n.kind = nIsNull
	case plan.OpHas, plan.OpHasAny, plan.OpHasAll:
		n.kind, n.setOp = nHas, e.Op
		vals := literals(e)
		if e.Op == plan.OpHas {
			lit, err := literal(e)
			if err != nil {
				return nil, err
			}
			vals = []plan.Value{lit}
		}
		for _, v := range vals {
			if v.Kind != plan.KindString {
				return nil, fmt.Errorf("%s needs string values, got %v", e.Op, v)
			}
			n.vals = append(n.vals, v.S)
		}
		slices.Sort(n.vals)
		n.vals = slices.Compact(n.vals)
	default:
		return nil, fmt.Errorf("unknown operator %q", e.Op)
	}
	return n, nil
}

// leftColumn returns the column a predicate applies to (Args[0]).
func leftColumn(e *plan.Expr) (string, error) {
	if len(e.Args) == 0 || e.Args[0] == nil || e.Args[0].Op != plan.OpColumn || e.Args[0].Column == "" {
		return "", fmt.Errorf("%s needs a column as its first operand", e.Op)
	}
	return e.Args[0].Column, nil
}

// literal returns a predicate's literal: Args[1] when it is a literal, else Value.
func literal(e *plan.Expr) (plan.Value, error) {
	if len(e.Args) >= 2 {
		if e.Args[1] == nil || e.Args[1].Op != plan.OpLit {
			return plan.Value{}, fmt.Errorf("%s needs a literal as its second operand", e.Op)
		}
		return e.Args[1].Value, nil
	}
	return e.Value, nil
}

// literals returns a list predicate's literals: Values, or Args[1:] literals.
func literals(e *plan.Expr) []plan.Value {
	if len(e.Values) > 0 || len(e.Args) < 2 {
		return e.Values
	}
	out := make([]plan.Value, 0, len(e.Args)-1)
	for _, a := range e.Args[1:] {
		if a != nil && a.Op == plan.OpLit {
			out = append(out, a.Value)
		}
	}
	return out
}

func negateOp(op plan.Op) plan.Op {
	switch op {
	case plan.OpEq:
		return plan.OpNe
	case plan.OpNe:
		return plan.OpEq
	case plan.OpLt:
		return plan.OpGe
	case plan.OpLe:
		return plan.OpGt
	case plan.OpGt:
		return plan.OpLe
	}
	return plan.OpLt // OpGe
}

// likeMatcher compiles a LIKE pattern (% any run, _ any one character) into a
// matcher, with fast paths for the common shapes.
func likeMatcher(pat string) func(string) bool {
	if !strings.ContainsAny(pat, "_") {
		parts := strings.Split(pat, "%")
		switch {
		case len(parts) == 1:
			return func(s string) bool { return s == pat }
		case len(parts) == 2 && parts[1] == "":
			return func(s string) bool { return strings.HasPrefix(s, parts[0]) }
		case len(parts) == 2 && parts[0] == "":
			return func(s string) bool { return strings.HasSuffix(s, parts[1]) }
		case len(parts) == 3 && parts[0] == "" && parts[2] == "":
			return func(s string) bool { return strings.Contains(s, parts[1]) }
		}
	}
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	for _, r := range pat {
		switch r {
		case '%':
			b.WriteString(`.*`)
		case '_':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`\z`)
	return regexp.MustCompile(b.String()).MatchString
}

// exactInt returns f as an int64 when f is integral and within int64's range.
func exactInt(f float64) (int64, bool) {
	if f >= -(1<<63) && f < 1<<63 {
		if i := int64(f); float64(i) == f {
			return i, true
		}
	}
	return 0, false
}

// intInterval turns `col op lit` over an integer column into "col in [lo, hi]"
// (inside) or "col outside [lo, hi]" (!inside). ok is false when no integer can
// satisfy it for lack of a numeric literal.
func intInterval(op plan.Op, lit plan.Value) (lo, hi int64, inside, ok bool) {
	var f float64
	switch lit.Kind {
	case plan.KindInt:
		l := lit.I
		switch op {
		case plan.OpEq:
			return l, l, true, true
		case plan.OpNe:
			return l, l, false, true
		case plan.OpLt:
			if l == math.MinInt64 {
				return 1, 0, true, true
			}
			return math.MinInt64, l - 1, true, true
		case plan.OpLe:
			return math.MinInt64, l, true, true
		case plan.OpGt:
			if l == math.MaxInt64 {
				return 1, 0, true, true
			}
			return l + 1, math.MaxInt64, true, true
		case plan.OpGe:
			return l, math.MaxInt64, true, true
		}
		return 0, 0, false, false
	case plan.KindFloat:
		f = lit.F
	default:
		return 0, 0, false, false
	}
	if math.IsNaN(f) {
		return 0, 0, false, false
	}
	switch op {
	case plan.OpEq, plan.OpNe:
		i, exact := exactInt(f)
		if !exact {
			return 1, 0, op == plan.OpEq, true // empty interval
		}
		return i, i, op == plan.OpEq, true
	case plan.OpLt: // x < f  <=>  x <= ceil(f)-1
		c := math.Ceil(f)
		if c <= -(1 << 63) {
			return 1, 0, true, true
		}
		return math.MinInt64, clampInt(c) - 1, true, true
	case plan.OpLe:
		fl := math.Floor(f)
		if fl < -(1 << 63) {
			return 1, 0, true, true
		}
		return math.MinInt64, clampInt(fl), true, true
	case plan.OpGt: // x > f  <=>  x >= floor(f)+1
		fl := math.Floor(f)
		if fl >= 1<<63-1 {
			return 1, 0, true, true
		}
		return clampInt(fl) + 1, math.MaxInt64, true, true
	case plan.OpGe:
		c := math.Ceil(f)
		if c >= 1<<63 {
			return 1, 0, true, true
		}
		return clampInt(c), math.MaxInt64, true, true
	}
	return 0, 0, false, false
}

// clampInt converts an integral float to int64, saturating.
func clampInt(f float64) int64 {
	switch {
	case f >= 1<<63:
		return math.MaxInt64
	case f < -(1 << 63):
		return math.MinInt64
	}
	return int64(f)
}
