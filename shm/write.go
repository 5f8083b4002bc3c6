package shm

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/golang/snappy"

	"github.com/reef-db/reef/block"
)

// FileInfo describes a block file just written.
type FileInfo struct {
	Path string // full path of the file
	ID   uint64
	// Size is the length of the file: the layout itself for a shm file, the
	// compressed length for a disk copy.
	Size int64
	// CRC32C is the layout's file checksum (the trailer's), the same for the shm
	// file and the disk copy of one block.
	CRC32C     uint32
	Rows       int
	Table      string
	MinTime    int64
	MaxTime    int64
	SchemaHash uint64
}

// ManifestBlock is the manifest entry for the file.
func (fi FileInfo) ManifestBlock() ManifestBlock {
	return ManifestBlock{
		File: filepath.Base(fi.Path), Size: fi.Size, Rows: fi.Rows, SchemaHash: fi.SchemaHash,
		CRC32C: fi.CRC32C, Table: fi.Table, MinTime: fi.MinTime, MaxTime: fi.MaxTime,
	}
}

// Writer writes block files. The zero Writer suits tmpfs (/dev/shm), where fsync
// means nothing.
type Writer struct {
	// Sync makes every write fsync the file before the rename and the directory
	// after it, so the file survives a machine crash once the call returns.
	Sync bool
}

// WriteBlock writes b to dir/FileName(b.ID) without fsync; see Writer.WriteBlock.
func WriteBlock(dir string, b *block.Block) (FileInfo, error) {
	return Writer{}.WriteBlock(dir, b)
}

// WriteCompressed writes the disk copy of b with fsync; see Writer.WriteCompressed.
func WriteCompressed(dir string, b *block.Block) (FileInfo, error) {
	return Writer{Sync: true}.WriteCompressed(dir, b)
}

// WriteBlock writes b in the block file layout to dir/FileName(b.ID): to a temporary
// file first, renamed into place once complete, so the name never shows a partial
// file. An existing file of that name is replaced. The block must not change during
// the call; it stays owned by the caller.
func (w Writer) WriteBlock(dir string, b *block.Block) (FileInfo, error) {
	return w.write(dir, FileName(b.ID), b, false)
}

// WriteCompressed writes the disk copy of b to dir/CompressedFileName(b.ID): the
// bytes of the block file layout in the snappy framing format (the format of
// snappy.NewBufferedWriter: a stream identifier, then chunks of at most 64 KiB, each
// with a masked crc32c of its uncompressed bytes). It is written like WriteBlock.
func (w Writer) WriteCompressed(dir string, b *block.Block) (FileInfo, error) {
	return w.write(dir, CompressedFileName(b.ID), b, true)
}

