package block

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
)

type testRow map[string]any

func buildRows(t *testing.T, rows []testRow) *Block {
	t.Helper()
	b := NewBuilder("t")
	for _, r := range rows {
		b.BeginRow()
		for name, v := range r {
			i, _ := b.ColumnIndex(name)
			typ := map[string]Type{"int64": TypeInt, "float64": TypeFloat, "string": TypeString, "[]string": TypeSet}[fmt.Sprintf("%T", v)]
			if i < 0 {
				var err error
				if i, err = b.AddColumn(name, typ); err != nil {
					t.Fatal(err)
				}
			}
			switch v := v.(type) {
			case int64:
				b.SetInt(i, v)
			case float64:
				b.SetFloat(i, v)
			case string:
				b.SetString(i, []byte(v))
			case []string:
				b.MarkSet(i)
				for _, e := range v {
					b.AppendSetElem(i, []byte(e))
				}
			}
		}
		b.EndRow()
	}
	blk, err := b.Build(7)
	if err != nil {
		t.Fatal(err)
	}
	return blk
}

func TestBuilderRoundTrip(t *testing.T) {
	rows := []testRow{
		{"time": int64(1000), "n": int64(-5), "s": "a", "tags": []string{"x", "y"}},
		{"time": int64(1003), "f": 1.5, "s": "b", "tags": []string{}},
		{"time": int64(1001), "n": int64(300), "s": "a"},
		{"time": int64(1002), "n": int64(math.MaxInt64), "big": int64(math.MinInt64)},
	}
	blk := buildRows(t, rows)
	defer blk.Release()
	if blk.Rows != 4 || blk.MinTime != 1000 || blk.MaxTime != 1003 || blk.ID != 7 {
		t.Fatalf("block meta = rows %d time [%d,%d] id %d", blk.Rows, blk.MinTime, blk.MaxTime, blk.ID)
	}
	for i, r := range rows {
		for _, c := range blk.Columns {
			got := c.Value(i)
			want, ok := r[c.Name]
			if !ok {
				want = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("row %d column %s = %#v, want %#v", i, c.Name, got, want)
			}
		}
	}
	if c := blk.Column("time"); c.Arr.DataType().ID() != arrow.UINT8 || c.Base != 1000 {
		t.Errorf("time column not narrowed: %v base %d", c.Arr.DataType(), c.Base)
	}
	if c := blk.Column("n"); c.Arr.DataType().ID() != arrow.INT64 || c.Stats.MinI != -5 || c.Stats.Nulls != 1 {
		t.Errorf("n column: %v stats %+v", c.Arr.DataType(), c.Stats)
	}
	if c := blk.Column("s"); c.Arr.DataType().ID() != arrow.DICTIONARY || c.Stats.MinS != "a" || c.Stats.MaxS != "b" || c.Stats.Nulls != 1 {
		t.Errorf("s column: %v stats %+v", c.Arr.DataType(), c.Stats)
	}
}

func TestBuilderAbortRowAndErrors(t *testing.T) {
	b := NewBuilder("t")
	if _, err := b.Build(1); err == nil {
		t.Fatal("empty build succeeded")
	}
	ti, _ := b.AddColumn("time", TypeInt)
	b.BeginRow()
	b.SetInt(ti, 5)
	b.EndRow()
	b.BeginRow()
	b.SetInt(ti, 6)
	si, _ := b.AddColumn("s", TypeString)
	b.SetString(si, []byte("gone"))
	b.AbortRow()
	blk, err := b.Build(1)
	if err != nil {
		t.Fatal(err)
	}
	if blk.Rows != 1 || blk.Column("s").Value(0) != nil || blk.Column("time").Value(0) != int64(5) {
		t.Fatalf("abort left rows=%d s=%v", blk.Rows, blk.Column("s").Value(0))
	}
	nb := NewBuilder("t")
	si, _ = nb.AddColumn("s", TypeString)
	nb.BeginRow()
	nb.SetString(si, []byte("x"))
	nb.EndRow()
	if _, err := nb.Build(1); err == nil {
		t.Fatal("block without time built")
	}
}

func TestNarrowing(t *testing.T) {
	for _, tc := range []struct {
		lo, hi int64
		want   arrow.Type
	}{
		{0, 255, arrow.UINT8}, {-10, 245, arrow.UINT8}, {0, 256, arrow.UINT16},
		{1700000000, 1700086400, arrow.UINT32}, {0, 1 << 40, arrow.INT64},
	} {
		blk := buildRows(t, []testRow{{"time": tc.lo}, {"time": tc.hi}})
		c := blk.Column("time")
		if c.Arr.DataType().ID() != tc.want || c.Int(0) != tc.lo || c.Int(1) != tc.hi {
			t.Errorf("[%d,%d]: %v values %d %d", tc.lo, tc.hi, c.Arr.DataType(), c.Int(0), c.Int(1))
		}
		blk.Release()
	}
}

