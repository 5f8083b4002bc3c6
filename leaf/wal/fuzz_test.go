package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
)

// segmentBytes returns the bytes of a segment holding records 0..n-1.
func segmentBytes(t testing.TB, n int) []byte {
	t.Helper()
	opts := testOptions(t.TempDir())
	w, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := w.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := listSegments(opts.Dir)
	if err != nil || len(segs) != 1 {
		t.Fatalf("want one segment, got %v, %v", segs, err)
	}
	data, err := os.ReadFile(segs[0].path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzWAL reads arbitrary bytes as a segment file. It must never panic or read out
// of bounds; every record it returns must be one whose bytes are in the input,
// checksum and all; and it must return either cleanly at the end of the input or
// with damage. The records it returns before damage are exactly a prefix, so a
// damaged tail costs only what follows it.
func FuzzWAL(f *testing.F) {
	good := segmentBytes(f, 4)
	f.Add(good)
	f.Add(good[:len(good)-5])        // damaged tail: last record cut short
	f.Add(good[:segmentHeaderLen])   // header only
	f.Add(good[:segmentHeaderLen-1]) // not even a header
	f.Add(append(bytes.Clone(good), 0, 0, 0, 0, 0, 0, 0, 0))
	flipped := bytes.Clone(good)
	flipped[segmentHeaderLen+frameLen+30] ^= 0xff
	f.Add(flipped)
	huge := bytes.Clone(good)
	binary.LittleEndian.PutUint32(huge[segmentHeaderLen:], 1<<31) // stated length past the limit
	f.Add(huge)
	f.Fuzz(func(t *testing.T, data []byte) {
		var got []Record
		err := ReadSegment(data, func(r *Record) error {
			c := *r
			c.Payload = bytes.Clone(r.Payload) // valid only during the call
			got = append(got, c)
			return nil
		})
		if err != nil && !IsDamaged(err) {
			t.Fatalf("ReadSegment returned an error that is not damage: %v", err)
		}
		// Re-encoding what was read gives back the input up to the last good record.
		if len(got) > 0 {
			var enc []byte
			enc = append(enc, data[:segmentHeaderLen]...)
			for i := range got {
				enc = append(enc, encodeHeader(nil, &got[i])...)
				enc = append(enc, got[i].Payload...)
			}
			if !bytes.Equal(enc, data[:len(enc)]) {
				t.Fatalf("records read do not re-encode to the input")
			}
			if err == nil && len(enc) != len(data) {
				t.Fatalf("clean end after %d of %d bytes", len(enc), len(data))
			}
		}
		// The header-only reader must not panic either, and sees no more records.
		n := 0
		sr := &segmentReader{f: readerAt(data), size: int64(len(data)), off: segmentHeaderLen, next: 1}
		if first, herr := readSegmentHeader(readerAt(data), int64(len(data))); herr == nil {
			sr.next = first
			for {
				_, rerr := sr.read(false)
				if rerr != nil {
					if !errors.Is(rerr, io.EOF) && !IsDamaged(rerr) {
						t.Fatalf("header-only read: %v", rerr)
					}
					break
				}
				n++
			}
		}
		if n < len(got) {
			t.Fatalf("header-only read saw %d records, the full read %d", n, len(got))
		}
	})
}

// FuzzCover decodes arbitrary bytes as a cover file: never a panic, and whatever
// decodes re-encodes to the same bytes.
func FuzzCover(f *testing.F) {
	var c Coverage
	c.Add(1, 1)
	c.Add(1, 2)
	c.Add(2, 1)
	f.Add(AppendCover(nil, 5, &c))
	f.Add(AppendCover(nil, 0, &Coverage{}))
	f.Add([]byte("REEF-COV"))
	f.Fuzz(func(t *testing.T, data []byte) {
		id, got, err := DecodeCover(data)
		if err != nil {
			if !errors.Is(err, ErrBadCover) {
				t.Fatalf("error is not ErrBadCover: %v", err)
			}
			return
		}
		if enc := AppendCover(nil, id, &got); !bytes.Equal(enc, data) {
			t.Fatalf("decoded cover re-encodes differently")
		}
	})
}
