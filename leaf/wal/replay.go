package wal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ReplayStats say what a Replay or Scan read.
type ReplayStats struct {
	Segments int
	Records  int
	// FirstSeq and LastSeq are the sequence numbers of the first and last record
	// read (0 when none).
	FirstSeq, LastSeq uint64
	// Damaged describes damage found in the middle of the log (at most
	// maxDamageNotes entries); the records after it in the same segment are lost.
	Damaged []string
}

const maxDamageNotes = 16

// Replay calls fn with every record of the log, oldest first, the payload included
// and its checksum checked. It reads the segments that exist when it is called (a
// segment trimmed meanwhile is skipped), and may run while records are appended:
// the active segment is read up to the last complete record. A damaged record
// ends its segment (it is reported in the stats and logged) and the next segment is
// read on. fn's error stops the replay and is returned.
func (w *WAL) Replay(fn func(*Record) error) (ReplayStats, error) {
	return w.read(true, fn)
}

// Scan is Replay without the payloads: it reads each record's sequence number,
// time, table and batch id and skips the rest, so it costs a few small reads per
// record. Checksums cannot be checked this way; a record cut short still ends its
// segment.
func (w *WAL) Scan(fn func(*Record) error) (ReplayStats, error) {
	return w.read(false, fn)
}

func (w *WAL) read(payload bool, fn func(*Record) error) (ReplayStats, error) {
	w.mu.Lock()
	segs := append([]segment(nil), w.segs...)
	w.mu.Unlock()
	var st ReplayStats
	for i, s := range segs {
		err := w.readSegment(s, payload, &st, fn)
		if errors.Is(err, fs.ErrNotExist) {
			continue // trimmed meanwhile
		}
		if errors.Is(err, errDamaged) && i == len(segs)-1 {
			// The active segment ends in a record still being written (a replay
			// while the log is in use): that is its end for now, not damage.
			continue
		}
		if errors.Is(err, errDamaged) {
			msg := fmt.Sprintf("%s: %v", s.path, err)
			w.log.Error("damaged WAL record; the rest of its segment is lost", "err", msg)
			if len(st.Damaged) < maxDamageNotes {
				st.Damaged = append(st.Damaged, msg)
			}
			continue
		}
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

func (w *WAL) readSegment(s segment, payload bool, st *ReplayStats, fn func(*Record) error) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("cannot read WAL segment: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot read WAL segment: %w", err)
	}
	first, err := readSegmentHeader(f, fi.Size())
	if err != nil {
		return err
	}
	if first != s.first {
		return fmt.Errorf("%w: segment header says it starts at %d", errDamaged, first)
	}
	st.Segments++
	sr := &segmentReader{f: f, size: fi.Size(), off: segmentHeaderLen, next: first}
	for {
		r, err := sr.read(payload)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		st.Records++
		if st.FirstSeq == 0 {
			st.FirstSeq = r.Seq
		}
		st.LastSeq = r.Seq
		if err := fn(&r); err != nil {
			return err
		}
	}
}

// ReadSegment reads every record of one segment held in data (the bytes of a
// segment file), calling fn with each; it stops at the end or at the first damaged
// record, whose error it returns. It is the reader of Replay, for tools and tests.
func ReadSegment(data []byte, fn func(*Record) error) error {
	ra := readerAt(data)
	first, err := readSegmentHeader(ra, int64(len(data)))
	if err != nil {
		return err
	}
	sr := &segmentReader{f: ra, size: int64(len(data)), off: segmentHeaderLen, next: first}
	for {
		r, err := sr.read(true)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
}

// IsDamaged reports whether err says a record or segment is damaged.
func IsDamaged(err error) bool { return errors.Is(err, errDamaged) }

type readerAt []byte

func (b readerAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
