package shm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/golang/snappy"
	"golang.org/x/sys/unix"

	"github.com/reef-db/reef/block"
)

// OpenBlock maps the block file at path read-only and returns its block, whose
// arrays point straight into the mapping. Opening reads the header and the
// validity, offset and dictionary index buffers (see the package comment), not the
// values; the file checksum is checked separately by VerifyBlock. Block.Release unmaps the file; the
// block must not be used, and none of its arrays or strings read, after that.
//
// The file must not be modified or truncated while it is mapped. A damaged file
// yields an error wrapping ErrCorrupt (or ErrVersion).
func OpenBlock(path string) (*block.Block, error) {
	b, _, err := openBlock(path)
	return b, err
}

// openBlock is OpenBlock, also returning the mapping.
func openBlock(path string) (*block.Block, []byte, error) {
	b, data, _, _, err := openBlockMode(unix.AT_FDCWD, "", path, false, nil)
	return b, data, err
}

// openBlockMode is openBlock of the file name in directory dir, which is open as
// dirfd (unix.AT_FDCWD: not open, the file is opened by its path), checking only
// the layout with layoutOnly (see decode) and then also returning the column nodes
// and the trailer's checksum (0 with layoutOnly: the trailer is not read then).
// With layoutOnly the header is read with pread, not through the mapping, whose
// pages cost a page fault each on first touch (measured at about 8 µs for a block
// file's first page on tmpfs, against 5 µs for the pread; the queries that read
// the pages pay that later), and no array is built: the caller runs checkNodesData
// and then buildArrays before the block is read.
//
// With layoutOnly, scr (not nil) holds the header read and the nodes returned,
// which are valid until scr is used again.
func openBlockMode(dirfd int, dir, name string, layoutOnly bool, scr *decodeScratch) (*block.Block, []byte, []*node, uint32, error) {
	path := func() string { return filepath.Join(dir, name) }
	if dirfd == unix.AT_FDCWD {
		name = path()
	}
	if !layoutOnly {
		data, err := mapFileAt(dirfd, name)
		if err != nil {
			return nil, nil, nil, 0, fmt.Errorf("cannot open block file %s: %w", path(), err)
		}
		b, nodes, err := decode(data, false)
		if err != nil {
			unix.Munmap(data)
			return nil, nil, nil, 0, fmt.Errorf("cannot open block file %s: %w", path(), err)
		}
		b.SetRelease(func() { unix.Munmap(data) })
		return b, data, nodes, binary.LittleEndian.Uint32(data[len(data)-trailerLen:]), nil
	}
	f, data, err := openMappedAt(dirfd, name)
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("cannot open block file %s: %w", path(), err)
	}
	defer f.Close()
	src, err := readEnds(f, data, &scr.head)
	src.scr = scr
	var b *block.Block
	var nodes []*node
	if err == nil {
		b, nodes, err = decodeSource(src, true)
	}
	if err != nil {
		unix.Munmap(data)
		return nil, nil, nil, 0, fmt.Errorf("cannot open block file %s: %w", path(), err)
	}
	b.SetRelease(func() { unix.Munmap(data) })
	return b, data, nodes, 0, nil
}

// decodeScratch is the memory a deferred open (openBlockMode with layoutOnly) needs
// only while it runs: the header read from the file and the array nodes parsed from
// it. A start opens thousands of blocks; with scratch from scratchPool it
// allocates little more than the blocks themselves. Nothing a block keeps points
// into it (names and string stats are copied out of the header, arrays are built
// over the file's bytes).
type decodeScratch struct {
	head  []byte
	slab  []node  // nodes handed out by headerReader.newNode
	nodes []*node // the column nodes
	names *nameCache
}

var scratchPool = sync.Pool{New: func() any {
	return &decodeScratch{head: make([]byte, headRead), slab: make([]node, 0, 64)}
}}

func getScratch(names *nameCache) *decodeScratch {
	scr := scratchPool.Get().(*decodeScratch)
	scr.names = names
	return scr
}

func putScratch(scr *decodeScratch) {
	scr.names = nil
	clear(scr.slab) // the nodes of the last decode: drop the file slices they held
	clear(scr.nodes)
	scratchPool.Put(scr)
}

