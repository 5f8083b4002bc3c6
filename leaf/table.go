package leaf

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/leaf/wal"
)

// column is one column of a table's schema. A column's type is fixed for the life
// of the table: every block of the table agrees on it.
type column struct {
	name string
	typ  block.Type
	bidx int // index in the open builder; -1 until the column gets a value in it
}

// table is one table's slice on this leaf: its schema, the open block being built,
// and the sealed blocks in the order they were sealed.
//
// Every field below mu is guarded by it. Writers hold mu while they append a chunk of
// rows; queries hold it only to take a snapshot (and, when the open block changed
// since the last snapshot, to build it), then scan without it.
type table struct {
	name string
	st   *store

	mu      sync.Mutex
	cols    []*column // in the order first seen; cols[0] is the time column
	byName  map[string]*column
	dropped bool // removed from the store; writers must look the table up again

	b          *block.Builder
	lastRows   int       // rows of the block sealed last: what the next one reserves
	bFirst     time.Time // arrival of the open block's first row; zero when empty
	bMinTime   int64     // time range of the open block's rows
	bMaxTime   int64
	bBytes     int64 // estimate of b's heap bytes, charged to the memory account
	bMeasured  int64 // b.HeapBytes() when last measured …
	bMeasRows  int   // … at this many rows
	gen        uint64
	open       *blockRef // b built at openGen, for queries; nil if none
	openGen    uint64
	sealed     []*blockRef
	sealedRows int64
	sealedSize int64

	cover wal.Coverage // WAL lines whose rows are in b (persist.go)

	// reloads counts damaged blocks taken out of sealed and not yet back
	// (blockCorrupt); a snapshot waits on reloaded until there are none, so that
	// no query answers without their rows and without knowing it.
	reloads  int
	reloaded sync.Cond
}

func newTable(st *store, name string) *table {
	t := &table{name: name, st: st, byName: make(map[string]*column)}
	t.reloaded.L = &t.mu
	tc := &column{name: block.TimeColumn, typ: block.TypeInt, bidx: -1}
	t.cols = append(t.cols, tc)
	t.byName[tc.name] = tc
	t.newBuilder()
	return t
}

// newBuilder starts an empty open block. The caller has sealed or dropped the rows
// of the previous one.
func (t *table) newBuilder() {
	t.b = block.NewBuilder(t.name)
	// Room for as many rows as the last block took: a table whose blocks fill up
	// gets full-size columns from the start.
	t.b.Reserve(t.lastRows)
	for _, c := range t.cols {
		c.bidx = -1
	}
	t.builderIndex(t.cols[0]) // the time column is always index 0
	t.bFirst = time.Time{}
	t.cover = wal.Coverage{} // the sealed block's went to the block store
	t.bMeasured, t.bMeasRows = 0, 0
	t.st.mem.Add(-t.bBytes)
	t.st.openBytes.Add(-t.bBytes)
	t.bBytes = 0
	t.gen++
}

// builderIndex returns c's index in the open builder, adding it there if needed.
func (t *table) builderIndex(c *column) int {
	if c.bidx < 0 {
		i, err := t.b.AddColumn(c.name, c.typ)
		if err != nil {
			panic(fmt.Sprintf("BUG: leaf table %q: %v", t.name, err))
		}
		c.bidx = i
	}
	return c.bidx
}

// addColumn adds a column to the schema. The caller has checked that it does not
// exist and that the table has room for it.
func (t *table) addColumn(name string, typ block.Type) *column {
	c := &column{name: name, typ: typ, bidx: -1}
	t.cols = append(t.cols, c)
	t.byName[name] = c
	return c
}

// rowAdded records a completed row of the open block (time ts, arrived at now) and
// seals the block when it is full.
func (t *table) rowAdded(ts int64, now time.Time) {
	if t.b.Len() == 1 {
		t.bFirst = now
		t.bMinTime, t.bMaxTime = ts, ts
	} else {
		t.bMinTime = min(t.bMinTime, ts)
		t.bMaxTime = max(t.bMaxTime, ts)
	}
	t.gen++
	if t.b.Len() >= block.MaxRows {
		t.seal()
	}
}

// account brings the memory charged for the open block up to date. Measuring the
// builder walks its dictionaries, so it is measured only when it grew by an eighth
// (or is small) and extrapolated per row in between; the cost stays a few
// operations per row whatever the batch size.
func (t *table) account() {
	rows := t.b.Len()
	var est int64
	switch {
	case rows == 0:
		est = 0
	case rows <= 1024 || rows-t.bMeasRows >= t.bMeasRows/8:
		est = t.b.HeapBytes()
		t.bMeasured, t.bMeasRows = est, rows
	default:
		est = t.bMeasured + t.bMeasured/int64(t.bMeasRows)*int64(rows-t.bMeasRows)
	}
	t.st.mem.Add(est - t.bBytes)
	t.st.openBytes.Add(est - t.bBytes)
	t.bBytes = est
}