// TestDictionaryCodes stores many distinct short and long values, repeated, and
// checks that equal values get one code and different values different codes.
func TestDictionaryCodes(t *testing.T) {
	c := &colBuilder{typ: TypeString, dictIx: map[string]uint32{}}
	codes := map[string]uint32{}
	for round := range 3 {
		for i := range 5000 {
			v := fmt.Sprintf("h-%d", i)
			if i%7 == 0 {
				v = fmt.Sprintf("a-much-longer-value-%d", i)
			}
			if i%11 == 0 {
				v = v[:0] // the empty string, many times
			}
			k := c.code([]byte(v))
			if want, ok := codes[v]; ok && want != k {
				t.Fatalf("round %d: %q got code %d, earlier %d", round, v, k, want)
			}
			codes[v] = k
			if c.dict[k] != v {
				t.Fatalf("code %d of %q holds %q", k, v, c.dict[k])
			}
		}
	}
	if len(c.dict) != len(codes) {
		t.Errorf("%d dictionary entries for %d distinct values", len(c.dict), len(codes))
	}
}

// TestBuilderRowsRandom builds rows at random — columns set or not (in rounds with
// no nulls, few or many, for the validity kept only from a column's first null),
// columns added
// mid-block and mid-row, sets, duplicates refused through IsSet, rows aborted half
// way — and checks every cell of the block against a plain model of the rows kept.
func TestBuilderRowsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 60 {
		// No nulls at all, a first null late in the block, or many.
		nullOneIn := []int{0, 150, 3}[round%3]
		b := NewBuilder("t")
		ti, _ := b.AddColumn("time", TypeInt)
		names := []string{"time"}
		types := []Type{TypeInt}
		var model []map[string]any
		for r := range 200 + rng.IntN(300) {
			if rng.IntN(20) == 0 && len(names) < 8 {
				typ := []Type{TypeInt, TypeFloat, TypeString, TypeSet}[rng.IntN(4)]
				name := fmt.Sprintf("c%d", len(names))
				if _, err := b.AddColumn(name, typ); err != nil {
					t.Fatal(err)
				}
				names, types = append(names, name), append(types, typ)
			}
			row := map[string]any{}
			b.BeginRow()
			b.SetInt(ti, int64(r))
			row["time"] = int64(r)
			for i := 1; i < len(names); i++ {
				if nullOneIn > 0 && rng.IntN(nullOneIn) == 0 {
					continue // null
				}
				if b.IsSet(i) {
					t.Fatalf("round %d row %d: column %d set before its value", round, r, i)
				}
				switch types[i] {
				case TypeInt:
					v := rng.Int64N(1000) - 500
					b.SetInt(i, v)
					row[names[i]] = v
				case TypeFloat:
					v := float64(rng.IntN(1000)) / 4
					b.SetFloat(i, v)
					row[names[i]] = v
				case TypeString:
					v := fmt.Sprintf("v%d", rng.IntN(50))
					b.SetString(i, []byte(v))
					row[names[i]] = v
				case TypeSet:
					elems := []string{}
					b.MarkSet(i)
					for range rng.IntN(3) {
						e := fmt.Sprintf("e%d", rng.IntN(5))
						b.AppendSetElem(i, []byte(e))
						elems = append(elems, e)
					}
					row[names[i]] = elems
				}
				if !b.IsSet(i) {
					t.Fatalf("round %d row %d: column %d not set after its value", round, r, i)
				}
			}
			if rng.IntN(8) == 0 {
				b.AbortRow()
				continue
			}
			b.EndRow()
			model = append(model, row)
		}
		blk, err := b.Build(1)
		if err != nil {
			t.Fatal(err)
		}
		if blk.Rows != len(model) {
			t.Fatalf("round %d: %d rows, model %d", round, blk.Rows, len(model))
		}
		for r, want := range model {
			for _, name := range names {
				got := blk.Column(name).Value(r)
				w, ok := want[name]
				if !ok {
					w = nil
				}
				if !reflect.DeepEqual(got, w) {
					t.Fatalf("round %d row %d column %s: %#v, want %#v", round, r, name, got, w)
				}
			}
		}
		blk.Release()
	}
}