// nameCache hands out one string per distinct column or table name, so that the
// thousands of blocks of a start share their names rather than copy each. It is
// safe for concurrent use and holds at most maxCachedNames names.
type nameCache struct {
	mu sync.Mutex
	m  map[string]string
}

const maxCachedNames = 1 << 14

func newNameCache() *nameCache { return &nameCache{m: make(map[string]string)} }

func (c *nameCache) get(b []byte) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(c.m) < maxCachedNames {
		c.m[s] = s
	}
	return s
}

// headRead is how much of a block file readEnds reads at first: the whole header of
// a block of up to a few dozen columns.
const headRead = 4096

// readEnds reads the header of the mapped file f with pread, into *buf (grown when
// the header is longer). The trailer is left to VerifyBlock, which reads the whole
// file.
func readEnds(f fileAt, data []byte, buf *[]byte) (blockSource, error) {
	src := blockSource{data: data}
	head := (*buf)[:min(len(data), headRead)]
	if _, err := f.ReadAt(head, 0); err != nil {
		return src, fmt.Errorf("cannot read header: %w", err)
	}
	if hlen := int(binary.LittleEndian.Uint32(head[12:])); hlen > len(head) && hlen <= len(data) {
		if cap(*buf) < hlen {
			*buf = make([]byte, hlen)
		}
		head = (*buf)[:hlen]
		if _, err := f.ReadAt(head, 0); err != nil {
			return src, fmt.Errorf("cannot read header: %w", err)
		}
	}
	src.head = head
	return src, nil
}

// buildArrays makes the Arrow arrays of a block's checked column nodes, over
// their buffers. A block decoded with layoutOnly has none until its data checks
// passed (checkNodesData): then nothing can read a buffer that was not checked.
// Every dictionary's values array is created here too, because array.Dictionary
// creates it lazily and unsynchronised on first use; afterwards reading the block
// writes nothing, so queries may share it.
func buildArrays(b *block.Block, nodes []*node) {
	for i := range b.Columns {
		b.Columns[i].Arr = buildArray(nodes[i])
	}
}

// checkNodesData runs node.checkData over the column nodes of a block decoded with
// layoutOnly.
func checkNodesData(b *block.Block, nodes []*node) error {
	for i, nd := range nodes {
		if err := nd.checkData(); err != nil {
			return fmt.Errorf("%w: column %q: %w", ErrCorrupt, b.Columns[i].Name, err)
		}
	}
	return nil
}

// OpenBlockVerified is OpenBlock followed by VerifyBlock, over one mapping, so that
// every page is read once: what a start that checks all of a block (after a crash)
// needs. It also returns the file checksum.
func OpenBlockVerified(path string) (*block.Block, uint32, error) {
	scr := getScratch(nil)
	defer putScratch(scr)
	b, data, nodes, _, err := openBlockMode(unix.AT_FDCWD, "", path, true, scr)
	if err != nil {
		return nil, 0, err
	}
	crc, err := uint32(0), checkNodesData(b, nodes)
	if err == nil {
		crc, err = verifyData(data)
	}
	if err != nil {
		b.Release()
		return nil, 0, fmt.Errorf("cannot open block file %s: %w", path, err)
	}
	buildArrays(b, nodes)
	return b, crc, nil
}

// VerifyBlock checks the file checksum of the block file at path over the whole
// file, and its length, magic and trailer. It maps the file rather than reading it
// into the heap, so verifying a file that is already open costs no memory.
func VerifyBlock(path string) error {
	_, err := verifyFile(path)
	return err
}

// verifyFile is VerifyBlock, returning the checksum.
func verifyFile(path string) (uint32, error) {
	data, err := mapFile(path)
	if err != nil {
		return 0, fmt.Errorf("cannot verify block file %s: %w", path, err)
	}
	defer unix.Munmap(data)
	crc, err := verifyData(data)
	if err != nil {
		return 0, fmt.Errorf("cannot verify block file %s: %w", path, err)
	}
	return crc, nil
}

