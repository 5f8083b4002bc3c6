package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// Layout constants; the layout is drawn in the package comment.
const (
	// LayoutVersion is the version of the segment layout this package writes and
	// reads.
	LayoutVersion = 1

	segmentMagic     = "REEF-WAL"
	segmentHeaderLen = 24
	frameLen         = 8                    // u32 length + u32 crc
	fixedBodyLen     = 22                   // seq, time, format, reserved, u16 table length
	minBodyLen       = fixedBodyLen + 1 + 2 // a table name of one byte, a batch id length

	// MaxRecordBytes bounds the body of one record (its payload plus about 300
	// bytes): a reader treats a longer stated length as damage.
	MaxRecordBytes = 1 << 30
	// MaxTableLen and MaxBatchIDLen bound a record's names (u16 length fields).
	MaxTableLen   = 1<<16 - 1
	MaxBatchIDLen = 1<<16 - 1
)

// Payload formats.
const (
	// FormatNDJSON is a body of newline-delimited JSON objects, one row per line.
	FormatNDJSON uint8 = 1
	// FormatArrow is an Arrow IPC stream; a row's "line" is its 1-based number in
	// the stream.
	FormatArrow uint8 = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one logged ingest batch.
type Record struct {
	// Seq is the record's position in the log, assigned by Append (1, 2, …).
	Seq uint64
	// Time is when the batch arrived; replay gives rows without a time this one,
	// as the first ingest did. Stored with nanosecond precision.
	Time time.Time
	// Format says how to decode Payload (FormatNDJSON, FormatArrow).
	Format uint8
	// Table is the table the batch was written to; BatchID the writer's batch id,
	// or "".
	Table   string
	BatchID string
	// Payload is the batch as accepted. In records passed to a Replay callback it
	// is only valid during the call; in Scan it is nil.
	Payload []byte
}

// errDamaged marks a record that cannot be read: cut short, a wrong checksum, a
// length out of range or an unexpected sequence number.
var errDamaged = errors.New("damaged record")

// encodeHeader returns the frame and the body up to the payload, with the frame's
// crc covering the payload too.
func encodeHeader(dst []byte, r *Record) []byte {
	bodyLen := fixedBodyLen + len(r.Table) + 2 + len(r.BatchID) + len(r.Payload)
	dst = binary.LittleEndian.AppendUint32(dst[:0], uint32(bodyLen))
	dst = binary.LittleEndian.AppendUint32(dst, 0) // crc, below
	dst = binary.LittleEndian.AppendUint64(dst, r.Seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Time.UnixNano()))
	dst = append(dst, r.Format, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(r.Table)))
	dst = append(dst, r.Table...)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(r.BatchID)))
	dst = append(dst, r.BatchID...)
	crc := crc32.Update(crc32.Checksum(dst[frameLen:], castagnoli), castagnoli, r.Payload)
	binary.LittleEndian.PutUint32(dst[4:], crc)
	return dst
}

// checkRecord reports what is wrong with r for Append, or nil.
func checkRecord(r *Record) error {
	switch {
	case len(r.Table) == 0 || len(r.Table) > MaxTableLen:
		return fmt.Errorf("table name of %d bytes, want 1..%d", len(r.Table), MaxTableLen)
	case len(r.BatchID) > MaxBatchIDLen:
		return fmt.Errorf("batch id of %d bytes, limit %d", len(r.BatchID), MaxBatchIDLen)
	case r.Format != FormatNDJSON && r.Format != FormatArrow:
		return fmt.Errorf("unknown payload format %d", r.Format)
	case fixedBodyLen+len(r.Table)+2+len(r.BatchID)+len(r.Payload) > MaxRecordBytes:
		return fmt.Errorf("record of %d payload bytes exceeds the limit of %d", len(r.Payload), MaxRecordBytes)
	}
	return nil
}

// decodeBody parses a record body whose checksum matched (or, with payload
// false, only its first bytes: then the payload is not returned). It fails with
// errDamaged on anything out of bounds.
func decodeBody(body []byte, bodyLen int, payload bool) (Record, error) {
	var r Record
	if len(body) < fixedBodyLen {
		return r, fmt.Errorf("%w: body of %d bytes is shorter than %d", errDamaged, len(body), minBodyLen)
	}
	r.Seq = binary.LittleEndian.Uint64(body)
	r.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(body[8:])))
	r.Format = body[16]
	if body[17] != 0 || body[18] != 0 || body[19] != 0 {
		return r, fmt.Errorf("%w: reserved bytes are not 0", errDamaged)
	}
	if r.Format != FormatNDJSON && r.Format != FormatArrow {
		return r, fmt.Errorf("%w: unknown payload format %d", errDamaged, r.Format)
	}
	off := fixedBodyLen
	tlen := int(binary.LittleEndian.Uint16(body[off-2:]))
	if tlen == 0 || off+tlen+2 > len(body) {
		return r, fmt.Errorf("%w: table name of %d bytes does not fit", errDamaged, tlen)
	}
	r.Table = string(body[off : off+tlen])
	off += tlen
	blen := int(binary.LittleEndian.Uint16(body[off:]))
	off += 2
	if off+blen > len(body) {
		return r, fmt.Errorf("%w: batch id of %d bytes does not fit", errDamaged, blen)
	}
	r.BatchID = string(body[off : off+blen])
	off += blen
	if off > bodyLen {
		return r, fmt.Errorf("%w: names overrun the body", errDamaged)
	}
	if payload {
		r.Payload = body[off:bodyLen]
	}
	return r, nil
}

