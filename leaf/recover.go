package leaf

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/leaf/wal"
	"github.com/reef-db/reef/shm"
)

// Start paths, as api.StartInfo.Path reports them.
const (
	startShm   = "shm"   // a handoff's manifest: blocks attached from shared memory
	startCrash = "crash" // no manifest: shm blocks checked by checksum, the WAL replayed
	startDisk  = "disk"  // no shm blocks: disk copies loaded, the WAL replayed
	startEmpty = "empty" // nothing to recover
)

// openStorage sets up the leaf's storage and recovers its data. Without a shm
// directory (Config.ShmDir, or DataDir/shm) blocks stay in the heap and there is
// nothing to recover.
func (s *Server) openStorage() error {
	cfg := &s.cfg
	s.pm = newPersistMetrics(s.metrics.reg)
	s.pins = make(map[uint64]int)
	s.stopPersist = make(chan struct{})
	s.trimNow = make(chan struct{}, 1)
	s.shmDir = cfg.ShmDir
	if s.shmDir == "" && cfg.DataDir != "" {
		s.shmDir = filepath.Join(cfg.DataDir, "shm")
	}
	if s.shmDir == "" {
		s.store = newStore(cfg, heapStore{}, s.metrics)
		s.start = api.StartInfo{Path: startEmpty}
		return nil
	}
	if err := s.openDirs(); err != nil {
		return err
	}
	diskDir := ""
	if cfg.DataDir != "" {
		diskDir = filepath.Join(cfg.DataDir, "blocks")
		if err := os.MkdirAll(diskDir, 0o700); err != nil {
			return fmt.Errorf("cannot open leaf disk block directory: %w", err)
		}
	}
	s.shm = newShmStore(s.shmDir, diskDir, s.log, s.pm)
	s.shm.copied = s.requestTrim
	s.shm.corrupt = func(id uint64, _ string, err error) { s.blockCorrupt(id, err) }
	s.store = newStore(cfg, s.shm, s.metrics)
	s.store.onCorrupt = func(r *blockRef, err error) { s.blockCorrupt(r.blk.ID, err) }
	if err := s.recover(); err != nil {
		return err
	}
	s.pm.registerGauges(s.metrics.reg, persistGauges{
		walBytes:      func() float64 { return float64(s.walStats().Bytes) },
		walSegments:   func() float64 { return float64(s.walStats().Segments) },
		diskBacklog:   func() float64 { return float64(s.shm.diskBacklog()) },
		pendingChecks: func() float64 { return float64(s.store.pendingChecks.Load()) },
	})
	return nil
}

func (s *Server) walStats() wal.Stats {
	if s.wal == nil {
		return wal.Stats{}
	}
	return s.wal.Stats()
}

// openDirs creates and locks the shm and data directories: one process per leaf.
func (s *Server) openDirs() error {
	if err := os.MkdirAll(s.shmDir, 0o700); err != nil {
		return fmt.Errorf("cannot open leaf shm directory: %w", err)
	}
	dirs := []string{s.shmDir}
	if d := s.cfg.DataDir; d != "" && filepath.Clean(d) != filepath.Clean(s.shmDir) {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		unlock, err := lockDir(d, s.cfg.LockWait, s.log)
		if err != nil {
			return err
		}
		s.unlock = append(s.unlock, unlock)
	}
	return nil
}

// loadedBlock is a block found at start, before it joins its table.
type loadedBlock struct {
	b      *block.Block
	mb     shm.ManifestBlock
	cover  wal.Coverage
	hasCov bool         // cover was read (the shm path reads it only when needed)
	check  func() error // deferred checks of an attached block; nil: checked
	onDisk bool         // its disk copy is durable
	kept   bool         // already registered with the shm store (reloaded via keep)
	// unknown: attached from a manifest; whether it has a disk copy, and its
	// cover, are found out by tidy.
	unknown bool
}

// recovery is what a start found.
type recovery struct {
	path     string
	blocks   []*loadedBlock
	maxID    uint64          // largest block id seen in any file name
	failed   []uint64        // shm path: blocks that could not be attached
	shmIDs   []uint64        // block files in the shm directory, sorted
	disk     map[uint64]bool // disk copies; true when their cover file is there too
	lost     int             // blocks neither in shm nor on disk in usable form
	replay   bool
	manifest bool // a manifest was found (removed before anything is written)
	tidy     bool // a handoff start: tidy runs after the start
}

