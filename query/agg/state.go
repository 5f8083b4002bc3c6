package agg

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/axiomhq/hyperloglog"

	"github.com/reef-db/reef/query/plan"
)

// State is the mergeable partial value of one aggregate for one group. The set of
// implementations is closed (this package's *CountState, *SumState, *AvgState,
// *MinState, *MaxState, *PercentileState, *DistinctState), so that every state can be
// encoded. A State is not safe for concurrent use.
type State interface {
	// Func is the aggregate function the state computes.
	Func() plan.AggFunc
	// Merge folds src, a state of the same function (and parameter), into the
	// receiver. src is not modified, but may share memory with the receiver
	// afterwards only where documented (never for sketches).
	Merge(src State) error
	// Result is the final value: NULL for sum, avg, min, max and percentile of no
	// values; 0 for count and count_distinct of none.
	Result() plan.Value

	tag() Tag
	appendPayload(dst []byte) []byte
}

// Tag identifies a state's type on the wire (see codec.go).
type Tag uint8

const (
	TagCount      Tag = 1
	TagSum        Tag = 2
	TagAvg        Tag = 3
	TagMin        Tag = 4
	TagMax        Tag = 5
	TagPercentile Tag = 6
	TagDistinct   Tag = 7
)

// SketchRelativeAccuracy is the relative accuracy of percentile sketches.
const SketchRelativeAccuracy = 0.01

// SketchMapping is the index mapping every percentile sketch uses: DDSketch's
// cubically interpolated approximation of a logarithmic mapping, which keeps the
// relative accuracy guarantee while computing an index without a logarithm (about
// 4× faster). It is fixed: the codec does not carry it, so leaves and aggregators must
// agree on it (it is part of the codec version).
var SketchMapping = mustMapping(SketchRelativeAccuracy)

// sketchMinIndex and sketchMaxIndex bound the bin indexes SketchMapping can produce,
// for validating decoded sketches.
var sketchMinIndex, sketchMaxIndex = SketchMapping.Index(SketchMapping.MinIndexableValue()) - 1,
	SketchMapping.Index(SketchMapping.MaxIndexableValue()) + 1

func mustMapping(acc float64) *mapping.CubicallyInterpolatedMapping {
	m, err := mapping.NewCubicallyInterpolatedMapping(acc)
	if err != nil {
		panic("BUG: cannot build sketch mapping: " + err.Error())
	}
	return m
}

// ErrStateMismatch is wrapped when merging states of different functions or
// parameters (a malformed partial from a child, or plans that disagree).
var ErrStateMismatch = errors.New("aggregate states do not match")

func mismatch(dst, src State) error {
	return fmt.Errorf("cannot merge %s state into %s state: %w", src.Func(), dst.Func(), ErrStateMismatch)
}

// NewState returns an empty state for a. It fails on an unknown function or a
// percentile parameter outside [0, 1].
func NewState(a plan.Agg) (State, error) {
	switch a.Func {
	case plan.AggCount:
		return &CountState{}, nil
	case plan.AggSum:
		return &SumState{}, nil
	case plan.AggAvg:
		return &AvgState{}, nil
	case plan.AggMin:
		return &MinState{}, nil
	case plan.AggMax:
		return &MaxState{}, nil
	case plan.AggPercentile:
		if !(a.Param >= 0 && a.Param <= 1) {
			return nil, fmt.Errorf("percentile(%s, %v): the quantile must be within [0, 1]", a.Column, a.Param)
		}
		return NewPercentileState(a.Param), nil
	case plan.AggCountDistinct:
		return NewDistinctState(), nil
	}
	return nil, fmt.Errorf("unknown aggregate function %q", a.Func)
}

// CheckPlan reports whether every aggregate of p is one this package can compute,
// and whether p's Outputs and OrderBy refer to existing group keys, aggregates and
// outputs.
func CheckPlan(p *plan.Plan) error {
	if p == nil {
		return errors.New("no plan")
	}
	for i, a := range p.Aggs {
		if _, err := NewState(a); err != nil {
			return fmt.Errorf("aggregate %d: %w", i, err)
		}
		if a.Func != plan.AggCount && a.Column == "" {
			return fmt.Errorf("aggregate %d: %s needs a column", i, a.Func)
		}
	}
	for i, o := range p.Outputs {
		switch o.Kind {
		case plan.OutGroup:
			if o.Index < 0 || o.Index >= len(p.GroupBy) {
				return fmt.Errorf("output %d (%q): group key %d does not exist", i, o.Name, o.Index)
			}
		case plan.OutAgg:
			if o.Index < 0 || o.Index >= len(p.Aggs) {
				return fmt.Errorf("output %d (%q): aggregate %d does not exist", i, o.Name, o.Index)
			}
		default:
			if !p.Sample {
				return fmt.Errorf("output %d (%q): unknown kind %q", i, o.Name, o.Kind)
			}
		}
	}
	for i, g := range p.GroupBy {
		if g.Column == "" {
			return fmt.Errorf("group key %d has no column", i)
		}
		if g.Bucket < 0 {
			return fmt.Errorf("group key %d (%s): negative bucket %d", i, g.Column, g.Bucket)
		}
	}
	if p.Sample {
		for i, o := range p.OrderBy {
			if _, err := SampleOrderColumn(p, o); err != nil {
				return fmt.Errorf("order term %d: %w", i, err)
			}
		}
	} else {
		n := len(p.Outputs)
		if n == 0 {
			n = len(p.GroupBy) + len(p.Aggs)
		}
		for i, o := range p.OrderBy {
			if o.Output < 0 || o.Output >= n {
				return fmt.Errorf("order term %d: output %d does not exist", i, o.Output)
			}
		}
	}
	return nil
}

