package exec

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"go.uber.org/goleak"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/plan"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run executes p and finalizes the result.
func run(t *testing.T, p *plan.Plan, blocks []*block.Block, opt Options) (*agg.Partial, *agg.Result) {
	t.Helper()
	part, err := Execute(context.Background(), p, blocks, opt)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	// Finalize may reorder nothing in part, but Merge consumes; keep part intact by
	// finalizing a decoded copy.
	cp, err := agg.Decode(agg.AppendEncode(nil, part))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	res, err := agg.Finalize(p, cp)
	if err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	return part, res
}

// checkAgainstReference runs p and compares every group and aggregate with the
// row-at-a-time reference.
func checkAgainstReference(t *testing.T, p *plan.Plan, blocks []*block.Block, opt Options) {
	t.Helper()
	part, res := run(t, p, blocks, opt)
	ref := reference(t, p, blocks)
	if part.RowsInRange != ref.rowsInRange || part.RowsMatched != ref.matched {
		t.Errorf("coverage: in range %d matched %d, want %d %d", part.RowsInRange, part.RowsMatched, ref.rowsInRange, ref.matched)
	}
	if len(res.Rows) != len(ref.groups) {
		t.Fatalf("got %d groups, want %d\n got: %v", len(res.Rows), len(ref.groups), res.Rows)
	}
	nk := len(p.GroupBy)
	for gi, g := range ref.groups {
		row := res.Rows[gi]
		for j, k := range g.key {
			if plan.Compare(row[j], k) != 0 || row[j].IsNull() != k.IsNull() {
				t.Fatalf("group %d: key %v, want %v", gi, row[:nk], g.key)
			}
		}
		for j, a := range p.Aggs {
			checkAgg(t, fmt.Sprintf("group %v %s", g.key, agg.AggName(a)), a, &g.accs[j], row[nk+j])
		}
	}
}

func TestRandomAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	iters := 300
	if testing.Short() {
		iters = 60
	}
	for it := 0; it < iters; it++ {
		blocks := genBlocks(t, rng, genConfig{blocks: 1 + rng.IntN(6), maxRows: 300})
		p := genPlan(rng)
		opt := Options{Parallelism: 1 + rng.IntN(3)}
		ok := t.Run(fmt.Sprint(it), func(t *testing.T) { checkAgainstReference(t, p, blocks, opt) })
		if !ok {
			t.Logf("plan: %s", planString(p))
			break
		}
	}
}

// TestRandomLargeBlocks runs random plans over blocks of thousands of rows, so
// that the kernels' word-at-a-time and chunked paths see more than a few words.
func TestRandomLargeBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	iters := 12
	if testing.Short() {
		iters = 4
	}
	for it := 0; it < iters; it++ {
		blocks := genBlocks(t, rng, genConfig{blocks: 1 + rng.IntN(3), maxRows: 4000})
		p := genPlan(rng)
		opt := Options{Parallelism: 1 + rng.IntN(2)}
		ok := t.Run(fmt.Sprint(it), func(t *testing.T) { checkAgainstReference(t, p, blocks, opt) })
		if !ok {
			t.Logf("plan: %s", planString(p))
			break
		}
	}
}

func planString(p *plan.Plan) string {
	return fmt.Sprintf("filter=%s group=%v aggs=%v time=[%d,%d]", exprString(p.Filter), p.GroupBy, p.Aggs, p.TimeMin, p.TimeMax)
}

func exprString(e *plan.Expr) string {
	if e == nil {
		return "<nil>"
	}
	switch e.Op {
	case plan.OpColumn:
		return e.Column
	case plan.OpLit:
		return e.Value.String()
	}
	s := "(" + string(e.Op)
	for _, a := range e.Args {
		s += " " + exprString(a)
	}
	if !e.Value.IsNull() {
		s += " " + e.Value.String()
	}
	if len(e.Values) > 0 {
		s += fmt.Sprint(" ", e.Values)
	}
	return s + ")"
}
