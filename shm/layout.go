package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"
)

// LayoutVersion is the version of the block file layout and of the manifest this
// package writes and reads.
const LayoutVersion = 1

const (
	blockMagic   = "REEF-BLK"
	trailerMagic = "REND"

	fixedHeaderLen = 64
	trailerLen     = 8
	bufAlign       = 64

	// minFileLen is the shortest possible block file: fixed header, header CRC
	// and trailer (a real block is larger).
	minFileLen = fixedHeaderLen + 4 + trailerLen

	// MaxFileSize bounds the length of one block file. A block holds at most
	// block.MaxRows rows; this leaves room for thousands of wide columns.
	MaxFileSize = 1 << 36

	// MaxColumns bounds the columns of one block.
	MaxColumns = 1 << 16

	// maxNameLen bounds table and column names (u16 length field).
	maxNameLen = math.MaxUint16

	// maxStatLen bounds each string min/max kept in a header.
	maxStatLen = 1 << 20

	// maxElems bounds the length of a nested array (dictionary, list child):
	// Arrow's int32 offsets cannot address more.
	maxElems = math.MaxInt32
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors a caller acts on; test with errors.Is. Every error this package returns
// for a bad file wraps ErrCorrupt or ErrVersion and says what was wrong and where.
var (
	// ErrCorrupt means a file is damaged: truncated, a checksum mismatch, or a
	// field that is out of bounds or inconsistent.
	ErrCorrupt = errors.New("damaged file")
	// ErrVersion means a file was written with a layout version this build does
	// not read.
	ErrVersion = errors.New("unsupported layout version")
	// ErrNoManifest means the directory holds no manifest: not a clean handoff.
	ErrNoManifest = errors.New("no manifest")
)

const (
	blockSuffix      = ".blk"
	compressedSuffix = ".blk.sz"
	tempPrefix       = ".tmp-"
)

// FileName is the name of the shm file of block id: 16 hex digits and ".blk", so
// that names sort by id.
func FileName(id uint64) string { return fmt.Sprintf("%016x%s", id, blockSuffix) }

// CompressedFileName is the name of the disk (snappy) copy of block id.
func CompressedFileName(id uint64) string { return fmt.Sprintf("%016x%s", id, compressedSuffix) }

// ParseFileName returns the block id of a name made by FileName (ok=true) or by
// CompressedFileName (ok=true, compressed=true).
func ParseFileName(name string) (id uint64, compressed, ok bool) {
	var stem string
	switch {
	case strings.HasSuffix(name, compressedSuffix):
		stem, compressed = strings.TrimSuffix(name, compressedSuffix), true
	case strings.HasSuffix(name, blockSuffix):
		stem = strings.TrimSuffix(name, blockSuffix)
	default:
		return 0, false, false
	}
	if len(stem) != 16 {
		return 0, false, false
	}
	id, err := strconv.ParseUint(stem, 16, 64)
	if err != nil {
		return 0, false, false
	}
	return id, compressed, true
}

// Physical Arrow type ids stored in array nodes. They are Arrow's own type ids;
// TestArrowTypeIDs pins their values so a library change cannot alter the format.
const (
	idUint8      = uint8(arrow.UINT8)
	idUint16     = uint8(arrow.UINT16)
	idUint32     = uint8(arrow.UINT32)
	idInt64      = uint8(arrow.INT64)
	idFloat64    = uint8(arrow.FLOAT64)
	idString     = uint8(arrow.STRING)
	idList       = uint8(arrow.LIST)
	idDictionary = uint8(arrow.DICTIONARY)
)

// numBuffers is the number of buffer references of an array node of type id, or 0
// for a type the layout does not hold.
func numBuffers(id uint8) int {
	switch id {
	case idUint8, idUint16, idUint32, idInt64, idFloat64, idDictionary, idList:
		return 2
	case idString:
		return 3
	}
	return 0
}

// fixedWidth is the byte width of a fixed-width value or index type, or 0.
func fixedWidth(id uint8) int {
	switch id {
	case idUint8:
		return 1
	case idUint16:
		return 2
	case idUint32:
		return 4
	case idInt64, idFloat64:
		return 8
	}
	return 0
}

func isIndexType(id uint8) bool { return id == idUint8 || id == idUint16 || id == idUint32 }

func primitiveType(id uint8) arrow.DataType {
	switch id {
	case idUint8:
		return arrow.PrimitiveTypes.Uint8
	case idUint16:
		return arrow.PrimitiveTypes.Uint16
	case idUint32:
		return arrow.PrimitiveTypes.Uint32
	case idInt64:
		return arrow.PrimitiveTypes.Int64
	case idFloat64:
		return arrow.PrimitiveTypes.Float64
	}
	return nil
}

func alignUp(n int64) int64 { return (n + bufAlign - 1) &^ (bufAlign - 1) }

func bitmapLen(n int) int { return (n + 7) / 8 }

// enc appends little-endian fields to a byte slice.
type enc struct{ b []byte }

func (e *enc) u8(v uint8)   { e.b = append(e.b, v) }
func (e *enc) u16(v uint16) { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *enc) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *enc) i64(v int64)  { e.u64(uint64(v)) }
func (e *enc) str16(s string) {
	e.u16(uint16(len(s)))
	e.b = append(e.b, s...)
}
func (e *enc) str32(s string) {
	e.u32(uint32(len(s)))
	e.b = append(e.b, s...)
}

// dec reads little-endian fields from a header. The first read past the end sets
// err; later reads return zeros, so a parser may check err once per record.
type dec struct {
	b   []byte
	off int
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.err = fmt.Errorf("header field at byte %d needs %d bytes, header ends at %d", d.off, n, len(d.b))
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *dec) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *dec) u16() uint16 {
	if p := d.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (d *dec) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *dec) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (d *dec) i64() int64 { return int64(d.u64()) }

func (d *dec) str(n int) string { return string(d.take(n)) }
