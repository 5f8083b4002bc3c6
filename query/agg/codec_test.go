package agg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/reef-db/reef/query/plan"
)

// testPlan has one aggregate of every kind, grouped by two keys.
var testPlan = &plan.Plan{
	Table:   "t",
	GroupBy: []plan.GroupKey{{Column: "s"}, {Column: "time", Bucket: 60}},
	Aggs: []plan.Agg{
		{Func: plan.AggCount}, {Func: plan.AggSum, Column: "x"}, {Func: plan.AggAvg, Column: "x"},
		{Func: plan.AggMin, Column: "x"}, {Func: plan.AggMax, Column: "s"},
		{Func: plan.AggPercentile, Column: "x", Param: 0.99}, {Func: plan.AggCountDistinct, Column: "s"},
	},
	Limit: -1,
}

// testPartial builds a partial of testPlan with n groups.
func testPartial(n int, seed int64) *Partial {
	p := &Partial{LeavesTotal: 1, LeavesResponded: 1, RowsInRange: 1000 + seed, RowsEstimated: 1000 + seed, RowsMatched: 10 * int64(n)}
	for g := 0; g < n; g++ {
		key := []plan.Value{plan.String(string(rune('a' + g%26))), plan.Int(60 * int64(g/26))}
		states := NewStates(testPlan)
		for r := int64(0); r < 10; r++ {
			x := float64(g)*1.5 + float64(r) - float64(seed)
			states[0].(*CountState).Add(1)
			states[1].(*SumState).AddInt(int64(g)+r, 2)
			states[2].(*AvgState).Add(x, 1)
			states[3].(*MinState).Add(plan.Float(x))
			states[4].(*MaxState).Add(plan.String(key[0].S + "z"))
			states[5].(*PercentileState).Add(x, 1)
			states[6].(*DistinctState).AddHash(HashInt(int64(g)*100 + r + seed))
		}
		p.Keys = append(p.Keys, key)
		p.States = append(p.States, states)
	}
	return p
}

func results(t *testing.T, p *Partial) [][]plan.Value {
	t.Helper()
	var out [][]plan.Value
	for g := range p.Keys {
		row := append([]plan.Value(nil), p.Keys[g]...)
		for _, s := range p.States[g] {
			row = append(row, s.Result())
		}
		out = append(out, row)
	}
	return out
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	cases := []*Partial{
		{},
		{LeavesTotal: 3, LeavesResponded: 2, Truncated: true},
		testPartial(1, 0),
		testPartial(60, 7),
		{Columns: []string{"time", "s", "tags"}, Rows: [][]plan.Value{
			{plan.Int(1), plan.String("héllo"), plan.String(`["a","b"]`)},
			{plan.Int(-1), plan.Null(), plan.Bool(true)},
			{plan.Float(math.Inf(1)), plan.Float(-0.5), plan.Bool(false)},
		}},
	}
	for i, p := range cases {
		data := AppendEncode([]byte("prefix"), p)[len("prefix"):]
		var buf bytes.Buffer
		if err := Encode(&buf, p); err != nil || !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("case %d: Encode differs from AppendEncode (%v)", i, err)
		}
		got, err := Decode(data)
		if err != nil {
			t.Fatalf("case %d: Decode: %v", i, err)
		}
		if got.Truncated != p.Truncated || got.LeavesTotal != p.LeavesTotal || got.LeavesResponded != p.LeavesResponded ||
			got.RowsInRange != p.RowsInRange || got.RowsEstimated != p.RowsEstimated || got.RowsMatched != p.RowsMatched {
			t.Errorf("case %d: coverage %+v, want %+v", i, got, p)
		}
		if !reflect.DeepEqual(results(t, got), results(t, p)) {
			t.Errorf("case %d: results differ:\n got %v\nwant %v", i, results(t, got), results(t, p))
		}
		if !reflect.DeepEqual(got.Columns, p.Columns) || !reflect.DeepEqual(got.Rows, p.Rows) {
			t.Errorf("case %d: rows differ: %v %v", i, got.Columns, got.Rows)
		}
		// A decoded partial encodes to a decodable partial with the same results.
		again, err := Decode(AppendEncode(nil, got))
		if err != nil || !reflect.DeepEqual(results(t, again), results(t, p)) {
			t.Errorf("case %d: second round trip: %v", i, err)
		}
	}
}

