package exec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/plan"
)

// Random blocks and plans for the reference tests.
//
// Columns (each block has a random subset of the optional ones):
//
//	time         int, always; a few distinct seconds, also negative
//	sample_rate  int 0..4 with NULLs (optional)
//	i            small int (narrowed to uint8), NULLs
//	w            int spanning > 16 bits (uint32) or huge values (int64), NULLs
//	f            float, NULLs, negatives, zero
//	s            string from a small alphabet, NULLs
//	tags         set of strings, NULL and empty sets
//	m            int in some blocks, float in others (type differs per block)
//	opt          string, only in some blocks
//	k            string from the alphabet, never NULL
//	u            int, never NULL: 0..40 (uint8) in some blocks, 0..5000 (uint16) in others
//	g            float, never NULL
//	h            int near ±2^62, never NULL (narrow raw values, huge base: sums overflow)
//	hs           string of up to 2000 values ("v0000"…), so that most blocks have
//	             16-bit dictionary codes; NULLs in some blocks
var strAlphabet = []string{"a", "b", "ab", "abc", "ba", "x%y", "", "svc-1", "svc-2", "zz"}

type genConfig struct {
	blocks, maxRows int
}

func genBlocks(t testing.TB, rng *rand.Rand, cfg genConfig) []*block.Block {
	t.Helper()
	var out []*block.Block
	for bi := 0; bi < cfg.blocks; bi++ {
		out = append(out, genBlock(t, rng, uint64(bi+1), 1+rng.IntN(cfg.maxRows)))
	}
	return out
}