// buildOpen returns the open block built as of now, building it if it changed since
// the last build, or nil when the open block is empty.
func (t *table) buildOpen() *blockRef {
	if t.b.Len() == 0 {
		return nil
	}
	if t.open != nil && t.openGen == t.gen {
		return t.open
	}
	if t.open != nil {
		t.open.release()
		t.open = nil
	}
	blk, err := t.b.Build(t.st.nextID())
	if err != nil {
		// The decoder guarantees a time value per row; this cannot happen.
		panic(fmt.Sprintf("BUG: leaf table %q: %v", t.name, err))
	}
	warmDictionaries(blk)
	t.open = t.st.newRef(blk, false)
	t.openGen = t.gen
	return t.open
}

// seal turns the open block into a sealed one and starts a new open block. A block
// already built for queries since the last row is reused.
func (t *table) seal() {
	ref := t.buildOpen()
	if ref == nil {
		return
	}
	t.open = nil
	kept, err := t.st.blocks.Keep(ref.blk, t.cover)
	switch {
	case err != nil:
		t.st.log.Error("cannot keep sealed block; serving it from the heap",
			"table", t.name, "block", ref.blk.ID, "err", err)
	case kept == ref.blk:
		ref.kept.Store(true)
	default:
		warmDictionaries(kept)
		k := t.st.newRef(kept, true)
		ref.release()
		ref = k
	}
	t.sealed = append(t.sealed, ref)
	t.sealedRows += int64(ref.blk.Rows)
	t.sealedSize += ref.blk.Bytes
	t.st.metrics.blocksSealed.Inc()
	t.lastRows = ref.blk.Rows
	t.newBuilder()
}

// sealIfOlder seals the open block if its first row arrived before cutoff.
func (t *table) sealIfOlder(cutoff time.Time) {
	if t.b.Len() > 0 && t.bFirst.Before(cutoff) {
		t.seal()
	}
}

// addTo adds every block of the table (the sealed ones and the open one) to snap.
func (t *table) addTo(snap *snapshot) {
	for _, r := range t.sealed {
		snap.add(r)
	}
	if r := t.buildOpen(); r != nil {
		snap.add(r)
	}
}

// retain drops the sealed blocks past the table's retention: those whose newest row
// is older than minTime (when minTime is set), then the oldest ones while the table
// holds more than maxBytes (when maxBytes > 0). It returns how many it dropped.
func (t *table) retain(minTime int64, useMinTime bool, maxBytes int64) int {
	n := 0
	if useMinTime {
		kept := t.sealed[:0]
		for _, r := range t.sealed {
			if r.blk.MaxTime < minTime {
				t.dropBlock(r)
				n++
				continue
			}
			kept = append(kept, r)
		}
		clear(t.sealed[len(kept):])
		t.sealed = kept
	}
	if maxBytes > 0 && t.sealedSize+t.bBytes > maxBytes && len(t.sealed) > 0 {
		byAge := slices.Clone(t.sealed)
		slices.SortStableFunc(byAge, func(a, b *blockRef) int { return cmp.Compare(a.blk.MaxTime, b.blk.MaxTime) })
		drop := make(map[*blockRef]bool)
		for _, r := range byAge {
			if t.sealedSize+t.bBytes <= maxBytes {
				break
			}
			drop[r] = true
			t.dropBlock(r)
			n++
		}
		t.sealed = slices.DeleteFunc(t.sealed, func(r *blockRef) bool { return drop[r] })
	}
	return n
}

// dropBlock takes r out of the table's counts and lets go of the table's reference;
// the caller removes it from t.sealed.
func (t *table) dropBlock(r *blockRef) {
	t.sealedRows -= int64(r.blk.Rows)
	t.sealedSize -= r.blk.Bytes
	t.st.metrics.blocksDropped.Inc()
	r.release()
}

// empty reports whether the table holds no rows at all.
func (t *table) empty() bool { return len(t.sealed) == 0 && t.b.Len() == 0 }

// releaseAll lets go of every block; the table must not be used afterwards.
func (t *table) releaseAll() {
	for _, r := range t.sealed {
		r.release()
	}
	t.sealed = nil
	if t.open != nil {
		t.open.release()
		t.open = nil
	}
	t.st.mem.Add(-t.bBytes)
	t.st.openBytes.Add(-t.bBytes)
	t.bBytes = 0
	t.dropped = true
}

// stats describes the table.
func (t *table) stats() api.TableStats {
	s := api.TableStats{
		Name:    t.name,
		Rows:    t.sealedRows + int64(t.b.Len()),
		Bytes:   t.sealedSize + t.bBytes,
		Blocks:  len(t.sealed),
		Columns: make([]api.ColumnInfo, len(t.cols)),
	}
	first := true
	span := func(lo, hi int64) {
		if first || lo < s.MinTime {
			s.MinTime = lo
		}
		if first || hi > s.MaxTime {
			s.MaxTime = hi
		}
		first = false
	}
	for _, r := range t.sealed {
		span(r.blk.MinTime, r.blk.MaxTime)
	}
	if t.b.Len() > 0 {
		s.Blocks++
		span(t.bMinTime, t.bMaxTime)
	}
	for i, c := range t.cols {
		s.Columns[i] = api.ColumnInfo{Name: c.name, Type: c.typ.String()}
	}
	return s
}
