package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// Span is a run of lines From..To (1-based, inclusive) of the batch logged as record
// Seq.
type Span struct {
	Seq      uint64
	From, To uint32
}

// Coverage lists the lines of logged batches whose rows one block holds: the rows a
// replay must not add again while the block exists. Lines of a batch that were
// rejected, or went into another block, are not in it. The zero value is empty.
type Coverage struct {
	Spans []Span // in the order the lines went in
	min   uint64 // smallest Seq, 0 when empty
}

// MaxSpans bounds the spans of one coverage: a block holds at most 65,536 rows and
// each span at least one.
const MaxSpans = 1 << 16

// Add records that line of record seq went into the block. Lines of one record must
// be added in increasing order; lines of different records may interleave.
func (c *Coverage) Add(seq uint64, line int) {
	if n := len(c.Spans); n > 0 {
		if s := &c.Spans[n-1]; s.Seq == seq && int(s.To)+1 == line {
			s.To++
			return
		}
	}
	c.Spans = append(c.Spans, Span{Seq: seq, From: uint32(line), To: uint32(line)})
	if c.min == 0 || seq < c.min {
		c.min = seq
	}
}

// MinSeq is the smallest sequence number the coverage refers to, or 0 when empty.
func (c *Coverage) MinSeq() uint64 { return c.min }

// Lines is the number of lines covered.
func (c *Coverage) Lines() int64 {
	var n int64
	for _, s := range c.Spans {
		n += int64(s.To-s.From) + 1
	}
	return n
}

// Reset empties the coverage, keeping its memory.
func (c *Coverage) Reset() {
	c.Spans = c.Spans[:0]
	c.min = 0
}

// Clone returns a copy that shares no memory with c.
func (c *Coverage) Clone() Coverage {
	return Coverage{Spans: append([]Span(nil), c.Spans...), min: c.min}
}

// Cover file layout (version 1), all integers little-endian:
//
//	offset  size  field
//	0       8     magic "REEF-COV"
//	8       4     u32 layout version (1)
//	12      4     u32 span count N (≤ MaxSpans)
//	16      8     u64 block id
//	24      16×N  spans: u64 seq (≥ 1), u32 from (≥ 1), u32 to (≥ from)
//	24+16N  4     u32 crc32c (Castagnoli) of bytes [0, 24+16N)
const (
	coverMagic     = "REEF-COV"
	coverHeaderLen = 24
	coverSpanLen   = 16
)

// AppendCover appends the cover file of block id with coverage c to dst.
func AppendCover(dst []byte, id uint64, c *Coverage) []byte {
	start := len(dst)
	dst = append(dst, coverMagic...)
	dst = binary.LittleEndian.AppendUint32(dst, LayoutVersion)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(c.Spans)))
	dst = binary.LittleEndian.AppendUint64(dst, id)
	for _, s := range c.Spans {
		dst = binary.LittleEndian.AppendUint64(dst, s.Seq)
		dst = binary.LittleEndian.AppendUint32(dst, s.From)
		dst = binary.LittleEndian.AppendUint32(dst, s.To)
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// ErrBadCover wraps every error about a damaged cover file.
var ErrBadCover = errors.New("damaged cover file")

// DecodeCover parses a cover file and returns its block id and coverage. It never
// panics; a damaged file is an error wrapping ErrBadCover.
func DecodeCover(data []byte) (uint64, Coverage, error) {
	fail := func(format string, args ...any) (uint64, Coverage, error) {
		return 0, Coverage{}, fmt.Errorf("%w: %s", ErrBadCover, fmt.Sprintf(format, args...))
	}
	if len(data) < coverHeaderLen+4 {
		return fail("%d bytes is too short", len(data))
	}
	if string(data[:8]) != coverMagic {
		return fail("bad magic %q", data[:8])
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != LayoutVersion {
		return fail("layout version %d, this build reads %d", v, LayoutVersion)
	}
	n := int(binary.LittleEndian.Uint32(data[12:]))
	if n > MaxSpans {
		return fail("%d spans, limit %d", n, MaxSpans)
	}
	if want := coverHeaderLen + coverSpanLen*n + 4; len(data) != want {
		return fail("%d bytes, %d spans need %d", len(data), n, want)
	}
	body := data[:len(data)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(data[len(body):]); got != want {
		return fail("checksum %08x, file says %08x", got, want)
	}
	id := binary.LittleEndian.Uint64(data[16:])
	c := Coverage{Spans: make([]Span, n)}
	for i := range c.Spans {
		p := data[coverHeaderLen+coverSpanLen*i:]
		s := Span{Seq: binary.LittleEndian.Uint64(p), From: binary.LittleEndian.Uint32(p[8:]), To: binary.LittleEndian.Uint32(p[12:])}
		if s.Seq == 0 || s.From == 0 || s.To < s.From {
			return fail("span %d (seq %d, lines %d..%d) is not valid", i, s.Seq, s.From, s.To)
		}
		c.Spans[i] = s
		if c.min == 0 || s.Seq < c.min {
			c.min = s.Seq
		}
	}
	return id, c, nil
}

// maxCoverFile bounds what ReadCoverFile reads.
const maxCoverFile = coverHeaderLen + coverSpanLen*MaxSpans + 4

// WriteCoverFile writes the cover file of block id to path: to a temporary file
// named with the prefix ".tmp-" in the same directory, renamed into place; with
// sync, the file and the directory are fsynced too.
func WriteCoverFile(path string, id uint64, c *Coverage, sync bool) error {
	fail := func(err error) error { return fmt.Errorf("cannot write cover file %s: %w", path, err) }
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fail(err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(AppendCover(nil, id, c)); err != nil {
		return fail(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	done = true
	if sync {
		if err := syncDir(dir); err != nil {
			return fail(err)
		}
	}
	return nil
}

// ReadCoverFile reads and checks the cover file at path.
func ReadCoverFile(path string) (uint64, Coverage, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, Coverage{}, fmt.Errorf("cannot read cover file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCoverFile+1))
	if err != nil {
		return 0, Coverage{}, fmt.Errorf("cannot read cover file %s: %w", path, err)
	}
	id, c, err := DecodeCover(data)
	if err != nil {
		return 0, Coverage{}, fmt.Errorf("cannot read cover file %s: %w", path, err)
	}
	return id, c, nil
}
