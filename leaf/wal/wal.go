package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// SyncPolicy says when appended records are fsynced (see the package comment).
type SyncPolicy int

const (
	SyncBatch  SyncPolicy = iota // group commit: an append waits for an fsync that covers it
	SyncAlways                   // every append fsyncs its own record
	SyncNone                     // never fsync (records still reach the kernel before Append returns)
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncBatch:
		return "batch"
	case SyncAlways:
		return "always"
	case SyncNone:
		return "none"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// ParseSyncPolicy parses "batch", "always" or "none".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch s {
	case "batch", "":
		return SyncBatch, nil
	case "always":
		return SyncAlways, nil
	case "none":
		return SyncNone, nil
	}
	return 0, fmt.Errorf("unknown WAL sync policy %q; use batch, always or none", s)
}

// DefaultSegmentBytes is the default size at which a segment is closed and a new
// one started.
const DefaultSegmentBytes = 64 << 20

// Options configure a WAL.
type Options struct {
	// Dir holds the segment files; it is created if missing.
	Dir string
	// SegmentBytes is the size at which a new segment is started (a record is never
	// split, so a segment may end up one record larger). Default
	// DefaultSegmentBytes.
	SegmentBytes int64
	// Sync is the fsync policy.
	Sync SyncPolicy
	// MinNextSeq, when larger than what the files say, is the sequence number the
	// next record gets: the caller's newest reference into the log plus one, so that
	// numbers are never reused even if segment files were lost.
	MinNextSeq uint64
	// Logger receives what Open found damaged. Default: slog.Default().
	Logger *slog.Logger
}

// segment is one segment file of the log.
type segment struct {
	first uint64 // sequence number of its first record (its name)
	path  string
}

// WAL is an open write-ahead log. Its methods are safe for concurrent use.
type WAL struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex // guards the fields below
	segs     []segment  // sorted by first; the last is the active one
	f        *os.File   // the active segment
	size     int64      // bytes in f
	next     uint64     // sequence number of the next record
	retired  []*os.File // full segments not yet fsynced and closed (SyncBatch)
	broken   error      // a write or sync failed: every later append fails
	closed   bool
	hdr      []byte // encoding buffer of Write
	appended atomic.Int64

	syncMu sync.Mutex    // one fsync at a time (group commit)
	synced atomic.Uint64 // every record up to this sequence number is durable
	syncs  atomic.Int64
}

// Open opens the log in opts.Dir: it finds the segments, checks the last one up to
// its end and cuts off a damaged tail (the record a crash interrupted), then starts
// a new segment for appends. Records already in the log are read with Replay or Scan.
func Open(opts Options) (*WAL, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	w := &WAL{opts: opts, log: opts.Logger}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot open WAL: %w", err)
	}
	segs, err := listSegments(opts.Dir)
	if err != nil {
		return nil, err
	}
	next := uint64(1)
	clean := readCleanMark(opts.Dir)
	if n := len(segs); n > 0 {
		last := segs[n-1]
		if end, ok := clean.matches(last); ok && end >= opts.MinNextSeq {
			// Closed cleanly: appends go on at the end of the last segment. Its
			// size changes with the first append, so the mark stops matching and a
			// crash from then on is read in full.
			f, err := os.OpenFile(last.path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return nil, fmt.Errorf("cannot open WAL segment: %w", err)
			}
			w.segs, w.f, w.size, w.next = segs, f, clean.size, max(end, 1)
			w.synced.Store(w.next - 1)
			return w, nil
		}
		end, err := w.recoverTail(last)
		switch {
		case err != nil:
			return nil, err
		case end == 0 || end == last.first:
			// No record in it: the new active segment takes its place.
			if err := os.Remove(last.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("cannot remove empty WAL segment: %w", err)
			}
			segs = segs[:n-1]
			next = last.first
		default:
			next = end
		}
	}
	w.segs = segs
	w.next = max(next, opts.MinNextSeq, 1)
	w.synced.Store(w.next - 1)
	if err := w.startSegment(); err != nil {
		return nil, err
	}
	return w, nil
}

// listSegments returns the segment files of dir, sorted.
func listSegments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list WAL directory: %w", err)
	}
	var segs []segment
	for _, e := range ents {
		first, ok := parseSegmentName(e.Name())
		if ok && e.Type().IsRegular() {
			segs = append(segs, segment{first: first, path: filepath.Join(dir, e.Name())})
		}
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	return segs, nil
}

const segmentSuffix = ".wal"

func segmentName(first uint64) string { return fmt.Sprintf("%016x%s", first, segmentSuffix) }

func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(hex, 16, 64)
	if err != nil || n == 0 || segmentName(n) != name {
		return 0, false
	}
	return n, true
}

