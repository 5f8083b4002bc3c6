package leaf

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/leaf/wal"
	"github.com/reef-db/reef/shm"
)

// shmStore keeps sealed blocks as files in the leaf's shm directory and serves the
// read-only mappings (package shm), so that they outlive the process. Next to each
// block file <id>.blk is its cover file <id>.cov (package wal): the WAL lines whose
// rows the block holds. The cover file is written first, so a block file never
// exists without one.
//
// With a disk directory (DataDir/blocks), every block also gets a compressed disk
// copy with its cover file, written in the background by one goroutine from a
// queue (bounded by the number of blocks held); once a block's copy is durable its
// WAL records may be trimmed.
//
// Lock order: table.mu, then shmStore.mu.
type shmStore struct {
	shmDir  string
	diskDir string // "" without DataDir: no disk copies
	log     *slog.Logger
	metrics *persistMetrics

	// keepFiles is set by a handoff and by Close: from then on Drop only unmaps,
	// so the files stay for the next process.
	keepFiles atomic.Bool
	// holdCopies makes the copier wait (tests hold disk copies back with it).
	holdCopies atomic.Bool

	mu      sync.Mutex
	entries map[uint64]*shmEntry // every block kept, by id
	queue   []uint64             // blocks waiting for their disk copy, oldest first

	wake     chan struct{} // a block was queued (capacity 1)
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	// copied is called after each disk copy (to trim the WAL); corrupt when a
	// block file turns out damaged while copying. Set before start.
	copied  func()
	corrupt func(id uint64, table string, err error)
}

// shmEntry is one kept block.
type shmEntry struct {
	blk    *block.Block      // the block served (mapped, or in the heap)
	mb     shm.ManifestBlock // its shm file, as a manifest lists it
	cover  wal.Coverage
	onDisk bool // the disk copy and its cover file are durable
	heap   bool // writing to shm failed: the block is only in the heap
	// keepDisk: the shm file was found damaged; dropping the block keeps the disk
	// copy, from which it is reloaded.
	keepDisk bool
	// unknown: attached at a handoff start; whether it has a disk copy, and its
	// cover, are not known until tidy ran. coverLost: it has no disk copy and its
	// cover file could not be read (it keeps the whole WAL and gets no copy).
	unknown, coverLost bool
}

func newShmStore(shmDir, diskDir string, log *slog.Logger, m *persistMetrics) *shmStore {
	return &shmStore{
		shmDir: shmDir, diskDir: diskDir, log: log, metrics: m,
		entries: make(map[uint64]*shmEntry),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
}

// coverName is the name of the cover file of block id, next to its block file.
func coverName(id uint64) string { return fmt.Sprintf("%016x.cov", id) }

// Keep writes a freshly sealed block to the shm directory (cover file first) and
// returns its mapping; the block then waits for its disk copy. If writing fails
// (e.g. the shm file system is full) the block stays in the heap, logged: it is
// then not handed over, and a handoff fails, so that the next start replays its
// rows from the WAL.
func (s *shmStore) Keep(b *block.Block, cov wal.Coverage) (*block.Block, error) {
	mapped, err := s.keep(b, cov, false)
	if err != nil {
		s.log.Error("cannot write sealed block to shm; keeping it in the heap", "block", b.ID, "table", b.Table, "err", err)
		s.metrics.shmWriteErrors.Inc()
		s.mu.Lock()
		s.entries[b.ID] = &shmEntry{blk: b, cover: cov, heap: true}
		s.mu.Unlock()
		return b, nil
	}
	return mapped, nil
}

// keep writes b and its cover file to the shm directory, maps the file (checking
// it as OpenBlock does) and registers it; onDisk says its disk copy is durable
// already (a block loaded from it).
func (s *shmStore) keep(b *block.Block, cov wal.Coverage, onDisk bool) (*block.Block, error) {
	covPath := filepath.Join(s.shmDir, coverName(b.ID))
	if err := wal.WriteCoverFile(covPath, b.ID, &cov, false); err != nil {
		return nil, err
	}
	fi, err := shm.WriteBlock(s.shmDir, b)
	if err != nil {
		os.Remove(covPath)
		return nil, err
	}
	mapped, err := shm.OpenBlock(fi.Path)
	if err != nil {
		os.Remove(fi.Path)
		os.Remove(covPath)
		return nil, err
	}
	s.add(b.ID, &shmEntry{blk: mapped, mb: fi.ManifestBlock(), cover: cov, onDisk: onDisk || s.diskDir == ""})
	return mapped, nil
}

// add registers a block whose shm file exists, queueing its disk copy if it has
// none yet.
func (s *shmStore) add(id uint64, e *shmEntry) {
	s.mu.Lock()
	s.entries[id] = e
	queued := !e.onDisk && !e.unknown && !e.coverLost && s.diskDir != ""
	if queued {
		s.queue = append(s.queue, id)
	}
	s.mu.Unlock()
	if queued {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Drop unmaps a kept block and, unless the files are being kept for a handoff,
// removes its files: the disk copy first, then the shm file, so that a crash in
// between never leaves a disk copy of a block that is gone from shm. A block that
// was replaced by a reload of the same id (its entry serves another mapping) is only
// unmapped.
func (s *shmStore) Drop(b *block.Block) {
	id := b.ID
	b.Release()
	if s.keepFiles.Load() {
		return
	}
	s.mu.Lock()
	e := s.entries[id]
	if e == nil || e.blk != b {
		s.mu.Unlock()
		return
	}
	delete(s.entries, id)
	s.mu.Unlock()
	if e.heap {
		return
	}
	if !e.keepDisk && s.diskDir != "" {
		s.removeDisk(id)
	}
	s.removeShm(id)
}

// forget unmaps a block and forgets it, leaving its files.
func (s *shmStore) forget(b *block.Block) {
	s.mu.Lock()
	if e := s.entries[b.ID]; e != nil && e.blk == b {
		delete(s.entries, b.ID)
	}
	s.mu.Unlock()
	b.Release()
}

func (s *shmStore) removeShm(id uint64) {
	removeFiles(s.log, filepath.Join(s.shmDir, shm.FileName(id)), filepath.Join(s.shmDir, coverName(id)))
}

func (s *shmStore) removeDisk(id uint64) {
	removeFiles(s.log, filepath.Join(s.diskDir, shm.CompressedFileName(id)), filepath.Join(s.diskDir, coverName(id)))
}

func removeFiles(log *slog.Logger, paths ...string) {
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Error("cannot remove block file", "file", p, "err", err)
		}
	}
}

// entry returns a copy of block id's entry, or false.
func (s *shmStore) entry(id uint64) (shmEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil {
		return shmEntry{}, false
	}
	return *e, true
}

// pendingMinSeq returns the smallest WAL sequence number that a block without a
// durable disk copy refers to, or 0.
func (s *shmStore) pendingMinSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m uint64
	for _, e := range s.entries {
		switch {
		case e.onDisk:
			continue
		case e.unknown || e.coverLost:
			return 1 // which records it needs is not known: all of them
		}
		if v := e.cover.MinSeq(); v != 0 && (m == 0 || v < m) {
			m = v
		}
	}
	return m
}