// ReadBlockFile reads the block file at path into the heap and returns its block.
// Unlike OpenBlock it checks the file checksum, as it reads every byte anyway.
func ReadBlockFile(path string) (*block.Block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read block file %s: %w", path, err)
	}
	defer f.Close()
	fail := func(err error) (*block.Block, error) {
		return nil, fmt.Errorf("cannot read block file %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if st.Size() < minFileLen || st.Size() > MaxFileSize {
		return fail(fmt.Errorf("%w: file is %d bytes, want %d..%d", ErrCorrupt, st.Size(), minFileLen, int64(MaxFileSize)))
	}
	data := alignedBytes(int(st.Size()))
	if _, err := io.ReadFull(f, data); err != nil {
		return fail(err)
	}
	b, err := decodeVerified(data)
	if err != nil {
		return fail(err)
	}
	return b, nil
}

// maxSnappyRatio bounds how many bytes a byte of snappy stream can expand to (the
// format's best case is a 64-byte copy in 3 bytes); it caps what a damaged header
// may make ReadCompressed allocate.
const maxSnappyRatio = 32

// ReadCompressed reads the disk copy of a block (see Writer.WriteCompressed) into the
// heap and returns its block. Snappy chunk checksums and the file checksum are
// checked.
func ReadCompressed(path string) (*block.Block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read compressed block file %s: %w", path, err)
	}
	defer f.Close()
	fail := func(err error) (*block.Block, error) {
		return nil, fmt.Errorf("cannot read compressed block file %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	r := snappy.NewReader(f)
	var fixed [fixedHeaderLen]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return fail(fmt.Errorf("%w: cannot read header: %w", ErrCorrupt, err))
	}
	flen, err := checkFixed(fixed[:])
	if err != nil {
		return fail(err)
	}
	if limit := maxSnappyRatio*st.Size() + 1<<16; flen > limit {
		return fail(fmt.Errorf("%w: header says %d bytes, more than %d bytes of snappy can hold", ErrCorrupt, flen, st.Size()))
	}
	data := alignedBytes(int(flen))
	copy(data, fixed[:])
	if _, err := io.ReadFull(r, data[fixedHeaderLen:]); err != nil {
		return fail(fmt.Errorf("%w: cannot read %d bytes the header promises: %w", ErrCorrupt, flen, err))
	}
	if _, err := io.ReadFull(r, fixed[:1]); err != io.EOF {
		return fail(fmt.Errorf("%w: data after the %d bytes the header promises (%v)", ErrCorrupt, flen, err))
	}
	b, err := decodeVerified(data)
	if err != nil {
		return fail(err)
	}
	return b, nil
}

func decodeVerified(data []byte) (*block.Block, error) {
	if _, err := verifyData(data); err != nil {
		return nil, err
	}
	b, _, err := decode(data, false)
	return b, err
}

// mapFile maps the whole file read-only.
func mapFile(path string) ([]byte, error) { return mapFileAt(unix.AT_FDCWD, path) }

// mapFileAt is mapFile of the file name relative to the directory open as dirfd
// (see openMappedAt).
func mapFileAt(dirfd int, name string) ([]byte, error) {
	f, data, err := openMappedAt(dirfd, name)
	if err != nil {
		return nil, err
	}
	f.Close()
	return data, nil
}

// fileAt is an open file read with pread. Block files are opened with plain system
// calls, not os.Open, which would also try (and fail) to add the descriptor to the
// runtime's poller: a start opens thousands of them.
type fileAt int

func (f fileAt) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Pread(int(f), p[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.ErrUnexpectedEOF
		}
		n += m
	}
	return n, nil
}

func (f fileAt) Close() error { return unix.Close(int(f)) }

// openMappedAt opens the file name, relative to the directory open as dirfd
// (unix.AT_FDCWD: the working directory), and maps all of it read-only; the caller
// closes f (the mapping stays). Opening relative to an open directory spares the
// kernel walking the directory's path for every block.
func openMappedAt(dirfd int, name string) (fileAt, []byte, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	f := fileAt(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return -1, nil, &os.PathError{Op: "stat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return -1, nil, fmt.Errorf("not a regular file")
	}
	if st.Size < minFileLen || st.Size > MaxFileSize {
		f.Close()
		return -1, nil, fmt.Errorf("%w: file is %d bytes, want %d..%d", ErrCorrupt, st.Size, minFileLen, int64(MaxFileSize))
	}
	data, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return -1, nil, fmt.Errorf("cannot map: %w", err)
	}
	return f, data, nil
}

