package leaf

import (
	"cmp"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/leaf/wal"
	"github.com/reef-db/reef/shm"
)

// blockCheck is the deferred part of the checks of a block attached at a handoff
// start (shm.Attacher): bounds checks of its validity, offset and index
// buffers and its file checksum. It runs once, in the background or in the first
// query that reads the block, whichever comes first; no query reads the block
// before it passed, and a block that fails is dropped from service and reloaded.
type blockCheck struct {
	once sync.Once
	fn   func() error
	err  error
	done atomic.Bool
	st   *store
}

// errCheckCancelled is the result of a check that never ran: its block was
// dropped first.
var errCheckCancelled = errors.New("block dropped before its check ran")

func (st *store) newCheck(fn func() error) *blockCheck {
	st.pendingChecks.Add(1)
	return &blockCheck{fn: fn, st: st}
}

// run runs the check (once; every caller gets its result). The store counts a
// check as pending until it passed or, if it failed, until its block is freed, so
// that snapshots keep leaving a failed block out until it has left its table.
func (c *blockCheck) run() error {
	c.once.Do(func() {
		c.err = c.fn()
		c.fn = nil
		c.done.Store(true)
		if c.err == nil {
			c.st.pendingChecks.Add(-1)
		}
	})
	return c.err
}

// freed settles the check when its block is freed.
func (c *blockCheck) freed() {
	ran := true
	c.once.Do(func() {
		ran = false
		c.err, c.fn = errCheckCancelled, nil
		c.done.Store(true)
		c.st.pendingChecks.Add(-1)
	})
	if ran && c.err != nil {
		c.st.pendingChecks.Add(-1)
	}
}

// checkSnapshot runs the pending checks of the snapshot's blocks. It reports
// false when a block failed: that block is out of the snapshot and out of service,
// reloaded (onCorrupt returns once it is back), and the caller takes a new
// snapshot. The snapshot holds a reference to every block, so none is unmapped
// while it is checked.
func (st *store) checkSnapshot(snap *snapshot) bool {
	ok := true
	kept := 0
	for i, r := range snap.refs {
		if c := r.check; c != nil {
			if err := c.run(); err != nil {
				if st.onCorrupt != nil && !errors.Is(err, errCheckCancelled) {
					st.onCorrupt(r, err)
				}
				r.release()
				ok = false
				continue
			}
		}
		snap.refs[kept], snap.blocks[kept] = r, snap.blocks[i]
		kept++
	}
	clear(snap.refs[kept:])
	clear(snap.blocks[kept:])
	snap.refs, snap.blocks = snap.refs[:kept], snap.blocks[:kept]
	return ok
}

// snapshotAgain replaces a snapshot from which damaged blocks were taken out by a
// new one, which holds their reloaded rows. Each round removes a damaged block for
// good (a reloaded block is checked in full), so this ends.
func (st *store) snapshotAgain(name string, snap *snapshot) *snapshot {
	snap.release()
	return st.snapshot(name)
}

// verifier runs the pending checks of the blocks attached at start, table by
// table, on up to half the cores, and logs how long it took.
func (s *Server) verifier() {
	defer s.persistWG.Done()
	began := time.Now()
	var checked, failed atomic.Int64
	for _, t := range s.store.list() {
		var refs []*blockRef
		t.mu.Lock()
		for _, r := range t.sealed {
			if r.check != nil && !r.check.done.Load() {
				r.acquire()
				refs = append(refs, r)
			}
		}
		t.mu.Unlock()
		parallelN(len(refs), max(1, workers()/2), func(i int) {
			r := refs[i]
			defer r.release()
			select {
			case <-s.stopPersist:
				return
			default:
			}
			if err := r.check.run(); err != nil {
				if !errors.Is(err, errCheckCancelled) {
					failed.Add(1)
					s.blockCorrupt(r.blk.ID, err)
				}
				return
			}
			checked.Add(1)
		})
		select {
		case <-s.stopPersist:
			return
		default:
		}
	}
	s.log.Info("checked the blocks attached at start", "blocks", checked.Load(), "failed", failed.Load(),
		"took", time.Since(began).Round(time.Millisecond))
}

// parallelN runs f(i) for i in [0,n) on at most k goroutines.
func parallelN(n, k int, f func(i int)) {
	// Workers take the next index from a counter: a start attaches thousands of
	// blocks of a few microseconds each, too little work to hand over one by one
	// through a channel. The calling goroutine is one of the workers.
	var next atomic.Int64
	work := func() {
		for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
			f(i)
		}
	}
	var wg sync.WaitGroup
	for range min(n, k) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// blockCorrupt drops block id from service after its shm file failed a check: its