// segmentReader reads the records of one segment file in order.
type segmentReader struct {
	f     io.ReaderAt
	size  int64
	off   int64  // start of the next record
	next  uint64 // its expected sequence number
	frame [frameLen]byte
	buf   []byte
}

// headerScanBytes is how much of a body a header-only read looks at: the fixed part
// and the longest table name and batch id the leaf writes.
const headerScanBytes = fixedBodyLen + 2 + 512 + 2 + 512

// readSegmentHeader checks a segment's header and returns its first sequence number.
func readSegmentHeader(f io.ReaderAt, size int64) (uint64, error) {
	if size < segmentHeaderLen {
		return 0, fmt.Errorf("%w: segment of %d bytes has no complete header", errDamaged, size)
	}
	var h [segmentHeaderLen]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return 0, fmt.Errorf("cannot read segment header: %w", err)
	}
	if string(h[:8]) != segmentMagic {
		return 0, fmt.Errorf("%w: bad segment magic %q", errDamaged, h[:8])
	}
	if v := binary.LittleEndian.Uint32(h[8:]); v != LayoutVersion {
		return 0, fmt.Errorf("%w: segment layout version %d, this build reads %d", errDamaged, v, LayoutVersion)
	}
	if binary.LittleEndian.Uint32(h[12:]) != 0 {
		return 0, fmt.Errorf("%w: reserved segment header field is not 0", errDamaged)
	}
	first := binary.LittleEndian.Uint64(h[16:])
	if first == 0 {
		return 0, fmt.Errorf("%w: segment starts at sequence number 0", errDamaged)
	}
	return first, nil
}

// read returns the next record, io.EOF at the clean end of the segment, or an error
// wrapping errDamaged. With payload false it reads only the record's names (no
// checksum check) and the returned record has no payload; otherwise the payload is
// valid until the next call.
func (sr *segmentReader) read(payload bool) (Record, error) {
	if sr.off == sr.size {
		return Record{}, io.EOF
	}
	if sr.size-sr.off < frameLen {
		return Record{}, fmt.Errorf("%w: %d bytes at offset %d are too few for a record", errDamaged, sr.size-sr.off, sr.off)
	}
	if _, err := sr.f.ReadAt(sr.frame[:], sr.off); err != nil {
		return Record{}, fmt.Errorf("cannot read record at offset %d: %w", sr.off, err)
	}
	bodyLen := int64(binary.LittleEndian.Uint32(sr.frame[:]))
	want := binary.LittleEndian.Uint32(sr.frame[4:])
	if bodyLen < minBodyLen || bodyLen > MaxRecordBytes {
		return Record{}, fmt.Errorf("%w: record at offset %d states a length of %d", errDamaged, sr.off, bodyLen)
	}
	if bodyLen > sr.size-sr.off-frameLen {
		return Record{}, fmt.Errorf("%w: record at offset %d of %d bytes is cut short at %d", errDamaged, sr.off, bodyLen, sr.size)
	}
	n := bodyLen
	if !payload {
		n = min(bodyLen, headerScanBytes)
	}
	if int64(cap(sr.buf)) < n {
		sr.buf = make([]byte, n)
	}
	body := sr.buf[:n]
	if _, err := sr.f.ReadAt(body, sr.off+frameLen); err != nil {
		return Record{}, fmt.Errorf("cannot read record at offset %d: %w", sr.off, err)
	}
	if payload {
		if got := crc32.Checksum(body, castagnoli); got != want {
			return Record{}, fmt.Errorf("%w: record at offset %d has checksum %08x, its frame says %08x", errDamaged, sr.off, got, want)
		}
	}
	r, err := decodeBody(body, int(bodyLen), payload)
	if err != nil && !payload && n < bodyLen {
		// Names longer than the first read: read as much as they may take.
		n = min(bodyLen, fixedBodyLen+MaxTableLen+2+MaxBatchIDLen)
		if int64(cap(sr.buf)) < n {
			sr.buf = make([]byte, n)
		}
		body = sr.buf[:n]
		if _, err := sr.f.ReadAt(body, sr.off+frameLen); err != nil {
			return Record{}, fmt.Errorf("cannot read record at offset %d: %w", sr.off, err)
		}
		r, err = decodeBody(body, int(bodyLen), payload)
	}
	if err != nil {
		return Record{}, fmt.Errorf("record at offset %d: %w", sr.off, err)
	}
	if r.Seq != sr.next {
		return Record{}, fmt.Errorf("%w: record at offset %d has sequence number %d, want %d", errDamaged, sr.off, r.Seq, sr.next)
	}
	sr.off += frameLen + bodyLen
	sr.next++
	return r, nil
}