// alignedBytes returns n bytes of heap starting at a multiple of 64, so that buffer
// offsets aligned in the file are aligned in memory.
func alignedBytes(n int) []byte {
	buf := make([]byte, n+bufAlign)
	skip := int(-uintptr(unsafe.Pointer(unsafe.SliceData(buf))) & (bufAlign - 1))
	return buf[skip : skip+n : skip+n]
}

// verifyData checks the file checksum, file length and trailer of a whole file.
func verifyData(data []byte) (uint32, error) {
	if len(data) < minFileLen {
		return 0, fmt.Errorf("%w: file is %d bytes, shorter than any block file", ErrCorrupt, len(data))
	}
	if _, err := checkFixed(data[:fixedHeaderLen]); err != nil {
		return 0, err
	}
	if flen := binary.LittleEndian.Uint64(data[16:]); flen != uint64(len(data)) {
		return 0, fmt.Errorf("%w: file is %d bytes, header says %d", ErrCorrupt, len(data), flen)
	}
	tr := data[len(data)-trailerLen:]
	if string(tr[4:]) != trailerMagic {
		return 0, fmt.Errorf("%w: no trailer magic at byte %d", ErrCorrupt, len(data)-4)
	}
	want := binary.LittleEndian.Uint32(tr)
	if got := crc32.Checksum(data[:len(data)-trailerLen], castagnoli); got != want {
		return 0, fmt.Errorf("%w: file checksum is %08x, trailer says %08x", ErrCorrupt, got, want)
	}
	return want, nil
}

// checkFixed checks the magic and version of a file's first 64 bytes and returns the
// file length they state.
func checkFixed(fixed []byte) (int64, error) {
	if !bytes.Equal(fixed[:8], []byte(blockMagic)) {
		return 0, fmt.Errorf("%w: bad magic %q, want %q", ErrCorrupt, fixed[:8], blockMagic)
	}
	if v := binary.LittleEndian.Uint32(fixed[8:]); v != LayoutVersion {
		return 0, fmt.Errorf("%w: file has version %d, this build reads %d", ErrVersion, v, LayoutVersion)
	}
	flen := binary.LittleEndian.Uint64(fixed[16:])
	if flen < minFileLen || flen > MaxFileSize {
		return 0, fmt.Errorf("%w: header says the file is %d bytes, want %d..%d", ErrCorrupt, flen, minFileLen, int64(MaxFileSize))
	}
	return int64(flen), nil
}

// decode builds the block of a whole file held in data (a mapping or aligned heap
// bytes), its arrays over data. It checks everything but the file checksum. With
// layoutOnly it skips the checks that read buffers (node.checkData) and returns the
// column nodes, whose checkData must pass before any array of the block is read.
func decode(data []byte, layoutOnly bool) (b *block.Block, nodes []*node, err error) {
	return decodeSource(blockSource{data: data}, layoutOnly)
}

// blockSource is what decode reads: data is the whole file (a mapping or aligned
// heap bytes), from which the buffers are sliced. head, when set, is a copy of its
// first bytes (at least the header) and tail of its last 8 bytes (nil: not checked
// now), so that decoding touches as few of data's pages as it can.
type blockSource struct {
	data []byte
	head []byte
	tail []byte
	scr  *decodeScratch // nil: allocate
}

