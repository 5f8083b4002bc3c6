package agg

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/reef-db/reef/query/plan"
)

func TestAddMulInt(t *testing.T) {
	add := func(a, b, want int64, wantOK bool) {
		t.Helper()
		got, ok := AddInt(a, b)
		if ok != wantOK || (ok && got != want) {
			t.Errorf("AddInt(%d, %d) = %d, %v; want %d, %v", a, b, got, ok, want, wantOK)
		}
	}
	add(1, 2, 3, true)
	add(math.MaxInt64, 1, 0, false)
	add(math.MinInt64, -1, 0, false)
	add(math.MinInt64, math.MaxInt64, -1, true)
	add(math.MaxInt64-5, 5, math.MaxInt64, true)

	mul := func(v, w, want int64, wantOK bool) {
		t.Helper()
		got, ok := MulInt(v, w)
		if ok != wantOK || (ok && got != want) {
			t.Errorf("MulInt(%d, %d) = %d, %v; want %d, %v", v, w, got, ok, want, wantOK)
		}
	}
	mul(7, 1, 7, true)
	mul(-7, 3, -21, true)
	mul(math.MaxInt64, 2, 0, false)
	mul(math.MinInt64/2, 2, math.MinInt64, true)
	mul(math.MaxInt64/2+1, 2, 0, false)
	mul(math.MinInt64, 1, math.MinInt64, true)
	mul(math.MinInt64, 2, 0, false)
	mul(1<<32, 1<<31, 1<<63-1, false)
}

func TestSumState(t *testing.T) {
	var s SumState
	if got := s.Result(); !got.IsNull() {
		t.Fatalf("empty sum = %v, want NULL", got)
	}
	s.AddInt(5, 1)
	s.AddInt(-2, 3)
	if got := s.Result(); got != plan.Int(-1) {
		t.Fatalf("sum = %v, want -1", got)
	}
	// Overflow spills into the float part instead of wrapping.
	s.AddInt(math.MaxInt64, 1)
	s.AddInt(math.MaxInt64, 1)
	got := s.Result()
	want := 2*float64(math.MaxInt64) - 1
	if got.Kind != plan.KindFloat || math.Abs(got.F-want) > 1e-6*want {
		t.Fatalf("overflowed sum = %v, want ≈%v", got, want)
	}
	var f SumState
	f.AddFloat(1.5, 2)
	if got := f.Result(); got != plan.Float(3) {
		t.Fatalf("float sum = %v, want 3", got)
	}
	// Merging an int sum and a float sum gives a float.
	var i SumState
	i.AddInt(4, 1)
	if err := i.Merge(&f); err != nil {
		t.Fatal(err)
	}
	if got := i.Result(); got != plan.Float(7) {
		t.Fatalf("merged sum = %v, want 7.0", got)
	}
	// Merging two large int sums overflows into float.
	a, b := &SumState{Int: math.MaxInt64, Seen: true}, &SumState{Int: math.MaxInt64, Seen: true}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	if got := a.Result(); got.Kind != plan.KindFloat || math.Abs(got.F-2*float64(math.MaxInt64)) > 1e6 {
		t.Fatalf("merged overflow = %v", got)
	}
}

func TestSimpleStates(t *testing.T) {
	c := &CountState{}
	c.Add(3)
	if err := c.Merge(&CountState{N: 4}); err != nil || c.Result() != plan.Int(7) {
		t.Fatalf("count = %v, %v", c.Result(), err)
	}
	av := &AvgState{}
	if !av.Result().IsNull() {
		t.Fatal("empty avg is not NULL")
	}
	av.Add(1, 1)
	av.Add(4, 2)
	if err := av.Merge(&AvgState{Sum: 3, Count: 1}); err != nil || av.Result() != plan.Float(3) {
		t.Fatalf("avg = %v, %v", av.Result(), err)
	}
	mn, mx := &MinState{}, &MaxState{}
	for _, v := range []plan.Value{plan.Null(), plan.Int(3), plan.Float(math.NaN()), plan.Float(-1.5), plan.Int(10)} {
		mn.Add(v)
		mx.Add(v)
	}
	if mn.Result() != plan.Float(-1.5) || mx.Result() != plan.Int(10) {
		t.Fatalf("min %v max %v", mn.Result(), mx.Result())
	}
	if err := mn.Merge(&MinState{V: plan.Int(-7)}); err != nil || mn.Result() != plan.Int(-7) {
		t.Fatalf("merged min %v, %v", mn.Result(), err)
	}
	if err := mx.Merge(&MaxState{}); err != nil || mx.Result() != plan.Int(10) {
		t.Fatalf("merged max %v, %v", mx.Result(), err)
	}
}