// NewStates returns fresh states for one group of p, one per p.Aggs entry. p must
// have passed CheckPlan; an aggregate it would reject gets a state whose Merge fails
// and whose Result is NULL.
func NewStates(p *plan.Plan) []State {
	out := make([]State, len(p.Aggs))
	for i, a := range p.Aggs {
		s, err := NewState(a)
		if err != nil {
			s = &invalidState{fn: a.Func}
		}
		out[i] = s
	}
	return out
}

// invalidState stands in for an aggregate CheckPlan rejects.
type invalidState struct{ fn plan.AggFunc }

func (s *invalidState) Func() plan.AggFunc { return s.fn }
func (s *invalidState) Merge(src State) error {
	return fmt.Errorf("cannot merge state of unknown aggregate %q: %w", s.fn, ErrStateMismatch)
}
func (s *invalidState) Result() plan.Value              { return plan.Null() }
func (s *invalidState) tag() Tag                        { return 0 }
func (s *invalidState) appendPayload(dst []byte) []byte { return dst }

// Weight turns a raw sample_rate into the number of events a row stands for.
func Weight(rate int64) int64 {
	if rate < 1 {
		return 1
	}
	return rate
}

// CountState counts rows (count(*)) or non-null values (count(col)), weighted.
type CountState struct{ N int64 }

func (s *CountState) Func() plan.AggFunc { return plan.AggCount }
func (s *CountState) tag() Tag           { return TagCount }
func (s *CountState) Result() plan.Value { return plan.Int(s.N) }

// Add counts w more events.
func (s *CountState) Add(w int64) { s.N += w }

func (s *CountState) Merge(src State) error {
	o, ok := src.(*CountState)
	if !ok {
		return mismatch(s, src)
	}
	s.N += o.N
	return nil
}

// SumState is a weighted sum. While IsFloat is false the sum is exactly Int; once a
// float value was added or an integer addition overflowed it is float64(Int)+Float.
// Seen says whether any value was added (an empty sum is NULL).
type SumState struct {
	Int     int64
	Float   float64
	IsFloat bool
	Seen    bool
}

func (s *SumState) Func() plan.AggFunc { return plan.AggSum }
func (s *SumState) tag() Tag           { return TagSum }

func (s *SumState) Result() plan.Value {
	switch {
	case !s.Seen:
		return plan.Null()
	case s.IsFloat:
		return plan.Float(float64(s.Int) + s.Float)
	}
	return plan.Int(s.Int)
}

// AddInt adds v*w, spilling into Float on overflow.
func (s *SumState) AddInt(v, w int64) {
	s.Seen = true
	x, ok := MulInt(v, w)
	if ok {
		var sum int64
		if sum, ok = AddInt(s.Int, x); ok {
			s.Int = sum
			return
		}
	}
	s.Float += float64(v) * float64(w)
	s.IsFloat = true
}

// AddFloat adds v*w.
func (s *SumState) AddFloat(v float64, w int64) {
	s.Seen = true
	s.Float += v * float64(w)
	s.IsFloat = true
}

func (s *SumState) Merge(src State) error {
	o, ok := src.(*SumState)
	if !ok {
		return mismatch(s, src)
	}
	if !o.Seen {
		return nil
	}
	s.Seen = true
	if sum, ok := AddInt(s.Int, o.Int); ok {
		s.Int = sum
	} else {
		s.Float += float64(o.Int)
		s.IsFloat = true
	}
	s.Float += o.Float
	s.IsFloat = s.IsFloat || o.IsFloat
	return nil
}

// AddInt returns a+b and whether it did not overflow.
func AddInt(a, b int64) (int64, bool) {
	s := a + b
	return s, (a^s)&(b^s) >= 0
}