func decodeSource(src blockSource, layoutOnly bool) (b *block.Block, nodes []*node, err error) {
	data := src.data
	if len(data) < minFileLen {
		return nil, nil, fmt.Errorf("%w: file is %d bytes, shorter than any block file", ErrCorrupt, len(data))
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(data)))%bufAlign != 0 {
		panic("BUG: shm.decode over unaligned bytes")
	}
	head, tail := src.head, src.tail
	if head == nil {
		head, tail = data, data[len(data)-trailerLen:]
	}
	if tail == nil {
		// A deferred open (openBlockMode): the checksum check reads the trailer.
		tail = []byte("\x00\x00\x00\x00" + trailerMagic)
	}
	if len(head) < fixedHeaderLen {
		return nil, nil, fmt.Errorf("%w: %d header bytes", ErrCorrupt, len(head))
	}
	flen, err := checkFixed(head)
	if err != nil {
		return nil, nil, err
	}
	if flen != int64(len(data)) {
		return nil, nil, fmt.Errorf("%w: file is %d bytes, header says %d (truncated or extended)", ErrCorrupt, len(data), flen)
	}
	if string(tail[trailerLen-4:]) != trailerMagic {
		return nil, nil, fmt.Errorf("%w: no trailer magic at byte %d", ErrCorrupt, len(data)-4)
	}
	hlen := int64(binary.LittleEndian.Uint32(head[12:]))
	dataEnd := flen - trailerLen
	if hlen < fixedHeaderLen+4 || hlen > dataEnd || hlen > int64(len(head)) {
		return nil, nil, fmt.Errorf("%w: header length %d out of range %d..%d", ErrCorrupt, hlen, fixedHeaderLen+4, dataEnd)
	}
	if got, want := crc32.Checksum(head[:hlen-4], castagnoli), binary.LittleEndian.Uint32(head[hlen-4:]); got != want {
		return nil, nil, fmt.Errorf("%w: header checksum is %08x, header says %08x", ErrCorrupt, got, want)
	}
	h := &headerReader{dec: dec{b: head[:hlen-4], off: 8 + 4 + 4 + 8}, file: data,
		hlen: hlen, dataEnd: dataEnd, layoutOnly: layoutOnly, scr: src.scr}
	if h.scr != nil {
		h.scr.slab = h.scr.slab[:0]
	}
	b, nodes, err = h.block()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	b.Bytes = flen
	return b, nodes, nil
}

// headerReader parses a header whose checksum matched.
type headerReader struct {
	dec
	file       []byte
	hlen       int64
	dataEnd    int64
	layoutOnly bool           // check only what needs no buffer read (see decode)
	scr        *decodeScratch // nil: nodes are allocated, names copied
}

// newNode returns a zero node: from the scratch slab while it has room (a slab
// never grows, so nodes handed out stay put), else a new one.
func (h *headerReader) newNode() *node {
	if h.scr == nil || len(h.scr.slab) == cap(h.scr.slab) {
		return &node{}
	}
	h.scr.slab = h.scr.slab[:len(h.scr.slab)+1]
	nd := &h.scr.slab[len(h.scr.slab)-1]
	*nd = node{}
	return nd
}

// name reads a name of n bytes: shared through the name cache when there is one.
func (h *headerReader) name(n int) string {
	if h.scr == nil || h.scr.names == nil {
		return h.str(n)
	}
	b := h.take(n)
	if h.err != nil {
		return ""
	}
	return h.scr.names.get(b)
}

func (h *headerReader) block() (*block.Block, []*node, error) {
	b := &block.Block{}
	b.ID = h.u64()
	b.MinTime = h.i64()
	b.MaxTime = h.i64()
	rows := h.u32()
	ncols := h.u32()
	tlen := h.u32()
	if h.u32() != 0 {
		return nil, nil, fmt.Errorf("reserved header field at byte 60 is not 0")
	}
	if rows < 1 || rows > block.MaxRows {
		return nil, nil, fmt.Errorf("%d rows, want 1..%d", rows, block.MaxRows)
	}
	if ncols > MaxColumns {
		return nil, nil, fmt.Errorf("%d columns, limit %d", ncols, MaxColumns)
	}
	if tlen > maxNameLen {
		return nil, nil, fmt.Errorf("table name length %d, limit %d", tlen, maxNameLen)
	}
	b.Rows = int(rows)
	b.Table = h.name(int(tlen))
	if h.err != nil {
		return nil, nil, h.err
	}
	// Each column record takes at least 32 header bytes; bounding the slice by
	// the header keeps a damaged count from allocating much.
	b.Columns = make([]block.Column, 0, min(int(ncols), len(h.b)/32))
	var nodes []*node
	if h.scr != nil {
		nodes = h.scr.nodes[:0]
	} else {
		nodes = make([]*node, 0, cap(b.Columns))
	}
	for i := range int(ncols) {
		c, nd, err := h.column()
		if err != nil {
			return nil, nil, fmt.Errorf("column %d (%q, header byte %d): %w", i, c.Name, h.off, err)
		}
		b.Columns = append(b.Columns, c)
		nodes = append(nodes, nd)
	}
	if h.scr != nil {
		h.scr.nodes = nodes // keep the grown slice for the next block
	}
	if h.off != len(h.b) {
		return nil, nil, fmt.Errorf("header has %d bytes after the last column", len(h.b)-h.off)
	}
	if err := checkColumns(b, nodes, h.layoutOnly); err != nil {
		return nil, nil, err
	}
	if !h.layoutOnly {
		buildArrays(b, nodes)
	}
	return b, nodes, nil
}