// recover takes the leaf's start path (see docs/wal.md): a handoff's manifest →
// attach; shm block files without one → check and attach them (a crash); no shm
// block files → load the disk copies (a reboot). Then, unless every row is known to
// be in a block (the handoff), the WAL is replayed for the lines no block covers.
func (s *Server) recover() error {
	r := &recovery{}
	ph := phases{began: time.Now()}
	defer func() { s.log.Info("recovery steps", ph.attrs()...) }()
	var err error
	// A handoff start makes a few small allocations per block, thousands of
	// blocks, while the heap is still tiny: without this the collector would run
	// over and over for nothing. Other starts read whole blocks into the heap and
	// need it.
	gcPercent := debug.SetGCPercent(-1)
	m, merr := shm.ReadManifest(s.shmDir)
	if merr == nil {
		defer debug.SetGCPercent(gcPercent)
	} else {
		debug.SetGCPercent(gcPercent)
	}
	ph.mark("manifest")
	if merr == nil && m.LeafID != s.cfg.ID {
		return fmt.Errorf("cannot start leaf %q: its shm directory %s holds a handoff of leaf %q; give every leaf a directory of its own",
			s.cfg.ID, s.shmDir, m.LeafID)
	}
	if merr != nil {
		// Not a handoff: every file is looked at. (A handoff start lists the
		// directories after it is ready, in tidy.)
		if r.shmIDs, err = s.scanShm(nil); err != nil {
			return err
		}
		if r.disk, err = s.scanDisk(nil); err != nil {
			return err
		}
		ph.mark("list")
	}
	switch {
	case merr == nil:
		r.path, r.manifest = startShm, true
		s.generation = m.Generation
		s.attachManifest(m, r)
	case errors.Is(merr, shm.ErrNoManifest):
		err = s.loadFiles(r)
	default:
		s.log.Warn("the shm manifest cannot be used; recovering as after a crash", "err", merr)
		r.manifest = true
		err = s.loadFiles(r)
	}
	if err != nil {
		s.releaseLoaded(r)
		return err
	}
	if r.manifest {
		// Before the directory changes, so that a later crash is not taken for a
		// clean handoff.
		if err := shm.RemoveManifest(s.shmDir); err != nil {
			s.releaseLoaded(r)
			return err
		}
	}
	s.store.ids.Store(r.maxID)
	if r.tidy {
		s.needTidy, s.tidyMaxID = true, r.maxID
	}
	ph.mark("blocks")

	if err := s.reloadFailed(r); err != nil {
		s.releaseLoaded(r)
		return err
	}
	if err := s.openWAL(r); err != nil {
		s.releaseLoaded(r)
		return err
	}
	ph.mark("wal_open")
	s.adoptBlocks(r)
	ph.mark("adopt")
	if r.replay {
		if err := s.replayWAL(r); err != nil {
			return err
		}
	} else if err := s.restoreBatchIDs(); err != nil {
		return err
	}
	ph.mark("wal_read")
	t := s.totals()
	tables := map[string]int64{}
	for _, ts := range s.store.stats() {
		tables[ts.Name] = ts.Rows
	}
	if r.path == "" {
		switch {
		case t.Blocks > 0 || t.Rows > 0:
			r.path = startDisk
		default:
			r.path = startEmpty
		}
	}
	s.start = api.StartInfo{Path: r.path, Blocks: t.Blocks, Rows: t.Rows, Tables: tables}
	if r.lost > 0 {
		s.log.Error("blocks could not be recovered from shm or from disk; their rows are back only as far as the WAL still had them",
			"blocks", r.lost)
	}
	return nil
}