func (w Writer) write(dir, name string, b *block.Block, compressed bool) (FileInfo, error) {
	p, err := planBlock(b)
	if err != nil {
		return FileInfo{}, fmt.Errorf("cannot write block %d of %q: %w", b.ID, b.Table, err)
	}
	path := filepath.Join(dir, name)
	fail := func(err error) (FileInfo, error) {
		return FileInfo{}, fmt.Errorf("cannot write block file %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, tempPrefix+name+"-*")
	if err != nil {
		return fail(err)
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	var crc uint32
	if compressed {
		sw := snappy.NewBufferedWriter(f)
		if crc, err = p.writeTo(sw); err == nil {
			err = sw.Close()
		}
	} else {
		bw := bufio.NewWriterSize(f, 1<<16)
		if crc, err = p.writeTo(bw); err == nil {
			err = bw.Flush()
		}
	}
	if err != nil {
		return fail(err)
	}
	size := p.size
	if compressed {
		if size, err = f.Seek(0, io.SeekCurrent); err != nil {
			return fail(err)
		}
	}
	if w.Sync {
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
	committed = true
	if w.Sync {
		if err := syncDir(dir); err != nil {
			return fail(err)
		}
	}
	return FileInfo{
		Path: path, ID: b.ID, Size: size, CRC32C: crc, Rows: b.Rows, Table: b.Table,
		MinTime: b.MinTime, MaxTime: b.MaxTime, SchemaHash: SchemaHash(b),
	}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot sync directory %s: %w", dir, err)
	}
	return nil
}

// blockPlan is a block laid out for writing: its header bytes and, in file order,
// its buffers with their offsets.
type blockPlan struct {
	header []byte
	bufs   [][]byte
	offs   []int64
	size   int64 // file length F
}

// planBlock checks b and lays it out. Every check the reader makes is made here, so
// a file that was written can be opened.
func planBlock(b *block.Block) (*blockPlan, error) {
	if b.Rows < 1 || b.Rows > block.MaxRows {
		return nil, fmt.Errorf("%d rows, want 1..%d", b.Rows, block.MaxRows)
	}
	if len(b.Table) > maxNameLen {
		return nil, fmt.Errorf("table name is %d bytes, limit %d", len(b.Table), maxNameLen)
	}
	if len(b.Columns) > MaxColumns {
		return nil, fmt.Errorf("%d columns, limit %d", len(b.Columns), MaxColumns)
	}
	nodes := make([]*node, len(b.Columns))
	for i := range b.Columns {
		c := &b.Columns[i]
		if c.Arr == nil {
			return nil, fmt.Errorf("column %q has no array", c.Name)
		}
		nd, err := nodeOf(c.Arr.Data())
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		nodes[i] = nd
	}
	if err := checkColumns(b, nodes, false); err != nil {
		return nil, err
	}

	p := &blockPlan{}
	// The header's length does not depend on the offsets in it: encode once to
	// learn it, place the buffers after it, encode again with their offsets.
	hlen := int64(len(encodeHeader(b, nodes, 0)))
	end := hlen
	var place func(nd *node)
	place = func(nd *node) {
		for i := range numBuffers(nd.typ) {
			if len(nd.bufs[i]) == 0 {
				nd.off[i] = 0
				continue
			}
			nd.off[i] = alignUp(end)
			end = nd.off[i] + int64(len(nd.bufs[i]))
			p.bufs = append(p.bufs, nd.bufs[i])
			p.offs = append(p.offs, nd.off[i])
		}
		if nd.sub != nil {
			place(nd.sub)
		}
	}
	for _, nd := range nodes {
		place(nd)
	}
	p.size = end + trailerLen
	if p.size > MaxFileSize {
		return nil, fmt.Errorf("block file would be %d bytes, limit %d", p.size, int64(MaxFileSize))
	}
	p.header = encodeHeader(b, nodes, p.size)
	return p, nil
}

// checkColumns checks what the reader checks of a block beyond single arrays:
// shapes, lengths, stats, unique names and the time column. With layoutOnly it reads
// no buffer (node.checkLayout instead of node.check).
func checkColumns(b *block.Block, nodes []*node, layoutOnly bool) error {
	// Names are compared pairwise up to a few dozen columns (a start checks
	// thousands of blocks, and a map per block costs more), through a map beyond.
	var seen map[string]struct{}
	if len(b.Columns) > 32 {
		seen = make(map[string]struct{}, len(b.Columns))
	}
	for i := range b.Columns {
		c, nd := &b.Columns[i], nodes[i]
		if len(c.Name) > maxNameLen {
			return fmt.Errorf("column name is %d bytes, limit %d", len(c.Name), maxNameLen)
		}
		dup := false
		if seen != nil {
			_, dup = seen[c.Name]
			seen[c.Name] = struct{}{}
		} else {
			for j := range i {
				dup = dup || b.Columns[j].Name == c.Name
			}
		}
		if dup {
			return fmt.Errorf("column %q appears twice", c.Name)
		}
		if err := checkShape(c.Type, nd); err != nil {
			return fmt.Errorf("column %q: %w", c.Name, err)
		}
		if nd.n != b.Rows {
			return fmt.Errorf("column %q has %d rows, block has %d", c.Name, nd.n, b.Rows)
		}
		if c.Stats.Nulls != nd.nulls {
			return fmt.Errorf("column %q: stats say %d nulls, array has %d", c.Name, c.Stats.Nulls, nd.nulls)
		}
		if len(c.Stats.MinS) > maxStatLen || len(c.Stats.MaxS) > maxStatLen {
			return fmt.Errorf("column %q: string stats longer than %d bytes", c.Name, maxStatLen)
		}
		var err error
		if layoutOnly {
			err = nd.checkLayout(true)
		} else {
			err = nd.check()
		}
		if err != nil {
			return fmt.Errorf("column %q: %w", c.Name, err)
		}
	}
	return checkTime(b)
}

// checkTime checks that the block's time column exists, is an int column without
// nulls, and agrees with the block's time range.
func checkTime(b *block.Block) error {
	tc := b.Column(block.TimeColumn)
	if tc == nil || tc.Type != block.TypeInt || tc.Stats.Nulls != 0 || !tc.Stats.HasMinMax {
		return fmt.Errorf("no integer %q column without nulls", block.TimeColumn)
	}
	if b.MinTime > b.MaxTime || tc.Stats.MinI != b.MinTime || tc.Stats.MaxI != b.MaxTime {
		return fmt.Errorf("time range [%d,%d] disagrees with the time column's [%d,%d]",
			b.MinTime, b.MaxTime, tc.Stats.MinI, tc.Stats.MaxI)
	}
	return nil
}

// encodeHeader encodes the header (see the package comment) including its CRC.
// Node buffer offsets are taken from the nodes.
func encodeHeader(b *block.Block, nodes []*node, fileLen int64) []byte {
	e := &enc{b: make([]byte, 0, 256+64*len(nodes))}
	e.b = append(e.b, blockMagic...)
	e.u32(LayoutVersion)
	e.u32(0) // header length, patched below
	e.u64(uint64(fileLen))
	e.u64(b.ID)
	e.i64(b.MinTime)
	e.i64(b.MaxTime)
	e.u32(uint32(b.Rows))
	e.u32(uint32(len(b.Columns)))
	e.u32(uint32(len(b.Table)))
	e.u32(0)
	e.b = append(e.b, b.Table...)
	for i := range b.Columns {
		c := &b.Columns[i]
		e.str16(c.Name)
		e.u8(uint8(c.Type))
		var flags uint8
		if c.Stats.HasMinMax {
			flags |= 1
		}
		e.u8(flags)
		e.u16(0)
		e.u32(uint32(c.Stats.Nulls))
		e.i64(c.Base)
		switch c.Type {
		case block.TypeInt:
			e.i64(c.Stats.MinI)
			e.i64(c.Stats.MaxI)
		case block.TypeFloat:
			e.u64(math.Float64bits(c.Stats.MinF))
			e.u64(math.Float64bits(c.Stats.MaxF))
		case block.TypeString:
			e.str32(c.Stats.MinS)
			e.str32(c.Stats.MaxS)
		}
		encodeNode(e, nodes[i])
	}
	binary.LittleEndian.PutUint32(e.b[12:], uint32(len(e.b)+4))
	e.u32(crc32.Checksum(e.b, castagnoli))
	return e.b
}

func encodeNode(e *enc, nd *node) {
	e.u8(nd.typ)
	e.u8(nd.idx)
	e.u16(0)
	e.u32(uint32(nd.n))
	e.u32(uint32(nd.nulls))
	for i := range numBuffers(nd.typ) {
		e.u64(uint64(nd.off[i]))
		e.u64(uint64(len(nd.bufs[i])))
	}
	if nd.sub != nil {
		encodeNode(e, nd.sub)
	}
}

// crcWriter passes writes on and keeps their crc32c and length.
type crcWriter struct {
	w   io.Writer
	crc uint32
	n   int64
}

func (c *crcWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.crc = crc32.Update(c.crc, castagnoli, p[:n])
	c.n += int64(n)
	return n, err
}

var zeros [bufAlign]byte

// writeTo writes the whole file and returns its checksum.
func (p *blockPlan) writeTo(w io.Writer) (uint32, error) {
	cw := &crcWriter{w: w}
	if _, err := cw.Write(p.header); err != nil {
		return 0, err
	}
	for i, buf := range p.bufs {
		if pad := p.offs[i] - cw.n; pad > 0 {
			if _, err := cw.Write(zeros[:pad]); err != nil {
				return 0, err
			}
		}
		if _, err := cw.Write(buf); err != nil {
			return 0, err
		}
	}
	if cw.n != p.size-trailerLen {
		panic(fmt.Sprintf("BUG: shm block layout wrote %d bytes, planned %d", cw.n, p.size-trailerLen))
	}
	var tr [trailerLen]byte
	binary.LittleEndian.PutUint32(tr[:], cw.crc)
	copy(tr[4:], trailerMagic)
	if _, err := w.Write(tr[:]); err != nil {
		return 0, err
	}
	return cw.crc, nil
}