func (h *headerReader) column() (block.Column, *node, error) {
	var c block.Column
	c.Name = h.name(int(h.u16()))
	c.Type = block.Type(h.u8())
	flags := h.u8()
	reserved := h.u16()
	c.Stats.Nulls = int(h.u32())
	c.Base = h.i64()
	if h.err != nil {
		return c, nil, h.err
	}
	if flags&^1 != 0 || reserved != 0 {
		return c, nil, fmt.Errorf("unknown flags %#x or reserved bits %#x set", flags, reserved)
	}
	c.Stats.HasMinMax = flags&1 != 0
	switch c.Type {
	case block.TypeInt:
		c.Stats.MinI, c.Stats.MaxI = h.i64(), h.i64()
	case block.TypeFloat:
		c.Stats.MinF, c.Stats.MaxF = math.Float64frombits(h.u64()), math.Float64frombits(h.u64())
	case block.TypeString:
		c.Stats.MinS = h.statString()
		c.Stats.MaxS = h.statString()
	case block.TypeSet:
	default:
		return c, nil, fmt.Errorf("unknown logical type %d", uint8(c.Type))
	}
	nd, err := h.node(0)
	if err != nil {
		return c, nil, err
	}
	return c, nd, h.err
}

func (h *headerReader) statString() string {
	n := h.u32()
	if n > maxStatLen {
		h.err = fmt.Errorf("string stat of %d bytes, limit %d", n, maxStatLen)
		return ""
	}
	return h.str(int(n))
}

// node parses an array node and the nodes nested in it. Nesting is at most
// list → dictionary → string; depth bounds it against a damaged header.
func (h *headerReader) node(depth int) (*node, error) {
	if depth > 2 {
		return nil, fmt.Errorf("array nodes nested deeper than the layout allows")
	}
	nd := h.newNode()
	nd.typ, nd.idx = h.u8(), h.u8()
	reserved := h.u16()
	nd.n = int(h.u32())
	nd.nulls = int(h.u32())
	if h.err != nil {
		return nil, h.err
	}
	nb := numBuffers(nd.typ)
	if nb == 0 {
		return nil, fmt.Errorf("arrow type id %d not allowed", nd.typ)
	}
	if reserved != 0 || (nd.typ != idDictionary && nd.idx != 0) {
		return nil, fmt.Errorf("reserved field of %s array node is not 0", arrow.Type(nd.typ))
	}
	for i := range nb {
		off, n := h.u64(), h.u64()
		if h.err != nil {
			return nil, h.err
		}
		if n == 0 {
			if off != 0 {
				return nil, fmt.Errorf("empty buffer %d of %s array has offset %d, want 0", i, arrow.Type(nd.typ), off)
			}
			continue
		}
		if off%bufAlign != 0 || off < uint64(h.hlen) || off > uint64(h.dataEnd) || n > uint64(h.dataEnd)-off {
			return nil, fmt.Errorf("buffer %d of %s array at [%d,+%d) is not a 64-byte aligned range inside the data area [%d,%d)",
				i, arrow.Type(nd.typ), off, n, h.hlen, h.dataEnd)
		}
		nd.bufs[i] = h.file[off : off+n : off+n]
		nd.off[i] = int64(off)
	}
	if nd.typ == idList || nd.typ == idDictionary {
		sub, err := h.node(depth + 1)
		if err != nil {
			return nil, err
		}
		nd.sub = sub
	}
	return nd, nil
}

// buildArray makes the Arrow array of a checked node over its buffers, with its
// dictionaries' values arrays created (see buildArrays).
func buildArray(nd *node) arrow.Array {
	d := nd.arrayData()
	defer d.Release()
	a := array.MakeFromData(d)
	warmDictionaries(a)
	return a
}

func warmDictionaries(a arrow.Array) {
	switch a := a.(type) {
	case *array.Dictionary:
		a.Dictionary()
	case *array.List:
		warmDictionaries(a.ListValues())
	}
}

// IsCorrupt reports whether err says a file is damaged or of another layout
// version: the cases where a caller falls back to another copy of the data.
func IsCorrupt(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, ErrVersion)
}