// recoverTail reads the last segment to its end and cuts a damaged tail off. It
// returns the sequence number after its last good record, or 0 when the segment
// holds no usable header (it is then removed).
func (w *WAL) recoverTail(s segment) (uint64, error) {
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("cannot open WAL segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("cannot open WAL segment: %w", err)
	}
	first, err := readSegmentHeader(f, st.Size())
	if errors.Is(err, errDamaged) || (err == nil && first != s.first) {
		// A segment whose header never made it to disk holds no record; Open
		// removes it.
		w.log.Warn("WAL segment without a valid header; removing it", "file", s.path, "err", err)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	sr := &segmentReader{f: f, size: st.Size(), off: segmentHeaderLen, next: first}
	for {
		_, err := sr.read(true)
		if err == io.EOF {
			return sr.next, nil
		}
		if errors.Is(err, errDamaged) {
			w.log.Warn("cutting off the damaged tail of the WAL (a write interrupted by a crash)",
				"file", s.path, "offset", sr.off, "bytes", st.Size()-sr.off, "err", err)
			if err := f.Truncate(sr.off); err != nil {
				return 0, fmt.Errorf("cannot cut the damaged tail of WAL segment %s: %w", s.path, err)
			}
			if err := f.Sync(); err != nil {
				return 0, fmt.Errorf("cannot cut the damaged tail of WAL segment %s: %w", s.path, err)
			}
			return sr.next, nil
		}
		if err != nil {
			return 0, fmt.Errorf("cannot read WAL segment %s: %w", s.path, err)
		}
	}
}

// startSegment creates a new active segment starting at w.next; w.mu is held (or
// w is not shared yet).
func (w *WAL) startSegment() error {
	path := filepath.Join(w.opts.Dir, segmentName(w.next))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("cannot start WAL segment: %w", err)
	}
	var h [segmentHeaderLen]byte
	copy(h[:], segmentMagic)
	binary.LittleEndian.PutUint32(h[8:], LayoutVersion)
	binary.LittleEndian.PutUint64(h[16:], w.next)
	if _, err := f.Write(h[:]); err != nil {
		f.Close()
		return fmt.Errorf("cannot start WAL segment: %w", err)
	}
	if w.opts.Sync != SyncNone {
		err := f.Sync()
		if err == nil {
			err = syncDir(w.opts.Dir)
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("cannot start WAL segment: %w", err)
		}
	}
	w.f = f
	w.size = segmentHeaderLen
	w.segs = append(w.segs, segment{first: w.next, path: path})
	// A clean mark names an older segment now; it could never match again.
	os.Remove(filepath.Join(w.opts.Dir, cleanName))
	return nil
}

// Append writes r (its Seq is assigned; r.Time, Format, Table, BatchID and Payload
// are logged) and returns once it is durable by the sync policy. It returns the
// record's sequence number. After a write or fsync failure the log is broken and
// every later Append fails: the caller should stop taking writes.
func (w *WAL) Append(r *Record) (uint64, error) {
	seq, err := w.Write(r)
	if err != nil {
		return 0, err
	}
	return seq, w.WaitDurable(seq)
}

// Write is the first half of Append: it writes r to the kernel and returns its
// sequence number without waiting for an fsync (except with SyncAlways). Call
// WaitDurable before acknowledging the record to anyone.
func (w *WAL) Write(r *Record) (uint64, error) {
	if err := checkRecord(r); err != nil {
		return 0, fmt.Errorf("cannot append to WAL: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return 0, errors.New("cannot append to WAL: closed")
	case w.broken != nil:
		return 0, fmt.Errorf("cannot append to WAL: an earlier write failed: %w", w.broken)
	}
	if w.size >= w.opts.SegmentBytes {
		if err := w.rotate(); err != nil {
			w.broken = err
			return 0, err
		}
	}
	r.Seq = w.next
	w.hdr = encodeHeader(w.hdr, r)
	if err := w.write(w.hdr, r.Payload); err != nil {
		w.broken = err
		return 0, err
	}
	w.next++
	w.appended.Add(1)
	if w.opts.Sync == SyncAlways {
		if err := w.f.Sync(); err != nil {
			w.broken = fmt.Errorf("cannot sync WAL: %w", err)
			return 0, w.broken
		}
		w.syncs.Add(1)
		w.synced.Store(r.Seq)
	}
	return r.Seq, nil
}

func (w *WAL) write(hdr, payload []byte) error {
	if _, err := w.f.Write(hdr); err != nil {
		return fmt.Errorf("cannot append to WAL: %w", err)
	}
	if _, err := w.f.Write(payload); err != nil {
		return fmt.Errorf("cannot append to WAL: %w", err)
	}
	w.size += int64(len(hdr) + len(payload))
	return nil
}

// rotate closes the active segment (or, with SyncBatch, hands it to the next fsync
// to close) and starts a new one; w.mu is held.
func (w *WAL) rotate() error {
	old := w.f
	if w.opts.Sync == SyncBatch {
		w.retired = append(w.retired, old)
	} else if err := old.Close(); err != nil {
		return fmt.Errorf("cannot close WAL segment: %w", err)
	}
	return w.startSegment()
}

// WaitDurable returns once the record seq is durable by the sync policy: with
// SyncBatch it joins (or starts) the fsync that covers it, so concurrent appends
// share fsyncs. With SyncAlways and SyncNone it returns at once.
func (w *WAL) WaitDurable(seq uint64) error {
	if w.opts.Sync != SyncBatch || w.synced.Load() >= seq {
		return nil
	}
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if w.synced.Load() >= seq {
		return nil // an fsync that started after seq was written covered it
	}
	return w.syncLocked()
}

// Sync fsyncs every record written so far, whatever the policy (a handoff's last
// step before the manifest).
func (w *WAL) Sync() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	return w.syncLocked()
}