func genBlock(t testing.TB, rng *rand.Rand, id uint64, rows int) *block.Block {
	t.Helper()
	b := block.NewBuilder("t")
	hasRate := rng.IntN(2) == 0
	hasOpt := rng.IntN(2) == 0
	mIsFloat := rng.IntN(2) == 0
	wide := rng.IntN(4) // w's range: 8, 16, 32 or 64 bits
	uSpan := []int{41, 5001}[rng.IntN(2)]
	hBase := []int64{1 << 62, -(1 << 62), 0}[rng.IntN(3)]
	hsCard, hsNulls := []int{2000, 40}[rng.IntN(2)], rng.IntN(2)*10
	t0 := int64(rng.IntN(200) - 100)
	col := func(name string, typ block.Type) int {
		i, tp := b.ColumnIndex(name)
		if i >= 0 {
			if tp != typ {
				t.Fatalf("column %s type %v, want %v", name, tp, typ)
			}
			return i
		}
		i, err := b.AddColumn(name, typ)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	null := func(p int) bool { return rng.IntN(100) < p }
	for r := 0; r < rows; r++ {
		b.BeginRow()
		b.SetInt(col("time", block.TypeInt), t0+int64(rng.IntN(40)))
		if hasRate && !null(20) {
			b.SetInt(col("sample_rate", block.TypeInt), int64(rng.IntN(5)))
		}
		if !null(15) {
			b.SetInt(col("i", block.TypeInt), int64(rng.IntN(20)-5))
		}
		if !null(15) {
			var v int64
			switch wide {
			case 0:
				v = int64(rng.IntN(200)) + 70000
			case 1:
				v = int64(rng.IntN(50000)) - 1000
			case 2:
				v = int64(rng.IntN(200000)) - 1000
			default:
				v = rng.Int64N(1<<62) - 1<<61
				if rng.IntN(10) == 0 {
					v = math.MaxInt64 - rng.Int64N(10)
				}
			}
			b.SetInt(col("w", block.TypeInt), v)
		}
		if !null(15) {
			f := math.Round(rng.NormFloat64()*1000) / 8
			if rng.IntN(10) == 0 {
				f = 0
			}
			b.SetFloat(col("f", block.TypeFloat), f)
		}
		if !null(15) {
			b.SetString(col("s", block.TypeString), []byte(strAlphabet[rng.IntN(len(strAlphabet))]))
		}
		if !null(15) {
			ti := col("tags", block.TypeSet)
			n := rng.IntN(4)
			for k := 0; k < n; k++ {
				b.AppendSetElem(ti, []byte(strAlphabet[rng.IntN(5)]))
			}
			b.MarkSet(ti)
		}
		if !null(20) {
			if mIsFloat {
				b.SetFloat(col("m", block.TypeFloat), float64(rng.IntN(10))+0.5*float64(rng.IntN(2)))
			} else {
				b.SetInt(col("m", block.TypeInt), int64(rng.IntN(10)))
			}
		}
		if hasOpt && !null(30) {
			b.SetString(col("opt", block.TypeString), []byte(strAlphabet[rng.IntN(3)]))
		}
		b.SetString(col("k", block.TypeString), []byte(strAlphabet[rng.IntN(len(strAlphabet))]))
		b.SetInt(col("u", block.TypeInt), int64(rng.IntN(uSpan)))
		b.SetFloat(col("g", block.TypeFloat), math.Round(rng.NormFloat64()*100)/4)
		b.SetInt(col("h", block.TypeInt), hBase+int64(rng.IntN(200)))
		if !null(hsNulls) {
			b.SetString(col("hs", block.TypeString), []byte(fmt.Sprintf("v%04d", rng.IntN(hsCard))))
		}
		b.EndRow()
	}
	blk, err := b.Build(id)
	if err != nil {
		t.Fatal(err)
	}
	return blk
}

var genColumns = []string{"time", "sample_rate", "i", "w", "f", "s", "tags", "m", "opt", "nope", "k", "u", "g", "h", "hs"}

// genLiteral returns a literal fitting column c most of the time.
func genLiteral(rng *rand.Rand, c string) plan.Value {
	switch rng.IntN(12) {
	case 0:
		return plan.Null()
	case 1:
		return plan.String(strAlphabet[rng.IntN(len(strAlphabet))])
	case 2:
		return plan.Float(float64(rng.IntN(40)-10) + 0.5)
	}
	switch c {
	case "time":
		return plan.Int(int64(rng.IntN(260) - 130))
	case "i", "sample_rate", "m":
		if rng.IntN(4) == 0 {
			return plan.Float(float64(rng.IntN(20) - 5))
		}
		return plan.Int(int64(rng.IntN(24) - 7))
	case "w":
		switch rng.IntN(3) {
		case 0:
			return plan.Int(rng.Int64N(1<<62) - 1<<61)
		case 1:
			return plan.Int(math.MaxInt64 - rng.Int64N(12))
		}
		return plan.Int(int64(rng.IntN(200000)) - 1000 + []int64{0, 70000}[rng.IntN(2)])
	case "f":
		return plan.Float(math.Round(rng.NormFloat64()*1000) / 8)
	case "g":
		return plan.Float(math.Round(rng.NormFloat64()*100) / 4)
	case "u":
		return plan.Int(int64(rng.IntN(60)))
	case "h":
		return plan.Int([]int64{1 << 62, -(1 << 62), 0}[rng.IntN(3)] + int64(rng.IntN(220)) - 10)
	case "hs":
		return plan.String(fmt.Sprintf("v%04d", rng.IntN(2020)))
	}
	return plan.String(strAlphabet[rng.IntN(len(strAlphabet))])
}

func colExpr(c string) *plan.Expr { return &plan.Expr{Op: plan.OpColumn, Column: c} }

func genPredicate(rng *rand.Rand) *plan.Expr {
	c := genColumns[rng.IntN(len(genColumns))]
	switch rng.IntN(10) {
	case 0, 1, 2:
		ops := []plan.Op{plan.OpEq, plan.OpNe, plan.OpLt, plan.OpLe, plan.OpGt, plan.OpGe}
		e := &plan.Expr{Op: ops[rng.IntN(len(ops))], Args: []*plan.Expr{colExpr(c)}}
		lit := genLiteral(rng, c)
		if rng.IntN(2) == 0 {
			e.Args = append(e.Args, &plan.Expr{Op: plan.OpLit, Value: lit})
		} else {
			e.Value = lit
		}
		return e
	case 3:
		e := &plan.Expr{Op: plan.OpIn, Args: []*plan.Expr{colExpr(c)}}
		for k := rng.IntN(4); k >= 0; k-- {
			e.Values = append(e.Values, genLiteral(rng, c))
		}
		return e
	case 4:
		pats := []string{"a%", "%b", "%b%", "a_", "_", "%", "x\\%y", "x%y", "", "svc-_"}
		return &plan.Expr{Op: plan.OpLike, Args: []*plan.Expr{colExpr(c)}, Value: plan.String(pats[rng.IntN(len(pats))])}
	case 5:
		res := []string{"^a", "b$", "[xz]", "svc-[12]", "^$"}
		return &plan.Expr{Op: plan.OpRegex, Args: []*plan.Expr{colExpr(c)}, Value: plan.String(res[rng.IntN(len(res))])}
	case 6:
		return &plan.Expr{Op: plan.OpIsNull, Args: []*plan.Expr{colExpr(c)}}
	case 7, 8:
		if rng.IntN(3) > 0 {
			c = "tags"
		}
		ops := []plan.Op{plan.OpHas, plan.OpHasAny, plan.OpHasAll}
		op := ops[rng.IntN(3)]
		e := &plan.Expr{Op: op, Args: []*plan.Expr{colExpr(c)}}
		if op == plan.OpHas {
			e.Value = plan.String(strAlphabet[rng.IntN(6)])
		} else {
			for k := rng.IntN(3); k > 0; k-- {
				e.Values = append(e.Values, plan.String(strAlphabet[rng.IntN(6)]))
			}
		}
		return e
	}
	return &plan.Expr{Op: plan.OpLit, Value: []plan.Value{plan.Bool(true), plan.Bool(false), plan.Null()}[rng.IntN(3)]}
}

func genFilter(rng *rand.Rand, depth int) *plan.Expr {
	if depth == 0 || rng.IntN(3) == 0 {
		return genPredicate(rng)
	}
	switch rng.IntN(3) {
	case 0:
		return &plan.Expr{Op: plan.OpNot, Args: []*plan.Expr{genFilter(rng, depth-1)}}
	case 1:
		return &plan.Expr{Op: plan.OpAnd, Args: []*plan.Expr{genFilter(rng, depth-1), genFilter(rng, depth-1)}}
	}
	return &plan.Expr{Op: plan.OpOr, Args: []*plan.Expr{genFilter(rng, depth-1), genFilter(rng, depth-1)}}
}

var numericColumns = []string{"time", "sample_rate", "i", "w", "f", "m", "nope", "u", "g", "h"}

func genAgg(rng *rand.Rand) plan.Agg {
	c := numericColumns[rng.IntN(len(numericColumns))]
	switch rng.IntN(8) {
	case 0:
		return plan.Agg{Func: plan.AggCount}
	case 1:
		return plan.Agg{Func: plan.AggCount, Column: genColumns[rng.IntN(len(genColumns))]}
	case 2:
		return plan.Agg{Func: plan.AggSum, Column: c}
	case 3:
		return plan.Agg{Func: plan.AggAvg, Column: c}
	case 4:
		cs := append([]string{"s", "opt"}, numericColumns...)
		return plan.Agg{Func: plan.AggMin, Column: cs[rng.IntN(len(cs))]}
	case 5:
		cs := append([]string{"s", "opt"}, numericColumns...)
		return plan.Agg{Func: plan.AggMax, Column: cs[rng.IntN(len(cs))]}
	case 6:
		return plan.Agg{Func: plan.AggPercentile, Column: c, Param: []float64{0, 0.5, 0.9, 0.99, 1}[rng.IntN(5)]}
	}
	cs := append([]string{"s", "opt", "tags"}, numericColumns...)
	return plan.Agg{Func: plan.AggCountDistinct, Column: cs[rng.IntN(len(cs))]}
}

func genPlan(rng *rand.Rand) *plan.Plan {
	p := &plan.Plan{Table: "t", Limit: -1}
	if rng.IntN(4) > 0 {
		p.Filter = genFilter(rng, 3)
	}
	if rng.IntN(3) == 0 {
		p.TimeMin = int64(rng.IntN(200) - 100)
		p.TimeMax = p.TimeMin + int64(rng.IntN(100))
	}
	keys := []plan.GroupKey{{Column: "s"}, {Column: "i"}, {Column: "time", Bucket: 7}, {Column: "time", Bucket: 60},
		{Column: "w"}, {Column: "f"}, {Column: "m"}, {Column: "opt"}, {Column: "nope"}, {Column: "time"}, {Column: "i", Bucket: 3},
		{Column: "k"}, {Column: "k"}, {Column: "u"}, {Column: "u"}, {Column: "h"}, {Column: "hs"}}
	for k := rng.IntN(3); k > 0; k-- {
		p.GroupBy = append(p.GroupBy, keys[rng.IntN(len(keys))])
	}
	for k := 1 + rng.IntN(3); k > 0; k-- {
		p.Aggs = append(p.Aggs, genAgg(rng))
	}
	return p
}

func (n genConfig) String() string {
	return fmt.Sprintf("%d blocks of up to %d rows", n.blocks, n.maxRows)
}
