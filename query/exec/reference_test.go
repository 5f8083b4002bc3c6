package exec

import (
	"math"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"testing"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/plan"
)

// A straightforward row-at-a-time evaluator over block.Column.Value, written
// independently of the kernels, to check them against.

type tri int8

const (
	tFalse tri = iota
	tTrue
	tUnknown
)

func triOf(b bool) tri {
	if b {
		return tTrue
	}
	return tFalse
}

type refRow map[string]any

func rowOf(b *block.Block, i int) refRow {
	r := refRow{}
	for ci := range b.Columns {
		c := &b.Columns[ci]
		r[c.Name] = c.Value(i)
	}
	return r
}

func refLit(e *plan.Expr) plan.Value {
	if len(e.Args) >= 2 {
		return e.Args[1].Value
	}
	return e.Value
}

func refEval(t *testing.T, e *plan.Expr, r refRow) tri {
	t.Helper()
	switch e.Op {
	case plan.OpAnd:
		out := tTrue
		for _, a := range e.Args {
			switch refEval(t, a, r) {
			case tFalse:
				return tFalse
			case tUnknown:
				out = tUnknown
			}
		}
		return out
	case plan.OpOr:
		out := tFalse
		for _, a := range e.Args {
			switch refEval(t, a, r) {
			case tTrue:
				return tTrue
			case tUnknown:
				out = tUnknown
			}
		}
		return out
	case plan.OpNot:
		switch refEval(t, e.Args[0], r) {
		case tTrue:
			return tFalse
		case tFalse:
			return tTrue
		}
		return tUnknown
	case plan.OpLit:
		if e.Value.Kind == plan.KindBool {
			return triOf(e.Value.B)
		}
		return tUnknown
	}
	x := r[e.Args[0].Column]
	switch e.Op {
	case plan.OpEq, plan.OpNe, plan.OpLt, plan.OpLe, plan.OpGt, plan.OpGe:
		return refCmp(x, e.Op, refLit(e))
	case plan.OpIn:
		if x == nil {
			return tUnknown
		}
		out := tFalse
		for _, v := range e.Values {
			switch refCmp(x, plan.OpEq, v) {
			case tTrue:
				return tTrue
			case tUnknown:
				out = tUnknown
			}
		}
		return out
	case plan.OpLike, plan.OpRegex:
		s, ok := x.(string)
		if !ok {
			return tUnknown
		}
		if e.Op == plan.OpLike {
			return triOf(refLike(s, e.Value.S))
		}
		return triOf(regexp.MustCompile(e.Value.S).MatchString(s))
	case plan.OpIsNull:
		return triOf(x == nil)
	case plan.OpHas, plan.OpHasAny, plan.OpHasAll:
		set, ok := x.([]string)
		if !ok {
			return tUnknown
		}
		vals := e.Values
		if e.Op == plan.OpHas {
			vals = []plan.Value{e.Value}
		}
		n := 0
		for _, v := range vals {
			if slices.Contains(set, v.S) {
				n++
			}
		}
		if e.Op == plan.OpHasAll {
			return triOf(n == len(vals))
		}
		return triOf(n > 0)
	}
	t.Fatalf("reference: unknown op %q", e.Op)
	return tUnknown
}

// refLike matches a LIKE pattern by recursion.
func refLike(s, p string) bool {
	if p == "" {
		return s == ""
	}
	switch p[0] {
	case '%':
		for i := 0; i <= len(s); i++ {
			if refLike(s[i:], p[1:]) {
				return true
			}
		}
		return false
	case '_':
		if s == "" {
			return false
		}
		_, n := utf8DecodeRune(s)
		return refLike(s[n:], p[1:])
	}
	return s != "" && s[0] == p[0] && refLike(s[1:], p[1:])
}

func utf8DecodeRune(s string) (rune, int) {
	for i, r := range s {
		if i == 0 {
			return r, len(string(r))
		}
	}
	return 0, 1
}

func refCmp(x any, op plan.Op, lit plan.Value) tri {
	if x == nil || lit.IsNull() {
		return tUnknown
	}
	var c int
	switch x := x.(type) {
	case int64:
		switch lit.Kind {
		case plan.KindInt:
			c = cmpI(x, lit.I)
		case plan.KindFloat:
			if math.IsNaN(lit.F) {
				return tUnknown
			}
			c = cmpIntFloat(x, lit.F)
		default:
			return tUnknown
		}
	case float64:
		f, ok := lit.AsFloat()
		if !ok {
			return tUnknown
		}
		switch {
		case x < f:
			c = -1
		case x > f:
			c = 1
		}
	case string:
		if lit.Kind != plan.KindString {
			return tUnknown
		}
		switch {
		case x < lit.S:
			c = -1
		case x > lit.S:
			c = 1
		}
	default:
		return tUnknown
	}
	return triOf(cmpOp(op, c))
}