func TestStateMismatch(t *testing.T) {
	cases := []struct {
		dst, src State
	}{
		{&CountState{}, &SumState{}},
		{&SumState{}, &AvgState{}},
		{&MinState{}, &MaxState{}},
		{NewPercentileState(0.5), NewPercentileState(0.9)},
		{NewDistinctState(), &CountState{}},
		{&invalidState{fn: "median"}, &CountState{}},
	}
	for _, c := range cases {
		if err := c.dst.Merge(c.src); !errors.Is(err, ErrStateMismatch) {
			t.Errorf("%s.Merge(%s) = %v, want ErrStateMismatch", c.dst.Func(), c.src.Func(), err)
		}
	}
}

func TestNewState(t *testing.T) {
	for _, a := range []plan.Agg{{Func: "median", Column: "x"}, {Func: plan.AggPercentile, Column: "x", Param: 1.5}, {Func: plan.AggPercentile, Column: "x", Param: math.NaN()}} {
		if _, err := NewState(a); err == nil {
			t.Errorf("NewState(%+v) succeeded", a)
		}
	}
	p := &plan.Plan{Table: "t", Aggs: []plan.Agg{{Func: plan.AggCount}, {Func: "median", Column: "x"}}}
	if err := CheckPlan(p); err == nil {
		t.Error("CheckPlan accepted an unknown function")
	}
	states := NewStates(p)
	if len(states) != 2 || !states[1].Result().IsNull() {
		t.Errorf("NewStates = %v", states)
	}
}

func TestPercentileAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var vals []float64
	s := NewPercentileState(0.99)
	other := NewPercentileState(0.99)
	for i := 0; i < 20000; i++ {
		v := math.Exp(rng.NormFloat64()*2) - 0.5 // positive, negative and near zero
		vals = append(vals, v)
		if i%2 == 0 {
			s.Add(v, 1)
		} else {
			other.Add(v, 1)
		}
	}
	if err := s.Merge(other); err != nil {
		t.Fatal(err)
	}
	slices.Sort(vals)
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 1} {
		s.Q = q
		want := vals[int(q*float64(len(vals)-1))]
		got := s.Result()
		if got.Kind != plan.KindFloat || math.Abs(got.F-want) > 0.0101*math.Abs(want) {
			t.Errorf("p%v = %v, want %v ±1%%", q, got, want)
		}
	}
	if !NewPercentileState(0.5).Result().IsNull() {
		t.Error("empty percentile is not NULL")
	}
	w := NewPercentileState(0.5)
	w.Add(1, 1)
	w.Add(100, 5) // weight 5: the median is 100
	if got := w.Result(); math.Abs(got.F-100) > 1 {
		t.Errorf("weighted median = %v, want ≈100", got)
	}
}

func TestDistinctAccuracy(t *testing.T) {
	a, b := NewDistinctState(), NewDistinctState()
	const n = 100000
	for i := 0; i < n; i++ {
		a.AddHash(HashInt(int64(i)))
		b.AddHash(HashInt(int64(i + n/2))) // half overlaps
	}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	got, want := float64(a.Result().I), 1.5*n
	if math.Abs(got-want) > 0.02*want {
		t.Errorf("distinct = %v, want %v ±2%%", got, want)
	}
	small := NewDistinctState()
	for _, s := range []string{"a", "b", "a", "c", ""} {
		small.AddHash(HashString(s))
	}
	if got := small.Result(); got != plan.Int(4) {
		t.Errorf("distinct of 4 strings = %v", got)
	}
}

func TestHashByValue(t *testing.T) {
	if HashFloat(5) != HashInt(5) || HashFloat(math.Copysign(0, -1)) != HashInt(0) {
		t.Error("integral floats must hash like ints")
	}
	if HashFloat(math.NaN()) != HashFloat(-math.NaN()) {
		t.Error("NaNs must hash alike")
	}
	if HashFloat(5.5) == HashInt(5) || HashString("5") == HashInt(5) || HashString("a") == HashString("b") {
		t.Error("different values hash alike")
	}
}
