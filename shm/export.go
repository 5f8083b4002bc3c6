package shm

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/reef-db/reef/block"
)

// ExportArrowIPC writes b to w as a standard Arrow IPC file (one record batch) that
// other tools can read. Integer columns are written as int64 with Base applied;
// float, string (dictionary or plain) and set (list) columns as they are held. The
// schema metadata carries reef.table, reef.block_id, reef.min_time and
// reef.max_time. w need not be seekable.
func ExportArrowIPC(b *block.Block, w io.Writer) error {
	fields := make([]arrow.Field, len(b.Columns))
	cols := make([]arrow.Array, 0, len(b.Columns))
	defer func() {
		for _, a := range cols {
			a.Release()
		}
	}()
	for i := range b.Columns {
		c := &b.Columns[i]
		a, err := exportArray(c)
		if err != nil {
			return fmt.Errorf("cannot export block %d of %q: column %q: %w", b.ID, b.Table, c.Name, err)
		}
		cols = append(cols, a)
		fields[i] = arrow.Field{Name: c.Name, Type: a.DataType(), Nullable: true}
	}
	md := arrow.NewMetadata(
		[]string{"reef.table", "reef.block_id", "reef.min_time", "reef.max_time"},
		[]string{b.Table, strconv.FormatUint(b.ID, 10), strconv.FormatInt(b.MinTime, 10), strconv.FormatInt(b.MaxTime, 10)})
	schema := arrow.NewSchema(fields, &md)
	rec := array.NewRecord(schema, cols, int64(b.Rows))
	defer rec.Release()
	fw, err := ipc.NewFileWriter(&posWriter{w: w}, ipc.WithSchema(schema))
	if err != nil {
		return fmt.Errorf("cannot export block %d of %q: %w", b.ID, b.Table, err)
	}
	if err := fw.Write(rec); err != nil {
		fw.Close()
		return fmt.Errorf("cannot export block %d of %q: %w", b.ID, b.Table, err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("cannot export block %d of %q: %w", b.ID, b.Table, err)
	}
	return nil
}

// exportArray returns the column's array as written by ExportArrowIPC; the caller
// releases it.
func exportArray(c *block.Column) (arrow.Array, error) {
	if c.Arr == nil {
		return nil, errors.New("no array")
	}
	if c.Type != block.TypeInt {
		c.Arr.Retain()
		return c.Arr, nil
	}
	if c.Arr.DataType().ID() == arrow.INT64 && c.Base == 0 {
		c.Arr.Retain()
		return c.Arr, nil
	}
	bld := array.NewInt64Builder(memory.DefaultAllocator)
	defer bld.Release()
	bld.Reserve(c.Arr.Len())
	for i := range c.Arr.Len() {
		if c.Arr.IsNull(i) {
			bld.UnsafeAppendBoolToBitmap(false)
		} else {
			bld.UnsafeAppend(c.Int(i))
		}
	}
	return bld.NewArray(), nil
}

// posWriter gives ipc.FileWriter the one Seek it makes (to learn the current
// position) over a plain io.Writer.
type posWriter struct {
	w   io.Writer
	pos int64
}

func (p *posWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.pos += int64(n)
	return n, err
}

func (p *posWriter) Seek(offset int64, whence int) (int64, error) {
	if offset != 0 || whence != io.SeekCurrent {
		return 0, errors.New("cannot seek: only the current position is known")
	}
	return p.pos, nil
}