func cmpI(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cmpIntFloat compares an int with a float exactly.
func cmpIntFloat(x int64, f float64) int {
	return new(big.Float).SetInt64(x).Cmp(big.NewFloat(f))
}

// refGroup is one group of the reference aggregation.
type refGroup struct {
	key  []plan.Value
	accs []refAcc
}

type refAcc struct {
	n        int64
	isum     big.Int
	fsum     float64
	abs      float64
	anyFloat bool
	seen     bool
	wsum     int64
	best     plan.Value
	vals     []wv
	distinct map[string]bool
}

type wv struct {
	v float64
	w int64
}

func refWeight(r refRow) int64 {
	switch x := r[block.SampleRateColumn].(type) {
	case int64:
		return agg.Weight(x)
	case float64:
		return agg.Weight(int64(math.Floor(x)))
	}
	return 1
}

func toPlanValue(x any) plan.Value {
	switch x := x.(type) {
	case int64:
		return plan.Int(x)
	case float64:
		return plan.Float(x)
	case string:
		return plan.String(x)
	}
	return plan.Null()
}

type refResult struct {
	groups               []*refGroup
	rowsInRange, matched int64
}

func reference(t *testing.T, p *plan.Plan, blocks []*block.Block) refResult {
	t.Helper()
	tmin, tmax := p.TimeMin, p.TimeMax
	if tmin == 0 {
		tmin = math.MinInt64
	}
	if tmax == 0 {
		tmax = math.MaxInt64
	}
	var res refResult
	byKey := map[string]*refGroup{}
	for _, b := range blocks {
		for i := 0; i < b.Rows; i++ {
			r := rowOf(b, i)
			tm := r["time"].(int64)
			if tm < tmin || tm > tmax {
				continue
			}
			res.rowsInRange++
			if p.Filter != nil && refEval(t, p.Filter, r) != tTrue {
				continue
			}
			res.matched++
			key := make([]plan.Value, len(p.GroupBy))
			for j, gk := range p.GroupBy {
				v := toPlanValue(r[gk.Column])
				if gk.Bucket > 0 {
					switch v.Kind {
					case plan.KindInt:
						v = plan.Int(floorDiv(v.I, gk.Bucket) * gk.Bucket)
					case plan.KindFloat:
						v = plan.Float(math.Floor(v.F/float64(gk.Bucket)) * float64(gk.Bucket))
					}
				}
				key[j] = v
			}
			k := string(agg.AppendGroupKey(nil, key))
			g := byKey[k]
			if g == nil {
				g = &refGroup{key: key, accs: make([]refAcc, len(p.Aggs))}
				byKey[k] = g
				res.groups = append(res.groups, g)
			}
			w := refWeight(r)
			for j, a := range p.Aggs {
				refAdd(&g.accs[j], a, r, w)
			}
		}
	}
	if len(p.GroupBy) == 0 && len(res.groups) == 0 {
		res.groups = append(res.groups, &refGroup{accs: make([]refAcc, len(p.Aggs))})
	}
	sort.SliceStable(res.groups, func(i, j int) bool {
		for k := range res.groups[i].key {
			if c := plan.Compare(res.groups[i].key[k], res.groups[j].key[k]); c != 0 {
				return c < 0
			}
		}
		return false
	})
	return res
}

func refAdd(a *refAcc, ag plan.Agg, r refRow, w int64) {
	if ag.Func == plan.AggCount && ag.Column == "" {
		a.n += w
		return
	}
	x := r[ag.Column]
	if x == nil {
		return
	}
	switch ag.Func {
	case plan.AggCount:
		a.n += w
	case plan.AggSum, plan.AggAvg:
		a.seen = true
		a.wsum += w
		switch x := x.(type) {
		case int64:
			var p big.Int
			p.Mul(big.NewInt(x), big.NewInt(w))
			a.isum.Add(&a.isum, &p)
			a.abs += math.Abs(float64(x) * float64(w))
		case float64:
			a.fsum += x * float64(w)
			a.abs += math.Abs(x * float64(w))
			a.anyFloat = true
		}
	case plan.AggMin, plan.AggMax:
		v := toPlanValue(x)
		if a.best.IsNull() || (ag.Func == plan.AggMin && plan.Compare(v, a.best) < 0) || (ag.Func == plan.AggMax && plan.Compare(v, a.best) > 0) {
			a.best = v
		}
	case plan.AggPercentile:
		v, _ := toPlanValue(x).AsFloat()
		a.vals = append(a.vals, wv{v, w})
	case plan.AggCountDistinct:
		if a.distinct == nil {
			a.distinct = map[string]bool{}
		}
		if set, ok := x.([]string); ok {
			for _, s := range set {
				a.distinct[string(agg.AppendGroupKey(nil, []plan.Value{plan.String(s)}))] = true
			}
			return
		}
		a.distinct[string(agg.AppendGroupKey(nil, []plan.Value{toPlanValue(x)}))] = true
	}
}

// checkAgg compares one result cell with the reference accumulator.
func checkAgg(t *testing.T, what string, ag plan.Agg, a *refAcc, got plan.Value) {
	t.Helper()
	switch ag.Func {
	case plan.AggCount:
		if got != plan.Int(a.n) {
			t.Errorf("%s: got %v, want %d", what, got, a.n)
		}
	case plan.AggSum:
		if !a.seen {
			if !got.IsNull() {
				t.Errorf("%s: got %v, want NULL", what, got)
			}
			return
		}
		exactF, _ := new(big.Float).SetInt(&a.isum).Float64()
		exactF += a.fsum
		if got.Kind == plan.KindInt {
			if a.anyFloat || !a.isum.IsInt64() || a.isum.Int64() != got.I {
				t.Errorf("%s: got int %v, want %v (float part %v)", what, got, a.isum.String(), a.fsum)
			}
			return
		}
		if got.Kind != plan.KindFloat || !near(got.F, exactF, a.abs, 1e-9) {
			t.Errorf("%s: got %v, want ≈%v", what, got, exactF)
		}
	case plan.AggAvg:
		if a.wsum == 0 {
			if !got.IsNull() {
				t.Errorf("%s: got %v, want NULL", what, got)
			}
			return
		}
		exactF, _ := new(big.Float).SetInt(&a.isum).Float64()
		want := (exactF + a.fsum) / float64(a.wsum)
		if got.Kind != plan.KindFloat || !near(got.F, want, a.abs/float64(a.wsum), 1e-9) {
			t.Errorf("%s: got %v, want ≈%v", what, got, want)
		}
	case plan.AggMin, plan.AggMax:
		if plan.Compare(got, a.best) != 0 || got.IsNull() != a.best.IsNull() {
			t.Errorf("%s: got %v, want %v", what, got, a.best)
		}
	case plan.AggPercentile:
		if len(a.vals) == 0 {
			if !got.IsNull() {
				t.Errorf("%s: got %v, want NULL", what, got)
			}
			return
		}
		lo, hi := exactQuantile(a.vals, ag.Param)
		if got.Kind != plan.KindFloat || got.F < lo-0.0101*math.Abs(lo)-1e-12 || got.F > hi+0.0101*math.Abs(hi)+1e-12 {
			t.Errorf("%s: got %v, want [%v, %v] ±1%%", what, got, lo, hi)
		}
	case plan.AggCountDistinct:
		want := float64(len(a.distinct))
		if got.Kind != plan.KindInt || math.Abs(float64(got.I)-want) > 0.02*want+1 {
			t.Errorf("%s: got %v, want ≈%v", what, got, want)
		}
	}
}

// exactQuantile returns the weighted values at ranks floor(q*(W-1)) and
// ceil(q*(W-1)): DDSketch answers within its accuracy of one of them (it rounds
// ranks down among positive values and up among negative ones).
func exactQuantile(vals []wv, q float64) (lo, hi float64) {
	s := slices.Clone(vals)
	slices.SortFunc(s, func(a, b wv) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	var total float64
	for _, x := range s {
		total += float64(x.w)
	}
	rank := q * (total - 1)
	at := func(pos float64) float64 {
		var cum float64
		for _, x := range s {
			cum += float64(x.w)
			if cum > pos {
				return x.v
			}
		}
		return s[len(s)-1].v
	}
	return at(math.Floor(rank)), at(math.Ceil(rank))
}

func near(got, want, scale, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Max(scale, 1e-300)+1e-12
}