// scanDir lists a block directory once and returns the ids of the block files
// (<id>.blk, or with compressed <id>.blk.sz) and of the cover files. It finds
// strays: temporary files of interrupted writes, and cover files whose block file
// is missing (a cover file is written first). With strays nil (a start, before
// anything writes) it removes them; otherwise it leaves them to the caller, which
// removes them only where no write can be in progress (tidy).
func (s *Server) scanDir(dir string, compressed bool, strays *[]stray) (blocks, covers map[uint64]bool, err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot list block directory: %w", err)
	}
	ents, err := f.ReadDir(-1) // unsorted: one pass, no sort of thousands of names
	f.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot list block directory %s: %w", dir, err)
	}
	found := func(st stray) {
		if strays == nil {
			removeFiles(s.log, st.path)
		} else {
			*strays = append(*strays, st)
		}
	}
	blocks, covers = map[uint64]bool{}, map[uint64]bool{}
	for _, e := range ents {
		name := e.Name()
		switch {
		case !e.Type().IsRegular():
		case strings.HasPrefix(name, tempPrefix):
			id, ok := tempFileID(name)
			found(stray{path: filepath.Join(dir, name), id: id, idOK: ok})
		default:
			if id, c, ok := shm.ParseFileName(name); ok && c == compressed {
				blocks[id] = true
			} else if id, ok := parseCoverName(name); ok {
				covers[id] = true
			}
		}
	}
	for id := range covers {
		if !blocks[id] {
			found(stray{path: filepath.Join(dir, coverName(id)), id: id, idOK: true, cover: true,
				block: filepath.Join(dir, map[bool]string{false: shm.FileName(id), true: shm.CompressedFileName(id)}[compressed])})
			delete(covers, id)
		}
	}
	return blocks, covers, nil
}

// tempPrefix starts the names of the temporary files block and cover files are
// written under (package shm and the cover writer use it alike).
const tempPrefix = ".tmp-"

// stray is a file scanDir found that no block needs: a temporary file, or a cover
// file without its block file.
type stray struct {
	path  string
	id    uint64 // the block it belongs to, when idOK
	idOK  bool
	cover bool // a cover file; block is its block file's path
	block string
}

// tempFileID reads the block id from a temporary file's name (.tmp-<16 hex
// digits>.<kind>-<random>).
func tempFileID(name string) (uint64, bool) {
	rest, _ := strings.CutPrefix(name, tempPrefix)
	if len(rest) < 16 {
		return 0, false
	}
	id, err := strconv.ParseUint(rest[:16], 16, 64)
	return id, err == nil
}