// syncLocked fsyncs the retired segments and the active one; w.syncMu is held.
func (w *WAL) syncLocked() error {
	w.mu.Lock()
	if w.broken != nil {
		err := w.broken
		w.mu.Unlock()
		return fmt.Errorf("cannot sync WAL: an earlier write failed: %w", err)
	}
	if w.closed {
		w.mu.Unlock()
		return errors.New("cannot sync WAL: closed")
	}
	f, retired, target := w.f, w.retired, w.next-1
	w.retired = nil
	w.mu.Unlock()

	var err error
	for _, rf := range retired {
		if serr := rf.Sync(); serr != nil && err == nil {
			err = serr
		}
		if cerr := rf.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		err = fmt.Errorf("cannot sync WAL: %w", err)
		w.mu.Lock()
		w.broken = err
		w.mu.Unlock()
		return err
	}
	w.syncs.Add(1)
	if target > w.synced.Load() {
		w.synced.Store(target)
	}
	return nil
}

// NextSeq is the sequence number the next record will get: every record logged so
// far has a smaller one.
func (w *WAL) NextSeq() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// TrimBefore deletes the segments all of whose records have a sequence number below
// seq. When that is every record, the active segment is closed and a new one
// started, so that it goes too. It returns how many segments it deleted.
func (w *WAL) TrimBefore(seq uint64) (int, error) {
	w.mu.Lock()
	if w.next <= seq && w.size > segmentHeaderLen && w.broken == nil && !w.closed {
		if err := w.rotate(); err != nil {
			w.broken = err
			w.mu.Unlock()
			return 0, err
		}
	}
	var drop []segment
	keep := 0
	for i, s := range w.segs {
		if i < len(w.segs)-1 && w.segs[i+1].first <= seq {
			drop = append(drop, s)
			continue
		}
		w.segs[keep] = s
		keep++
	}
	clear(w.segs[keep:])
	w.segs = w.segs[:keep]
	w.mu.Unlock()
	var errs []error
	for _, s := range drop {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return len(drop), fmt.Errorf("cannot trim WAL: %w", err)
	}
	return len(drop), nil
}

// Stats describe the log.
type Stats struct {
	Segments int
	Bytes    int64  // size of all segment files
	NextSeq  uint64 // sequence number of the next record
	Synced   uint64 // every record up to this one is durable
	Appended int64  // records appended since Open
	Syncs    int64  // fsyncs since Open
}

// Stats returns the log's current numbers. Bytes costs a stat per segment.
func (w *WAL) Stats() Stats {
	w.mu.Lock()
	s := Stats{Segments: len(w.segs), NextSeq: w.next}
	paths := make([]string, len(w.segs))
	for i, sg := range w.segs {
		paths[i] = sg.path
	}
	w.mu.Unlock()
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil {
			s.Bytes += st.Size()
		}
	}
	s.Synced = w.synced.Load()
	s.Appended = w.appended.Load()
	s.Syncs = w.syncs.Load()
	return s
}

// Close fsyncs (unless the policy is SyncNone) and closes the log. Records written
// before Close stay in the files for the next Open.
func (w *WAL) Close() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return nil
	}
	var err error
	if w.opts.Sync != SyncNone {
		err = w.syncLocked()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for _, rf := range w.retired {
		err = errors.Join(err, rf.Close())
	}
	w.retired = nil
	if cerr := w.f.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err == nil && w.broken == nil {
		last := w.segs[len(w.segs)-1]
		err = writeCleanMark(w.opts.Dir, cleanMark{next: w.next, segment: filepath.Base(last.path), size: w.size})
	}
	if err != nil {
		return fmt.Errorf("cannot close WAL: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