// shm files are removed (its mapping stays valid for queries that hold it), it
// leaves its table, and it is reloaded from its disk copy or, without one, by
// replaying its lines from the WAL. It returns once the rows are back (a query that
// found the damage then answers with them); a second caller for the same block
// waits for the first.
func (s *Server) blockCorrupt(id uint64, cause error) {
	sh := s.shm
	s.reloadMu.Lock()
	if ch, busy := s.reloading[id]; busy {
		s.reloadMu.Unlock()
		<-ch
		return
	}
	sh.mu.Lock()
	e := sh.entries[id]
	if e == nil || e.heap {
		sh.mu.Unlock()
		s.reloadMu.Unlock()
		return
	}
	// From here on the old block is not the owner of id's files: its Drop only
	// unmaps it.
	delete(sh.entries, id)
	sh.mu.Unlock()
	done := make(chan struct{})
	if s.reloading == nil {
		s.reloading = map[uint64]chan struct{}{}
	}
	s.reloading[id] = done
	s.reloadMu.Unlock()
	defer func() {
		s.reloadMu.Lock()
		delete(s.reloading, id)
		s.reloadMu.Unlock()
		close(done)
	}()

	blk := e.blk
	s.log.Error("block failed its check; dropping it from service and reloading it",
		"block", id, "table", blk.Table, "err", cause)
	s.pm.verifyFailures.Inc()
	cover := e.cover
	if !e.onDisk || len(cover.Spans) == 0 {
		if cid, c, err := wal.ReadCoverFile(filepath.Join(sh.shmDir, coverName(id))); err == nil && cid == id {
			cover = c
		}
	}
	if m := cover.MinSeq(); m != 0 {
		s.pin(m) // the WAL keeps the block's records until it is reloaded
		defer s.unpin(m)
	}
	sh.removeShm(id)

	if t, _ := s.store.table(blk.Table, false); t != nil {
		t.mu.Lock()
		// Snapshots wait until the rows are back (or given up for lost).
		t.reloads++
		defer func() {
			t.mu.Lock()
			if t.reloads--; t.reloads == 0 {
				t.reloaded.Broadcast()
			}
			t.mu.Unlock()
		}()
		var gone *blockRef
		t.sealed = slices.DeleteFunc(t.sealed, func(r *blockRef) bool {
			if r.blk == blk {
				gone = r
				return true
			}
			return false
		})
		if gone != nil {
			t.sealedRows -= int64(blk.Rows)
			t.sealedSize -= blk.Bytes
		}
		t.mu.Unlock()
		if gone != nil {
			gone.release()
		}
	}
	s.reload(id, blk.Table, e.onDisk, cover)
}

// reload brings back the rows of a damaged block: from its disk copy, or by
// replaying the WAL lines its cover lists.
func (s *Server) reload(id uint64, table string, onDisk bool, cover wal.Coverage) {
	if s.shm.diskDir != "" {
		// Tried even when the block is not known to have one: right after a
		// handoff start, nobody has looked yet.
		lb, err := s.loadDiskCopy(id)
		if err == nil {
			if s.restoreBlock(lb.b) {
				s.log.Info("reloaded a damaged block from its disk copy", "block", id, "table", table, "rows", lb.b.Rows)
				s.pm.reloads.WithLabelValues("disk").Inc()
			}
			return
		}
		if onDisk || !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("cannot reload a damaged block from its disk copy", "block", id, "err", err)
		}
		s.removeDiskCopy(id)
	}
	if s.wal == nil || len(cover.Spans) == 0 {
		s.log.Error("a damaged block cannot be reloaded: no disk copy and no WAL records; its rows are lost", "block", id, "table", table)
		s.pm.reloads.WithLabelValues("lost").Inc()
		return
	}
	bySeq := map[uint64][]wal.Span{}
	for _, sp := range cover.Spans {
		bySeq[sp.Seq] = append(bySeq[sp.Seq], sp)
	}
	var rows int64
	_, err := s.wal.Replay(func(rec *wal.Record) error {
		spans, ok := bySeq[rec.Seq]
		if !ok {
			return nil
		}
		slices.SortFunc(spans, func(a, b wal.Span) int { return cmp.Compare(a.From, b.From) })
		res := s.replayRecord(rec, spans, true)
		rows += int64(res.Accepted)
		delete(bySeq, rec.Seq)
		return nil
	})
	switch {
	case err != nil:
		s.log.Error("cannot reload a damaged block from the WAL", "block", id, "err", err)
		s.pm.reloads.WithLabelValues("lost").Inc()
	case len(bySeq) > 0:
		s.log.Error("reloaded a damaged block from the WAL, but some of its records are gone", "block", id,
			"rows", rows, "missing_records", len(bySeq))
		s.pm.reloads.WithLabelValues("lost").Inc()
	default:
		s.log.Info("reloaded a damaged block from the WAL", "block", id, "table", table, "rows", rows)
		s.pm.reloads.WithLabelValues("wal").Inc()
	}
}

// restoreBlock puts a reloaded block (kept by the shm store) back into its table.
func (s *Server) restoreBlock(b *block.Block) bool {
	t, err := s.store.table(b.Table, true)
	if err == nil {
		ref := s.store.newRef(b, true)
		t.mu.Lock()
		err = t.adopt(ref)
		t.mu.Unlock()
		if err == nil {
			return true
		}
		ref.release()
		return false
	}
	s.log.Error("cannot put a reloaded block back", "block", b.ID, "err", err)
	s.shm.Drop(b)
	return false
}

// removeDiskCopy removes a disk copy that cannot be read.
func (s *Server) removeDiskCopy(id uint64) {
	if s.shm.diskDir != "" {
		removeFiles(s.log, filepath.Join(s.shm.diskDir, shm.CompressedFileName(id)), filepath.Join(s.shm.diskDir, coverName(id)))
	}
}