// scanShm lists the shm directory's block files, sorted.
func (s *Server) scanShm(strays *[]stray) ([]uint64, error) {
	blocks, _, err := s.scanDir(s.shmDir, false, strays)
	if err != nil {
		return nil, err
	}
	ids := make([]uint64, 0, len(blocks))
	for id := range blocks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// scanDisk lists the disk copies: true for those whose cover file is there too.
func (s *Server) scanDisk(strays *[]stray) (map[uint64]bool, error) {
	if s.shm.diskDir == "" {
		return map[uint64]bool{}, nil
	}
	blocks, covers, err := s.scanDir(s.shm.diskDir, true, strays)
	if err != nil {
		return nil, err
	}
	for id := range blocks {
		blocks[id] = covers[id]
	}
	return blocks, nil
}

func parseCoverName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, ".cov")
	if !ok || len(hex) != 16 {
		return 0, false
	}
	var id uint64
	for _, c := range []byte(hex) {
		switch {
		case c >= '0' && c <= '9':
			id = id<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			id = id<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return id, true
}

// workers is how many goroutines load blocks at start.
func workers() int { return max(1, runtime.GOMAXPROCS(0)) }

// parallel runs f(i) for i in [0,n) on workers() goroutines.
func parallel(n int, f func(i int)) { parallelN(n, workers(), f) }

// attachManifest maps the blocks a handoff listed, checking only what needs no read
// of their data (shm.Attacher); the rest of the checks run before a
// query first reads a block, and in the background. Which blocks have a disk copy,
// their cover files, and files the manifest does not list are looked at after the
// start (tidy), so that it costs a few system calls per block and nothing more.
// Blocks that fail are left in r.failed.
func (s *Server) attachManifest(m *shm.Manifest, r *recovery) {
	r.blocks = make([]*loadedBlock, len(m.Blocks))
	errs := make([]error, len(m.Blocks))
	at, err := shm.NewAttacher(s.shmDir)
	if err != nil {
		// Not a block's fault: every block fails alike below, and is reloaded.
		for i := range errs {
			errs[i] = err
		}
	} else {
		defer at.Close()
	}
	parallel(len(m.Blocks), func(i int) {
		if at == nil {
			return
		}
		b, check, err := at.Attach(m.Blocks[i])
		if err != nil {
			errs[i] = err
			return
		}
		r.blocks[i] = &loadedBlock{b: b, mb: m.Blocks[i], check: check, unknown: true}
	})
	kept := r.blocks[:0]
	for i, lb := range r.blocks {
		id, _, _ := shm.ParseFileName(m.Blocks[i].File) // checked by ReadManifest
		r.maxID = max(r.maxID, id)
		if lb == nil {
			s.log.Error("cannot attach a block of the handoff; reloading it", "block", id, "err", errs[i])
			s.pm.verifyFailures.Inc()
			r.failed = append(r.failed, id)
			s.shm.removeShm(id)
			continue
		}
		kept = append(kept, lb)
	}
	r.blocks = kept
	r.tidy = true
}

// tidy finishes a handoff start once the leaf is ready: it lists the shm and disk
// directories, removes what the manifest did not list (and temporary files), finds
// which blocks have a durable disk copy, reads the cover files of those that do not
// and queues their copies. The disk copier and the WAL trimmer wait for it. A block
// whose cover file cannot be read keeps the WAL from being trimmed while it lives,
// and gets no disk copy: its rows are in the WAL, and a crash start, finding no
// cover, reloads them from there.
func (s *Server) tidy(startMaxID uint64) {
	began := time.Now()
	// Nothing else lists or cleans the directories now, but a damaged block may be
	// reloading (its id is in s.reloading) and writing its files: strays are
	// removed below, under reloadMu, only for blocks of the start that are not.
	var strays []stray
	shmIDs, err := s.scanShm(&strays)
	if err != nil {
		s.log.Error("cannot list the shm directory after the start", "err", err)
		return
	}
	disk, err := s.scanDisk(&strays)
	if err != nil {
		s.log.Error("cannot list the disk blocks after the start", "err", err)
		return
	}
	sh := s.shm
	// Files of blocks nobody serves, as of the start; a reload holds its id.
	removed := 0
	s.reloadMu.Lock()
	for _, id := range shmIDs {
		if _, busy := s.reloading[id]; id <= startMaxID && !busy {
			if _, ok := sh.entry(id); !ok {
				sh.removeShm(id)
				removed++
			}
		}
	}
	for id := range disk {
		if _, busy := s.reloading[id]; id <= startMaxID && !busy {
			if _, ok := sh.entry(id); !ok {
				sh.removeDisk(id)
				removed++
			}
		}
	}
	for _, st := range strays {
		if _, busy := s.reloading[st.id]; !st.idOK || st.id > startMaxID || busy {
			continue
		}
		if _, err := os.Stat(st.block); st.cover && err == nil {
			continue // its block file came since the listing
		}
		removeFiles(s.log, st.path)
		removed++
	}
	s.reloadMu.Unlock()

	sh.mu.Lock()
	var pending []uint64
	for id, e := range sh.entries {
		if !e.unknown {
			continue
		}
		if disk[id] || sh.diskDir == "" {
			e.onDisk, e.unknown = true, false
		} else {
			pending = append(pending, id)
		}
	}
	sh.mu.Unlock()
	bad := 0
	for _, id := range pending {
		cid, cov, err := wal.ReadCoverFile(filepath.Join(s.shmDir, coverName(id)))
		if err == nil && cid != id {
			err = fmt.Errorf("cover file of block %d names block %d", id, cid)
		}
		sh.mu.Lock()
		if e := sh.entries[id]; e != nil && e.unknown {
			e.unknown = false
			if err != nil {
				e.coverLost = true
				bad++
				s.log.Error("cover file of a block without a disk copy cannot be read; the WAL is kept for it and it gets no disk copy",
					"block", id, "err", err)
			} else {
				e.cover = cov
				sh.queue = append(sh.queue, id)
			}
		}
		sh.mu.Unlock()
	}
	s.log.Info("tidied the directories after the start", "blocks_without_disk_copy", len(pending),
		"files_removed", removed, "unreadable_covers", bad, "took", time.Since(began).Round(time.Millisecond))
}

// loadFiles loads every block without a manifest: each shm file that passes the
// full check (OpenBlock, file checksum, cover file), else its disk copy (written
// back to shm), else nothing (its rows come back from the WAL if it still has them).
// The WAL is replayed afterwards.
func (s *Server) loadFiles(r *recovery) error {
	shmIDs := r.shmIDs
	r.replay = true
	if len(shmIDs) > 0 {
		r.path = startCrash
	}
	inShm := make(map[uint64]bool, len(shmIDs))
	all := slices.Clone(shmIDs)
	for _, id := range shmIDs {
		inShm[id] = true
	}
	for id := range r.disk {
		if !inShm[id] {
			all = append(all, id)
		}
	}
	slices.Sort(all)
	if len(all) > 0 {
		r.maxID = all[len(all)-1]
	}
	loaded := make([]*loadedBlock, len(all))
	parallel(len(all), func(i int) {
		id := all[i]
		if inShm[id] {
			lb, err := s.loadShmFile(id)
			if err == nil {
				lb.onDisk = r.disk[id] || s.shm.diskDir == ""
				loaded[i] = lb
				return
			}
			s.log.Warn("block file in shm failed its check; dropping it", "block", id, "err", err)
			s.pm.verifyFailures.Inc()
			s.shm.removeShm(id)
		}
		if _, ok := r.disk[id]; ok {
			lb, err := s.loadDiskCopy(id)
			if err == nil {
				loaded[i] = lb
				return
			}
			s.log.Error("disk copy of a block cannot be read; its rows come back from the WAL if it still has them",
				"block", id, "err", err)
			s.pm.reloads.WithLabelValues("lost").Inc()
		}
	})
	for _, lb := range loaded {
		if lb != nil {
			r.blocks = append(r.blocks, lb)
		} else {
			r.lost++
		}
	}
	return nil
}

// loadShmFile maps block id's shm file and checks all of it: layout, file
// checksum, cover file.
func (s *Server) loadShmFile(id uint64) (*loadedBlock, error) {
	path := filepath.Join(s.shmDir, shm.FileName(id))
	b, crc, err := shm.OpenBlockVerified(path)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*loadedBlock, error) {
		b.Release()
		return nil, err
	}
	if b.ID != id {
		return fail(fmt.Errorf("block file %s holds block %d", path, b.ID))
	}
	cid, cov, err := wal.ReadCoverFile(filepath.Join(s.shmDir, coverName(id)))
	if err != nil {
		return fail(err)
	}
	if cid != id {
		return fail(fmt.Errorf("cover file of block %d names block %d", id, cid))
	}
	return &loadedBlock{b: b, mb: manifestEntry(b, crc), cover: cov, hasCov: true}, nil
}

