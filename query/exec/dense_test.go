package exec

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/plan"
)

// TestDenseGrouping runs the shapes dense grouping handles (an 8-bit key without
// NULLs; counts and sums folded per code, other aggregates by group id) and the
// ones it hands back (weights, NULL values, wide ints), with and without a filter,
// against the reference.
func TestDenseGrouping(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	aggSets := [][]plan.Agg{
		{{Func: plan.AggCount}},
		{{Func: plan.AggCount}, {Func: plan.AggAvg, Column: "g"}},
		{{Func: plan.AggSum, Column: "h"}, {Func: plan.AggAvg, Column: "h"}, {Func: plan.AggSum, Column: "u"}},
		{{Func: plan.AggSum, Column: "g"}, {Func: plan.AggCount, Column: "k"}, {Func: plan.AggCount, Column: "nope"}, {Func: plan.AggSum, Column: "g"}},
		{{Func: plan.AggAvg, Column: "u"}, {Func: plan.AggMax, Column: "g"}, {Func: plan.AggPercentile, Column: "g", Param: 0.5}},
		{{Func: plan.AggCount, Column: "f"}, {Func: plan.AggSum, Column: "w"}, {Func: plan.AggCountDistinct, Column: "s"}},
		{{Func: plan.AggPercentile, Column: "g", Param: 0.9}},
	}
	filters := []*plan.Expr{nil, cmpE(plan.OpLt, "u", plan.Int(20)), cmpE(plan.OpEq, "k", plan.String("ab"))}
	iters := 16
	if testing.Short() {
		iters = 4
	}
	for it := 0; it < iters; it++ {
		blocks := genBlocks(t, rng, genConfig{blocks: 1 + rng.IntN(3), maxRows: 2000})
		for _, key := range []string{"k", "u"} {
			p := &plan.Plan{Table: "t", Limit: -1, GroupBy: []plan.GroupKey{{Column: key}},
				Aggs: aggSets[rng.IntN(len(aggSets))], Filter: filters[rng.IntN(len(filters))]}
			ok := t.Run(fmt.Sprintf("%d/%s", it, key), func(t *testing.T) {
				checkAgainstReference(t, p, blocks, Options{Parallelism: 1 + rng.IntN(2)})
			})
			if !ok {
				t.Fatalf("plan: %s", planString(p))
			}
		}
	}
}

// TestDictionaryFilters runs string predicates (which answer with a per-code table
// at the top of a filter) over 8- and 16-bit dictionary codes, alone, in an AND
// after an integer test, and grouped by the same column, against the reference.
func TestDictionaryFilters(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	lits := func(n int) []plan.Value {
		var out []plan.Value
		for i := 0; i < n; i++ {
			out = append(out, plan.String(fmt.Sprintf("v%04d", rng.IntN(60))))
		}
		return out
	}
	for it := 0; it < 12; it++ {
		blocks := genBlocks(t, rng, genConfig{blocks: 1 + rng.IntN(3), maxRows: 1500})
		leaf := []*plan.Expr{
			cmpE(plan.OpEq, "hs", plan.String(fmt.Sprintf("v%04d", rng.IntN(40)))),
			listE(plan.OpIn, "hs", lits(3)...),
			cmpE(plan.OpLike, "hs", plan.String("v00%")),
			notE(cmpE(plan.OpLike, "hs", plan.String("v1%"))),
			cmpE(plan.OpEq, "k", plan.String("ab")),
		}[rng.IntN(5)]
		filter := leaf
		if rng.IntN(2) == 0 {
			filter = &plan.Expr{Op: plan.OpAnd, Args: []*plan.Expr{cmpE(plan.OpLt, "u", plan.Int(30)), leaf}}
		}
		key := []string{"hs", "k", "u"}[rng.IntN(3)]
		p := &plan.Plan{Table: "t", Limit: -1, Filter: filter, GroupBy: []plan.GroupKey{{Column: key}},
			Aggs: []plan.Agg{{Func: plan.AggCount}, {Func: plan.AggSum, Column: "g"}, {Func: plan.AggMax, Column: "u"}}}
		ok := t.Run(fmt.Sprint(it), func(t *testing.T) { checkAgainstReference(t, p, blocks, Options{Parallelism: 2}) })
		if !ok {
			t.Fatalf("plan: %s", planString(p))
		}
	}
}

