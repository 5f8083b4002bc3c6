package leaf

import (
	"fmt"
	"sync"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/leaf/wal"
)

// persist is the leaf's durable storage (embedded in Server): the WAL, the shm
// block store, the start path taken, and the background work that keeps them
// (disk copies, WAL trimming, checks of attached blocks, reloads of damaged ones).
//
// How the pieces fit (docs/wal.md has the whole story):
//   - an ingest batch is appended to the WAL (logBatch) before its rows are stored;
//     each stored row notes its record and line in the open block's Coverage;
//   - sealing writes the block and its coverage to the shm directory (shmStore);
//     the disk copier copies both to DataDir/blocks;
//   - the WAL is trimmed up to the oldest record that still has rows outside a
//     block with a durable disk copy: rows of batches in flight, of open blocks,
//     and of sealed blocks still waiting for their copy (trimWAL);
//   - a start attaches, checks or reloads the blocks and replays the WAL for the
//     lines no block covers (recover.go).
type persist struct {
	shmDir string
	shm    *shmStore // nil: blocks stay in the heap
	wal    *wal.WAL  // nil without DataDir
	pm     *persistMetrics

	generation uint64 // of the last manifest read; a handoff writes the next
	tidyMaxID  uint64 // a handoff start: tidy runs after it (blocks up to this id)
	needTidy   bool

	// walMu is held while a record is written and pinned, and while the trim point
	// is computed, so that a record is never trimmed between the two.
	walMu sync.Mutex
	pins  map[uint64]int // WAL records whose rows are not in a block yet, with counts

	unlock []func() // directory locks, released by Close

	reloadMu  sync.Mutex
	reloading map[uint64]chan struct{} // damaged blocks being reloaded (verify.go)

	stopPersist chan struct{}
	persistWG   sync.WaitGroup
	trimNow     chan struct{} // capacity 1: trim soon
}

// walPos is the WAL position of the row a decoder is storing: the record (seq, 0
// for none) and its line (decoder.line). During a replay it also holds the lines
// of the record to leave out (or, with only, the only ones to decode).
type walPos struct {
	seq    uint64
	spans  []wal.Span // sorted by From
	only   bool
	spanAt int
}

// setReplay makes the decoder store rows as lines of record seq, skipping the
// lines in spans (only: decoding just those).
func (d *decoder) setReplay(seq uint64, spans []wal.Span, only bool) {
	d.walPos = walPos{seq: seq, spans: spans, only: only}
}

// covered reports whether the current line is to be left out of a replay: it is in
// a block already (counted as accepted), or, replaying only some lines, not one of
// them. It must be called with increasing line numbers.
func (d *decoder) covered() bool {
	p := &d.walPos
	if len(p.spans) == 0 {
		return p.only
	}
	for p.spanAt < len(p.spans) && int(p.spans[p.spanAt].To) < d.line {
		p.spanAt++
	}
	in := p.spanAt < len(p.spans) && int(p.spans[p.spanAt].From) <= d.line
	if p.only {
		return !in
	}
	if in {
		d.res.Accepted++
	}
	return in
}

// stored records that the row of the current line went into t's open block: it
// counts it, notes its WAL position in the block's coverage, and lets the table
// seal a full block. t.mu is held.
func (d *decoder) stored(t *table, ts int64) {
	d.res.Accepted++
	if d.walPos.seq != 0 {
		t.cover.Add(d.walPos.seq, d.line)
	}
	t.rowAdded(ts, d.now)
}

// logBatch appends an accepted ingest batch to the WAL, durable by the sync policy,
// before its rows are stored. The record stays pinned (never trimmed) until done is
// called, once the rows are in the table's open block (whose coverage then keeps it).
// Without a WAL it returns seq 0 and does nothing.
func (s *Server) logBatch(res *api.IngestResult, table string, format uint8, body []byte, now time.Time) (seq uint64, done func(), err error) {
	if s.wal == nil {
		return 0, func() {}, nil
	}
	rec := &wal.Record{Time: now, Format: format, Table: table, BatchID: res.BatchID, Payload: body}
	s.walMu.Lock()
	seq, err = s.wal.Write(rec)
	if err == nil {
		s.pins[seq]++
	}
	s.walMu.Unlock()
	if err == nil {
		err = s.wal.WaitDurable(seq)
	}
	done = func() { s.unpin(seq) }
	if err != nil {
		if seq != 0 {
			done()
		}
		s.pm.walErrors.Inc()
		s.log.Error("cannot append ingest batch to the WAL; refusing ingest", "table", table, "err", err)
		return 0, func() {}, fmt.Errorf("cannot log the batch: %w", err)
	}
	s.pm.walAppends.Inc()
	return seq, done, nil
}