// loadDiskCopy reads block id's disk copy (checked by its checksum) with its cover
// file, writes it to shm and maps it.
func (s *Server) loadDiskCopy(id uint64) (*loadedBlock, error) {
	heap, err := shm.ReadCompressed(filepath.Join(s.shm.diskDir, shm.CompressedFileName(id)))
	if err != nil {
		return nil, err
	}
	defer heap.Release()
	cid, cov, err := wal.ReadCoverFile(filepath.Join(s.shm.diskDir, coverName(id)))
	if err != nil {
		return nil, err
	}
	if heap.ID != id || cid != id {
		return nil, fmt.Errorf("disk copy %d holds block %d, its cover file names block %d", id, heap.ID, cid)
	}
	b, err := s.shm.keep(heap, cov, true)
	if err != nil {
		return nil, fmt.Errorf("cannot write block %d back to shm: %w", id, err)
	}
	e, _ := s.shm.entry(id)
	return &loadedBlock{b: b, mb: e.mb, cover: cov, hasCov: true, onDisk: true, kept: true}, nil
}

// manifestEntry describes a block file for the manifest.
func manifestEntry(b *block.Block, crc uint32) shm.ManifestBlock {
	return shm.ManifestBlock{
		File: shm.FileName(b.ID), Size: b.Bytes, Rows: b.Rows, SchemaHash: shm.SchemaHash(b),
		CRC32C: crc, Table: b.Table, MinTime: b.MinTime, MaxTime: b.MaxTime,
	}
}