// TestMaxGroupsKeys checks the MaxGroups bound through each grouping path and with
// several workers: the groups kept are complete (the workers agree on them).
func TestMaxGroupsKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	blocks := genBlocks(t, rng, genConfig{blocks: 12, maxRows: 500})
	aggs := []plan.Agg{{Func: plan.AggCount}, {Func: plan.AggSum, Column: "h"}, {Func: plan.AggAvg, Column: "g"}, {Func: plan.AggMin, Column: "g"}}
	for _, key := range []string{"w", "k", "u", "s"} {
		for _, c := range []struct{ max, workers int }{{3, 2}, {3, 4}, {50, 3}} {
			t.Run(fmt.Sprintf("%s/%d/%d", key, c.max, c.workers), func(t *testing.T) {
				p := &plan.Plan{Table: "t", Limit: -1, GroupBy: []plan.GroupKey{{Column: key}}, Aggs: aggs}
				ref := reference(t, p, blocks)
				part, err := Execute(context.Background(), p, blocks, Options{MaxGroups: c.max, Parallelism: c.workers})
				if err != nil {
					t.Fatal(err)
				}
				if want := min(c.max, len(ref.groups)); len(part.Keys) != want || part.Truncated != (len(ref.groups) > c.max) {
					t.Fatalf("%d groups, truncated %v; want %d of %d", len(part.Keys), part.Truncated, want, len(ref.groups))
				}
				byKey := map[string]*refGroup{}
				for _, g := range ref.groups {
					byKey[string(agg.AppendGroupKey(nil, g.key))] = g
				}
				for g, key := range part.Keys {
					want := byKey[string(agg.AppendGroupKey(nil, key))]
					if want == nil {
						t.Fatalf("group %v is not in the reference", key)
					}
					for j, a := range aggs {
						checkAgg(t, fmt.Sprintf("group %v %s", key, agg.AggName(a)), a, &want.accs[j], part.States[g][j].Result())
					}
				}
			})
		}
	}
}

// TestDenseBadCode checks that a dictionary code beyond the dictionary is an error,
// not a panic, when grouping on it.
func TestDenseBadCode(t *testing.T) {
	blk := fixedBlock(t)
	// Replace column s with codes [0 1 0 7 1] over a dictionary of two entries.
	dict := array.NewStringData(array.NewData(arrow.BinaryTypes.String, 2,
		[]*memory.Buffer{nil, memory.NewBufferBytes(i32le(0, 3, 6)), memory.NewBufferBytes([]byte("apiweb"))}, nil, 0, 0))
	typ := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Uint8, ValueType: arrow.BinaryTypes.String}
	d := array.NewDataWithDictionary(typ, 5, []*memory.Buffer{nil, memory.NewBufferBytes([]byte{0, 1, 0, 7, 1})}, 0, 0, dict.Data().(*array.Data))
	c := blk.Column("s")
	c.Arr, c.Stats.Nulls = array.MakeFromData(d), 0
	for _, aggs := range [][]plan.Agg{{{Func: plan.AggCount}}, {{Func: plan.AggMax, Column: "x"}}} {
		p := &plan.Plan{Table: "t", Limit: -1, GroupBy: []plan.GroupKey{{Column: "s"}}, Aggs: aggs}
		_, err := Execute(context.Background(), p, []*block.Block{blk}, Options{})
		if err == nil || !strings.Contains(err.Error(), "column \"s\"") && !strings.Contains(err.Error(), "dictionary") {
			t.Errorf("%v: got %v, want an error about the dictionary code", aggs, err)
		}
	}
}

func i32le(vs ...int32) []byte {
	out := make([]byte, 0, 4*len(vs))
	for _, v := range vs {
		out = append(out, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
	return out
}

// BenchmarkDenseSum is the kernel of `SELECT k, count(*), avg(x) … GROUP BY k`:
// count and sum per 8-bit code over a whole block.
func BenchmarkDenseSum(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	codes := make([]uint8, block.MaxRows)
	vals := make([]float64, block.MaxRows)
	z := rand.NewZipf(rng, 1.1, 1, 19)
	for i := range codes {
		codes[i], vals[i] = uint8(z.Uint64()), rng.Float64()*100
	}
	d := new(denseScratch)
	b.ReportAllocs()
	for b.Loop() {
		sumCodes(&d.cnt, &d.fsum, codes, vals, nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(codes)), "ns/row")
}
