package exec

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/plan"
)

// Options tune Execute.
type Options struct {
	// MaxGroups bounds the groups of the result (agg.Options.MaxGroups); past it new
	// groups are dropped and the partial is marked Truncated. 0: agg.DefaultMaxGroups.
	MaxGroups int
	// MaxRows bounds the rows of a sample query (agg.Options.MaxRows).
	MaxRows int
	// Parallelism is the number of blocks scanned at once; 0 means GOMAXPROCS.
	Parallelism int
}

func (o Options) agg() agg.Options { return agg.Options{MaxGroups: o.MaxGroups, MaxRows: o.MaxRows} }

// ErrBadPlan is wrapped by errors about a plan this package cannot execute.
var ErrBadPlan = errors.New("bad plan")

// Execute runs p over blocks (all of table p.Table) and returns the leaf's partial:
// per group the key and one state per aggregate, or for sample plans up to
// agg.Options.SampleRows(p) rows, plus the coverage counters of one leaf (rows in the
// time range, rows matched). The blocks must stay valid until Execute returns; the
// partial does not reference them.
//
// ctx is checked between blocks; a cancelled ctx returns its error.
func Execute(ctx context.Context, p *plan.Plan, blocks []*block.Block, opt Options) (*agg.Partial, error) {
	q, err := compile(p)
	if err != nil {
		return nil, err
	}
	n := opt.Parallelism
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	n = max(1, min(n, len(blocks)))
	if p.Sample {
		blocks = newestFirst(blocks)
	}
	workers := make([]*worker, n)
	parts := make([]*agg.Partial, n)
	var shared *admission
	if n > 1 && !p.Sample {
		shared = newAdmission(opt.agg().Groups(), n)
	}
	for i := range workers {
		workers[i] = newWorker(q, opt, shared) // all before any starts (admission)
	}
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for i, w := range workers {
		g.Go(func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("BUG: query execution panicked: %v", r)
					w.broken = true
				}
			}()
			for {
				k := int(next.Add(1) - 1)
				if k >= len(blocks) {
					break
				}
				if err := gctx.Err(); err != nil {
					return err
				}
				if err := w.scan(blocks[k]); err != nil {
					return fmt.Errorf("cannot scan block %d of %q: %w", blocks[k].ID, p.Table, err)
				}
			}
			// Each worker builds its own partial, in parallel with the others.
			parts[i], err = w.partial()
			return err
		})
	}
	defer func() {
		for _, w := range workers {
			if !w.broken {
				w.scratch.release()
			}
		}
	}()
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := parts[0]
	for _, part := range parts[1:] {
		if err := agg.MergeWith(p, out, part, opt.agg()); err != nil {
			return nil, err
		}
	}
	out.LeavesTotal, out.LeavesResponded = 1, 1
	out.RowsEstimated = out.RowsInRange
	return out, nil
}

// query is a plan compiled for execution; it is shared read-only by the workers.
type query struct {
	p          *plan.Plan
	filter     *node // includes the time range
	tmin, tmax int64
	aggs       []aggSpec
}

type aggSpec struct {
	fn  plan.AggFunc
	col string // "" for count(*)
	q   float64
}

func compile(p *plan.Plan) (*query, error) {
	if err := agg.CheckPlan(p); err != nil {
		return nil, fmt.Errorf("cannot execute: %w: %w", ErrBadPlan, err)
	}
	if p.Sample && (len(p.Aggs) > 0 || len(p.GroupBy) > 0) {
		return nil, fmt.Errorf("cannot execute: %w: a sample query has no aggregates or GROUP BY", ErrBadPlan)
	}
	q := &query{p: p, tmin: p.TimeMin, tmax: p.TimeMax}
	if q.tmin == 0 {
		q.tmin = math.MinInt64
	}
	if q.tmax == 0 {
		q.tmax = math.MaxInt64
	}
	f, err := compileFilter(p.Filter)
	if err != nil {
		return nil, fmt.Errorf("cannot execute: %w: filter: %w", ErrBadPlan, err)
	}
	if q.tmin != math.MinInt64 || q.tmax != math.MaxInt64 {
		tr := &node{kind: nIntRange, col: block.TimeColumn, lo: q.tmin, hi: q.tmax}
		if f == nil {
			f = tr
		} else {
			f = &node{kind: nAnd, kids: []*node{tr, f}}
		}
	}
	q.filter = f
	for _, a := range p.Aggs {
		q.aggs = append(q.aggs, aggSpec{fn: a.Func, col: a.Column, q: a.Param})
	}
	return q, nil
}

// newestFirst orders blocks by descending MaxTime, so that a sample query's workers
// fill their rows from the newest blocks and can skip older ones.
func newestFirst(blocks []*block.Block) []*block.Block {
	out := append([]*block.Block(nil), blocks...)
	sortBlocks(out)
	return out
}