// reloadFailed reloads the blocks of a handoff that could not be attached: from
// their disk copies, or, for those without one, by replaying the WAL (whose records
// are kept until a block's disk copy is durable). Replaying needs every block's
// cover, so those are read then.
func (s *Server) reloadFailed(r *recovery) error {
	if len(r.failed) > 0 && r.disk == nil {
		var err error
		if r.disk, err = s.scanDisk(nil); err != nil {
			return err
		}
	}
	for _, id := range r.failed {
		if r.disk[id] {
			lb, err := s.loadDiskCopy(id)
			if err == nil {
				s.log.Info("reloaded a block of the handoff from its disk copy", "block", id)
				s.pm.reloads.WithLabelValues("disk").Inc()
				r.blocks = append(r.blocks, lb)
				continue
			}
			s.log.Error("disk copy of a block cannot be read either", "block", id, "err", err)
		}
		r.replay = true
		r.lost++
	}
	if !r.replay || r.path != startShm {
		return nil
	}
	// A replay skips the lines already in a block, so every block's cover is needed;
	// a block whose cover cannot be read is reloaded from its disk copy (whose cover
	// is its own) or dropped, its rows then coming from the WAL.
	kept := r.blocks[:0]
	for _, lb := range r.blocks {
		if lb.hasCov {
			kept = append(kept, lb)
			continue
		}
		id := lb.b.ID
		cid, cov, err := wal.ReadCoverFile(filepath.Join(s.shmDir, coverName(id)))
		if err == nil && cid == id {
			lb.cover, lb.hasCov = cov, true
			kept = append(kept, lb)
			continue
		}
		s.log.Warn("cover file of an attached block cannot be read; reloading the block", "block", id, "err", err)
		lb.b.Release()
		s.shm.removeShm(id)
		if r.disk[id] {
			if nb, err := s.loadDiskCopy(id); err == nil {
				kept = append(kept, nb)
				continue
			}
		}
		r.lost++
	}
	r.blocks = kept
	return nil
}

// openWAL opens DataDir/wal, numbering new records after any a block refers to.
func (s *Server) openWAL(r *recovery) error {
	if s.cfg.DataDir == "" {
		return nil
	}
	var maxSeq uint64
	for _, lb := range r.blocks {
		for _, sp := range lb.cover.Spans {
			maxSeq = max(maxSeq, sp.Seq)
		}
	}
	w, err := wal.Open(wal.Options{
		Dir:          filepath.Join(s.cfg.DataDir, "wal"),
		SegmentBytes: s.cfg.WALSegmentBytes,
		Sync:         s.cfg.WALSync,
		MinNextSeq:   maxSeq + 1,
		Logger:       s.log,
	})
	if err != nil {
		return err
	}
	s.wal = w
	return nil
}

// releaseLoaded unmaps the blocks of a start that failed.
func (s *Server) releaseLoaded(r *recovery) {
	s.shm.keepFiles.Store(true)
	for _, lb := range r.blocks {
		lb.b.Release()
	}
	r.blocks = nil
}

// adoptBlocks puts the loaded blocks into their tables, oldest first.
func (s *Server) adoptBlocks(r *recovery) {
	slices.SortFunc(r.blocks, func(a, b *loadedBlock) int { return cmp.Compare(a.b.ID, b.b.ID) })
	for _, lb := range r.blocks {
		b := lb.b
		if !lb.kept {
			s.shm.add(b.ID, &shmEntry{mb: lb.mb, cover: lb.cover, onDisk: lb.onDisk, unknown: lb.unknown, blk: b})
		}
		t, err := s.store.table(b.Table, true)
		if err != nil {
			// Its files stay, for a start with a higher table limit.
			s.log.Error("cannot restore a block", "block", b.ID, "table", b.Table, "err", err)
			s.shm.forget(b)
			continue
		}
		ref := s.store.newRef(b, true)
		if lb.check != nil {
			ref.check = s.store.newCheck(lb.check)
		}
		t.mu.Lock()
		err = t.adopt(ref)
		t.mu.Unlock()
		if err != nil {
			s.log.Error("cannot restore a block", "block", b.ID, "table", b.Table, "err", err)
			ref.release()
		}
	}
	r.blocks = nil
}

// adopt adds a sealed block found at start to the table, adding its columns to the
// schema; t.mu is held. A column whose type differs from the table's is an error.
func (t *table) adopt(r *blockRef) error {
	b := r.blk
	for i := range b.Columns {
		c := &b.Columns[i]
		if tc := t.byName[c.Name]; tc != nil && tc.typ != c.Type {
			return fmt.Errorf("column %q is %s in the block and %s in the table", c.Name, c.Type, tc.typ)
		}
	}
	for i := range b.Columns {
		c := &b.Columns[i]
		if t.byName[c.Name] == nil {
			t.addColumn(c.Name, c.Type)
		}
	}
	if r.check == nil {
		warmDictionaries(b) // else the check does it, before the first read
	}
	t.sealed = append(t.sealed, r)
	t.sealedRows += int64(b.Rows)
	t.sealedSize += b.Bytes
	return nil
}