func TestDecodeRejectsCorruption(t *testing.T) {
	good := AppendEncode(nil, testPartial(3, 1))
	// Every truncation fails cleanly.
	for n := 0; n < len(good); n++ {
		if _, err := Decode(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: err = %v", n, err)
		}
	}
	// Every flipped bit fails (the checksum catches what the structure does not).
	for i := 0; i < len(good); i++ {
		bad := bytes.Clone(good)
		bad[i] ^= 0x10
		if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipped byte %d: err = %v", i, err)
		}
	}
}

// body builds a partial's body (without checksum) from parts.
func body(parts ...[]byte) []byte {
	b := []byte(Magic)
	b = append(b, Version, 0)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func uv(vals ...uint64) []byte {
	var b []byte
	for _, v := range vals {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

func TestDecodeBodyErrors(t *testing.T) {
	cov := uv(1, 1, 0, 0, 0)
	cases := map[string][]byte{
		"bad magic":              append([]byte("XXXX"), body(cov, uv(0, 0, 0))[4:]...),
		"bad version":            append(append([]byte(Magic), 9, 0), append(cov, uv(0, 0, 0)...)...),
		"unknown flag":           append(append([]byte(Magic), Version, 0x80), append(cov, uv(0, 0, 0)...)...),
		"huge group count":       body(cov, uv(1<<62)),
		"huge key length":        body(cov, uv(1, 1<<40)),
		"huge state count":       body(cov, uv(1, 0, 1<<40)),
		"unknown state tag":      body(cov, uv(1, 0, 1), []byte{99, 0}, uv(0, 0)),
		"state overrun":          body(cov, uv(1, 0, 1), []byte{byte(TagCount), 5, 2}, uv(0, 0)),
		"state leftover":         body(cov, uv(1, 0, 1), []byte{byte(TagCount), 2, 2, 0}, uv(0, 0)),
		"unknown value tag":      body(cov, uv(1, 1), []byte{42}, uv(0, 0, 0)),
		"huge string":            body(cov, uv(0, 1), uv(1<<50)),
		"huge rows":              body(cov, uv(0, 0, 1<<60)),
		"trailing bytes":         body(cov, uv(0, 0, 0), []byte{0}),
		"leaf count range":       body(uv(1<<40, 1, 0, 0, 0), uv(0, 0, 0)),
		"negative rows":          body(uv(1, 1, 1<<63, 0, 0), uv(0, 0, 0)),
		"bad quantile":           body(cov, uv(1, 0, 1), state(TagPercentile, f64(2), f64(0), uv(0), uv(0)), uv(0, 0)),
		"bad zero count":         body(cov, uv(1, 0, 1), state(TagPercentile, f64(0.5), f64(-1), uv(0), uv(0)), uv(0, 0)),
		"bin index out of range": body(cov, uv(1, 0, 1), state(TagPercentile, f64(0.5), f64(0), uv(1), vi(1<<40), f64(1), uv(0)), uv(0, 0)),
		"bins not increasing":    body(cov, uv(1, 0, 1), state(TagPercentile, f64(0.5), f64(0), uv(2), vi(2), f64(1), vi(0), f64(1), uv(0)), uv(0, 0)),
		"negative bin count":     body(cov, uv(1, 0, 1), state(TagPercentile, f64(0.5), f64(0), uv(1), vi(2), f64(-1), uv(0)), uv(0, 0)),
		"bad sum flags":          body(cov, uv(1, 0, 1), state(TagSum, []byte{4}, vi(0), f64(0)), uv(0, 0)),
		"hll precision":          body(cov, uv(1, 0, 1), []byte{byte(TagDistinct), 8}, []byte{2, 16, 0, 1, 0, 0, 0, 0}, uv(0, 0)),
	}
	for name, b := range cases {
		if _, err := decodeBody(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
	// Well-formed bodies built the same way decode.
	for name, b := range map[string][]byte{
		"minimal":    body(cov, uv(0, 0, 0)),
		"percentile": body(cov, uv(1, 0, 1), state(TagPercentile, f64(0.5), f64(1), uv(2), vi(2), f64(1), vi(3), f64(1), uv(0)), uv(0, 0)),
		"sum":        body(cov, uv(1, 0, 1), state(TagSum, []byte{3}, vi(-4), f64(0.5)), uv(0, 0)),
	} {
		if _, err := decodeBody(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// state encodes a state record around payload.
func state(tag Tag, payload ...[]byte) []byte {
	var p []byte
	for _, x := range payload {
		p = append(p, x...)
	}
	return append(append([]byte{byte(tag)}, uv(uint64(len(p)))...), p...)
}

func vi(v int64) []byte { return binary.AppendVarint(nil, v) }

func f64(f float64) []byte { return binary.LittleEndian.AppendUint64(nil, math.Float64bits(f)) }

// TestDecodeAllocationBound checks that a small input cannot make Decode allocate
// much: every count is checked against the bytes left.
func TestDecodeAllocationBound(t *testing.T) {
	b := body(uv(1, 1, 0, 0, 0), uv(1<<20)) // claims a million groups in a few bytes
	allocs := testing.AllocsPerRun(10, func() { _, _ = decodeBody(b) })
	if allocs > 20 {
		t.Errorf("decoding a lying header allocated %v times", allocs)
	}
}

func FuzzDecode(f *testing.F) {
	// Seeds: the files in testdata/fuzz/FuzzDecode, plus these.
	f.Add(AppendEncode(nil, &Partial{}))
	f.Add(AppendEncode(nil, testPartial(2, 3)))
	f.Add(AppendEncode(nil, &Partial{Columns: []string{"a"}, Rows: [][]plan.Value{{plan.String("x")}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, dec := range []func([]byte) (*Partial, error){Decode, decodeBody} {
			p, err := dec(data)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error does not wrap ErrCorrupt: %v", err)
				}
				continue
			}
			// Whatever decodes re-encodes into something that decodes the same.
			again, err := Decode(AppendEncode(nil, p))
			if err != nil {
				t.Fatalf("re-decode: %v", err)
			}
			if len(again.Keys) != len(p.Keys) || len(again.Rows) != len(p.Rows) || again.RowsMatched != p.RowsMatched {
				t.Fatalf("re-decode changed the partial")
			}
			for g := range p.States {
				for i, s := range p.States[g] {
					a, b := s.Result(), again.States[g][i].Result()
					if plan.Compare(a, b) != 0 && !(a.Kind == plan.KindFloat && math.IsNaN(a.F)) {
						t.Fatalf("group %d state %d: %v became %v", g, i, a, b)
					}
				}
			}
		}
	})
}

// TestWriteFuzzSeeds keeps the seed corpus in testdata up to date when run with
// -rewrite-seeds.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("REEF_REWRITE_SEEDS") == "" {
		t.Skip("set REEF_REWRITE_SEEDS=1 to rewrite testdata/fuzz/FuzzDecode")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := map[string][]byte{
		"empty":     AppendEncode(nil, &Partial{}),
		"groups":    AppendEncode(nil, testPartial(5, 1)),
		"sample":    AppendEncode(nil, &Partial{Columns: []string{"time", "s"}, Rows: [][]plan.Value{{plan.Int(5), plan.String("a")}, {plan.Int(4), plan.Null()}}}),
		"truncated": AppendEncode(nil, &Partial{Truncated: true, LeavesTotal: 4, LeavesResponded: 3, RowsInRange: 1 << 40}),
	}
	for name, data := range seeds {
		content := "go test fuzz v1\n[]byte(" + quoteBytes(data) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func quoteBytes(b []byte) string {
	const hex = "0123456789abcdef"
	out := []byte{'"'}
	for _, c := range b {
		out = append(out, '\\', 'x', hex[c>>4], hex[c&15])
	}
	return string(append(out, '"'))
}