// MulInt returns v*w for w >= 1 and whether it did not overflow.
func MulInt(v, w int64) (int64, bool) {
	if w == 1 {
		return v, true
	}
	neg := v < 0
	u := uint64(v)
	if neg {
		u = -u
	}
	hi, lo := bits.Mul64(u, uint64(w))
	if hi != 0 || lo > math.MaxInt64+uint64(b2i(neg)) {
		return 0, false
	}
	if neg {
		return int64(-lo), true
	}
	return int64(lo), true
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// AvgState is a weighted mean: Sum of value*weight over Count = sum of weights.
type AvgState struct {
	Sum   float64
	Count int64
}

func (s *AvgState) Func() plan.AggFunc { return plan.AggAvg }
func (s *AvgState) tag() Tag           { return TagAvg }

func (s *AvgState) Result() plan.Value {
	if s.Count == 0 {
		return plan.Null()
	}
	return plan.Float(s.Sum / float64(s.Count))
}

// Add adds value v standing for w events.
func (s *AvgState) Add(v float64, w int64) {
	s.Sum += v * float64(w)
	s.Count += w
}

func (s *AvgState) Merge(src State) error {
	o, ok := src.(*AvgState)
	if !ok {
		return mismatch(s, src)
	}
	s.Sum += o.Sum
	s.Count += o.Count
	return nil
}

// MinState keeps the smallest value seen (by plan.Compare; NULL when none). NaN
// floats are ignored.
type MinState struct{ V plan.Value }

func (s *MinState) Func() plan.AggFunc { return plan.AggMin }
func (s *MinState) tag() Tag           { return TagMin }
func (s *MinState) Result() plan.Value { return s.V }

// Add considers v; NULL and NaN are ignored. Strings are kept as given: the caller
// clones strings that point into memory it does not own.
func (s *MinState) Add(v plan.Value) {
	if ignorable(v) {
		return
	}
	if s.V.IsNull() || plan.Compare(v, s.V) < 0 {
		s.V = v
	}
}

func (s *MinState) Merge(src State) error {
	o, ok := src.(*MinState)
	if !ok {
		return mismatch(s, src)
	}
	s.Add(o.V)
	return nil
}

// MaxState keeps the largest value seen (by plan.Compare; NULL when none). NaN
// floats are ignored.
type MaxState struct{ V plan.Value }

func (s *MaxState) Func() plan.AggFunc { return plan.AggMax }
func (s *MaxState) tag() Tag           { return TagMax }
func (s *MaxState) Result() plan.Value { return s.V }

// Add considers v; NULL and NaN are ignored.
func (s *MaxState) Add(v plan.Value) {
	if ignorable(v) {
		return
	}
	if s.V.IsNull() || plan.Compare(v, s.V) > 0 {
		s.V = v
	}
}

func (s *MaxState) Merge(src State) error {
	o, ok := src.(*MaxState)
	if !ok {
		return mismatch(s, src)
	}
	s.Add(o.V)
	return nil
}

func ignorable(v plan.Value) bool {
	return v.IsNull() || (v.Kind == plan.KindFloat && math.IsNaN(v.F))
}

// PercentileState is a DDSketch over SketchMapping and the quantile Q to read from
// it.
type PercentileState struct {
	Q      float64
	Sketch *ddsketch.DDSketch
}

// NewPercentileState returns an empty sketch for quantile q.
func NewPercentileState(q float64) *PercentileState {
	return &PercentileState{Q: q, Sketch: ddsketch.NewDDSketch(SketchMapping, store.NewDenseStore(), store.NewDenseStore())}
}

func (s *PercentileState) Func() plan.AggFunc { return plan.AggPercentile }
func (s *PercentileState) tag() Tag           { return TagPercentile }

// Add adds v with weight w. Values the sketch cannot track (NaN, beyond ±1.8e308)
// are ignored.
func (s *PercentileState) Add(v float64, w int64) {
	_ = s.Sketch.AddWithCount(v, float64(w))
}

func (s *PercentileState) Result() plan.Value {
	if !(s.Q >= 0 && s.Q <= 1) || s.Sketch.IsEmpty() {
		return plan.Null()
	}
	v, err := s.Sketch.GetValueAtQuantile(s.Q)
	if err != nil {
		return plan.Null()
	}
	return plan.Float(v)
}

func (s *PercentileState) Merge(src State) error {
	o, ok := src.(*PercentileState)
	if !ok || o.Q != s.Q {
		return mismatch(s, src)
	}
	if err := s.Sketch.MergeWith(o.Sketch); err != nil {
		return fmt.Errorf("cannot merge percentile sketches: %w", err)
	}
	return nil
}

// DistinctState is a HyperLogLog sketch of precision 14 over Hash* values.
type DistinctState struct{ HLL *hyperloglog.Sketch }

// NewDistinctState returns an empty distinct-count sketch.
func NewDistinctState() *DistinctState { return &DistinctState{HLL: hyperloglog.New14()} }

func (s *DistinctState) Func() plan.AggFunc { return plan.AggCountDistinct }
func (s *DistinctState) tag() Tag           { return TagDistinct }
func (s *DistinctState) Result() plan.Value { return plan.Int(int64(s.HLL.Estimate())) }

// AddHash adds a value by its HashString/HashInt/HashFloat hash.
func (s *DistinctState) AddHash(h uint64) { s.HLL.InsertHash(h) }

func (s *DistinctState) Merge(src State) error {
	o, ok := src.(*DistinctState)
	if !ok {
		return mismatch(s, src)
	}
	if err := s.HLL.Merge(o.HLL); err != nil {
		return fmt.Errorf("cannot merge distinct-count sketches: %w", err)
	}
	return nil
}