// replayWAL replays every logged batch for the lines no loaded block covers, with
// each batch's arrival time, and remembers its batch id so that a retry is
// recognised.
func (s *Server) replayWAL(r *recovery) error {
	if s.wal == nil {
		return nil
	}
	covered := map[uint64][]wal.Span{}
	for _, t := range s.store.list() {
		t.mu.Lock()
		for _, ref := range t.sealed {
			if e, ok := s.shm.entry(ref.blk.ID); ok {
				for _, sp := range e.cover.Spans {
					covered[sp.Seq] = append(covered[sp.Seq], sp)
				}
			}
		}
		t.mu.Unlock()
	}
	began := time.Now()
	var rows, skipped int64
	st, err := s.wal.Replay(func(rec *wal.Record) error {
		spans := covered[rec.Seq]
		slices.SortFunc(spans, func(a, b wal.Span) int { return cmp.Compare(a.From, b.From) })
		res := s.replayRecord(rec, spans, false)
		var cov int64
		for _, sp := range spans {
			cov += int64(sp.To-sp.From) + 1
		}
		rows += int64(res.Accepted) - cov
		skipped += cov
		if rec.BatchID != "" {
			s.batches.restore(rec.BatchID, rec.Time, res)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot replay the WAL: %w", err)
	}
	s.log.Info("replayed the WAL", "records", st.Records, "first_seq", st.FirstSeq, "last_seq", st.LastSeq,
		"rows", rows, "rows_in_blocks", skipped, "damaged", len(st.Damaged), "took", time.Since(began).Round(time.Microsecond))
	return nil
}

// replayRecord stores the lines of a logged batch that are not in spans (only: just
// those in spans) and returns the batch's result, lines already in a block counted
// as accepted.
func (s *Server) replayRecord(rec *wal.Record, spans []wal.Span, only bool) api.IngestResult {
	res := api.IngestResult{Table: rec.Table, Leaf: s.cfg.ID, BatchID: rec.BatchID}
	d := newDecoder(&s.cfg)
	d.reset(&res, rec.Time)
	d.setReplay(rec.Seq, spans, only)
	var err error
	switch rec.Format {
	case wal.FormatNDJSON:
		err = d.ingest(s.store, rec.Table, rec.Payload)
	case wal.FormatArrow:
		var st *arrowStream
		if st, err = readArrow(rec.Payload, max(s.cfg.MaxBodyBytes, int64(len(rec.Payload)))); err == nil {
			err = d.ingestArrow(s.store, rec.Table, st)
			st.release()
		}
	}
	if err != nil {
		s.log.Error("cannot replay a logged batch", "seq", rec.Seq, "table", rec.Table, "err", err)
	}
	return res
}

// restoreBatchIDs reads the batch ids of the WAL's records (not their payloads) so
// that a batch retried after a handoff is still recognised.
func (s *Server) restoreBatchIDs() error {
	if s.wal == nil {
		return nil
	}
	_, err := s.wal.Scan(func(rec *wal.Record) error {
		if rec.BatchID != "" {
			s.batches.restore(rec.BatchID, rec.Time, api.IngestResult{Table: rec.Table, Leaf: s.cfg.ID, BatchID: rec.BatchID})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot read the WAL's batch ids: %w", err)
	}
	return nil
}

// restore remembers batch id as stored (by an earlier process) with result res.
func (l *batchLog) restore(id string, at time.Time, res api.IngestResult) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expire(time.Now())
	if _, ok := l.byID[id]; ok {
		return
	}
	if time.Since(at) >= l.ttl {
		return
	}
	b := &batch{at: at, done: make(chan struct{}), ok: true, res: res}
	b.res.Errors = nil
	close(b.done)
	l.byID[id] = b
	l.order = append(l.order, batchEntry{id, b})
}

// phases times the steps of a start, for its log line.
type phases struct {
	began, last time.Time
	steps       []any
}

func (p *phases) mark(name string) {
	now := time.Now()
	if p.last.IsZero() {
		p.last = p.began
	}
	p.steps = append(p.steps, name+"_ms", float64(now.Sub(p.last).Microseconds())/1000)
	p.last = now
}

func (p *phases) attrs() []any { return p.steps }
