package shm

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"

	"github.com/reef-db/reef/block"
)

func TestExportArrowIPC(t *testing.T) {
	for name, b := range map[string]*block.Block{"mixed": mixedBlock(t, 12, 700), "hand": handBlock(t)} {
		t.Run(name, func(t *testing.T) {
			defer b.Release()
			// Export the mapped block, as reef dump does.
			fi, err := WriteBlock(t.TempDir(), b)
			if err != nil {
				t.Fatal(err)
			}
			mapped, err := OpenBlock(fi.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer mapped.Release()
			var buf bytes.Buffer
			if err := ExportArrowIPC(mapped, &buf); err != nil {
				t.Fatal(err)
			}

			r, err := ipc.NewFileReader(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.NumRecords() != 1 {
				t.Fatalf("%d records, want 1", r.NumRecords())
			}
			rec, err := r.Record(0)
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := rec.Schema().Metadata().GetValue("reef.table"); v != b.Table {
				t.Errorf("reef.table = %q", v)
			}
			if int(rec.NumRows()) != b.Rows || int(rec.NumCols()) != len(b.Columns) {
				t.Fatalf("record %d×%d, block %d×%d", rec.NumRows(), rec.NumCols(), b.Rows, len(b.Columns))
			}
			for i := range b.Columns {
				want := &b.Columns[i]
				got := block.Column{Name: rec.ColumnName(i), Type: want.Type, Arr: rec.Column(i)}
				if got.Name != want.Name {
					t.Fatalf("column %d named %q, want %q", i, got.Name, want.Name)
				}
				if want.Type == block.TypeInt && got.Arr.DataType().ID() != arrow.INT64 {
					t.Errorf("column %q exported as %v, want int64", want.Name, got.Arr.DataType())
				}
				for row := range b.Rows {
					if g, w := got.Value(row), want.Value(row); !reflect.DeepEqual(g, w) {
						t.Fatalf("column %q row %d: %#v, want %#v", want.Name, row, g, w)
					}
				}
			}
		})
	}
}

func TestExportNarrowedValues(t *testing.T) {
	b := buildBlock(t, "t", 1, []testCol{
		{"time", block.TypeInt, []any{int64(-300), int64(-100), int64(-299)}},
		{"n", block.TypeInt, []any{nil, int64(1 << 20), int64(5)}},
	})
	defer b.Release()
	var buf bytes.Buffer
	if err := ExportArrowIPC(b, &buf); err != nil {
		t.Fatal(err)
	}
	r, err := ipc.NewFileReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.Record(0)
	if err != nil {
		t.Fatal(err)
	}
	tm := rec.Column(0).(*array.Int64)
	if got := tm.Int64Values(); !reflect.DeepEqual(got, []int64{-300, -100, -299}) {
		t.Errorf("time = %v", got)
	}
	n := rec.Column(1).(*array.Int64)
	if !n.IsNull(0) || n.Value(1) != 1<<20 || n.Value(2) != 5 {
		t.Errorf("n = %v", n)
	}
}
