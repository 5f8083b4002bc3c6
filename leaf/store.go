package leaf

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reef-db/reef/api"
)

// store holds the leaf's tables and accounts for their memory.
//
// Lock order: a table's mu may be held while taking store.mu, never the other way
// round (store.mu is held only to look tables up, add or remove them).
type store struct {
	cfg     *Config
	log     *slog.Logger
	blocks  blockStore
	metrics *metrics

	mem      atomic.Int64  // bytes of blocks and open builders
	reserved atomic.Int64  // bytes promised to ingest requests in progress
	ids      atomic.Uint64 // last block id handed out

	// openBytes is the part of mem held by open builders. Ingest keeps as much
	// again free, since a query builds a copy of each open block it reads.
	openBytes atomic.Int64

	mu     sync.RWMutex
	tables map[string]*table

	// pendingChecks counts blocks whose deferred check (blockCheck) has not passed;
	// while it is 0, snapshots skip checking. onCorrupt is told of a block that
	// failed its check.
	pendingChecks atomic.Int64
	onCorrupt     func(r *blockRef, err error)

	retainMu   sync.Mutex   // one retention pass at a time
	idleRetain atomic.Int64 // unix nanos of the last pass that dropped nothing
}

// retainPause is how long after a retention pass that dropped nothing ingest does
// not start another: a full leaf answers a flood of batches without rescanning every
// table for each.
const retainPause = 100 * time.Millisecond

func newStore(cfg *Config, bs blockStore, m *metrics) *store {
	return &store{cfg: cfg, log: cfg.Logger, blocks: bs, metrics: m, tables: make(map[string]*table)}
}

// nextID returns a block id never handed out before by this leaf.
func (st *store) nextID() uint64 { return st.ids.Add(1) }

// errTooManyTables is returned when a new table would exceed MaxTables.
type errTooManyTables struct {
	table string
	limit int
}

func (e *errTooManyTables) Error() string {
	return fmt.Sprintf("cannot create table %q: the leaf already holds the maximum of %d tables", e.table, e.limit)
}

// table returns the named table, creating it if create is set. It returns nil (and
// no error) for an unknown table when create is not set.
func (st *store) table(name string, create bool) (*table, error) {
	st.mu.RLock()
	t := st.tables[name]
	st.mu.RUnlock()
	if t != nil || !create {
		return t, nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if t := st.tables[name]; t != nil {
		return t, nil
	}
	if len(st.tables) >= st.cfg.MaxTables {
		return nil, &errTooManyTables{table: name, limit: st.cfg.MaxTables}
	}
	t = newTable(st, name)
	st.tables[name] = t
	return t, nil
}

// list returns the tables sorted by name.
func (st *store) list() []*table {
	st.mu.RLock()
	ts := make([]*table, 0, len(st.tables))
	for _, t := range st.tables {
		ts = append(ts, t)
	}
	st.mu.RUnlock()
	slices.SortFunc(ts, func(a, b *table) int { return strings.Compare(a.name, b.name) })
	return ts
}

// snapshot returns the blocks of the named table for one query (none for an unknown
// table). The caller must release it.
func (st *store) snapshot(name string) *snapshot {
	snap := &snapshot{}
	t, _ := st.table(name, false)
	if t == nil {
		return snap
	}
	t.mu.Lock()
	for t.reloads > 0 {
		t.reloaded.Wait()
	}
	if !t.dropped {
		t.addTo(snap)
	}
	t.mu.Unlock()
	if st.pendingChecks.Load() > 0 && !st.checkSnapshot(snap) {
		return st.snapshotAgain(name, snap) // damaged blocks were reloaded
	}
	return snap
}

// sealOlder seals every open block whose first row arrived before cutoff.
func (st *store) sealOlder(cutoff time.Time) {
	for _, t := range st.list() {
		t.mu.Lock()
		if !t.dropped {
			t.sealIfOlder(cutoff)
		}
		t.mu.Unlock()
	}
}

// sealAll seals every open block.
func (st *store) sealAll() { st.sealOlder(time.Now().Add(time.Hour)) }

// retain drops the blocks past every table's retention (MaxAge, MaxTableBytes) and
// removes tables left without rows. It returns how many blocks it dropped.
func (st *store) retain(now time.Time) int {
	st.retainMu.Lock()
	defer st.retainMu.Unlock()
	minTime := now.Add(-st.cfg.MaxAge).Unix()
	dropped := 0
	for _, t := range st.list() {
		t.mu.Lock()
		if !t.dropped {
			dropped += t.retain(minTime, st.cfg.MaxAge > 0, st.cfg.MaxTableBytes)
			if t.empty() {
				st.mu.Lock()
				delete(st.tables, t.name)
				st.mu.Unlock()
				t.releaseAll()
			}
		}
		t.mu.Unlock()
	}
	if dropped > 0 {
		st.idleRetain.Store(0)
		st.log.Info("retention dropped blocks", "blocks", dropped, "memory_used", st.mem.Load())
	} else {
		st.idleRetain.Store(now.UnixNano())
	}
	return dropped
}

// reserve promises need bytes to an ingest request, running retention first if the
// leaf would otherwise go over its memory limit. It reports false, promising
// nothing, when even then there is no room. A granted reservation is returned with
// unreserve once the rows are stored (and charged to mem).
//
// Room for a build of every open block (openBytes) is kept free besides: queries
// build them without asking. A request therefore reserves twice the growth it
// expects of its open block, once for the builder and once for its build.
func (st *store) reserve(need int64) bool {
	fits := func() bool {
		if st.mem.Load()+st.openBytes.Load()+st.reserved.Add(need) <= st.cfg.MemoryLimit {
			return true
		}
		st.reserved.Add(-need)
		return false
	}
	if fits() {
		return true
	}
	now := time.Now()
	if now.UnixNano()-st.idleRetain.Load() < int64(retainPause) {
		return false
	}
	st.retain(now)
	return fits()
}

func (st *store) unreserve(need int64) { st.reserved.Add(-need) }

// used is the memory held now.
func (st *store) used() int64 { return st.mem.Load() }

// stats describes every table.
func (st *store) stats() []api.TableStats {
	ts := st.list()
	out := make([]api.TableStats, 0, len(ts))
	for _, t := range ts {
		t.mu.Lock()
		if !t.dropped {
			out = append(out, t.stats())
		}
		t.mu.Unlock()
	}
	return out
}

// close lets go of every table's blocks.
func (st *store) close() {
	for _, t := range st.list() {
		t.mu.Lock()
		if !t.dropped {
			t.releaseAll()
		}
		t.mu.Unlock()
	}
	st.mu.Lock()
	clear(st.tables)
	st.mu.Unlock()
}