// diskBacklog returns how many blocks wait for their disk copy.
func (s *shmStore) diskBacklog() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// manifest returns the manifest entries of the given blocks.
func (s *shmStore) manifest(ids []uint64) ([]shm.ManifestBlock, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]shm.ManifestBlock, 0, len(ids))
	for _, id := range ids {
		e := s.entries[id]
		switch {
		case e == nil:
			return nil, fmt.Errorf("BUG: block %d is served but not kept", id)
		case e.heap:
			return nil, fmt.Errorf("block %d could not be written to shm and is only in the heap", id)
		}
		out = append(out, e.mb)
	}
	return out, nil
}

// start starts the disk copier (with a disk directory).
func (s *shmStore) start() {
	if s.diskDir == "" {
		return
	}
	s.wg.Add(1)
	go s.copier()
}

// close stops the copier (a copy in progress finishes) and keeps every file from
// now on.
func (s *shmStore) close() {
	s.keepFiles.Store(true)
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
}

// copyRetry is how long the copier waits before it tries a failed copy again.
const copyRetry = time.Second

// copier writes the disk copies of queued blocks, oldest first.
func (s *shmStore) copier() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		var id uint64
		ok := len(s.queue) > 0
		if ok {
			id = s.queue[0]
			s.queue = slices.Delete(s.queue, 0, 1)
		}
		s.mu.Unlock()
		if !ok {
			select {
			case <-s.stop:
				return
			case <-s.wake:
				continue
			}
		}
		for s.holdCopies.Load() {
			select {
			case <-s.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		select {
		case <-s.stop:
			return
		default:
		}
		if err := s.copyToDisk(id); err != nil {
			if shm.IsCorrupt(err) {
				if s.corrupt != nil {
					e, _ := s.entry(id)
					s.corrupt(id, e.mb.Table, err)
				}
				continue
			}
			s.log.Error("cannot write the disk copy of a block; will retry", "block", id, "err", err)
			s.metrics.diskCopyErrors.Inc()
			s.mu.Lock()
			if _, live := s.entries[id]; live {
				s.queue = append(s.queue, id)
			}
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-time.After(copyRetry):
			}
			continue
		}
		if s.copied != nil {
			s.copied()
		}
	}
}

// copyToDisk writes the disk copy of block id and its cover file, fsynced, then
// marks the block durable. A block dropped meanwhile loses its fresh copy again.
func (s *shmStore) copyToDisk(id uint64) error {
	e, ok := s.entry(id)
	if !ok || e.heap || e.onDisk || e.unknown || e.coverLost {
		return nil
	}
	if err := wal.WriteCoverFile(filepath.Join(s.diskDir, coverName(id)), id, &e.cover, true); err != nil {
		return err
	}
	if _, err := (shm.Writer{Sync: true}).CopyCompressed(filepath.Join(s.shmDir, shm.FileName(id)), s.diskDir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// Dropped by retention while queued.
			s.removeDisk(id)
			return nil
		}
		return err
	}
	s.mu.Lock()
	live := s.entries[id]
	if live != nil {
		live.onDisk = true
	}
	s.mu.Unlock()
	if live == nil && !s.keepFiles.Load() {
		s.removeDisk(id)
	}
	s.metrics.diskCopies.Inc()
	return nil
}