// pin keeps WAL record seq from being trimmed until unpin.
func (s *Server) pin(seq uint64) {
	s.walMu.Lock()
	s.pins[seq]++
	s.walMu.Unlock()
}

func (s *Server) unpin(seq uint64) {
	s.walMu.Lock()
	if s.pins[seq]--; s.pins[seq] <= 0 {
		delete(s.pins, seq)
	}
	s.walMu.Unlock()
}

// trimWAL deletes the WAL segments whose rows are all in blocks with a durable disk
// copy. The trim point is the oldest record still referred to by a pinned batch, an
// open block, or a sealed block without its disk copy, read in the order a record
// moves through them, so that no record is missed while it moves.
func (s *Server) trimWAL() {
	if s.wal == nil {
		return
	}
	s.walMu.Lock()
	point := s.wal.NextSeq()
	for seq := range s.pins {
		point = min(point, seq)
	}
	s.walMu.Unlock()
	for _, t := range s.store.list() {
		t.mu.Lock()
		if m := t.cover.MinSeq(); m != 0 {
			point = min(point, m)
		}
		t.mu.Unlock()
	}
	if s.shm != nil {
		if m := s.shm.pendingMinSeq(); m != 0 {
			point = min(point, m)
		}
	}
	n, err := s.wal.TrimBefore(point)
	if err != nil {
		s.log.Error("cannot trim the WAL", "err", err)
	}
	if n > 0 {
		s.pm.walTrimmed.Add(float64(n))
	}
}

// trimInterval is how often the WAL is trimmed when nothing asks for it sooner.
const trimInterval = 2 * time.Second

// trimmer trims the WAL after disk copies and every trimInterval.
func (s *Server) trimmer() {
	defer s.persistWG.Done()
	t := time.NewTicker(trimInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopPersist:
			return
		case <-t.C:
		case <-s.trimNow:
		}
		s.trimWAL()
	}
}

// requestTrim asks the trimmer to run soon.
func (s *Server) requestTrim() {
	select {
	case s.trimNow <- struct{}{}:
	default:
	}
}

// startPersist starts the background work of the durable storage: the disk
// copier, the WAL trimmer and the checks of blocks attached at start.
func (s *Server) startPersist() {
	if s.shm == nil {
		return
	}
	verify := s.store.pendingChecks.Load() > 0
	if verify {
		s.persistWG.Add(1) // verifier's
	}
	if s.needTidy {
		// The copier and the trimmer need to know which blocks have disk copies.
		// The checks wait for the tidy too: one core's worth of background work
		// at a time, so that a leaf that has just become ready answers at once.
		s.persistWG.Add(1)
		go func() {
			defer s.persistWG.Done()
			s.tidy(s.tidyMaxID)
			s.startCopyAndTrim()
			if verify {
				s.verifier()
			}
		}()
		return
	}
	s.startCopyAndTrim()
	if verify {
		go s.verifier()
	}
}

func (s *Server) startCopyAndTrim() {
	select {
	case <-s.stopPersist:
		return // closed meanwhile
	default:
	}
	s.shm.start()
	if s.wal != nil {
		s.persistWG.Add(1)
		go s.trimmer()
	}
}

// stopPersistWork stops the background work (a disk copy or reload in progress
// finishes) and keeps every block file from now on.
func (s *Server) stopPersistWork() {
	if s.stopPersist != nil {
		select {
		case <-s.stopPersist:
		default:
			close(s.stopPersist)
		}
	}
	s.persistWG.Wait()
	if s.shm != nil {
		s.shm.close()
	}
}

// closeStorage closes the WAL and lets go of the directory locks; the blocks are
// released before.
func (s *Server) closeStorage() {
	if s.wal != nil {
		if err := s.wal.Close(); err != nil {
			s.log.Error("cannot close the WAL", "err", err)
		}
	}
	for _, unlock := range s.unlock {
		unlock()
	}
	s.unlock = nil
}
