package bench

import (
	"errors"
	"strconv"

	"github.com/reef-db/reef/testbench"
)

// BatchColumn is the column every row of a bench load carries: the number of the
// batch it was sent in, so that a query can count the rows of each batch.
const BatchColumn = "batch"

// maxPoolRows bounds a row pool: about 140 bytes a row, so at most ~140 MB.
const maxPoolRows = 1 << 20

// rowPool holds generated events as NDJSON lines, encoded once before a run so that
// the load costs its sender only copying. Line i is data[ends[i-1]:ends[i]] (from 0
// for i = 0), without its closing "}\n", so that a field can be added to it.
type rowPool struct {
	data []byte
	ends []int
}

// newRowPool generates cfg's events into a pool.
func newRowPool(cfg testbench.GenConfig) (*rowPool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Rows < 1 || cfg.Rows > maxPoolRows {
		return nil, errors.New("cannot make a row pool: rows must be between 1 and " + strconv.Itoa(maxPoolRows))
	}
	p := &rowPool{data: make([]byte, 0, cfg.Rows*140), ends: make([]int, 0, cfg.Rows)}
	for e := range testbench.Events(cfg) {
		p.data = testbench.AppendNDJSON(p.data, &e)
		p.data = p.data[:len(p.data)-2] // drop "}\n"
		p.ends = append(p.ends, len(p.data))
	}
	return p, nil
}

// rows returns the number of lines in the pool.
func (p *rowPool) rows() int { return len(p.ends) }

// line returns line i (mod the pool size), without its closing "}\n".
func (p *rowPool) line(i int) []byte {
	i %= len(p.ends)
	start := 0
	if i > 0 {
		start = p.ends[i-1]
	}
	return p.data[start:p.ends[i]]
}

// appendBatch appends batch number batch to dst: n lines starting at pool line
// first (wrapping around), each with the field "batch":<batch> added, e.g.
//
//	{"time":1700000000,"service":"svc-03",…,"bytes":5120,"batch":17}
func (p *rowPool) appendBatch(dst []byte, first, n int, batch int64) []byte {
	var suffix [32]byte
	s := append(suffix[:0], `,"`+BatchColumn+`":`...)
	s = strconv.AppendInt(s, batch, 10)
	s = append(s, "}\n"...)
	for k := range n {
		dst = append(dst, p.line(first+k)...)
		dst = append(dst, s...)
	}
	return dst
}
